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
    prelude::*,
    sync::global_lock,
    time::{
        Instant,
        Monotonic, //
    },
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
        Elfcorehdr,
        Event,
        EventStats,
        Usage, //
    },
    spec,
};

/// Attempts to take the kexec lock for one event, 1 ms apart: a kexec_load(2) holds it for about
/// a second; 10 s covers a slow load with a wide margin.
const LOCK_ATTEMPTS: u32 = 10_000;
/// Attempts for a sysfs read (it returns -EBUSY rather than a wrong 0 if they run out).
const SYSFS_LOCK_ATTEMPTS: u32 = 10_000;
const LOCK_STEP_US: i64 = 1000;

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
    /// Handler time of the last applied event, in ns.
    pub(crate) last_ns: i64,
    /// Largest handler time of an applied event, in ns.
    pub(crate) max_ns: i64,
    /// Sum of the handler times of applied events, in ns.
    pub(crate) total_ns: i64,
    /// Slot usage of the elfcorehdr after the last applied event.
    pub(crate) usage: Usage,
    /// Physical address and size of the elfcorehdr segment last updated.
    pub(crate) elfcorehdr: (u64, usize),
}

global_lock! {
    // SAFETY: `init()` initialises the lock from the module initialiser, before the notifiers that
    // call `handle()` are registered and before any debugfs or sysfs reader exists.
    unsafe(uninit) static STATE: Mutex<Stats> = Stats {
        events: EventStats::new(),
        applied: 0,
        lock_retries: 0,
        failed: 0,
        skipped: 0,
        last_ns: 0,
        max_ns: 0,
        total_ns: 0,
        usage: Usage { phnum: 0, capacity: 0, notes: 0, ram_loads: 0, tombstones: 0 },
        elfcorehdr: (0, 0),
    };
}

/// Initialises the handler's lock. Must be called once, before any other function here.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any user of `STATE`.
    unsafe { STATE.init() };
}

/// Why an event could not be applied.
enum Failure {
    Lock(u32),
    NoSegment,
    Header(crate::model::HeaderError),
    Edit(crate::model::EditError),
    Gather(Error),
    Write,
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
    let po = spec::page_offset();
    let mut found = None;
    for i in 0..kernel::bindings::KEXEC_SEGMENT_MAX as usize {
        let Some(s) = image.segment(i) else { break };
        if Elfcorehdr::open(SegmentMem::new(image, s), po).is_ok() {
            found = Some(i);
        }
    }
    let i = found?;
    image.set_elfcorehdr_index(i);
    image.segment(i)
}

/// Applies `event` to the loaded image. `Ok(None)`: nothing to update.
fn apply(lock: &KexecLock, event: Event) -> Result<Option<(Usage, SegmentInfo)>, Failure> {
    let Some(mut image) = CrashImage::get(lock) else {
        return Ok(None);
    };
    if !image.hotplug_support() {
        return Ok(None);
    }
    let seg = find_elfcorehdr(&mut image).ok_or(Failure::NoSegment)?;
    let adopt = backend::needs_adoption(image.file_mode(), image.elfcorehdr_updated());
    let notes = if adopt {
        Some(spec::cpu_notes().map_err(Failure::Gather)?)
    } else {
        None
    };
    let result = {
        let mut hdr = Elfcorehdr::open(SegmentMem::new(&image, seg), spec::page_offset())
            .map_err(Failure::Header)?;
        let r = (|| {
            if let Some((notes, size)) = &notes {
                hdr.adopt_notes(notes, *size).map_err(Failure::Edit)?;
            }
            backend::apply(&mut hdr, event).map_err(Failure::Edit)
        })();
        match r {
            Ok(_) if hdr.segment().failed => Err(Failure::Write),
            Ok(_) => Ok(Some((hdr.usage(), seg))),
            Err(e) => Err(e),
        }
    };
    if result.is_ok() {
        image.set_elfcorehdr_updated();
    } else {
        image.set_hp_action(HP_ACTION_STALE);
    }
    result
}

/// Handles one event. May sleep; called from the CPU hotplug PREPARE callbacks and the memory
/// notifier, both in process context.
pub(crate) fn handle(event: Event) {
    let start = Instant::<Monotonic>::now();
    let mut st = STATE.lock();
    st.events.record(event);
    if image::kexec_in_progress() {
        return;
    }
    let result = match KexecLock::acquire(LOCK_ATTEMPTS, LOCK_STEP_US) {
        Ok((lock, retries)) => {
            st.lock_retries += u64::from(retries);
            apply(&lock, event)
        }
        Err(n) => {
            st.lock_retries += u64::from(n);
            Err(Failure::Lock(n))
        }
    };
    match result {
        Ok(Some((usage, seg))) => {
            st.elfcorehdr = (seg.mem, seg.memsz);
            let ns = start.elapsed().as_nanos();
            st.applied += 1;
            st.last_ns = ns;
            st.max_ns = st.max_ns.max(ns);
            st.total_ns = st.total_ns.saturating_add(ns);
            st.usage = usage;
            pr_info!(
                "{event}: elfcorehdr updated in {ns} ns ({} of {} program headers used)\n",
                usage.phnum,
                usage.capacity
            );
        }
        Ok(None) => {
            st.skipped += 1;
            pr_info!("{event}: no loaded crash image allows updates\n");
        }
        Err(e) => {
            st.failed += 1;
            pr_err!(
                "{event}: kdump image NOT updated: {e}; crash_hotplug now reads 0, reload kdump\n"
            );
        }
    }
}

/// The value of `/sys/devices/system/{cpu,memory}/crash_hotplug`: 1 if the loaded crash image is
/// kept current by the kernel, 0 if not (none loaded, no update support, or a missed update),
/// or -EBUSY if the kexec lock stayed busy (never a wrong 0 because of a busy lock).
pub(crate) fn sysfs_value() -> c_int {
    let _st = STATE.lock();
    let Ok((lock, _)) = KexecLock::acquire(SYSFS_LOCK_ATTEMPTS, LOCK_STEP_US) else {
        return EBUSY.to_errno();
    };
    match CrashImage::get(&lock) {
        Some(image) => c_int::from(image.hotplug_support() && image.hp_action() != HP_ACTION_STALE),
        None => 0,
    }
}

/// debugfs `events`: the format of [`EventStats`]'s `Display`.
pub(crate) fn show_events(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let st = STATE.lock();
    write!(f, "{}", st.events)
}

/// debugfs `stats`: one `key value` line each.
pub(crate) fn show_stats(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let st = STATE.lock();
    writeln!(f, "applied {}", st.applied)?;
    writeln!(f, "skipped {}", st.skipped)?;
    writeln!(f, "failed {}", st.failed)?;
    writeln!(f, "lock_retries {}", st.lock_retries)?;
    writeln!(f, "last_ns {}", st.last_ns)?;
    writeln!(f, "max_ns {}", st.max_ns)?;
    writeln!(f, "total_ns {}", st.total_ns)?;
    writeln!(f, "elfcorehdr_addr {:#x}", st.elfcorehdr.0)?;
    writeln!(f, "elfcorehdr_size {}", st.elfcorehdr.1)?;
    writeln!(f, "phnum {}", st.usage.phnum)?;
    writeln!(f, "capacity {}", st.usage.capacity)?;
    writeln!(f, "notes {}", st.usage.notes)?;
    writeln!(f, "ram_loads {}", st.usage.ram_loads)?;
    writeln!(f, "tombstones {}", st.usage.tombstones)
}
