// SPDX-License-Identifier: GPL-2.0-only
//! The thin unsafe layer over the loaded crash image: the kexec lock, `kexec_crash_image` and the
//! memory of its segments.
//!
//! C header: [`include/linux/kexec.h`](srctree/include/linux/kexec.h).

use core::ptr::NonNull;

use kernel::{
    bindings,
    prelude::*,
    sync::barrier::{
        smp_mb,
        Write, //
    },
    time::{
        delay::fsleep,
        Delta, //
    },
};

#[cfg(CONFIG_PPC64)]
use crate::model::fdt::NodeSource;
use crate::model::Segment;

/// The kexec lock (`__kexec_lock`), held. Released on drop.
///
/// It is a plain atomic so that `__crash_kexec()` can take it from NMI context; there is no
/// blocking variant, so [`KexecLock::acquire`] retries.
pub(crate) struct KexecLock(());

impl KexecLock {
    /// Takes the kexec lock, sleeping `step_us` between attempts, for at most `attempts`
    /// attempts. Returns the lock and the number of failed attempts, or `Err(attempts)`.
    pub(crate) fn acquire(attempts: u32, step_us: i64) -> Result<(Self, u32), u32> {
        for failed in 0..attempts {
            // SAFETY: The glue function only performs an atomic compare-and-exchange.
            if unsafe { bindings::crash_hotplug_kexec_trylock() } {
                return Ok((Self(()), failed));
            }
            fsleep(Delta::from_micros(step_us));
        }
        Err(attempts)
    }
}

impl KexecLock {
    /// Runs `edit`, which changes the crash image only in ways that keep it valid at every
    /// instant, with a panic allowed to use the image meanwhile although this holds the lock (see
    /// `crash_hotplug_take_edit()` in `kernel/kexec_internal.h`). If a panic took the image over,
    /// this never returns: the lock must stay taken, and the panicking CPU stops this one.
    pub(crate) fn crash_consistent<R>(&self, edit: impl FnOnce() -> R) -> R {
        // SAFETY: Sets an atomic; the kexec lock is held (`self`).
        unsafe { bindings::crash_hotplug_edit_begin() };
        let r = edit();
        // SAFETY: As above.
        if !unsafe { bindings::crash_hotplug_edit_end() } {
            loop {
                core::hint::spin_loop();
            }
        }
        r
    }
}

impl Drop for KexecLock {
    fn drop(&mut self) {
        // SAFETY: `self` exists only while this context holds the lock.
        unsafe { bindings::crash_hotplug_kexec_unlock() };
    }
}

/// Whether a kexec (reboot into a new kernel) is under way; no crash image update matters then.
pub(crate) fn kexec_in_progress() -> bool {
    // SAFETY: Reads a global boolean.
    unsafe { bindings::crash_hotplug_kexec_in_progress() }
}

/// One kexec segment: where it was loaded and how large it is in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    /// Physical address.
    pub(crate) mem: u64,
    /// Size in memory.
    pub(crate) memsz: usize,
}

/// The loaded crash image (`kexec_crash_image`), borrowed for as long as the kexec lock is held.
///
/// # Invariants
///
/// `ptr` is `kexec_crash_image`, read while `'a`'s lock is held, so the image cannot be unloaded
/// or replaced while this exists.
pub(crate) struct CrashImage<'a> {
    ptr: NonNull<bindings::kimage>,
    _lock: &'a KexecLock,
}

impl<'a> CrashImage<'a> {
    /// The loaded crash image, if any.
    pub(crate) fn get(lock: &'a KexecLock) -> Option<Self> {
        // SAFETY: Reads the global pointer; the kexec lock is held (`lock`).
        let p = unsafe { bindings::crash_hotplug_crash_image() };
        // INVARIANT: Read under the kexec lock.
        NonNull::new(p).map(|ptr| Self { ptr, _lock: lock })
    }

    /// Loaded with kexec_file_load(2).
    pub(crate) fn file_mode(&self) -> bool {
        // SAFETY: `ptr` is a live image (type invariant).
        unsafe { bindings::crash_hotplug_image_file_mode(self.ptr.as_ptr()) }
    }

    /// The image allows in-kernel updates of the segments excluded from its digest.
    pub(crate) fn hotplug_support(&self) -> bool {
        // SAFETY: `ptr` is a live image (type invariant).
        unsafe { bindings::crash_hotplug_image_hotplug_support(self.ptr.as_ptr()) }
    }

    fn raw(&self) -> &bindings::kimage {
        // SAFETY: `ptr` is a live image (type invariant); the fields read here are not changed
        // by anyone else while the kexec lock is held.
        unsafe { self.ptr.as_ref() }
    }

    /// Segment `i`, if it exists.
    pub(crate) fn segment(&self, i: usize) -> Option<SegmentInfo> {
        let k = self.raw();
        if i >= k.nr_segments {
            return None;
        }
        k.segment.get(i).map(|s| SegmentInfo {
            mem: s.mem as u64,
            memsz: s.memsz,
        })
    }

    /// The index of the elfcorehdr segment recorded at load time (kexec_file) or by an earlier
    /// event.
    pub(crate) fn elfcorehdr_index(&self) -> Option<usize> {
        usize::try_from(self.raw().elfcorehdr_index).ok()
    }

    /// Records the index of the elfcorehdr segment.
    pub(crate) fn set_elfcorehdr_index(&mut self, i: usize) {
        // SAFETY: `ptr` is a live image (type invariant) and the kexec lock serialises writers.
        unsafe { (*self.ptr.as_ptr()).elfcorehdr_index = i as i32 };
    }

    /// Whether the kernel has updated the elfcorehdr of this image before.
    pub(crate) fn elfcorehdr_updated(&self) -> bool {
        self.raw().elfcorehdr_updated
    }

    /// `hp_action`; see `HP_ACTION_STALE` in the handler.
    pub(crate) fn hp_action(&self) -> i32 {
        self.raw().hp_action
    }

    /// Sets `hp_action`.
    pub(crate) fn set_hp_action(&mut self, v: i32) {
        // SAFETY: `ptr` is a live image (type invariant) and the kexec lock serialises writers.
        unsafe { (*self.ptr.as_ptr()).hp_action = v };
    }

    /// Records that the kernel updated the elfcorehdr.
    pub(crate) fn set_elfcorehdr_updated(&mut self) {
        // SAFETY: `ptr` is a live image (type invariant) and the kexec lock serialises writers.
        unsafe { (*self.ptr.as_ptr()).elfcorehdr_updated = true };
    }
}

/// Page aliases kept mapped during one edit; further pages evict the oldest alias.
const MAX_ALIASES: usize = 8;

/// The memory of a loaded segment, as a [`Segment`] for the elfcorehdr model.
///
/// Reads go through the direct map (which kexec may have made read-only); writes go through
/// private writable aliases of exactly the pages written, mapped on first use and unmapped when
/// this is dropped, so the protection of the crash kernel memory is never lowered.
///
/// # Invariants
///
/// `base` is the direct-map address of `len` bytes of crash kernel memory that stay allocated
/// while the kexec lock (borrowed by `'a`) is held; `aliases[..n]` are live `vm_map_ram` aliases of the
/// pages at the given physical addresses.
pub(crate) struct SegmentMem<'a> {
    phys: u64,
    base: *const u8,
    len: usize,
    aliases: [(u64, *mut u8); MAX_ALIASES],
    n: usize,
    next_victim: usize,
    /// A mapping failed or a store fell outside the segment; later stores are dropped and the
    /// caller must report the edit as failed.
    pub(crate) failed: bool,
    /// Fault injection: milliseconds to sleep after the first commit, then 0.
    pause_ms: u32,
    _image: &'a CrashImage<'a>,
}

impl<'a> SegmentMem<'a> {
    /// The memory of `seg` of `image`.
    pub(crate) fn new(image: &'a CrashImage<'a>, seg: SegmentInfo) -> Self {
        // SAFETY: Segment memory is crash kernel memory, mapped in the direct map.
        let base = unsafe { bindings::crash_hotplug_phys_to_virt(seg.mem) }.cast::<u8>();
        // INVARIANT: The segment belongs to `image`, which lives while the lock is held.
        Self {
            phys: seg.mem,
            base,
            len: seg.memsz,
            aliases: [(0, core::ptr::null_mut()); MAX_ALIASES],
            n: 0,
            next_victim: 0,
            failed: false,
            pause_ms: 0,
            _image: image,
        }
    }

    /// Fault injection: sleep `ms` milliseconds right after the first commit (0: never).
    pub(crate) fn pause_after_first_store(&mut self, ms: u32) {
        self.pause_ms = ms;
    }

    /// A writable alias of the page holding segment offset `off`.
    fn alias(&mut self, off: usize) -> Option<*mut u8> {
        let page = kernel::page::PAGE_SIZE as u64;
        let pa = self.phys + off as u64;
        let page_pa = pa & !(page - 1);
        let in_page = (pa - page_pa) as usize;
        if let Some((_, va)) = self.aliases[..self.n].iter().find(|(p, _)| *p == page_pa) {
            // SAFETY: `va` maps a whole page and `in_page < PAGE_SIZE`.
            return Some(unsafe { va.add(in_page) });
        }
        // SAFETY: `page_pa` is a page of crash kernel memory, allocated (type invariant).
        let va = unsafe { bindings::crash_hotplug_map_page(page_pa) }.cast::<u8>();
        if va.is_null() {
            return None;
        }
        let slot = if self.n < MAX_ALIASES {
            self.n += 1;
            self.n - 1
        } else {
            let v = self.next_victim;
            self.next_victim = (v + 1) % MAX_ALIASES;
            // SAFETY: A live alias (type invariant); no pointer into it outlives a store.
            unsafe { bindings::crash_hotplug_unmap_page(self.aliases[v].1.cast()) };
            v
        };
        // INVARIANT: A live alias of `page_pa`, unmapped on eviction or in `drop`.
        self.aliases[slot] = (page_pa, va);
        // SAFETY: As above.
        Some(unsafe { va.add(in_page) })
    }

    /// Copies `data` to segment offset `off` through the aliases, page by page.
    fn store(&mut self, off: usize, data: &[u8], commit: bool) {
        if self.failed || off.checked_add(data.len()).is_none_or(|end| end > self.len) {
            self.failed = true;
            return;
        }
        if commit {
            // A commit is one naturally aligned store of 2, 4 or 8 bytes; anything else is a bug
            // in the caller and must not reach crash kernel memory.
            if !matches!(data.len(), 2 | 4 | 8) || off % data.len() != 0 {
                self.failed = true;
                return;
            }
            // Everything written before is visible before the commit is. `smp_wmb()` is also a
            // compiler barrier (an asm with a memory clobber, or `barrier()` on !SMP), and the
            // aliases come from C (`vm_map_ram`), so the compiler cannot move the plain copies
            // below it either.
            smp_mb(Write);
            let Some(p) = self.alias(off) else {
                self.failed = true;
                return;
            };
            // SAFETY: `p` is a writable alias of segment bytes `off..off + data.len()`, which do
            // not cross a page (the store is naturally aligned and at most 8 bytes, and segments
            // are page aligned); the volatile store of the whole value is a single store.
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
            // The commit is visible before anything written after it (`adopt_notes` tombstones
            // a slot and then rewrites its other bytes: they must not overtake the tombstone).
            smp_mb(Write);
            if self.pause_ms != 0 {
                let ms = core::mem::take(&mut self.pause_ms);
                pr_info!("fault injection: pausing {ms} ms after the first store of an edit\n");
                fsleep(Delta::from_millis(i64::from(ms)));
            }
            return;
        }
        let page = kernel::page::PAGE_SIZE;
        let mut done = 0;
        while done < data.len() {
            let o = off + done;
            let room = page - ((self.phys as usize + o) & (page - 1));
            let n = room.min(data.len() - done);
            let Some(p) = self.alias(o) else {
                self.failed = true;
                return;
            };
            // SAFETY: `p` is a writable alias of `n` bytes that stay within one page; the source
            // is a distinct Rust slice.
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), p, n) };
            done += n;
        }
    }
}

impl Segment for SegmentMem<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, off: usize, buf: &mut [u8]) {
        buf.fill(0);
        let Some(end) = off.checked_add(buf.len()) else {
            return;
        };
        if end > self.len {
            return;
        }
        // SAFETY: `base + off .. base + end` is inside the segment's direct-map range (type
        // invariant); no reference to that memory is held, and only this context writes it.
        unsafe { core::ptr::copy_nonoverlapping(self.base.add(off), buf.as_mut_ptr(), buf.len()) };
    }

    fn write(&mut self, off: usize, data: &[u8]) {
        self.store(off, data, false);
    }

    fn commit(&mut self, off: usize, data: &[u8]) {
        self.store(off, data, true);
    }
}

impl Drop for SegmentMem<'_> {
    fn drop(&mut self) {
        for &(_, va) in &self.aliases[..self.n] {
            // SAFETY: `va` is a live alias created by `crash_hotplug_map_page` (type invariant).
            unsafe { bindings::crash_hotplug_unmap_page(va.cast()) };
        }
    }
}

/// The live device tree node of a CPU (on powerpc, its core's node), referenced until dropped.
///
/// # Invariants
///
/// `0` is a valid `struct device_node` on which this holds a reference.
#[cfg(CONFIG_PPC64)]
pub(crate) struct CpuNode(NonNull<bindings::device_node>);

#[cfg(CONFIG_PPC64)]
impl CpuNode {
    /// The node of `cpu`, if the device tree has one.
    pub(crate) fn of_cpu(cpu: u32) -> Option<Self> {
        // SAFETY: `of_get_cpu_node()` returns a node with a reference taken, or NULL.
        let np = unsafe { bindings::crash_hotplug_cpu_node(cpu) };
        // INVARIANT: A node with a reference, dropped in `drop`.
        NonNull::new(np).map(Self)
    }

    /// The node's name with its unit address, e.g. `PowerPC,POWER9@8`.
    pub(crate) fn name(&self) -> &[u8] {
        // SAFETY: The node is valid (type invariant).
        let p = unsafe { (*self.0.as_ptr()).full_name };
        if p.is_null() {
            return b"";
        }
        // SAFETY: `full_name` is a NUL-terminated string owned by the node, which outlives `self`.
        unsafe { CStr::from_char_ptr(p) }.to_bytes()
    }
}

#[cfg(CONFIG_PPC64)]
impl NodeSource for CpuNode {
    fn for_each_prop(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        // SAFETY: The node is valid (type invariant).
        let mut pp = unsafe { (*self.0.as_ptr()).properties };
        while let Some(p) = NonNull::new(pp) {
            // SAFETY: `p` is on the node's property list; properties are not freed while the
            // node is referenced (updated ones move to `deadprops`).
            let prop = unsafe { p.as_ref() };
            let name: &[u8] = if prop.name.is_null() {
                b""
            } else {
                // SAFETY: `name` is a NUL-terminated string owned by the property.
                unsafe { CStr::from_char_ptr(prop.name) }.to_bytes()
            };
            let len = usize::try_from(prop.length).unwrap_or(0);
            let value: &[u8] = if prop.value.is_null() || len == 0 {
                &[]
            } else {
                // SAFETY: `value` points to `length` bytes owned by the property.
                unsafe { core::slice::from_raw_parts(prop.value.cast::<u8>(), len) }
            };
            f(name, value);
            pp = prop.next;
        }
    }
}

#[cfg(CONFIG_PPC64)]
impl Drop for CpuNode {
    fn drop(&mut self) {
        // SAFETY: Drops the reference this holds (type invariant).
        unsafe { bindings::crash_hotplug_node_put(self.0.as_ptr()) };
    }
}
