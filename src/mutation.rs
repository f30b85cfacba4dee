// SPDX-License-Identifier: GPL-2.0-only
//! Mutations for the test suite's mutation matrix (`CONFIG_CRASH_HOTPLUG_TEST_HOOKS`, never in a
//! kernel a user runs): each breaks one behaviour the suite's checks claim to guard, so that a
//! run with it shows the matching check, and only that one, failing.
//!
//! debugfs `crash_hotplug/mutation` takes the name of one mutation (or `none`). Without the
//! Kconfig option there is no file and [`active`] is `false` at compile time.

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
use core::fmt;

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
use kernel::{
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    uaccess::UserSliceReader,
};

/// One broken behaviour.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_CRASH_HOTPLUG_TEST_HOOKS), allow(dead_code))]
pub(crate) enum Mutation {
    /// A memory block that goes online is not added to the elfcorehdr (reported applied).
    SkipOnline = 1,
    /// A memory block that goes offline is not removed.
    SkipOffline,
    /// An online block is added one page short (a stale `p_memsz`).
    ShortMemsz,
    /// A kexec_load header's notes are adopted without the last possible CPU's.
    DropNote,
    /// An image whose update failed is reported current (`crash_hotplug` reads 1).
    ReportCurrent,
    /// An event that finds the kexec lock busy is dropped: not journalled, not deferred.
    DropDeferred,
    /// The crash image is not opened to a panic while the handler holds the kexec lock.
    NoWindow,
    /// A hot-added CPU's node is not added to the crash FDT (ppc64).
    SkipFdtCpu,
    /// A device vmemmap set up after the load (a pmem namespace bound in pfn mode `pmem`) is not
    /// added to the elfcorehdr (reported applied).
    SkipDeviceVmemmap,
    /// Each event leaks a small allocation (kmemleak must report it on the debug kernel).
    Leak,
    /// Each event sleeps inside an RCU read-side section (atomic: the debug kernel's
    /// `DEBUG_ATOMIC_SLEEP` must report it).
    SleepInAtomic,
}

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
const NAMES: [(Mutation, &str); 11] = [
    (Mutation::SkipOnline, "skip_online"),
    (Mutation::SkipOffline, "skip_offline"),
    (Mutation::ShortMemsz, "short_memsz"),
    (Mutation::DropNote, "drop_note"),
    (Mutation::ReportCurrent, "report_current"),
    (Mutation::DropDeferred, "drop_deferred"),
    (Mutation::NoWindow, "no_window"),
    (Mutation::SkipFdtCpu, "skip_fdt_cpu"),
    (Mutation::SkipDeviceVmemmap, "skip_device_vmemmap"),
    (Mutation::Leak, "leak"),
    (Mutation::SleepInAtomic, "sleep_in_atomic"),
];

/// The active mutation, as its discriminant (0: none).
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
static ACTIVE: Atomic<u32> = Atomic::new(0);

/// Whether mutation `m` is active.
#[inline]
pub(crate) fn active(m: Mutation) -> bool {
    #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
    {
        ACTIVE.load(Relaxed) == m as u32
    }
    #[cfg(not(CONFIG_CRASH_HOTPLUG_TEST_HOOKS))]
    {
        let _ = m;
        false
    }
}

/// The defects of [`Mutation::Leak`] and [`Mutation::SleepInAtomic`], made once per event: only
/// the debug kernel's checkers (kmemleak, `DEBUG_ATOMIC_SLEEP`) see them.
pub(crate) fn debug_defects() {
    #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
    {
        if active(Mutation::Leak) {
            // Many: kmemleak scans memory conservatively, and the last pointers may linger in a
            // (cached) stack and keep their objects referenced.
            for _ in 0..64 {
                if let Ok(b) = KBox::new([0u8; 128], GFP_KERNEL) {
                    let _ = KBox::leak(b);
                }
            }
        }
        if active(Mutation::SleepInAtomic) {
            let _rcu = kernel::sync::rcu::read_lock();
            // 1 ms: fsleep() sleeps (usleep_range) above 10 us, busy-waits below.
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
        }
    }
}

/// debugfs `mutation`: the active one's name, or `none`.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
pub(crate) fn show(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let v = ACTIVE.load(Relaxed);
    let name = NAMES
        .iter()
        .find(|(m, _)| *m as u32 == v)
        .map_or("none", |(_, n)| n);
    writeln!(f, "{name}")
}

/// Writing a mutation's name (or `none`) to debugfs `mutation` activates it.
#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
pub(crate) fn store(_data: &(), r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 24];
    let name = crate::handler::read_word(r, &mut buf)?;
    let v = if name == "none" {
        0
    } else {
        NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(m, _)| *m as u32)
            .ok_or(EINVAL)?
    };
    pr_warn!("mutation: {name} (test kernels only: the crash image may be wrong on purpose)\n");
    ACTIVE.store(v, Relaxed);
    Ok(())
}
