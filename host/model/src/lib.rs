// SPDX-License-Identifier: GPL-2.0-only
//! Host build of the crash_hotplug pure core.
//!
//! The code is not here: `src/model/` is the single source, compiled into the kernel crate
//! (`kernel/crash_hotplug/src/crash_hotplug.rs`) and into this crate, with the same edition and
//! `no_std`, so that the host tests exercise exactly what the kernel runs.
#![no_std]

#[path = "../../../src/model/mod.rs"]
mod model;

pub use model::*;
