// SPDX-License-Identifier: GPL-2.0-only
//! PowerPC firmware-assisted dump (fadump): what the capture kernel reads from the crashed kernel
//! and from the firmware, and the elfcorehdr it builds from them.
//!
//! With fadump the crashed kernel never builds an elfcorehdr: at registration it writes a *crash
//! info header* into the reserved area (magic, version, the VMCOREINFO note's address in the
//! preserved copy, the sizes of `struct pt_regs` and `struct cpumask`), and at the crash it adds
//! the crashing CPU, its registers and the online CPU mask. The firmware (PAPR RTAS on pseries)
//! saves every CPU's registers in its *register save area*, copies the boot memory to the reserved
//! area and boots the capture kernel, which then:
//!
//! 1. checks the crash info header ([`CrashInfo::parse`]): any incompatibility refuses the dump
//!    before anything else is read;
//! 2. builds the elfcorehdr ([`DumpSpec`], written by [`build`]): a `PT_NOTE` for the CPU notes
//!    (filled in step 3), a `PT_NOTE` for VMCOREINFO, one `PT_LOAD` per boot-memory region read
//!    from its copy, and one per memory range above the boot memory, split around the reserved
//!    area ([`dump_ram`]). The memory ranges are the capture kernel's own, so memory hot-added
//!    or removed before the crash is right without re-registering fadump;
//! 3. turns the register save area into one `NT_PRSTATUS` note per CPU of the saved mask
//!    ([`write_cpu_notes`]); the crashing CPU's registers come from the crash info header (the
//!    firmware saw that CPU in the os-term call, not where it crashed).
//!
//! Layouts are facts of the kernel ABI (`asm/fadump-internal.h`, the PAPR register save area,
//! `struct elf_prstatus` of ppc64); the kernel crate checks them against bindgen's view at build
//! time. Everything here is bounds-checked: firmware and crashed-kernel data are untrusted.

use core::fmt;

use super::elf::{self, Phdr, TooSmall, PHDR_SIZE, PT_NOTE};
use super::event::MemRange;
use super::ranges::{NoRoom, RangeList};

/// `fadump_str_to_u64()`: up to 8 ASCII characters, left-justified in a big-endian `u64`.
pub const fn str_to_u64(s: &[u8]) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < 8 {
        v <<= 8;
        if i < s.len() {
            v |= s[i] as u64;
        }
        i += 1;
    }
    v
}

/// The crash info header's magic ("FADMPSIG").
pub const CRASH_INFO_MAGIC: u64 = str_to_u64(b"FADMPSIG");
/// The magic of the header before it had a version and sizes ("FADMPINF").
pub const CRASH_INFO_MAGIC_OLD: u64 = str_to_u64(b"FADMPINF");
/// The header version this code knows (`FADUMP_HEADER_VERSION`).
pub const HEADER_VERSION: u32 = 1;
/// `crashing_cpu` before a crash, or after a firmware-initiated dump (`FADUMP_CPU_UNKNOWN`).
pub const CPU_UNKNOWN: u32 = !0;

/// Offset of a field of `struct fadump_crash_info_header`.
pub const H_MAGIC: usize = 0;
/// Offset of a field of `struct fadump_crash_info_header`.
pub const H_VERSION: usize = 8;
/// Offset of a field of `struct fadump_crash_info_header`.
pub const H_CRASHING_CPU: usize = 12;
/// Offset of a field of `struct fadump_crash_info_header`.
pub const H_VMCOREINFO_ADDR: usize = 16;
/// Offset of a field of `struct fadump_crash_info_header`.
pub const H_VMCOREINFO_SIZE: usize = 24;
/// Offset of a field of `struct fadump_crash_info_header`.
pub const H_PT_REGS_SZ: usize = 32;
/// Offset of a field of `struct fadump_crash_info_header`.
pub const H_CPU_MASK_SZ: usize = 36;
/// Offset of `regs` (`struct pt_regs`) in `struct fadump_crash_info_header`.
pub const H_REGS: usize = 40;

/// Number of registers in an ELF core's `elf_gregset_t` on ppc64 (`ELF_NGREG`).
pub const ELF_NGREG: usize = 48;
/// Index of the next-instruction address (`nip`) in `struct pt_regs` and `elf_gregset_t`.
pub const REG_NIP: usize = 32;
/// Index of `msr`.
pub const REG_MSR: usize = 33;
/// Index of `ctr`.
pub const REG_CTR: usize = 35;
/// Index of `link`.
pub const REG_LINK: usize = 36;
/// Index of `xer`.
pub const REG_XER: usize = 37;
/// Index of `ccr`.
pub const REG_CCR: usize = 38;
/// Index of `dar`.
pub const REG_DAR: usize = 41;
/// Index of `dsisr`.
pub const REG_DSISR: usize = 42;

/// Byte order of the crashed (and capture) kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    /// ppc64le.
    Little,
    /// ppc64 (big endian).
    Big,
}

impl Endian {
    fn u32(self, b: &[u8], off: usize) -> Option<u32> {
        let a: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        })
    }

    fn u64(self, b: &[u8], off: usize) -> Option<u64> {
        let a: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        })
    }
}

/// What the capture kernel's own build says the header must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abi {
    /// Byte order of this kernel.
    pub endian: Endian,
    /// `sizeof(struct pt_regs)`.
    pub pt_regs_size: u32,
    /// `sizeof(struct cpumask)`.
    pub cpu_mask_size: u32,
}

/// Why the crash info header cannot be used: the dump is not processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than the header needs.
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes there.
        have: usize,
    },
    /// The magic of kernels before the versioned header ("FADMPINF").
    OldMagic,
    /// The magic byte-swapped: the crashed kernel had the other byte order.
    EndianMismatch,
    /// Neither magic: not a crash info header.
    Corrupted {
        /// The magic found.
        magic: u64,
    },
    /// A version no kernel writes (0).
    Version {
        /// The version found.
        version: u32,
    },
    /// `pt_regs_sz` differs from this kernel's `sizeof(struct pt_regs)`.
    PtRegsSize {
        /// In the header.
        found: u32,
        /// In this kernel.
        expected: u32,
    },
    /// `cpu_mask_sz` differs from this kernel's `sizeof(struct cpumask)`.
    CpuMaskSize {
        /// In the header.
        found: u32,
        /// In this kernel.
        expected: u32,
    },
    /// The VMCOREINFO note is empty or does not fit in the address space.
    Vmcoreinfo {
        /// Its physical address (in the preserved copy).
        addr: u64,
        /// Its size.
        size: u64,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderError::Truncated { need, have } => {
                write!(f, "crash info header truncated: {have} bytes, need {need}")
            }
            HeaderError::OldMagic => f.write_str(
                "crash info header has the old magic FADMPINF (kernel without a versioned header): \
                 can't process the dump",
            ),
            HeaderError::EndianMismatch => f.write_str(
                "crash info header magic is byte-swapped: endianness mismatch between the crashed \
                 and the fadump kernel",
            ),
            HeaderError::Corrupted { magic } => {
                write!(f, "crash info header is corrupted: magic {magic:#018x}, not FADMPSIG")
            }
            HeaderError::Version { version } => {
                write!(f, "crash info header version {version} is not valid (versions start at 1)")
            }
            HeaderError::PtRegsSize { found, expected } => write!(
                f,
                "crash info header size mismatch: pt_regs is {found} bytes in the crashed kernel, \
                 {expected} here"
            ),
            HeaderError::CpuMaskSize { found, expected } => write!(
                f,
                "crash info header size mismatch: cpumask is {found} bytes in the crashed kernel \
                 (NR_CPUS differs), {expected} here"
            ),
            HeaderError::Vmcoreinfo { addr, size } => {
                write!(f, "crash info header: VMCOREINFO at {addr:#x} size {size:#x} is not valid")
            }
        }
    }
}

/// The registers of one CPU as an ELF core's `elf_gregset_t` (the first [`ELF_NGREG`] longs of
/// `struct pt_regs`, as `elf_core_copy_regs()` takes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gregs(pub [u64; ELF_NGREG]);

impl Default for Gregs {
    fn default() -> Self {
        Gregs([0; ELF_NGREG])
    }
}

impl Gregs {
    /// The next-instruction address.
    pub const fn nip(&self) -> u64 {
        self.0[REG_NIP]
    }
}

/// A crash info header that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashInfo<'a> {
    /// Header version (1 or later; later versions only append fields).
    pub version: u32,
    /// The CPU that crashed, `None` if unknown (a firmware-initiated dump).
    pub crashing_cpu: Option<u32>,
    /// Physical address of the VMCOREINFO note, in the preserved copy of the boot memory.
    pub vmcoreinfo_addr: u64,
    /// Size of the VMCOREINFO note.
    pub vmcoreinfo_size: u64,
    /// The crashing CPU's registers, saved by the crashed kernel.
    pub regs: Gregs,
    endian: Endian,
    cpu_mask: &'a [u8],
}

impl<'a> CrashInfo<'a> {
    /// Bytes of header that [`CrashInfo::parse`] reads for `abi`.
    pub const fn size(abi: &Abi) -> usize {
        H_REGS + abi.pt_regs_size as usize + abi.cpu_mask_size as usize
    }

    /// Checks the crash info header at the start of `bytes` against this kernel's `abi`, in the
    /// kernel's order: magic (old, byte-swapped, other), version, structure sizes, VMCOREINFO.
    pub fn parse(bytes: &'a [u8], abi: &Abi) -> Result<Self, HeaderError> {
        let e = abi.endian;
        let truncated = |need| HeaderError::Truncated {
            need,
            have: bytes.len(),
        };
        let magic = e.u64(bytes, H_MAGIC).ok_or(truncated(H_REGS))?;
        if magic == CRASH_INFO_MAGIC_OLD {
            return Err(HeaderError::OldMagic);
        }
        if magic != CRASH_INFO_MAGIC {
            if magic == CRASH_INFO_MAGIC.swap_bytes() {
                return Err(HeaderError::EndianMismatch);
            }
            return Err(HeaderError::Corrupted { magic });
        }
        let fixed = |off| e.u32(bytes, off).ok_or(truncated(H_REGS));
        let fixed64 = |off| e.u64(bytes, off).ok_or(truncated(H_REGS));
        let version = fixed(H_VERSION)?;
        if version == 0 {
            return Err(HeaderError::Version { version });
        }
        let crashing_cpu = fixed(H_CRASHING_CPU)?;
        let vmcoreinfo_addr = fixed64(H_VMCOREINFO_ADDR)?;
        let vmcoreinfo_size = fixed64(H_VMCOREINFO_SIZE)?;
        let pt_regs_size = fixed(H_PT_REGS_SZ)?;
        let cpu_mask_size = fixed(H_CPU_MASK_SZ)?;
        if pt_regs_size != abi.pt_regs_size {
            return Err(HeaderError::PtRegsSize {
                found: pt_regs_size,
                expected: abi.pt_regs_size,
            });
        }
        if cpu_mask_size != abi.cpu_mask_size {
            return Err(HeaderError::CpuMaskSize {
                found: cpu_mask_size,
                expected: abi.cpu_mask_size,
            });
        }
        if vmcoreinfo_size == 0 || vmcoreinfo_addr.checked_add(vmcoreinfo_size).is_none() {
            return Err(HeaderError::Vmcoreinfo {
                addr: vmcoreinfo_addr,
                size: vmcoreinfo_size,
            });
        }
        let need = Self::size(abi);
        let mask_at = H_REGS + pt_regs_size as usize;
        let cpu_mask = bytes.get(mask_at..need).ok_or(truncated(need))?;
        let mut regs = Gregs::default();
        let n = (pt_regs_size as usize / 8).min(ELF_NGREG);
        for (i, r) in regs.0.iter_mut().take(n).enumerate() {
            *r = e.u64(bytes, H_REGS + 8 * i).ok_or(truncated(need))?;
        }
        Ok(CrashInfo {
            version,
            crashing_cpu: (crashing_cpu != CPU_UNKNOWN).then_some(crashing_cpu),
            vmcoreinfo_addr,
            vmcoreinfo_size,
            regs,
            endian: e,
            cpu_mask,
        })
    }

    /// Whether `cpu` is in the saved CPU mask (a bitmap of `unsigned long`s).
    pub fn has_cpu(&self, cpu: u32) -> bool {
        let word = (cpu / 64) as usize;
        match self.endian.u64(self.cpu_mask, word * 8) {
            Some(w) => w & (1u64 << (cpu % 64)) != 0,
            None => false,
        }
    }

    /// Number of CPUs in the saved mask.
    pub fn cpus(&self) -> u32 {
        self.cpu_mask.iter().map(|b| b.count_ones()).sum()
    }
}

/// Why the firmware's register save area cannot be read: the dump is not processed (its CPU
/// notes would be wrong).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegSaveError {
    /// Not "REGSAVE".
    Magic {
        /// What is there.
        magic: u64,
    },
    /// The area ends before the data it announces.
    Truncated {
        /// Offset of the first byte missing.
        at: usize,
        /// Size of the area.
        size: usize,
    },
    /// A CPU's register list does not start with "CPUSTRT".
    NoCpuStart {
        /// Index of the CPU in the area.
        index: u32,
        /// The register id found instead.
        id: u64,
    },
}

impl fmt::Display for RegSaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegSaveError::Magic { magic } => write!(
                f,
                "unable to read the register save area: magic {magic:#018x}, not REGSAVE"
            ),
            RegSaveError::Truncated { at, size } => write!(
                f,
                "register save area truncated: entry at {at:#x} runs past its {size:#x} bytes"
            ),
            RegSaveError::NoCpuStart { index, id } => write!(
                f,
                "register save area: CPU entry {index} starts with register id {id:#018x}, not \
                 CPUSTRT"
            ),
        }
    }
}

const RS_MAGIC: u64 = str_to_u64(b"REGSAVE");
const RS_CPU_START: u64 = str_to_u64(b"CPUSTRT");
const RS_CPU_END: u64 = str_to_u64(b"CPUEND");
const RS_GPR: u64 = str_to_u64(b"GPR");
const RS_GPR_MASK: u64 = 0xffff_ff00_0000_0000;
const RS_ENTRY: usize = 16;
const RS_NUM_CPU_OFFSET: usize = 12;

/// One CPU's registers in the register save area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedCpu {
    /// Logical CPU number (low 32 bits of the "CPUSTRT" entry's value).
    pub cpu: u32,
    /// The registers the firmware saved.
    pub regs: Gregs,
}

/// The PAPR register save area (`ibm,configure-kernel-dump` CPU state data): a big-endian header
/// ("REGSAVE", version, offset of the CPU count), the CPU count, then per CPU a list of 16-byte
/// (8-byte ASCII id, value) entries from "CPUSTRT" to "CPUEND".
#[derive(Clone, Copy, Debug)]
pub struct RegSaveArea<'a> {
    data: &'a [u8],
    first: usize,
    num_cpus: u32,
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    Endian::Big.u64(b, off)
}

/// Where a register id goes in `elf_gregset_t`, `None` for the ones the kernel does not keep.
fn reg_index(id: u64) -> Option<usize> {
    if id & RS_GPR_MASK == RS_GPR {
        let hi = ((id >> 32) & 0xff) as u8;
        let lo = ((id >> 24) & 0xff) as u8;
        if !hi.is_ascii_digit() || !lo.is_ascii_digit() || id & 0xff_ffff != 0 {
            return None;
        }
        let n = usize::from(hi - b'0') * 10 + usize::from(lo - b'0');
        return (n < 32).then_some(n);
    }
    const NAMED: [(u64, usize); 8] = [
        (str_to_u64(b"NIA"), REG_NIP),
        (str_to_u64(b"MSR"), REG_MSR),
        (str_to_u64(b"CTR"), REG_CTR),
        (str_to_u64(b"LR"), REG_LINK),
        (str_to_u64(b"XER"), REG_XER),
        (str_to_u64(b"CR"), REG_CCR),
        (str_to_u64(b"DAR"), REG_DAR),
        (str_to_u64(b"DSISR"), REG_DSISR),
    ];
    NAMED.iter().find(|(n, _)| *n == id).map(|(_, i)| *i)
}

impl<'a> RegSaveArea<'a> {
    /// Checks the header of the area in `data` (exactly the CPU state data the firmware wrote).
    pub fn parse(data: &'a [u8]) -> Result<Self, RegSaveError> {
        let size = data.len();
        let magic = be64(data, 0).ok_or(RegSaveError::Truncated { at: 0, size })?;
        if magic != RS_MAGIC {
            return Err(RegSaveError::Magic { magic });
        }
        let off = Endian::Big
            .u32(data, RS_NUM_CPU_OFFSET)
            .ok_or(RegSaveError::Truncated { at: 8, size })? as usize;
        let num_cpus = Endian::Big
            .u32(data, off)
            .ok_or(RegSaveError::Truncated { at: off, size })?;
        Ok(RegSaveArea {
            data,
            first: off + 4,
            num_cpus,
        })
    }

    /// Number of CPUs the firmware says it saved.
    pub const fn num_cpus(&self) -> u32 {
        self.num_cpus
    }

    /// The CPUs, in the area's order; an error ends the iteration.
    pub fn cpus(&self) -> SavedCpus<'a> {
        SavedCpus {
            data: self.data,
            at: self.first,
            index: 0,
            num_cpus: self.num_cpus,
            failed: false,
        }
    }
}

/// Iterator over the CPUs of a [`RegSaveArea`].
#[derive(Clone, Debug)]
pub struct SavedCpus<'a> {
    data: &'a [u8],
    at: usize,
    index: u32,
    num_cpus: u32,
    failed: bool,
}

impl SavedCpus<'_> {
    fn entry(&self, at: usize) -> Result<(u64, u64), RegSaveError> {
        let size = self.data.len();
        let t = RegSaveError::Truncated { at, size };
        Ok((
            be64(self.data, at).ok_or(t)?,
            be64(self.data, at.checked_add(8).ok_or(t)?).ok_or(t)?,
        ))
    }

    fn next_cpu(&mut self) -> Result<SavedCpu, RegSaveError> {
        let (id, val) = self.entry(self.at)?;
        if id != RS_CPU_START {
            return Err(RegSaveError::NoCpuStart {
                index: self.index,
                id,
            });
        }
        let cpu = (val & 0xffff_ffff) as u32;
        let mut regs = Gregs::default();
        let mut at = self.at + RS_ENTRY;
        loop {
            let (id, val) = self.entry(at)?;
            at += RS_ENTRY;
            if id == RS_CPU_END {
                break;
            }
            if let Some(i) = reg_index(id) {
                regs.0[i] = val;
            }
        }
        self.at = at;
        Ok(SavedCpu { cpu, regs })
    }
}

impl Iterator for SavedCpus<'_> {
    type Item = Result<SavedCpu, RegSaveError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.index >= self.num_cpus {
            return None;
        }
        let r = self.next_cpu();
        self.failed = r.is_err();
        self.index += 1;
        Some(r)
    }
}

/// `NT_PRSTATUS`.
pub const NT_PRSTATUS: u32 = 1;
/// `sizeof(struct elf_prstatus)` on ppc64.
pub const PRSTATUS_SIZE: usize = 504;
/// Offset of `pr_reg` in `struct elf_prstatus` on ppc64.
pub const PRSTATUS_PR_REG: usize = 112;
/// Bytes of one CPU's note: `Elf64_Nhdr`, "CORE" padded to 8, `struct elf_prstatus`.
pub const CPU_NOTE_SIZE: usize = 12 + 8 + PRSTATUS_SIZE;
/// Bytes of the empty note that ends the list.
pub const FINAL_NOTE_SIZE: usize = 12;

/// The notes buffer is too small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotesTooSmall {
    /// Bytes needed.
    pub need: usize,
    /// Bytes available.
    pub have: usize,
}

/// What [`write_cpu_notes`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotesSummary {
    /// Notes written (CPUs of the saved mask).
    pub notes: u32,
    /// CPUs of the area skipped: not in the saved mask.
    pub skipped: u32,
    /// Bytes used, the final empty note included.
    pub bytes: usize,
    /// Whether the crashing CPU's note holds the registers from the crash info header.
    pub crashing_from_header: bool,
    /// Whether the crashing CPU was missing from the area, so its note was appended at the end.
    pub crashing_appended: bool,
}

/// The notes size [`write_cpu_notes`] needs: one note per CPU of `area` in `info`'s mask, plus
/// the crashing CPU's if the area lacks it, plus the final note.
pub fn cpu_notes_size(info: &CrashInfo<'_>, area: &RegSaveArea<'_>) -> Result<usize, RegSaveError> {
    let mut n = 0usize;
    let mut crashing_seen = false;
    for c in area.cpus() {
        let c = c?;
        if info.has_cpu(c.cpu) {
            n += 1;
            crashing_seen |= Some(c.cpu) == info.crashing_cpu;
        }
    }
    if !crashing_seen && info.crashing_cpu.is_some_and(|c| info.has_cpu(c)) {
        n += 1;
    }
    Ok(n * CPU_NOTE_SIZE + FINAL_NOTE_SIZE)
}

fn write_note(out: &mut [u8], regs: &Gregs, e: Endian) {
    let put32 = |b: &mut [u8], off: usize, v: u32| {
        if let Some(d) = b.get_mut(off..off + 4) {
            d.copy_from_slice(&match e {
                Endian::Little => v.to_le_bytes(),
                Endian::Big => v.to_be_bytes(),
            });
        }
    };
    out.fill(0);
    put32(out, 0, 5);
    put32(out, 4, PRSTATUS_SIZE as u32);
    put32(out, 8, NT_PRSTATUS);
    if let Some(d) = out.get_mut(12..17) {
        d.copy_from_slice(b"CORE\0");
    }
    for (i, r) in regs.0.iter().enumerate() {
        let off = 20 + PRSTATUS_PR_REG + 8 * i;
        if let Some(d) = out.get_mut(off..off + 8) {
            d.copy_from_slice(&match e {
                Endian::Little => r.to_le_bytes(),
                Endian::Big => r.to_be_bytes(),
            });
        }
    }
}

/// Writes one `NT_PRSTATUS` note per CPU of `area` that is in `info`'s saved mask, in the area's
/// order, then the final empty note, into `out` (zeroed first). The crashing CPU's note holds the
/// registers of the crash info header; if the area lacks that CPU, its note is appended so that
/// the crash's registers are never lost. The notes are `pr_pid` 0, as the kernel's.
pub fn write_cpu_notes(
    out: &mut [u8],
    info: &CrashInfo<'_>,
    area: &RegSaveArea<'_>,
) -> Result<NotesSummary, NotesError> {
    let need = cpu_notes_size(info, area).map_err(NotesError::RegSave)?;
    if need > out.len() {
        return Err(NotesError::TooSmall(NotesTooSmall {
            need,
            have: out.len(),
        }));
    }
    out.fill(0);
    let mut s = NotesSummary::default();
    let mut at = 0;
    for c in area.cpus() {
        let c = c.map_err(NotesError::RegSave)?;
        if !info.has_cpu(c.cpu) {
            s.skipped += 1;
            continue;
        }
        let crashing = Some(c.cpu) == info.crashing_cpu;
        let regs = if crashing { &info.regs } else { &c.regs };
        s.crashing_from_header |= crashing;
        write_note(&mut out[at..at + CPU_NOTE_SIZE], regs, info.endian);
        at += CPU_NOTE_SIZE;
        s.notes += 1;
    }
    if !s.crashing_from_header && info.crashing_cpu.is_some_and(|c| info.has_cpu(c)) {
        write_note(&mut out[at..at + CPU_NOTE_SIZE], &info.regs, info.endian);
        at += CPU_NOTE_SIZE;
        s.notes += 1;
        s.crashing_from_header = true;
        s.crashing_appended = true;
    }
    s.bytes = at + FINAL_NOTE_SIZE;
    Ok(s)
}

/// Why the CPU notes could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotesError {
    /// The register save area is unreadable.
    RegSave(RegSaveError),
    /// The buffer is too small.
    TooSmall(NotesTooSmall),
}

impl fmt::Display for NotesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotesError::RegSave(e) => e.fmt(f),
            NotesError::TooSmall(t) => {
                write!(f, "CPU notes need {} bytes, buffer has {}", t.need, t.have)
            }
        }
    }
}

/// The memory ranges above the boot memory that the dump lists, from the capture kernel's
/// memory map: `memory` (sorted, disjoint) clipped to start at `boot_top`, minus the fadump
/// reserved area `reserved` (which holds the boot memory's copy, the CPU state data and the
/// header). `out` needs one slot more than the ranges above `boot_top` for the split around the
/// reserved area.
pub fn dump_ram(
    memory: impl IntoIterator<Item = MemRange>,
    boot_top: u64,
    reserved: Option<MemRange>,
    out: &mut RangeList<'_>,
) -> Result<(), NoRoom> {
    for r in memory {
        if r.end < boot_top {
            continue;
        }
        out.push(MemRange {
            start: r.start.max(boot_top),
            end: r.end,
        })?;
    }
    if let Some(ra) = reserved {
        out.exclude(ra.start, ra.end)?;
    }
    Ok(())
}

/// `e_machine` of ppc64.
pub const EM_PPC64: u16 = 21;

/// Everything the capture kernel's elfcorehdr lists, in the kernel's order.
#[derive(Clone, Copy, Debug)]
pub struct DumpSpec<'a> {
    /// Virtual address of physical 0 in the direct map.
    pub page_offset: u64,
    /// `e_flags` (the ppc64 ELF ABI version: 2 for ELFv2, 1 for ELFv1).
    pub e_flags: u32,
    /// Physical address and size of the CPU notes; (0, 0) until [`set_cpu_notes`] fills them.
    pub cpu_notes: (u64, u64),
    /// Physical address and size of the VMCOREINFO note (in the preserved copy).
    pub vmcoreinfo: (u64, u64),
    /// The boot-memory regions, in order.
    pub boot: &'a [MemRange],
    /// Where the firmware copied the boot-memory regions, back to back.
    pub boot_dest: u64,
    /// The memory above the boot memory ([`dump_ram`]).
    pub ram: &'a [MemRange],
}

impl DumpSpec<'_> {
    /// Number of program headers.
    pub const fn phnum(&self) -> usize {
        2 + self.boot.len() + self.ram.len()
    }

    /// Size of the header, or `None` if it would have more program headers than an ELF header
    /// can count (`MAX_PHNUM`): the region lists come from the firmware and memblock.
    pub const fn size(&self) -> Option<usize> {
        let n = self.phnum();
        if n > elf::MAX_PHNUM {
            return None;
        }
        // `n <= MAX_PHNUM`: no overflow.
        Some(elf::EHDR_SIZE + n * PHDR_SIZE)
    }

    /// Where the firmware's copy of the boot-memory regions ends: `boot_dest` plus their sizes,
    /// or `None` if that does not fit in 64 bits. The sizes come from the firmware: a capture
    /// kernel refuses such a dump before [`build`] (whose boot-copy headers would then be
    /// missing).
    pub fn boot_copy_end(&self) -> Option<u64> {
        self.boot
            .iter()
            .try_fold(self.boot_dest, |end, b| end.checked_add(b.size()))
    }

    /// Program header `i`, `None` past the end.
    pub fn phdr(&self, i: usize) -> Option<Phdr> {
        match i {
            0 => Some(Phdr::note(self.cpu_notes.0, self.cpu_notes.1)),
            1 => Some(Phdr::note(self.vmcoreinfo.0, self.vmcoreinfo.1)),
            _ => {
                let j = i - 2;
                if let Some(r) = self.boot.get(j) {
                    // The copies lie back to back from `boot_dest`; `None` where the offset
                    // would not fit (see `boot_copy_end`).
                    let offset = self.boot[..j]
                        .iter()
                        .try_fold(self.boot_dest, |o, b| o.checked_add(b.size()))?;
                    let mut p = Phdr::ram(*r, self.page_offset);
                    p.p_offset = offset;
                    return Some(p);
                }
                self.ram
                    .get(j - self.boot.len())
                    .map(|r| Phdr::ram(*r, self.page_offset))
            }
        }
    }
}

/// Builds the elfcorehdr of `spec` at the start of `buf` (little endian, like every header of
/// the pure core) and zeroes the rest. Returns its size.
pub fn build(buf: &mut [u8], spec: &DumpSpec<'_>) -> Result<usize, TooSmall> {
    elf::build_with(buf, EM_PPC64, spec.e_flags, spec.phnum(), |i| spec.phdr(i))
}

/// The elfcorehdr's first program header is not the CPU notes' `PT_NOTE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoNotesHeader;

/// Points the first `PT_NOTE` of a header built by [`build`] at the CPU notes.
pub fn set_cpu_notes(buf: &mut [u8], addr: u64, size: u64) -> Result<(), NoNotesHeader> {
    let off = elf::EHDR_SIZE;
    let old = buf
        .get(off..off + PHDR_SIZE)
        .and_then(Phdr::decode)
        .ok_or(NoNotesHeader)?;
    if old.p_type != PT_NOTE || old.p_paddr != 0 {
        return Err(NoNotesHeader);
    }
    let p = Phdr::note(addr, size);
    buf[off..off + PHDR_SIZE].copy_from_slice(&p.encode());
    Ok(())
}
