//! `crashhp-pattern N NONCE START:END...`: keeps N pages of anonymous memory alive, each with a
//! 64-byte pattern at offset 0x1c0 that names its physical address, and prints, for each physical
//! range (hex, inclusive), `<index> <paddr> <pattern>` for the first page inside it, or
//! `<index> none`.
//!
//! Test patterns written into free pages through /dev/mem can be overwritten when the kernel
//! reuses the page (a hotplug storm forks and migrates a lot); pages owned by a live process
//! cannot. The physical addresses come from /proc/self/pagemap (root only). Runs until killed.
//!
//! Pages are the running kernel's (AT_PAGESZ of /proc/self/auxv): 4 KiB on x86_64, 64 KiB on a
//! ppc64le pseries kernel. /proc/self/pagemap has one entry per such page and its frame numbers
//! count them.

use std::{
    alloc::{alloc_zeroed, Layout},
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    process::ExitCode,
    thread,
    time::Duration,
};

/// Offset of the pattern in each page, and its length.
const OFFSET: usize = 0x1c0;
const LEN: usize = 64;

/// `AT_PAGESZ` (include/uapi/linux/auxvec.h): the auxiliary vector entry holding the page size.
const AT_PAGESZ: usize = 6;

/// The page size in an auxiliary vector (`/proc/self/auxv`: native-endian `(type, value)` pairs of
/// machine words, ended by `AT_NULL`), if it has one that is a power of two and holds the pattern.
fn page_size(auxv: &[u8]) -> Option<usize> {
    const W: usize = std::mem::size_of::<usize>();
    let word = |b: &[u8]| b.try_into().ok().map(usize::from_ne_bytes);
    auxv.chunks_exact(2 * W)
        .map(|e| (word(&e[..W]), word(&e[W..])))
        .take_while(|(t, _)| *t != Some(0))
        .find_map(|(t, v)| if t == Some(AT_PAGESZ) { v } else { None })
        .filter(|p| p.is_power_of_two() && *p >= OFFSET + LEN)
}

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
    let Some(page_len) = std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|a| page_size(&a))
    else {
        eprintln!("no page size in /proc/self/auxv");
        return ExitCode::FAILURE;
    };
    let Some(layout) = n
        .checked_mul(page_len)
        .and_then(|size| Layout::from_size_align(size, page_len).ok())
    else {
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
        // SAFETY: `i * page_len` is inside the allocation of `n` pages of `page_len` bytes, which
        // this loop alone accesses, one page at a time.
        let page = unsafe { std::slice::from_raw_parts_mut(base.add(i * page_len), page_len) };
        page[0] = 1; // Fault the page in before asking where it is.
        let vaddr = page.as_ptr() as u64;
        let mut entry = [0u8; 8];
        let ok = pagemap
            .seek(SeekFrom::Start(vaddr / page_len as u64 * 8))
            .is_ok()
            && pagemap.read_exact(&mut entry).is_ok();
        let e = u64::from_le_bytes(entry);
        // Bit 63: present; bits 0-54: page frame number.
        if !ok || e >> 63 == 0 || e & ((1 << 55) - 1) == 0 {
            continue;
        }
        let paddr = (e & ((1 << 55) - 1)) * page_len as u64 + OFFSET as u64;
        let pattern = format!("{:.<64}", format!("CRASHHP {paddr:#x} {nonce} "));
        page[OFFSET..OFFSET + LEN].copy_from_slice(&pattern.as_bytes()[..LEN]);
        for (k, (s, e)) in ranges.iter().enumerate() {
            if found[k].is_none() && *s <= paddr && paddr + LEN as u64 - 1 <= *e {
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

#[cfg(test)]
mod tests {
    use super::{page_size, AT_PAGESZ};

    /// An auxiliary vector as the kernel lays it out, from `(type, value)` pairs.
    fn auxv(entries: &[(usize, usize)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|&(t, v)| [t.to_ne_bytes(), v.to_ne_bytes()])
            .flatten()
            .collect()
    }

    #[test]
    fn page_size_from_auxv() {
        // AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_NULL: as on a 64 KiB-page ppc64le kernel.
        let v = auxv(&[(16, 0xdc08_2000), (AT_PAGESZ, 65536), (17, 100), (0, 0)]);
        assert_eq!(page_size(&v), Some(65536));
        let v = auxv(&[(33, 0x7fff_0000), (AT_PAGESZ, 4096), (0, 0)]);
        assert_eq!(page_size(&v), Some(4096));
    }

    #[test]
    fn page_size_rejects_what_is_not_one() {
        // After AT_NULL nothing counts; a missing entry, a value that is no power of two or too
        // small for the pattern, and a truncated vector give none.
        assert_eq!(page_size(&auxv(&[(0, 0), (AT_PAGESZ, 4096)])), None);
        assert_eq!(page_size(&auxv(&[(17, 100), (0, 0)])), None);
        assert_eq!(page_size(&auxv(&[(AT_PAGESZ, 4095), (0, 0)])), None);
        assert_eq!(page_size(&auxv(&[(AT_PAGESZ, 256), (0, 0)])), None);
        assert_eq!(page_size(&auxv(&[(AT_PAGESZ, 4096)])[..12]), None);
        assert_eq!(page_size(&[]), None);
    }

    #[test]
    fn page_size_of_this_process() {
        // The running kernel's page size, as /proc/self/smaps reports it for the first mapping.
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let kb: usize = smaps
            .lines()
            .find_map(|l| l.strip_prefix("KernelPageSize:"))
            .and_then(|l| l.trim().strip_suffix("kB"))
            .and_then(|l| l.trim().parse().ok())
            .expect("KernelPageSize in /proc/self/smaps");
        let auxv = std::fs::read("/proc/self/auxv").expect("/proc/self/auxv");
        assert_eq!(page_size(&auxv), Some(kb * 1024));
    }
}
