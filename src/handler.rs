// SPDX-License-Identifier: GPL-2.0-only
//! The generic, arch-neutral event handler.
//!
//! One mutex serialises events (a DIMM brings one event per memory block). Every event is first
//! recorded in the [journal](crate::model::journal) (the last state of what it touched). Then the
//! handler tries the kexec lock for about a millisecond; with it, it finds the loaded crash image
//! and its elfcorehdr segment, checks that the image allows updates, and lets the arch
//! [`backend`](crate::backend) edit the image in place. It never waits longer under the CPU or
//! memory hotplug locks: when the lock stays busy (a load, an unload, a kexec jump), the event is
//! *deferred*: `crash_hotplug` reads 0 at once, and the whole journal is replayed onto whatever
//! image is loaded as soon as the lock is free, by a work item that retries every
//! [`RETRY_MS`] ms, and by the load path itself right after it installs a new crash image (see
//! [`load_end`]). An event that cannot be applied marks the image *stale*: `crash_hotplug` reads 0,
//! so the udev rules fall back to a reload, and the kernel log says what failed and why.

use core::fmt;

use kernel::{
    alloc::KVVec,
    kexec, new_delayed_work,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        global_lock,
        Arc, //
    },
    time::{
        msecs_to_jiffies,
        Instant,
        Monotonic, //
    },
    workqueue::{
        self,
        impl_has_delayed_work,
        DelayedWork,
        WorkItem, //
    },
};

use crate::{
    backend,
    fault::{
        Delay,
        DelayPoint,
        Faults, //
    },
    image::{
        self,
        SegmentMem, //
    },
    model::{
        journal::{
            Entry,
            Journal, //
        },
        slots,
        validate,
        Elfcorehdr,
        Event,
        EventStats,
        Index,
        Node,
        Usage, //
    },
    mutation::{
        self,
        Mutation, //
    },
};

/// How long an event tries the kexec lock, in us: enough for a sysfs read or another short
/// holder; a load or a kexec jump holds it far longer, and then the event is deferred rather than
/// waited for under the hotplug locks.
const LOCK_BUDGET_US: i64 = 1000;
/// Period of the work item that retries deferred events, in ms.
const RETRY_MS: u32 = 10;
/// Entries of the journal's first storage (it doubles when full).
const JOURNAL_START: usize = 16;

/// Whether the loaded crash image is kept current: the value of the sysfs `crash_hotplug` files.
///
/// Set to true only with both the handler's mutex and the kexec lock held, right after the image
/// was checked (loaded, updates allowed, not stale) and brought up to date with the journal; set
/// to false by anything that makes that untrue (a deferred event, a failed update, the start of a
/// crash load). A reader needs no lock: `Release` here and `Acquire` in [`sysfs_value`] order the
/// image updates before the 1 that reports them, on weakly ordered CPUs too.
static CURRENT: Atomic<bool> = Atomic::new(false);

/// Both the CPU hotplug state and the memory notifier are registered: events reach the handler.
/// Until then (or forever, if a registration failed) the sysfs files read 0 and a load does not
/// vouch for its image.
static LIVE: Atomic<bool> = Atomic::new(false);

/// `STATE` is initialised: [`handle_early`] may use it.
static READY: Atomic<bool> = Atomic::new(false);

/// An event arrived before `STATE` was initialised (a device probed before this built-in crate's
/// initcall): it could not be journalled, so no image can be vouched for.
static EARLY_MISSED: Atomic<bool> = Atomic::new(false);

/// Marks the handler live: called by the module initialiser once every registration succeeded.
pub(crate) fn set_live() {
    LIVE.store(true, Release);
}

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
    /// Events that found the kexec lock busy and were deferred.
    pub(crate) deferred: u64,
    /// Replays of the journal onto a loaded image (deferred events, new images).
    pub(crate) replays: u64,
    /// Runs of the retry work item.
    pub(crate) retries: u64,
    /// Crash images loaded (the load path's hook ran).
    pub(crate) loads: u64,
    /// Time the last event spent trying the kexec lock, in ns.
    pub(crate) last_lock_wait_ns: i64,
    /// Largest such time, in ns: how long hotplug waited on the kexec lock at most.
    pub(crate) max_lock_wait_ns: i64,
    /// Events by time spent trying the kexec lock: at most 1 ms, 2 ms, 5 ms, more.
    pub(crate) lock_waits: [u64; 4],
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

/// The work item that applies deferred events once the kexec lock is free.
#[pin_data]
pub(crate) struct Retry {
    #[pin]
    work: DelayedWork<Retry>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Retry { self.work }
}

impl WorkItem for Retry {
    type Pointer = Arc<Retry>;

    fn run(this: Arc<Retry>) {
        retry_deferred(this);
    }
}

/// The handler's state: what it has done, the journal, and the index of the loaded image's
/// elfcorehdr.
pub(crate) struct State {
    stats: Stats,
    /// Kept across events and images (reallocated only to grow); invalidated whenever the image
    /// may have changed behind it.
    index: Option<Index<KVVec<Node>>>,
    /// The last state of everything an event touched since boot.
    journal: Journal<KVVec<Entry>>,
    /// Events were recorded that the loaded image may lack: replay the journal.
    pending: bool,
    /// The journal missed an event (no memory to grow it): no image can be vouched for.
    lossy: bool,
    /// The retry work item (set by `init_retry()`).
    retry: Option<Arc<Retry>>,
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
            deferred: 0,
            replays: 0,
            retries: 0,
            loads: 0,
            last_lock_wait_ns: 0,
            max_lock_wait_ns: 0,
            lock_waits: [0; 4],
            last_ns: 0,
            max_ns: 0,
            total_ns: 0,
            last_edit_ns: 0,
            max_edit_ns: 0,
            total_edit_ns: 0,
            usage: Usage {
                phnum: 0,
                capacity: 0,
                notes: 0,
                ram_loads: 0,
                device_loads: 0,
                tombstones: 0,
            },
            elfcorehdr: (0, 0),
            index_builds: 0,
        },
        index: None,
        journal: Journal::new(KVVec::new()),
        pending: false,
        lossy: false,
        retry: None,
    };
}

/// Initialises the handler's lock. Must be called once, before any other function here.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any user of `STATE`.
    unsafe { STATE.init() };
    READY.store(true, Release);
}

/// Handles an event from a source that is not registered by the module initialiser and may
/// report before it ran (`mm/memremap.c`: a device probed at boot): as [`handle`] once the handler
/// is initialised; before, the event cannot be journalled, and the journal is marked lossy at the
/// next update (`crash_hotplug` then reads 0: the udev rules reload kdump).
pub(crate) fn handle_early(event: Event) {
    if READY.load(Acquire) {
        handle(event);
    } else {
        EARLY_MISSED.store(true, Release);
        pr_err!(
            "{event}: before crash_hotplug was initialised, not recorded; crash_hotplug reads 0\n"
        );
    }
}

/// Creates the retry work item; events deferred before it exists are applied by the next event
/// or load.
pub(crate) fn init_retry() -> Result {
    let retry = Arc::pin_init(
        pin_init!(Retry {
            work <- new_delayed_work!("crash_hotplug::retry"),
        }),
        GFP_KERNEL,
    )?;
    STATE.lock().retry = Some(retry);
    Ok(())
}

/// Why an event could not be applied.
pub(crate) enum Failure {
    NoSegment,
    Header(crate::model::HeaderError),
    Edit(crate::model::EditError),
    Gather(Error),
    Write,
    IndexMemory(usize),
    /// The journal could not record an event: what the image lacks is unknown.
    Lost,
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
            Self::NoSegment => write!(f, "no elfcorehdr segment in the crash image"),
            Self::Header(e) => write!(f, "elfcorehdr invalid: {e}"),
            Self::Edit(e) => write!(f, "{e}"),
            Self::Gather(e) => write!(f, "reading the system state failed: {e:?}"),
            Self::Write => write!(f, "mapping the elfcorehdr for writing failed"),
            Self::IndexMemory(n) => write!(f, "no memory for the index of {n} program headers"),
            Self::Lost => write!(f, "a hotplug event was lost (no memory for the journal)"),
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
fn find_elfcorehdr<'a>(image: &mut kexec::CrashImage<'a>) -> Option<kexec::Segment<'a>> {
    if let Some(s) = image.elfcorehdr_index().and_then(|i| image.segment(i)) {
        return Some(s);
    }
    let mut found = None;
    for i in 0..kexec::SEGMENT_MAX {
        let Some(s) = image.segment(i) else { break };
        if validate(&SegmentMem::new(s)).is_ok() {
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
    /// Where the elfcorehdr is (physical address) and its size.
    elfcorehdr: (u64, usize),
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

/// Records `event` in the journal, growing it if needed. On failure the journal is marked lossy.
fn record(journal: &mut Journal<KVVec<Entry>>, lossy: &mut bool, event: Event) {
    if journal.needs_room() {
        let cap = journal.capacity().saturating_mul(2).max(JOURNAL_START);
        // If this fails, the record below fails too and says so.
        if let Ok(bigger) = KVVec::from_elem(Entry::EMPTY, cap, GFP_KERNEL) {
            drop(journal.grow_into(bigger));
        }
    }
    if journal.record(event).is_err() {
        *lossy = true;
        pr_err!("{event}: no memory to record it; crash_hotplug reads 0 until kdump is reloaded\n");
    }
}

/// What an update did.
enum Outcome {
    /// Applied (`replayed`: the journal, else the event alone).
    Applied { applied: Applied, replayed: bool },
    /// No loaded image allows updates.
    NoImage,
}

/// Brings the loaded image up to date, with the kexec lock held: with `event` alone, or, when
/// events may be missing from it (deferred ones, a newly loaded image: `event` is `None` or
/// `pending` is set), by replaying the whole journal. Publishes the result in [`CURRENT`]. Any
/// failure marks the image stale and invalidates the index.
fn update(
    lock: &kexec::Lock,
    st: &mut State,
    event: Option<Event>,
    faults: &mut Faults,
) -> Result<Outcome, Failure> {
    Delay::at(&mut faults.delay, DelayPoint::Locked);
    let Some(mut image) = lock.crash_image() else {
        st.pending = false;
        CURRENT.store(false, Release);
        return Ok(Outcome::NoImage);
    };
    if !image.hotplug_support() {
        st.pending = false;
        CURRENT.store(false, Release);
        return Ok(Outcome::NoImage);
    }
    if EARLY_MISSED.load(Acquire) {
        st.lossy = true;
    }
    let replay = st.pending || event.is_none();
    let State {
        index,
        journal,
        lossy,
        ..
    } = st;
    let mut result = Ok(None);
    if *lossy {
        result = Err(Failure::Lost);
    } else if replay {
        for e in journal.events() {
            result = edit(lock, &mut image, e, index, faults).map(Some);
            match &result {
                // Later edits of this image keep the index.
                Ok(_) => image.set_elfcorehdr_updated(),
                Err(_) => break,
            }
        }
    } else if let Some(e) = event {
        result = edit(lock, &mut image, e, index, faults).map(Some);
    }
    st.pending = false;
    match result {
        Ok(applied) => {
            if applied.is_some() {
                // (Not for an empty replay: a kexec_load header not adopted yet stays so.)
                image.set_elfcorehdr_updated();
            }
            CURRENT.store(!image.hotplug_stale(), Release);
            Ok(match applied {
                Some(applied) => Outcome::Applied {
                    applied,
                    replayed: replay,
                },
                None => Outcome::NoImage,
            })
        }
        Err(e) => {
            CURRENT.store(mutation::active(Mutation::ReportCurrent), Release);
            image.set_hotplug_stale();
            // A refused edit changed nothing, but a failed store may have changed part of the
            // segment: rebuild the index from the segment next time either way.
            if let Some(index) = &mut st.index {
                index.invalidate();
            }
            Err(e)
        }
    }
}

/// The update of an image that allows it: the elfcorehdr, then the arch's other segments. The
/// kexec lock keeps the image open to a panic throughout: every step keeps it valid.
fn edit(
    lock: &kexec::Lock,
    image: &mut kexec::CrashImage<'_>,
    event: Event,
    kept: &mut Option<Index<KVVec<Node>>>,
    faults: &mut Faults,
) -> Result<Applied, Failure> {
    let seg = find_elfcorehdr(image).ok_or(Failure::NoSegment)?;
    let index = index_for(kept, slots(seg.memsz()))?;
    if !image.elfcorehdr_updated() {
        // A newly loaded image (kexec_load and kexec_file_load allocate a zeroed kimage), or
        // one no event has updated yet: whatever the index holds is not about it.
        index.invalidate();
    }
    Delay::at(&mut faults.delay, DelayPoint::Index);
    let adopt = backend::needs_adoption(image.file_mode(), image.elfcorehdr_updated());
    let notes = if adopt {
        let mut notes = KVec::new();
        for (_, addr) in kexec::crash_notes() {
            notes
                .push(addr, GFP_KERNEL)
                .map_err(|e| Failure::Gather(e.into()))?;
        }
        let size = kexec::CRASH_NOTES_SIZE as u64;
        if mutation::active(Mutation::DropNote) {
            // The last possible CPU's note is not adopted.
            notes.pop();
        }
        Some((notes, size))
    } else {
        None
    };
    Delay::at(&mut faults.delay, DelayPoint::Notes);
    let builds = index.builds();
    let mut mem = SegmentMem::new(seg);
    if let Some(d) = faults.delay.take_if(|d| d.at == DelayPoint::Store) {
        mem.pause_after_first_store(d.ms);
    }
    let mut hdr =
        Elfcorehdr::open(mem, kexec::direct_map_base(), index).map_err(Failure::Header)?;
    if faults.max_slots != 0 {
        hdr.limit_capacity(faults.max_slots);
    }
    // Every edit of the elfcorehdr keeps it valid at every instant: a panic meanwhile may use the
    // image.
    if let Some((notes, size)) = &notes {
        hdr.adopt_notes(notes, *size).map_err(Failure::Edit)?;
    }
    let (event_applied, skip) = mutated(event);
    if !skip {
        hdr.apply_event(event_applied).map_err(Failure::Edit)?;
    }
    if hdr.segment().failed {
        return Err(Failure::Write);
    }
    let usage = hdr.usage();
    Delay::at(&mut faults.delay, DelayPoint::Unmap);
    drop(hdr);
    backend::update_other_segments(lock, image, event)?;
    Ok(Applied {
        usage,
        elfcorehdr: (seg.mem(), seg.memsz()),
        index_built: kept.as_ref().is_some_and(|ix| ix.builds() != builds),
    })
}

/// The event as a mutation (`CONFIG_CRASH_HOTPLUG_TEST_HOOKS`) has it applied, and whether it
/// skips it; `(event, false)` without one.
fn mutated(event: Event) -> (Event, bool) {
    match event {
        Event::OnlineMemory(_) if mutation::active(Mutation::SkipOnline) => (event, true),
        Event::OfflineMemory(_) if mutation::active(Mutation::SkipOffline) => (event, true),
        Event::AddDeviceVmemmap(_) if mutation::active(Mutation::SkipDeviceVmemmap) => {
            (event, true)
        }
        Event::OnlineMemory(r) if mutation::active(Mutation::ShortMemsz) && r.size() > 4096 => (
            Event::OnlineMemory(crate::model::MemRange {
                start: r.start,
                end: r.end - 4096,
            }),
            false,
        ),
        e => (e, false),
    }
}

/// Records the result of an update in the statistics and the log.
fn report(
    st: &mut State,
    what: &dyn kernel::fmt::Display,
    result: Result<Outcome, Failure>,
    start: Instant<Monotonic>,
    edit_ns: i64,
) {
    let s = &mut st.stats;
    match result {
        Ok(Outcome::Applied {
            applied: a,
            replayed,
        }) => {
            let ns = start.elapsed().as_nanos();
            s.elfcorehdr = a.elfcorehdr;
            s.applied += 1;
            s.replays += u64::from(replayed);
            s.index_builds += u64::from(a.index_built);
            s.last_ns = ns;
            s.max_ns = s.max_ns.max(ns);
            s.total_ns = s.total_ns.saturating_add(ns);
            s.last_edit_ns = edit_ns;
            s.max_edit_ns = s.max_edit_ns.max(edit_ns);
            s.total_edit_ns = s.total_edit_ns.saturating_add(edit_ns);
            s.usage = a.usage;
            pr_debug!(
                "{what}: elfcorehdr updated in {edit_ns} ns ({} of {} program headers used{})\n",
                a.usage.phnum,
                a.usage.capacity,
                if replayed { ", journal replayed" } else { "" }
            );
        }
        Ok(Outcome::NoImage) => {
            s.skipped += 1;
            pr_debug!("{what}: no loaded crash image allows updates\n");
        }
        Err(e) => {
            s.failed += 1;
            pr_err!(
                "{what}: kdump image NOT updated: {e}; crash_hotplug now reads 0, reload kdump\n"
            );
        }
    }
}

/// Schedules the retry work item.
fn schedule_retry(st: &State) {
    if let Some(r) = &st.retry {
        // Already queued: that run will see `pending`.
        let _ = workqueue::system().enqueue_delayed(r.clone(), msecs_to_jiffies(RETRY_MS));
    }
}

/// Handles one event. May sleep, but never waits for the kexec lock for more than about a
/// millisecond; called from the CPU hotplug PREPARE callbacks and the memory notifier, both in
/// process context.
pub(crate) fn handle(event: Event) {
    mutation::debug_defects();
    let start = Instant::<Monotonic>::now();
    let mut guard = STATE.lock();
    let st = &mut *guard;
    st.stats.events.record(event);
    let drop_deferred = mutation::active(Mutation::DropDeferred);
    if !drop_deferred {
        record(&mut st.journal, &mut st.lossy, event);
    }
    if kexec::in_progress() {
        return;
    }
    let tried = Instant::<Monotonic>::now();
    let acquired = image::lock_kexec(LOCK_BUDGET_US);
    let wait = tried.elapsed().as_nanos();
    st.stats.last_lock_wait_ns = wait;
    st.stats.max_lock_wait_ns = st.stats.max_lock_wait_ns.max(wait);
    let bucket = [1_000_000, 2_000_000, 5_000_000]
        .iter()
        .position(|&limit| wait <= limit)
        .unwrap_or(3);
    st.stats.lock_waits[bucket] += 1;
    match acquired {
        Ok((lock, retries)) => {
            st.stats.lock_retries += u64::from(retries);
            if drop_deferred {
                record(&mut st.journal, &mut st.lossy, event);
            }
            let mut faults = Faults::current();
            let locked = Instant::<Monotonic>::now();
            let r = update(&lock, st, Some(event), &mut faults);
            let edit_ns = locked.elapsed().as_nanos();
            drop(lock);
            report(st, &event, r, start, edit_ns);
        }
        Err(_) if drop_deferred => {
            pr_warn!("mutation drop_deferred: {event} dropped (kexec lock busy)\n");
        }
        Err(n) => {
            st.stats.lock_retries += u64::from(n);
            st.stats.deferred += 1;
            st.pending = true;
            CURRENT.store(false, Release);
            schedule_retry(st);
            pr_info!("{event}: kexec lock busy, deferred (crash_hotplug reads 0 until applied)\n");
        }
    }
}

/// The retry work item: applies deferred events if the kexec lock is free, else tries again
/// later (without waiting).
fn retry_deferred(this: Arc<Retry>) {
    let start = Instant::<Monotonic>::now();
    let mut guard = STATE.lock();
    let st = &mut *guard;
    if !st.pending {
        return;
    }
    st.stats.retries += 1;
    match image::lock_kexec(0) {
        Ok((lock, _)) => {
            let mut faults = Faults::current();
            let r = update(&lock, st, None, &mut faults);
            let edit_ns = start.elapsed().as_nanos();
            drop(lock);
            report(st, &"deferred events", r, start, edit_ns);
        }
        Err(_) => {
            let _ = workqueue::system().enqueue_delayed(this, msecs_to_jiffies(RETRY_MS));
        }
    }
}

/// A crash load (kexec_load(2) or kexec_file_load(2) with the on-crash flag) starts, with the
/// kexec lock held: the image being replaced is not kept current any more.
pub(crate) fn load_begin() {
    CURRENT.store(false, Release);
}

/// A crash load ends, with the kexec lock held by the caller: the newly loaded image (or the one
/// kept if the load failed) is brought up to date with the journal, since it may have been built
/// from a view of the system older than the last events (kexec_load: userspace read
/// `/proc/iomem` before the syscall), and [`CURRENT`] reports it.
///
/// # Safety
///
/// The calling context holds the kexec lock for the whole call.
pub(crate) unsafe fn load_end() {
    if !LIVE.load(Acquire) {
        return;
    }
    let start = Instant::<Monotonic>::now();
    // SAFETY: The caller holds the kexec lock (function contract); this is the only `kexec::Lock`
    // (other contexts cannot take the lock meanwhile).
    let lock = unsafe { image::kexec_held_by_caller() };
    let mut guard = STATE.lock();
    let st = &mut *guard;
    st.stats.loads += 1;
    let mut faults = Faults::NONE;
    let r = update(&lock, st, None, &mut faults);
    let edit_ns = start.elapsed().as_nanos();
    drop(lock);
    report(st, &"newly loaded crash image", r, start, edit_ns);
}

/// The value of `/sys/devices/system/{cpu,memory}/crash_hotplug`, 0 or 1 and nothing else (the
/// attribute is printed with `%d`): 1 if the loaded crash image is kept current by the kernel and
/// lacks no event, 0 if not (none loaded, no update support, a deferred or missed update, a crash
/// load under way). It takes no lock and never waits.
pub(crate) fn sysfs_value() -> c_int {
    c_int::from(LIVE.load(Acquire) && CURRENT.load(Acquire))
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
    writeln!(f, "deferred {}", st.deferred)?;
    writeln!(f, "replays {}", st.replays)?;
    writeln!(f, "retries {}", st.retries)?;
    writeln!(f, "loads {}", st.loads)?;
    writeln!(f, "pending {}", u8::from(state.pending))?;
    writeln!(f, "lossy {}", u8::from(state.lossy))?;
    writeln!(f, "journal_entries {}", state.journal.len())?;
    writeln!(f, "current {}", u8::from(CURRENT.load(Acquire)))?;
    writeln!(f, "last_lock_wait_ns {}", st.last_lock_wait_ns)?;
    writeln!(f, "max_lock_wait_ns {}", st.max_lock_wait_ns)?;
    for (name, n) in ["le_1ms", "le_2ms", "le_5ms", "gt_5ms"]
        .iter()
        .zip(st.lock_waits)
    {
        writeln!(f, "lock_wait_{name} {n}")?;
    }
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
    writeln!(f, "device_vmemmap_loads {}", st.usage.device_loads)?;
    writeln!(f, "tombstones {}", st.usage.tombstones)
}

/// A decimal number written to a debugfs file.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
pub(crate) fn read_number(r: &mut kernel::uaccess::UserSliceReader) -> Result<usize> {
    let mut buf = [0u8; 24];
    read_word(r, &mut buf)?.parse::<usize>().map_err(|_| EINVAL)
}

/// A short word written to a debugfs file (at most `buf.len()` bytes), trimmed: `EINVAL` if
/// longer or not UTF-8.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
pub(crate) fn read_word<'b>(
    r: &mut kernel::uaccess::UserSliceReader,
    buf: &'b mut [u8],
) -> Result<&'b str> {
    let n = r.len();
    let text = buf.get_mut(..n).ok_or(EINVAL)?;
    r.read_slice(text)?;
    Ok(core::str::from_utf8(text).map_err(|_| EINVAL)?.trim())
}
