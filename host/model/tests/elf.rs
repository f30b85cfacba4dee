//! The elfcorehdr model against goblin: every byte state that any edit passes through must parse
//! as a valid ELF64 core header whose notes never change and whose RAM `PT_LOAD`s cover exactly
//! the old or exactly the new set of addresses; after any sequence of edits the header lists the
//! same notes and addresses as one built from scratch.

mod common;
use common::Recorder;

use crash_hotplug_model::{
    build, slots, EditError, Elfcorehdr, HeaderSpec, Index, KernelText, MemRange, Node,
};
use goblin::{
    container::{Container, Ctx},
    elf::{header::ET_CORE, program_header::ProgramHeader, Elf},
};
use proptest::prelude::*;

const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
const UNIT: u64 = 0x1000;
const UNITS: u64 = 256;
const CPU_NOTES: [u64; 4] = [0x7f00_0000, 0x7f00_1000, 0x7f00_2000, 0x7f00_3000];
const TEXT: KernelText = KernelText {
    vaddr: 0xffff_ffff_8100_0000,
    paddr: 0x100_0000,
    size: 0x20_0000,
};

type Ix = Index<Vec<Node>>;

/// An index for headers of `len` bytes.
fn index_for(len: usize) -> Ix {
    Index::new(vec![Node::EMPTY; slots(len)])
}

/// Opens `buf` as a header whose stores are recorded, with index `ix` (built at the first open,
/// kept up to date by the edits after that).
fn recorded(buf: Vec<u8>, ix: &mut Ix) -> Elfcorehdr<'_, Recorder, Vec<Node>> {
    let h = Elfcorehdr::open(Recorder::new(buf), PAGE_OFFSET, ix).expect("valid");
    assert!(h.index_matches(), "index after open");
    h
}

/// What a reader of the header would dump: the notes and the union of the RAM ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    notes: Vec<(u64, u64)>,
    ram: Vec<(u64, u64)>,
    text: Vec<(u64, u64, u64)>,
}

/// goblin's reading of a header.
fn view(bytes: &[u8]) -> View {
    let h = Elf::parse_header(bytes).expect("ELF header");
    assert_eq!(h.e_type, ET_CORE);
    // The capture kernel reads the program headers right after the ELF header, whatever
    // e_phoff says; a header that relies on e_phoff would be misread.
    assert_eq!(h.e_phoff, 64, "program headers must follow the ELF header");
    assert_eq!(h.container().expect("class"), Container::Big);
    assert!(h.endianness().expect("data").is_little());
    let ctx = Ctx::new(Container::Big, h.endianness().expect("endian"));
    let phdrs =
        ProgramHeader::parse(bytes, h.e_phoff as usize, h.e_phnum as usize, ctx).expect("phdrs");
    let mut notes = Vec::new();
    let mut ram = Vec::new();
    let mut text = Vec::new();
    // The capture kernel merges the notes assuming they are the first program headers.
    let leading = phdrs
        .iter()
        .take_while(|p| p.p_type == goblin::elf::program_header::PT_NOTE)
        .count();
    let total = phdrs
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_NOTE)
        .count();
    assert_eq!(leading, total, "PT_NOTEs must be the first program headers");
    for p in phdrs {
        match p.p_type {
            goblin::elf::program_header::PT_NOTE => notes.push((p.p_paddr, p.p_memsz)),
            goblin::elf::program_header::PT_LOAD => {
                assert_eq!(p.p_filesz, p.p_memsz);
                assert_eq!(p.p_offset, p.p_paddr);
                if p.p_vaddr == p.p_paddr.wrapping_add(PAGE_OFFSET) {
                    ram.push((p.p_paddr, p.p_paddr + p.p_memsz - 1));
                } else {
                    text.push((p.p_vaddr, p.p_paddr, p.p_memsz));
                }
            }
            goblin::elf::program_header::PT_NULL => {}
            t => panic!("unexpected p_type {t}"),
        }
    }
    notes.sort_unstable();
    View {
        notes,
        ram: union(ram),
        text,
    }
}

fn union(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn units_to_ranges(bits: &[bool]) -> Vec<MemRange> {
    let mut out: Vec<MemRange> = Vec::new();
    for (i, b) in bits.iter().enumerate() {
        if *b {
            let (s, e) = (i as u64 * UNIT, (i as u64 + 1) * UNIT - 1);
            match out.last_mut() {
                Some(l) if l.end + 1 == s => l.end = e,
                _ => out.push(MemRange { start: s, end: e }),
            }
        }
    }
    out
}

fn spec(ram: &[MemRange]) -> HeaderSpec<'_> {
    HeaderSpec {
        machine: 62,
        page_offset: PAGE_OFFSET,
        cpu_notes: &CPU_NOTES,
        cpu_note_size: 0x150,
        vmcoreinfo: (0x7e00_0000, 0x1000),
        kernel_text: Some(TEXT),
        ram,
    }
}

fn built(ram: &[MemRange], slots: usize) -> Vec<u8> {
    let mut buf = vec![0xa5u8; 64 + slots * 56];
    build(&mut buf, &spec(ram)).expect("fits");
    buf
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

/// Applies `op` to the header in `buf`, checks every intermediate state, returns the new bytes.
fn apply_checked(
    buf: Vec<u8>,
    op: &Op,
    bits: &mut [bool],
    ix: &mut Ix,
) -> Result<Vec<u8>, TestCaseError> {
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
    let res = if add {
        h.add_ram(r).map(|_| ())
    } else {
        h.remove_ram(r).map(|_| ())
    };
    prop_assert!(h.index_matches(), "index out of step after {:?}", op);
    let rec = h.into_segment();
    match res {
        Err(EditError::Full {
            need,
            free,
            capacity,
        }) => {
            prop_assert!(rec.states.is_empty(), "a refused edit writes nothing");
            prop_assert_eq!(&rec.buf, &orig);
            prop_assert!(need > free && capacity > 0);
            return Ok(rec.buf);
        }
        Ok(()) => {}
    }
    let after = View {
        ram: units_to_ranges(&want)
            .iter()
            .map(|r| (r.start, r.end))
            .collect(),
        ..before.clone()
    };
    for (k, st) in rec.states.iter().enumerate() {
        let v = view(st);
        prop_assert_eq!(&v.notes, &before.notes, "notes changed at store {}", k);
        prop_assert_eq!(&v.text, &before.text, "kernel text changed at store {}", k);
        prop_assert!(
            v.ram == before.ram || v.ram == after.ram,
            "store {} of {:?}: {:?} is neither old {:?} nor new {:?}",
            k,
            op,
            v.ram,
            before.ram,
            after.ram
        );
    }
    prop_assert_eq!(view(&rec.buf), after);
    bits.copy_from_slice(&want);
    Ok(rec.buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any sequence of edits keeps every intermediate state valid and exactly old-or-new, and
    /// ends where a from-scratch build of the same ranges is.
    #[test]
    fn incremental_edits_are_crash_consistent_and_match_a_rebuild(
        init in proptest::collection::vec(any::<bool>(), UNITS as usize),
        ops in proptest::collection::vec(op(), 1..40),
        spare in 8usize..48,
    ) {
        let mut bits = init.clone();
        let ram = units_to_ranges(&init);
        let mut buf = built(&ram, CPU_NOTES.len() + 2 + ram.len() + spare);
        let mut ix = index_for(buf.len());
        for op in &ops {
            buf = apply_checked(buf, op, &mut bits, &mut ix)?;
        }
        let rebuilt = built(&units_to_ranges(&bits), 600);
        prop_assert_eq!(view(&buf), view(&rebuilt));
    }
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
        h.segment().states.len(),
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
    /// Adopting a userspace-built header (notes for the CPUs present at load only) appends the
    /// missing notes with one store, in CPU order, and changes nothing else.
    #[test]
    fn adopting_notes_is_one_store_and_keeps_cpu_order(
        ram_bits in proptest::collection::vec(any::<bool>(), UNITS as usize),
        present in 1usize..=4,
    ) {
        let ram = units_to_ranges(&ram_bits);
        let mut user = spec(&ram);
        user.cpu_notes = &CPU_NOTES[..present];
        let mut buf = vec![0u8; 64 + 600 * 56];
        build(&mut buf, &user).expect("fits");
        let before = view(&buf);
        let mut ix = index_for(buf.len());
        let mut h = recorded(buf, &mut ix);
        let added = h.adopt_notes(&CPU_NOTES, 0x150).expect("room");
        prop_assert!(h.index_matches());
        prop_assert_eq!(added, CPU_NOTES.len() - present);
        let rec = h.into_segment();
        let after = view(&rec.buf);
        // Every state: valid, notes a prefix (checked by view), same RAM and text, notes growing
        // from the old set to the new one.
        for st in &rec.states {
            let v = view(st);
            prop_assert_eq!(&v.ram, &before.ram);
            // A moved entry is listed twice for one store: the same map, once more.
            let mut text = v.text.clone();
            text.dedup();
            prop_assert_eq!(&text, &before.text);
            prop_assert!(before.notes.iter().all(|n| v.notes.contains(n)));
            prop_assert!(v.notes.iter().all(|n| after.notes.contains(n)));
        }
        prop_assert_eq!(&after.ram, &before.ram);
        // Register notes in CPU order: the CPU notes appear in address (= CPU) order.
        let h = Elf::parse_header(&rec.buf).expect("header");
        let ctx = Ctx::new(Container::Big, h.endianness().expect("endian"));
        let phdrs = ProgramHeader::parse(&rec.buf, 64, h.e_phnum as usize, ctx).expect("phdrs");
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
