// SPDX-License-Identifier: GPL-2.0-only
//! The generic, arch-neutral event handler.
//!
//! Events are serialised by one mutex. At this stage the handler counts and logs each event; the
//! arch backends that edit the loaded crash image plug in here.

use core::fmt;

use kernel::{
    prelude::*,
    sync::global_lock, //
};

use crate::model::{
    Event,
    EventStats, //
};

global_lock! {
    // SAFETY: `init()` initialises the lock from the module initialiser, before the notifiers that
    // call `handle()` are registered and before the debugfs file that calls `show_events()` exists.
    unsafe(uninit) static STATE: Mutex<EventStats> = EventStats::new();
}

/// Initialises the handler's lock. Must be called once, before any other function here.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any user of `STATE`.
    unsafe { STATE.init() };
}

/// Handles one event. May sleep; called from the CPU hotplug PREPARE callbacks and the memory
/// notifier, both of which run in process context.
pub(crate) fn handle(event: Event) {
    let mut state = STATE.lock();
    let n = state.record(event);
    pr_info!("event {event} (#{n} of its kind)\n");
}

/// Writes the statistics in the format of [`EventStats`]'s `Display` (debugfs `events`).
pub(crate) fn show_events(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let state = STATE.lock();
    write!(f, "{}", &*state)
}
