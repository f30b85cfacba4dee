// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug notifications.
//!
//! Memory is added and removed in memory blocks of [`block_size_bytes()`]; a block is onlined
//! (its pages given to the page allocator) and offlined (its pages taken back) on request of
//! userspace or a driver. A [`Registration`] is told of each step of these transitions.
//!
//! C header: [`include/linux/memory.h`](srctree/include/linux/memory.h)
//!
//! Reference: <https://docs.kernel.org/admin-guide/mm/memory-hotplug.html>

use crate::{
    bindings,
    error::to_result,
    ffi::{
        c_int,
        c_ulong,
        c_void, //
    },
    prelude::*,
    types::Opaque,
};
use core::marker::PhantomData;

/// Returns the size of a memory block in bytes, fixed at boot.
pub fn block_size_bytes() -> usize {
    // SAFETY: `memory_block_size_bytes()` has no precondition; the value is set up before any
    // caller can run.
    unsafe { bindings::memory_block_size_bytes() }
}

/// A step of the onlining or offlining of memory (`enum memory_block_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The pages are about to be onlined; an error refuses it.
    GoingOnline,
    /// An onlining that was announced failed.
    CancelOnline,
    /// The pages are online.
    Online,
    /// The pages are about to be offlined; an error refuses it.
    GoingOffline,
    /// An offlining that was announced failed.
    CancelOffline,
    /// The pages are offline.
    Offline,
}

impl Action {
    fn from_raw(action: c_ulong) -> Option<Self> {
        const fn raw(state: bindings::memory_block_state) -> c_ulong {
            state as c_ulong
        }
        Some(match action {
            a if a == raw(bindings::memory_block_state_MEM_GOING_ONLINE) => Self::GoingOnline,
            a if a == raw(bindings::memory_block_state_MEM_CANCEL_ONLINE) => Self::CancelOnline,
            a if a == raw(bindings::memory_block_state_MEM_ONLINE) => Self::Online,
            a if a == raw(bindings::memory_block_state_MEM_GOING_OFFLINE) => Self::GoingOffline,
            a if a == raw(bindings::memory_block_state_MEM_CANCEL_OFFLINE) => Self::CancelOffline,
            a if a == raw(bindings::memory_block_state_MEM_OFFLINE) => Self::Offline,
            _ => return None,
        })
    }

    #[cfg(CONFIG_KUNIT)]
    fn to_raw(self) -> bindings::memory_block_state {
        match self {
            Self::GoingOnline => bindings::memory_block_state_MEM_GOING_ONLINE,
            Self::CancelOnline => bindings::memory_block_state_MEM_CANCEL_ONLINE,
            Self::Online => bindings::memory_block_state_MEM_ONLINE,
            Self::GoingOffline => bindings::memory_block_state_MEM_GOING_OFFLINE,
            Self::CancelOffline => bindings::memory_block_state_MEM_CANCEL_OFFLINE,
            Self::Offline => bindings::memory_block_state_MEM_OFFLINE,
        }
    }
}

/// Calls the memory notifiers with `action` for `pages` (`memory_notify()`), as the memory
/// hotplug core does; the error of the notifier that stopped the chain, if one did.
///
/// For tests only (every registered notifier sees the call, as if the pages changed state): a
/// test registers, at a priority above any other notifier's, one that stops the chain for the
/// pages it passes, so that nothing else sees them.
#[cfg(CONFIG_KUNIT)]
pub fn notify(action: Action, pages: Pages) -> Result {
    let mut mn = bindings::memory_notify {
        start_pfn: pages.start_pfn as c_ulong,
        nr_pages: pages.nr_pages as c_ulong,
    };
    // SAFETY: `mn` is a valid `struct memory_notify` for the duration of the call, which is what
    // the notifiers of these actions expect.
    let ret = unsafe { bindings::memory_notify(action.to_raw(), (&raw mut mn).cast()) };
    // `notifier_to_errno()`.
    let ret = ret & !(bindings::NOTIFY_STOP_MASK as c_int);
    let ok = bindings::NOTIFY_OK as c_int;
    if ret > ok {
        Err(Error::from_errno(ok - ret))
    } else {
        Ok(())
    }
}

/// The pages a notification is about (`struct memory_notify`).
///
/// With `memmap_on_memory` the range leaves out the first pages of the memory block, which hold
/// the block's own `struct page`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pages {
    /// The first page frame number.
    pub start_pfn: usize,
    /// The number of pages.
    pub nr_pages: usize,
}

/// Receives memory hotplug notifications.
pub trait Notifier {
    /// Called for every step of every onlining and offlining, in process context, with the
    /// memory hotplug lock held; it may sleep.
    ///
    /// An error refuses an [`Action::GoingOnline`] or [`Action::GoingOffline`] (and stops the
    /// notifiers of lower priority from being called); for the other actions it only stops them.
    fn notify(action: Action, pages: Pages) -> Result;
}

/// A memory notifier registered on the memory hotplug chain.
///
/// Notifiers of higher `priority` are called first. Dropping the registration unregisters it.
///
/// # Invariants
///
/// `nb` is registered with `register_memory_notifier()` and its callback is that of `T`, until
/// `self` is dropped.
///
/// # Examples
///
/// ```
/// use kernel::{memory::{self, Action, Pages}, prelude::*};
///
/// struct Onlined;
///
/// impl memory::Notifier for Onlined {
///     fn notify(action: Action, pages: Pages) -> Result {
///         if action == Action::Online {
///             pr_info!("{} pages online at pfn {:#x}\n", pages.nr_pages, pages.start_pfn);
///         }
///         Ok(())
///     }
/// }
///
/// let reg = KBox::pin_init(memory::Registration::<Onlined>::new(0), GFP_KERNEL)?;
/// drop(reg);
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct Registration<T: Notifier> {
    #[pin]
    nb: Opaque<bindings::notifier_block>,
    _t: PhantomData<T>,
}

// SAFETY: Rust code never accesses the notifier block after registration; the notifier chain code
// does, under its own lock, from any thread. Unregistering from another thread is allowed.
unsafe impl<T: Notifier> Send for Registration<T> {}
// SAFETY: `&Registration` gives no access to anything.
unsafe impl<T: Notifier> Sync for Registration<T> {}

impl<T: Notifier> Registration<T> {
    /// Registers `T` as a memory notifier of the given priority.
    pub fn new(priority: i32) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            nb <- Opaque::try_ffi_init(move |slot: *mut bindings::notifier_block| {
                // SAFETY: The initializer may write to `slot`.
                unsafe {
                    slot.write(bindings::notifier_block {
                        notifier_call: Some(Self::callback),
                        next: core::ptr::null_mut(),
                        priority,
                    })
                };
                // SAFETY: `slot` holds an initialised notifier block, pinned: it stays at this
                // address until `PinnedDrop` unregisters it.
                // INVARIANT: on success the block is registered.
                to_result(unsafe { bindings::register_memory_notifier(slot) })
            }),
            _t: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the memory notifier chain only: `arg` points to a valid `struct memory_notify`
    /// for the actions of `enum memory_block_state`.
    unsafe extern "C" fn callback(
        _nb: *mut bindings::notifier_block,
        action: c_ulong,
        arg: *mut c_void,
    ) -> c_int {
        let Some(action) = Action::from_raw(action) else {
            return bindings::NOTIFY_DONE as c_int;
        };
        // SAFETY: For these actions `arg` is a valid `struct memory_notify` (function contract).
        let mn = unsafe { &*arg.cast::<bindings::memory_notify>() };
        let pages = Pages {
            start_pfn: mn.start_pfn,
            nr_pages: mn.nr_pages,
        };
        match T::notify(action, pages) {
            Ok(()) => bindings::NOTIFY_OK as c_int,
            // `notifier_from_errno()`: the chain stops, and `notifier_to_errno()` gives `e` back.
            Err(e) => {
                (bindings::NOTIFY_STOP_MASK as c_int)
                    | (bindings::NOTIFY_OK as c_int - e.to_errno())
            }
        }
    }
}

#[pinned_drop]
impl<T: Notifier> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `nb` is registered (type invariant) and is unregistered only here.
        unsafe { bindings::unregister_memory_notifier(self.nb.get()) };
    }
}
