// SPDX-License-Identifier: GPL-2.0

//! CPU hotplug states.
//!
//! A subsystem that must act when a CPU comes or goes registers a state with a startup and a
//! teardown callback; the CPU hotplug core calls them in the order of the states, on the way up
//! and on the way down. This module covers the dynamically allocated states, the ones a driver or
//! subsystem without a fixed slot in `enum cpuhp_state` uses.
//!
//! C header: [`include/linux/cpuhotplug.h`](srctree/include/linux/cpuhotplug.h)
//!
//! Reference: <https://docs.kernel.org/core-api/cpu_hotplug.html>

use crate::{
    bindings,
    cpu::CpuId,
    error::{
        from_result,
        to_result, //
    },
    ffi::{
        c_int,
        c_uint, //
    },
    prelude::*,
    str::CStr,
};
use core::marker::PhantomData;

/// The part of the hotplug sequence a dynamic state belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `CPUHP_BP_PREPARE_DYN`: the callbacks run on a control CPU, in process context, before the
    /// CPU starts (startup) and after it is dead (teardown). They may sleep.
    Prepare,
    /// `CPUHP_AP_ONLINE_DYN`: the callbacks run on the CPU itself, in a per-CPU thread, once it is
    /// online (startup) and before it goes offline (teardown). They may sleep.
    Online,
}

impl Section {
    fn as_raw(self) -> bindings::cpuhp_state {
        match self {
            Self::Prepare => bindings::cpuhp_state_CPUHP_BP_PREPARE_DYN,
            Self::Online => bindings::cpuhp_state_CPUHP_AP_ONLINE_DYN,
        }
    }
}

/// The callbacks of a CPU hotplug state.
///
/// An error from [`Callbacks::startup`] stops the CPU from coming up: the core undoes the states
/// it went through (calling their teardown) and the `online` request fails with that error. An
/// error from [`Callbacks::teardown`] is logged by the core, which carries on.
pub trait Callbacks {
    /// Called when `cpu` comes up.
    fn startup(cpu: CpuId) -> Result;

    /// Called when `cpu` goes down.
    fn teardown(cpu: CpuId) -> Result;
}

/// A registered dynamic CPU hotplug state.
///
/// Dropping it removes the state without calling [`Callbacks::teardown`] for the CPUs that are up
/// (`cpuhp_remove_state_nocalls()`).
///
/// # Invariants
///
/// `state` is a dynamic state number that `__cpuhp_setup_state()` returned for the callbacks of
/// `T`, and it is removed exactly once, when `self` is dropped.
///
/// # Examples
///
/// ```
/// use kernel::{cpu::CpuId, cpuhp::{self, Callbacks, Section}, prelude::*};
///
/// struct Quiet;
///
/// impl Callbacks for Quiet {
///     fn startup(_cpu: CpuId) -> Result {
///         Ok(())
///     }
///     fn teardown(_cpu: CpuId) -> Result {
///         Ok(())
///     }
/// }
///
/// let reg = cpuhp::Registration::<Quiet>::new_nocalls(Section::Online, c"rust/doctest")?;
/// assert!(reg.state() > 0);
/// # Ok::<(), Error>(())
/// ```
pub struct Registration<T: Callbacks> {
    state: bindings::cpuhp_state,
    _t: PhantomData<T>,
}

impl<T: Callbacks> Registration<T> {
    /// Allocates a state in `section` and installs `T`'s callbacks, without calling
    /// [`Callbacks::startup`] for the CPUs that are already up (`cpuhp_setup_state_nocalls()`):
    /// the callbacks see the CPUs that come and go from now on.
    pub fn new_nocalls(section: Section, name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string that lives as long as the kernel, as the core
        // keeps the pointer. The callbacks have the signature the core expects and stay valid
        // until `Drop` removes the state.
        let ret = unsafe {
            bindings::__cpuhp_setup_state(
                section.as_raw(),
                name.as_char_ptr(),
                false,
                Some(Self::startup_callback),
                Some(Self::teardown_callback),
                false,
            )
        };
        to_result(ret)?;
        // INVARIANT: for a dynamic section a non-negative return value is the state allocated.
        Ok(Self {
            state: ret,
            _t: PhantomData,
        })
    }

    /// The number of the state the core allocated (as `/sys/devices/system/cpu/hotplug/states`
    /// lists it).
    pub fn state(&self) -> u32 {
        // Never negative (type invariant).
        self.state as u32
    }

    /// # Safety
    ///
    /// Called by the CPU hotplug core only, with the number of a possible CPU.
    unsafe extern "C" fn startup_callback(cpu: c_uint) -> c_int {
        // SAFETY: The core passes a valid CPU number (function contract).
        let cpu = unsafe { CpuId::from_u32_unchecked(cpu) };
        from_result(|| T::startup(cpu).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the CPU hotplug core only, with the number of a possible CPU.
    unsafe extern "C" fn teardown_callback(cpu: c_uint) -> c_int {
        // SAFETY: The core passes a valid CPU number (function contract).
        let cpu = unsafe { CpuId::from_u32_unchecked(cpu) };
        from_result(|| T::teardown(cpu).map(|()| 0))
    }
}

impl<T: Callbacks> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `state` was set up by `new_nocalls` and has not been removed (type invariant).
        unsafe { bindings::__cpuhp_remove_state(self.state, false) };
    }
}
