// SPDX-License-Identifier: GPL-2.0-only
//! A node to add and its properties: sizing, the strings block's names, and writing the node's
//! tokens.

use super::layout::{align4, Be32, Blocks, FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP};
use crate::model::elf::Segment;

/// The properties of a node to add, as `(name, value)` pairs, walked more than once (to size the
/// node, to find new property names, to write it): every walk must give the same properties in
/// the same order. A source that changes is detected before the switch
/// ([`FdtError::SourceChanged`]); the kernel copies the live node once and walks the copy.
pub trait NodeSource {
    /// Calls `f` with each property.
    fn for_each_prop(&self, f: &mut dyn FnMut(&[u8], &[u8]));
}

impl NodeSource for [(&[u8], &[u8])] {
    fn for_each_prop(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        for (n, v) in self {
            f(n, v);
        }
    }
}

/// The length of the NUL-terminated string at `off` of `seg`, if it ends before `limit`.
pub(super) fn strlen<S: Segment>(seg: &S, off: usize, limit: usize) -> Option<usize> {
    let mut n = 0;
    let mut chunk = [0u8; 32];
    while off + n < limit {
        let avail = (limit - off - n).min(chunk.len());
        seg.read(off + n, &mut chunk[..avail]);
        if let Some(z) = chunk[..avail].iter().position(|&c| c == 0) {
            return Some(n + z);
        }
        n += avail;
    }
    None
}

/// Whether the bytes at `off` of `seg` are `s` followed by a NUL.
pub(super) fn str_eq<S: Segment>(seg: &S, off: usize, s: &[u8]) -> bool {
    let mut chunk = [0u8; 32];
    let mut i = 0;
    while i < s.len() {
        let n = (s.len() - i).min(chunk.len());
        seg.read(off + i, &mut chunk[..n]);
        if chunk[..n] != s[i..i + n] {
            return false;
        }
        i += n;
    }
    let mut z = [1u8];
    seg.read(off + s.len(), &mut z);
    z[0] == 0
}

/// Appends to the strings block of `l` (its bytes end at `at`, free space follows) every name of
/// `props` it lacks, once each, never past `limit`. Returns the bytes the names take (more than
/// `limit - at` if they did not fit; then the ones past it were not written).
pub(super) fn append_names<S: Segment>(
    seg: &mut S,
    l: &Blocks,
    at: usize,
    limit: usize,
    props: &(impl NodeSource + ?Sized),
) -> usize {
    let mut o = at;
    props.for_each_prop(&mut |n, _| {
        let grown = Blocks {
            size_strings: o.min(limit) - l.off_strings,
            ..*l
        };
        if string_offset(&*seg, &grown, n).is_none() {
            if o + n.len() < limit {
                seg.write(o, n);
                seg.write(o + n.len(), &[0]);
            }
            o += n.len() + 1;
        }
    });
    o - at
}

/// Writes node `name` with `props` at `at`, its names from the strings block of `l` (which has
/// them all), never past `limit`. Returns the end of the node: past `limit` if the properties
/// did not fit (then nothing at or after `limit` was written).
pub(super) fn write_node<S: Segment>(
    seg: &mut S,
    l: &Blocks,
    at: usize,
    limit: usize,
    name: &[u8],
    props: &(impl NodeSource + ?Sized),
) -> usize {
    let put = |seg: &mut S, off: usize, data: &[u8]| {
        if off.saturating_add(data.len()) <= limit {
            seg.write(off, data);
        }
    };
    put(seg, at, &Be32::new(FDT_BEGIN_NODE).0);
    put(seg, at + 4, name);
    let pad = align4(name.len() + 1) - name.len();
    put(seg, at + 4 + name.len(), &[0u8; 4][..pad]);
    let mut o = at + 4 + align4(name.len() + 1);
    props.for_each_prop(&mut |n, v| {
        let nameoff = string_offset(&*seg, l, n).unwrap_or(0);
        put(seg, o, &Be32::new(FDT_PROP).0);
        put(seg, o + 4, &Be32::new(v.len() as u32).0);
        put(seg, o + 8, &Be32::new(nameoff as u32).0);
        put(seg, o + 12, v);
        let pad = align4(v.len()) - v.len();
        put(seg, o + 12 + v.len(), &[0u8; 4][..pad]);
        o += 12 + align4(v.len());
    });
    put(seg, o, &Be32::new(FDT_END_NODE).0);
    o + 4
}

/// The offset of `name` in the strings block of `l`.
pub(super) fn string_offset<S: Segment>(seg: &S, l: &Blocks, name: &[u8]) -> Option<usize> {
    let (start, end) = (l.off_strings, l.off_strings + l.size_strings);
    let mut o = start;
    while o < end {
        let n = strlen(seg, o, end)?;
        if n == name.len() && str_eq(seg, o, name) {
            return Some(o - start);
        }
        o += n + 1;
    }
    None
}
