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
    io::PhysAddr, //
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

/// A segment of a loaded image (`struct kexec_segment`): where it was loaded, and its size in
/// memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Physical address.
    pub mem: PhysAddr,
    /// Size in memory.
    pub memsz: usize,
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

impl CrashImage<'_> {
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
    pub fn segment(&self, i: usize) -> Option<Segment> {
        let k = self.image.as_ptr();
        // SAFETY: A live image (type invariant); `nr_segments` is written only by the load path,
        // which the lock excludes.
        let nr = unsafe { (*k).nr_segments };
        if i >= nr || i >= SEGMENT_MAX {
            return None;
        }
        // SAFETY: As above; `i` is within the `segment` array (checked against its length).
        let (mem, memsz) = unsafe { ((*k).segment[i].mem, (*k).segment[i].memsz) };
        Some(Segment {
            mem: mem as PhysAddr,
            memsz,
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

    /// The image's `hp_action` field (the last hotplug action, `KEXEC_CRASH_HP_*`).
    pub fn hp_action(&self) -> i32 {
        // SAFETY: As for `elfcorehdr_index`.
        unsafe { (*self.image.as_ptr()).hp_action }
    }

    /// Sets the image's `hp_action` field.
    pub fn set_hp_action(&mut self, action: i32) {
        // SAFETY: As for `set_elfcorehdr_index`.
        unsafe { (*self.image.as_ptr()).hp_action = action };
    }
}
