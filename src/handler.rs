// SPDX-License-Identifier: GPL-2.0-only
//! The generic, arch-neutral event handler.
//!
//! One mutex serialises events (a DIMM brings one event per memory block). For each event the
//! handler takes the kexec lock (retrying: it is never dropped because the lock is busy), finds
//! the loaded crash image and its elfcorehdr segment, checks that the image allows updates, and
//! lets the arch [`backend`](crate::backend) edit the header in place. An event that cannot be
//! applied marks the image *stale*: the sysfs `crash_hotplug` attributes then read 0, so the udev
//! rules fall back to a reload, and the kernel log says what failed and why.

use core::fmt;

use kernel::{
    alloc::KVVec,
    prelude::*,
    sync::global_lock,
    time::{
        Instant,
        Monotonic, //
    },
    uaccess::UserSliceReader,
};

use crate::{
    backend,
    image::{
        self,
        CrashImage,
        KexecLock,
        SegmentInfo,
        SegmentMem, //
    },
    model::{
        slots,
        validate,
        Elfcorehdr,
        Event,
        EventStats,
        Index,
        Node,
        Usage, //
    },
    spec,
};

/// Attempts to take the kexec lock for one event, 1 ms apart: a kexec_load(2) holds it for about
/// a second; 10 s covers a slow load with a wide margin.
const LOCK_ATTEMPTS: u32 = 10_000;
const LOCK_STEP_US: i64 = 1000;
/// Attempts for a sysfs read, 100 us apart (5 ms and more): an edit holds the kexec lock for about
/// a millisecond, so a read that comes during one still gets the image's state; a kexec load
/// holds it for about a second, and then the read reports 0 (the image is being replaced).
const SYSFS_LOCK_ATTEMPTS: u32 = 50;
const SYSFS_LOCK_STEP_US: i64 = 100;

/// Marks an image that missed an update in `kimage::hp_action`, which only the (compiled-out) C
/// handler uses otherwise; a newly loaded image starts with `KEXEC_CRASH_HP_NONE`.
const HP_ACTION_STALE: i32 = 0x100;

/// What the handler has done, for debugfs.
#[derive(Default)]
pub(crate) struct Stats {
    /// Events received, per kind.
    pub(crate) events: EventStats,
    /// Events applied to a loaded image (including those that needed no change).
    pub(crate) applied: u64,
    /// Failed attempts to take the kexec lock, in all.
    pub(crate) lock_retries: u64,
    /// Events that could not be applied (the image was marked stale).
    pub(crate) failed: u64,
    /// Events that arrived with no image, or with one that does not allow updates.
    pub(crate) skipped: u64,
    /// Latency of the last applied event, in ns: from the handler's entry to the end of the
    /// edit, including waits for the handler's mutex and the kexec lock.
    pub(crate) last_ns: i64,
    /// Largest latency of an applied event, in ns.
    pub(crate) max_ns: i64,
    /// Sum of the latencies of applied events, in ns.
    pub(crate) total_ns: i64,
    /// Time the last applied event held the kexec lock (finding the segment and editing it),
    /// in ns.
    pub(crate) last_edit_ns: i64,
    /// Largest such time, in ns.
    pub(crate) max_edit_ns: i64,
    /// Sum of such times, in ns.
    pub(crate) total_edit_ns: i64,
    /// Slot usage of the elfcorehdr after the last applied event.
    pub(crate) usage: Usage,
    /// Physical address and size of the elfcorehdr segment last updated.
    pub(crate) elfcorehdr: (u64, usize),
    /// Index rebuilds (one scan of the table each: a new image, or after a failure).
    pub(crate) index_builds: u64,
}

/// The handler's state: what it has done, and the index of the loaded image's elfcorehdr.
pub(crate) struct State {
    stats: Stats,
    /// Kept across events and images (reallocated only to grow); invalidated whenever the image
    /// may have changed behind it.
    index: Option<Index<KVVec<Node>>>,
    /// Fault injection (debugfs `max_slots`): use at most this many program header slots, 0 for
    /// all the segment holds.
    max_slots: usize,
    /// Fault injection (debugfs `edit_delay_ms`): sleep this long after the first store of each
    /// elfcorehdr edit, so that a test can crash in the middle of one.
    edit_delay_ms: u32,
}

global_lock! {
    // SAFETY: `init()` initialises the lock from the module initialiser, before the notifiers that
    // call `handle()` are registered and before any debugfs or sysfs reader exists.
    unsafe(uninit) static STATE: Mutex<State> = State {
        stats: Stats {
            events: EventStats::new(),
            applied: 0,
            lock_retries: 0,
            failed: 0,
            skipped: 0,
            last_ns: 0,
            max_ns: 0,
            total_ns: 0,
            last_edit_ns: 0,
            max_edit_ns: 0,
            total_edit_ns: 0,
            usage: Usage { phnum: 0, capacity: 0, notes: 0, ram_loads: 0, tombstones: 0 },
            elfcorehdr: (0, 0),
            index_builds: 0,
        },
        index: None,
        max_slots: 0,
        edit_delay_ms: 0,
    };
}

/// Initialises the handler's lock. Must be called once, before any other function here.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any user of `STATE`.
    unsafe { STATE.init() };
}

/// Why an event could not be applied.
pub(crate) enum Failure {
    Lock(u32),
    NoSegment,
    Header(crate::model::HeaderError),
    Edit(crate::model::EditError),
    Gather(Error),
    Write,
    IndexMemory(usize),
    /// The live device tree has no node for this CPU.
    #[cfg(CONFIG_PPC64)]
    NoCpuNode(u32),
    /// The crash image has no FDT segment.
    #[cfg(CONFIG_PPC64)]
    NoFdt,
    #[cfg(CONFIG_PPC64)]
    Fdt(crate::model::fdt::FdtError),
}

impl kernel::fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lock(n) => write!(f, "kexec lock busy after {n} attempts"),
            Self::NoSegment => write!(f, "no elfcorehdr segment in the crash image"),
            Self::Header(e) => write!(f, "elfcorehdr invalid: {e}"),
            Self::Edit(e) => write!(f, "{e}"),
            Self::Gather(e) => write!(f, "reading the system state failed: {e:?}"),
            Self::Write => write!(f, "mapping the elfcorehdr for writing failed"),
            Self::IndexMemory(n) => write!(f, "no memory for the index of {n} program headers"),
            #[cfg(CONFIG_PPC64)]
            Self::NoCpuNode(c) => write!(f, "CPU {c} has no device tree node"),
            #[cfg(CONFIG_PPC64)]
            Self::NoFdt => write!(f, "no FDT segment in the crash image"),
            #[cfg(CONFIG_PPC64)]
            Self::Fdt(e) => write!(f, "crash FDT not updated: {e}"),
        }
    }
}

/// Lets `pr_*!` print events (the pure core implements `core::fmt::Display` only).
impl kernel::fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Finds the elfcorehdr segment: the index recorded at load, or the last segment holding a valid
/// ELF core header (kexec_load images).
fn find_elfcorehdr(image: &mut CrashImage<'_>) -> Option<SegmentInfo> {
    if let Some(s) = image.elfcorehdr_index().and_then(|i| image.segment(i)) {
        return Some(s);
    }
    let mut found = None;
    for i in 0..kernel::bindings::KEXEC_SEGMENT_MAX as usize {
        let Some(s) = image.segment(i) else { break };
        if validate(&SegmentMem::new(image, s)).is_ok() {
            found = Some(i);
        }
    }
    let i = found?;
    image.set_elfcorehdr_index(i);
    image.segment(i)
}

/// What an applied event did.
struct Applied {
    usage: Usage,
    seg: SegmentInfo,
    index_built: bool,
}

/// An index with room for the `n` slots of a segment: the one kept, or a larger one.
fn index_for(
    kept: &mut Option<Index<KVVec<Node>>>,
    n: usize,
) -> Result<&mut Index<KVVec<Node>>, Failure> {
    if kept.as_ref().is_none_or(|ix| ix.slots() < n) {
        *kept = None;
        let nodes =
            KVVec::from_elem(Node::EMPTY, n, GFP_KERNEL).map_err(|_| Failure::IndexMemory(n))?;
        *kept = Some(Index::new(nodes));
    }
    kept.as_mut().ok_or(Failure::IndexMemory(n))
}

/// Applies `event` to the loaded image. `Ok(None)`: nothing to update. Any failure marks the
/// image stale (so `crash_hotplug` reads 0) and invalidates the index.
fn apply(
    lock: &KexecLock,
    event: Event,
    kept: &mut Option<Index<KVVec<Node>>>,
    max_slots: usize,
    edit_delay_ms: u32,
) -> Result<Option<Applied>, Failure> {
    let Some(mut image) = CrashImage::get(lock) else {
        return Ok(None);
    };
    if !image.hotplug_support() {
        return Ok(None);
    }
    let result = edit(lock, &mut image, event, kept, max_slots, edit_delay_ms);
    if result.is_ok() {
        image.set_elfcorehdr_updated();
    } else {
        image.set_hp_action(HP_ACTION_STALE);
        // A refused edit changed nothing, but a failed store may have changed part of the
        // segment: rebuild the index from the segment next time either way.
        if let Some(index) = kept {
            index.invalidate();
        }
    }
    result.map(Some)
}

/// The update of an image that allows it: the elfcorehdr, then the arch's other segments.
fn edit(
    lock: &KexecLock,
    image: &mut CrashImage<'_>,
    event: Event,
    kept: &mut Option<Index<KVVec<Node>>>,
    max_slots: usize,
    edit_delay_ms: u32,
) -> Result<Applied, Failure> {
    let seg = find_elfcorehdr(image).ok_or(Failure::NoSegment)?;
    let index = index_for(kept, slots(seg.memsz))?;
    if !image.elfcorehdr_updated() {
        // A newly loaded image (kexec_load and kexec_file_load allocate a zeroed kimage), or
        // one no event has updated yet: whatever the index holds is not about it.
        index.invalidate();
    }
    let adopt = backend::needs_adoption(image.file_mode(), image.elfcorehdr_updated());
    let notes = if adopt {
        Some(spec::cpu_notes().map_err(Failure::Gather)?)
    } else {
        None
    };
    let builds = index.builds();
    let mut mem = SegmentMem::new(image, seg);
    mem.pause_after_first_store(edit_delay_ms);
    let mut hdr = Elfcorehdr::open(mem, spec::page_offset(), index).map_err(Failure::Header)?;
    if max_slots != 0 {
        hdr.limit_capacity(max_slots);
    }
    // Every edit of the elfcorehdr keeps it valid at every instant: a panic meanwhile may use the
    // image.
    lock.crash_consistent(|| {
        if let Some((notes, size)) = &notes {
            hdr.adopt_notes(notes, *size).map_err(Failure::Edit)?;
        }
        hdr.apply_event(event).map_err(Failure::Edit)
    })?;
    if hdr.segment().failed {
        return Err(Failure::Write);
    }
    let usage = hdr.usage();
    drop(hdr);
    backend::update_others(lock, image, event)?;
    Ok(Applied {
        usage,
        seg,
        index_built: kept.as_ref().is_some_and(|ix| ix.builds() != builds),
    })
}

/// Handles one event. May sleep; called from the CPU hotplug PREPARE callbacks and the memory
/// notifier, both in process context.
pub(crate) fn handle(event: Event) {
    let start = Instant::<Monotonic>::now();
    let mut guard = STATE.lock();
    let State {
        stats: st,
        index,
        max_slots,
        edit_delay_ms,
    } = &mut *guard;
    st.events.record(event);
    if image::kexec_in_progress() {
        return;
    }
    let mut edit_ns = 0;
    let result = match KexecLock::acquire(LOCK_ATTEMPTS, LOCK_STEP_US) {
        Ok((lock, retries)) => {
            st.lock_retries += u64::from(retries);
            let locked = Instant::<Monotonic>::now();
            let r = apply(&lock, event, index, *max_slots, *edit_delay_ms);
            edit_ns = locked.elapsed().as_nanos();
            r
        }
        Err(n) => {
            st.lock_retries += u64::from(n);
            Err(Failure::Lock(n))
        }
    };
    match result {
        Ok(Some(a)) => {
            let ns = start.elapsed().as_nanos();
            st.elfcorehdr = (a.seg.mem, a.seg.memsz);
            st.applied += 1;
            st.index_builds += u64::from(a.index_built);
            st.last_ns = ns;
            st.max_ns = st.max_ns.max(ns);
            st.total_ns = st.total_ns.saturating_add(ns);
            st.last_edit_ns = edit_ns;
            st.max_edit_ns = st.max_edit_ns.max(edit_ns);
            st.total_edit_ns = st.total_edit_ns.saturating_add(edit_ns);
            st.usage = a.usage;
            pr_debug!(
                "{event}: elfcorehdr updated in {edit_ns} ns ({} of {} program headers used)\n",
                a.usage.phnum,
                a.usage.capacity
            );
        }
        Ok(None) => {
            st.skipped += 1;
            pr_debug!("{event}: no loaded crash image allows updates\n");
        }
        Err(e) => {
            st.failed += 1;
            pr_err!(
                "{event}: kdump image NOT updated: {e}; crash_hotplug now reads 0, reload kdump\n"
            );
        }
    }
}

/// The value of `/sys/devices/system/{cpu,memory}/crash_hotplug`, 0 or 1 and nothing else (the
/// attribute is printed with `%d`): 1 if the loaded crash image is kept current by the kernel, 0
/// if not (none loaded, no update support, a missed update) or if the kexec lock stays busy for
/// more than a few milliseconds (a load replacing the image, or an edit held up by fault
/// injection): never a stale image reported as current, never a read that waits seconds. It does
/// not take the handler's mutex, which an event holds while it waits for the kexec lock; the
/// image's state is read under the kexec lock, under which the handler changes it.
pub(crate) fn sysfs_value() -> c_int {
    let Ok((lock, _)) = KexecLock::acquire(SYSFS_LOCK_ATTEMPTS, SYSFS_LOCK_STEP_US) else {
        return 0;
    };
    match CrashImage::get(&lock) {
        Some(image) => c_int::from(image.hotplug_support() && image.hp_action() != HP_ACTION_STALE),
        None => 0,
    }
}

/// debugfs `events`: the format of [`EventStats`]'s `Display`.
pub(crate) fn show_events(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let state = STATE.lock();
    write!(f, "{}", state.stats.events)
}

/// debugfs `stats`: one `key value` line each.
pub(crate) fn show_stats(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let state = STATE.lock();
    let st = &state.stats;
    writeln!(f, "applied {}", st.applied)?;
    writeln!(f, "skipped {}", st.skipped)?;
    writeln!(f, "failed {}", st.failed)?;
    writeln!(f, "lock_retries {}", st.lock_retries)?;
    writeln!(f, "last_ns {}", st.last_ns)?;
    writeln!(f, "max_ns {}", st.max_ns)?;
    writeln!(f, "total_ns {}", st.total_ns)?;
    writeln!(f, "last_edit_ns {}", st.last_edit_ns)?;
    writeln!(f, "max_edit_ns {}", st.max_edit_ns)?;
    writeln!(f, "total_edit_ns {}", st.total_edit_ns)?;
    writeln!(f, "index_builds {}", st.index_builds)?;
    writeln!(f, "elfcorehdr_addr {:#x}", st.elfcorehdr.0)?;
    writeln!(f, "elfcorehdr_size {}", st.elfcorehdr.1)?;
    writeln!(f, "phnum {}", st.usage.phnum)?;
    writeln!(f, "capacity {}", st.usage.capacity)?;
    writeln!(f, "notes {}", st.usage.notes)?;
    writeln!(f, "ram_loads {}", st.usage.ram_loads)?;
    writeln!(f, "tombstones {}", st.usage.tombstones)
}

/// A decimal number written to a debugfs file.
fn read_number(r: &mut UserSliceReader) -> Result<usize> {
    let mut buf = [0u8; 24];
    let n = r.len();
    let text = buf.get_mut(..n).ok_or(EINVAL)?;
    r.read_slice(text)?;
    core::str::from_utf8(text)
        .map_err(|_| EINVAL)?
        .trim()
        .parse::<usize>()
        .map_err(|_| EINVAL)
}

/// debugfs `max_slots`: the fault-injection limit on program header slots (0: none).
pub(crate) fn show_max_slots(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", STATE.lock().max_slots)
}

/// Writing a number to debugfs `max_slots` makes later events behave as if the elfcorehdr segment
/// had only that many program header slots, so that the full-header path (kernel error, image
/// marked stale, `crash_hotplug` reading 0, udev reloading) can be tested on a live system.
pub(crate) fn store_max_slots(_data: &(), r: &mut UserSliceReader) -> Result {
    let v = read_number(r)?;
    STATE.lock().max_slots = v;
    Ok(())
}

/// debugfs `edit_delay_ms`: the fault-injection pause after an edit's first store (0: none).
pub(crate) fn show_edit_delay(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", STATE.lock().edit_delay_ms)
}

/// Writing a number of milliseconds (at most 60000) to debugfs `edit_delay_ms` makes each later
/// elfcorehdr edit pause after its first store, with the kexec lock held, so that a test can
/// panic in the middle of an edit and check that the dump is taken and valid.
pub(crate) fn store_edit_delay(_data: &(), r: &mut UserSliceReader) -> Result {
    let v = u32::try_from(read_number(r)?)
        .ok()
        .filter(|&v| v <= 60_000)
        .ok_or(EINVAL)?;
    STATE.lock().edit_delay_ms = v;
    Ok(())
}
