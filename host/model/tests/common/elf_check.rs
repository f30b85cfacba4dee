//! An elfcorehdr as goblin reads it, the invariants every state of an edit must satisfy, and the
//! from-scratch headers to compare with. Shared by the elfcorehdr host tests (`tests/elf.rs`) and
//! the edit engine's fuzz target (`fuzz/fuzz_targets/elf_edits.rs` includes this file by path).

use crash_hotplug_model::{build, HeaderSpec, KernelText, MemRange, PF_DEV_VMEMMAP, PF_RWX};
use goblin::{
    container::{Container, Ctx},
    elf::{header::ET_CORE, program_header::ProgramHeader, Elf},
};

/// Virtual address of physical 0 in the direct map (x86_64).
pub const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
/// The granule of the RAM ranges: a page.
pub const UNIT: u64 = 0x1000;
/// Physical addresses of the CPUs' crash notes, in CPU order.
pub const CPU_NOTES: [u64; 4] = [0x7f00_0000, 0x7f00_1000, 0x7f00_2000, 0x7f00_3000];
/// Size of one CPU's crash notes.
pub const CPU_NOTE_SIZE: u64 = 0x150;
/// The kernel-text map.
pub const TEXT: KernelText = KernelText {
    vaddr: 0xffff_ffff_8100_0000,
    paddr: 0x100_0000,
    size: 0x20_0000,
};

/// What a reader of the header would dump: the notes, the union of the RAM ranges, the union of
/// the device vmemmap ranges (`PF_DEV_VMEMMAP`), the other `PT_LOAD`s (the kernel text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `(p_paddr, p_memsz)` of each `PT_NOTE`, sorted.
    pub notes: Vec<(u64, u64)>,
    /// The RAM, as disjoint sorted `(start, end)` ranges.
    pub ram: Vec<(u64, u64)>,
    /// The device vmemmaps, as disjoint sorted `(start, end)` ranges.
    pub device: Vec<(u64, u64)>,
    /// `(p_vaddr, p_paddr, p_memsz)` of each other `PT_LOAD`, in table order.
    pub text: Vec<(u64, u64, u64)>,
}

/// goblin's parse of the ELF header and the visible program headers of `bytes`, checked as the
/// capture kernel reads them (ELF64 little-endian `ET_CORE`, program headers right after the ELF
/// header).
pub fn parse(bytes: &[u8]) -> Result<Vec<ProgramHeader>, String> {
    let h = Elf::parse_header(bytes).map_err(|e| format!("ELF header: {e}"))?;
    if h.e_type != ET_CORE {
        return Err(format!("e_type {} is not ET_CORE", h.e_type));
    }
    // The capture kernel reads the program headers right after the ELF header, whatever
    // e_phoff says; a header that relies on e_phoff would be misread.
    if h.e_phoff != 64 {
        return Err(format!(
            "e_phoff {:#x}: program headers must follow the ELF header",
            h.e_phoff
        ));
    }
    if h.container().map_err(|e| format!("class: {e}"))? != Container::Big {
        return Err("not ELFCLASS64".into());
    }
    let endian = h.endianness().map_err(|e| format!("data: {e}"))?;
    if !endian.is_little() {
        return Err("not little-endian".into());
    }
    let ctx = Ctx::new(Container::Big, endian);
    ProgramHeader::parse(bytes, h.e_phoff as usize, h.e_phnum as usize, ctx)
        .map_err(|e| format!("{} program headers: {e}", h.e_phnum))
}

/// `e_phnum` and the number of `PT_NULL` entries below it, of a valid header.
pub fn table(bytes: &[u8]) -> (usize, usize) {
    let phdrs = parse(bytes).expect("valid");
    let nulls = phdrs
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_NULL)
        .count();
    (phdrs.len(), nulls)
}

/// goblin's reading of a header, or why it is not one the capture kernel reads as we do.
pub fn try_view(bytes: &[u8]) -> Result<View, String> {
    use goblin::elf::program_header::{PT_LOAD, PT_NOTE, PT_NULL};
    let phdrs = parse(bytes)?;
    let mut notes = Vec::new();
    let mut ram = Vec::new();
    let mut device = Vec::new();
    let mut text = Vec::new();
    // The capture kernel merges the notes assuming they are the first program headers.
    let leading = phdrs.iter().take_while(|p| p.p_type == PT_NOTE).count();
    let total = phdrs.iter().filter(|p| p.p_type == PT_NOTE).count();
    if leading != total {
        return Err(format!(
            "PT_NOTEs must be the first program headers: {leading} lead, {total} in all"
        ));
    }
    for (i, p) in phdrs.iter().enumerate() {
        match p.p_type {
            PT_NOTE => notes.push((p.p_paddr, p.p_memsz)),
            PT_LOAD => {
                if p.p_filesz != p.p_memsz || p.p_offset != p.p_paddr || p.p_memsz == 0 {
                    return Err(format!(
                        "PT_LOAD {i} (p_offset {:#x} p_paddr {:#x} p_filesz {:#x} p_memsz {:#x}) \
                         is not a non-empty map of where it is",
                        p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz
                    ));
                }
                let end = p
                    .p_paddr
                    .checked_add(p.p_memsz - 1)
                    .ok_or_else(|| format!("PT_LOAD {i} runs past 2^64"))?;
                if p.p_vaddr != p.p_paddr.wrapping_add(PAGE_OFFSET) {
                    text.push((p.p_vaddr, p.p_paddr, p.p_memsz));
                } else if p.p_flags == PF_RWX {
                    ram.push((p.p_paddr, end));
                } else if p.p_flags == PF_RWX | PF_DEV_VMEMMAP {
                    device.push((p.p_paddr, end));
                } else {
                    return Err(format!("PT_LOAD {i}: p_flags {:#x}", p.p_flags));
                }
            }
            PT_NULL => {}
            t => return Err(format!("program header {i}: unexpected p_type {t:#x}")),
        }
    }
    notes.sort_unstable();
    Ok(View {
        notes,
        ram: union(ram),
        device: union(device),
        text,
    })
}

/// goblin's reading of a header that must be valid.
pub fn view(bytes: &[u8]) -> View {
    try_view(bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// What every state of an add or a remove must be: the notes and the kernel text as before, the
/// RAM and the device vmemmaps each the old set or the new one.
pub fn edit_invariant<'a>(
    before: &'a View,
    after: &'a View,
) -> impl Fn(&[u8]) -> Result<(), String> + 'a {
    move |st| {
        let v = try_view(st)?;
        if v.notes != before.notes {
            return Err(format!(
                "notes {:x?} are not the old {:x?}",
                v.notes, before.notes
            ));
        }
        if v.text != before.text {
            return Err(format!(
                "kernel text {:x?} is not the old {:x?}",
                v.text, before.text
            ));
        }
        if v.ram != before.ram && v.ram != after.ram {
            return Err(format!(
                "RAM {:x?} is neither the old {:x?} nor the new {:x?}",
                v.ram, before.ram, after.ram
            ));
        }
        if v.device != before.device && v.device != after.device {
            return Err(format!(
                "device vmemmaps {:x?} are neither the old {:x?} nor the new {:x?}",
                v.device, before.device, after.device
            ));
        }
        Ok(())
    }
}

/// What every state of an adoption must be: the RAM, the device vmemmaps and the kernel text as
/// before (a moved entry may be listed twice: the same map, once more), the notes growing from
/// the old set to the new.
pub fn adopt_invariant<'a>(
    before: &'a View,
    after: &'a View,
) -> impl Fn(&[u8]) -> Result<(), String> + 'a {
    move |st| {
        let v = try_view(st)?;
        if v.ram != before.ram {
            return Err(format!("RAM {:x?} is not the old {:x?}", v.ram, before.ram));
        }
        if v.device != before.device {
            return Err(format!(
                "device vmemmaps {:x?} are not the old {:x?}",
                v.device, before.device
            ));
        }
        let mut text = v.text.clone();
        text.dedup();
        if text != before.text {
            return Err(format!(
                "kernel text {:x?} is not the old {:x?}",
                v.text, before.text
            ));
        }
        if !before.notes.iter().all(|n| v.notes.contains(n))
            || !v.notes.iter().all(|n| after.notes.contains(n))
        {
            return Err(format!(
                "notes {:x?} are not between the old {:x?} and the new {:x?}",
                v.notes, before.notes, after.notes
            ));
        }
        Ok(())
    }
}

/// The union of inclusive ranges, as disjoint sorted ranges (adjacent ones merged).
pub fn union(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
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

/// The ranges of the set units (`bits[i]`: the page at `i * UNIT`), adjacent ones merged.
pub fn units_to_ranges(bits: &[bool]) -> Vec<MemRange> {
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

/// What the kernel lists at load: a note per possible CPU, VMCOREINFO, the kernel text, `ram`.
pub fn spec(ram: &[MemRange]) -> HeaderSpec<'_> {
    HeaderSpec {
        machine: 62,
        page_offset: PAGE_OFFSET,
        cpu_notes: &CPU_NOTES,
        cpu_note_size: CPU_NOTE_SIZE,
        vmcoreinfo: (0x7e00_0000, 0x1000),
        kernel_text: Some(TEXT),
        ram,
    }
}

/// The kernel's header of `ram` in a segment of `slots` program headers.
pub fn built(ram: &[MemRange], slots: usize) -> Vec<u8> {
    let mut buf = vec![0xa5u8; 64 + slots * 56];
    build(&mut buf, &spec(ram)).expect("fits");
    buf
}

/// A header as kexec-tools builds it: notes for the first `present` CPUs only, the kernel-text
/// map if `text`.
pub fn user_header(ram: &[MemRange], present: usize, text: bool) -> Vec<u8> {
    user_header_in(ram, present, text, 600)
}

/// [`user_header`] in a segment of `slots` program headers.
pub fn user_header_in(ram: &[MemRange], present: usize, text: bool, slots: usize) -> Vec<u8> {
    let mut user = spec(ram);
    user.cpu_notes = &CPU_NOTES[..present];
    if !text {
        user.kernel_text = None;
    }
    let mut buf = vec![0u8; 64 + slots * 56];
    build(&mut buf, &user).expect("fits");
    buf
}
