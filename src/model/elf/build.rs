// SPDX-License-Identifier: GPL-2.0-only
//! Building an elfcorehdr from scratch: what the kernel lists at load time, in its order.

use zerocopy::IntoBytes;

use super::{
    error::TooSmall,
    layout::{
        Elf64Ehdr,
        Phdr,
        EHDR_SIZE,
        MAX_PHNUM,
        PF_RWX,
        PHDR_SIZE,
        PT_LOAD, //
    },
};
use crate::model::event::MemRange;

/// The kernel-text `PT_LOAD` (x86_64: `_text` to `_end`, needed by gdb and makedumpfile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelText {
    /// Virtual address of `_text`.
    pub vaddr: u64,
    /// Physical address of `_text`.
    pub paddr: u64,
    /// `_end - _text`.
    pub size: u64,
}

/// Everything a from-scratch elfcorehdr lists, in the kernel's order.
#[derive(Clone, Copy, Debug)]
pub struct HeaderSpec<'a> {
    /// `e_machine` (62 for x86_64, 21 for ppc64).
    pub machine: u16,
    /// Virtual address of physical 0 in the direct map.
    pub page_offset: u64,
    /// Physical address of each possible CPU's crash notes, in CPU order.
    pub cpu_notes: &'a [u64],
    /// Size of one CPU's crash notes (`sizeof(note_buf_t)`).
    pub cpu_note_size: u64,
    /// Physical address and size of the VMCOREINFO note.
    pub vmcoreinfo: (u64, u64),
    /// The kernel-text map, where the architecture has one.
    pub kernel_text: Option<KernelText>,
    /// RAM ranges to dump, sorted and disjoint.
    pub ram: &'a [MemRange],
}

impl HeaderSpec<'_> {
    /// Number of program headers.
    pub const fn phnum(&self) -> usize {
        self.cpu_notes.len() + 1 + self.kernel_text.is_some() as usize + self.ram.len()
    }

    /// Program header `i`, `None` past the end.
    pub fn phdr(&self, i: usize) -> Option<Phdr> {
        let n = self.cpu_notes.len();
        if let Some(&addr) = self.cpu_notes.get(i) {
            return Some(Phdr::note(addr, self.cpu_note_size));
        }
        if i == n {
            return Some(Phdr::note(self.vmcoreinfo.0, self.vmcoreinfo.1));
        }
        let mut j = i - n - 1;
        if let Some(t) = self.kernel_text {
            if j == 0 {
                return Some(Phdr {
                    p_type: PT_LOAD,
                    p_flags: PF_RWX,
                    p_offset: t.paddr,
                    p_vaddr: t.vaddr,
                    p_paddr: t.paddr,
                    p_filesz: t.size,
                    p_memsz: t.size,
                    p_align: 0,
                });
            }
            j -= 1;
        }
        self.ram.get(j).map(|r| Phdr::ram(*r, self.page_offset))
    }
}

/// Builds the header of `spec` from scratch at the start of `buf` and zeroes the rest of `buf`
/// (so every further slot reads as `PT_NULL`). Returns the size of the header.
pub fn build(buf: &mut [u8], spec: &HeaderSpec<'_>) -> Result<usize, TooSmall> {
    build_with(buf, spec.machine, 0, spec.phnum(), |i| spec.phdr(i))
}

/// Builds a core header with `n` program headers, header `i` being `phdr(i)`, at the start of
/// `buf`, and zeroes the rest of `buf`. Returns the size of the header.
pub fn build_with(
    buf: &mut [u8],
    machine: u16,
    flags: u32,
    n: usize,
    phdr: impl Fn(usize) -> Option<Phdr>,
) -> Result<usize, TooSmall> {
    // The count is checked before any arithmetic on it; `need` saturates for a count too large
    // to size (only reported).
    let need = n
        .checked_mul(PHDR_SIZE)
        .and_then(|t| t.checked_add(EHDR_SIZE));
    let too_small = TooSmall {
        need: need.unwrap_or(usize::MAX),
        have: buf.len(),
    };
    if n > MAX_PHNUM {
        return Err(too_small);
    }
    let Some(need) = need.filter(|&need| need <= buf.len()) else {
        return Err(too_small);
    };
    buf.fill(0);
    // `n <= MAX_PHNUM` fits `e_phnum`.
    buf[..EHDR_SIZE].copy_from_slice(Elf64Ehdr::core(machine, flags, n as u16).as_bytes());
    for (i, slot) in buf[EHDR_SIZE..need].chunks_exact_mut(PHDR_SIZE).enumerate() {
        if let Some(p) = phdr(i) {
            slot.copy_from_slice(&p.encode());
        }
    }
    Ok(need)
}
