// SPDX-License-Identifier: GPL-2.0-only
//! The editor: adding a CPU node to `/cpus`, by switching to a new structure block (crash
//! consistent) or, for FDTs without room for that, in place.

use super::{
    layout::{
        align4, Be32, Blocks, CpusNode, H_OFF_STRINGS, H_OFF_STRUCT, H_SIZE_STRINGS, H_SIZE_STRUCT,
    },
    node::{append_names, str_eq, string_offset, write_node, NodeSource},
    Fdt, FdtError,
};
use crate::model::elf::Segment;

impl<S: Segment> Fdt<S> {
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
