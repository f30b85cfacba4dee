//! Fuzzes the elfcorehdr edit engine against a rebuild. From a header the kernel builds (a note
//! per possible CPU) or one kexec-tools builds (notes for the CPUs present at load, the kernel
//! text or not), in a segment with 0 to 12 free slots, an arbitrary sequence of up to 16 events:
//! RAM ranges online and offline and device vmemmaps added and removed (arbitrary page ranges
//! over 64 pages, overlapping, splitting and spanning listed ranges, RAM and device vmemmaps in
//! the same addresses), CPU events, the adoption of the missing CPU notes (any of them, in any
//! order), a capacity limit (the fault-injection hook for a full header), and a fresh index (the
//! next open scans the table). After every event:
//!
//! - (a) the edited header must be the one the crate's builder writes from scratch from the
//!   model's expected state (the RAM and device pages listed, the notes in table order): the same
//!   ELF header but `e_phnum`, the same notes and kernel text field for field, every direct-map
//!   `PT_LOAD` exactly a fresh load of its own page range (`p_offset`, `p_vaddr`, `p_filesz`,
//!   `p_memsz`, `p_flags`, `p_align`), no two overlapping, covering the same RAM and the same
//!   device vmemmaps (the engine does not merge neighbours: two blocks onlined one after the
//!   other are two `PT_LOAD`s, one in a rebuild, so the ranges are compared as unions);
//! - (b) every state a crashing CPU could read while the event was applied, under the weak
//!   ordering model of `host/model/tests/common/order.rs` (the stores between two barriers
//!   visible in any subset, bytewise; a light, sampled exploration), must satisfy the invariant
//!   the host tests use: a valid header with the notes and the kernel text unchanged and each kind
//!   of range exactly the old set or the new one (an adoption: the notes between the old set and
//!   the new one, nothing else changed);
//! - an event refused as full must have written nothing (the header byte-identical), and a CPU
//!   event or an event that changes nothing must write nothing.
#![no_main]

#[path = "../../host/model/tests/common/order.rs"]
#[allow(dead_code)]
mod order;
use order::{check_every_state, Barriers, Explore, Journal};
#[path = "../../host/model/tests/common/elf_check.rs"]
#[allow(dead_code)]
mod elf_check;
use elf_check::{
    adopt_invariant, built, edit_invariant, parse, spec, table, try_view, units_to_ranges,
    user_header_in, view, CPU_NOTES, CPU_NOTE_SIZE, PAGE_OFFSET, UNIT,
};

use crash_hotplug_model::{
    elf::build_with, slots, EditError, Elfcorehdr, Event, Index, MemRange, Node, Phdr, RangeKind,
    PF_DEV_VMEMMAP, PF_RWX,
};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD, PT_NOTE, PT_NULL};
use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};

/// Pages the ranges live in.
const UNITS: usize = 64;
/// Events per input: one execution stays around a millisecond.
const MAX_OPS: usize = 16;

type Ix = Index<Vec<Node>>;

/// One event, or a change of the conditions of the next ones.
#[derive(Debug, Clone)]
enum Op {
    /// `Event::OnlineMemory` of pages `.0..=.1`.
    Online(usize, usize),
    /// `Event::OfflineMemory` of pages `.0..=.1`.
    Offline(usize, usize),
    /// `Event::AddDeviceVmemmap` of pages `.0..=.1`.
    AddDevice(usize, usize),
    /// `Event::RemoveDeviceVmemmap` of pages `.0..=.1`.
    RemoveDevice(usize, usize),
    /// `Event::AddCpu` (true) or `Event::RemoveCpu`.
    Cpu(bool, u32),
    /// `adopt_notes` with the notes of these CPUs, in this order (distinct, as the kernel's).
    Adopt(Vec<usize>),
    /// Every later open uses at most this many slots (`limit_capacity`), or all of them.
    Limit(Option<usize>),
    /// A fresh index: the next open rebuilds it from the table.
    FreshIndex,
}

/// Pages `first..=last`, clipped to the space.
fn pages(u: &mut Unstructured<'_>) -> Result<(usize, usize)> {
    let first = u.int_in_range(0..=UNITS - 1)?;
    let len = u.int_in_range(1..=UNITS / 4)?;
    Ok((first, (first + len - 1).min(UNITS - 1)))
}

impl Op {
    fn decode(u: &mut Unstructured<'_>) -> Result<Self> {
        Ok(match u.int_in_range(0u8..=15)? {
            0..=2 => {
                let (s, e) = pages(u)?;
                Op::Online(s, e)
            }
            3..=5 => {
                let (s, e) = pages(u)?;
                Op::Offline(s, e)
            }
            6..=7 => {
                let (s, e) = pages(u)?;
                Op::AddDevice(s, e)
            }
            8..=9 => {
                let (s, e) = pages(u)?;
                Op::RemoveDevice(s, e)
            }
            10 => Op::Cpu(u.arbitrary()?, u.int_in_range(0..=7)?),
            11..=12 => {
                let mut cpus: Vec<usize> = (0..CPU_NOTES.len()).collect();
                let n = u.int_in_range(1..=CPU_NOTES.len())?;
                for i in 0..n {
                    let j = u.int_in_range(i..=CPU_NOTES.len() - 1)?;
                    cpus.swap(i, j);
                }
                cpus.truncate(n);
                Op::Adopt(cpus)
            }
            13..=14 => Op::Limit(if u.arbitrary()? {
                Some(u.int_in_range(0..=40)?)
            } else {
                None
            }),
            _ => Op::FreshIndex,
        })
    }
}

/// What the header must list.
#[derive(Clone, PartialEq, Eq)]
struct Model {
    /// RAM pages online.
    ram: [bool; UNITS],
    /// Device vmemmap pages.
    dev: [bool; UNITS],
    /// CPUs with a note at load: the first `present`.
    present: usize,
    /// CPUs whose notes were adopted since, in order.
    adopted: Vec<usize>,
    /// Whether the header has the kernel-text `PT_LOAD`.
    text: bool,
}

impl Model {
    fn listed(&self, cpu: usize) -> bool {
        cpu < self.present || self.adopted.contains(&cpu)
    }

    /// The header the crate's builder writes from scratch for this state, in the table order the
    /// engine keeps: the CPU notes of the load, VMCOREINFO, the adopted notes, the kernel text,
    /// the RAM, the device vmemmaps.
    fn rebuild(&self) -> Vec<u8> {
        let ram = units_to_ranges(&self.ram);
        let dev = units_to_ranges(&self.dev);
        let mut s = spec(&ram);
        s.cpu_notes = &CPU_NOTES[..self.present];
        if !self.text {
            s.kernel_text = None;
        }
        let first_load = self.present + 1;
        let mut phdrs: Vec<Phdr> = (0..first_load).filter_map(|i| s.phdr(i)).collect();
        phdrs.extend(
            self.adopted
                .iter()
                .map(|&c| Phdr::note(CPU_NOTES[c], CPU_NOTE_SIZE)),
        );
        phdrs.extend((first_load..s.phnum()).filter_map(|i| s.phdr(i)));
        phdrs.extend(
            dev.iter()
                .map(|&r| Phdr::load(r, PAGE_OFFSET, RangeKind::DeviceVmemmap)),
        );
        let mut buf = vec![0xa5u8; 64 + phdrs.len() * 56];
        build_with(&mut buf, s.machine, 0, phdrs.len(), |i| {
            phdrs.get(i).copied()
        })
        .expect("the rebuild fits");
        buf
    }
}

/// The fields of a program header.
type Fields = (u32, u32, u64, u64, u64, u64, u64, u64);

fn fields(p: &ProgramHeader) -> Fields {
    (
        p.p_type, p.p_flags, p.p_offset, p.p_vaddr, p.p_paddr, p.p_filesz, p.p_memsz, p.p_align,
    )
}

/// A header up to the order of its `PT_LOAD`s and the way its ranges are cut.
#[derive(Debug, PartialEq, Eq)]
struct Canon {
    /// The ELF header, `e_phnum` zeroed.
    ehdr: Vec<u8>,
    /// The notes, in table order.
    notes: Vec<Fields>,
    /// The `PT_LOAD`s outside the direct map (the kernel text), in table order.
    text: Vec<Fields>,
    /// The union of the RAM `PT_LOAD`s.
    ram: Vec<(u64, u64)>,
    /// The union of the device vmemmap `PT_LOAD`s.
    device: Vec<(u64, u64)>,
}

/// The canonical form of a header, or why it is not one the engine may leave.
fn canon(bytes: &[u8]) -> std::result::Result<Canon, String> {
    let v = try_view(bytes)?;
    let mut c = Canon {
        ehdr: bytes[..64].to_vec(),
        notes: vec![],
        text: vec![],
        ram: v.ram,
        device: v.device,
    };
    c.ehdr[0x38..0x3a].fill(0);
    let mut loads = Vec::new();
    for (i, p) in parse(bytes)?.iter().enumerate() {
        match p.p_type {
            PT_NULL => {}
            PT_NOTE => c.notes.push(fields(p)),
            PT_LOAD if p.p_vaddr != p.p_paddr.wrapping_add(PAGE_OFFSET) => c.text.push(fields(p)),
            PT_LOAD => {
                let kind = match p.p_flags {
                    PF_RWX => RangeKind::Ram,
                    f if f == PF_RWX | PF_DEV_VMEMMAP => RangeKind::DeviceVmemmap,
                    f => return Err(format!("PT_LOAD {i}: p_flags {f:#x}")),
                };
                if p.p_paddr % UNIT != 0 || p.p_memsz % UNIT != 0 {
                    return Err(format!("PT_LOAD {i} is not whole pages: {p:x?}"));
                }
                let r = MemRange {
                    start: p.p_paddr,
                    end: p.p_paddr + p.p_memsz - 1,
                };
                let fresh = Phdr::load(r, PAGE_OFFSET, kind);
                let got = fields(p);
                let want = (
                    fresh.p_type,
                    fresh.p_flags,
                    fresh.p_offset,
                    fresh.p_vaddr,
                    fresh.p_paddr,
                    fresh.p_filesz,
                    fresh.p_memsz,
                    fresh.p_align,
                );
                if got != want {
                    return Err(format!(
                        "PT_LOAD {i} {got:x?} is not the load of its range {want:x?}"
                    ));
                }
                loads.push((r.start, r.end, i));
            }
            t => return Err(format!("program header {i}: p_type {t:#x}")),
        }
    }
    loads.sort_unstable();
    for w in loads.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(format!(
                "PT_LOADs {} ({:#x}-{:#x}) and {} ({:#x}-{:#x}) overlap",
                w[0].2, w[0].0, w[0].1, w[1].2, w[1].0, w[1].1
            ));
        }
    }
    Ok(c)
}

/// What differs between two canonical forms, in hex.
fn differences(got: &Canon, exp: &Canon) -> String {
    let mut out = Vec::new();
    let mut field = |name: &str, g: String, e: String| {
        if g != e {
            out.push(format!("{name}: edited {g}, rebuilt {e}"));
        }
    };
    field(
        "ELF header",
        format!("{:x?}", got.ehdr),
        format!("{:x?}", exp.ehdr),
    );
    field(
        "notes",
        format!("{:x?}", got.notes),
        format!("{:x?}", exp.notes),
    );
    field(
        "kernel text",
        format!("{:x?}", got.text),
        format!("{:x?}", exp.text),
    );
    field("RAM", format!("{:x?}", got.ram), format!("{:x?}", exp.ram));
    field(
        "device vmemmaps",
        format!("{:x?}", got.device),
        format!("{:x?}", exp.device),
    );
    out.join("; ")
}

/// The number of maximal runs of pages in `s..=e` that neither kind lists: the `PT_LOAD`s an
/// add writes.
fn gaps(m: &Model, s: usize, e: usize) -> usize {
    (s..=e)
        .filter(|&i| !m.ram[i] && !m.dev[i] && (i == s || m.ram[i - 1] || m.dev[i - 1]))
        .count()
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let first = u.int_in_range(0u8..=255)?;
    let spare = u.int_in_range(0..=12)?;
    let init: u64 = u.arbitrary()?;
    let seed: u64 = u.arbitrary()?;
    let mut m = Model {
        ram: std::array::from_fn(|i| init & (1 << i) != 0),
        dev: [false; UNITS],
        present: CPU_NOTES.len(),
        adopted: vec![],
        text: true,
    };
    let ram = units_to_ranges(&m.ram);
    let mut buf = if first & 1 == 0 {
        built(&ram, spec(&ram).phnum() + spare)
    } else {
        // As kexec-tools builds it for kexec_load(2).
        m.present = 1 + usize::from(first >> 1) % CPU_NOTES.len();
        m.text = first & 0x80 != 0;
        let phnum = m.present + 1 + usize::from(m.text) + ram.len();
        user_header_in(&ram, m.present, m.text, phnum + spare)
    };
    assert_eq!(
        canon(&buf),
        canon(&m.rebuild()),
        "the initial header is not the rebuild"
    );
    let mut ix: Ix = Index::new(vec![Node::EMPTY; slots(buf.len())]);
    let mut limit = None::<usize>;
    let mut k = 0;
    while !u.is_empty() && k < MAX_OPS {
        let op = Op::decode(u)?;
        k += 1;
        let what = format!("event {k} {op:?}");
        match op {
            Op::Limit(l) => {
                limit = l;
                continue;
            }
            Op::FreshIndex => {
                ix = Index::new(vec![Node::EMPTY; slots(buf.len())]);
                continue;
            }
            _ => {}
        }
        let orig = buf.clone();
        let before = view(&orig);
        let (phnum, tombstones) = table(&orig);
        let capacity = limit.map_or(slots(orig.len()), |l| slots(orig.len()).min(l.max(phnum)));
        let mut want = m.clone();
        let mut h = Elfcorehdr::open(Journal::new(buf), PAGE_OFFSET, &mut ix)
            .unwrap_or_else(|e| panic!("{what}: the engine's own header does not open: {e}"));
        if let Some(l) = limit {
            h.limit_capacity(l);
        }
        let mem = |s: usize, e: usize| MemRange {
            start: s as u64 * UNIT,
            end: (e as u64 + 1) * UNIT - 1,
        };
        // The result, and what it must be if the event is applied.
        let (res, n_want) = match &op {
            Op::Online(s, e) | Op::AddDevice(s, e) => {
                let n = gaps(&m, *s, *e);
                let (ev, mine, other) = match op {
                    Op::Online(..) => (Event::OnlineMemory(mem(*s, *e)), &mut want.ram, &m.dev),
                    _ => (Event::AddDeviceVmemmap(mem(*s, *e)), &mut want.dev, &m.ram),
                };
                // Only the pages neither kind lists are added.
                for i in *s..=*e {
                    mine[i] |= !other[i];
                }
                (h.apply_event(ev), Some(n))
            }
            Op::Offline(s, e) | Op::RemoveDevice(s, e) => {
                let (ev, mine) = match op {
                    Op::Offline(..) => (Event::OfflineMemory(mem(*s, *e)), &mut want.ram),
                    _ => (Event::RemoveDeviceVmemmap(mem(*s, *e)), &mut want.dev),
                };
                mine[*s..=*e].fill(false);
                (h.apply_event(ev), None)
            }
            Op::Cpu(add, id) => {
                let ev = if *add {
                    Event::AddCpu(*id)
                } else {
                    Event::RemoveCpu(*id)
                };
                (h.apply_event(ev), Some(0))
            }
            Op::Adopt(cpus) => {
                let addrs: Vec<u64> = cpus.iter().map(|&c| CPU_NOTES[c]).collect();
                for &c in cpus {
                    if !want.listed(c) {
                        want.adopted.push(c);
                    }
                }
                let n = want.adopted.len() - m.adopted.len();
                (h.adopt_notes(&addrs, CPU_NOTE_SIZE), Some(n))
            }
            Op::Limit(_) | Op::FreshIndex => unreachable!(),
        };
        let index_ok = h.index_matches();
        let rec = h.into_segment();
        // The limit is the segment's size as far as the engine knows.
        let end = 64 + capacity * 56;
        if let Some(s) = rec.stores.iter().find(|s| s.off + s.data.len() > end) {
            panic!(
                "{what}: stored {} bytes at {:#x}, past the {capacity} slots it may use",
                s.data.len(),
                s.off
            );
        }
        match res {
            Err(EditError::Full {
                need,
                free,
                capacity: c,
            }) => {
                assert!(rec.stores.is_empty(), "{what}: refused as full, but wrote");
                assert_eq!(rec.buf, orig, "{what}: refused as full, but changed");
                assert!(index_ok, "{what}: refused, the index out of step");
                let tail = capacity - phnum;
                assert!(
                    need > free && c == capacity && (free == tail || free == tail + tombstones),
                    "{what}: full: need {need}, free {free} of {c}; the table has {phnum} \
                     entries ({tombstones} tombstones) of {capacity}"
                );
                if let (Op::Online(..) | Op::AddDevice(..), Some(n)) = (&op, n_want) {
                    assert_eq!(need, n, "{what}: an add needs a slot per piece");
                }
                buf = rec.buf;
                continue;
            }
            Err(e) => panic!("{what}: failed on a valid header: {e}"),
            Ok(n) => {
                if let Some(w) = n_want {
                    assert_eq!(n, w, "{what}: returned {n}, the model says {w}");
                }
                if want == m {
                    assert!(
                        rec.stores.is_empty(),
                        "{what}: changes nothing but made {} stores",
                        rec.stores.len()
                    );
                } else if n_want.is_none() {
                    assert!(n > 0, "{what}: removed something, returned 0");
                }
            }
        }
        m = want;
        // (a) The edited header against a rebuild of the expected state.
        let rebuilt = m.rebuild();
        let got = canon(&rec.buf).unwrap_or_else(|e| panic!("{what}: (a) edited header: {e}"));
        let exp = canon(&rebuilt).expect("the rebuild is canonical");
        if got != exp {
            panic!(
                "{what}: (a) the edited header differs from a rebuild: {}",
                differences(&got, &exp)
            );
        }
        // (b) Every state a crash could read meanwhile, sampled.
        let after = view(&rebuilt);
        let ex = Explore {
            exhaustive: 64,
            store_subsets: 4,
            samples: 8,
            seed: seed.wrapping_add(k as u64),
        };
        let checked = if let Op::Adopt(_) = op {
            check_every_state(
                &rec,
                Barriers::AroundCommits,
                &ex,
                &what,
                adopt_invariant(&before, &after),
            )
        } else {
            check_every_state(
                &rec,
                Barriers::AroundCommits,
                &ex,
                &what,
                edit_invariant(&before, &after),
            )
        };
        if let Err(e) = checked {
            panic!("(b) {e}");
        }
        assert!(index_ok, "{what}: the index is out of step with the table");
        buf = rec.buf;
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
