// SPDX-License-Identifier: GPL-2.0-only
//! fadump capture kernel: the crash info header check, the elfcorehdr and (on pseries) the CPU
//! notes, for `fadump_process()` in `arch/powerpc/kernel/fadump.c`.
//!
//! The logic is the pure core's ([`crate::model::fadump`]); this file is the thin layer that reads
//! `struct fw_dump`, the preserved crash info header and the firmware's register save area, asks
//! the glue for the memblock memory ranges, and owns the page-exact buffers until `fw_dump` takes
//! them (its release path frees them with `free_pages_exact()`, as for the C implementation).
//!
//! Memory hot-added or removed in the crashed kernel needs nothing here: the ranges are the
//! capture kernel's own memory map, which the firmware (or QEMU) gives it after the crash. That is
//! what `/sys/kernel/fadump/hotplug_ready` promises to udev.
//!
//! C header: [`asm/fadump-internal.h`](srctree/arch/powerpc/include/asm/fadump-internal.h)

use core::{
    ffi::c_int,
    mem::{
        offset_of,
        size_of, //
    },
    ptr::NonNull,
};

use kernel::{
    bindings,
    page::PAGE_SIZE,
    prelude::*, //
};

use crate::model::{
    fadump::{
        self as fd,
        Abi,
        CrashInfo,
        DumpSpec,
        Endian,
        RegSaveArea, //
    },
    MemRange,
    RangeList, //
};

// The pure core writes little-endian ELF headers, like every Rust-for-Linux powerpc kernel.
const _: () = assert!(
    cfg!(CONFIG_CPU_LITTLE_ENDIAN),
    "crash_hotplug: fadump support needs a little-endian kernel"
);

/// Lets `pr_*!` print the pure core's errors (which implement `core::fmt::Display` only).
struct AsKernelDisplay<T>(T);

impl<T: core::fmt::Display> kernel::fmt::Display for AsKernelDisplay<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

/// Logs why the dump is not processed; the caller's error.
fn refuse(why: impl core::fmt::Display) -> Error {
    pr_err!(
        "fadump: {}; the dump is not processed\n",
        AsKernelDisplay(why)
    );
    EINVAL
}

/// What this kernel's build says the crash info header looks like.
const ABI: Abi = Abi {
    endian: Endian::Little,
    pt_regs_size: size_of::<bindings::pt_regs>() as u32,
    cpu_mask_size: size_of::<bindings::cpumask>() as u32,
};

// The pure core's layout facts, against bindgen's view of the kernel's structures.
const _: () = {
    type H = bindings::fadump_crash_info_header;
    assert!(offset_of!(H, magic_number) == fd::H_MAGIC);
    assert!(offset_of!(H, version) == fd::H_VERSION);
    assert!(offset_of!(H, crashing_cpu) == fd::H_CRASHING_CPU);
    assert!(offset_of!(H, vmcoreinfo_raddr) == fd::H_VMCOREINFO_ADDR);
    assert!(offset_of!(H, vmcoreinfo_size) == fd::H_VMCOREINFO_SIZE);
    assert!(offset_of!(H, pt_regs_sz) == fd::H_PT_REGS_SZ);
    assert!(offset_of!(H, cpu_mask_sz) == fd::H_CPU_MASK_SZ);
    assert!(offset_of!(H, regs) == fd::H_REGS);
    assert!(offset_of!(H, cpu_mask) == fd::H_REGS + size_of::<bindings::pt_regs>());
    assert!(size_of::<H>() == CrashInfo::size(&ABI));
    assert!(size_of::<bindings::elf_prstatus>() == fd::PRSTATUS_SIZE);
    assert!(offset_of!(bindings::elf_prstatus, pr_reg) == fd::PRSTATUS_PR_REG);
    assert!(size_of::<bindings::elf_gregset_t>() == 8 * fd::ELF_NGREG);
};

/// `e_flags` of the kernel's own ELF ABI.
const E_FLAGS: u32 = if cfg!(CONFIG_PPC64_ELF_ABI_V2) {
    2
} else if cfg!(CONFIG_PPC64_ELF_ABI_V1) {
    1
} else {
    0
};

/// A zeroed, page-exact, physically contiguous buffer in the direct map.
struct ExactPages {
    ptr: NonNull<u8>,
    size: usize,
}

impl ExactPages {
    /// At least `len` bytes, rounded up to whole pages.
    fn alloc(len: usize) -> Result<Self> {
        let size = len.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
        // SAFETY: A page allocation in process context (the fadump initcall), which may sleep.
        let p = unsafe {
            bindings::alloc_pages_exact_noprof(size, bindings::GFP_KERNEL | bindings::__GFP_ZERO)
        };
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| {
            pr_err!("fadump: cannot allocate {size} bytes\n");
            ENOMEM
        })?;
        Ok(Self { ptr, size })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `size` bytes that this value owns exclusively.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.size) }
    }

    fn phys(&self) -> u64 {
        // SAFETY: `ptr` is in the direct map (a page allocation).
        unsafe { bindings::crash_hotplug_virt_to_phys(self.ptr.as_ptr().cast()) }
    }

    /// Gives the buffer up, as (virtual address, size), to `fw_dump`.
    fn into_raw(self) -> (usize, usize) {
        let r = (self.ptr.as_ptr() as usize, self.size);
        core::mem::forget(self);
        r
    }
}

impl Drop for ExactPages {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `size` come from `alloc_pages_exact_noprof` and are freed once.
        unsafe { bindings::free_pages_exact(self.ptr.as_ptr().cast(), self.size) };
    }
}

/// The fadump reserved area, known to stay reserved (and mapped) while this exists: made at the
/// start of a processing step, dropped at its end, before `fadump.c` may release the area. The
/// bytes read from the area borrow it, so none outlives the step.
struct Reserved(());

/// The preserved crash info header, as bytes.
fn header<'r>(conf: &bindings::fw_dump, _held: &'r Reserved) -> Result<&'r [u8]> {
    if conf.fadumphdr_addr == 0 {
        return Err(refuse("no crash info header"));
    }
    // SAFETY: `fadumphdr_addr` is RAM of the fadump reserved area, which stays reserved (and in
    // the direct map) until the dump is released, after the elfcorehdr is built; it holds the
    // crashed kernel's header (the reserved metadata is at least as large as this kernel's
    // header: the sizes are checked before any field past the fixed part is used).
    Ok(unsafe {
        core::slice::from_raw_parts(
            bindings::phys_to_virt(conf.fadumphdr_addr as u64)
                .cast::<u8>()
                .cast_const(),
            size_of::<bindings::fadump_crash_info_header>(),
        )
    })
}

/// The firmware's register save area (CPU state data), as bytes.
fn reg_save_area<'r>(conf: &bindings::fw_dump, _held: &'r Reserved) -> Result<&'r [u8]> {
    let (va, len) = (conf.cpu_state_dest_vaddr, conf.cpu_state_data_size);
    if va == 0 || len == 0 {
        return Err(refuse("no register save area"));
    }
    // SAFETY: The firmware wrote `cpu_state_data_size` bytes at `cpu_state_dest_vaddr` (checked
    // complete by `rtas_fadump_process()` before this is called), in the reserved area.
    Ok(unsafe { core::slice::from_raw_parts(va as usize as *const u8, len) })
}

/// The capture kernel's memory ranges (memblock `memory`, hotpluggable ranges included).
fn memory_ranges() -> Result<KVec<MemRange>> {
    let mut max = 0usize;
    for _ in 0..3 {
        let mut pairs = KVec::from_elem(0u64, 2 * max, GFP_KERNEL)?;
        // SAFETY: `pairs` has room for `max` pairs.
        let n = unsafe { bindings::crash_hotplug_memblock_memory(pairs.as_mut_ptr(), max) };
        if n <= max {
            let mut out = KVec::with_capacity(n, GFP_KERNEL)?;
            for p in pairs.chunks_exact(2).take(n) {
                if p[1] > p[0] {
                    out.push(
                        MemRange {
                            start: p[0],
                            end: p[1] - 1,
                        },
                        GFP_KERNEL,
                    )?;
                }
            }
            return Ok(out);
        }
        max = n;
    }
    pr_err!("fadump: the memory map keeps changing\n");
    Err(EAGAIN)
}

/// Checks the crash info header and builds the elfcorehdr, with an empty CPU notes `PT_NOTE`
/// that [`crash_hotplug_fadump_cpu_notes`] fills; the buffer goes to `fw_dump.elfcorehdr_*`.
fn build_elfcorehdr(conf: &mut bindings::fw_dump, area_size: u64) -> Result {
    let held = Reserved(());
    let info = CrashInfo::parse(header(conf, &held)?, &ABI).map_err(refuse)?;
    let mut boot = KVec::new();
    let n = (conf.boot_mem_regs_cnt as usize).min(conf.boot_mem_addr.len());
    for (&start, &size) in conf.boot_mem_addr.iter().zip(&conf.boot_mem_sz).take(n) {
        let end = start
            .checked_add(size)
            .filter(|_| size > 0)
            .ok_or_else(|| {
                refuse(format_args!(
                    "boot memory region {start:#x} size {size:#x} is not valid"
                ))
            })?;
        boot.push(
            MemRange {
                start,
                end: end - 1,
            },
            GFP_KERNEL,
        )?;
    }
    let memory = memory_ranges()?;
    let ra_start = conf.reserve_dump_area_start as u64;
    let reserved = ra_start
        .checked_add(area_size)
        .filter(|_| area_size > 0)
        .map(|end| MemRange {
            start: ra_start,
            end: end - 1,
        });
    let mut slots = KVec::from_elem(MemRange::default(), memory.len() + 1, GFP_KERNEL)?;
    let mut ram = RangeList::new(&mut slots);
    fd::dump_ram(
        memory.iter().copied(),
        conf.boot_mem_top,
        reserved,
        &mut ram,
    )
    .map_err(|e| {
        refuse(format_args!(
            "memory ranges need more than {} program headers",
            e.capacity
        ))
    })?;
    let spec = DumpSpec {
        page_offset: kernel::kexec::direct_map_base(),
        e_flags: E_FLAGS,
        cpu_notes: (0, 0),
        vmcoreinfo: (info.vmcoreinfo_addr, info.vmcoreinfo_size),
        boot: &boot,
        boot_dest: conf.boot_mem_dest_addr,
        ram: ram.as_slice(),
    };
    if spec.boot_copy_end().is_none() {
        return Err(refuse(format_args!(
            "boot memory regions ({} of them) copied to {:#x} end past 2^64",
            boot.len(),
            conf.boot_mem_dest_addr
        )));
    }
    let size = spec.size().ok_or_else(|| {
        refuse(format_args!(
            "{} program headers are more than an ELF header can count",
            spec.phnum()
        ))
    })?;
    let mut buf = ExactPages::alloc(size)?;
    fd::build(buf.as_mut_slice(), &spec).map_err(|t| {
        refuse(format_args!(
            "elfcorehdr needs {} bytes, has {}",
            t.need, t.have
        ))
    })?;
    let (va, size) = buf.into_raw();
    conf.elfcorehdr_addr = va as u64;
    conf.elfcorehdr_size = size as u64;
    match info.crashing_cpu {
        Some(cpu) => pr_info!(
            "fadump: crash info header v{} (CPU {cpu} crashed, {} CPUs online): elfcorehdr of {} \
             program headers, {} boot-memory regions read from {:#x}, {} memory ranges\n",
            info.version,
            info.cpus(),
            spec.phnum(),
            boot.len(),
            conf.boot_mem_dest_addr,
            ram.len()
        ),
        None => pr_info!(
            "fadump: crash info header v{} (firmware-initiated dump): elfcorehdr of {} program \
             headers, {} boot-memory regions read from {:#x}, {} memory ranges\n",
            info.version,
            spec.phnum(),
            boot.len(),
            conf.boot_mem_dest_addr,
            ram.len()
        ),
    }
    Ok(())
}

/// Builds the CPU notes from the register save area and points the elfcorehdr at them; the
/// buffer goes to `fw_dump.cpu_notes_buf_*`.
fn build_cpu_notes(conf: &mut bindings::fw_dump) -> Result {
    let held = Reserved(());
    let info = CrashInfo::parse(header(conf, &held)?, &ABI).map_err(refuse)?;
    let area = RegSaveArea::parse(reg_save_area(conf, &held)?).map_err(refuse)?;
    let need = fd::cpu_notes_size(&info, &area).map_err(refuse)?;
    let mut notes = ExactPages::alloc(need)?;
    let s = fd::write_cpu_notes(notes.as_mut_slice(), &info, &area).map_err(refuse)?;
    if conf.elfcorehdr_addr == 0 {
        return Err(refuse("no elfcorehdr for the CPU notes"));
    }
    // SAFETY: `build_elfcorehdr` gave `fw_dump` this buffer of `elfcorehdr_size` bytes; nothing
    // reads it before `fadump_process()` publishes it in `elfcorehdr_addr` after this returns.
    let hdr = unsafe {
        core::slice::from_raw_parts_mut(
            conf.elfcorehdr_addr as usize as *mut u8,
            conf.elfcorehdr_size as usize,
        )
    };
    fd::set_cpu_notes(hdr, notes.phys(), s.bytes as u64)
        .map_err(|_| refuse("the elfcorehdr has no CPU notes placeholder"))?;
    let (va, size) = notes.into_raw();
    conf.cpu_notes_buf_vaddr = va;
    conf.cpu_notes_buf_size = size;
    pr_info!(
        "fadump: {} CPU notes from the save area of {} CPUs ({} not online at the crash){}\n",
        s.notes,
        area.num_cpus(),
        s.skipped,
        match (
            info.crashing_cpu,
            s.crashing_from_header,
            s.crashing_appended
        ) {
            (Some(_), true, false) => ", the crashing CPU's from the crash info header",
            (Some(_), true, true) =>
                ", the crashing CPU's from the crash info header (not in the save area)",
            (Some(_), false, _) => ", the crashing CPU was not online (no note from the header)",
            (None, _, _) => "",
        }
    );
    Ok(())
}

/// `fadump_process()`: checks the crash info header and builds the elfcorehdr.
///
/// # Safety
///
/// `conf` is `&fw_dump`, with an active dump, and nothing else uses it during the call (the
/// fadump initcall).
#[export]
pub unsafe extern "C" fn crash_hotplug_fadump_elfcorehdr(
    conf: *mut bindings::fw_dump,
    area_size: u64,
) -> c_int {
    // SAFETY: The caller passes `&fw_dump`, used by nothing else during the call.
    let conf = unsafe { &mut *conf };
    match build_elfcorehdr(conf, area_size) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `rtas_fadump_process()`: builds the CPU notes from the register save area (after the firmware
/// regions were checked).
///
/// # Safety
///
/// As for [`crash_hotplug_fadump_elfcorehdr`], which must have succeeded.
#[export]
pub unsafe extern "C" fn crash_hotplug_fadump_cpu_notes(conf: *mut bindings::fw_dump) -> c_int {
    // SAFETY: The caller passes `&fw_dump`, used by nothing else during the call.
    let conf = unsafe { &mut *conf };
    match build_cpu_notes(conf) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
