// SPDX-License-Identifier: GPL-2.0-only
//! Why an FDT cannot be read or edited.

use core::fmt;

use super::layout::FDT_MAGIC;

/// Why an FDT cannot be read or edited. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// The segment is shorter than the header or than `totalsize`.
    Truncated,
    /// Not `FDT_MAGIC` (a byte-swapped magic is reported as such).
    BadMagic(u32),
    /// Not a version this editor understands (17, compatible with 16).
    Version(u32),
    /// A block lies outside `totalsize`, or is misaligned.
    Layout,
    /// A malformed token stream at this offset of the structure block.
    Malformed(usize),
    /// No `/cpus` node.
    NoCpus,
    /// No free space for the new structure block.
    Full {
        /// Bytes needed.
        need: usize,
        /// Largest free space found.
        free: usize,
    },
    /// The node's properties changed between sizing the node and writing it (a source must give
    /// the same properties every time); nothing visible was changed.
    SourceChanged {
        /// Bytes planned.
        planned: usize,
        /// Bytes the properties took when written.
        written: usize,
    },
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "FDT truncated"),
            Self::BadMagic(m) if m.swap_bytes() == FDT_MAGIC => {
                write!(f, "FDT magic {m:#x} is byte-swapped (endianness mismatch)")
            }
            Self::BadMagic(m) => write!(f, "bad FDT magic {m:#x}"),
            Self::Version(v) => write!(f, "FDT version {v} not supported"),
            Self::Layout => write!(f, "FDT blocks outside totalsize or misaligned"),
            Self::Malformed(o) => write!(f, "FDT structure block malformed at {o:#x}"),
            Self::NoCpus => write!(f, "FDT has no /cpus node"),
            Self::Full { need, free } => write!(
                f,
                "FDT full: the new structure block needs {need} bytes, {free} free"
            ),
            Self::SourceChanged { planned, written } => write!(
                f,
                "the CPU node changed while it was copied ({planned} bytes planned, {written} \
                 written); nothing was switched"
            ),
        }
    }
}
