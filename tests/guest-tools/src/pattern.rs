//! `crashhp-pattern N NONCE START:END...`: keeps N pages of anonymous memory alive, each with a
//! 64-byte pattern at offset 0x1c0 that names its physical address, and prints, for each physical
//! range (hex, inclusive), `<index> <paddr> <pattern>` for the first page inside it, or
//! `<index> none`.
//!
//! Test patterns written into free pages through /dev/mem can be overwritten when the kernel
//! reuses the page (a hotplug storm forks and migrates a lot); pages owned by a live process
//! cannot. The physical addresses come from /proc/self/pagemap (root only). Runs until killed.

use std::{
    alloc::{alloc_zeroed, Layout},
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    process::ExitCode,
    thread,
    time::Duration,
};

const PAGE: usize = 4096;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(nonce)) = (
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
        args.get(2),
    ) else {
        eprintln!("usage: crashhp-pattern PAGES NONCE START:END...");
        return ExitCode::FAILURE;
    };
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let ranges: Vec<(u64, u64)> = args[3..]
        .iter()
        .filter_map(|a| a.split_once(':'))
        .filter_map(|(a, b)| Some((hex(a)?, hex(b)?)))
        .collect();
    let mut found: Vec<Option<(u64, String)>> = vec![None; ranges.len()];
    let Ok(layout) = Layout::from_size_align(n * PAGE, PAGE) else {
        eprintln!("bad size");
        return ExitCode::FAILURE;
    };
    if n == 0 {
        eprintln!("PAGES must be at least 1");
        return ExitCode::FAILURE;
    }
    // SAFETY: `layout` has a non-zero size (n >= 1) and a power-of-two alignment.
    let base = unsafe { alloc_zeroed(layout) };
    if base.is_null() {
        eprintln!("allocation of {n} pages failed");
        return ExitCode::FAILURE;
    }
    let Ok(mut pagemap) = File::open("/proc/self/pagemap") else {
        eprintln!("cannot open /proc/self/pagemap");
        return ExitCode::FAILURE;
    };
    for i in 0..n {
        // SAFETY: `i * PAGE` is inside the allocation of `n` pages.
        let page = unsafe { std::slice::from_raw_parts_mut(base.add(i * PAGE), PAGE) };
        page[0] = 1; // Fault the page in before asking where it is.
        let vaddr = page.as_ptr() as u64;
        let mut entry = [0u8; 8];
        let ok = pagemap
            .seek(SeekFrom::Start(vaddr / PAGE as u64 * 8))
            .is_ok()
            && pagemap.read_exact(&mut entry).is_ok();
        let e = u64::from_le_bytes(entry);
        // Bit 63: present; bits 0-54: page frame number.
        if !ok || e >> 63 == 0 || e & ((1 << 55) - 1) == 0 {
            continue;
        }
        let paddr = (e & ((1 << 55) - 1)) * PAGE as u64 + 0x1c0;
        let pattern = format!("{:.<64}", format!("CRASHHP {paddr:#x} {nonce} "));
        page[0x1c0..0x1c0 + 64].copy_from_slice(&pattern.as_bytes()[..64]);
        for (k, (s, e)) in ranges.iter().enumerate() {
            if found[k].is_none() && *s <= paddr && paddr + 63 <= *e {
                found[k] = Some((paddr, pattern.clone()));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for (k, f) in found.iter().enumerate() {
        let _ = match f {
            Some((paddr, pattern)) => writeln!(out, "{k} {paddr:#x} {pattern}"),
            None => writeln!(out, "{k} none"),
        };
    }
    let _ = writeln!(out, "@@PATTERNS-READY");
    let _ = out.flush();
    drop(out);
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}
