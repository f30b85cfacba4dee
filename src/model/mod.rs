// SPDX-License-Identifier: GPL-2.0-only
//! Pure core of crash_hotplug: no kernel dependency, no allocation, no panics.
//!
//! These files are compiled twice from the same source: into the kernel crate
//! (`kernel/crash_hotplug/src/crash_hotplug.rs`) and into the host crate `crash-hotplug-model`,
//! where they are tested with ordinary Rust tooling.

pub mod elf;
pub mod event;
pub mod fadump;
pub mod fdt;
pub mod index;
pub mod journal;
pub mod ranges;

pub use elf::{
    build,
    slots,
    validate,
    EditError,
    Elfcorehdr,
    HeaderError,
    HeaderSpec,
    KernelText,
    Phdr,
    PhdrTable,
    Segment,
    TooSmall,
    Usage, //
    PF_DEV_VMEMMAP,
    PF_RWX,
};
pub use event::{
    Event,
    EventKind,
    EventStats,
    MemRange, //
};
pub use index::{
    Index,
    Node,
    RangeKind, //
};
pub use ranges::{
    NoRoom,
    RangeList, //
};
