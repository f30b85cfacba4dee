// SPDX-License-Identifier: GPL-2.0-only
//! Lists of memory ranges with the semantics of the kernel's `crash_exclude_mem_range()`.
//!
//! A [`RangeList`] lives in caller-provided storage (so the kernel can hand in the array of a
//! `struct crash_mem`): sorted by start, non-overlapping, inclusive ends.

use crate::model::MemRange;

/// There is no free slot for the range that a split would create.
///
/// The list is left exactly as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom {
    /// The capacity of the list.
    pub capacity: usize,
}

/// A sorted list of non-overlapping ranges in a borrowed array.
///
/// # Invariants
///
/// `len <= slots.len()`; `slots[..len]` is sorted by `start` and no two ranges overlap.
#[derive(Debug)]
pub struct RangeList<'a> {
    slots: &'a mut [MemRange],
    len: usize,
}

impl<'a> RangeList<'a> {
    /// An empty list that can hold `slots.len()` ranges.
    pub fn new(slots: &'a mut [MemRange]) -> Self {
        // INVARIANT: An empty list is sorted.
        Self { slots, len: 0 }
    }

    /// A list of the first `len` entries of `slots`, which the caller says are sorted and
    /// disjoint (as in a `struct crash_mem` built by the kernel). `len` is clamped to the storage.
    pub fn from_sorted(slots: &'a mut [MemRange], len: usize) -> Self {
        let len = len.min(slots.len());
        Self { slots, len }
    }

    /// The ranges, in order.
    pub fn as_slice(&self) -> &[MemRange] {
        &self.slots[..self.len]
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list has no range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of ranges.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Appends `r`, which must start after the end of the last range.
    pub fn push(&mut self, r: MemRange) -> Result<(), NoRoom> {
        if self.len == self.slots.len() {
            return Err(NoRoom {
                capacity: self.slots.len(),
            });
        }
        // INVARIANT: The caller appends in order; `r` goes to the first free slot.
        self.slots[self.len] = r;
        self.len += 1;
        Ok(())
    }

    /// Removes `start..=end` from every range it touches: ranges inside it are deleted, ranges
    /// overlapping one side are trimmed, and a range that contains it strictly is split in two.
    ///
    /// A split needs a free slot: without one the call fails with [`NoRoom`] and the list is
    /// unchanged (a split range is the only one `start..=end` touches, so nothing was edited
    /// before). An empty request (`start > end`) changes nothing.
    pub fn exclude(&mut self, start: u64, end: u64) -> Result<(), NoRoom> {
        if start > end {
            return Ok(());
        }
        let mut i = 0;
        while i < self.len {
            let r = self.slots[i];
            if r.end < start {
                i += 1;
                continue;
            }
            if r.start > end {
                // Sorted: no later range can overlap.
                break;
            }
            let cut_start = start.max(r.start);
            let cut_end = end.min(r.end);
            match (cut_start > r.start, cut_end < r.end) {
                (false, false) => {
                    // Entirely covered: delete, and look at the range that moves into `i`.
                    self.slots.copy_within(i + 1..self.len, i);
                    self.len -= 1;
                }
                (true, true) => {
                    if self.len == self.slots.len() {
                        return Err(NoRoom {
                            capacity: self.slots.len(),
                        });
                    }
                    self.slots.copy_within(i + 1..self.len, i + 2);
                    self.slots[i].end = cut_start - 1;
                    self.slots[i + 1] = MemRange {
                        start: cut_end + 1,
                        end: r.end,
                    };
                    self.len += 1;
                    // Nothing after a strictly containing range can overlap.
                    return Ok(());
                }
                (true, false) => {
                    self.slots[i].end = cut_start - 1;
                    i += 1;
                }
                (false, true) => {
                    self.slots[i].start = cut_end + 1;
                    i += 1;
                }
            }
        }
        Ok(())
    }
}
