//! In-guest benchmark: what the crash hotplug handler costs per memory event, upstream C versus
//! Rust, measured the same way in one run.
//!
//! Each kernel boots the same guest, hot-adds the same DIMM, and times `ROUNDS` offline/online
//! cycles of its memory blocks (each write is one memory notifier event) twice: with kdump loaded
//! (the handler updates the elfcorehdr) and unloaded (the handler returns at once). The difference
//! of the medians is the handler's cost per event.

use std::{fs, path::Path, time::Duration};

use crate::{
    dump,
    error::{Error, IoContext, Result},
    initramfs,
    qemu::{Vm, VmConfig},
};

const GIB: u64 = 1 << 30;
const T: Duration = Duration::from_secs(300);

/// Median ns of an offline and of an online write, and the number of events timed.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median ns of `offline`.
    pub offline: f64,
    /// Median ns of `online_movable`.
    pub online: f64,
    /// Events timed.
    pub events: u64,
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
) -> Result<(Timing, Timing)> {
    let _ = fs::remove_dir_all(workdir);
    fs::create_dir_all(workdir).ctx(|| format!("creating {}", workdir.display()))?;
    let images = initramfs::build(kernel, kexec, pattern_tool, &workdir.join("initramfs"))?;
    println!("==> [bench {label}] boot");
    let mut vm = Vm::start(&VmConfig {
        kernel: kernel.to_path_buf(),
        initrd: images.first,
        append: "console=ttyS0 crashkernel=256M memhp_default_state=online_movable panic=-1".into(),
        workdir: workdir.to_path_buf(),
    })?;
    vm.console.wait_str("@@READY first", 0, T)?;
    let addr = vm.add_dimm("dimm1", GIB)?;
    let block = u64::from_str_radix(
        vm.sh("cat /sys/devices/system/memory/block_size_bytes", T)?
            .trim(),
        16,
    )
    .map_err(|e| Error::Unexpected(format!("block_size_bytes: {e}")))?;
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
        "kexec -s -p /boot/bzImage --initrd=/boot/capture.cpio --append='console=ttyS0'",
        T,
    )?;
    println!(
        "==> [bench {label}] {} events with kdump loaded",
        rounds as u64 * 2 * blocks.len() as u64
    );
    let before = vm.sh(
        "cat /sys/kernel/debug/crash_hotplug/stats 2>/dev/null; true",
        T,
    )?;
    let loaded = parse(&vm.sh(&cmd, T)?)?;
    let after = vm.sh(
        "cat /sys/kernel/debug/crash_hotplug/stats 2>/dev/null; true",
        T,
    )?;
    let get = |t: &str, k: &str| dump::stat(t, k).map(|v| v as f64);
    if let (Some(n0), Some(n1), Some(t0), Some(t1)) = (
        get(&before, "applied"),
        get(&after, "applied"),
        get(&before, "total_ns"),
        get(&after, "total_ns"),
    ) {
        if n1 > n0 {
            println!(
                "    [bench {label}] in-kernel handler time (debugfs): mean {:.0} ns over {} events",
                (t1 - t0) / (n1 - n0),
                n1 - n0
            );
        }
    }
    vm.sh("kexec -p -u", T)?;
    println!("==> [bench {label}] the same with kdump unloaded");
    let unloaded = parse(&vm.sh(&cmd, T)?)?;
    vm.quit();
    Ok((loaded, unloaded))
}

/// Runs both kernels and prints the comparison.
pub fn run(
    kernel_c: &Path,
    kernel_rust: &Path,
    kexec: &Path,
    pattern_tool: &Path,
    out: &Path,
    rounds: u32,
) -> Result<f64> {
    let c = measure(
        "C",
        kernel_c,
        kexec,
        pattern_tool,
        &out.join("bench-c"),
        rounds,
    )?;
    let r = measure(
        "Rust",
        kernel_rust,
        kexec,
        pattern_tool,
        &out.join("bench-rust"),
        rounds,
    )?;
    let cost = |(l, u): (Timing, Timing)| ((l.offline - u.offline) + (l.online - u.online)) / 2.0;
    let (cc, rc) = (cost(c), cost(r));
    println!("bench: median ns per memory block write (kdump loaded / unloaded):");
    for (name, (l, u)) in [("C", c), ("Rust", r)] {
        println!(
            "    {name:<5} offline {:>10.0} / {:>10.0}   online {:>10.0} / {:>10.0}   ({} events each)",
            l.offline, u.offline, l.online, u.online, l.events
        );
    }
    println!("bench: crash hotplug handler cost per memory event: C {cc:.0} ns, Rust {rc:.0} ns");
    let ratio = if rc > 0.0 { cc / rc } else { f64::INFINITY };
    println!("bench: C/Rust ratio {ratio:.1}");
    Ok(ratio)
}
