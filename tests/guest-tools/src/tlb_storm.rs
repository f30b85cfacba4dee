//! `crashhp-tlb-storm THREADS`: THREADS threads of one process map 1 MiB of anonymous memory,
//! touch each page and unmap it, in a loop, until killed. Each unmap of pages that several CPUs'
//! threads of the same mm may have cached makes the kernel flush those TLB entries everywhere:
//! on radix POWER a broadcast `tlbie`, which QEMU's TCG runs as exclusive work across all vCPUs.
//! The suite uses it to reproduce on demand what the pseries crash campaign met now and then: a
//! panic's `H_SIGNAL_SYS_RESET` (a synchronous `run_on_cpu` in QEMU) against a broadcast flush.
//! (mmap and munmap directly: the allocator would keep freed buffers mapped.)

use std::{process::ExitCode, thread};

/// Bytes per mapping.
const LEN: usize = 1 << 20;
/// Bytes between touches: one store per 4 KiB page (and so per 64 KiB page too).
const PAGE: usize = 4096;

fn storm() {
    loop {
        // SAFETY: An anonymous private mapping of LEN bytes at an address the kernel picks; no
        // other memory is affected.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            continue;
        }
        let base = p.cast::<u8>();
        for off in (0..LEN).step_by(PAGE) {
            // SAFETY: `off < LEN`: inside the mapping just made, writable, used by this thread
            // only.
            unsafe { base.add(off).write_volatile(1) };
        }
        // SAFETY: Unmaps exactly the mapping made above; nothing refers to it any more.
        unsafe { libc::munmap(p, LEN) };
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
