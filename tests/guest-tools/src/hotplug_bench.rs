//! `crashhp-hotplug-bench ROUNDS BLOCK...`: takes each memory block offline and online again,
//! ROUNDS times, timing every sysfs write, and prints `offline_median_ns online_median_ns events`.
//!
//! The crash hotplug handler runs inside these writes (memory notifier). Run once with kdump
//! loaded and once without: the difference is what the handler costs per event.

use std::{fs, process::ExitCode, time::Instant};

fn median(v: &mut [u128]) -> u128 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(rounds) = args.get(1).and_then(|a| a.parse::<usize>().ok()) else {
        eprintln!("usage: crashhp-hotplug-bench ROUNDS BLOCK...");
        return ExitCode::FAILURE;
    };
    let blocks = &args[2..];
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for b in blocks {
            let state = format!("/sys/devices/system/memory/memory{b}/state");
            for (what, times) in [("offline", &mut off), ("online_movable", &mut on)] {
                let t = Instant::now();
                if let Err(e) = fs::write(&state, what) {
                    eprintln!("{what} > {state}: {e}");
                    return ExitCode::FAILURE;
                }
                times.push(t.elapsed().as_nanos());
            }
        }
    }
    let events = off.len() + on.len();
    println!("{} {} {events}", median(&mut off), median(&mut on));
    ExitCode::SUCCESS
}
