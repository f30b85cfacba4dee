// SPDX-License-Identifier: GPL-2.0-only
//! The hotplug journal: the last known state of every memory range and CPU that an event has
//! touched since boot, so that no event is ever lost.
//!
//! An event that cannot be applied to the loaded crash image now (the kexec lock is busy: a load,
//! an unload, a kexec jump) is not retried under the hotplug locks; it is recorded here and the
//! whole journal is replayed later, onto whatever image is loaded then: by a work item that
//! retries, and by the load path itself right after it installs a new crash image (a kexec_load(2)
//! header was built by userspace from `/proc/iomem` read earlier, maybe before the last events).
//!
//! Replaying is correct because every edit is idempotent (adding a range that is covered, or
//! removing one that is not listed, changes nothing) and because, for each address and each CPU,
//! only the last event matters: applying the journal's entries in any order to an image that has
//! seen any prefix of the events (none, some, or all) gives the image that has seen all of them.
//! The host tests check exactly that against the elfcorehdr model.
//!
//! The journal is a sorted list of disjoint intervals (of addresses, or of CPU numbers) with
//! their state; adjacent intervals in the same state are merged, so a DIMM of many memory blocks
//! takes one entry. Storage is the caller's (no allocation here): recording needs at most
//! [`Journal::SPARE`] free entries, and [`Journal::grow_into`] moves the journal into larger
//! storage.

use core::ops::DerefMut;

use crate::model::{
    Event,
    MemRange, //
};

/// What an entry describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// CPU numbers.
    #[default]
    Cpu,
    /// Physical addresses of memory blocks (RAM).
    Memory,
    /// Physical addresses of device-backed vmemmaps.
    DeviceVmemmap,
}

/// The last known state of an interval of CPUs or addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    subject: Subject,
    /// First CPU or address.
    start: u64,
    /// Last CPU or address (inclusive).
    end: u64,
    /// Added or online.
    on: bool,
}

impl Entry {
    /// An unused entry: the value to fill new storage with.
    pub const EMPTY: Self = Self {
        subject: Subject::Cpu,
        start: 0,
        end: 0,
        on: false,
    };

    fn key(&self) -> (Subject, u64) {
        (self.subject, self.start)
    }

    fn of(event: Event) -> Self {
        match event {
            Event::AddCpu(c) | Event::RemoveCpu(c) => Self {
                subject: Subject::Cpu,
                start: u64::from(c),
                end: u64::from(c),
                on: matches!(event, Event::AddCpu(_)),
            },
            Event::OnlineMemory(r) | Event::OfflineMemory(r) => Self {
                subject: Subject::Memory,
                start: r.start,
                end: r.end,
                on: matches!(event, Event::OnlineMemory(_)),
            },
            Event::AddDeviceVmemmap(r) | Event::RemoveDeviceVmemmap(r) => Self {
                subject: Subject::DeviceVmemmap,
                start: r.start,
                end: r.end,
                on: matches!(event, Event::AddDeviceVmemmap(_)),
            },
        }
    }

    /// The entry is followed directly by `next` in the same state: one entry can hold both.
    fn joins(&self, next: &Self) -> bool {
        self.subject == next.subject
            && self.on == next.on
            && self.end.checked_add(1) == Some(next.start)
    }
}

/// The journal has no room for an event: grow it (see [`Journal::grow_into`]) and record again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The last known state of everything hotplug events have touched.
pub struct Journal<S> {
    entries: S,
    len: usize,
}

impl<S: DerefMut<Target = [Entry]>> Journal<S> {
    /// Free entries that recording one event may need (an entry split in two around the new one).
    pub const SPARE: usize = 2;

    /// An empty journal in `storage` (its contents are ignored).
    pub const fn new(storage: S) -> Self {
        Self {
            entries: storage,
            len: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event was recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of entries the storage holds.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Whether recording one more event might not fit.
    pub fn needs_room(&self) -> bool {
        self.capacity() - self.len < Self::SPARE
    }

    fn live(&self) -> &[Entry] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    /// Moves the entries into `storage`, which must be at least as large; gives back the old
    /// storage, or `storage` itself (the journal unchanged) if it is too small.
    pub fn grow_into(&mut self, mut storage: S) -> S {
        if storage.len() < self.len {
            return storage;
        }
        storage[..self.len].copy_from_slice(self.live());
        core::mem::swap(&mut self.entries, &mut storage);
        storage
    }

    /// Records `event` as the last state of what it touches. On `Err(Full)` nothing changed.
    pub fn record(&mut self, event: Event) -> Result<(), Full> {
        if self.needs_room() {
            return Err(Full);
        }
        let new = Entry::of(event);
        // Entries of the same subject that overlap the new one, `lo..hi` (sorted and disjoint).
        let lo = self
            .live()
            .partition_point(|e| (e.subject, e.end) < (new.subject, new.start));
        let hi = self
            .live()
            .partition_point(|e| e.key() <= (new.subject, new.end));
        let hi = hi.max(lo);
        // The parts of the overlapped entries outside the new one survive.
        let left = self
            .live()
            .get(lo)
            .filter(|e| lo < hi && e.start < new.start)
            .map(|e| Entry {
                end: new.start - 1,
                ..*e
            });
        let right = self
            .live()
            .get(hi.wrapping_sub(1))
            .filter(|e| lo < hi && e.end > new.end)
            .map(|e| Entry {
                start: new.end + 1,
                ..*e
            });
        let mut put = [Entry::EMPTY; 3];
        let mut n = 0;
        for e in [left, Some(new), right].into_iter().flatten() {
            put[n] = e;
            n += 1;
        }
        // Replace `lo..hi` by `put[..n]`: n - (hi - lo) <= SPARE more entries.
        let tail = self.len - hi;
        let new_len = lo + n + tail;
        self.entries.copy_within(hi..self.len, lo + n);
        self.entries[lo..lo + n].copy_from_slice(&put[..n]);
        self.len = new_len;
        // Merge runs in the same state around the new entry.
        let mut i = lo.saturating_sub(1);
        while i + 1 < self.len && i <= lo + n {
            let (a, b) = (self.entries[i], self.entries[i + 1]);
            if a.joins(&b) {
                self.entries[i].end = b.end;
                self.entries.copy_within(i + 2..self.len, i + 1);
                self.len -= 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// The events that bring an image that has seen any prefix of the recorded events to the
    /// state after all of them: one per memory or device vmemmap entry, one per CPU of a CPU
    /// entry. In order of subject (CPUs, memory, device vmemmaps), then address.
    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        self.live().iter().flat_map(|e| {
            let range = MemRange {
                start: e.start,
                end: e.end,
            };
            let (cpus, mem) = match (e.subject, e.on) {
                (Subject::Cpu, _) => {
                    // CPU numbers come from `u32` events.
                    let first = u32::try_from(e.start).unwrap_or(u32::MAX);
                    let last = u32::try_from(e.end).unwrap_or(u32::MAX);
                    (Some(first..=last), None)
                }
                (Subject::Memory, true) => (None, Some(Event::OnlineMemory(range))),
                (Subject::Memory, false) => (None, Some(Event::OfflineMemory(range))),
                (Subject::DeviceVmemmap, true) => (None, Some(Event::AddDeviceVmemmap(range))),
                (Subject::DeviceVmemmap, false) => (None, Some(Event::RemoveDeviceVmemmap(range))),
            };
            let on = e.on;
            cpus.into_iter()
                .flatten()
                .map(move |c| {
                    if on {
                        Event::AddCpu(c)
                    } else {
                        Event::RemoveCpu(c)
                    }
                })
                .chain(mem)
        })
    }

    /// The entries, for tests and debugfs: subject, first, last, state.
    pub fn entries(&self) -> impl Iterator<Item = (Subject, u64, u64, bool)> + '_ {
        self.live()
            .iter()
            .map(|e| (e.subject, e.start, e.end, e.on))
    }
}
