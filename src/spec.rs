// SPDX-License-Identifier: GPL-2.0-only
//! Gathers what a from-scratch elfcorehdr lists (possible CPUs' crash notes, VMCOREINFO, the
//! kernel-text map, "System RAM" minus the crash kernel reservations) into a
//! [`HeaderSpec`](crate::model::HeaderSpec).

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_void, //
    },
    prelude::*,
};

use crate::{
    backend,
    model::{
        HeaderSpec,
        KernelText,
        MemRange,
        RangeList, //
    },
};

/// The owned inputs of a [`HeaderSpec`].
pub(crate) struct Inputs {
    cpu_notes: KVec<u64>,
    cpu_note_size: u64,
    vmcoreinfo: (u64, u64),
    kernel_text: Option<KernelText>,
    ram: KVec<MemRange>,
    ram_len: usize,
    page_offset: u64,
}

/// Virtual address of physical 0 in the direct map.
pub(crate) fn page_offset() -> u64 {
    // SAFETY: Computes `__va(0)`.
    unsafe { bindings::crash_hotplug_page_offset() }
}

/// `walk_system_ram_res()` callback: appends the resource to the `KVec<MemRange>` at `arg`.
///
/// # Safety
///
/// `res` is a valid resource and `arg` the `KVec<MemRange>` passed by [`Inputs::gather`].
unsafe extern "C" fn add_ram(res: *mut bindings::resource, arg: *mut c_void) -> c_int {
    // SAFETY: Guaranteed by the function's contract.
    let (res, ram) = unsafe { (&*res, &mut *arg.cast::<KVec<MemRange>>()) };
    match ram.push(
        MemRange {
            start: res.start,
            end: res.end,
        },
        GFP_KERNEL,
    ) {
        Ok(()) => 0,
        Err(_) => ENOMEM.to_errno(),
    }
}

impl Inputs {
    /// Reads the current system state.
    pub(crate) fn gather() -> Result<Self> {
        let mut cpu_notes = KVec::new();
        let mut cpu: i32 = -1;
        loop {
            // SAFETY: Walks `cpu_possible_mask`.
            let next = unsafe { bindings::crash_hotplug_next_possible_cpu(cpu) };
            if next >= kernel::cpu::nr_cpu_ids() {
                break;
            }
            // SAFETY: `next` is a possible CPU.
            let notes = unsafe { bindings::crash_hotplug_cpu_notes(next) };
            cpu_notes.push(notes, GFP_KERNEL)?;
            cpu = next as i32;
        }
        // SAFETY: Returns a constant.
        let cpu_note_size = unsafe { bindings::crash_hotplug_cpu_notes_size() };
        let mut vmcoreinfo_size = 0u64;
        // SAFETY: The out-parameter is a valid `u64`.
        let vmcoreinfo_addr =
            unsafe { bindings::crash_hotplug_vmcoreinfo_note(&mut vmcoreinfo_size) };
        let (mut vaddr, mut paddr, mut size) = (0u64, 0u64, 0u64);
        // SAFETY: The out-parameters are valid `u64`s.
        let has_text =
            unsafe { bindings::crash_hotplug_kernel_text(&mut vaddr, &mut paddr, &mut size) };
        let kernel_text = has_text.then_some(KernelText { vaddr, paddr, size });

        let mut ram: KVec<MemRange> = KVec::new();
        // SAFETY: `add_ram` matches the callback type and `ram` outlives the walk.
        let ret = unsafe {
            bindings::walk_system_ram_res(0, u64::MAX, (&raw mut ram).cast(), Some(add_ram))
        };
        if ret < 0 && ret != ENOENT.to_errno() {
            return Err(Error::from_errno(ret));
        }
        // Each exclusion may split one range: room for all of them.
        let mut excluded: KVec<(u64, u64)> = KVec::new();
        let mut i = 0;
        loop {
            let (mut s, mut e) = (0u64, 0u64);
            // SAFETY: The out-parameters are valid `u64`s.
            if !unsafe { bindings::crash_hotplug_excluded_range(i, &mut s, &mut e) } {
                break;
            }
            if e != 0 && s <= e {
                excluded.push((s, e), GFP_KERNEL)?;
            }
            i += 1;
        }
        for &x in backend::ARCH_EXCLUDED {
            excluded.push(x, GFP_KERNEL)?;
        }
        let n = ram.len();
        for _ in 0..excluded.len() {
            ram.push(MemRange::default(), GFP_KERNEL)?;
        }
        let mut list = RangeList::from_sorted(&mut ram, n);
        for &(s, e) in excluded.iter() {
            list.exclude(s, e).map_err(|_| ENOMEM)?;
        }
        let ram_len = list.len();
        Ok(Self {
            cpu_notes,
            cpu_note_size,
            vmcoreinfo: (vmcoreinfo_addr, vmcoreinfo_size),
            kernel_text,
            ram,
            ram_len,
            page_offset: page_offset(),
        })
    }

    /// The header these inputs describe.
    pub(crate) fn spec(&self) -> HeaderSpec<'_> {
        HeaderSpec {
            machine: backend::ELF_MACHINE,
            page_offset: self.page_offset,
            cpu_notes: &self.cpu_notes,
            cpu_note_size: self.cpu_note_size,
            vmcoreinfo: self.vmcoreinfo,
            kernel_text: self.kernel_text,
            ram: &self.ram[..self.ram_len],
        }
    }
}
