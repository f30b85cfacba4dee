//! `crashhp-tlb-storm THREADS`: THREADS threads of one process map, touch and unmap 1 MiB
//! buffers in a loop, until killed. Each unmap of memory that several CPUs have touched through
//! the same mm makes the kernel flush those TLB entries on every CPU: on radix POWER that is a
//! broadcast `tlbie`, which QEMU's TCG runs as exclusive work across all vCPUs. The suite uses it
//! to reproduce, on demand, what the pseries crash campaign met now and then: a panic's
//! `H_SIGNAL_SYS_RESET` (a synchronous `run_on_cpu` in QEMU) against a broadcast flush.

use std::{hint::black_box, process::ExitCode, thread};

/// Bytes per buffer: above the allocator's mmap threshold, so each one is mapped and unmapped.
const BUF: usize = 1 << 20;
/// Bytes between touches: one store per 4 KiB page (and so per 64 KiB page too).
const PAGE: usize = 4096;

fn storm() {
    loop {
        let mut v = vec![0u8; BUF];
        for i in (0..BUF).step_by(PAGE) {
            v[i] = 1;
        }
        black_box(&v);
    }
}

fn main() -> ExitCode {
    let Some(n) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<usize>().ok())
    else {
        eprintln!("usage: crashhp-tlb-storm THREADS");
        return ExitCode::FAILURE;
    };
    let threads: Vec<_> = (0..n.max(1)).map(|_| thread::spawn(storm)).collect();
    println!("@@TLB-STORM {} threads", threads.len());
    for t in threads {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}
