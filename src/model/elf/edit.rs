// SPDX-License-Identifier: GPL-2.0-only
//! Editing a loaded elfcorehdr in place, crash-consistently (see [`elf`](super)), through its
//! [`Index`].

use core::ops::DerefMut;

use super::{
    error::{
        EditError,
        HeaderError, //
    },
    layout::{
        Phdr,
        EHDR_SIZE,
        E_PHNUM,
        PHDR_SIZE,
        PT_NOTE,
        PT_NULL,
        P_FLAGS,
        P_TYPE, //
    },
    segment::Segment,
    table::{
        validate,
        PhdrTable,
        Usage, //
    },
};
use crate::model::{
    event::{
        Event,
        MemRange, //
    },
    index::{
        Index,
        Node,
        Overlap,
        RangeKind, //
    },
};

/// A validated elfcorehdr in a [`Segment`], with its [`Index`].
///
/// # Invariants
///
/// The segment holds a valid ELF64 little-endian core header (see [`validate`]) with `phnum`
/// visible program headers of `capacity` slots, and `index` describes exactly its visible slots:
/// every RAM `PT_LOAD` in the treap, every `PT_NULL` in the free list, the notes counted.
pub struct Elfcorehdr<'x, S: Segment, N: DerefMut<Target = [Node]>> {
    seg: S,
    phnum: usize,
    capacity: usize,
    page_offset: u64,
    index: &'x mut Index<N>,
}

impl<'x, S: Segment, N: DerefMut<Target = [Node]>> Elfcorehdr<'x, S, N> {
    /// Validates the header in `seg` and brings `index` up to date with it (one scan of the
    /// table if the index does not match it yet). `page_offset` is the virtual address of
    /// physical 0 in the direct map; RAM `PT_LOAD`s are recognised by it and new ones are written
    /// with it.
    pub fn open(seg: S, page_offset: u64, index: &'x mut Index<N>) -> Result<Self, HeaderError> {
        let PhdrTable { phnum, capacity } = validate(&seg)?;
        if index.slots() < capacity {
            return Err(HeaderError::IndexTooSmall {
                need: capacity,
                have: index.slots(),
            });
        }
        let mut hdr = Self {
            seg,
            phnum,
            capacity,
            page_offset,
            index,
        };
        if !hdr.index.is_synced(phnum) {
            hdr.reindex()?;
        }
        Ok(hdr)
    }

    /// Applies a hotplug event's memory change: online adds the range, offline removes it at
    /// once; a device vmemmap set up or torn down likewise; CPU events change nothing (the header
    /// has a note per possible CPU). Returns the number of program headers written or tombstoned.
    pub fn apply_event(&mut self, event: Event) -> Result<usize, EditError> {
        match event {
            Event::OnlineMemory(r) => self.add_ram(r),
            Event::OfflineMemory(r) => self.remove_ram(r),
            Event::AddDeviceVmemmap(r) => self.add_device_vmemmap(r),
            Event::RemoveDeviceVmemmap(r) => self.remove_device_vmemmap(r),
            Event::AddCpu(_) | Event::RemoveCpu(_) => Ok(0),
        }
    }

    /// Uses at most `max` program header slots (never fewer than are visible), as if the segment
    /// were smaller: the fault-injection hook for a full header.
    pub fn limit_capacity(&mut self, max: usize) {
        self.capacity = self.capacity.min(max.max(self.phnum));
    }

    /// Rebuilds the index from the segment. On an overlap the index is left empty and not
    /// synced.
    fn reindex(&mut self) -> Result<(), Overlap> {
        self.index.clear();
        for i in 0..self.phnum {
            let p = self.phdr(i);
            // `i < phnum <= MAX_PHNUM`, which fits the index's slot numbers.
            let x = i as u16;
            match p.p_type {
                PT_NOTE => self.index.count_note(),
                PT_NULL => self.index.push_free(x),
                _ => {
                    if let (Some(kind), Some(r)) = (p.listed(self.page_offset), p.range()) {
                        self.index
                            .insert(x, r, kind)
                            .inspect_err(|_| self.index.clear())?;
                    }
                }
            }
        }
        self.index.set_synced(self.phnum);
        Ok(())
    }

    /// Whether the index describes the visible slots exactly (a fresh scan agrees with it).
    /// O(n); for tests.
    pub fn index_matches(&self) -> bool {
        if !self.index.is_synced(self.phnum) || self.index.check().is_none() {
            return false;
        }
        let (mut notes, mut free, mut ram, mut device) = (0, 0, 0, 0);
        for i in 0..self.phnum {
            let p = self.phdr(i);
            let ok = match p.p_type {
                PT_NOTE => {
                    notes += 1;
                    !self.index.is_free(i) && self.index.listed(i).is_none()
                }
                PT_NULL => {
                    free += 1;
                    self.index.is_free(i)
                }
                _ => match (p.listed(self.page_offset), p.range()) {
                    (Some(kind), Some(r)) => {
                        match kind {
                            RangeKind::Ram => ram += 1,
                            RangeKind::DeviceVmemmap => device += 1,
                        }
                        self.index.listed(i) == Some(kind) && self.index.range(i as u16) == r
                    }
                    _ => !self.index.is_free(i) && self.index.listed(i).is_none(),
                },
            };
            if !ok {
                return false;
            }
        }
        (self.phnum..self.capacity)
            .all(|i| !self.index.is_free(i) && self.index.listed(i).is_none())
            && notes == self.index.note_count()
            && free == self.index.tombstone_count()
            && ram == self.index.ram_count()
            && device == self.index.device_count()
    }

    /// The segment.
    pub fn segment(&self) -> &S {
        &self.seg
    }

    /// Gives the segment back.
    pub fn into_segment(self) -> S {
        self.seg
    }

    /// Program header `i` (visible or not).
    pub fn phdr(&self, i: usize) -> Phdr {
        let mut b = [0u8; PHDR_SIZE];
        if i < self.capacity {
            self.seg.read(EHDR_SIZE + i * PHDR_SIZE, &mut b);
        }
        Phdr::decode(&b).unwrap_or_default()
    }

    /// The visible program headers.
    pub fn phdrs(&self) -> impl Iterator<Item = Phdr> + '_ {
        (0..self.phnum).map(|i| self.phdr(i))
    }

    /// The ranges of the visible RAM `PT_LOAD`s, in table order (read from the segment).
    pub fn ram_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        let po = self.page_offset;
        self.phdrs()
            .filter(move |p| p.is_ram(po))
            .filter_map(|p| p.range())
    }

    /// The ranges of the visible device vmemmap `PT_LOAD`s, in table order (read from the
    /// segment).
    pub fn device_vmemmap_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        let po = self.page_offset;
        self.phdrs()
            .filter(move |p| p.is_device_vmemmap(po))
            .filter_map(|p| p.range())
    }

    /// Slot usage. O(1).
    pub fn usage(&self) -> Usage {
        Usage {
            phnum: self.phnum,
            capacity: self.capacity,
            notes: self.index.note_count(),
            ram_loads: self.index.ram_count(),
            device_loads: self.index.device_count(),
            tombstones: self.index.tombstone_count(),
        }
    }

    fn set_phnum(&mut self, n: usize) {
        self.seg.commit(E_PHNUM, &(n as u16).to_le_bytes());
        self.phnum = n;
        self.index.set_synced(n);
    }

    /// A free slot: a listed tombstone (unlisted now), or the first slot past `e_phnum`.
    fn take_slot(&mut self) -> usize {
        match self.index.pop_free() {
            Some(x) => usize::from(x),
            None => self.phnum,
        }
    }

    /// Writes `p` into free slot `i` (from [`take_slot`](Self::take_slot)) and makes it visible
    /// with the last store.
    fn publish(&mut self, i: usize, p: &Phdr) {
        if i < self.phnum {
            // A tombstone: everything but p_type is invisible while p_type is PT_NULL.
            self.publish_as(i, p);
        } else {
            // Past e_phnum: invisible until e_phnum covers it.
            self.seg.write(EHDR_SIZE + i * PHDR_SIZE, &p.encode());
            self.set_phnum(i + 1);
        }
    }

    /// Fills tombstone `i` with `p` and publishes it with its `p_type` store.
    fn publish_as(&mut self, i: usize, p: &Phdr) {
        let off = EHDR_SIZE + i * PHDR_SIZE;
        let bytes = p.encode();
        self.seg.write(off + P_FLAGS, &bytes[P_FLAGS..]);
        self.seg.commit(off + P_TYPE, &bytes[P_TYPE..P_FLAGS]);
    }

    /// Turns visible slot `i` into a tombstone with one store (the index is updated by the
    /// caller).
    fn tombstone(&mut self, i: usize) {
        let off = EHDR_SIZE + i * PHDR_SIZE;
        self.seg.commit(off + P_TYPE, &PT_NULL.to_le_bytes());
    }

    /// Drops trailing tombstones by lowering `e_phnum` (the dumped set does not change).
    fn trim(&mut self) {
        let mut n = self.phnum;
        while n > 0 && self.index.is_free(n - 1) {
            self.index.take_free((n - 1) as u16);
            n -= 1;
        }
        if n != self.phnum {
            self.set_phnum(n);
        }
    }

    fn full(&self, need: usize, free: usize) -> EditError {
        EditError::Full {
            need,
            free,
            capacity: self.capacity,
        }
    }

    /// The first part of `from..=to` that no listed range (of either kind) covers.
    fn next_gap(&self, from: u64, to: u64) -> Option<MemRange> {
        let mut c = from;
        while c <= to {
            let next = self.index.first_ending_from(c).map(|x| self.index.range(x));
            match next {
                Some(cov) if cov.start <= c => c = cov.end.checked_add(1)?,
                Some(cov) if cov.start <= to => {
                    return Some(MemRange {
                        start: c,
                        end: cov.start - 1,
                    })
                }
                _ => return Some(MemRange { start: c, end: to }),
            }
        }
        None
    }

    /// The parts of `r` that no listed range covers, in address order, passed to `f`.
    fn for_each_gap(&mut self, r: MemRange, mut f: impl FnMut(&mut Self, MemRange)) {
        let mut c = Some(r.start);
        while let Some(g) = c.and_then(|c| self.next_gap(c, r.end)) {
            f(self, g);
            c = g.end.checked_add(1);
        }
    }

    /// Lists range `r` of `kind`, just published in slot `i`, in the index. The callers only list
    /// parts of gaps or of ranges they unlisted, so an overlap means that the index does not
    /// describe the segment: the edit fails and the index is invalidated.
    fn index_range(&mut self, i: usize, r: MemRange, kind: RangeKind) -> Result<(), EditError> {
        self.index.insert(i as u16, r, kind).map_err(|o| {
            self.index.invalidate();
            o.into()
        })
    }

    /// Adds RAM range `r`. Parts already covered by a RAM `PT_LOAD` are not added again, so
    /// adding a range twice is harmless. Returns the number of `PT_LOAD`s written.
    pub fn add_ram(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.add(r, RangeKind::Ram)
    }

    /// Adds device-backed vmemmap range `r` (see the module documentation), as
    /// [`add_ram`](Self::add_ram) adds RAM.
    pub fn add_device_vmemmap(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.add(r, RangeKind::DeviceVmemmap)
    }

    /// Adds range `r` of `kind`: the parts no listed `PT_LOAD` (of either kind) covers.
    fn add(&mut self, r: MemRange, kind: RangeKind) -> Result<usize, EditError> {
        let mut pieces = 0usize;
        self.for_each_gap(r, |_, _| pieces += 1);
        if pieces == 0 {
            return Ok(0);
        }
        let free = self.usage().free();
        // Several pieces are published together past e_phnum, so that one store commits them.
        let tail = self.capacity - self.phnum;
        if pieces == 1 && free == 0 {
            return Err(self.full(pieces, free));
        }
        if pieces > 1 && tail < pieces {
            return Err(self.full(pieces, tail));
        }
        if pieces == 1 {
            if let Some(g) = self.next_gap(r.start, r.end) {
                let slot = self.take_slot();
                self.publish(slot, &Phdr::load(g, self.page_offset, kind));
                self.index_range(slot, g, kind)?;
            }
            return Ok(1);
        }
        let base = self.phnum;
        let mut k = base;
        self.for_each_gap(r, |h, g| {
            h.seg.write(
                EHDR_SIZE + k * PHDR_SIZE,
                &Phdr::load(g, h.page_offset, kind).encode(),
            );
            k += 1;
        });
        self.set_phnum(k);
        for i in base..k {
            let p = self.phdr(i);
            let Some(g) = p
                .range()
                .filter(|_| p.listed(self.page_offset) == Some(kind))
            else {
                self.index.invalidate();
                return Err(EditError::ReadBack { slot: i });
            };
            self.index_range(i, g, kind)?;
        }
        Ok(pieces)
    }

    /// Adds a `PT_NOTE` for each address in `notes` that the header does not list yet, in the
    /// order given, at the end of the leading run of notes.
    ///
    /// This adopts a header built by userspace for kexec_load(2) (one note per CPU present at
    /// load time) so that CPUs hot-added later have their crash notes dumped. The capture kernel
    /// merges the notes assuming they are the first program headers, so each new note goes right
    /// after the last one: the entry in that slot is first copied past `e_phnum` and shown (one
    /// store; listed twice, same dump), then tombstoned (one store), then the note is published
    /// there (one store). The notes of CPUs that are not online at a crash are empty and left out
    /// by the capture kernel, so a new note changes no byte of a dump taken in between. Returns
    /// how many notes were added. Runs once per image: it scans the table and rebuilds the index.
    pub fn adopt_notes(&mut self, notes: &[u64], note_size: u64) -> Result<usize, EditError> {
        let listed = |this: &Self, addr: u64| {
            this.phdrs()
                .any(|p| p.p_type == PT_NOTE && p.p_paddr == addr)
        };
        let need = notes.iter().filter(|&&a| !listed(self, a)).count();
        if need == 0 {
            return Ok(0);
        }
        // Worst case every note displaces an entry to the tail.
        let tail = self.capacity - self.phnum;
        if tail < 2 * need {
            return Err(self.full(2 * need, tail));
        }
        for &addr in notes {
            if listed(self, addr) {
                continue;
            }
            let j = (0..self.phnum)
                .find(|&i| self.phdr(i).p_type != PT_NOTE)
                .unwrap_or(self.phnum);
            let note = Phdr::note(addr, note_size);
            if j == self.phnum {
                self.seg.write(EHDR_SIZE + j * PHDR_SIZE, &note.encode());
                self.set_phnum(j + 1);
                continue;
            }
            let displaced = self.phdr(j);
            if displaced.p_type != PT_NULL {
                let t = self.phnum;
                self.seg
                    .write(EHDR_SIZE + t * PHDR_SIZE, &displaced.encode());
                self.set_phnum(t + 1);
                self.tombstone(j);
            }
            self.publish_as(j, &note);
        }
        // The table was rearranged by slot: rebuild the index from it. The set of RAM ranges
        // did not change, so this finds an overlap only if the open did not scan the table (the
        // index was kept) and the index did not describe it.
        self.reindex()?;
        Ok(need)
    }

    /// The listed range of `kind` with the lowest start that overlaps `r`.
    fn first_overlap(&self, r: MemRange, kind: RangeKind) -> Option<u16> {
        let mut x = self.index.first_ending_from(r.start);
        while let Some(i) = x {
            if self.index.range(i).start > r.end {
                return None;
            }
            if self.index.listed(usize::from(i)) == Some(kind) {
                return Some(i);
            }
            x = self.index.next(i);
        }
        None
    }

    /// The listed ranges of `kind` that overlap `r`, in address order, passed to `f` with their
    /// slot.
    fn for_each_overlap(
        &mut self,
        r: MemRange,
        kind: RangeKind,
        mut f: impl FnMut(&mut Self, usize, MemRange),
    ) {
        let mut x = self.first_overlap(r, kind);
        while let Some(i) = x {
            let range = self.index.range(i);
            if range.start > r.end {
                break;
            }
            if self.index.listed(usize::from(i)) == Some(kind) {
                f(self, usize::from(i), range);
            }
            x = self.index.next(i);
        }
    }

    /// Removes RAM range `r` from the dump. Returns the number of `PT_LOAD`s it touched.
    pub fn remove_ram(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.remove(r, RangeKind::Ram)
    }

    /// Removes device-backed vmemmap range `r` from the dump, as
    /// [`remove_ram`](Self::remove_ram) removes RAM. RAM `PT_LOAD`s are never touched.
    pub fn remove_device_vmemmap(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.remove(r, RangeKind::DeviceVmemmap)
    }

    /// Removes range `r` of `kind`: only listed ranges of that kind are cut or dropped.
    fn remove(&mut self, r: MemRange, kind: RangeKind) -> Result<usize, EditError> {
        let po = self.page_offset;
        // The entries that overlap `r` and, since they are disjoint, at most two remainders
        // outside it: the left part of the first if it starts before `r`, the right part of the
        // last if it ends after it.
        let (mut m, mut first, mut last) = (0usize, None::<MemRange>, None::<MemRange>);
        self.for_each_overlap(r, kind, |_, _, x| {
            m += 1;
            first.get_or_insert(x);
            last = Some(x);
        });
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(0);
        };
        let outside = [
            (first.start < r.start).then(|| MemRange {
                start: first.start,
                end: r.start - 1,
            }),
            (last.end > r.end).then(|| MemRange {
                start: r.end + 1,
                end: last.end,
            }),
        ];
        let n_out = outside.iter().flatten().count();
        let (free, tail) = (self.usage().free(), self.capacity - self.phnum);
        if m == 1 && free < n_out {
            return Err(self.full(n_out, free));
        }
        if m > 1 && tail < n_out + m {
            // The inside parts are moved past e_phnum; count the remainders there too.
            return Err(self.full(n_out + m, tail));
        }
        // 1. Publish the remainders: covered twice until the originals go, same dumped set.
        let mut published = [None::<(usize, MemRange)>; 2];
        for (piece, done) in outside.into_iter().zip(published.iter_mut()) {
            if let Some(piece) = piece {
                let slot = self.take_slot();
                self.publish(slot, &Phdr::load(piece, po, kind));
                *done = Some((slot, piece));
            }
        }
        if m == 1 {
            // 2. One store removes the original: the dumped set is the new one.
            if let Some(i) = self.first_overlap(r, kind) {
                self.tombstone(usize::from(i));
            }
        } else {
            // 2. Copy the inside parts of the originals past e_phnum; one store shows them.
            let base = self.phnum;
            let mut k = base;
            self.for_each_overlap(r, kind, |h, _, x| {
                let inside = MemRange {
                    start: x.start.max(r.start),
                    end: x.end.min(r.end),
                };
                h.seg.write(
                    EHDR_SIZE + k * PHDR_SIZE,
                    &Phdr::load(inside, po, kind).encode(),
                );
                k += 1;
            });
            self.set_phnum(k);
            // 3. Tombstone the originals: the copies keep the dumped set.
            self.for_each_overlap(r, kind, |h, i, _| h.tombstone(i));
            // 4. One store drops the copies: the dumped set is the new one.
            self.set_phnum(base);
        }
        // The index: the originals become tombstones, the remainders are listed.
        while let Some(i) = self.first_overlap(r, kind) {
            self.index.remove_listed(i);
            self.index.push_free(i);
        }
        for (slot, piece) in published.into_iter().flatten() {
            self.index_range(slot, piece, kind)?;
        }
        self.trim();
        Ok(m)
    }
}
