// SPDX-License-Identifier: GPL-2.0-only
//! The FDT as it is stored (big endian whatever the CPU): the header as a `#[repr(C)]` zerocopy
//! type, whose field offsets are those of the stores that switch blocks, the structure block's
//! tokens and cells, and where the blocks of a valid FDT are.

use core::mem::{offset_of, size_of};

use zerocopy::byteorder::big_endian::U32;

/// A big-endian 32-bit FDT cell, as it is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Be32(pub [u8; 4]);

impl Be32 {
    /// The cell holding `v`.
    pub const fn new(v: u32) -> Self {
        Self(v.to_be_bytes())
    }

    /// The value of the cell.
    pub const fn get(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
}

/// `FDT_MAGIC`.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
pub(super) const FDT_BEGIN_NODE: u32 = 1;
pub(super) const FDT_END_NODE: u32 = 2;
pub(super) const FDT_PROP: u32 = 3;
pub(super) const FDT_NOP: u32 = 4;
pub(super) const FDT_END: u32 = 9;

/// `struct fdt_header` of version 17.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::KnownLayout,
    zerocopy_derive::Immutable,
)]
pub(super) struct FdtHeader {
    pub(super) magic: U32,
    pub(super) totalsize: U32,
    pub(super) off_dt_struct: U32,
    pub(super) off_dt_strings: U32,
    pub(super) off_mem_rsvmap: U32,
    pub(super) version: U32,
    pub(super) last_comp_version: U32,
    pub(super) boot_cpuid_phys: U32,
    pub(super) size_dt_strings: U32,
    pub(super) size_dt_struct: U32,
}

/// Size of a version 17 header.
pub const HEADER_SIZE: usize = size_of::<FdtHeader>();
/// Offset of `off_dt_struct`: the store that switches to a new structure block.
pub(super) const H_OFF_STRUCT: usize = offset_of!(FdtHeader, off_dt_struct);
/// Offset of `off_dt_strings`: the store that switches to a new strings block.
pub(super) const H_OFF_STRINGS: usize = offset_of!(FdtHeader, off_dt_strings);
/// Offset of `size_dt_strings`: the store that grows the strings block.
pub(super) const H_SIZE_STRINGS: usize = offset_of!(FdtHeader, size_dt_strings);
/// Offset of `size_dt_struct`: the store that grows the structure block.
pub(super) const H_SIZE_STRUCT: usize = offset_of!(FdtHeader, size_dt_struct);

// The layout of the devicetree specification (version 17); the switches rely on these offsets.
const _: () = assert!(HEADER_SIZE == 0x28);
const _: () = assert!(H_OFF_STRUCT == 0x08 && H_OFF_STRINGS == 0x0c);
const _: () = assert!(H_SIZE_STRINGS == 0x20 && H_SIZE_STRUCT == 0x24);

/// `n` rounded up to a multiple of 4 (cells and the structure block's items are 4-aligned).
pub(super) const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Where the blocks of a valid FDT are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Blocks {
    pub(super) totalsize: usize,
    pub(super) off_struct: usize,
    pub(super) size_struct: usize,
    pub(super) off_strings: usize,
    pub(super) size_strings: usize,
    pub(super) rsvmap_end: usize,
}

/// Where `/cpus` is in the structure block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpusNode {
    /// Offset (in the segment) of `/cpus`'s `FDT_END_NODE`: new children go right before it.
    pub end: usize,
    /// Child nodes of `/cpus`.
    pub children: usize,
}
