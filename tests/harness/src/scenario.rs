//! The QEMU scenarios: boot, load kdump, hotplug, crash, and verify the dump from the host.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{
    dump::{self, CoreHeader},
    error::{Error, IoContext, Result, VerifyError},
    initramfs,
    qemu::{Vm, VmConfig},
};

const GIB: u64 = 1 << 30;
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
const CAPTURE_ARGS: &str = "console=ttyS0 irqpoll nr_cpus=1 reset_devices acpi_no_memhotplug \
                            memhp_default_state=offline panic=-1 rdinit=/init";

/// How the crash kernel is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Load {
    /// `kexec -s -p`: kexec_file_load(2); the kernel builds the elfcorehdr and may update it.
    File,
    /// `kexec -p`: kexec_load(2) without the hotplug flag; userspace builds the elfcorehdr and the
    /// kernel must not touch it (the negative control).
    Legacy,
}

/// What a scenario does and expects.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name, for progress lines and the artifact directory.
    pub name: String,
    /// bzImage to boot (first and capture kernel).
    pub kernel: PathBuf,
    /// kexec binary to put into the guest.
    pub kexec: PathBuf,
    /// Where artifacts go.
    pub workdir: PathBuf,
    /// How kdump is loaded.
    pub load: Load,
    /// KUnit suites that must report `ok` at boot.
    pub kunit_suites: Vec<String>,
    /// Check the Rust handler's debugfs event counters.
    pub check_events: bool,
    /// Crash and verify the dump (otherwise stop after hotplug).
    pub crash: bool,
}

/// What a passing scenario measured and verified.
#[derive(Debug, Default)]
pub struct Report {
    /// (phase, wall time) in order.
    pub phases: Vec<(String, Duration)>,
    /// One line per verified property.
    pub verified: Vec<String>,
}

impl Report {
    /// Prints the report.
    pub fn print(&self, name: &str) {
        println!("--- report: {name}");
        for (p, d) in &self.phases {
            println!("    {:<24} {:>7.2} s", p, d.as_secs_f64());
        }
        let total: Duration = self.phases.iter().map(|p| p.1).sum();
        println!("    {:<24} {:>7.2} s", "total", total.as_secs_f64());
        for v in &self.verified {
            println!("    verified: {v}");
        }
    }
}

/// A failed scenario: where it failed, why, and what the guest said last.
#[derive(Debug)]
pub struct Failure {
    /// The phase that failed.
    pub phase: String,
    /// Why.
    pub error: Error,
    /// The guest's last console lines.
    pub console_tail: String,
    /// The phases that completed before.
    pub report: Report,
}

struct Run<'a> {
    s: &'a Scenario,
    vm: Option<Vm>,
    report: Report,
    phase: String,
    t: Instant,
}

impl Run<'_> {
    fn phase(&mut self, name: &str) {
        self.end_phase();
        println!("==> [{}] {name}", self.s.name);
        self.phase = name.to_string();
        self.t = Instant::now();
    }

    fn end_phase(&mut self) {
        if !self.phase.is_empty() {
            self.report
                .phases
                .push((std::mem::take(&mut self.phase), self.t.elapsed()));
        }
    }

    fn vm(&mut self) -> Result<&mut Vm> {
        self.vm
            .as_mut()
            .ok_or_else(|| Error::Unexpected("no VM".into()))
    }

    fn ok(&mut self, what: String) {
        println!("    ok: {what}");
        self.report.verified.push(what);
    }

    fn save(&self, name: &str, data: &[u8]) -> Result<()> {
        let p = self.s.workdir.join(name);
        fs::write(&p, data).ctx(|| format!("writing {}", p.display()))
    }
}

/// Runs a scenario; on failure says where and keeps the artifacts.
pub fn run(s: &Scenario) -> std::result::Result<Report, Box<Failure>> {
    let mut r = Run {
        s,
        vm: None,
        report: Report::default(),
        phase: String::new(),
        t: Instant::now(),
    };
    match steps(&mut r) {
        Ok(()) => {
            r.end_phase();
            if let Some(vm) = r.vm.take() {
                vm.quit();
            }
            Ok(r.report)
        }
        Err(error) => {
            let console_tail =
                r.vm.as_ref()
                    .map(|v| v.console.tail(30))
                    .unwrap_or_default();
            let phase = r.phase.clone();
            r.end_phase();
            Err(Box::new(Failure {
                phase,
                error,
                console_tail,
                report: r.report,
            }))
        }
    }
}

fn steps(r: &mut Run<'_>) -> Result<()> {
    let s = r.s;
    r.phase("initramfs");
    let _ = fs::remove_dir_all(&s.workdir);
    fs::create_dir_all(&s.workdir).ctx(|| format!("creating {}", s.workdir.display()))?;
    let images = initramfs::build(&s.kernel, &s.kexec, &s.workdir.join("initramfs"))?;

    r.phase("boot");
    let vm = Vm::start(&VmConfig {
        kernel: s.kernel.clone(),
        initrd: images.first.clone(),
        append: "console=ttyS0 crashkernel=256M memhp_default_state=online panic=-1".into(),
        workdir: s.workdir.clone(),
    })?;
    let boot_log_end = vm.console.wait_str("@@READY first", 0, BOOT_TIMEOUT)?;
    let boot_log = vm.console.slice(0, boot_log_end);
    r.vm = Some(vm);

    if !s.kunit_suites.is_empty() {
        r.phase("kunit");
        let results = parse_ktap(&boot_log);
        for suite in &s.kunit_suites {
            match results.iter().find(|(n, _)| n == suite) {
                Some((_, true)) => r.ok(format!("KUnit suite {suite}: ok")),
                Some((_, false)) => {
                    return Err(VerifyError::Kunit(format!("suite {suite}: not ok")).into())
                }
                None => return Err(VerifyError::Kunit(format!("suite {suite} did not run")).into()),
            }
        }
        if let Some((n, _)) = results.iter().find(|(_, ok)| !ok) {
            return Err(VerifyError::Kunit(format!("suite {n}: not ok")).into());
        }
    }

    r.phase("kexec load");
    let flags = match s.load {
        Load::File => "-s -p",
        Load::Legacy => "-p",
    };
    r.vm()?.sh(
        &format!(
            "kexec {flags} /boot/bzImage --initrd=/boot/capture.cpio --append='{CAPTURE_ARGS}'"
        ),
        CMD_TIMEOUT,
    )?;
    let loaded = r
        .vm()?
        .sh("cat /sys/kernel/kexec_crash_loaded", CMD_TIMEOUT)?;
    if loaded.trim() != "1" {
        return Err(Error::Unexpected(format!(
            "kexec_crash_loaded reads {loaded:?} after kexec {flags}"
        )));
    }
    let hp = r.vm()?.sh(
        "echo cpu=$(cat /sys/devices/system/cpu/crash_hotplug) memory=$(cat /sys/devices/system/memory/crash_hotplug)",
        CMD_TIMEOUT,
    )?;
    r.ok(format!(
        "kdump loaded with kexec {flags}; crash_hotplug {}",
        hp.trim()
    ));
    let possible = r
        .vm()?
        .sh("cat /sys/devices/system/cpu/possible", CMD_TIMEOUT)?;
    let possible_cpus = dump::count_cpu_list(&possible)
        .ok_or_else(|| Error::Unexpected(format!("bad possible CPU list {possible:?}")))?;

    r.phase("memory hot-add");
    let (dimm_addr, dimm_size) = (r.vm()?.add_dimm("dimm1", GIB)?, GIB);
    let block = u64::from_str_radix(
        r.vm()?
            .sh(
                "cat /sys/devices/system/memory/block_size_bytes",
                CMD_TIMEOUT,
            )?
            .trim(),
        16,
    )
    .map_err(|e| Error::Unexpected(format!("block_size_bytes: {e}")))?;
    let (b0, b1) = (dimm_addr / block, (dimm_addr + dimm_size) / block - 1);
    r.vm()?.sh(
        &format!(
            "n=0; while [ $n -lt 300 ]; do ok=1; for i in $(seq {b0} {b1}); do \
             [ \"$(cat /sys/devices/system/memory/memory$i/state 2>/dev/null)\" = online ] || ok=0; done; \
             [ $ok = 1 ] && exit 0; n=$((n+1)); sleep 0.2; done; exit 1"
        ),
        CMD_TIMEOUT + CMD_TIMEOUT,
    )?;
    r.ok(format!(
        "DIMM dimm1 at {dimm_addr:#x} (+{dimm_size:#x}) online: memory blocks {b0}-{b1}"
    ));

    r.phase("pattern");
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u64;
    let paddr = dimm_addr + dimm_size / 2 + 0x1c0;
    let pattern = format!("{:.<64}", format!("CRASHHP dimm1 {paddr:#x} {nonce:016x} "));
    r.vm()?.sh(
        &format!("printf '%s' '{pattern}' | dd of=/dev/mem bs=64 seek={} count=1 conv=notrunc 2>/dev/null", paddr / 64),
        CMD_TIMEOUT,
    )?;
    let back = r.vm()?.sh(
        &format!(
            "dd if=/dev/mem bs=64 skip={} count=1 2>/dev/null; echo",
            paddr / 64
        ),
        CMD_TIMEOUT,
    )?;
    if back.trim() != pattern {
        return Err(Error::Unexpected(format!("pattern read back as {back:?}")));
    }
    r.ok(format!(
        "pattern written at {paddr:#x} through /dev/mem and read back"
    ));

    r.phase("cpu hotplug");
    r.vm()?.sh("echo 0 > /sys/devices/system/cpu/cpu1/online && echo 1 > /sys/devices/system/cpu/cpu1/online", CMD_TIMEOUT)?;
    r.vm()?.add_cpu("cpu-hp1")?;
    let onlined = r.vm()?.sh(
        "n=0; while [ $n -lt 150 ]; do for c in /sys/devices/system/cpu/cpu[0-9]*; do \
         [ \"$(cat $c/online 2>/dev/null)\" = 0 ] && echo 1 > $c/online && echo ${c##*/} && exit 0; done; \
         n=$((n+1)); sleep 0.2; done; exit 1",
        CMD_TIMEOUT,
    )?;
    let online = r
        .vm()?
        .sh("cat /sys/devices/system/cpu/online", CMD_TIMEOUT)?;
    let online_cpus = dump::count_cpu_list(&online)
        .ok_or_else(|| Error::Unexpected(format!("bad online CPU list {online:?}")))?;
    if online_cpus != 3 {
        return Err(Error::Unexpected(format!(
            "expected 3 online CPUs after hot-add, got {online:?}"
        )));
    }
    r.ok(format!(
        "cpu1 offline+online; hot-added {} online; online CPUs {} of possible {}",
        onlined.trim(),
        online.trim(),
        possible.trim()
    ));

    if s.check_events {
        r.phase("event counters");
        let text = r
            .vm()?
            .sh("cat /sys/kernel/debug/crash_hotplug/events", CMD_TIMEOUT)?;
        r.save("events.txt", text.as_bytes())?;
        let get = |k: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse().ok()))
                .unwrap_or(0)
        };
        let want_mem = dimm_size / block;
        let (mem, add, rm) = (get("online_memory "), get("add_cpu "), get("remove_cpu "));
        if mem != want_mem || add != 2 || rm != 1 {
            return Err(VerifyError::Events(format!(
                "online_memory {mem} (want {want_mem}), add_cpu {add} (want 2), remove_cpu {rm} (want 1)"
            ))
            .into());
        }
        r.ok(format!(
            "debugfs counters: online_memory {mem}, add_cpu {add}, remove_cpu {rm}"
        ));
    }
    let dmesg = r.vm()?.sh("dmesg", CMD_TIMEOUT)?;
    r.save("first-dmesg.txt", dmesg.as_bytes())?;
    if !s.crash {
        return Ok(());
    }

    r.phase("crash + capture boot");
    let from = r.vm()?.console.cursor();
    r.vm()?.console.send("echo c > /proc/sysrq-trigger\n")?;
    r.vm()?
        .console
        .wait_str("@@READY capture", from, BOOT_TIMEOUT)?;

    r.phase("fetch dump headers");
    let vmcore_bytes = fetch_core(r.vm()?, "/proc/vmcore", 0, true)?;
    r.save("vmcore-head.bin", &vmcore_bytes)?;

    r.phase("verify");
    let vmcore = parse_core(&vmcore_bytes)?;
    let dimm_end = dimm_addr + dimm_size - 1;
    if !vmcore.covers(dimm_addr, dimm_end) {
        return Err(VerifyError::DimmMissing {
            dimm: "dimm1".into(),
            start: dimm_addr,
            end: dimm_end,
        }
        .into());
    }
    r.ok(format!("PT_LOADs cover DIMM {dimm_addr:#x}-{dimm_end:#x}"));
    let off = vmcore
        .file_offset(paddr)
        .ok_or_else(|| VerifyError::PatternMismatch {
            paddr,
            found: "no file data".into(),
        })?;
    let got = r.vm()?.fetch("/proc/vmcore", off, 64)?;
    if got != pattern.as_bytes() {
        return Err(VerifyError::PatternMismatch {
            paddr,
            found: String::from_utf8_lossy(&got).into(),
        }
        .into());
    }
    r.ok(format!(
        "pattern found at {paddr:#x} (vmcore offset {off:#x})"
    ));
    let notes = vmcore.parse_notes(&vmcore_bytes)?;
    r.ok(dump::check_vmcore_notes(&notes, online_cpus)?);
    // The header the crashed kernel left, as the capture kernel read it (notes per possible CPU
    // are merged, and empty ones dropped, in /proc/vmcore).
    let cmdline = r.vm()?.sh("cat /proc/cmdline", CMD_TIMEOUT)?;
    let hdr_addr = dump::elfcorehdr_addr(&cmdline)
        .ok_or_else(|| Error::Unexpected(format!("no elfcorehdr= in {cmdline:?}")))?;
    let ehdr_bytes = fetch_core(r.vm()?, "/dev/mem", hdr_addr, false)?;
    r.save("elfcorehdr.bin", &ehdr_bytes)?;
    let ehdr = parse_core(&ehdr_bytes)?;
    let found = ehdr.notes().count();
    if found != possible_cpus + 1 {
        return Err(VerifyError::NoteCount {
            found,
            expected: possible_cpus + 1,
            cpus: possible_cpus,
        }
        .into());
    }
    r.ok(format!(
        "elfcorehdr at {hdr_addr:#x}: {found} PT_NOTE = {possible_cpus} possible CPUs + VMCOREINFO"
    ));

    r.phase("makedumpfile");
    let size = r.vm()?.sh(
        "makedumpfile --dump-dmesg /proc/vmcore /tmp/dmesg.txt >/tmp/mdf.log 2>&1 || { cat /tmp/mdf.log; exit 1; }; wc -c < /tmp/dmesg.txt",
        Duration::from_secs(180),
    )?;
    let size: u64 = size
        .trim()
        .parse()
        .map_err(|_| VerifyError::Dmesg(format!("bad size {size:?}")))?;
    let log = r.vm()?.fetch("/tmp/dmesg.txt", 0, size)?;
    r.save("vmcore-dmesg.txt", &log)?;
    let log = String::from_utf8_lossy(&log);
    if !log.contains("sysrq triggered crash") {
        return Err(
            VerifyError::Dmesg("log extracted but lacks \"sysrq triggered crash\"".into()).into(),
        );
    }
    r.ok(format!(
        "makedumpfile --dump-dmesg extracted {size} bytes including the panic message"
    ));
    Ok(())
}

fn parse_core(bytes: &[u8]) -> Result<CoreHeader> {
    match CoreHeader::parse(bytes)? {
        Ok(h) => Ok(h),
        Err(n) => {
            Err(VerifyError::Elf(format!("header needs {n} bytes, have {}", bytes.len())).into())
        }
    }
}

/// Fetches an ELF core header from `src` at `offset`, growing the read as needed: the program
/// headers, and with `with_notes` the notes too (in `/proc/vmcore` they follow the headers; in
/// the raw elfcorehdr, `p_offset` of a note is a physical address, not a file offset).
fn fetch_core(vm: &mut Vm, src: &str, offset: u64, with_notes: bool) -> Result<Vec<u8>> {
    // Start with one page: a kexec_load elfcorehdr may sit right below a hole.
    let mut len = 4096;
    loop {
        let bytes = vm.fetch(src, offset, len)?;
        let need = match CoreHeader::parse(&bytes)? {
            Ok(h) if with_notes => h.notes_end(),
            Ok(_) => 0,
            Err(n) => n,
        };
        if need as u64 <= len {
            return Ok(bytes);
        }
        len = (need as u64).next_multiple_of(4096);
    }
}

/// Top-level KTAP results in a boot log: (suite, ok).
pub fn parse_ktap(log: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for line in log.lines() {
        // Strip the printk time stamp "[    1.234567] ".
        let l = match line.find("] ") {
            Some(i) if line.starts_with('[') => &line[i + 2..],
            _ => line,
        };
        let (ok, rest) = if let Some(r) = l.strip_prefix("not ok ") {
            (false, r)
        } else if let Some(r) = l.strip_prefix("ok ") {
            (true, r)
        } else {
            continue;
        };
        let mut it = rest.splitn(2, ' ');
        if it.next().and_then(|n| n.parse::<u32>().ok()).is_none() {
            continue;
        }
        if let Some(name) = it.next() {
            let name = name.split(" #").next().unwrap_or(name).trim();
            out.push((name.to_string(), ok));
        }
    }
    out
}

/// The artifacts directory of a scenario.
pub fn workdir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

#[cfg(test)]
mod tests {
    use super::parse_ktap;

    #[test]
    fn ktap_top_level_only() {
        let log = "[    1.0] KTAP version 1\n[    1.0] 1..2\n[    1.1]     ok 1 inner_case\n\
                   [    1.2] ok 1 suite_a\n[    1.3] not ok 2 suite_b # SKIP x\n";
        assert_eq!(
            parse_ktap(log),
            vec![
                ("suite_a".to_string(), true),
                ("suite_b".to_string(), false)
            ]
        );
    }
}
