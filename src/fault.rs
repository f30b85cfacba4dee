// SPDX-License-Identifier: GPL-2.0-only
//! Fault injection for the test suite (`CONFIG_CRASH_HOTPLUG_TEST_HOOKS`, never in a kernel a
//! user runs): debugfs knobs that put the handler in states a test cannot otherwise reach on
//! demand, so that the paths for them can be checked on a live system.
//!
//! - `max_slots`: later events behave as if the elfcorehdr had only that many program header
//!   slots (the full-header path: a kernel error, the image marked stale, `crash_hotplug` 0).
//! - `edit_delay_ms`, `edit_delay_point`: each later update pauses that long at that point with
//!   the kexec lock held, so that a test can panic there.
//! - `hold_lock_ms`: the write takes the kexec lock and holds it that long, as a slow load would
//!   (the deferral of events).
//!
//! Without the Kconfig option there are no files and [`Faults::current`] is [`Faults::NONE`].

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
use core::fmt;

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    uaccess::UserSliceReader,
};
use kernel::{
    prelude::*,
    time::{
        delay::fsleep,
        Delta, //
    },
};

/// Where the fault-injection pause (debugfs `edit_delay_ms`) happens, with the kexec lock held:
/// every point at which the handler holds it, so that a test can panic at each.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DelayPoint {
    /// Right after the lock was taken, before the image is looked at.
    Locked,
    /// After the elfcorehdr segment was found and the index allocated.
    Index,
    /// After the CPU notes were gathered (before the first store).
    Notes,
    /// After the first store of an edit.
    Store,
    /// After the last store, before the page aliases are unmapped and the lock released.
    Unmap,
}

impl DelayPoint {
    const ALL: [(Self, &'static str); 5] = [
        (Self::Locked, "locked"),
        (Self::Index, "index"),
        (Self::Notes, "notes"),
        (Self::Store, "store"),
        (Self::Unmap, "unmap"),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("?", |(_, n)| n)
    }
}

/// A fault-injection pause still to be taken in this update (at most one per update).
pub(crate) struct Delay {
    pub(crate) at: DelayPoint,
    pub(crate) ms: u32,
}

impl Delay {
    /// Sleeps if the pause is set for `here` (once).
    pub(crate) fn at(this: &mut Option<Self>, here: DelayPoint) {
        if let Some(d) = this.take_if(|d| d.at == here && d.ms != 0) {
            pr_info!(
                "fault injection: pausing {} ms at '{}' with the kexec lock held\n",
                d.ms,
                here.name()
            );
            fsleep(Delta::from_millis(i64::from(d.ms)));
        }
    }
}

/// The faults to inject into one update.
pub(crate) struct Faults {
    /// Use at most this many program header slots (0: all the segment holds).
    pub(crate) max_slots: usize,
    /// The pause to take.
    pub(crate) delay: Option<Delay>,
}

impl Faults {
    /// No fault.
    pub(crate) const NONE: Self = Self {
        max_slots: 0,
        delay: None,
    };

    /// The faults the debugfs knobs set now.
    #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
    pub(crate) fn current() -> Self {
        let ms = DELAY_MS.load(Relaxed);
        let at = DelayPoint::ALL
            .get(DELAY_POINT.load(Relaxed))
            .map_or(DelayPoint::Store, |(p, _)| *p);
        Self {
            max_slots: MAX_SLOTS.load(Relaxed),
            delay: (ms != 0).then_some(Delay { at, ms }),
        }
    }

    /// No fault: the knobs do not exist without `CONFIG_CRASH_HOTPLUG_TEST_HOOKS`.
    #[cfg(not(CONFIG_CRASH_HOTPLUG_TEST_HOOKS))]
    pub(crate) fn current() -> Self {
        Self::NONE
    }
}

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
static MAX_SLOTS: Atomic<usize> = Atomic::new(0);
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
static DELAY_MS: Atomic<u32> = Atomic::new(0);
/// Index into [`DelayPoint::ALL`]; `store` by default.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
static DELAY_POINT: Atomic<usize> = Atomic::new(3);

/// The debugfs files of the knobs; they exist as long as this does.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
pub(crate) struct Knobs {
    _files: [Pin<KBox<File<()>>>; 4],
}

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
impl Knobs {
    /// Creates the knobs' files in `dir`. (The callbacks are passed as function items: debugfs
    /// calls them by their type.)
    pub(crate) fn create(dir: &Dir) -> Result<Self> {
        Ok(Self {
            _files: [
                KBox::pin_init(
                    dir.read_write_callback_file(
                        c"max_slots",
                        (),
                        &show_max_slots,
                        &store_max_slots,
                    ),
                    GFP_KERNEL,
                )?,
                KBox::pin_init(
                    dir.read_write_callback_file(c"edit_delay_ms", (), &show_delay, &store_delay),
                    GFP_KERNEL,
                )?,
                KBox::pin_init(
                    dir.read_write_callback_file(
                        c"edit_delay_point",
                        (),
                        &show_delay_point,
                        &store_delay_point,
                    ),
                    GFP_KERNEL,
                )?,
                KBox::pin_init(
                    dir.read_write_callback_file(
                        c"hold_lock_ms",
                        (),
                        &show_hold_lock,
                        &store_hold_lock,
                    ),
                    GFP_KERNEL,
                )?,
            ],
        })
    }
}

/// A number of milliseconds written to a debugfs file: at most a minute.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn read_ms(r: &mut UserSliceReader) -> Result<u32> {
    u32::try_from(crate::handler::read_number(r)?)
        .ok()
        .filter(|&v| v <= 60_000)
        .ok_or(EINVAL)
}

/// debugfs `max_slots`: the limit on program header slots (0: none).
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn show_max_slots(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", MAX_SLOTS.load(Relaxed))
}

/// Writing a number to debugfs `max_slots` sets the limit for later events.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn store_max_slots(_data: &(), r: &mut UserSliceReader) -> Result {
    MAX_SLOTS.store(crate::handler::read_number(r)?, Relaxed);
    Ok(())
}

/// debugfs `edit_delay_ms`: the pause (0: none).
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn show_delay(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", DELAY_MS.load(Relaxed))
}

/// Writing a number of milliseconds (at most 60000) to debugfs `edit_delay_ms` makes each later
/// update pause at the point `edit_delay_point` names.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn store_delay(_data: &(), r: &mut UserSliceReader) -> Result {
    DELAY_MS.store(read_ms(r)?, Relaxed);
    Ok(())
}

/// debugfs `edit_delay_point`: where the pause happens.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn show_delay_point(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let name = DelayPoint::ALL
        .get(DELAY_POINT.load(Relaxed))
        .map_or("?", |(p, _)| p.name());
    writeln!(f, "{name}")
}

/// Writing `locked`, `index`, `notes`, `store` (the default) or `unmap` to debugfs
/// `edit_delay_point` moves the pause there (see [`DelayPoint`]).
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn store_delay_point(_data: &(), r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let name = crate::handler::read_word(r, &mut buf)?;
    let i = DelayPoint::ALL
        .iter()
        .position(|(_, n)| *n == name)
        .ok_or(EINVAL)?;
    DELAY_POINT.store(i, Relaxed);
    Ok(())
}

/// debugfs `hold_lock_ms`: reads 0 (the hold happens in the write).
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn show_hold_lock(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "0")
}

/// Writing a number of milliseconds (at most 60000) to debugfs `hold_lock_ms` takes the kexec lock
/// (`EBUSY` if it is busy) and holds it that long before the write returns, as a slow load or a
/// kexec jump would. The handler's mutex is not held, so events meet the busy kexec lock and are
/// deferred.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
fn store_hold_lock(_data: &(), r: &mut UserSliceReader) -> Result {
    let ms = read_ms(r)?;
    let (lock, _) = crate::image::lock_kexec(0).map_err(|_| EBUSY)?;
    pr_info!("fault injection: holding the kexec lock for {ms} ms\n");
    fsleep(Delta::from_millis(i64::from(ms)));
    drop(lock);
    pr_info!("fault injection: kexec lock released after {ms} ms\n");
    Ok(())
}
