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

use core::fmt;

use crate::model::elf::Segment;

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
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

const H_MAGIC: usize = 0x00;
const H_TOTALSIZE: usize = 0x04;
const H_OFF_STRUCT: usize = 0x08;
const H_OFF_STRINGS: usize = 0x0c;
const H_OFF_RSVMAP: usize = 0x10;
const H_VERSION: usize = 0x14;
const H_LAST_COMP: usize = 0x18;
const H_SIZE_STRINGS: usize = 0x20;
const H_SIZE_STRUCT: usize = 0x24;
/// Size of a version 17 header.
pub const HEADER_SIZE: usize = 0x28;

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

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The length of the NUL-terminated string at `off` of `seg`, if it ends before `limit`.
fn strlen<S: Segment>(seg: &S, off: usize, limit: usize) -> Option<usize> {
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
fn str_eq<S: Segment>(seg: &S, off: usize, s: &[u8]) -> bool {
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
fn append_names<S: Segment>(
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
fn write_node<S: Segment>(
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
fn string_offset<S: Segment>(seg: &S, l: &Blocks, name: &[u8]) -> Option<usize> {
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

/// Where the blocks of a valid FDT are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blocks {
    totalsize: usize,
    off_struct: usize,
    size_struct: usize,
    off_strings: usize,
    size_strings: usize,
    rsvmap_end: usize,
}

/// Where `/cpus` is in the structure block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpusNode {
    /// Offset (in the segment) of `/cpus`'s `FDT_END_NODE`: new children go right before it.
    pub end: usize,
    /// Child nodes of `/cpus`.
    pub children: usize,
}

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
        let h = |o: usize| {
            let mut b = [0u8; 4];
            seg.read(o, &mut b);
            Be32(b).get() as usize
        };
        let magic = h(H_MAGIC) as u32;
        if magic != FDT_MAGIC {
            return Err(FdtError::BadMagic(magic));
        }
        let (version, last_comp) = (h(H_VERSION) as u32, h(H_LAST_COMP) as u32);
        if version < 17 || last_comp > 17 {
            return Err(FdtError::Version(version));
        }
        let l = Blocks {
            totalsize: h(H_TOTALSIZE),
            off_struct: h(H_OFF_STRUCT),
            size_struct: h(H_SIZE_STRUCT),
            off_strings: h(H_OFF_STRINGS),
            size_strings: h(H_SIZE_STRINGS),
            rsvmap_end: 0,
        };
        if l.totalsize > seg.len() {
            return Err(FdtError::Truncated);
        }
        let inside = |off: usize, size: usize| {
            off >= HEADER_SIZE && off.checked_add(size).is_some_and(|e| e <= l.totalsize)
        };
        let off_rsvmap = h(H_OFF_RSVMAP);
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

    /// Size of the node `name` with `props`, and the bytes its property names not yet in the
    /// strings block take there (each once, with its NUL).
    fn node_size(&self, name: &[u8], props: &(impl NodeSource + ?Sized)) -> (usize, usize) {
        let mut size = 4 + align4(name.len() + 1) + 4;
        let mut new_names = 0usize;
        props.for_each_prop(&mut |n, v| {
            if string_offset(&self.seg, &self.l, n).is_none() {
                new_names += n.len() + 1;
            }
            size += 12 + align4(v.len());
        });
        (size, new_names)
    }

    /// The lowest offset where `need` bytes fit without touching any block the header references
    /// nor `also` (a block being written), and for which `fits` holds; or the largest free span.
    fn free_space(
        &self,
        need: usize,
        also: (usize, usize),
        fits: impl Fn(usize) -> bool,
    ) -> Result<usize, usize> {
        let l = &self.l;
        let used = [
            (0, l.rsvmap_end),
            (l.off_struct, l.off_struct + l.size_struct),
            (l.off_strings, l.off_strings + l.size_strings),
            also,
        ];
        let mut best = 0usize;
        for &(_, end) in &used {
            let start = (end + 7) & !7;
            if used.iter().any(|&(s, e)| s <= start && e > start) {
                continue;
            }
            // The span from `start` to the next used block (or `totalsize`).
            let limit = used
                .iter()
                .map(|&(s, e)| if e > s { s } else { usize::MAX })
                .filter(|&s| s >= start)
                .min()
                .unwrap_or(l.totalsize)
                .min(l.totalsize);
            let span = limit.saturating_sub(start);
            best = best.max(span);
            if span >= need && fits(start) {
                return Ok(start);
            }
        }
        Err(best)
    }

    /// Where a new structure block of `need` bytes goes in the reserve that follows the fixed
    /// blocks (memory reservation map, strings, and `also`, a strings copy being written): split
    /// in two areas used alternately, the one the live structure block is not in. Each area holds
    /// a whole structure block with every node the reserve was sized for (patch 0006 reserves two
    /// such copies and the room for the nodes), so every add can switch blocks, not only the
    /// first. `None` if the reserve is too small or another block is in the way.
    fn area_for(&self, need: usize, also: (usize, usize)) -> Option<usize> {
        let l = &self.l;
        let fixed_end = l.rsvmap_end.max(l.off_strings + l.size_strings).max(also.1);
        let first = fixed_end.checked_add(7)? & !7;
        let half = (l.totalsize.checked_sub(first)? / 2) & !7;
        let second = first + half;
        let at = if (first..second).contains(&l.off_struct) {
            second
        } else {
            first
        };
        let end = at.checked_add(need)?;
        let overlaps = |(s, e): (usize, usize)| s < end && at < e;
        let clear = need <= half
            && !overlaps((l.off_struct, l.off_struct + l.size_struct))
            && !overlaps((l.off_strings, l.off_strings + l.size_strings))
            && !overlaps(also)
            // The first switching store grows the size of the block still in use.
            && l.off_struct + need <= l.totalsize;
        clear.then_some(at)
    }

    /// Copies `len` bytes from `from` to `to` through a small buffer (the ranges do not overlap).
    fn copy(&mut self, from: usize, to: usize, len: usize) {
        let mut buf = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len());
            self.seg.read(from + done, &mut buf[..n]);
            self.seg.write(to + done, &buf[..n]);
            done += n;
        }
    }

    /// Where node `name` with `props` would go, its size and the bytes its new property names
    /// need; `None` if `/cpus` has a child of that name already. One walk of the structure block.
    fn plan(
        &self,
        name: &[u8],
        props: &(impl NodeSource + ?Sized),
    ) -> Result<Option<(CpusNode, usize, usize)>, FdtError> {
        let mut present = false;
        let cpus = self.find_cpus(|off| present |= str_eq(&self.seg, off, name))?;
        if present {
            return Ok(None);
        }
        let (node, new_names) = self.node_size(name, props);
        Ok(Some((cpus, node, new_names)))
    }

    /// Adds node `name` (e.g. `PowerPC,POWER9@8`) with `props` as the last child of `/cpus`, unless
    /// a child of that name exists. Returns whether it was added.
    ///
    /// Property names the strings block lacks are appended to a copy of it first (switched to
    /// with `off_dt_strings`, whose first `size_dt_strings` bytes are the old block, then
    /// `size_dt_strings`), so that the old structure block keeps reading the same names.
    pub fn add_cpu_node(
        &mut self,
        name: &[u8],
        props: &(impl NodeSource + ?Sized),
    ) -> Result<bool, FdtError> {
        let Some((cpus, node, new_names)) = self.plan(name, props)? else {
            return Ok(false);
        };
        let new_size = self.l.size_struct + node;
        let strings_size = self.l.size_strings + new_names;
        // Room for both new blocks is found before anything is written.
        let strings_at = if new_names > 0 {
            let at = self
                .free_space(strings_size, (0, 0), |_| true)
                .map_err(|free| FdtError::Full {
                    need: strings_size,
                    free,
                })?;
            Some(at)
        } else {
            None
        };
        let also = strings_at.map_or((0, 0), |a| (a, a + strings_size));
        let (old_off, total) = (self.l.off_struct, self.l.totalsize);
        let at = match self.area_for(new_size, also) {
            Some(at) => at,
            None => self
                .free_space(new_size, also, |_| old_off + new_size <= total)
                .map_err(|free| FdtError::Full {
                    need: new_size + strings_at.map_or(0, |_| strings_size),
                    free,
                })?,
        };
        if let Some(sat) = strings_at {
            // 1. The strings block with the missing names appended, then the switch: the offset
            //    first (the copy starts with the old block), then the size.
            self.copy(self.l.off_strings, sat, self.l.size_strings);
            let copy = Blocks {
                off_strings: sat,
                ..self.l
            };
            let from = sat + self.l.size_strings;
            let added = append_names(&mut self.seg, &copy, from, sat + strings_size, props);
            if added != new_names {
                // Only the copy was written; nothing references it.
                return Err(FdtError::SourceChanged {
                    planned: new_names,
                    written: added,
                });
            }
            self.seg.commit(H_OFF_STRINGS, &Be32::new(sat as u32).0);
            self.seg
                .commit(H_SIZE_STRINGS, &Be32::new(strings_size as u32).0);
            self.l.off_strings = sat;
            self.l.size_strings = strings_size;
        }
        // 2. The new structure block, in space no reader looks at: the old block up to the end
        //    of /cpus, the node, the rest of the old block.
        let head = cpus.end - self.l.off_struct;
        self.copy(self.l.off_struct, at, head);
        let l = self.l;
        let end = write_node(&mut self.seg, &l, at + head, at + head + node, name, props);
        if end - (at + head) != node {
            // Nothing references the new block yet: the FDT is as it was (with, at most, a
            // strings block that has more names).
            return Err(FdtError::SourceChanged {
                planned: node,
                written: end - (at + head),
            });
        }
        self.copy(cpus.end, end, self.l.size_struct - head);
        // 3. Grow the size (the old block ends with FDT_END inside it), then switch blocks.
        self.seg
            .commit(H_SIZE_STRUCT, &Be32::new(new_size as u32).0);
        self.seg.commit(H_OFF_STRUCT, &Be32::new(at as u32).0);
        self.l.size_struct = new_size;
        self.l.off_struct = at;
        Ok(true)
    }

    /// Adds node `name` like [`add_cpu_node`](Self::add_cpu_node), but in place: everything after
    /// the end of `/cpus` moves up by the node's size. The FDT is **not** valid while the bytes
    /// move, so the caller must keep a crash kexec from starting meanwhile (holding the kexec lock
    /// does; that is how upstream updates it, for every CPU). For FDTs without room for the
    /// block switch, which kexec-tools makes (it pads the crash FDT by the new nodes' size only).
    /// Refused before the first write if the free space after the last block is too small.
    pub fn add_cpu_node_in_place(
        &mut self,
        name: &[u8],
        props: &(impl NodeSource + ?Sized),
    ) -> Result<bool, FdtError> {
        let Some((cpus, node, new_names)) = self.plan(name, props)? else {
            return Ok(false);
        };
        let l = self.l;
        let used_end = l
            .rsvmap_end
            .max(l.off_struct + l.size_struct)
            .max(l.off_strings + l.size_strings);
        let free = l.totalsize - used_end;
        // New names go at the end of the strings block, which must be the last block then.
        let strings_last = l.off_strings >= cpus.end;
        if node + new_names > free || (new_names > 0 && !strings_last) {
            return Err(FdtError::Full {
                need: node + new_names,
                free,
            });
        }
        // 1. Move everything after the end of /cpus up by the node's size, last bytes first.
        let mut left = used_end - cpus.end;
        let mut buf = [0u8; 256];
        while left > 0 {
            let n = left.min(buf.len());
            let from = cpus.end + left - n;
            self.seg.read(from, &mut buf[..n]);
            self.seg.write(from + node, &buf[..n]);
            left -= n;
        }
        let mut nl = l;
        nl.size_struct += node;
        if strings_last {
            nl.off_strings += node;
        }
        // 2. The missing names after the strings block, then the node.
        let from = nl.off_strings + nl.size_strings;
        let added = append_names(&mut self.seg, &nl, from, from + new_names, props);
        if added != new_names {
            return Err(FdtError::SourceChanged {
                planned: new_names,
                written: added,
            });
        }
        nl.size_strings += added;
        let end = write_node(&mut self.seg, &nl, cpus.end, cpus.end + node, name, props);
        if end - cpus.end != node {
            // The moved bytes are not referenced consistently any more; the caller reports the
            // image stale (a crash kexec is held off by the kexec lock meanwhile).
            return Err(FdtError::SourceChanged {
                planned: node,
                written: end - cpus.end,
            });
        }
        // 3. The header.
        self.seg
            .commit(H_OFF_STRINGS, &Be32::new(nl.off_strings as u32).0);
        self.seg
            .commit(H_SIZE_STRINGS, &Be32::new(nl.size_strings as u32).0);
        self.seg
            .commit(H_SIZE_STRUCT, &Be32::new(nl.size_struct as u32).0);
        self.l = nl;
        Ok(true)
    }
}
