// SPDX-License-Identifier: GPL-2.0-only
//! The crash kernel's flattened device tree (FDT): adding a hot-added CPU's node to `/cpus`.
//!
//! FDT data is big-endian whatever the CPU: every cell is read and written through [`Be32`].
//!
//! # Crash consistency
//!
//! The capture kernel reads the FDT at the instant of a panic, so an edit never shifts live
//! bytes. Adding a node writes a whole new structure block (the old one with the node inserted
//! at the end of `/cpus`) into space the header does not reference, then switches to it with
//! two aligned 4-byte stores: `size_dt_struct` first (the old block, still in use, ends with
//! `FDT_END` well inside the larger size, and the larger block stays inside `totalsize`), then
//! `off_dt_struct`. Between any two stores the FDT is valid and lists either the old or the new
//! set of CPU nodes. Property names the strings block lacks are first appended to a copy of it,
//! switched to the same way (`off_dt_strings`, then `size_dt_strings`), which the old structure
//! block reads exactly as before. An edit without the free space for the new blocks is refused
//! before the first write.

//!
//! The files: [`layout`] (the stored header, tokens and cells), [`error`], `node` (a node's
//! properties and how they are written), `edit` (the editor); this file reads and validates.

mod edit;
pub mod error;
pub mod layout;
mod node;

pub use error::FdtError;
pub use layout::{Be32, CpusNode, FDT_MAGIC, HEADER_SIZE};
pub use node::NodeSource;

use layout::{align4, Blocks, FdtHeader, FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_NOP, FDT_PROP};
use node::{str_eq, strlen};
use zerocopy::FromBytes;

use crate::model::elf::Segment;

/// A validated FDT in a [`Segment`].
///
/// # Invariants
///
/// The segment holds an FDT of version 17 whose header, memory reservation map, structure and
/// strings blocks lie inside `totalsize`, which is inside the segment.
pub struct Fdt<S: Segment> {
    seg: S,
    l: Blocks,
}

impl<S: Segment> Fdt<S> {
    /// Validates the FDT in `seg`.
    pub fn open(seg: S) -> Result<Self, FdtError> {
        if seg.len() < HEADER_SIZE {
            return Err(FdtError::Truncated);
        }
        let mut raw = [0u8; HEADER_SIZE];
        seg.read(0, &mut raw);
        let Ok(h) = FdtHeader::read_from_bytes(&raw[..]) else {
            return Err(FdtError::Truncated);
        };
        let magic = h.magic.get();
        if magic != FDT_MAGIC {
            return Err(FdtError::BadMagic(magic));
        }
        let (version, last_comp) = (h.version.get(), h.last_comp_version.get());
        if version < 17 || last_comp > 17 {
            return Err(FdtError::Version(version));
        }
        let at = |v: zerocopy::byteorder::big_endian::U32| v.get() as usize;
        let l = Blocks {
            totalsize: at(h.totalsize),
            off_struct: at(h.off_dt_struct),
            size_struct: at(h.size_dt_struct),
            off_strings: at(h.off_dt_strings),
            size_strings: at(h.size_dt_strings),
            rsvmap_end: 0,
        };
        if l.totalsize > seg.len() {
            return Err(FdtError::Truncated);
        }
        let inside = |off: usize, size: usize| {
            off >= HEADER_SIZE && off.checked_add(size).is_some_and(|e| e <= l.totalsize)
        };
        let off_rsvmap = at(h.off_mem_rsvmap);
        if !inside(l.off_struct, l.size_struct)
            || !inside(l.off_strings, l.size_strings)
            || !inside(off_rsvmap, 16)
            || l.off_struct % 4 != 0
            || off_rsvmap % 8 != 0
        {
            return Err(FdtError::Layout);
        }
        let mut fdt = Self { seg, l };
        // The memory reservation map ends with an all-zero entry.
        let mut o = off_rsvmap;
        loop {
            if !inside(o, 16) {
                return Err(FdtError::Layout);
            }
            let mut e = [0u8; 16];
            fdt.seg.read(o, &mut e);
            o += 16;
            if e == [0u8; 16] {
                break;
            }
        }
        fdt.l.rsvmap_end = o;
        Ok(fdt)
    }

    /// The segment.
    pub fn segment(&self) -> &S {
        &self.seg
    }

    /// Gives the segment back.
    pub fn into_segment(self) -> S {
        self.seg
    }

    fn cell(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.seg.read(off, &mut b);
        Be32(b).get()
    }

    /// The token at `off` and the offset of the next one.
    fn token(&self, off: usize) -> Result<(u32, usize), FdtError> {
        let end = self.l.off_struct + self.l.size_struct;
        if off + 4 > end {
            return Err(FdtError::Malformed(off));
        }
        let tag = self.cell(off);
        let next = match tag {
            FDT_BEGIN_NODE => {
                let n = strlen(&self.seg, off + 4, end).ok_or(FdtError::Malformed(off))?;
                off + 4 + align4(n + 1)
            }
            FDT_PROP => {
                if off + 12 > end {
                    return Err(FdtError::Malformed(off));
                }
                let len = self.cell(off + 4) as usize;
                off + 12 + align4(len)
            }
            FDT_END_NODE | FDT_NOP | FDT_END => off + 4,
            _ => return Err(FdtError::Malformed(off)),
        };
        if next > end {
            return Err(FdtError::Malformed(off));
        }
        Ok((tag, next))
    }

    /// Finds `/cpus` and counts its children.
    pub fn cpus(&self) -> Result<CpusNode, FdtError> {
        self.find_cpus(|_| {})
    }

    /// Whether `/cpus` has a child named `name` (with its unit address, e.g. `PowerPC,POWER9@8`).
    pub fn has_cpu_node(&self, name: &[u8]) -> Result<bool, FdtError> {
        let mut found = false;
        self.find_cpus(|off| found |= str_eq(&self.seg, off, name))?;
        Ok(found)
    }

    /// Walks the structure block to `/cpus`, calling `child` with the name offset of each child.
    fn find_cpus(&self, mut child: impl FnMut(usize)) -> Result<CpusNode, FdtError> {
        let mut off = self.l.off_struct;
        let mut depth = 0usize;
        let mut in_cpus = false;
        let mut children = 0usize;
        loop {
            let (tag, next) = self.token(off)?;
            match tag {
                FDT_BEGIN_NODE => {
                    depth += 1;
                    if depth == 2 && str_eq(&self.seg, off + 4, b"cpus") {
                        in_cpus = true;
                    } else if in_cpus && depth == 3 {
                        children += 1;
                        child(off + 4);
                    }
                }
                FDT_END_NODE => {
                    if depth == 0 {
                        return Err(FdtError::Malformed(off));
                    }
                    if in_cpus && depth == 2 {
                        return Ok(CpusNode { end: off, children });
                    }
                    depth -= 1;
                }
                FDT_END => return Err(FdtError::NoCpus),
                _ => {}
            }
            off = next;
        }
    }
}
