// SPDX-License-Identifier: GPL-2.0

//! kexec: the kexec lock and the loaded crash (kdump) image.
//!
//! The kexec lock serialises the load paths (`kexec_load(2)`, `kexec_file_load(2)`), the crash
//! image's users and a panic, which takes it to boot the crash image. It is a plain atomic, so
//! that `__crash_kexec()` can take it in NMI context: there is no blocking variant.
//!
//! With `CONFIG_CRASH_HOTPLUG_RUST` the lock has a state in which it is held and yet open to a
//! panic (`KEXEC_LOCK_HOTPLUG_EDIT`): its holder promises that the crash image is valid at every
//! instant, so a panic meanwhile takes the image over instead of finding the lock busy and
//! getting no dump.
//!
//! C headers: [`include/linux/kexec.h`](srctree/include/linux/kexec.h),
//! [`kernel/kexec_internal.h`](srctree/kernel/kexec_internal.h)

use crate::{
    bindings,
    cpu::CpuId,
    cpumask::Cpumask,
    io::PhysAddr,
    page, //
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// The most segments an image has (`KEXEC_SEGMENT_MAX`).
pub const SEGMENT_MAX: usize = bindings::KEXEC_SEGMENT_MAX as usize;

/// Whether a kexec (a reboot into the loaded image, or a crash) is under way.
pub fn in_progress() -> bool {
    // SAFETY: A global `bool` that the kernel sets once; read once, without a reference.
    unsafe { core::ptr::read_volatile(&raw const bindings::kexec_in_progress) }
}

/// The size of one CPU's crash notes (`note_buf_t`): the `PT_NOTE` an elfcorehdr gives each CPU.
pub const CRASH_NOTES_SIZE: usize = core::mem::size_of::<bindings::note_buf_t>();

/// The physical address of each possible CPU's crash notes (`crash_notes`), in CPU order: where a
/// panic saves the CPU's registers, and what the elfcorehdr's `PT_NOTE` headers point to.
///
/// Empty before `crash_notes` is allocated (`crash_notes_memory_init()`, a subsys initcall).
pub fn crash_notes() -> impl Iterator<Item = (CpuId, PhysAddr)> {
    // SAFETY: A global pointer set once at boot by an initcall; read once, without a reference.
    let notes = unsafe { core::ptr::read_volatile(&raw const bindings::crash_notes) };
    // SAFETY: `__cpu_possible_mask` is a valid cpumask for the kernel's lifetime; it is only
    // read here (`cpu_possible_mask`).
    let possible = unsafe { Cpumask::from_raw(&raw const bindings::__cpu_possible_mask) };
    let cpus = if notes.is_null() {
        0
    } else {
        crate::cpu::nr_cpu_ids()
    };
    (0..cpus)
        .filter_map(CpuId::from_u32)
        .filter(move |&cpu| possible.test(cpu))
        .map(move |cpu| {
            // SAFETY: `notes` is a per-CPU allocation (non-null: else there is no `cpu`) and
            // `cpu` a possible CPU, which has an instance of it.
            let p = unsafe { bindings::per_cpu_ptr(notes.cast(), cpu.as_u32()) };
            // SAFETY: `p` is a per-CPU address (above).
            (cpu, unsafe { bindings::per_cpu_ptr_to_phys(p) })
        })
}

/// The virtual address of physical address 0 in the direct map (`__va(0)`, `PAGE_OFFSET` on
/// most architectures): the elfcorehdr's `PT_LOAD` headers give RAM at its direct-map address.
pub fn direct_map_base() -> u64 {
    // SAFETY: `phys_to_virt()` is arithmetic: it neither dereferences nor requires RAM at 0.
    unsafe { bindings::phys_to_virt(0) as u64 }
}

/// Whether the holder of the lock lets a panic use the crash image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only the holder: a panic meanwhile finds the lock busy and gets no dump.
    Exclusive,
    /// A panic may take the crash image over (`KEXEC_LOCK_HOTPLUG_EDIT`): the holder keeps the
    /// image valid at every instant.
    #[cfg(CONFIG_CRASH_HOTPLUG_RUST)]
    OpenToPanic,
}

/// The kexec lock (`__kexec_lock`), held.
///
/// If this context took the lock, dropping the guard releases it; if the caller held it already
/// ([`Lock::held_by_caller`]), dropping closes the image to a panic again. If a panic took the
/// image over meanwhile, the drop never returns: the lock must stay taken, and the panicking CPU
/// stops this one.
///
/// # Invariants
///
/// The lock is held, in the state `access` names, by this context (`owned`) or by its caller,
/// for as long as `self` exists.
///
/// # Examples
///
/// ```
/// use kernel::kexec::{self, Access, Lock};
///
/// if let Some(lock) = Lock::try_lock(Access::Exclusive) {
///     // Held: a second attempt fails, and leaves the lock held.
///     assert!(Lock::try_lock(Access::Exclusive).is_none());
///     if let Some(image) = lock.crash_image() {
///         // Loaded and unloaded only under the lock: its segments stay put meanwhile.
///         let n = (0..kexec::SEGMENT_MAX).map_while(|i| image.segment(i)).count();
///         pr_info!("crash image: {n} segments\n");
///     }
///     drop(lock);
///     // Released on drop.
///     assert!(Lock::try_lock(Access::Exclusive).is_some());
/// }
/// // Every possible CPU has crash notes, at a physical address.
/// assert!(kexec::crash_notes().count() > 0);
/// assert!(kexec::crash_notes().all(|(_, phys)| phys != 0));
/// ```
pub struct Lock {
    owned: bool,
    access: Access,
}

impl Lock {
    /// Takes the lock if it is free.
    pub fn try_lock(access: Access) -> Option<Self> {
        // SAFETY: An atomic compare-and-exchange on the lock word.
        let taken = unsafe {
            match access {
                Access::Exclusive => bindings::kexec_trylock(),
                #[cfg(CONFIG_CRASH_HOTPLUG_RUST)]
                Access::OpenToPanic => bindings::kexec_trylock_hotplug_edit(),
            }
        };
        if !taken {
            // Not `taken.then_some(Self { .. })`: that builds the guard either way, and dropping
            // it would release the lock that someone else holds.
            return None;
        }
        // INVARIANT: the compare-and-exchange took the lock into the state `access` names.
        Some(Self {
            owned: true,
            access,
        })
    }

    /// The lock that the calling context holds (a kexec load path, in a hook it calls), opened to
    /// a panic if `access` says so; it is not released on drop.
    ///
    /// # Safety
    ///
    /// The current context holds the kexec lock (`kexec_trylock()`) and keeps it for as long as
    /// the returned value lives, and no other [`Lock`] exists meanwhile.
    pub unsafe fn held_by_caller(access: Access) -> Self {
        #[cfg(CONFIG_CRASH_HOTPLUG_RUST)]
        if access == Access::OpenToPanic {
            // SAFETY: The lock is held by this context, in the plain held state (function
            // contract).
            unsafe { bindings::kexec_hotplug_edit_begin() };
        }
        // INVARIANT: held by the caller (function contract), in the state `access` names.
        Self {
            owned: false,
            access,
        }
    }

    /// Runs `f` with the image closed to a panic (a panic meanwhile gets no dump), for an update
    /// that leaves the image invalid while it runs; then opens it again.
    pub fn exclusive_during<R>(&self, f: impl FnOnce() -> R) -> R {
        self.close();
        let r = f();
        #[cfg(CONFIG_CRASH_HOTPLUG_RUST)]
        if self.access == Access::OpenToPanic {
            // SAFETY: The lock is held (type invariant), closed by `close` above.
            unsafe { bindings::kexec_hotplug_edit_begin() };
        }
        r
    }

    /// The loaded crash image, if any.
    pub fn crash_image(&self) -> Option<CrashImage<'_>> {
        // SAFETY: `kexec_crash_image` is a global pointer, read once without a reference; the
        // load paths change it only under the lock, which is held.
        let p = unsafe { core::ptr::read_volatile(&raw const bindings::kexec_crash_image) };
        // INVARIANT: read under the lock, which `'_` keeps held.
        NonNull::new(p).map(|image| CrashImage {
            image,
            _lock: PhantomData,
        })
    }

    /// Closes the image to a panic; if a panic took it over, never returns.
    fn close(&self) {
        #[cfg(CONFIG_CRASH_HOTPLUG_RUST)]
        if self.access == Access::OpenToPanic {
            // SAFETY: The lock is held, open to a panic (type invariant).
            if !unsafe { bindings::kexec_hotplug_edit_end() } {
                wait_for_panic();
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.owned {
            // The caller holds the lock and releases it.
            self.close();
            return;
        }
        match self.access {
            // SAFETY: This context took the lock in the plain held state (type invariant).
            Access::Exclusive => unsafe { bindings::kexec_unlock() },
            #[cfg(CONFIG_CRASH_HOTPLUG_RUST)]
            Access::OpenToPanic => {
                // SAFETY: This context took the lock open to a panic (type invariant;
                // `exclusive_during` restores that state before it returns).
                if !unsafe { bindings::kexec_unlock_hotplug_edit() } {
                    wait_for_panic();
                }
            }
        }
    }
}

/// A panic took the crash image over while this context held the lock: the lock must stay taken,
/// and the panicking CPU stops this one (it is about to boot the crash kernel).
#[cfg(CONFIG_CRASH_HOTPLUG_RUST)]
fn wait_for_panic() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// A segment of the loaded crash image (`struct kexec_segment`): where it was loaded, its size in
/// memory, and access to that memory for as long as the kexec lock is held.
///
/// Reads go through the direct map; writes go through a private writable alias of each page
/// written ([`PageAlias`]), so that the protection the architecture gives the crash kernel memory
/// in the direct map (`arch_kexec_protect_crashkres()`) is never lowered.
///
/// # Invariants
///
/// `mem..mem + memsz` is the memory of a segment of the crash image, which stays loaded (and the
/// memory allocated to it) while the lock borrowed for `'a` is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    mem: PhysAddr,
    memsz: usize,
    _lock: PhantomData<&'a Lock>,
}

impl<'a> Segment<'a> {
    /// Physical address.
    pub fn mem(&self) -> PhysAddr {
        self.mem
    }

    /// Size in memory.
    pub fn memsz(&self) -> usize {
        self.memsz
    }

    /// Copies the segment's bytes at `off` into `buf`, or returns `false` (and leaves `buf`
    /// alone) if they are not all within the segment.
    pub fn read(&self, off: usize, buf: &mut [u8]) -> bool {
        if off
            .checked_add(buf.len())
            .is_none_or(|end| end > self.memsz)
        {
            return false;
        }
        // SAFETY: Segment memory is RAM, in the direct map (`phys_to_virt()` is arithmetic).
        let base = unsafe { bindings::phys_to_virt(self.mem) }.cast::<u8>();
        // SAFETY: `base + off .. base + off + buf.len()` is within the segment (checked above),
        // allocated while `'a` lasts (type invariant); the kernel writes it only under the lock,
        // which this context holds, and `buf` is a distinct Rust slice.
        unsafe { core::ptr::copy_nonoverlapping(base.add(off), buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// A private writable mapping of the page that holds the segment's byte `off`, or `None` if
    /// `off` is outside the segment or the mapping failed. `vm_map_ram()` maps from per-CPU vmap
    /// blocks: unlike `vmap()`, no `vmap_area` is allocated per call.
    pub fn map_page(&self, off: usize) -> Option<PageAlias<'a>> {
        if off >= self.memsz {
            return None;
        }
        let phys = (self.mem + off as PhysAddr) & !(page::PAGE_SIZE as PhysAddr - 1);
        // SAFETY: `phys` is in segment memory, which is RAM with a `struct page`.
        let mut page = unsafe { bindings::pfn_to_page((phys >> page::PAGE_SHIFT) as usize) };
        // SAFETY: `page` is a valid page (above); one page, any node.
        let va = unsafe { bindings::vm_map_ram(&mut page, 1, bindings::NUMA_NO_NODE) };
        // INVARIANT: A mapping of one page of the segment, unmapped on drop.
        NonNull::new(va.cast::<u8>()).map(|va| PageAlias {
            va,
            phys,
            _lock: PhantomData,
        })
    }
}

/// A page of a crash image segment, mapped writable at a private address (`vm_map_ram()`) until
/// dropped.
///
/// # Invariants
///
/// `va` is a live `vm_map_ram()` mapping of the one page at `phys`, which belongs to a segment of
/// the crash image that stays loaded while the lock borrowed for `'a` is held.
pub struct PageAlias<'a> {
    va: NonNull<u8>,
    phys: PhysAddr,
    _lock: PhantomData<&'a Lock>,
}

impl PageAlias<'_> {
    /// The physical address of the page.
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Copies `data` to the page at offset `off`, or returns `false` (writing nothing) if it does
    /// not fit in the page.
    pub fn write(&mut self, off: usize, data: &[u8]) -> bool {
        if off
            .checked_add(data.len())
            .is_none_or(|end| end > page::PAGE_SIZE)
        {
            return false;
        }
        // SAFETY: `va + off .. va + off + data.len()` is within the mapped page (checked above,
        // type invariant), which no reference covers; `data` is a distinct Rust slice.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), self.va.as_ptr().add(off), data.len())
        };
        true
    }

    /// Stores `data`, 2, 4 or 8 bytes at a multiple of its size, at offset `off` of the page as a
    /// single store (what `WRITE_ONCE()` does): a reader of the page, such as a panicking CPU,
    /// sees the old value or the new one, never a mix. Returns `false` (writing nothing) for any
    /// other size, alignment or an offset outside the page.
    pub fn write_once(&mut self, off: usize, data: &[u8]) -> bool {
        if !matches!(data.len(), 2 | 4 | 8)
            || off % data.len() != 0
            || off
                .checked_add(data.len())
                .is_none_or(|end| end > page::PAGE_SIZE)
        {
            return false;
        }
        // SAFETY: `off` is a naturally aligned offset in the mapped page (checked above; the page
        // is page aligned), so `p` is valid and aligned for a store of `data.len()` bytes.
        let p = unsafe { self.va.as_ptr().add(off) };
        // SAFETY: As above; a volatile store of the whole value is a single store.
        unsafe {
            match *data {
                [a, b] => p.cast::<u16>().write_volatile(u16::from_ne_bytes([a, b])),
                [a, b, c, d] => p
                    .cast::<u32>()
                    .write_volatile(u32::from_ne_bytes([a, b, c, d])),
                [a, b, c, d, e, f, g, h] => p
                    .cast::<u64>()
                    .write_volatile(u64::from_ne_bytes([a, b, c, d, e, f, g, h])),
                _ => {}
            }
        }
        true
    }
}

impl Drop for PageAlias<'_> {
    fn drop(&mut self) {
        // SAFETY: A live mapping of one page made by `vm_map_ram()` (type invariant), unmapped
        // once.
        unsafe { bindings::vm_unmap_ram(self.va.as_ptr().cast(), 1) };
    }
}

/// The loaded crash image (`kexec_crash_image`), for as long as the kexec lock is held.
///
/// The image's fields are read by value through the raw pointer, never through a `&kimage`: a
/// panicking CPU may use the image while this context holds the lock open to a panic, so no
/// reference may claim it unchanged.
///
/// # Invariants
///
/// `image` is `kexec_crash_image`, read while the lock (borrowed for `'a`) is held, so it cannot be
/// unloaded or replaced while this exists.
pub struct CrashImage<'a> {
    image: NonNull<bindings::kimage>,
    _lock: PhantomData<&'a Lock>,
}

impl<'a> CrashImage<'a> {
    /// Loaded with `kexec_file_load(2)`.
    pub fn file_mode(&self) -> bool {
        // SAFETY: A live image (type invariant); the bitfield is set at load time.
        unsafe { bindings::kimage::file_mode_raw(self.image.as_ptr()) != 0 }
    }

    /// The image lets the kernel update the segments excluded from its digest (the elfcorehdr,
    /// and on powerpc the FDT) on CPU and memory hotplug.
    pub fn hotplug_support(&self) -> bool {
        // SAFETY: As for `file_mode`.
        unsafe { bindings::kimage::hotplug_support_raw(self.image.as_ptr()) != 0 }
    }

    /// Segment `i`, if the image has it.
    pub fn segment(&self, i: usize) -> Option<Segment<'a>> {
        let k = self.image.as_ptr();
        // SAFETY: A live image (type invariant); `nr_segments` is written only by the load path,
        // which the lock excludes.
        let nr = unsafe { (*k).nr_segments };
        if i >= nr || i >= SEGMENT_MAX {
            return None;
        }
        // SAFETY: As above; `i` is within the `segment` array (checked against its length).
        let (mem, memsz) = unsafe { ((*k).segment[i].mem, (*k).segment[i].memsz) };
        // INVARIANT: A segment of the image, which the lock borrowed for `'a` keeps loaded.
        Some(Segment {
            mem: mem as PhysAddr,
            memsz,
            _lock: PhantomData,
        })
    }

    /// The index of the elfcorehdr segment, if recorded (at load time by kexec_file, or by an
    /// earlier update).
    pub fn elfcorehdr_index(&self) -> Option<usize> {
        // SAFETY: A live image (type invariant); the field is written under the lock only.
        usize::try_from(unsafe { (*self.image.as_ptr()).elfcorehdr_index }).ok()
    }

    /// Records the index of the elfcorehdr segment.
    pub fn set_elfcorehdr_index(&mut self, i: usize) {
        let Ok(i) = i32::try_from(i) else { return };
        // SAFETY: A live image (type invariant); the lock serialises writers.
        unsafe { (*self.image.as_ptr()).elfcorehdr_index = i };
    }

    /// Whether the kernel has updated the image's elfcorehdr since it was loaded.
    pub fn elfcorehdr_updated(&self) -> bool {
        // SAFETY: As for `elfcorehdr_index`.
        unsafe { (*self.image.as_ptr()).elfcorehdr_updated }
    }

    /// Records that the kernel updated the image's elfcorehdr.
    pub fn set_elfcorehdr_updated(&mut self) {
        // SAFETY: As for `set_elfcorehdr_index`.
        unsafe { (*self.image.as_ptr()).elfcorehdr_updated = true };
    }

    /// Whether a hotplug update of the image failed, so that it lacks a change until it is
    /// reloaded (`hotplug_stale`; a newly loaded image starts without the mark).
    pub fn hotplug_stale(&self) -> bool {
        // SAFETY: As for `elfcorehdr_index`.
        unsafe { (*self.image.as_ptr()).hotplug_stale }
    }

    /// Marks the image as lacking a hotplug change.
    pub fn set_hotplug_stale(&mut self) {
        // SAFETY: As for `set_elfcorehdr_index`.
        unsafe { (*self.image.as_ptr()).hotplug_stale = true };
    }
}
