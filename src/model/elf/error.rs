// SPDX-License-Identifier: GPL-2.0-only
//! Why a header cannot be used or an edit cannot be made: the domain errors of the ELF core.

use core::fmt;

use crate::model::{event::MemRange, index::Overlap};

/// Why a segment is not a usable elfcorehdr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than an ELF header, or its program headers run past the segment.
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes in the segment.
        have: usize,
    },
    /// Not `\x7fELF`, not ELFCLASS64, not little-endian, or not version 1.
    BadIdent,
    /// `e_type` is not `ET_CORE`.
    NotCore(u16),
    /// `e_phentsize` or `e_ehsize` is not the ELF64 size.
    BadSizes,
    /// `e_phoff` is not right after the ELF header, where the capture kernel reads them.
    BadPhoff(u64),
    /// Two RAM `PT_LOAD`s overlap (a header the kernel did not build), so ranges cannot be
    /// edited one by one.
    Overlap {
        /// One range.
        range: MemRange,
        /// A range listed before it that overlaps it.
        listed: MemRange,
    },
    /// The index storage has fewer nodes than the segment has slots.
    IndexTooSmall {
        /// Slots of the segment.
        need: usize,
        /// Nodes of the storage.
        have: usize,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, segment has {have}")
            }
            Self::BadIdent => write!(f, "not an ELF64 little-endian header"),
            Self::NotCore(t) => write!(f, "e_type {t} is not ET_CORE"),
            Self::BadSizes => write!(f, "e_ehsize/e_phentsize are not the ELF64 sizes"),
            Self::BadPhoff(o) => write!(f, "e_phoff {o:#x} is misplaced"),
            Self::Overlap { range, listed } => write!(
                f,
                "RAM PT_LOAD {:#x}-{:#x} overlaps {:#x}-{:#x}",
                range.start, range.end, listed.start, listed.end
            ),
            Self::IndexTooSmall { need, have } => {
                write!(f, "index has {have} nodes for {need} slots")
            }
        }
    }
}

/// Why an edit failed.
///
/// [`Full`](Self::Full) refuses the edit before its first store: the segment is unchanged. The
/// others are found during the edit: the segment was a valid header at every instant, but it may
/// lack part of the change, and the index no longer matches it and is invalidated (the next
/// [`open`](Elfcorehdr::open) rebuilds it from the segment). The caller must treat the image as
/// not updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditError {
    /// Not enough free program header slots.
    Full {
        /// Slots the edit needs.
        need: usize,
        /// Free slots (tombstones plus room past `e_phnum`).
        free: usize,
        /// Total slots the segment can hold.
        capacity: usize,
    },
    /// The index does not describe the segment (it drifted from it, or the segment changed
    /// behind it): listing a RAM range found a listed range that overlaps it.
    IndexDrift {
        /// The range being listed.
        range: MemRange,
        /// A listed range that overlaps it.
        listed: MemRange,
    },
    /// A program header slot just written does not read back as the RAM `PT_LOAD` written.
    ReadBack {
        /// The slot.
        slot: usize,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full {
                need,
                free,
                capacity,
            } => write!(
                f,
                "elfcorehdr full: edit needs {need} program header slots, {free} free of {capacity}"
            ),
            Self::IndexDrift { range, listed } => write!(
                f,
                "elfcorehdr index out of step with the segment: RAM range {:#x}-{:#x} overlaps \
                 listed {:#x}-{:#x}",
                range.start, range.end, listed.start, listed.end
            ),
            Self::ReadBack { slot } => write!(
                f,
                "elfcorehdr program header {slot} does not read back as the PT_LOAD just written"
            ),
        }
    }
}

/// Two RAM `PT_LOAD`s of a header being opened overlap.
impl From<Overlap> for HeaderError {
    fn from(o: Overlap) -> Self {
        Self::Overlap {
            range: o.range,
            listed: o.listed,
        }
    }
}

/// A range being listed during an edit overlaps a listed one: the index drifted.
impl From<Overlap> for EditError {
    fn from(o: Overlap) -> Self {
        Self::IndexDrift {
            range: o.range,
            listed: o.listed,
        }
    }
}

/// `buf` is too small for the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooSmall {
    /// Bytes needed.
    pub need: usize,
    /// Bytes available.
    pub have: usize,
}
