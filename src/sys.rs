// SPDX-License-Identifier: GPL-2.0-only
//! Where events come from: the CPU hotplug state and the memory notifier (through
//! `kernel::cpuhp` and `kernel::memory`), and the C entry points (`mm/memremap.c` reports
//! device-backed vmemmaps, the kexec load paths report loads).
//!
//! Each callback converts what it is told into a [`model::Event`](crate::model::Event) and calls
//! [`handler::handle`](crate::handler::handle).
//!
//! C headers: [`include/linux/cpuhotplug.h`](srctree/include/linux/cpuhotplug.h),
//! [`include/linux/memory.h`](srctree/include/linux/memory.h).

#[cfg(CONFIG_MEMORY_HOTPLUG)]
use kernel::memory;
use kernel::{
    bindings,
    ffi::c_int,
    io::PhysAddr,
    prelude::*, //
};
#[cfg(CONFIG_HOTPLUG_CPU)]
use kernel::{
    cpu::CpuId,
    cpuhp, //
};

use crate::{
    handler,
    model::{
        Event,
        MemRange,
        RangeList, //
    },
};

// `struct crash_mem`'s array is viewed as `[MemRange]`: the layouts must be the same.
const _: () = {
    assert!(core::mem::size_of::<MemRange>() == core::mem::size_of::<bindings::range>());
    assert!(core::mem::align_of::<MemRange>() == core::mem::align_of::<bindings::range>());
    assert!(
        core::mem::offset_of!(bindings::range, start) == core::mem::offset_of!(MemRange, start)
    );
    assert!(core::mem::offset_of!(bindings::range, end) == core::mem::offset_of!(MemRange, end));
};

/// The value of `/sys/devices/system/{cpu,memory}/crash_hotplug` (`drivers/base/cpu.c` and
/// `drivers/base/memory.c` print it); see [`handler::sysfs_value`].
///
/// # Safety
///
/// None: callable from any process context; `unsafe` only because `#[export]` requires it.
// Required to be unsafe due to the `#[export]` annotation.
#[export]
pub unsafe extern "C" fn crash_check_hotplug_support() -> c_int {
    handler::sysfs_value()
}

/// The kexec load paths call this when a crash load starts (kexec_load(2) or kexec_file_load(2)
/// with the on-crash flag, including an unload), with the kexec lock held; see
/// [`handler::load_begin`].
///
/// # Safety
///
/// Called by `kernel/kexec.c` and `kernel/kexec_file.c` only, with the kexec lock held.
// Required to be unsafe due to the `#[export]` annotation.
#[export]
pub unsafe extern "C" fn crash_hotplug_load_begin() {
    handler::load_begin();
}

/// The kexec load paths call this when a crash load ends, successful or not, still holding the
/// kexec lock; see [`handler::load_end`].
///
/// # Safety
///
/// Called by `kernel/kexec.c` and `kernel/kexec_file.c` only, with the kexec lock held, from
/// process context.
// Required to be unsafe due to the `#[export]` annotation.
#[export]
pub unsafe extern "C" fn crash_hotplug_load_end() {
    // SAFETY: The load path holds the kexec lock for the whole call (function contract).
    unsafe { handler::load_end() };
}

/// `mm/memremap.c` calls this when `memremap_pages()` has set up a `dev_pagemap` whose struct pages
/// live on the device (`PGMAP_ALTMAP_VALID`: pmem/dax in `map=dev` mode), with the physical range
/// `[start, start + size)` of its info block and memmap (`vmem_altmap_offset()` pfns from the
/// altmap's `base_pfn`), `add` true; and before `memunmap_pages()` tears it down, `add` false.
/// The range becomes [`Event::AddDeviceVmemmap`] or [`Event::RemoveDeviceVmemmap`]; an empty or
/// overflowing range is logged and ignored.
///
/// # Safety
///
/// None: callable from any sleepable process context (device probe and unbind); `unsafe` only
/// because `#[export]` requires it.
// Required to be unsafe due to the `#[export]` annotation.
#[export]
pub unsafe extern "C" fn crash_hotplug_device_vmemmap(start: PhysAddr, size: u64, add: bool) {
    let range = size
        .checked_sub(1)
        .and_then(|last| start.checked_add(last))
        .map(|end| MemRange { start, end });
    match range {
        Some(r) if add => handler::handle_early(Event::AddDeviceVmemmap(r)),
        Some(r) => handler::handle_early(Event::RemoveDeviceVmemmap(r)),
        None => pr_err!(
            "device vmemmap {:#x} + {:#x} bytes ({}): not a range, event not handled\n",
            start,
            size,
            if add { "set up" } else { "torn down" }
        ),
    }
}

/// Removes `mstart..=mend` from the ranges of `mem` (see [`RangeList::exclude`]).
///
/// This is the kernel's `crash_exclude_mem_range()` when `CONFIG_CRASH_HOTPLUG_RUST=y`: the crash
/// header builders of the kexec_file load paths call it, and so does the `crash_core_test` KUnit
/// suite. Returns 0, or `-ENOMEM` with `mem` unchanged when a split finds no free slot.
///
/// # Safety
///
/// `mem` points to a valid `struct crash_mem` whose `ranges` array has `max_nr_ranges` elements,
/// of which the first `nr_ranges` are sorted and disjoint, and nothing else accesses it during
/// the call.
// Required to be unsafe due to the `#[export]` annotation.
#[export]
pub unsafe extern "C" fn crash_exclude_mem_range(
    mem: *mut bindings::crash_mem,
    mstart: u64,
    mend: u64,
) -> c_int {
    // Only raw pointers to the fields: a `&mut crash_mem` would cover the header alone (the
    // flexible array has size 0 in the Rust type), and a slice derived from it would reach past it.
    // SAFETY: The caller passes a valid, exclusively accessed `struct crash_mem`.
    let (max, nr) = unsafe { ((*mem).max_nr_ranges as usize, (*mem).nr_ranges as usize) };
    // SAFETY: `mem` is valid (function contract); the place expression creates no reference.
    let ranges = unsafe { &raw mut (*mem).ranges }.cast::<MemRange>();
    // SAFETY: `ranges` points to the flexible array of `max_nr_ranges` elements (`__counted_by`),
    // derived from the caller's pointer to the whole allocation, valid and exclusively ours for the
    // call; `MemRange` has the layout of `struct range` (checked above).
    let slots = unsafe { core::slice::from_raw_parts_mut(ranges, max) };
    let mut list = RangeList::from_sorted(slots, nr);
    let res = list.exclude(mstart, mend);
    // The length never exceeds `max_nr_ranges`, a `u32`.
    let len = list.len() as u32;
    // SAFETY: As above; `slots` covers the array only, not the header field written here.
    unsafe { (*mem).nr_ranges = len };
    match res {
        Ok(()) => 0,
        Err(_) => ENOMEM.to_errno(),
    }
}

/// The CPU hotplug state's callbacks: a CPU that comes up or goes down becomes an event.
#[cfg(CONFIG_HOTPLUG_CPU)]
pub(crate) struct CpuEvents;

#[cfg(CONFIG_HOTPLUG_CPU)]
impl cpuhp::Callbacks for CpuEvents {
    fn startup(cpu: CpuId) -> Result {
        handler::handle(Event::AddCpu(cpu.as_u32()));
        Ok(())
    }

    fn teardown(cpu: CpuId) -> Result {
        handler::handle(Event::RemoveCpu(cpu.as_u32()));
        Ok(())
    }
}

/// Registers the `crash/cpuhp` state in the prepare section (its callbacks run on a control CPU
/// before a CPU starts and after it died), without calling it for the CPUs that are already up:
/// the image was loaded with them.
#[cfg(CONFIG_HOTPLUG_CPU)]
pub(crate) fn register_cpuhp_state() -> Result<cpuhp::Registration<CpuEvents>> {
    cpuhp::Registration::new_nocalls(cpuhp::Section::Prepare, c"crash/cpuhp")
}

/// The memory notifier: a memory block onlined or offlined becomes an event; the other steps
/// (going online, cancelled, ...) change nothing in the dump.
#[cfg(CONFIG_MEMORY_HOTPLUG)]
pub(crate) struct MemoryEvents;

#[cfg(CONFIG_MEMORY_HOTPLUG)]
impl memory::Notifier for MemoryEvents {
    fn notify(action: memory::Action, pages: memory::Pages) -> Result {
        let online = match action {
            memory::Action::Online => true,
            memory::Action::Offline => false,
            _ => return Ok(()),
        };
        let block_bytes = memory::block_size_bytes() as u64;
        // The whole memory block: with memmap_on_memory the notifier's range lacks the block's
        // first pages, its own struct pages (see `MemRange::block_from_pfns`). `PAGE_SHIFT` is at
        // most 16 on every architecture Linux supports.
        let range = MemRange::block_from_pfns(
            pages.start_pfn as u64,
            pages.nr_pages as u64,
            block_bytes >> kernel::page::PAGE_SHIFT,
            kernel::page::PAGE_SHIFT as u32,
        );
        match range {
            Some(r) if online => handler::handle(Event::OnlineMemory(r)),
            Some(r) => handler::handle(Event::OfflineMemory(r)),
            None => pr_err!(
                "memory notifier: bad range pfn {:#x} + {} pages (block {:#x} bytes), not handled\n",
                pages.start_pfn,
                pages.nr_pages,
                block_bytes
            ),
        }
        // Never an error: the event is applied or the image marked stale, and the memory
        // operation must go on either way.
        Ok(())
    }
}

/// Registers the memory notifier, at the default priority.
#[cfg(CONFIG_MEMORY_HOTPLUG)]
pub(crate) fn register_memory_notifier() -> impl PinInit<memory::Registration<MemoryEvents>, Error>
{
    memory::Registration::new(0)
}
