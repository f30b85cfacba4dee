//! Device-backed vmemmaps (pmem/dax in `map=dev` mode, issue 13) in the elfcorehdr: their
//! `PT_LOAD`s are added and removed crash-consistently, interleaved with RAM edits, each kind only
//! by its own events; the index tells them apart after a rebuild from the segment; and the
//! header stays one that makedumpfile and crash read right (their `PAGE_OFFSET` and kernel-text
//! rules on `p_vaddr`, seen from goblin's parse).

#[path = "common/order.rs"]
#[allow(dead_code)]
mod order;
use order::{check_every_state, Barriers, Explore, Journal};

use crash_hotplug_model::{
    build, slots, EditError, Elfcorehdr, HeaderSpec, Index, KernelText, MemRange, Node,
    PF_DEV_VMEMMAP, PF_RWX,
};
use goblin::elf::{
    program_header::{ProgramHeader, PT_LOAD, PT_NOTE, PT_NULL},
    Elf,
};
use proptest::prelude::*;

const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
/// x86_64 `__START_KERNEL_map`: makedumpfile and crash take a `PT_LOAD` at or above it for the
/// kernel text.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
const UNIT: u64 = 0x1000;
/// RAM lives in units `0..UNITS`, device vmemmaps in `UNITS..2 * UNITS` (in the kernel they never
/// intersect: `memremap_pages()` refuses a range that intersects System RAM).
const UNITS: u64 = 96;
const CPU_NOTES: [u64; 2] = [0x7f00_0000, 0x7f00_1000];
const TEXT: KernelText = KernelText {
    vaddr: 0xffff_ffff_8100_0000,
    paddr: 0x100_0000,
    size: 0x20_0000,
};

type Ix = Index<Vec<Node>>;

fn range(s: u64, e: u64) -> MemRange {
    MemRange {
        start: s * UNIT,
        end: (e + 1) * UNIT - 1,
    }
}

/// What a reader of the header dumps, split by `p_flags`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    notes: Vec<(u64, u64)>,
    ram: Vec<u64>,
    device: Vec<u64>,
    text: Vec<(u64, u64, u64)>,
}

/// goblin's reading of a header, by unit; or why it is not one the capture kernel and the dump
/// tools read as we do.
fn try_view(bytes: &[u8]) -> Result<View, String> {
    let elf = Elf::parse(bytes).map_err(|e| format!("goblin: {e}"))?;
    if elf.header.e_phoff != 64 {
        return Err(format!("e_phoff {:#x}", elf.header.e_phoff));
    }
    let phdrs: &[ProgramHeader] = &elf.program_headers;
    let leading = phdrs.iter().take_while(|p| p.p_type == PT_NOTE).count();
    if phdrs.iter().filter(|p| p.p_type == PT_NOTE).count() != leading {
        return Err("PT_NOTEs must lead".into());
    }
    let (mut notes, mut ram, mut device, mut text) = (vec![], vec![], vec![], vec![]);
    for (i, p) in phdrs.iter().enumerate() {
        match p.p_type {
            PT_NOTE => notes.push((p.p_paddr, p.p_memsz)),
            PT_NULL => {}
            PT_LOAD if p.p_vaddr >= START_KERNEL_MAP => {
                text.push((p.p_vaddr, p.p_paddr, p.p_memsz))
            }
            PT_LOAD => {
                if p.p_offset != p.p_paddr
                    || p.p_filesz != p.p_memsz
                    || p.p_memsz == 0
                    || p.p_vaddr != p.p_paddr.wrapping_add(PAGE_OFFSET)
                {
                    return Err(format!("PT_LOAD {i} is not a direct-map load: {p:x?}"));
                }
                let units = (p.p_paddr / UNIT..(p.p_paddr + p.p_memsz) / UNIT).collect::<Vec<_>>();
                match p.p_flags {
                    PF_RWX => ram.extend(units),
                    f if f == PF_RWX | PF_DEV_VMEMMAP => device.extend(units),
                    f => return Err(format!("PT_LOAD {i}: p_flags {f:#x}")),
                }
            }
            t => return Err(format!("program header {i}: p_type {t:#x}")),
        }
    }
    for v in [&mut ram, &mut device] {
        v.sort_unstable();
        v.dedup();
    }
    notes.sort_unstable();
    Ok(View {
        notes,
        ram,
        device,
        text,
    })
}

fn view(bytes: &[u8]) -> View {
    try_view(bytes).unwrap_or_else(|e| panic!("{e}"))
}

fn units(bits: &[bool]) -> Vec<u64> {
    (0..bits.len() as u64)
        .filter(|&u| bits[u as usize])
        .collect()
}

fn to_ranges(bits: &[bool]) -> Vec<MemRange> {
    let mut out: Vec<MemRange> = Vec::new();
    for u in units(bits) {
        match out.last_mut() {
            Some(l) if l.end + 1 == u * UNIT => l.end = (u + 1) * UNIT - 1,
            _ => out.push(range(u, u)),
        }
    }
    out
}

fn built(ram: &[MemRange], spare: usize) -> Vec<u8> {
    let spec = HeaderSpec {
        machine: 62,
        page_offset: PAGE_OFFSET,
        cpu_notes: &CPU_NOTES,
        cpu_note_size: 0x150,
        vmcoreinfo: (0x7e00_0000, 0x1000),
        kernel_text: Some(TEXT),
        ram,
    };
    let mut buf = vec![0xa5u8; 64 + (spec.phnum() + spare) * 56];
    build(&mut buf, &spec).expect("fits");
    buf
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Ram(bool, u64, u64),
    Device(bool, u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    (any::<bool>(), any::<bool>(), 0..UNITS, 1u64..16).prop_map(|(dev, add, s, n)| {
        let e = (s + n).min(UNITS) - 1;
        if dev {
            Op::Device(add, UNITS + s, UNITS + e)
        } else {
            Op::Ram(add, s, e)
        }
    })
}

/// Applies `op` with journalled stores, checks every state a crash could read meanwhile (notes
/// and kernel text unchanged, the edited kind old-or-new, the other kind unchanged), and returns
/// the new bytes.
fn apply_checked(
    buf: Vec<u8>,
    op: Op,
    ram: &mut [bool],
    dev: &mut [bool],
    ix: &mut Ix,
    ex: &Explore,
) -> Result<Vec<u8>, TestCaseError> {
    let before = view(&buf);
    let (mut want_ram, mut want_dev) = (ram.to_vec(), dev.to_vec());
    let (bits, add, s, e) = match op {
        Op::Ram(add, s, e) => (&mut want_ram, add, s, e),
        Op::Device(add, s, e) => (&mut want_dev, add, s, e),
    };
    for b in &mut bits[s as usize..=e as usize] {
        *b = add;
    }
    let after = View {
        ram: units(&want_ram),
        device: units(&want_dev),
        ..before.clone()
    };
    let orig = buf.clone();
    let mut h = Elfcorehdr::open(Journal::new(buf), PAGE_OFFSET, ix).expect("valid");
    let r = range(s, e);
    let res = match op {
        Op::Ram(true, ..) => h.add_ram(r),
        Op::Ram(false, ..) => h.remove_ram(r),
        Op::Device(true, ..) => h.add_device_vmemmap(r),
        Op::Device(false, ..) => h.remove_device_vmemmap(r),
    };
    prop_assert!(h.index_matches(), "index out of step after {:?}", op);
    let usage = h.usage();
    let rec = h.into_segment();
    match res {
        Ok(_) => {}
        Err(EditError::Full { need, free, .. }) => {
            // Refused before the first store: nothing changed.
            prop_assert!(
                need > free && rec.stores.is_empty(),
                "{:?} refused after stores",
                op
            );
            prop_assert_eq!(&rec.buf, &orig);
            return Ok(rec.buf);
        }
        Err(e) => return Err(TestCaseError::fail(format!("{op:?}: {e}"))),
    }
    ram.copy_from_slice(&want_ram);
    dev.copy_from_slice(&want_dev);
    check_every_state(
        &rec,
        Barriers::AroundCommits,
        ex,
        &format!("{op:?}"),
        |st: &[u8]| {
            let v = try_view(st)?;
            if v.notes != before.notes || v.text != before.text {
                return Err(format!("notes or kernel text changed: {v:x?}"));
            }
            let ok = |now: &Vec<u64>, old: &Vec<u64>, new: &Vec<u64>| now == old || now == new;
            if !ok(&v.ram, &before.ram, &after.ram) {
                return Err(format!(
                    "RAM units {:?} are neither the old {:?} nor the new {:?}",
                    v.ram, before.ram, after.ram
                ));
            }
            if !ok(&v.device, &before.device, &after.device) {
                return Err(format!(
                    "device vmemmap units {:?} are neither the old {:?} nor the new {:?}",
                    v.device, before.device, after.device
                ));
            }
            Ok(())
        },
    )
    .map_err(TestCaseError::fail)?;
    let v = view(&rec.buf);
    prop_assert_eq!(&v, &after, "after {:?}", op);
    // The usage counts what is listed, per kind.
    let (mut ram_loads, mut device_loads) = (0, 0);
    let elf = Elf::parse(&rec.buf).expect("valid");
    for p in elf.program_headers.iter().filter(|p| p.p_type == PT_LOAD) {
        if p.p_flags & PF_DEV_VMEMMAP != 0 {
            device_loads += 1;
        } else if p.p_vaddr < START_KERNEL_MAP {
            ram_loads += 1;
        }
    }
    prop_assert_eq!(
        (usage.ram_loads, usage.device_loads),
        (ram_loads, device_loads)
    );
    Ok(rec.buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Interleaved RAM and device vmemmap edits: every state a crash could read is valid, the
    /// edited kind is exactly old or new and the other untouched; the index, rebuilt from the
    /// segment at any point, matches the one kept; the end state is the expected sets.
    #[test]
    fn device_vmemmap_edits_are_crash_consistent_and_kept_apart_from_ram(
        init in proptest::collection::vec(any::<bool>(), UNITS as usize),
        ops in proptest::collection::vec(op(), 1..30),
        spare in 24usize..64,
        seed in any::<u64>(),
    ) {
        let mut ram = init.clone();
        ram.resize(2 * UNITS as usize, false);
        let mut dev = vec![false; 2 * UNITS as usize];
        let mut buf = built(&to_ranges(&ram), spare);
        let mut ix = Index::new(vec![Node::EMPTY; slots(buf.len())]);
        for (k, op) in ops.iter().enumerate() {
            let ex = Explore { exhaustive: 256, store_subsets: 8, samples: 32, seed: seed ^ k as u64 };
            buf = apply_checked(buf, *op, &mut ram, &mut dev, &mut ix, &ex)?;
            // A fresh index (a new image, or after a failure) finds the same kinds by p_flags.
            let mut fresh = Index::new(vec![Node::EMPTY; slots(buf.len())]);
            let h = Elfcorehdr::open(&mut buf[..], PAGE_OFFSET, &mut fresh).expect("valid");
            prop_assert!(h.index_matches());
            prop_assert_eq!(h.device_vmemmap_ranges().count(), h.usage().device_loads);
        }
    }
}

/// makedumpfile's x86_64 rules on `p_vaddr`, as in its source (`get_page_offset_x86_64`: the
/// last `PT_LOAD` with a non-zero `p_vaddr` below `__START_KERNEL_map` gives `PAGE_OFFSET` as
/// `p_vaddr - p_paddr`; `get_phys_base_x86_64`: the first at or above it is the kernel text).
fn makedumpfile_page_offset_and_phys_base(bytes: &[u8]) -> (u64, u64) {
    let elf = Elf::parse(bytes).expect("valid");
    let loads = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect::<Vec<_>>();
    let page_offset = loads
        .iter()
        .filter(|p| p.p_vaddr != 0 && p.p_vaddr < START_KERNEL_MAP)
        .map(|p| p.p_vaddr.wrapping_sub(p.p_paddr))
        .next_back()
        .unwrap_or(0);
    let phys_base = loads
        .iter()
        .find(|p| p.p_vaddr >= START_KERNEL_MAP)
        .map_or(0, |p| p.p_paddr - (p.p_vaddr & !START_KERNEL_MAP));
    (page_offset, phys_base)
}

#[test]
fn dump_tools_find_page_offset_and_the_kernel_text_with_device_vmemmaps_last() {
    let ram = [range(0, 9), range(20, 29)];
    let mut buf = built(&ram, 8);
    let want = makedumpfile_page_offset_and_phys_base(&buf);
    assert_eq!(
        want,
        (PAGE_OFFSET, TEXT.paddr - (TEXT.vaddr & !START_KERNEL_MAP))
    );
    let mut ix = Index::new(vec![Node::EMPTY; slots(buf.len())]);
    let mut h = Elfcorehdr::open(&mut buf[..], PAGE_OFFSET, &mut ix).expect("valid");
    // A 2 MiB-aligned namespace's info block and memmap, above the RAM: appended last.
    let ns = MemRange {
        start: 0x1_4000_0000,
        end: 0x1_405f_ffff,
    };
    assert_eq!(h.add_device_vmemmap(ns), Ok(1));
    let last = h.phdr(h.usage().phnum - 1);
    println!("device vmemmap PT_LOAD: {last:x?}");
    assert_eq!(last.p_paddr, ns.start);
    assert_eq!(
        last.p_vaddr,
        PAGE_OFFSET + ns.start,
        "p_vaddr: the direct map"
    );
    assert_eq!(last.p_flags, PF_RWX | PF_DEV_VMEMMAP);
    let buf = h.into_segment();
    let got = makedumpfile_page_offset_and_phys_base(buf);
    println!(
        "makedumpfile would take page_offset {:#x}, phys_base {:#x}",
        got.0, got.1
    );
    assert_eq!(got, want);
}

#[test]
fn each_kind_is_removed_only_by_its_own_events() {
    // RAM 0-9 and 20-29, a device vmemmap 10-19 between them: one span covers all three.
    let mut buf = built(&[range(0, 9), range(20, 29)], 16);
    let mut ix = Index::new(vec![Node::EMPTY; slots(buf.len())]);
    let mut h = Elfcorehdr::open(&mut buf[..], PAGE_OFFSET, &mut ix).expect("valid");
    assert_eq!(h.add_device_vmemmap(range(10, 19)), Ok(1));
    // Adding RAM over it adds only what nothing covers.
    assert_eq!(h.add_ram(range(5, 24)), Ok(0));
    // A memory block going offline over the whole span leaves the device vmemmap alone.
    assert_eq!(h.remove_ram(range(5, 24)), Ok(2));
    assert_eq!(
        h.device_vmemmap_ranges().collect::<Vec<_>>(),
        [range(10, 19)]
    );
    assert!(h.index_matches());
    // And a device vmemmap torn down over RAM leaves the RAM alone.
    assert_eq!(h.remove_device_vmemmap(range(0, 29)), Ok(1));
    let mut ram = h.ram_ranges().collect::<Vec<_>>();
    ram.sort_by_key(|r| r.start);
    assert_eq!(ram, [range(0, 4), range(25, 29)]);
    assert_eq!(h.device_vmemmap_ranges().count(), 0);
    assert!(h.index_matches());
    // Removing it again changes nothing.
    assert_eq!(h.remove_device_vmemmap(range(10, 19)), Ok(0));
}
