// SPDX-License-Identifier: GPL-2.0-only
//! Hotplug events, as the handler receives them, and their statistics.
//!
//! Every notifier turns what it was told into one [`Event`]; nothing downstream asks the notifier
//! again.

use core::fmt;

/// A physical address range with an inclusive end.
///
/// Same layout as the kernel's `struct range` (two `u64`), so that the array of a
/// `struct crash_mem` can be viewed as `[MemRange]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MemRange {
    /// First byte of the range.
    pub start: u64,
    /// Last byte of the range (inclusive).
    pub end: u64,
}

impl MemRange {
    /// The range covering `nr_pages` pages from page frame `start_pfn`.
    ///
    /// Returns `None` for an empty range or one that does not fit in 64 bits.
    pub const fn from_pfns(start_pfn: u64, nr_pages: u64, page_shift: u32) -> Option<Self> {
        if nr_pages == 0 || page_shift >= 64 {
            return None;
        }
        let Some(last_pfn) = start_pfn.checked_add(nr_pages - 1) else {
            return None;
        };
        if last_pfn > (u64::MAX >> page_shift) {
            return None;
        }
        let start = start_pfn << page_shift;
        let end = (last_pfn << page_shift) | ((1u64 << page_shift) - 1);
        Some(Self { start, end })
    }

    /// The memory block range of a memory notifier event: from the start of the block of
    /// `block_pages` pages that holds `start_pfn` to the end of the `nr_pages` pages from it.
    ///
    /// With `memory_hotplug.memmap_on_memory`, `MEM_ONLINE` and `MEM_OFFLINE` report a block
    /// without its first pages, which hold the block's own `struct page`s
    /// (`memory_block_online()` and `memory_block_offline()` in `drivers/base/memory.c` pass
    /// `start_pfn + nr_vmemmap_pages`).
    /// Those pages are RAM of the block for as long as it is online and belong in the dump:
    /// without them makedumpfile cannot filter it. For an event that starts at a block boundary
    /// (every block without memmap_on_memory) this is [`MemRange::from_pfns`].
    ///
    /// Returns `None` for an empty range, `block_pages == 0`, or a range that does not fit in 64
    /// bits.
    pub const fn block_from_pfns(
        start_pfn: u64,
        nr_pages: u64,
        block_pages: u64,
        page_shift: u32,
    ) -> Option<Self> {
        if nr_pages == 0 || block_pages == 0 {
            return None;
        }
        let Some(end_pfn) = start_pfn.checked_add(nr_pages) else {
            return None;
        };
        let first = start_pfn - start_pfn % block_pages;
        Self::from_pfns(first, end_pfn - first, page_shift)
    }

    /// Number of bytes in the range (never zero).
    ///
    /// Saturates at `u64::MAX` for the one range (`0..=u64::MAX`) whose length does not fit.
    pub const fn size(&self) -> u64 {
        (self.end - self.start).saturating_add(1)
    }
}

impl fmt::Display for MemRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}-{:#x}", self.start, self.end)
    }
}

/// What changed in the system, as far as the crash image is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A CPU is being brought up (CPU hotplug PREPARE section, before it runs).
    AddCpu(u32),
    /// A CPU went down (after it died).
    RemoveCpu(u32),
    /// A memory block went online.
    OnlineMemory(MemRange),
    /// A memory block went offline.
    OfflineMemory(MemRange),
    /// A device-backed vmemmap was set up: a `dev_pagemap` with a valid altmap
    /// (`memremap_pages()`, pmem/dax in `map=dev` mode) keeps the `struct page`s of its pages in
    /// this range of the device itself, `[base_pfn, base_pfn + vmem_altmap_offset())`. It is not
    /// System RAM, but the dump needs it: without it no tool can read the `struct page` of a
    /// device page.
    AddDeviceVmemmap(MemRange),
    /// A device-backed vmemmap is about to be torn down (`memunmap_pages()`).
    RemoveDeviceVmemmap(MemRange),
}

/// The kind of an [`Event`], without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// [`Event::AddCpu`].
    AddCpu = 0,
    /// [`Event::RemoveCpu`].
    RemoveCpu = 1,
    /// [`Event::OnlineMemory`].
    OnlineMemory = 2,
    /// [`Event::OfflineMemory`].
    OfflineMemory = 3,
    /// [`Event::AddDeviceVmemmap`].
    AddDeviceVmemmap = 4,
    /// [`Event::RemoveDeviceVmemmap`].
    RemoveDeviceVmemmap = 5,
}

impl EventKind {
    /// Every kind, in the order of their discriminants.
    pub const ALL: [EventKind; 6] = [
        EventKind::AddCpu,
        EventKind::RemoveCpu,
        EventKind::OnlineMemory,
        EventKind::OfflineMemory,
        EventKind::AddDeviceVmemmap,
        EventKind::RemoveDeviceVmemmap,
    ];

    /// The stable name used in logs and in debugfs.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::AddCpu => "add_cpu",
            EventKind::RemoveCpu => "remove_cpu",
            EventKind::OnlineMemory => "online_memory",
            EventKind::OfflineMemory => "offline_memory",
            EventKind::AddDeviceVmemmap => "add_device_vmemmap",
            EventKind::RemoveDeviceVmemmap => "remove_device_vmemmap",
        }
    }
}

impl Event {
    /// The kind of this event.
    pub const fn kind(&self) -> EventKind {
        match self {
            Event::AddCpu(_) => EventKind::AddCpu,
            Event::RemoveCpu(_) => EventKind::RemoveCpu,
            Event::OnlineMemory(_) => EventKind::OnlineMemory,
            Event::OfflineMemory(_) => EventKind::OfflineMemory,
            Event::AddDeviceVmemmap(_) => EventKind::AddDeviceVmemmap,
            Event::RemoveDeviceVmemmap(_) => EventKind::RemoveDeviceVmemmap,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.kind().name();
        match self {
            Event::AddCpu(cpu) | Event::RemoveCpu(cpu) => write!(f, "{name} cpu{cpu}"),
            Event::OnlineMemory(r)
            | Event::OfflineMemory(r)
            | Event::AddDeviceVmemmap(r)
            | Event::RemoveDeviceVmemmap(r) => write!(f, "{name} {r}"),
        }
    }
}

/// Counts of the events seen, per kind, and the last one.
///
/// Its [`Display`](fmt::Display) form is the debugfs file `crash_hotplug/events`: one
/// `<kind> <count>` line per kind in [`EventKind::ALL`] order, then `last <event>` or `last none`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventStats {
    counts: [u64; EventKind::ALL.len()],
    last: Option<Event>,
}

impl Default for EventStats {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStats {
    /// No events seen.
    pub const fn new() -> Self {
        Self {
            counts: [0; EventKind::ALL.len()],
            last: None,
        }
    }

    /// Counts `event` and remembers it as the last one. Returns the new count of its kind.
    pub fn record(&mut self, event: Event) -> u64 {
        let slot = &mut self.counts[event.kind() as usize];
        *slot = slot.saturating_add(1);
        self.last = Some(event);
        *slot
    }

    /// How many events of `kind` were seen.
    pub const fn count(&self, kind: EventKind) -> u64 {
        self.counts[kind as usize]
    }

    /// How many events were seen in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, c| a.saturating_add(*c))
    }

    /// The last event seen, if any.
    pub const fn last(&self) -> Option<Event> {
        self.last
    }
}

impl fmt::Display for EventStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in EventKind::ALL {
            writeln!(f, "{} {}", kind.name(), self.count(kind))?;
        }
        match &self.last {
            Some(e) => writeln!(f, "last {e}"),
            None => writeln!(f, "last none"),
        }
    }
}
