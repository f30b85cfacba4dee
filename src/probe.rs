// SPDX-License-Identifier: GPL-2.0-only
//! Benchmark probe (`CONFIG_CRASH_HOTPLUG_PROBE`): the time of the memory notifier chain for each
//! `MEM_ONLINE` and `MEM_OFFLINE` event, measured from a notifier that runs first to one that
//! runs last, so that it covers whichever crash hotplug implementation is built (the C one in
//! `kernel/crash_core.c` or the Rust one) the same way. The in-guest benchmark compares it with
//! kdump loaded and unloaded; the difference is the crash hotplug handler's cost per event.
//!
//! debugfs `crash_hotplug_probe/memory_chain`: `events`, `total_ns`, `last_ns`, `max_ns` lines,
//! then `samples` and the times of the last [`SAMPLES`] events, oldest first (the benchmark takes
//! their median, which a preempted vCPU on a busy host does not move).
//!
//! C header: [`include/linux/memory.h`](srctree/include/linux/memory.h).

use core::fmt;

use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    memory::{
        self,
        Action,
        Pages, //
    },
    prelude::*,
    sync::global_lock,
    time::{
        Instant,
        Monotonic, //
    },
};

module! {
    type: Probe,
    name: "crash_hotplug_probe",
    authors: ["crash_hotplug developers"],
    description: "Times the memory notifier chain (crash hotplug benchmark)",
    license: "GPL",
}

/// Events whose times are kept.
const SAMPLES: usize = 512;

/// What the probe has measured.
struct Chain {
    /// When the first notifier ran for the event under way.
    started: Option<Instant<Monotonic>>,
    events: u64,
    total_ns: i64,
    last_ns: i64,
    max_ns: i64,
    /// The last `SAMPLES` times; `events % SAMPLES` is the next slot.
    samples: [i64; SAMPLES],
}

global_lock! {
    // SAFETY: `Probe::init` initialises the lock before registering the notifiers and creating
    // the debugfs file, its only users.
    unsafe(uninit) static CHAIN: Mutex<Chain> = Chain {
        started: None,
        events: 0,
        total_ns: 0,
        last_ns: 0,
        max_ns: 0,
        samples: [0; SAMPLES],
    };
}

/// `MEM_ONLINE` or `MEM_OFFLINE`: the events a crash hotplug handler acts on.
fn timed(action: Action) -> bool {
    matches!(action, Action::Online | Action::Offline)
}

/// The first notifier of the chain (highest priority): notes the time.
struct ChainStart;

impl memory::Notifier for ChainStart {
    fn notify(action: Action, _pages: Pages) -> Result {
        if timed(action) {
            CHAIN.lock().started = Some(Instant::<Monotonic>::now());
        }
        Ok(())
    }
}

/// The last notifier of the chain (lowest priority): records the time since the first.
struct ChainEnd;

impl memory::Notifier for ChainEnd {
    fn notify(action: Action, _pages: Pages) -> Result {
        if timed(action) {
            let mut c = CHAIN.lock();
            if let Some(t0) = c.started.take() {
                let ns = t0.elapsed().as_nanos();
                // The remainder is below `SAMPLES`.
                let slot = (c.events % SAMPLES as u64) as usize;
                if let Some(s) = c.samples.get_mut(slot) {
                    *s = ns;
                }
                c.events += 1;
                c.total_ns = c.total_ns.saturating_add(ns);
                c.last_ns = ns;
                c.max_ns = c.max_ns.max(ns);
            }
        }
        Ok(())
    }
}

fn show(_data: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let c = CHAIN.lock();
    writeln!(f, "events {}", c.events)?;
    writeln!(f, "total_ns {}", c.total_ns)?;
    writeln!(f, "last_ns {}", c.last_ns)?;
    writeln!(f, "max_ns {}", c.max_ns)?;
    write!(f, "samples")?;
    let n = c.events.min(SAMPLES as u64);
    for k in (c.events - n)..c.events {
        // The remainder is below `SAMPLES`.
        let v = c
            .samples
            .get((k % SAMPLES as u64) as usize)
            .copied()
            .unwrap_or(0);
        write!(f, " {v}")?;
    }
    writeln!(f)
}

/// The probe: its notifiers and debugfs file (the probe is built in: they stay).
struct Probe {
    _start: Pin<KBox<memory::Registration<ChainStart>>>,
    _end: Pin<KBox<memory::Registration<ChainEnd>>>,
    _file: Pin<KBox<File<()>>>,
    _dir: Dir,
}

impl kernel::Module for Probe {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Called once, before any user of `CHAIN`.
        unsafe { CHAIN.init() };
        let dir = Dir::new(c"crash_hotplug_probe");
        let file = KBox::pin_init(
            dir.read_callback_file(c"memory_chain", (), &show),
            GFP_KERNEL,
        )?;
        let start = KBox::pin_init(memory::Registration::new(i32::MAX), GFP_KERNEL)?;
        let end = KBox::pin_init(memory::Registration::new(i32::MIN), GFP_KERNEL)?;
        Ok(Self {
            _start: start,
            _end: end,
            _file: file,
            _dir: dir,
        })
    }
}
