//! Fuzzes the fadump capture path's parsers on untrusted bytes: the crash info header the crashed
//! kernel left, and the firmware's register save area, then the CPU notes and the elfcorehdr built
//! from whatever they accept. Nothing may panic; whatever is accepted must be self-consistent.
#![no_main]

use crash_hotplug_model::fadump::{
    build, cpu_notes_size, dump_ram, set_cpu_notes, write_cpu_notes, Abi, CrashInfo, DumpSpec,
    Endian, RegSaveArea, CPU_NOTE_SIZE, FINAL_NOTE_SIZE,
};
use crash_hotplug_model::{MemRange, RangeList};
use libfuzzer_sys::fuzz_target;

/// ppc64le, NR_CPUS=2048 (and a small variant, so that short inputs reach the mask).
const ABIS: [Abi; 2] = [
    Abi {
        endian: Endian::Little,
        pt_regs_size: 384,
        cpu_mask_size: 256,
    },
    Abi {
        endian: Endian::Little,
        pt_regs_size: 384,
        cpu_mask_size: 8,
    },
];

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the ABI and where the header ends and the save area begins.
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&cut, rest)) = rest.split_first() else {
        return;
    };
    let abi = &ABIS[usize::from(sel & 1)];
    let split = (usize::from(cut) * 8).min(rest.len());
    let split = if sel & 2 != 0 {
        CrashInfo::size(abi).min(rest.len())
    } else {
        split
    };
    let (hdr, area) = rest.split_at(split);
    let Ok(info) = CrashInfo::parse(hdr, abi) else {
        return;
    };
    assert!(hdr.len() >= CrashInfo::size(abi));
    assert!(info.version >= 1 && info.vmcoreinfo_size > 0);
    let Ok(area) = RegSaveArea::parse(area) else {
        return;
    };
    let Ok(need) = cpu_notes_size(&info, &area) else {
        return;
    };
    assert_eq!((need - FINAL_NOTE_SIZE) % CPU_NOTE_SIZE, 0);
    if need > 1 << 20 {
        return;
    }
    let mut notes = vec![0u8; need];
    let s = write_cpu_notes(&mut notes, &info, &area).expect("sized by cpu_notes_size");
    assert_eq!(s.bytes, need);
    // An elfcorehdr for a memory map derived from the input.
    let memory: Vec<MemRange> = (0..4u64)
        .map(|i| MemRange {
            start: i << 32,
            end: (i << 32) + (u64::from(sel) << 24) + 0xff_ffff,
        })
        .collect();
    let mut slots = vec![MemRange::default(); memory.len() + 1];
    let mut ram = RangeList::new(&mut slots);
    let ra = MemRange {
        start: u64::from(cut) << 28,
        end: (u64::from(cut) << 28) + 0xfff_ffff,
    };
    dump_ram(memory, 1 << 28, Some(ra), &mut ram).expect("one spare slot");
    let boot = [MemRange {
        start: 0,
        end: (1 << 28) - 1,
    }];
    let spec = DumpSpec {
        page_offset: 0xc000_0000_0000_0000,
        e_flags: 2,
        cpu_notes: (0, 0),
        vmcoreinfo: (info.vmcoreinfo_addr, info.vmcoreinfo_size),
        boot: &boot,
        boot_dest: 0x2001_0000,
        ram: ram.as_slice(),
    };
    let size = spec
        .size()
        .expect("few ranges: a countable number of program headers");
    let mut buf = vec![0u8; size];
    assert_eq!(build(&mut buf, &spec), Ok(size));
    set_cpu_notes(&mut buf, 0x1000, s.bytes as u64).expect("placeholder");
});
