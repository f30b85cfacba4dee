//! The judge of crash consistency on a weakly ordered machine: a segment that journals its
//! stores, and a check that every byte state a crashing CPU could read satisfies an invariant.
//!
//! # The model
//!
//! A panic may read the segment at any instant, from another CPU. The writer orders its stores
//! only with write barriers (`smp_wmb()`), so what the reader can see is:
//!
//! - the stores are cut into *epochs* by the barriers: every store of an earlier epoch is
//!   visible before any store of a later one;
//! - inside an epoch, any subset of the stores may be visible, whatever their program order;
//! - a commit is one naturally aligned store of 2, 4 or 8 bytes (`write_volatile`), which is
//!   single-copy atomic: all of its bytes or none;
//! - a plain write is a `copy_nonoverlapping` into an alias: the compiler and the CPU may split
//!   it into stores of any width in any order, so each of its bytes is its own store. Two writes
//!   of one epoch may overlap: each byte then shows one of the values it takes in program order
//!   (stores of one CPU to one location are seen in that order, coherence), chosen
//!   independently of every other byte.
//!
//! So a state is: the epochs before the current one, all of it; then, for each byte the current
//! epoch writes, one of its values (for a commit that no other store of the epoch overlaps, its
//! bytes together). Splitting the writes into bytes rather than exploring orders of whole writes
//! is what the hardware and the compiler allow, and it makes the order of overlapping writes a
//! per-byte choice instead of a permutation.
//!
//! Where the barriers are is the writer's contract ([`Barriers`]): with a barrier on both sides of
//! every commit (the kernel's `SegmentMem` since issue 11) a commit is an epoch of its own; with a
//! barrier before every commit only (the kernel before), a commit shares its epoch with the writes
//! after it, which may then become visible before it.
//!
//! # Exploration
//!
//! For each epoch: every combination of the byte values if there are at most
//! [`Explore::exhaustive`] of them; otherwise every subset of its whole stores (applied in
//! program order) if it has at most [`Explore::store_subsets`] stores, else each store alone and
//! all stores but one; plus [`Explore::samples`] random byte-level states (each changed byte, or
//! atomic commit, visible with a probability drawn per state from 1/8, 1/2 and 7/8). The state
//! with none of the epoch visible is the previous epoch's complete state, checked once.

use std::{collections::HashSet, ops::Range};

use crash_hotplug_model::Segment;

/// Size of an `Elf64_Ehdr`.
const EHDR: usize = 64;
/// Size of an `Elf64_Phdr`.
const PHDR: usize = 56;

/// One store the edit made, in program order.
#[derive(Clone, Debug)]
pub struct Store {
    /// Segment offset.
    pub off: usize,
    /// The bytes stored.
    pub data: Vec<u8>,
    /// A commit (one atomic store with barriers) rather than a plain write.
    pub commit: bool,
}

/// A segment that applies every store to `buf` and journals it.
pub struct Journal {
    /// The bytes before the first store.
    pub start: Vec<u8>,
    /// The bytes now.
    pub buf: Vec<u8>,
    /// Every store, in program order.
    pub stores: Vec<Store>,
}

impl Journal {
    /// A journal over `buf`, with no stores yet.
    pub fn new(buf: Vec<u8>) -> Self {
        Self {
            start: buf.clone(),
            buf,
            stores: vec![],
        }
    }
}

impl Segment for Journal {
    fn len(&self) -> usize {
        self.buf.len()
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.buf[off..off + buf.len()]);
    }
    fn write(&mut self, off: usize, data: &[u8]) {
        self.buf[off..off + data.len()].copy_from_slice(data);
        self.stores.push(Store {
            off,
            data: data.to_vec(),
            commit: false,
        });
    }
    fn commit(&mut self, off: usize, data: &[u8]) {
        assert!(matches!(data.len(), 2 | 4 | 8), "a commit is one store");
        assert_eq!(off % data.len(), 0, "a commit is naturally aligned");
        self.buf[off..off + data.len()].copy_from_slice(data);
        self.stores.push(Store {
            off,
            data: data.to_vec(),
            commit: true,
        });
    }
}

/// Where the writer puts its write barriers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Barriers {
    /// Before and after every commit: a commit is ordered after every earlier store and before
    /// every later one (the kernel's `SegmentMem::store` since issue 11).
    AroundCommits,
    /// Before every commit only: a commit is ordered after the earlier stores but not before the
    /// later writes (the kernel before issue 11).
    BeforeCommits,
}

/// How hard to look inside an epoch.
#[derive(Clone, Copy, Debug)]
pub struct Explore {
    /// Enumerate every byte-level state of an epoch that has at most this many.
    pub exhaustive: u64,
    /// Enumerate every subset of the whole stores of an epoch that has at most this many stores.
    pub store_subsets: usize,
    /// Random byte-level states per epoch (when not exhaustive).
    pub samples: usize,
    /// Seed of the random states.
    pub seed: u64,
}

/// The epochs of `stores` under `barriers`: ranges of store indices in program order.
pub fn epochs(stores: &[Store], barriers: Barriers) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut begin = 0;
    for i in 0..stores.len() {
        let fence_before = stores[i].commit
            || (barriers == Barriers::AroundCommits && i > 0 && stores[i - 1].commit);
        if fence_before && i > begin {
            out.push(begin..i);
            begin = i;
        }
    }
    if begin < stores.len() {
        out.push(begin..stores.len());
    }
    out
}

/// What an offset of an elfcorehdr is.
fn place(off: usize) -> String {
    if off < EHDR {
        return match off {
            0x38 => "e_phnum".into(),
            o => format!("ELF header +{o:#x}"),
        };
    }
    let (slot, field) = ((off - EHDR) / PHDR, (off - EHDR) % PHDR);
    match field {
        0 => format!("p_type of slot {slot}"),
        f => format!("slot {slot} +{f}"),
    }
}

fn describe(s: &Store, k: usize) -> String {
    format!(
        "#{k} {} of {} bytes at {:#x} ({})",
        if s.commit { "commit" } else { "write" },
        s.data.len(),
        s.off,
        place(s.off)
    )
}

/// A part of an epoch that becomes visible on its own: an atomic commit, or one byte.
struct Unit {
    /// Segment offsets of its bytes.
    at: Vec<usize>,
    /// `values[0]` is what the bytes hold before the epoch; `values[k]` after store `owner[k]`.
    values: Vec<Vec<u8>>,
    /// The store (index into the journal) that wrote `values[k]`; `owner[0]` is unused.
    owner: Vec<usize>,
}

/// The units of epoch `e` over `base` (the bytes before it). Units whose values are all equal
/// change nothing and are left out.
fn units(stores: &[Store], e: Range<usize>, base: &[u8]) -> Vec<Unit> {
    let overlaps =
        |a: &Store, b: &Store| a.off < b.off + b.data.len() && b.off < a.off + a.data.len();
    let mut out = Vec::new();
    let mut split: Vec<usize> = Vec::new();
    for k in e.clone() {
        let s = &stores[k];
        let alone = e.clone().all(|o| o == k || !overlaps(s, &stores[o]));
        if s.commit && alone {
            let old = base[s.off..s.off + s.data.len()].to_vec();
            if old != s.data {
                out.push(Unit {
                    at: (s.off..s.off + s.data.len()).collect(),
                    values: vec![old, s.data.clone()],
                    owner: vec![usize::MAX, k],
                });
            }
        } else {
            split.extend(s.off..s.off + s.data.len());
        }
    }
    split.sort_unstable();
    split.dedup();
    for p in split {
        let mut values = vec![vec![base[p]]];
        let mut owner = vec![usize::MAX];
        for k in e.clone() {
            let s = &stores[k];
            if (s.off..s.off + s.data.len()).contains(&p) {
                values.push(vec![s.data[p - s.off]]);
                owner.push(k);
            }
        }
        if values.iter().any(|v| *v != values[0]) {
            out.push(Unit {
                at: vec![p],
                values,
                owner,
            });
        }
    }
    out
}

/// xorshift64*: the random states, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The choice vectors to check for an epoch with `units` and stores `e`.
fn states(units: &[Unit], e: Range<usize>, ex: &Explore, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let total = units
        .iter()
        .try_fold(1u64, |t, u| t.checked_mul(u.values.len() as u64));
    if total.is_some_and(|t| t <= ex.exhaustive) {
        let mut c = vec![0usize; units.len()];
        loop {
            out.push(c.clone());
            // Mixed-radix increment.
            let mut i = 0;
            while i < c.len() {
                c[i] += 1;
                if c[i] < units[i].values.len() {
                    break;
                }
                c[i] = 0;
                i += 1;
            }
            if i == c.len() {
                return out;
            }
        }
    }
    // The whole epoch, which the next epoch starts from.
    out.push(units.iter().map(|u| u.values.len() - 1).collect());
    // Whole stores: a set of stores applied in program order. A unit shows the value of the
    // last store of the set that wrote it.
    let of_set = |set: &dyn Fn(usize) -> bool| -> Vec<usize> {
        units
            .iter()
            .map(|u| {
                (1..u.owner.len())
                    .rev()
                    .find(|&k| set(u.owner[k]))
                    .unwrap_or(0)
            })
            .collect()
    };
    let ks: Vec<usize> = e.collect();
    if ks.len() <= ex.store_subsets {
        for mask in 0u64..1 << ks.len() {
            out.push(of_set(&|k| {
                ks.iter()
                    .position(|&x| x == k)
                    .is_some_and(|j| mask & (1 << j) != 0)
            }));
        }
    } else {
        for &only in &ks {
            out.push(of_set(&|k| k == only));
            out.push(of_set(&|k| k != only));
        }
    }
    for _ in 0..ex.samples {
        let p = [1u64, 4, 7][rng.below(3)];
        out.push(
            units
                .iter()
                .map(|u| {
                    if rng.next() % 8 < p {
                        1 + rng.below(u.values.len() - 1)
                    } else {
                        0
                    }
                })
                .collect(),
        );
    }
    out
}

/// Checks `inv` on every state explored (see the module documentation) that a reader of the
/// segment journalled in `j` could see, with the writer's barriers `barriers`. `what` names the
/// edit in the failure message. Returns the number of distinct states checked, or a message
/// naming the edit, the epoch, which of its stores are visible and what `inv` found.
pub fn check_every_state(
    j: &Journal,
    barriers: Barriers,
    ex: &Explore,
    what: &str,
    mut inv: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<usize, String> {
    inv(&j.start).map_err(|m| format!("{what}: the state before the edit: {m}"))?;
    let mut checked = 1;
    let mut rng = Rng(ex.seed | 1);
    let mut base = j.start.clone();
    for (n, e) in epochs(&j.stores, barriers).into_iter().enumerate() {
        let units = units(&j.stores, e.clone(), &base);
        let mut work = base.clone();
        let mut seen = HashSet::new();
        for c in states(&units, e.clone(), ex, &mut rng) {
            if c.iter().all(|&k| k == 0) || !seen.insert(c.clone()) {
                continue;
            }
            for (u, &k) in units.iter().zip(&c) {
                for (&p, &v) in u.at.iter().zip(&u.values[k]) {
                    work[p] = v;
                }
            }
            checked += 1;
            if let Err(m) = inv(&work) {
                let mut vis = Vec::new();
                for k in e.clone() {
                    // How many of the bytes store `k` changes are visible: the unit shows the
                    // value of store `k` or of a later store of the epoch.
                    let (mut shown, mut of) = (0, 0);
                    for (u, &ch) in units.iter().zip(&c) {
                        if let Some(pos) = u.owner.iter().position(|&o| o == k) {
                            of += u.at.len();
                            if ch >= pos {
                                shown += u.at.len();
                            }
                        }
                    }
                    let state = match (shown, of) {
                        (_, 0) => "changes no byte".to_string(),
                        (s, o) if s == o => "visible".to_string(),
                        (0, _) => "NOT visible".to_string(),
                        (s, o) => format!("{s} of its {o} changed bytes visible"),
                    };
                    vis.push(format!("{}: {state}", describe(&j.stores[k], k)));
                }
                return Err(format!(
                    "{what}: {barriers:?}: epoch {n} (stores #{}..#{} of {}) can be seen as \
                     [{}]: {m}",
                    e.start,
                    e.end - 1,
                    j.stores.len(),
                    vis.join("; ")
                ));
            }
            for u in &units {
                for (&p, &v) in u.at.iter().zip(&u.values[0]) {
                    work[p] = v;
                }
            }
        }
        for s in &j.stores[e] {
            base[s.off..s.off + s.data.len()].copy_from_slice(&s.data);
        }
    }
    if base != j.buf {
        return Err(format!(
            "{what}: the journal does not replay to the final bytes"
        ));
    }
    Ok(checked)
}
