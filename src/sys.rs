// SPDX-License-Identifier: GPL-2.0-only
//! The thin unsafe layer: registration of the CPU hotplug state and the memory notifier, and the
//! C entry points (`mm/memremap.c` reports device-backed vmemmaps, patch 0010).
//!
//! Each C callback converts its arguments into a [`model::Event`](crate::model::Event) and calls
//! [`handler::handle`](crate::handler::handle); no other module calls C here.
//!
//! C headers: [`include/linux/cpuhotplug.h`](srctree/include/linux/cpuhotplug.h),
//! [`include/linux/memory.h`](srctree/include/linux/memory.h).

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    prelude::*, //
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
pub unsafe extern "C" fn crash_hotplug_device_vmemmap(
    start: bindings::phys_addr_t,
    size: u64,
    add: bool,
) {
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

/// `NOTIFY_OK` from `include/linux/notifier.h`, as the `int` a notifier returns.
const NOTIFY_OK: c_int = bindings::NOTIFY_OK as c_int;

/// Registers the `crash/cpuhp` state in the CPU hotplug PREPARE section, without calling it for
/// the CPUs that are already up. Returns the dynamic state number.
#[cfg(CONFIG_HOTPLUG_CPU)]
pub(crate) fn register_cpuhp_state() -> Result<u32> {
    // SAFETY: The name is a static C string. The callbacks have the signature that cpuhp expects
    // and, like this built-in crate, are never unloaded.
    let ret = unsafe {
        bindings::__cpuhp_setup_state(
            bindings::cpuhp_state_CPUHP_BP_PREPARE_DYN,
            c"crash/cpuhp".as_char_ptr(),
            false,
            Some(cpuhp_online),
            Some(cpuhp_offline),
            false,
        )
    };
    u32::try_from(ret).map_err(|_| Error::from_errno(ret))
}

/// CPU hotplug startup callback: runs on the control CPU before `cpu` starts, may sleep.
///
/// # Safety
///
/// Called by the CPU hotplug core only, in process context.
unsafe extern "C" fn cpuhp_online(cpu: c_uint) -> c_int {
    handler::handle(Event::AddCpu(cpu));
    0
}

/// CPU hotplug teardown callback: runs after `cpu` died, may sleep.
///
/// # Safety
///
/// Called by the CPU hotplug core only, in process context.
unsafe extern "C" fn cpuhp_offline(cpu: c_uint) -> c_int {
    handler::handle(Event::RemoveCpu(cpu));
    0
}

/// A `struct notifier_block` that can live in a `static`.
#[cfg(CONFIG_MEMORY_HOTPLUG)]
struct StaticNotifier(kernel::types::Opaque<bindings::notifier_block>);

// SAFETY: The notifier chain code is the only user of the block after registration, and it
// serialises access with the chain's own lock; Rust code never reads or writes it.
#[cfg(CONFIG_MEMORY_HOTPLUG)]
unsafe impl Sync for StaticNotifier {}

#[cfg(CONFIG_MEMORY_HOTPLUG)]
static MEMORY_NB: StaticNotifier =
    StaticNotifier(kernel::types::Opaque::new(bindings::notifier_block {
        notifier_call: Some(memory_notify),
        next: core::ptr::null_mut(),
        priority: 0,
    }));

/// Registers the memory notifier (online and offline of memory blocks).
#[cfg(CONFIG_MEMORY_HOTPLUG)]
pub(crate) fn register_memory_notifier() -> Result {
    // SAFETY: `MEMORY_NB` is a static notifier block that is registered once and never freed.
    kernel::error::to_result(unsafe { bindings::register_memory_notifier(MEMORY_NB.0.get()) })
}

/// Memory notifier callback: `MEM_ONLINE` and `MEM_OFFLINE` become events, others are ignored.
///
/// # Safety
///
/// For `MEM_ONLINE` and `MEM_OFFLINE`, `arg` points to a valid `struct memory_notify`, as
/// `memory_notify()` in `drivers/base/memory.c` guarantees.
#[cfg(CONFIG_MEMORY_HOTPLUG)]
unsafe extern "C" fn memory_notify(
    _nb: *mut bindings::notifier_block,
    action: c_ulong,
    arg: *mut c_void,
) -> c_int {
    let online = action == bindings::memory_block_state_MEM_ONLINE as c_ulong;
    let offline = action == bindings::memory_block_state_MEM_OFFLINE as c_ulong;
    if !online && !offline {
        return NOTIFY_OK;
    }
    // SAFETY: For these two actions `arg` is a valid `struct memory_notify` (function contract).
    let mn = unsafe { &*arg.cast::<bindings::memory_notify>() };
    // SAFETY: `memory_block_size_bytes()` takes no arguments and returns the memory block size,
    // fixed at boot (x86 probes it once, pseries reads the device tree); callable in process
    // context, as this notifier runs.
    let block_bytes = unsafe { bindings::memory_block_size_bytes() } as u64;
    // The whole memory block: with memmap_on_memory the notifier's range lacks the block's first
    // pages, its own struct pages (see `MemRange::block_from_pfns`). `PAGE_SHIFT` is at most 16 on
    // every architecture Linux supports.
    let range = MemRange::block_from_pfns(
        mn.start_pfn as u64,
        mn.nr_pages as u64,
        block_bytes >> kernel::page::PAGE_SHIFT,
        kernel::page::PAGE_SHIFT as u32,
    );
    match range {
        Some(r) if online => handler::handle(Event::OnlineMemory(r)),
        Some(r) => handler::handle(Event::OfflineMemory(r)),
        None => pr_err!(
            "memory notifier: bad range pfn {:#x} + {} pages (block {:#x} bytes), not handled\n",
            mn.start_pfn,
            mn.nr_pages,
            block_bytes
        ),
    }
    NOTIFY_OK
}
