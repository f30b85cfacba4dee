// SPDX-License-Identifier: GPL-2.0-only
//! What the running kernel says an elfcorehdr must list, as `kernel/vmcore_info.c` keeps it: the
//! crash notes of the possible CPUs (`crash_notes`), and the direct map's base for the virtual
//! addresses of the RAM `PT_LOAD`s.

use kernel::{
    bindings,
    prelude::*, //
};

/// Virtual address of physical 0 in the direct map.
pub(crate) fn page_offset() -> u64 {
    // SAFETY: Computes `__va(0)`.
    unsafe { bindings::crash_hotplug_page_offset() }
}

/// Physical addresses of the possible CPUs' crash notes, in CPU order, and the size of one.
pub(crate) fn cpu_notes() -> Result<(KVec<u64>, u64)> {
    let mut notes = KVec::new();
    let mut cpu: i32 = -1;
    loop {
        // SAFETY: Walks `cpu_possible_mask`.
        let next = unsafe { bindings::crash_hotplug_next_possible_cpu(cpu) };
        if next >= kernel::cpu::nr_cpu_ids() {
            break;
        }
        // SAFETY: `next` is a possible CPU.
        let addr = unsafe { bindings::crash_hotplug_cpu_notes(next) };
        notes.push(addr, GFP_KERNEL)?;
        cpu = next as i32;
    }
    // SAFETY: Returns a constant.
    let size = unsafe { bindings::crash_hotplug_cpu_notes_size() };
    Ok((notes, size))
}
