//! The fadump capture-kernel model: every crash info header rejection (table), the PAPR register
//! save area reader, the CPU notes (read back with goblin's note parser), the memory ranges split
//! around the reserved area (against a bitmap model, with proptest) and the elfcorehdr (read back
//! with goblin).

use crash_hotplug_model::fadump::{
    build, cpu_notes_size, dump_ram, set_cpu_notes, str_to_u64, Abi, CrashInfo, DumpSpec, Endian,
    Gregs, HeaderError, NotesError, RegSaveArea, RegSaveError, CPU_NOTE_SIZE, CPU_UNKNOWN,
    CRASH_INFO_MAGIC, CRASH_INFO_MAGIC_OLD, ELF_NGREG, EM_PPC64, FINAL_NOTE_SIZE, NT_PRSTATUS,
    PRSTATUS_PR_REG, REG_CCR, REG_CTR, REG_LINK, REG_MSR, REG_NIP,
};
use crash_hotplug_model::{MemRange, RangeList};
use goblin::elf::{note::NoteDataIterator, program_header::PT_LOAD, program_header::PT_NOTE, Elf};
use proptest::prelude::*;

/// ppc64le with NR_CPUS=2048: `struct pt_regs` is 48 longs, `struct cpumask` 256 bytes.
const ABI: Abi = Abi {
    endian: Endian::Little,
    pt_regs_size: 384,
    cpu_mask_size: 256,
};
const PAGE_OFFSET: u64 = 0xc000_0000_0000_0000;

/// A crash info header as a ppc64le kernel writes it.
#[derive(Clone)]
struct Hdr {
    magic: u64,
    version: u32,
    crashing_cpu: u32,
    vmcoreinfo: (u64, u64),
    pt_regs_sz: u32,
    cpu_mask_sz: u32,
    regs: Vec<u64>,
    cpus: Vec<u32>,
}

impl Hdr {
    fn good() -> Self {
        Hdr {
            magic: CRASH_INFO_MAGIC,
            version: 1,
            crashing_cpu: 1,
            vmcoreinfo: (0x2_0123_4000, 0x1000),
            pt_regs_sz: ABI.pt_regs_size,
            cpu_mask_sz: ABI.cpu_mask_size,
            regs: (0..48).map(|i| 0xc0de_0000 + i).collect(),
            cpus: vec![0, 1],
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(self.magic.to_le_bytes());
        b.extend(self.version.to_le_bytes());
        b.extend(self.crashing_cpu.to_le_bytes());
        b.extend(self.vmcoreinfo.0.to_le_bytes());
        b.extend(self.vmcoreinfo.1.to_le_bytes());
        b.extend(self.pt_regs_sz.to_le_bytes());
        b.extend(self.cpu_mask_sz.to_le_bytes());
        let mut regs = vec![0u8; self.pt_regs_sz as usize];
        for (i, r) in self.regs.iter().enumerate() {
            if let Some(d) = regs.get_mut(8 * i..8 * i + 8) {
                d.copy_from_slice(&r.to_le_bytes());
            }
        }
        b.extend(regs);
        let mut mask = vec![0u8; self.cpu_mask_sz as usize];
        for &c in &self.cpus {
            mask[(c / 8) as usize] |= 1 << (c % 8);
        }
        b.extend(mask);
        b
    }
}

#[test]
fn magic_values_are_the_kernels() {
    assert_eq!(CRASH_INFO_MAGIC, 0x4641_444d_5053_4947);
    assert_eq!(CRASH_INFO_MAGIC_OLD, 0x4641_444d_5049_4e46);
    assert_eq!(str_to_u64(b"REGSAVE"), 0x5245_4753_4156_4500);
}

#[test]
fn every_rejection_has_its_own_error_and_message() {
    let mut swapped_version = Hdr::good();
    swapped_version.version = 0;
    let cases: Vec<(&str, Vec<u8>, HeaderError, &str)> = vec![
        (
            "empty",
            vec![],
            HeaderError::Truncated { need: 40, have: 0 },
            "truncated",
        ),
        (
            "old magic",
            Hdr {
                magic: CRASH_INFO_MAGIC_OLD,
                ..Hdr::good()
            }
            .bytes(),
            HeaderError::OldMagic,
            "old magic FADMPINF",
        ),
        (
            "byte-swapped magic",
            Hdr {
                magic: CRASH_INFO_MAGIC.swap_bytes(),
                ..Hdr::good()
            }
            .bytes(),
            HeaderError::EndianMismatch,
            "endianness mismatch",
        ),
        (
            "other magic",
            Hdr {
                magic: 0x1234,
                ..Hdr::good()
            }
            .bytes(),
            HeaderError::Corrupted { magic: 0x1234 },
            "corrupted",
        ),
        (
            "zeroed header",
            vec![0; 1024],
            HeaderError::Corrupted { magic: 0 },
            "corrupted",
        ),
        (
            "version 0",
            swapped_version.bytes(),
            HeaderError::Version { version: 0 },
            "version 0",
        ),
        (
            "pt_regs size",
            Hdr {
                pt_regs_sz: 352,
                ..Hdr::good()
            }
            .bytes(),
            HeaderError::PtRegsSize {
                found: 352,
                expected: 384,
            },
            "pt_regs is 352 bytes",
        ),
        (
            "cpumask size",
            Hdr {
                cpu_mask_sz: 1024,
                ..Hdr::good()
            }
            .bytes(),
            HeaderError::CpuMaskSize {
                found: 1024,
                expected: 256,
            },
            "cpumask is 1024 bytes",
        ),
        (
            "empty vmcoreinfo",
            Hdr {
                vmcoreinfo: (0x1000, 0),
                ..Hdr::good()
            }
            .bytes(),
            HeaderError::Vmcoreinfo {
                addr: 0x1000,
                size: 0,
            },
            "VMCOREINFO",
        ),
        (
            "vmcoreinfo past the address space",
            Hdr {
                vmcoreinfo: (u64::MAX - 4, 0x10),
                ..Hdr::good()
            }
            .bytes(),
            HeaderError::Vmcoreinfo {
                addr: u64::MAX - 4,
                size: 0x10,
            },
            "VMCOREINFO",
        ),
        (
            "mask cut off",
            Hdr::good().bytes()[..40 + 384 + 100].to_vec(),
            HeaderError::Truncated {
                need: 40 + 384 + 256,
                have: 40 + 384 + 100,
            },
            "need 680",
        ),
        (
            "fixed part cut off",
            Hdr::good().bytes()[..20].to_vec(),
            HeaderError::Truncated { need: 40, have: 20 },
            "truncated",
        ),
    ];
    let mut messages = Vec::new();
    for (name, bytes, want, text) in cases {
        let got = CrashInfo::parse(&bytes, &ABI);
        assert_eq!(got, Err(want), "{name}");
        let msg = want.to_string();
        assert!(msg.contains(text), "{name}: message {msg:?} lacks {text:?}");
        messages.push(msg);
    }
    // Each kind of rejection says something different.
    let kinds = [
        &messages[1],
        &messages[2],
        &messages[3],
        &messages[5],
        &messages[6],
        &messages[7],
        &messages[8],
    ];
    for (i, a) in kinds.iter().enumerate() {
        for b in &kinds[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn a_good_header_is_read_field_by_field() {
    let h = Hdr::good();
    let bytes = h.bytes();
    let info = CrashInfo::parse(&bytes, &ABI).expect("valid");
    assert_eq!(info.version, 1);
    assert_eq!(info.crashing_cpu, Some(1));
    assert_eq!((info.vmcoreinfo_addr, info.vmcoreinfo_size), h.vmcoreinfo);
    assert_eq!(info.regs.0.to_vec(), h.regs);
    assert!(info.has_cpu(0) && info.has_cpu(1) && !info.has_cpu(2) && !info.has_cpu(2047));
    assert!(!info.has_cpu(4096), "past the mask");
    assert_eq!(info.cpus(), 2);
    // Later versions append fields: still readable.
    let v2 = Hdr {
        version: 2,
        crashing_cpu: CPU_UNKNOWN,
        cpus: vec![5, 64, 2047],
        ..h
    };
    let mut b = v2.bytes();
    b.extend([0xaa; 64]);
    let info = CrashInfo::parse(&b, &ABI).expect("version 2");
    assert_eq!(info.crashing_cpu, None);
    assert!(info.has_cpu(5) && info.has_cpu(64) && info.has_cpu(2047) && !info.has_cpu(63));
}

#[test]
fn big_endian_kernels_read_their_own_headers() {
    let be = Abi {
        endian: Endian::Big,
        ..ABI
    };
    let mut b = vec![0u8; 40 + 384 + 256];
    b[..8].copy_from_slice(&CRASH_INFO_MAGIC.to_be_bytes());
    b[8..12].copy_from_slice(&1u32.to_be_bytes());
    b[12..16].copy_from_slice(&3u32.to_be_bytes());
    b[24..32].copy_from_slice(&0x100u64.to_be_bytes());
    b[32..36].copy_from_slice(&384u32.to_be_bytes());
    b[36..40].copy_from_slice(&256u32.to_be_bytes());
    b[40 + 8 * REG_NIP..40 + 8 * REG_NIP + 8].copy_from_slice(&0xc0ffeeu64.to_be_bytes());
    // cpumask word 0, bit 3 (CPU 3), stored big-endian.
    b[40 + 384 + 7] = 1 << 3;
    let info = CrashInfo::parse(&b, &be).expect("BE header");
    assert_eq!(info.crashing_cpu, Some(3));
    assert_eq!(info.regs.nip(), 0xc0ffee);
    assert!(info.has_cpu(3) && !info.has_cpu(59));
    // The same bytes seen by a little-endian kernel: endianness mismatch.
    assert_eq!(CrashInfo::parse(&b, &ABI), Err(HeaderError::EndianMismatch));
}

/// A register save area as PAPR firmware (and QEMU) writes it.
fn regsave(cpus: &[(u32, u64)], num_cpus: u32, extra_header: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(str_to_u64(b"REGSAVE").to_be_bytes());
    b.extend(1u32.to_be_bytes());
    b.extend(((16 + extra_header) as u32).to_be_bytes());
    b.extend(vec![0xee; extra_header]);
    b.extend(num_cpus.to_be_bytes());
    let mut e = |id: &[u8], v: u64| {
        b.extend(str_to_u64(id).to_be_bytes());
        b.extend(v.to_be_bytes());
    };
    for &(cpu, base) in cpus {
        e(b"CPUSTRT", 0xffff_0000_0000_0000 | u64::from(cpu));
        for g in 0..32u64 {
            e(format!("GPR{g:02}").as_bytes(), base + g);
        }
        e(b"NIA", base + 0x100);
        e(b"MSR", base + 0x101);
        e(b"CTR", base + 0x102);
        e(b"LR", base + 0x103);
        e(b"CR", base + 0x104);
        e(b"SRR0", 0xdead);
        e(b"GPRXX", 0xdead);
        e(b"CPUEND", 0);
    }
    b
}

#[test]
fn register_save_area_is_read_per_cpu() {
    let data = regsave(&[(0, 0x1000), (1, 0x2000), (7, 0x7000)], 3, 8);
    let area = RegSaveArea::parse(&data).expect("area");
    assert_eq!(area.num_cpus(), 3);
    let cpus: Vec<_> = area.cpus().collect::<Result<_, _>>().expect("cpus");
    assert_eq!(cpus.iter().map(|c| c.cpu).collect::<Vec<_>>(), [0, 1, 7]);
    let r = &cpus[2].regs.0;
    assert_eq!(r[0], 0x7000);
    assert_eq!(r[31], 0x7000 + 31);
    assert_eq!(r[REG_NIP], 0x7100);
    assert_eq!(r[REG_MSR], 0x7101);
    assert_eq!(r[REG_CTR], 0x7102);
    assert_eq!(r[REG_LINK], 0x7103);
    assert_eq!(r[REG_CCR], 0x7104);
    assert!(r.iter().all(|&v| v != 0xdead), "unknown ids are ignored");
}

#[test]
fn every_register_save_area_rejection() {
    let good = regsave(&[(0, 0x1000), (1, 0x2000)], 2, 0);
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut no_start = good.clone();
    no_start[20] = b'X';
    let cut_in_cpu = good[..good.len() - 40].to_vec();
    let mut bad_offset = good.clone();
    bad_offset[12..16].copy_from_slice(&0x10_0000u32.to_be_bytes());
    let too_many = {
        let mut b = good.clone();
        b[16..20].copy_from_slice(&3u32.to_be_bytes());
        b
    };
    let cases: Vec<(&str, &[u8], RegSaveError, &str)> = vec![
        (
            "empty",
            &[],
            RegSaveError::Truncated { at: 0, size: 0 },
            "truncated",
        ),
        (
            "magic",
            &bad_magic,
            RegSaveError::Magic {
                magic: u64::from_be_bytes(bad_magic[..8].try_into().unwrap()),
            },
            "not REGSAVE",
        ),
        (
            "CPU count offset",
            &bad_offset,
            RegSaveError::Truncated {
                at: 0x10_0000,
                size: good.len(),
            },
            "truncated",
        ),
        (
            "CPUSTRT",
            &no_start,
            RegSaveError::NoCpuStart {
                index: 0,
                id: u64::from_be_bytes(no_start[20..28].try_into().unwrap()),
            },
            "not CPUSTRT",
        ),
        (
            "cut in a CPU",
            &cut_in_cpu,
            RegSaveError::Truncated {
                at: cut_in_cpu.len() - 8,
                size: cut_in_cpu.len(),
            },
            "truncated",
        ),
        (
            "more CPUs announced than saved",
            &too_many,
            RegSaveError::Truncated {
                at: good.len(),
                size: good.len(),
            },
            "truncated",
        ),
    ];
    for (name, bytes, want, text) in cases {
        let got = RegSaveArea::parse(bytes)
            .and_then(|a| a.cpus().collect::<Result<Vec<_>, _>>().map(|_| a));
        assert_eq!(got.err(), Some(want), "{name}");
        assert!(want.to_string().contains(text), "{name}: {want}");
    }
}

/// The notes of `buf`, read with goblin: (type, name, pr_reg).
fn read_notes(buf: &[u8]) -> Vec<(u32, String, Vec<u64>)> {
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    let it = NoteDataIterator {
        data: buf,
        size: buf.len(),
        offset: 0,
        ctx: (4, ctx),
    };
    let mut out = Vec::new();
    for n in it {
        let Ok(n) = n else { break };
        if n.n_type == 0 && n.name.is_empty() {
            break;
        }
        let regs = n.desc[PRSTATUS_PR_REG..PRSTATUS_PR_REG + 8 * ELF_NGREG]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        out.push((n.n_type, n.name.to_string(), regs));
    }
    out
}

#[test]
fn notes_take_the_crashing_cpu_from_the_header_and_skip_cpus_outside_the_mask() {
    let hdr = Hdr {
        crashing_cpu: 1,
        cpus: vec![0, 1, 3],
        ..Hdr::good()
    };
    let hb = hdr.bytes();
    let info = CrashInfo::parse(&hb, &ABI).unwrap();
    // CPU 2 was offline at the crash: in the area, not in the mask.
    let data = regsave(&[(0, 0x1000), (1, 0x2000), (2, 0x3000), (3, 0x4000)], 4, 0);
    let area = RegSaveArea::parse(&data).unwrap();
    let need = cpu_notes_size(&info, &area).unwrap();
    assert_eq!(need, 3 * CPU_NOTE_SIZE + FINAL_NOTE_SIZE);
    let mut buf = vec![0xffu8; need];
    assert_eq!(
        crash_hotplug_model::fadump::write_cpu_notes(&mut buf[..need - 1], &info, &area),
        Err(NotesError::TooSmall(
            crash_hotplug_model::fadump::NotesTooSmall {
                need,
                have: need - 1
            }
        ))
    );
    let s = crash_hotplug_model::fadump::write_cpu_notes(&mut buf, &info, &area).unwrap();
    assert_eq!((s.notes, s.skipped, s.bytes), (3, 1, need));
    assert!(s.crashing_from_header && !s.crashing_appended);
    let notes = read_notes(&buf);
    assert_eq!(notes.len(), 3);
    assert!(notes
        .iter()
        .all(|(t, name, _)| *t == NT_PRSTATUS && name == "CORE"));
    assert_eq!(notes[0].2[REG_NIP], 0x1100, "CPU 0 from the area");
    assert_eq!(
        notes[1].2, hdr.regs,
        "CPU 1 crashed: its registers from the header"
    );
    assert_eq!(notes[2].2[REG_NIP], 0x4100, "CPU 3 from the area");
}

#[test]
fn a_crashing_cpu_missing_from_the_area_keeps_its_registers() {
    let hdr = Hdr {
        crashing_cpu: 5,
        cpus: vec![0, 5],
        ..Hdr::good()
    };
    let hb = hdr.bytes();
    let info = CrashInfo::parse(&hb, &ABI).unwrap();
    let data = regsave(&[(0, 0x1000)], 1, 0);
    let area = RegSaveArea::parse(&data).unwrap();
    let mut buf = vec![0u8; cpu_notes_size(&info, &area).unwrap()];
    let s = crash_hotplug_model::fadump::write_cpu_notes(&mut buf, &info, &area).unwrap();
    assert!(s.crashing_appended);
    let notes = read_notes(&buf);
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[1].2, hdr.regs);
    // A firmware-initiated dump: no crashing CPU, every CPU from the area.
    let hdr = Hdr {
        crashing_cpu: CPU_UNKNOWN,
        cpus: vec![0, 5],
        ..Hdr::good()
    };
    let hb = hdr.bytes();
    let info = CrashInfo::parse(&hb, &ABI).unwrap();
    let s = crash_hotplug_model::fadump::write_cpu_notes(&mut buf, &info, &area).unwrap();
    assert_eq!((s.notes, s.crashing_from_header), (1, false));
    assert_eq!(read_notes(&buf)[0].2[REG_NIP], 0x1100);
}

#[test]
fn a_broken_area_writes_no_notes() {
    let hb = Hdr::good().bytes();
    let info = CrashInfo::parse(&hb, &ABI).unwrap();
    let mut data = regsave(&[(0, 0x1000), (1, 0x2000)], 2, 0);
    data.truncate(data.len() - 16);
    let area = RegSaveArea::parse(&data).unwrap();
    let mut buf = vec![0x55u8; 4096];
    assert!(matches!(
        crash_hotplug_model::fadump::write_cpu_notes(&mut buf, &info, &area),
        Err(NotesError::RegSave(RegSaveError::Truncated { .. }))
    ));
    assert!(
        buf.iter().all(|&b| b == 0x55),
        "nothing written before the area was checked"
    );
}

const MIB: u64 = 1 << 20;

fn r(start: u64, end_excl: u64) -> MemRange {
    MemRange {
        start,
        end: end_excl - 1,
    }
}

#[test]
fn memory_is_split_around_the_reserved_area() {
    // 2 GiB boot RAM, boot memory [0, 512M), reserved [512M, 1G + 64K), a DIMM at 2G.
    let memory = [r(0, 2048 * MIB), r(2048 * MIB, 3072 * MIB)];
    let reserved = r(512 * MIB, 1024 * MIB + 0x10000);
    let mut slots = [MemRange::default(); 3];
    let mut out = RangeList::new(&mut slots);
    dump_ram(memory, 512 * MIB, Some(reserved), &mut out).unwrap();
    assert_eq!(
        out.as_slice(),
        [
            r(1024 * MIB + 0x10000, 2048 * MIB),
            r(2048 * MIB, 3072 * MIB)
        ]
    );
    // Reserved area strictly inside a range: split in two.
    let mut slots = [MemRange::default(); 2];
    let mut out = RangeList::new(&mut slots);
    dump_ram(
        [r(0, 4096 * MIB)],
        256 * MIB,
        Some(r(1024 * MIB, 2048 * MIB)),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out.as_slice(),
        [r(256 * MIB, 1024 * MIB), r(2048 * MIB, 4096 * MIB)]
    );
    // Without the slot for the split: refused.
    let mut slots = [MemRange::default(); 1];
    let mut out = RangeList::new(&mut slots);
    assert!(dump_ram(
        [r(0, 4096 * MIB)],
        256 * MIB,
        Some(r(1024 * MIB, 2048 * MIB)),
        &mut out
    )
    .is_err());
}

proptest! {
    /// Against a page bitmap: the dump covers exactly memory above boot_top minus the reserved area.
    #[test]
    fn dump_ram_matches_a_bitmap(
        cuts in proptest::collection::btree_set(1u64..64, 0..12),
        holes in proptest::collection::vec(any::<bool>(), 13),
        boot_top in 0u64..64,
        ra in (0u64..64, 0u64..20),
    ) {
        let mut bounds = vec![0u64];
        bounds.extend(cuts);
        bounds.push(64);
        let memory: Vec<_> = bounds.windows(2).enumerate()
            .filter(|(i, _)| !holes[*i])
            .map(|(_, w)| r(w[0] * MIB, w[1] * MIB)).collect();
        let reserved = (ra.1 > 0).then(|| r(ra.0 * MIB, (ra.0 + ra.1) * MIB));
        let mut slots = vec![MemRange::default(); memory.len() + 1];
        let mut out = RangeList::new(&mut slots);
        dump_ram(memory.iter().copied(), boot_top * MIB, reserved, &mut out).unwrap();
        let got = out.as_slice();
        prop_assert!(got.windows(2).all(|w| w[0].end < w[1].start));
        for mb in 0..96u64 {
            let a = mb * MIB;
            let want = memory.iter().any(|m| m.start <= a && a <= m.end)
                && a >= boot_top * MIB
                && !reserved.is_some_and(|x| x.start <= a && a <= x.end);
            let have = got.iter().any(|m| m.start <= a && a <= m.end);
            prop_assert_eq!(want, have, "MiB {}", mb);
        }
    }
}

/// The spec of the elfcorehdr tests: ELFv2, VMCOREINFO at 0x4000_1000, boot copies from 0x8001_0000.
fn dump_spec<'a>(boot: &'a [MemRange], ram: &'a [MemRange]) -> DumpSpec<'a> {
    DumpSpec {
        page_offset: PAGE_OFFSET,
        e_flags: 2,
        cpu_notes: (0, 0),
        vmcoreinfo: (0x4000_1000, 0x1000),
        boot,
        boot_dest: 0x8001_0000,
        ram,
    }
}

#[test]
fn elfcorehdr_lists_notes_boot_memory_copies_and_memory() {
    let boot = [r(0, 256 * MIB), r(512 * MIB, 768 * MIB)];
    let ram = [r(1024 * MIB, 2048 * MIB), r(2304 * MIB, 3072 * MIB)];
    let spec = dump_spec(&boot, &ram);
    let mut buf = vec![0xffu8; 4096];
    let size = spec.size().expect("a countable number of program headers");
    assert!(build(&mut buf[..size - 1], &spec).is_err());
    assert_eq!(build(&mut buf, &spec).unwrap(), size);
    assert!(buf[size..].iter().all(|&b| b == 0), "rest zeroed");
    set_cpu_notes(&mut buf, 0x7000_0000, 3 * CPU_NOTE_SIZE as u64).unwrap();
    assert!(
        set_cpu_notes(&mut buf, 0x1, 1).is_err(),
        "only the placeholder can be set"
    );
    let elf = Elf::parse(&buf).expect("goblin parses the header");
    assert_eq!(elf.header.e_machine, EM_PPC64);
    assert_eq!(elf.header.e_flags, 2);
    assert_eq!(elf.header.e_type, goblin::elf::header::ET_CORE);
    let ph: Vec<_> = elf
        .program_headers
        .iter()
        .map(|p| (p.p_type, p.p_offset, p.p_paddr, p.p_vaddr, p.p_filesz))
        .collect();
    assert_eq!(
        ph,
        [
            (
                PT_NOTE,
                0x7000_0000,
                0x7000_0000,
                0,
                3 * CPU_NOTE_SIZE as u64
            ),
            (PT_NOTE, 0x4000_1000, 0x4000_1000, 0, 0x1000),
            (PT_LOAD, 0x8001_0000, 0, PAGE_OFFSET, 256 * MIB),
            (
                PT_LOAD,
                0x8001_0000 + 256 * MIB,
                512 * MIB,
                PAGE_OFFSET + 512 * MIB,
                256 * MIB
            ),
            (
                PT_LOAD,
                1024 * MIB,
                1024 * MIB,
                PAGE_OFFSET + 1024 * MIB,
                1024 * MIB
            ),
            (
                PT_LOAD,
                2304 * MIB,
                2304 * MIB,
                PAGE_OFFSET + 2304 * MIB,
                768 * MIB
            ),
        ]
    );
}

#[test]
fn gregs_default_is_zero() {
    assert!(Gregs::default().0.iter().all(|&r| r == 0));
}

/// Boot-memory sizes come from the firmware: where they add up past 64 bits (with `boot_dest`),
/// the offsets of the boot copies cannot be written. The spec says so (`boot_copy_end` is `None`,
/// which the capture kernel checks before it builds), and no look-up overflows (issue 11,
/// finding 9: a `.sum()` that panicked with overflow checks, as the kernel's Rust has them).
#[test]
fn boot_sizes_that_overflow_are_refused_not_summed() {
    let half = 1u64 << 63;
    let boot = [
        MemRange {
            start: 0,
            end: half - 1,
        },
        MemRange {
            start: half,
            end: u64::MAX,
        },
        MemRange {
            start: 0,
            end: MIB - 1,
        },
    ];
    let spec = dump_spec(&boot, &[]);
    assert_eq!(spec.boot_copy_end(), None);
    // Slots 2 and 3 (the first two copies) have offsets that fit; slot 4's would not.
    assert_eq!(spec.phdr(2).map(|p| p.p_offset), Some(0x8001_0000));
    assert_eq!(spec.phdr(4), None);
    let fits = [r(0, 256 * MIB), r(512 * MIB, 768 * MIB)];
    let spec = DumpSpec {
        boot: &fits,
        ..spec
    };
    assert_eq!(spec.boot_copy_end(), Some(0x8001_0000 + 512 * MIB));
}

/// More memory ranges than an ELF header can count (from memblock, or the firmware's regions):
/// the header has no size and is not built, rather than a count that wraps in `e_phnum`.
#[test]
fn more_program_headers_than_an_elf_header_counts_are_refused() {
    let boot = [r(0, 256 * MIB)];
    let ram: Vec<MemRange> = (0..0x1_0000u64)
        .map(|i| r((4096 + 2 * i) * MIB, (4097 + 2 * i) * MIB))
        .collect();
    let spec = dump_spec(&boot, &ram);
    assert_eq!(spec.phnum(), 2 + 1 + 0x1_0000);
    assert_eq!(spec.size(), None);
    let fits = dump_spec(&boot, &ram[..0xfffe - 3]);
    assert_eq!(fits.size(), Some(64 + 0xfffe * 56));
}
