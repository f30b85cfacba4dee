// SPDX-License-Identifier: GPL-2.0-only
//! Crash hotplug: keep the loaded kdump image current across CPU and memory hot(un)plug.
//!
//! Data flow: the CPU hotplug state and the memory notifier ([`sys`]) turn what they are told into
//! one [`model::Event`] and hand it to the [`handler`], which serialises events. The pure core in
//! [`model`] has no kernel dependency and is also built and tested on the host.
//!
//! This crate is built in (`CONFIG_CRASH_HOTPLUG_RUST`); the C handler in `kernel/crash_core.c`
//! is compiled out when it is selected.

use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    prelude::*, //
};

#[cfg(CONFIG_X86_64)]
#[path = "../arch/x86/backend.rs"]
mod backend;
#[cfg(CONFIG_PPC64)]
#[path = "../arch/powerpc/backend.rs"]
mod backend;
#[cfg(CONFIG_FA_DUMP)]
pub mod fadump;
mod fault;
mod handler;
mod image;
pub mod model;
mod mutation;
pub mod sys;

#[cfg(CONFIG_CRASH_HOTPLUG_KUNIT_TEST)]
mod kunit;

#[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
module! {
    type: CrashHotplug,
    name: "crash_hotplug",
    authors: ["crash_hotplug developers"],
    description: "Keeps the kdump crash image current across CPU and memory hotplug",
    license: "GPL",
    params: {
        inject_init_failure: bool {
            default: false,
            description: "Fault injection: fail the CPU hotplug state registration at boot",
        },
    },
}

#[cfg(not(CONFIG_CRASH_HOTPLUG_TEST_HOOKS))]
module! {
    type: CrashHotplug,
    name: "crash_hotplug",
    authors: ["crash_hotplug developers"],
    description: "Keeps the kdump crash image current across CPU and memory hotplug",
    license: "GPL",
}

/// The subsystem's state that lives as long as the kernel: its event sources and debugfs entries.
struct CrashHotplug {
    #[cfg(CONFIG_HOTPLUG_CPU)]
    _cpuhp: kernel::cpuhp::Registration<sys::CpuEvents>,
    #[cfg(CONFIG_MEMORY_HOTPLUG)]
    _memory: Pin<KBox<kernel::memory::Registration<sys::MemoryEvents>>>,
    _events: Pin<KBox<File<()>>>,
    _stats: Pin<KBox<File<()>>>,
    #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
    _faults: fault::Knobs,
    #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
    _mutation: Pin<KBox<File<()>>>,
    _dir: Dir,
}

impl kernel::Module for CrashHotplug {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        handler::init();
        handler::init_retry()?;
        let dir = Dir::new(c"crash_hotplug");
        let events = KBox::pin_init(
            dir.read_callback_file(c"events", (), &handler::show_events),
            GFP_KERNEL,
        )?;
        let stats = KBox::pin_init(
            dir.read_callback_file(c"stats", (), &handler::show_stats),
            GFP_KERNEL,
        )?;
        #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
        let faults = fault::Knobs::create(&dir)?;
        #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
        let mutation = KBox::pin_init(
            dir.read_write_callback_file(c"mutation", (), &mutation::show, &mutation::store),
            GFP_KERNEL,
        )?;
        // The handler is live (sysfs may read 1) only once every source of events is registered;
        // a failure here unregisters what was registered and leaves the files reading 0, and udev
        // reloading kdump on every event.
        #[cfg(CONFIG_MEMORY_HOTPLUG)]
        let memory = KBox::pin_init(sys::register_memory_notifier(), GFP_KERNEL)?;
        #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
        if module_parameters::inject_init_failure.value() {
            pr_err!("fault injection: CPU hotplug state not registered; crash_hotplug reads 0\n");
            return Err(EAGAIN);
        }
        #[cfg(CONFIG_HOTPLUG_CPU)]
        let cpuhp = sys::register_cpuhp_state()?;
        #[cfg(CONFIG_HOTPLUG_CPU)]
        pr_info!(
            "registered CPU hotplug state {} and memory notifier\n",
            cpuhp.state()
        );
        handler::set_live();
        Ok(Self {
            #[cfg(CONFIG_HOTPLUG_CPU)]
            _cpuhp: cpuhp,
            #[cfg(CONFIG_MEMORY_HOTPLUG)]
            _memory: memory,
            _events: events,
            _stats: stats,
            #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
            _faults: faults,
            #[cfg(CONFIG_CRASH_HOTPLUG_TEST_HOOKS)]
            _mutation: mutation,
            _dir: dir,
        })
    }
}
