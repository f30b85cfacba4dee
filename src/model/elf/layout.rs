// SPDX-License-Identifier: GPL-2.0-only
//! The ELF64 structures of a core header as they are stored (little endian), and the decoded
//! program header the rest of the core works with.
//!
//! The stored forms are `#[repr(C)]` with zerocopy's byte-order types, so that reading and
//! writing them is a checked copy of their bytes (no hand-kept offsets) on any host, and the
//! offsets of the two fields an edit commits (`e_phnum`, `p_type`) come from the types.

use core::mem::{offset_of, size_of};

use zerocopy::{
    byteorder::little_endian::{U16, U32, U64},
    FromBytes, //
};

use crate::model::{event::MemRange, index::RangeKind};

/// Size of an `Elf64_Ehdr`.
pub const EHDR_SIZE: usize = size_of::<Elf64Ehdr>();
/// Size of an `Elf64_Phdr`.
pub const PHDR_SIZE: usize = size_of::<Elf64Phdr>();
/// `PT_NULL`: an unused program header (our tombstone).
pub const PT_NULL: u32 = 0;
/// `PT_LOAD`: a range of memory.
pub const PT_LOAD: u32 = 1;
/// `PT_NOTE`: ELF notes (per-CPU crash notes, VMCOREINFO).
pub const PT_NOTE: u32 = 4;
/// `PF_X | PF_W | PF_R`, the flags of every `PT_LOAD` the kernel writes.
pub const PF_RWX: u32 = 7;
/// The `p_flags` bit of a device-backed vmemmap's `PT_LOAD` (with [`PF_RWX`]): the `struct page`s
/// of a pmem/dax device, kept on the device. A bit of `PF_MASKOS` (`0x0ff00000`, for
/// operating-system-specific semantics), which readers that do not know it ignore. ABI: see the
/// module documentation of [`elf`](super) and `Documentation/admin-guide.rst`.
pub const PF_DEV_VMEMMAP: u32 = 0x0010_0000;
/// Largest `e_phnum` that does not need the `PN_XNUM` extension.
pub const MAX_PHNUM: usize = 0xfffe;
/// `ET_CORE`.
pub(super) const ET_CORE: u16 = 4;
/// `e_ident` up to `EI_OSABI`: `ELFMAG`, `ELFCLASS64`, `ELFDATA2LSB`, `EV_CURRENT`.
pub(super) const IDENT: [u8; 7] = *b"\x7fELF\x02\x01\x01";

/// Offset of `e_phnum` in the ELF header: the store that publishes or drops trailing slots.
pub(super) const E_PHNUM: usize = offset_of!(Elf64Ehdr, e_phnum);
/// Offset of `p_type` in a program header: the store that publishes or tombstones a slot.
pub(super) const P_TYPE: usize = offset_of!(Elf64Phdr, p_type);
/// Offset of `p_flags`, the first byte after `p_type`.
pub(super) const P_FLAGS: usize = offset_of!(Elf64Phdr, p_flags);

// The layouts of the ELF64 specification; the commits rely on these offsets.
const _: () = assert!(EHDR_SIZE == 64 && PHDR_SIZE == 56);
const _: () = assert!(E_PHNUM == 0x38 && P_TYPE == 0 && P_FLAGS == 4);

/// `Elf64_Ehdr`, little endian.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::KnownLayout,
    zerocopy_derive::Immutable,
)]
pub(super) struct Elf64Ehdr {
    pub(super) e_ident: [u8; 16],
    pub(super) e_type: U16,
    pub(super) e_machine: U16,
    pub(super) e_version: U32,
    pub(super) e_entry: U64,
    pub(super) e_phoff: U64,
    pub(super) e_shoff: U64,
    pub(super) e_flags: U32,
    pub(super) e_ehsize: U16,
    pub(super) e_phentsize: U16,
    pub(super) e_phnum: U16,
    pub(super) e_shentsize: U16,
    pub(super) e_shnum: U16,
    pub(super) e_shstrndx: U16,
}

impl Elf64Ehdr {
    /// The header of a core file for `machine` with `phnum` program headers right after it.
    pub(super) fn core(machine: u16, flags: u32, phnum: u16) -> Self {
        let mut e_ident = [0u8; 16];
        e_ident[..IDENT.len()].copy_from_slice(&IDENT);
        Self {
            e_ident,
            e_type: ET_CORE.into(),
            e_machine: machine.into(),
            e_version: 1.into(),
            e_entry: 0.into(),
            e_phoff: (EHDR_SIZE as u64).into(),
            e_shoff: 0.into(),
            e_flags: flags.into(),
            e_ehsize: (EHDR_SIZE as u16).into(),
            e_phentsize: (PHDR_SIZE as u16).into(),
            e_phnum: phnum.into(),
            e_shentsize: 0.into(),
            e_shnum: 0.into(),
            e_shstrndx: 0.into(),
        }
    }
}

/// `Elf64_Phdr`, little endian.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::KnownLayout,
    zerocopy_derive::Immutable,
)]
pub(super) struct Elf64Phdr {
    p_type: U32,
    p_flags: U32,
    p_offset: U64,
    p_vaddr: U64,
    p_paddr: U64,
    p_filesz: U64,
    p_memsz: U64,
    p_align: U64,
}

/// One program header, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub p_flags: u32,
    /// `p_offset`.
    pub p_offset: u64,
    /// `p_vaddr`.
    pub p_vaddr: u64,
    /// `p_paddr`.
    pub p_paddr: u64,
    /// `p_filesz`.
    pub p_filesz: u64,
    /// `p_memsz`.
    pub p_memsz: u64,
    /// `p_align`.
    pub p_align: u64,
}

impl From<Elf64Phdr> for Phdr {
    fn from(p: Elf64Phdr) -> Self {
        Self {
            p_type: p.p_type.get(),
            p_flags: p.p_flags.get(),
            p_offset: p.p_offset.get(),
            p_vaddr: p.p_vaddr.get(),
            p_paddr: p.p_paddr.get(),
            p_filesz: p.p_filesz.get(),
            p_memsz: p.p_memsz.get(),
            p_align: p.p_align.get(),
        }
    }
}

impl From<Phdr> for Elf64Phdr {
    fn from(p: Phdr) -> Self {
        Self {
            p_type: p.p_type.into(),
            p_flags: p.p_flags.into(),
            p_offset: p.p_offset.into(),
            p_vaddr: p.p_vaddr.into(),
            p_paddr: p.p_paddr.into(),
            p_filesz: p.p_filesz.into(),
            p_memsz: p.p_memsz.into(),
            p_align: p.p_align.into(),
        }
    }
}

impl Phdr {
    /// The `PT_LOAD` of range `r` of `kind` in a kernel whose direct map starts at `page_offset`
    /// (see the module documentation of [`elf`](super) for a device vmemmap's `p_vaddr` and
    /// `p_flags`).
    pub const fn load(r: MemRange, page_offset: u64, kind: RangeKind) -> Self {
        let mut p = Self::ram(r, page_offset);
        if let RangeKind::DeviceVmemmap = kind {
            p.p_flags |= PF_DEV_VMEMMAP;
        }
        p
    }

    /// The `PT_LOAD` of RAM range `r` in a kernel whose direct map starts at `page_offset`.
    pub const fn ram(r: MemRange, page_offset: u64) -> Self {
        let size = r.size();
        Self {
            p_type: PT_LOAD,
            p_flags: PF_RWX,
            p_offset: r.start,
            p_vaddr: r.start.wrapping_add(page_offset),
            p_paddr: r.start,
            p_filesz: size,
            p_memsz: size,
            p_align: 0,
        }
    }

    /// A `PT_NOTE` of `size` bytes at physical address `paddr`.
    pub const fn note(paddr: u64, size: u64) -> Self {
        Self {
            p_type: PT_NOTE,
            p_flags: 0,
            p_offset: paddr,
            p_vaddr: 0,
            p_paddr: paddr,
            p_filesz: size,
            p_memsz: size,
            p_align: 0,
        }
    }

    /// The physical range of a non-empty header.
    pub const fn range(&self) -> Option<MemRange> {
        if self.p_memsz == 0 {
            return None;
        }
        match self.p_paddr.checked_add(self.p_memsz - 1) {
            Some(end) => Some(MemRange {
                start: self.p_paddr,
                end,
            }),
            None => None,
        }
    }

    /// Whether this is the `PT_LOAD` of a RAM range in the direct map at `page_offset`, dumped
    /// from where it is (and not, e.g., the kernel-text map, or ppc64's backup region, whose
    /// `p_offset` is the copy's address).
    pub const fn is_ram(&self, page_offset: u64) -> bool {
        matches!(self.listed(page_offset), Some(RangeKind::Ram))
    }

    /// Whether this is the `PT_LOAD` of a device-backed vmemmap ([`PF_DEV_VMEMMAP`]) in the
    /// direct map at `page_offset`.
    pub const fn is_device_vmemmap(&self, page_offset: u64) -> bool {
        matches!(self.listed(page_offset), Some(RangeKind::DeviceVmemmap))
    }

    /// What this program header maps, if it is a `PT_LOAD` of memory dumped from where it is,
    /// at its direct-map address: RAM, or a device vmemmap if `p_flags` has [`PF_DEV_VMEMMAP`].
    pub const fn listed(&self, page_offset: u64) -> Option<RangeKind> {
        if self.p_type != PT_LOAD
            || self.p_vaddr != self.p_paddr.wrapping_add(page_offset)
            || self.p_offset != self.p_paddr
        {
            return None;
        }
        if self.p_flags & PF_DEV_VMEMMAP != 0 {
            Some(RangeKind::DeviceVmemmap)
        } else {
            Some(RangeKind::Ram)
        }
    }

    /// The stored bytes of this program header.
    pub(crate) fn encode(&self) -> [u8; PHDR_SIZE] {
        zerocopy::transmute!(Elf64Phdr::from(*self))
    }

    /// The program header stored at the start of `b`, or `None` if `b` is shorter than one.
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        Elf64Phdr::read_from_prefix(b).ok().map(|(p, _)| p.into())
    }
}
