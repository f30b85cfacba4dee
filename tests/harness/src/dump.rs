//! Reading crash dumps on the host: the elfcorehdr the crashed kernel left for the capture kernel,
//! and the `/proc/vmcore` the capture kernel made of it. goblin parses; this module only judges.

use goblin::{
    container::Ctx,
    elf::{
        header::ET_CORE,
        note::{NoteDataIterator, NT_PRSTATUS},
        program_header::{PT_LOAD, PT_NOTE},
        sym::STT_NOTYPE,
        Elf, ProgramHeader,
    },
};

use crate::error::VerifyError;

/// The program headers of an ELF core file.
#[derive(Debug)]
pub struct CoreHeader {
    /// All program headers, in file order.
    pub phdrs: Vec<ProgramHeader>,
    ctx: Ctx,
}

/// One note of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteInfo {
    /// Note name (e.g. "CORE", "VMCOREINFO").
    pub name: String,
    /// Note type.
    pub n_type: u32,
    /// Descriptor size.
    pub desc_len: usize,
    /// Descriptor bytes.
    pub desc: Vec<u8>,
}

fn elf_err(what: &str, e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Elf(format!("{what}: {e}"))
}

impl CoreHeader {
    /// Parses the ELF header and program headers at the start of `bytes`.
    ///
    /// Returns `Ok(Err(n))` when `bytes` is too short and `n` bytes are needed.
    pub fn parse(bytes: &[u8]) -> Result<Result<Self, usize>, VerifyError> {
        let h = Elf::parse_header(bytes).map_err(|e| elf_err("ELF header", e))?;
        if h.e_type != ET_CORE {
            return Err(VerifyError::Elf(format!(
                "e_type {} is not ET_CORE",
                h.e_type
            )));
        }
        let container = h.container().map_err(|e| elf_err("ELF class", e))?;
        let endian = h.endianness().map_err(|e| elf_err("ELF data", e))?;
        let ctx = Ctx::new(container, endian);
        let end = h.e_phoff as usize + h.e_phnum as usize * h.e_phentsize as usize;
        if end > bytes.len() {
            return Ok(Err(end));
        }
        let phdrs = ProgramHeader::parse(bytes, h.e_phoff as usize, h.e_phnum as usize, ctx)
            .map_err(|e| elf_err("program headers", e))?;
        Ok(Ok(Self { phdrs, ctx }))
    }

    /// Bytes needed to read the headers and all PT_NOTE segments.
    pub fn notes_end(&self) -> usize {
        self.notes()
            .map(|p| (p.p_offset + p.p_filesz) as usize)
            .max()
            .unwrap_or(0)
    }

    /// The PT_NOTE headers.
    pub fn notes(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|p| p.p_type == PT_NOTE)
    }

    /// The PT_LOAD headers.
    pub fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|p| p.p_type == PT_LOAD)
    }

    /// Whether the union of the PT_LOAD physical ranges covers `start..=end`.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        self.gaps(start, end).is_empty()
    }

    /// The parts of `start..=end` that no PT_LOAD covers, as inclusive ranges in address order.
    pub fn gaps(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = self
            .loads()
            .filter(|p| p.p_memsz > 0)
            .map(|p| (p.p_paddr, p.p_paddr.saturating_add(p.p_memsz - 1)))
            .collect();
        ranges.sort_unstable();
        let mut gaps = Vec::new();
        let mut next = Some(start);
        for (s, e) in ranges {
            let Some(n) = next.filter(|n| *n <= end) else {
                break;
            };
            if e < n {
                continue;
            }
            if s > n {
                gaps.push((n, (s - 1).min(end)));
            }
            next = e.checked_add(1);
        }
        if let Some(n) = next.filter(|n| *n <= end) {
            gaps.push((n, end));
        }
        gaps
    }

    /// Whether any PT_LOAD overlaps `start..=end`.
    pub fn intersects(&self, start: u64, end: u64) -> bool {
        self.loads()
            .any(|p| p.p_memsz > 0 && p.p_paddr <= end && p.p_paddr + p.p_memsz > start)
    }

    /// File offset of physical address `paddr`, if a PT_LOAD with file data holds it.
    pub fn file_offset(&self, paddr: u64) -> Option<u64> {
        self.loads()
            .find(|p| paddr >= p.p_paddr && paddr < p.p_paddr + p.p_filesz)
            .map(|p| p.p_offset + (paddr - p.p_paddr))
    }

    /// File offset of physical address `paddr` and how many bytes of file data follow it in its
    /// PT_LOAD, if a PT_LOAD with file data holds it.
    pub fn file_extent(&self, paddr: u64) -> Option<(u64, u64)> {
        self.loads()
            .find(|p| paddr >= p.p_paddr && paddr < p.p_paddr + p.p_filesz)
            .map(|p| {
                (
                    p.p_offset + (paddr - p.p_paddr),
                    p.p_paddr + p.p_filesz - paddr,
                )
            })
    }

    /// A core header with a PT_LOAD per `(paddr, size)`, file data at offset `paddr`.
    #[cfg(test)]
    pub fn from_loads(ranges: &[(u64, u64)]) -> Self {
        Self {
            phdrs: ranges
                .iter()
                .map(|&(p_paddr, p_memsz)| ProgramHeader {
                    p_type: PT_LOAD,
                    p_paddr,
                    p_memsz,
                    p_filesz: p_memsz,
                    p_offset: p_paddr,
                    ..Default::default()
                })
                .collect(),
            ctx: Ctx::default(),
        }
    }

    /// All notes of all PT_NOTE segments, read from `bytes` (the start of the file).
    pub fn parse_notes(&self, bytes: &[u8]) -> Result<Vec<NoteInfo>, VerifyError> {
        let mut out = Vec::new();
        for p in self.notes() {
            let end = (p.p_offset + p.p_filesz) as usize;
            if end > bytes.len() {
                return Err(VerifyError::Elf(format!(
                    "PT_NOTE ends at {end:#x}, past the fetched bytes"
                )));
            }
            let it = NoteDataIterator {
                data: bytes,
                size: end,
                offset: p.p_offset as usize,
                ctx: (4, self.ctx),
            };
            for n in it {
                let n = n.map_err(|e| elf_err("note", e))?;
                out.push(NoteInfo {
                    name: n.name.to_string(),
                    n_type: n.n_type,
                    desc_len: n.desc.len(),
                    desc: n.desc.to_vec(),
                });
            }
        }
        Ok(out)
    }
}

/// Checks the notes of `/proc/vmcore`: CPU register notes and VMCOREINFO.
pub fn check_vmcore_notes(notes: &[NoteInfo], online_cpus: usize) -> Result<String, VerifyError> {
    let prstatus = notes
        .iter()
        .filter(|n| n.name == "CORE" && n.n_type == NT_PRSTATUS)
        .count();
    let vmcoreinfo = notes.iter().filter(|n| n.name == "VMCOREINFO").count();
    if vmcoreinfo != 1 {
        return Err(VerifyError::Notes(format!(
            "{vmcoreinfo} VMCOREINFO notes, expected 1"
        )));
    }
    if prstatus != online_cpus {
        return Err(VerifyError::Notes(format!(
            "{prstatus} NT_PRSTATUS notes, expected {online_cpus} (CPUs online at the crash)"
        )));
    }
    Ok(format!(
        "{prstatus} NT_PRSTATUS notes (one per online CPU) and VMCOREINFO"
    ))
}

/// Offset of `pr_reg` in ppc64's `struct elf_prstatus`, and the indexes of `gpr1` (the stack
/// pointer), `nip` and `msr` in it.
const PPC64_PR_REG: usize = 112;
const PPC64_R1: usize = 1;
const PPC64_NIP: usize = 32;
const PPC64_MSR: usize = 33;
/// MSR bits: 64-bit mode, little-endian.
const MSR_SF: u64 = 1 << 63;
const MSR_LE: u64 = 1;

/// A ppc64le register from an `NT_PRSTATUS` descriptor.
fn ppc64_reg(desc: &[u8], i: usize) -> Option<u64> {
    let off = PPC64_PR_REG + 8 * i;
    Some(u64::from_le_bytes(desc.get(off..off + 8)?.try_into().ok()?))
}

/// The kernel's function symbols, sorted by address, to name an instruction address.
pub struct Symbols {
    funcs: Vec<(u64, u64, String)>,
    text: (u64, u64),
}

impl Symbols {
    /// Reads the symbol table of `vmlinux` (goblin).
    pub fn read(vmlinux: &[u8]) -> Result<Self, VerifyError> {
        let elf = Elf::parse(vmlinux).map_err(|e| elf_err("vmlinux", e))?;
        let mut funcs = Vec::new();
        let (mut stext, mut etext) = (None, None);
        for s in elf.syms.iter() {
            let Some(name) = elf.strtab.get_at(s.st_name) else {
                continue;
            };
            match name {
                "_stext" => stext = Some(s.st_value),
                "_etext" => etext = Some(s.st_value),
                _ => {}
            }
            // Functions, and the untyped labels of assembly code (size 0: up to the next one).
            let code = s.is_function() || (s.st_type() == STT_NOTYPE && s.st_shndx != 0);
            if code && s.st_value != 0 && !name.starts_with(".L") {
                funcs.push((s.st_value, s.st_size, name.to_string()));
            }
        }
        funcs.sort();
        let text = stext
            .zip(etext)
            .ok_or_else(|| VerifyError::Elf("vmlinux has no _stext/_etext symbols".into()))?;
        Ok(Self { funcs, text })
    }

    /// `symbol+0xoff` for `addr`, if a function holds it.
    pub fn name(&self, addr: u64) -> Option<String> {
        let i = self.funcs.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.funcs[i];
        let end = if *size > 0 {
            start + size
        } else {
            self.funcs.get(i + 1).map_or(start + 1, |f| f.0)
        };
        (addr < end).then(|| format!("{name}+{:#x}", addr - start))
    }

    /// Whether a function named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.funcs.iter().any(|f| f.2 == name)
    }

    /// Whether `addr` is in the kernel text.
    pub fn in_text(&self, addr: u64) -> bool {
        (self.text.0..self.text.1).contains(&addr)
    }
}

/// Checks the registers in the `NT_PRSTATUS` notes of a ppc64le dump: every CPU's `nip` is in
/// the kernel text, in 64-bit little-endian mode with a kernel stack pointer, and the crashing
/// CPU's note (index `crash_note` among the `NT_PRSTATUS` notes) stopped in `crash_symbol`
/// (proof that its registers are the ones the crashed kernel saved, not the firmware's view of
/// the CPU in the os-term call).
pub fn check_ppc64_registers(
    notes: &[NoteInfo],
    syms: &Symbols,
    crash_note: usize,
    crash_symbol: &str,
) -> Result<Vec<String>, VerifyError> {
    let prstatus: Vec<_> = notes
        .iter()
        .filter(|n| n.name == "CORE" && n.n_type == NT_PRSTATUS)
        .collect();
    let mut out = Vec::new();
    for (i, n) in prstatus.iter().enumerate() {
        let reg = |r| {
            ppc64_reg(&n.desc, r)
                .ok_or_else(|| VerifyError::Notes(format!("note {i}: descriptor too short")))
        };
        let (nip, msr, r1) = (reg(PPC64_NIP)?, reg(PPC64_MSR)?, reg(PPC64_R1)?);
        let name = syms.name(nip).unwrap_or_else(|| "?".into());
        let what = format!("CPU note {i}: nip {nip:#x} ({name}), msr {msr:#x}, r1 {r1:#x}");
        if !syms.in_text(nip) {
            return Err(VerifyError::Notes(format!(
                "{what}: nip is not kernel text"
            )));
        }
        if msr & (MSR_SF | MSR_LE) != (MSR_SF | MSR_LE) || r1 < 0xc000_0000_0000_0000 {
            return Err(VerifyError::Notes(format!(
                "{what}: not a 64-bit little-endian kernel context"
            )));
        }
        if i == crash_note && !name.starts_with(&format!("{crash_symbol}+")) {
            return Err(VerifyError::Notes(format!(
                "{what}: the crashing CPU must have stopped in {crash_symbol}"
            )));
        }
        out.push(what);
    }
    if crash_note >= prstatus.len() {
        return Err(VerifyError::Notes(format!(
            "no NT_PRSTATUS note {crash_note} (have {})",
            prstatus.len()
        )));
    }
    Ok(out)
}

/// The value of `key` in a debugfs file of `key value` lines (`crash_hotplug/stats`, `events`);
/// hex values are written `0x...`.
pub fn stat(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(' ')?.trim();
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    })
}

/// Parses a CPU list such as `0-3` or `0,2-5,7` into the number of CPUs.
pub fn count_cpu_list(s: &str) -> Option<usize> {
    let mut n = 0;
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>()
                    .ok()?
                    .checked_sub(a.parse::<usize>().ok()?)?
                    + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// Parses the `elfcorehdr=` argument of a capture kernel command line into a physical address.
/// kexec_file_load passes bytes (`0x...`), kexec-tools passes kilobytes (`...K`).
pub fn elfcorehdr_addr(cmdline: &str) -> Option<u64> {
    let v = cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix("elfcorehdr="))?;
    let v = v.split_once('@').map_or(v, |(_, addr)| addr);
    let (num, mult) = match v.strip_suffix(['K', 'k']) {
        Some(n) => (n, 1024),
        None => match v.strip_suffix(['M', 'm']) {
            Some(n) => (n, 1 << 20),
            None => (v, 1),
        },
    };
    let n = match num.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => num.parse().ok()?,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ppc64le NT_PRSTATUS note with `nip`, `msr` and `r1`.
    fn prstatus(nip: u64, msr: u64, r1: u64) -> NoteInfo {
        let mut desc = vec![0u8; 504];
        for (i, v) in [(PPC64_NIP, nip), (PPC64_MSR, msr), (PPC64_R1, r1)] {
            let off = PPC64_PR_REG + 8 * i;
            desc[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        NoteInfo {
            name: "CORE".into(),
            n_type: NT_PRSTATUS,
            desc_len: desc.len(),
            desc,
        }
    }

    #[test]
    fn ppc64_registers_are_judged_per_note() {
        const K: u64 = 0xc000_0000_0000_0000;
        let syms = Symbols {
            funcs: vec![
                (K + 0x1000, 0x100, "idle".into()),
                (K + 0x2000, 0, "asm_label".into()),
                (K + 0x3000, 0x200, "crash_fadump".into()),
            ],
            text: (K + 0x1000, K + 0x4000),
        };
        assert_eq!(syms.name(K + 0x2abc).as_deref(), Some("asm_label+0xabc"));
        assert_eq!(syms.name(K + 0x1100), None, "past idle's end");
        let msr = MSR_SF | MSR_LE;
        let good = [
            prstatus(K + 0x1010, msr, K + 0x9000),
            prstatus(K + 0x3010, msr, K + 0x8000),
        ];
        let lines = check_ppc64_registers(&good, &syms, 1, "crash_fadump").expect("good");
        assert!(lines[1].contains("crash_fadump+0x10"), "{lines:?}");
        // The crashing CPU's note taken from elsewhere (e.g. the firmware's view): refused.
        assert!(check_ppc64_registers(&good, &syms, 0, "crash_fadump").is_err());
        // A big-endian or 32-bit MSR, a user stack, a nip outside the text, a missing note.
        for bad in [
            prstatus(K + 0x3010, MSR_SF, K + 0x8000),
            prstatus(K + 0x3010, msr, 0x7fff_0000),
            prstatus(K + 0x5000, msr, K + 0x8000),
        ] {
            assert!(
                check_ppc64_registers(&[good[0].clone(), bad], &syms, 1, "crash_fadump").is_err()
            );
        }
        assert!(check_ppc64_registers(&good[..1], &syms, 1, "crash_fadump").is_err());
    }

    /// A core header with a PT_LOAD per `(paddr, size)`.
    fn loads(ranges: &[(u64, u64)]) -> CoreHeader {
        CoreHeader::from_loads(ranges)
    }

    #[test]
    fn gaps_are_the_uncovered_parts() {
        const M: u64 = 1 << 20;
        let dimm = (0x1_0000_0000, 0x1_0fff_ffff);
        // What the Rust kernel listed with memmap_on_memory before the fix: each 128 MiB block
        // without its first 2 MiB (the block's struct pages).
        let h = loads(&[
            (0x1_0000_0000 + 2 * M, 126 * M),
            (0x1_0800_0000 + 2 * M, 126 * M),
        ]);
        assert_eq!(
            h.gaps(dimm.0, dimm.1),
            vec![
                (0x1_0000_0000, 0x1_0000_0000 + 2 * M - 1),
                (0x1_0800_0000, 0x1_0800_0000 + 2 * M - 1)
            ]
        );
        // Whole blocks, overlapping and out of order, plus unrelated ranges: no gap.
        let h = loads(&[
            (0x1_0800_0000, 128 * M),
            (0, 640 << 10),
            (0x1_0000_0000, 130 * M),
        ]);
        assert!(h.gaps(dimm.0, dimm.1).is_empty());
        // Nothing listed: the whole range; a tail missing; a range ending at the top of memory.
        assert_eq!(loads(&[]).gaps(dimm.0, dimm.1), vec![dimm]);
        assert_eq!(
            loads(&[(dimm.0, 200 * M)]).gaps(dimm.0, dimm.1),
            vec![(dimm.0 + 200 * M, dimm.1)]
        );
        assert!(loads(&[(u64::MAX - M + 1, M)])
            .gaps(u64::MAX - 10, u64::MAX)
            .is_empty());
    }

    #[test]
    fn stats_lines() {
        let t = "applied 35\nfailed 0\nelfcorehdr_addr 0x3def0000\nlast online_memory 0x1-0x2\n";
        assert_eq!(stat(t, "applied"), Some(35));
        assert_eq!(stat(t, "failed"), Some(0));
        assert_eq!(stat(t, "elfcorehdr_addr"), Some(0x3def_0000));
        assert_eq!(stat(t, "fail"), None);
        assert_eq!(stat(t, "missing"), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-3\n"), Some(4));
        assert_eq!(count_cpu_list("0,2-3,7"), Some(4));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("3-1"), None);
    }

    #[test]
    fn elfcorehdr_forms() {
        assert_eq!(
            elfcorehdr_addr("console=ttyS0 elfcorehdr=0x3f000000 x"),
            Some(0x3f00_0000)
        );
        assert_eq!(elfcorehdr_addr("elfcorehdr=1032192K"), Some(1032192 * 1024));
        assert_eq!(
            elfcorehdr_addr("elfcorehdr=64K@1032192K"),
            Some(1032192 * 1024)
        );
        assert_eq!(elfcorehdr_addr("nothing"), None);
    }
}
