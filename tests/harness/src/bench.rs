//! In-guest benchmark: what the crash hotplug handler costs per memory event, upstream C versus
//! Rust, measured the same way in one run.
//!
//! Each kernel boots the same guest, hot-adds the same DIMM, and times `ROUNDS` offline/online
//! cycles of its memory blocks (each write is one memory notifier event) twice: with kdump loaded
//! (the handler updates the elfcorehdr) and unloaded (the handler returns at once). The kernels
//! have the benchmark probe (`CONFIG_CRASH_HOTPLUG_PROBE`), which times the memory notifier chain
//! around whichever handler is built: the difference of its medians, loaded minus unloaded, is the
//! handler's cost per event. (The block writes' medians are printed too; they carry the whole
//! online/offline work and are too noisy on a shared machine to resolve the Rust handler's cost.)
//!
//! The number of RAM ranges is set in two ways that both implementations see alike, so that they
//! list the same ranges (which the C handler walks and rewrites on every event): `memmap=1$<n>M`
//! holes in the boot memory (one byte reserved per MiB from 128 MiB up splits "System RAM"
//! there; at most 150, the x86 e820 table holds 320 entries), then 128 MiB DIMMs hot-added
//! before the measured 1 GiB one (each one "System RAM" resource, one memory block).

use std::{fs, path::Path, time::Duration};

use crate::{
    dump,
    error::{Error, IoContext, Result},
    initramfs::{self, GUEST_KERNEL},
    machine::Machine,
    qemu::{Vm, VmConfig},
};

const GIB: u64 = 1 << 30;
/// Most `memmap=` holes: each takes two of the e820 table's 320 entries.
const MAX_HOLES: u32 = 150;
/// Ranges a guest has without holes or extra DIMMs, and the measured DIMM's blocks.
const BASE_RANGES: u32 = 12;
const T: Duration = Duration::from_secs(300);

/// Median ns of an offline and of an online write, the median time of the memory notifier chain
/// (the in-kernel probe), and the number of events timed.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median ns of `offline`.
    pub offline: f64,
    /// Median ns of `online_movable`.
    pub online: f64,
    /// Events timed.
    pub events: u64,
    /// Median ns of the memory notifier chain per event (`crash_hotplug_probe/memory_chain`).
    pub chain: f64,
}

const PROBE: &str = "/sys/kernel/debug/crash_hotplug_probe/memory_chain";

/// `(events, samples)` of the notifier-chain probe: the event count and the times of the last
/// events, oldest first.
pub fn probe(vm: &mut Vm) -> Result<(u64, Vec<f64>)> {
    let text = vm.sh(&format!("cat {PROBE}"), T).map_err(|e| {
        Error::Unexpected(format!(
            "{PROBE}: {e} (kernel built without CONFIG_CRASH_HOTPLUG_PROBE?)"
        ))
    })?;
    let samples = text
        .lines()
        .find_map(|l| l.strip_prefix("samples"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        });
    match (dump::stat(&text, "events"), samples) {
        (Some(n), Some(s)) => Ok((n, s)),
        _ => Err(Error::Unexpected(format!("{PROBE}: {text:?}"))),
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the timing command, with the probe read around it.
fn timed(vm: &mut Vm, cmd: &str) -> Result<Timing> {
    let (n0, _) = probe(vm)?;
    let mut t = parse(&vm.sh(cmd, T)?)?;
    let (n1, samples) = probe(vm)?;
    let seen = n1 - n0;
    if seen < t.events || seen as usize > samples.len() {
        return Err(Error::Unexpected(format!(
            "the probe saw {seen} events for {} block writes ({} samples kept; use fewer rounds)",
            t.events,
            samples.len()
        )));
    }
    t.chain = median(samples[samples.len() - seen as usize..].to_vec());
    Ok(t)
}

fn parse(out: &str) -> Result<Timing> {
    let v: Vec<f64> = out
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v[..] {
        [off, on, n] => Ok(Timing {
            offline: off,
            online: on,
            events: n as u64,
            chain: 0.0,
        }),
        _ => Err(Error::Unexpected(format!("bench output {out:?}"))),
    }
}

/// Per-event handler cost on `kernel`: (loaded, unloaded) timings.
pub fn measure(
    label: &str,
    kernel: &Path,
    kexec: &Path,
    pattern_tool: &Path,
    workdir: &Path,
    rounds: u32,
    ranges: u32,
) -> Result<(Timing, Timing)> {
    let extra = ranges.saturating_sub(BASE_RANGES);
    let holes = extra.min(MAX_HOLES);
    let small = extra - holes;
    let _ = fs::remove_dir_all(workdir);
    fs::create_dir_all(workdir).ctx(|| format!("creating {}", workdir.display()))?;
    let images = initramfs::build(
        kernel,
        &initramfs::Userland::host(kexec, pattern_tool),
        Machine::Q35,
        None,
        &workdir.join("initramfs"),
    )?;
    println!("==> [bench {label}] boot");
    let mut vm = Vm::start(&VmConfig {
        machine: Machine::Q35,
        qemu: None,
        kernel: kernel.to_path_buf(),
        initrd: images.first,
        append: format!("{}{}", Machine::Q35.first_append(), memmap(holes)),
        workdir: workdir.to_path_buf(),
        slots: (small + 2, small.div_ceil(8) + 2),
        nvdimm: None,
        boot_mem_gib: None,
    })?;
    vm.console.wait_str("@@READY first", 0, T)?;
    let block = u64::from_str_radix(
        vm.sh("cat /sys/devices/system/memory/block_size_bytes", T)?
            .trim(),
        16,
    )
    .map_err(|e| Error::Unexpected(format!("block_size_bytes: {e}")))?;
    for i in 0..small {
        vm.add_dimm(&format!("r{i}"), block)?;
    }
    vm.sh(
        "n=0; while grep -qx offline /sys/devices/system/memory/memory*/state; do \
         n=$((n+1)); [ $n -gt 600 ] && exit 1; sleep 0.1; done",
        T,
    )?;
    let addr = vm.add_dimm("dimm1", GIB)?;
    let (b0, b1) = (addr / block, (addr + GIB) / block - 1);
    vm.sh(
        &format!(
            "n=0; until [ \"$(cat /sys/devices/system/memory/memory{b1}/state)\" = online ]; do \
             n=$((n+1)); [ $n -gt 300 ] && exit 1; sleep 0.1; done"
        ),
        T,
    )?;
    let blocks: Vec<String> = (b0..=b1).map(|b| b.to_string()).collect();
    let cmd = format!("crashhp-hotplug-bench {rounds} {}", blocks.join(" "));
    vm.sh(
        &format!("kexec -s -p {GUEST_KERNEL} --initrd=/boot/capture.cpio --append='console=ttyS0'"),
        T,
    )?;
    println!(
        "==> [bench {label}] {} events with kdump loaded",
        rounds as u64 * 2 * blocks.len() as u64
    );
    let iomem_ram = vm.sh("grep -c '^[0-9a-f].*: System RAM$' /proc/iomem", T)?;
    println!(
        "    [bench {label}] {holes} memmap holes, {small} extra 128 MiB DIMMs: {} top-level \
         System RAM ranges in /proc/iomem",
        iomem_ram.trim()
    );
    let before = vm.sh(
        "cat /sys/kernel/debug/crash_hotplug/stats 2>/dev/null; true",
        T,
    )?;
    let errors_before = handler_errors(&mut vm)?;
    let loaded = timed(&mut vm, &cmd)?;
    let after = vm.sh(
        "cat /sys/kernel/debug/crash_hotplug/stats 2>/dev/null; true",
        T,
    )?;
    let errors = handler_errors(&mut vm)? - errors_before;
    // The work timed must have been done: every event applied, none failed or deferred (the
    // Rust handler's counters), no update error in the log (both handlers; the C one has no
    // counters and logs its failures).
    if errors != 0 {
        return Err(Error::Unexpected(format!(
            "[bench {label}] {errors} crash hotplug errors in the kernel log while timing"
        )));
    }
    let get = |t: &str, k: &str| dump::stat(t, k);
    let delta = |k: &str| Some(get(&after, k)? - get(&before, k)?);
    let applied = match (delta("applied"), delta("failed"), delta("deferred")) {
        (Some(n), Some(0), Some(0)) if n == loaded.events => {
            format!("{n} of {n} applied (debugfs)")
        }
        (Some(n), f, d) => {
            return Err(Error::Unexpected(format!(
                "[bench {label}] {} events timed but {n} applied, {f:?} failed, {d:?} deferred",
                loaded.events
            )))
        }
        (None, ..) if after.trim().is_empty() => {
            format!(
                "{} events, no update error logged (no counters)",
                loaded.events
            )
        }
        (None, ..) => {
            return Err(Error::Unexpected(format!(
                "[bench {label}] unreadable handler counters: {after:?}"
            )))
        }
    };
    println!("    [bench {label}] {applied}");
    if let (Some(n), Some(t), Some(ram)) = (
        delta("applied"),
        delta("total_edit_ns"),
        get(&after, "ram_loads"),
    ) {
        if n > 0 {
            println!(
                "    [bench {label}] in-kernel edit time (debugfs): mean {:.0} ns over {n} events, \
                 {ram} RAM PT_LOADs listed",
                t as f64 / n as f64
            );
        }
    }
    vm.sh("kexec -p -u", T)?;
    println!("==> [bench {label}] the same with kdump unloaded");
    let unloaded = timed(&mut vm, &cmd)?;
    vm.quit();
    Ok((loaded, unloaded))
}

/// Lines in the kernel log that report a crash hotplug update that failed (the C handler's and the
/// Rust handler's messages).
fn handler_errors(vm: &mut Vm) -> Result<u64> {
    let n = vm.sh(
        "dmesg | grep -cE 'kdump image may be inaccurate|unable to locate elfcorehdr|crash hp:|kdump image NOT updated' ; true",
        T,
    )?;
    n.trim()
        .parse()
        .map_err(|_| Error::Unexpected(format!("counting handler errors: {n:?}")))
}

/// `memmap=` holes: one byte reserved at every MiB from 128 MiB, `holes` of them (empty for 0).
fn memmap(holes: u32) -> String {
    if holes == 0 {
        return String::new();
    }
    let list: Vec<String> = (0..holes).map(|i| format!("1${}M", 128 + i)).collect();
    format!(" memmap={}", list.join(","))
}

/// Runs both kernels at each number of RAM ranges and prints the comparison. Returns the C/Rust
/// ratio at the largest number.
pub fn run(
    kernel_c: &Path,
    kernel_rust: &Path,
    kexec: &Path,
    pattern_tool: &Path,
    out: &Path,
    rounds: u32,
    ranges: &[u32],
) -> Result<f64> {
    // The handler's cost: the notifier chain's median time with kdump loaded minus unloaded.
    let cost = |(l, u): (Timing, Timing)| l.chain - u.chain;
    let mut rows = Vec::new();
    for &h in ranges {
        let run = |label: &str, kernel: &Path| {
            let dir = out.join(format!("bench-{}-{h}", label.to_lowercase()));
            measure(label, kernel, kexec, pattern_tool, &dir, rounds, h)
        };
        let (c, r) = (run("C", kernel_c)?, run("Rust", kernel_rust)?);
        println!(
            "bench (~{h} ranges): ns per event, kdump loaded / unloaded: memory notifier chain \
             (median), block write (median offline, online)"
        );
        for (name, (l, u)) in [("C", c), ("Rust", r)] {
            println!(
                "    {name:<5} chain {:>9.0} / {:>7.0}   offline {:>10.0} / {:>10.0}   online {:>10.0} / {:>10.0}   ({} events each)",
                l.chain, u.chain, l.offline, u.offline, l.online, u.online, l.events
            );
        }
        rows.push((h, cost(c), cost(r)));
    }
    let mut ratio = f64::INFINITY;
    for &(h, cc, rc) in &rows {
        ratio = if rc > 0.0 { cc / rc } else { f64::INFINITY };
        println!(
            "bench: ~{h} ranges: crash hotplug handler cost per memory event: C {cc:.0} ns, \
             Rust {rc:.0} ns, C/Rust ratio {ratio:.1}"
        );
    }
    Ok(ratio)
}
