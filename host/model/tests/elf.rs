//! The elfcorehdr model against goblin: every byte state that a crashing CPU could read while any
//! edit runs (any subset of the stores between two barriers, `common/order.rs`) must parse as a
//! valid ELF64 core header whose notes never change and whose RAM `PT_LOAD`s cover exactly the old
//! or exactly the new set of addresses; after any sequence of edits the header lists the same
//! notes and addresses as one built from scratch.

#[path = "common/order.rs"]
mod order;
use order::{check_every_state, Barriers, Explore, Journal};
#[path = "common/elf_check.rs"]
mod elf_check;
use elf_check::{
    adopt_invariant, built, edit_invariant, parse, spec, table, units_to_ranges, user_header, view,
    View, CPU_NOTES, PAGE_OFFSET, UNIT,
};

use crash_hotplug_model::{
    build, slots, EditError, Elfcorehdr, HeaderError, Index, MemRange, Node,
};
use goblin::elf::program_header::ProgramHeader;
use proptest::prelude::*;

const UNITS: u64 = 256;

type Ix = Index<Vec<Node>>;

/// An index for headers of `len` bytes.
fn index_for(len: usize) -> Ix {
    Index::new(vec![Node::EMPTY; slots(len)])
}

/// Opens `buf` as a header whose stores are journalled, with index `ix` (built at the first open,
/// kept up to date by the edits after that).
fn recorded(buf: Vec<u8>, ix: &mut Ix) -> Elfcorehdr<'_, Journal, Vec<Node>> {
    let h = Elfcorehdr::open(Journal::new(buf), PAGE_OFFSET, ix).expect("valid");
    assert!(h.index_matches(), "index after open");
    h
}

/// Light exploration, for long random sequences of edits.
fn light(seed: u64) -> Explore {
    Explore {
        exhaustive: 256,
        store_subsets: 8,
        samples: 32,
        seed,
    }
}

/// Deep exploration, for one edit of each kind.
fn deep(seed: u64) -> Explore {
    Explore {
        exhaustive: 4096,
        store_subsets: 10,
        samples: 256,
        seed,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u64, u64),
    Remove(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    (any::<bool>(), 0..UNITS, 1u64..24).prop_map(|(add, s, n)| {
        let e = (s + n).min(UNITS) - 1;
        if add {
            Op::Add(s, e)
        } else {
            Op::Remove(s, e)
        }
    })
}

/// Applies `op` to the header in `buf` and checks every state a crash could read meanwhile
/// (explored as `ex` says). Returns the new bytes and what the edit returned (`None`: refused,
/// full).
fn apply_checked(
    buf: Vec<u8>,
    op: &Op,
    bits: &mut [bool],
    ix: &mut Ix,
    ex: &Explore,
) -> Result<(Vec<u8>, Option<usize>), TestCaseError> {
    let before = view(&buf);
    let (s, e, add) = match *op {
        Op::Add(s, e) => (s, e, true),
        Op::Remove(s, e) => (s, e, false),
    };
    let mut want = bits.to_vec();
    for b in &mut want[s as usize..=e as usize] {
        *b = add;
    }
    let r = MemRange {
        start: s * UNIT,
        end: (e + 1) * UNIT - 1,
    };
    let orig = buf.clone();
    let mut h = recorded(buf, ix);
    let res = if add { h.add_ram(r) } else { h.remove_ram(r) };
    prop_assert!(h.index_matches(), "index out of step after {:?}", op);
    let rec = h.into_segment();
    let n = match res {
        Err(EditError::Full {
            need,
            free,
            capacity,
        }) => {
            prop_assert!(rec.stores.is_empty(), "a refused edit writes nothing");
            prop_assert_eq!(&rec.buf, &orig);
            prop_assert!(need > free && capacity > 0);
            return Ok((rec.buf, None));
        }
        Err(e) => return Err(TestCaseError::fail(format!("{op:?}: {e}"))),
        Ok(n) => n,
    };
    let after = View {
        ram: units_to_ranges(&want)
            .iter()
            .map(|r| (r.start, r.end))
            .collect(),
        ..before.clone()
    };
    check_every_state(
        &rec,
        Barriers::AroundCommits,
        ex,
        &format!("{op:?}"),
        edit_invariant(&before, &after),
    )
    .map_err(TestCaseError::fail)?;
    prop_assert_eq!(view(&rec.buf), after);
    bits.copy_from_slice(&want);
    Ok((rec.buf, Some(n)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any sequence of edits keeps every state a crash could read valid and exactly old-or-new,
    /// and ends where a from-scratch build of the same ranges is.
    #[test]
    fn incremental_edits_are_crash_consistent_and_match_a_rebuild(
        init in proptest::collection::vec(any::<bool>(), UNITS as usize),
        ops in proptest::collection::vec(op(), 1..40),
        spare in 8usize..48,
        seed in any::<u64>(),
    ) {
        let mut bits = init.clone();
        let ram = units_to_ranges(&init);
        let mut buf = built(&ram, CPU_NOTES.len() + 2 + ram.len() + spare);
        let mut ix = index_for(buf.len());
        for (k, op) in ops.iter().enumerate() {
            let ex = light(seed.wrapping_add(k as u64));
            buf = apply_checked(buf, op, &mut bits, &mut ix, &ex)?.0;
        }
        let rebuilt = built(&units_to_ranges(&bits), 600);
        prop_assert_eq!(view(&buf), view(&rebuilt));
    }
}

/// The last visible program header.
fn last_phdr(bytes: &[u8]) -> ProgramHeader {
    let phdrs = parse(bytes).expect("valid");
    phdrs.last().expect("entries").clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Each kind of edit, on a random table, explored deeply: every state a crash could read,
    /// with any subset of the writes between two barriers visible, is valid and exactly
    /// old-or-new. The kinds: removing a whole entry (a tombstone), adding a range into that
    /// tombstone, adding one past `e_phnum`, adding a range that needs two entries, removing the
    /// middle of an entry (two remainders), removing a range over two entries, removing the last
    /// entry (the trim), adopting the notes of a userspace header.
    #[test]
    fn every_kind_of_edit_is_crash_consistent_with_any_visible_subset(
        layout in proptest::collection::vec((1u64..6, 1u64..6), 8..24),
        present in 1usize..=3,
        text in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut bits = vec![false; UNITS as usize];
        let mut r = Vec::new();
        let mut pos = 0;
        for (k, &(gap, len)) in layout.iter().enumerate() {
            let len = if k == 0 { len + 2 } else { len };
            let start = pos + gap;
            pos = start + len;
            bits[start as usize..pos as usize].fill(true);
            r.push((start, pos - 1));
        }
        let ram = units_to_ranges(&bits);
        prop_assert_eq!(ram.len(), r.len());
        let mut buf = built(&ram, CPU_NOTES.len() + 2 + ram.len() + 16);
        let mut ix = index_for(buf.len());
        let mut edit = |buf: Vec<u8>, op: Op, k: u64, bits: &mut Vec<bool>| {
            apply_checked(buf, &op, bits, &mut ix, &deep(seed.wrapping_add(k)))
        };
        // A whole entry that is not the last: one store, a tombstone.
        let (n0, nulls0) = table(&buf);
        let (b, n) = edit(buf, Op::Remove(r[2].0, r[2].1), 0, &mut bits)?;
        prop_assert_eq!((n, table(&b)), (Some(1), (n0, nulls0 + 1)));
        // One piece, into that tombstone: payload, then its p_type.
        let (b, n) = edit(b, Op::Add(r[1].0 - 1, r[1].0 - 1), 1, &mut bits)?;
        prop_assert_eq!((n, table(&b)), (Some(1), (n0, nulls0)));
        // One piece past e_phnum: payload, then e_phnum.
        let (b, n) = edit(b, Op::Add(r[3].0 - 1, r[3].0 - 1), 2, &mut bits)?;
        prop_assert_eq!((n, table(&b)), (Some(1), (n0 + 1, nulls0)));
        // Two pieces (around r[4]): both past e_phnum, one e_phnum store.
        let (b, n) = edit(b, Op::Add(r[4].0 - 1, r[5].0 - 1), 3, &mut bits)?;
        prop_assert_eq!((n, table(&b)), (Some(2), (n0 + 3, nulls0)));
        // The middle of an entry: two remainders, then the tombstone of the original.
        let (b, n) = edit(b, Op::Remove(r[0].0 + 1, r[0].0 + 1), 4, &mut bits)?;
        prop_assert_eq!((n, table(&b)), (Some(1), (n0 + 5, nulls0 + 1)));
        // Two entries: copies of their insides past e_phnum, tombstones, copies dropped.
        let (b, n) = edit(b, Op::Remove(r[6].0, r[7].1), 5, &mut bits)?;
        prop_assert_eq!(n, Some(2));
        prop_assert_eq!(table(&b).1, nulls0 + 3);
        // The last entry: a tombstone, then the trim lowers e_phnum.
        let last = last_phdr(&b);
        prop_assert_eq!(last.p_type, goblin::elf::program_header::PT_LOAD);
        let (s, e) = (last.p_paddr / UNIT, (last.p_paddr + last.p_memsz) / UNIT - 1);
        let before = table(&b).0;
        let (b, n) = edit(b, Op::Remove(s, e), 6, &mut bits)?;
        prop_assert_eq!(n, Some(1));
        prop_assert!(table(&b).0 < before, "the trim lowered e_phnum");
        buf = b;
        prop_assert_eq!(view(&buf), view(&built(&units_to_ranges(&bits), 600)));
        // Adopting the notes of a userspace header of the same memory.
        let ubuf = user_header(&units_to_ranges(&bits), present, text);
        let before = view(&ubuf);
        let mut uix = index_for(ubuf.len());
        let mut h = recorded(ubuf, &mut uix);
        prop_assert_eq!(h.adopt_notes(&CPU_NOTES, 0x150), Ok(CPU_NOTES.len() - present));
        let rec = h.into_segment();
        let after = view(&rec.buf);
        let inv = adopt_invariant(&before, &after);
        check_every_state(&rec, Barriers::AroundCommits, &deep(seed), "adopt_notes", &inv)
            .map_err(TestCaseError::fail)?;
        // With a barrier before each commit only, the judge sees the tombstone overtaken.
        let old = check_every_state(&rec, Barriers::BeforeCommits, &deep(seed), "adopt_notes", &inv);
        prop_assert!(
            old.as_ref().is_err_and(|m| m.contains("NOT visible")),
            "barriers before commits only: {:?}",
            old
        );
    }
}

/// The judge must see what issue 11 (finding 3) describes: with a write barrier before each
/// commit only, `adopt_notes` tombstones a slot and rewrites the slot's other bytes, and those
/// bytes may become visible before the tombstone: a crash reads the old `PT_LOAD` type with a
/// note's addresses. With a barrier on both sides of every commit, no state is invalid.
#[test]
fn a_commit_not_ordered_before_later_writes_is_caught() {
    let ram = [
        MemRange {
            start: 0x10_0000,
            end: 0x7fff_ffff,
        },
        MemRange {
            start: 0x1_0000_0000,
            end: 0x1_3fff_ffff,
        },
    ];
    let buf = user_header(&ram, 2, true);
    let before = view(&buf);
    let mut ix = index_for(buf.len());
    let mut h = recorded(buf, &mut ix);
    assert_eq!(h.adopt_notes(&CPU_NOTES, 0x150), Ok(2));
    let rec = h.into_segment();
    let after = view(&rec.buf);
    let inv = adopt_invariant(&before, &after);
    let ex = deep(1);
    let old = check_every_state(&rec, Barriers::BeforeCommits, &ex, "adopt_notes", &inv)
        .expect_err("a barrier before commits only must let the payload overtake the tombstone");
    println!("{old}");
    // The note goes into slot 3 (after two CPU notes and VMCOREINFO), where the kernel text was.
    for part in [
        "adopt_notes: BeforeCommits: epoch",
        "commit of 4 bytes at 0xe8 (p_type of slot 3): NOT visible",
        "write of 52 bytes at 0xec (slot 3 +4): ",
        "kernel text [",
    ] {
        assert!(old.contains(part), "{part:?} missing from: {old}");
    }
    let states = check_every_state(&rec, Barriers::AroundCommits, &ex, "adopt_notes", &inv)
        .expect("a barrier on both sides of every commit");
    println!("barriers around commits: {states} states, all valid");
    assert!(states > 100);
}

#[test]
fn removing_a_whole_entry_is_one_store_and_slots_are_reused() {
    let ram = [
        MemRange {
            start: 0,
            end: 0xfff,
        },
        MemRange {
            start: 0x10_0000,
            end: 0x10_ffff,
        },
    ];
    let buf = built(&ram, 16);
    let mut ix = index_for(buf.len());
    let mut h = recorded(buf, &mut ix);
    let before = h.usage();
    h.remove_ram(ram[1]).expect("remove");
    assert_eq!(
        h.segment().stores.len(),
        2,
        "tombstone + trim of the trailing tombstone"
    );
    h.add_ram(MemRange {
        start: 0x20_0000,
        end: 0x20_ffff,
    })
    .expect("add");
    h.remove_ram(MemRange {
        start: 0x20_0000,
        end: 0x20_ffff,
    })
    .expect("remove");
    for i in 0..100u64 {
        let r = MemRange {
            start: 0x100_0000 * (i % 7 + 2),
            end: 0x100_0000 * (i % 7 + 2) + 0xfff,
        };
        h.add_ram(r).expect("add");
        h.remove_ram(r).expect("remove");
    }
    let u = h.usage();
    assert_eq!(
        u.phnum,
        before.phnum - 1,
        "add/remove cycles do not grow the table"
    );
    assert_eq!(u.ram_loads, 1);
}

#[test]
fn full_header_refuses_and_stays_unchanged() {
    let ram = [MemRange {
        start: 0,
        end: 0xfff,
    }];
    let n = CPU_NOTES.len() + 2 + 1;
    let buf = built(&ram, n + 1);
    let mut copy = buf.clone();
    let mut ix = index_for(copy.len());
    let mut h = Elfcorehdr::open(&mut copy[..], PAGE_OFFSET, &mut ix).expect("valid");
    assert_eq!(
        h.add_ram(MemRange {
            start: 0x10000,
            end: 0x10fff
        }),
        Ok(1)
    );
    let full = h.add_ram(MemRange {
        start: 0x20000,
        end: 0x20fff,
    });
    assert_eq!(
        full,
        Err(EditError::Full {
            need: 1,
            free: 0,
            capacity: n + 1
        })
    );
    // Splitting an entry needs slots for both remainders.
    assert_eq!(
        h.remove_ram(MemRange {
            start: 0x10400,
            end: 0x107ff
        }),
        Err(EditError::Full {
            need: 2,
            free: 0,
            capacity: n + 1
        })
    );
    assert_eq!(h.usage().ram_loads, 2);
}

proptest! {
    /// Adopting a userspace-built header (notes for the CPUs present at load only) adds the
    /// missing notes in CPU order, changes nothing else, and every state a crash could read
    /// meanwhile is valid.
    #[test]
    fn adopting_notes_is_crash_consistent_and_keeps_cpu_order(
        ram_bits in proptest::collection::vec(any::<bool>(), UNITS as usize),
        present in 1usize..=4,
        text in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let ram = units_to_ranges(&ram_bits);
        let buf = user_header(&ram, present, text);
        let before = view(&buf);
        let mut ix = index_for(buf.len());
        let mut h = recorded(buf, &mut ix);
        let added = h.adopt_notes(&CPU_NOTES, 0x150).expect("room");
        prop_assert!(h.index_matches());
        prop_assert_eq!(added, CPU_NOTES.len() - present);
        let rec = h.into_segment();
        let after = view(&rec.buf);
        check_every_state(
            &rec,
            Barriers::AroundCommits,
            &deep(seed),
            "adopt_notes",
            adopt_invariant(&before, &after),
        )
        .map_err(TestCaseError::fail)?;
        prop_assert_eq!(&after.ram, &before.ram);
        // Register notes in CPU order: the CPU notes appear in address (= CPU) order.
        let phdrs = parse(&rec.buf).expect("valid");
        let cpu_order: Vec<u64> = phdrs
            .iter()
            .filter(|p| p.p_type == goblin::elf::program_header::PT_NOTE && CPU_NOTES.contains(&p.p_paddr))
            .map(|p| p.p_paddr)
            .collect();
        prop_assert_eq!(cpu_order, CPU_NOTES.to_vec());
    }
}

/// Thousands of block-sized edits on a header with thousands of ranges (deep treap, many
/// rotations): the index stays exact and the header ends as a from-scratch build.
#[test]
fn index_stays_exact_over_thousands_of_edits() {
    const BLOCKS: u64 = 4096;
    let mut bits: Vec<bool> = (0..BLOCKS).map(|i| i % 3 != 1).collect();
    let ram = units_to_ranges(&bits);
    let mut buf = built(&ram, CPU_NOTES.len() + 2 + BLOCKS as usize);
    let mut ix = index_for(buf.len());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for k in 0..6000u32 {
        // xorshift64: a fixed pseudo-random sequence.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = state % BLOCKS;
        let len = 1 + (state >> 40) % 3;
        let e = (b + len - 1).min(BLOCKS - 1);
        let r = MemRange {
            start: b * UNIT,
            end: (e + 1) * UNIT - 1,
        };
        let add = state & (1 << 20) != 0;
        let mut h = Elfcorehdr::open(&mut buf[..], PAGE_OFFSET, &mut ix).expect("valid");
        if add {
            h.add_ram(r).expect("room");
        } else {
            h.remove_ram(r).expect("room");
        }
        if k % 250 == 0 {
            assert!(h.index_matches(), "index out of step after edit {k}");
        }
        for x in &mut bits[b as usize..=e as usize] {
            *x = add;
        }
    }
    let h = Elfcorehdr::open(&mut buf[..], PAGE_OFFSET, &mut ix).expect("valid");
    assert!(h.index_matches());
    let rebuilt = built(
        &units_to_ranges(&bits),
        CPU_NOTES.len() + 2 + BLOCKS as usize,
    );
    assert_eq!(view(&buf), view(&rebuilt));
}

/// More program headers than `e_phnum` can count (issue 11, finding 9): refused before any
/// arithmetic on the count, however large, and before any write.
#[test]
fn too_many_program_headers_are_refused_without_overflow() {
    use crash_hotplug_model::{
        elf::{build_with, EHDR_SIZE, MAX_PHNUM, PHDR_SIZE},
        TooSmall,
    };
    let mut buf = vec![0xa5u8; EHDR_SIZE + 8 * PHDR_SIZE];
    let have = buf.len();
    for (n, need) in [
        (MAX_PHNUM + 1, EHDR_SIZE + (MAX_PHNUM + 1) * PHDR_SIZE),
        (usize::MAX / PHDR_SIZE, usize::MAX),
        (usize::MAX / PHDR_SIZE + 1, usize::MAX),
        (usize::MAX, usize::MAX),
    ] {
        let r = build_with(&mut buf, 62, 0, n, |_| None);
        assert_eq!(r, Err(TooSmall { need, have }), "{n} program headers");
        assert!(buf.iter().all(|&b| b == 0xa5), "{n}: nothing written");
    }
    // The same through a spec: one more RAM range than e_phnum can count.
    let ram: Vec<MemRange> = (0..MAX_PHNUM as u64)
        .map(|i| MemRange {
            start: i * 0x2000,
            end: i * 0x2000 + 0xfff,
        })
        .collect();
    let mut big = vec![0u8; EHDR_SIZE + (MAX_PHNUM + 8) * PHDR_SIZE];
    let s = spec(&ram);
    assert!(s.phnum() > MAX_PHNUM);
    assert_eq!(
        build(&mut big, &s),
        Err(TooSmall {
            need: EHDR_SIZE + s.phnum() * PHDR_SIZE,
            have: big.len()
        })
    );
}

/// A segment whose plain writes are lost (commits land): its bytes past `e_phnum` keep whatever
/// they held, as when memory changes behind the editor.
struct LosesWrites(Vec<u8>);

impl crash_hotplug_model::Segment for LosesWrites {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0[off..off + buf.len()]);
    }
    fn write(&mut self, _off: usize, _data: &[u8]) {}
    fn commit(&mut self, off: usize, data: &[u8]) {
        self.0[off..off + data.len()].copy_from_slice(data);
    }
}

/// An index that does not describe the segment makes the edit fail, and the next open rebuild it
/// (issue 11, finding 9: `let _ =` discarded the overlap, and the edit reported success).
#[test]
fn an_index_out_of_step_with_the_segment_fails_the_edit() {
    let r = |s: u64, e: u64| MemRange {
        start: s * UNIT,
        end: (e + 1) * UNIT - 1,
    };
    // 1. adopt_notes rebuilds the index from the table: the segment was replaced behind the
    //    index (same e_phnum) by one whose RAM entries overlap.
    let a = user_header(&[r(10, 19), r(40, 49)], 2, true);
    let mut ix = index_for(a.len());
    drop(recorded(a, &mut ix));
    let b = user_header(&[r(10, 19), r(15, 49)], 2, true);
    let mut h = Elfcorehdr::open(Journal::new(b), PAGE_OFFSET, &mut ix).expect("index kept");
    let res = h.adopt_notes(&CPU_NOTES, 0x150);
    let after = h.remove_ram(r(40, 49));
    let e = res.expect_err(&format!(
        "adopt_notes over an overlapping table; then remove_ram returned {after:?}"
    ));
    println!("adopt_notes: {e}");
    assert_eq!(
        e,
        EditError::IndexDrift {
            range: r(10, 19),
            listed: r(15, 49)
        }
    );
    assert!(!h.index_matches());
    let b = h.into_segment().buf;
    // The next open scans the table again, and refuses it.
    assert_eq!(
        Elfcorehdr::open(&mut b.clone()[..], PAGE_OFFSET, &mut ix).err(),
        Some(HeaderError::Overlap {
            range: r(10, 19),
            listed: r(15, 49)
        })
    );
    // 2. The pieces of an add are read back from the segment to be listed: the segment lost
    //    them, and past e_phnum it holds a stale copy of a listed entry.
    let mut buf = built(&[r(10, 19)], 16);
    let phnum = CPU_NOTES.len() + 3;
    let listed = buf[64 + (phnum - 1) * 56..64 + phnum * 56].to_vec();
    buf[64 + phnum * 56..64 + (phnum + 1) * 56].copy_from_slice(&listed);
    let mut ix = index_for(buf.len());
    let mut h = Elfcorehdr::open(LosesWrites(buf), PAGE_OFFSET, &mut ix).expect("valid");
    let e = h
        .add_ram(r(0, 30))
        .expect_err("two pieces lost, a listed range read back in their place");
    println!("add_ram: {e}");
    assert_eq!(
        e,
        EditError::IndexDrift {
            range: r(10, 19),
            listed: r(10, 19)
        }
    );
    assert!(!h.index_matches());
    // A lost piece that reads back as no RAM entry at all.
    let buf = built(&[r(10, 19)], 16);
    let mut ix = index_for(buf.len());
    let mut h = Elfcorehdr::open(LosesWrites(buf), PAGE_OFFSET, &mut ix).expect("valid");
    let e = h.add_ram(r(0, 30)).expect_err("two pieces lost");
    println!("add_ram: {e}");
    assert_eq!(e, EditError::ReadBack { slot: phnum });
    assert!(!h.index_matches());
}
