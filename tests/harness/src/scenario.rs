//! The QEMU scenarios: boot, load kdump, hotplug, crash, and verify the dump from the host.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{
    drgn::{self, Drgn},
    dump::{self, CoreHeader},
    error::{Error, IoContext, Result, VerifyError},
    initramfs::{self, Userland, GUEST_KERNEL},
    machine::Machine,
    pmem::{self, Pmem},
    qemu::{Vm, VmConfig},
};

const GIB: u64 = 1 << 30;
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// How the crash kernel is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Load {
    /// `kexec -s -p`: kexec_file_load(2); the kernel builds the elfcorehdr and may update it.
    File,
    /// `kexec -p -c`: kexec_load(2) without the hotplug flag; userspace builds the elfcorehdr and
    /// the kernel must not touch it (the negative control). `-c` matters: kexec-tools >= 2.0.28
    /// uses kexec_file_load(2) by default.
    Legacy,
    /// `kexec -p -c --hotplug`: kexec_load(2) with the hotplug flag (kexec-tools >= 2.0.28).
    LegacyHotplug,
}

impl Load {
    fn flags(self) -> &'static str {
        match self {
            Load::File => "-s -p",
            Load::Legacy => "-p -c",
            Load::LegacyHotplug => "-p -c --hotplug",
        }
    }

    /// What `crash_hotplug` must read once kdump is loaded this way.
    fn crash_hotplug(self) -> &'static str {
        match self {
            Load::File | Load::LegacyHotplug => "1",
            Load::Legacy => "0",
        }
    }
}

/// What a scenario does and expects.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name, for progress lines and the artifact directory.
    pub name: String,
    /// The machine.
    pub machine: Machine,
    /// The QEMU program, if not the machine's default (fadump needs QEMU >= 10.2).
    pub qemu: Option<PathBuf>,
    /// Kernel to boot (first and capture kernel): bzImage, or vmlinux on ppc64le.
    pub kernel: PathBuf,
    /// kexec binary to put into the guest.
    pub kexec: PathBuf,
    /// The static `crashhp-pattern` binary to put into the guest.
    pub pattern_tool: PathBuf,
    /// busybox, makedumpfile and more guest programs of the machine's architecture.
    pub userland: Userland,
    /// fadump negative control: just before the crash, overwrite the crash info header the first
    /// kernel registered (`endian`: a byte-swapped magic; `cpumask`: a cpumask size of another
    /// NR_CPUS): the capture kernel must refuse the dump with that reason and export no
    /// `/proc/vmcore`.
    pub fadump_corrupt: Option<String>,
    /// CPUs to hot-add, one after another (on pseries, cores of one thread).
    pub hot_cpus: u32,
    /// Crash on CPU 0 even where the machine would crash on the last hot-added CPU (a pseries
    /// capture kernel whose FDT lacks the crashing CPU hangs after purgatory, so the checks of a
    /// stale image could not run).
    pub crash_on_boot_cpu: bool,
    /// `udevadm` and the directory of the udev rules to test in the guest.
    pub udev: Option<(PathBuf, PathBuf)>,
    /// Where artifacts go.
    pub workdir: PathBuf,
    /// How kdump is loaded.
    pub load: Load,
    /// KUnit suites (or test cases of a suite, by name) that must report `ok` at boot.
    pub kunit_suites: Vec<String>,
    /// Check the Rust handler's debugfs event counters.
    pub check_events: bool,
    /// DIMMs to hot-add, each with a pattern.
    pub dimms: u32,
    /// Size of each DIMM in bytes (a multiple of the memory block size).
    pub dimm_size: u64,
    /// Boot with `memory_hotplug.memmap_on_memory=1`: the struct pages of a hot-added memory
    /// block live at the block's start. Checked in the guest: the parameter reads `Y` and
    /// MemTotal grows by less than the DIMMs' size.
    pub memmap_on_memory: bool,
    /// In the capture kernel, write a filtered dump as a distribution's collector does
    /// (`makedumpfile -l -d 31 /proc/vmcore`, which reads the struct page of every page): it must
    /// exit 0 with a kdump-compressed file. On by default: every x86_64 kdump dump is filtered.
    pub filtered_dump: bool,
    /// Offline and remove the last DIMM before the crash; its memory must be absent from the dump.
    pub unplug: bool,
    /// Crash while memory blocks and a CPU go offline and online in a loop.
    pub storm: bool,
    /// The storm's random choices (the campaign's seeds): when the crash comes, where the loop
    /// over the blocks starts. Without it, the crash comes after 2 s, from the first block.
    pub storm_plan: Option<StormPlan>,
    /// Hot-add the DIMMs while kdump is reloaded in a loop (the kexec lock is busy): the events
    /// must be retried and applied, none dropped.
    pub contend: bool,
    /// Crash and verify the dump (otherwise stop after hotplug).
    pub crash: bool,
    /// Crash while the handler is in the middle of an elfcorehdr edit (debugfs `edit_delay_ms`
    /// pauses it after the first store, holding the kexec lock): the dump must still be taken.
    pub crash_in_edit: bool,
    /// Where that pause is (debugfs `edit_delay_point`), if not the kernel's default (`store`).
    pub edit_point: Option<String>,
    /// Boot with `crash_hotplug.inject_init_failure=1` (the CPU hotplug state is not registered):
    /// `crash_hotplug` must read 0 after the load and after memory hotplug, as no handler keeps
    /// the image current.
    pub inject_init_failure: bool,
    /// A mutation of the test kernel to activate after boot (debugfs `crash_hotplug/mutation`,
    /// `CONFIG_CRASH_HOTPLUG_TEST_HOOKS`): the mutation matrix expects the scenario to fail.
    pub mutation: Option<String>,
    /// Limit the header (debugfs `max_slots`) to 3 more program headers than it has at load, so
    /// that the DIMM's later blocks are refused: errors, `crash_hotplug` 0, reload, then 1.
    pub full_header: bool,
    /// q35 with a label-less NVDIMM whose namespace is made fsdax or devdax in pfn mode `pmem`
    /// (its struct pages on the device), before or after the load, or torn down after it; the
    /// dump must hold that device vmemmap with the device's bytes (or, torn down, not list it).
    pub pmem: Option<Pmem>,
    /// Read the filtered dump (`makedumpfile -l -d 31`) on the host with drgn and the kernel's
    /// vmlinux (`drgn::vmlinux_of`): the crashed task's stack, the struct pages of the first
    /// DIMM and of the pmem namespace's data. Needs `filtered_dump`.
    pub drgn: Option<Drgn>,
    /// The kernel is the debug build (`scripts/build-kernel.sh rust-debug`: lockdep, KASAN,
    /// KFENCE, kmemleak): kmemleak is scanned before the crash, and any report in either kernel's
    /// console (`kernel_reports`) fails the scenario.
    pub debug_kernel: bool,
    /// Fuzz the writable debugfs files with bad input (`crashhp-debugfs-fuzz SEED 20000`): each
    /// write must fail with EINVAL and change nothing, and the console must hold no kernel report.
    pub debugfs_fuzz: Option<u64>,
    /// Inject allocation failures (failslab and fail_page_alloc, aimed at the handler's text by
    /// the stack trace filter) while the first DIMM's blocks and cpu1 go offline and online
    /// (debug kernel only): see `check_fault_injection`.
    pub fault_injection: bool,
    /// The kernel's crash hotplug handler: its test hooks differ (the Rust implementation's
    /// debugfs `crash_hotplug/`, the C handler's `crash_hotplug_c/` from `patches/test/`).
    pub implementation: Implementation,
    /// Before the crash, a block of the first DIMM goes offline while the kexec lock is held 3 s
    /// (the implementation's `hold_lock_ms`, as a slow load would): `crash_hotplug` is read
    /// during and after, and the dump must not list the block.
    pub busy_lock: bool,
    /// Right before the crash, start `crashhp-tlb-storm` (threads that map and unmap memory on
    /// every CPU, so that TLB flushes are broadcast while the panic stops the other CPUs).
    pub tlb_storm: bool,
    /// Before the crash, read the benchmark probe (`CONFIG_CRASH_HOTPLUG_PROBE`): the memory
    /// notifier chain's median time per event so far, into [`Report::chain`].
    pub probe_chain: bool,
}

/// Which crash hotplug handler a kernel has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// kernel/crash_hotplug (this project).
    Rust,
    /// kernel/crash_core.c (upstream), with the test hooks of `patches/test/`.
    C,
}

impl Implementation {
    /// The debugfs file that pauses each update (ms; the kexec lock held) and the start of the
    /// log line the pause prints.
    fn pause_hook(self) -> (&'static str, &'static str) {
        match self {
            Self::Rust => (
                "/sys/kernel/debug/crash_hotplug/edit_delay_ms",
                "fault injection: pausing",
            ),
            Self::C => (
                "/sys/kernel/debug/crash_hotplug_c/update_delay_ms",
                "test hook: pausing",
            ),
        }
    }

    /// The debugfs file that holds the kexec lock (ms).
    fn hold_hook(self) -> &'static str {
        match self {
            Self::Rust => "/sys/kernel/debug/crash_hotplug/hold_lock_ms",
            Self::C => "/sys/kernel/debug/crash_hotplug_c/hold_lock_ms",
        }
    }
}

impl Scenario {
    /// A scenario with the defaults of the foundation's: one DIMM, no unplug, no storm, crash.
    pub fn new(name: &str, kernel: &Path, kexec: &Path, pattern_tool: &Path, out: &Path) -> Self {
        Self {
            name: name.into(),
            machine: Machine::Q35,
            qemu: None,
            kernel: kernel.to_path_buf(),
            kexec: kexec.to_path_buf(),
            pattern_tool: pattern_tool.to_path_buf(),
            userland: Userland::host(kexec, pattern_tool),
            fadump_corrupt: None,
            hot_cpus: 1,
            crash_on_boot_cpu: false,
            udev: None,
            workdir: out.join(name),
            load: Load::File,
            kunit_suites: vec![],
            check_events: false,
            dimms: 1,
            dimm_size: GIB,
            memmap_on_memory: false,
            filtered_dump: true,
            unplug: false,
            storm: false,
            storm_plan: None,
            contend: false,
            crash: true,
            full_header: false,
            crash_in_edit: false,
            edit_point: None,
            inject_init_failure: false,
            mutation: None,
            pmem: None,
            drgn: None,
            debug_kernel: false,
            debugfs_fuzz: None,
            fault_injection: false,
            implementation: Implementation::Rust,
            busy_lock: false,
            probe_chain: false,
            tlb_storm: false,
        }
    }
}

/// The lines of a console that report a kernel defect: warnings, BUGs, lockdep, KASAN, KFENCE,
/// UBSAN, kmemleak. (The crash itself, `sysrq: Trigger a crash` and the panic, is not one.)
pub fn kernel_reports(console: &str) -> Vec<String> {
    const MARKS: [&str; 13] = [
        "WARNING:",
        "BUG:",
        "KASAN:",
        "KFENCE:",
        "UBSAN:",
        "suspected memory leak",
        "unreferenced object",
        "possible recursive locking",
        "possible circular locking",
        "inconsistent lock state",
        "suspicious RCU usage",
        "Oops:",
        "general protection fault",
    ];
    console
        .lines()
        .filter(|l| MARKS.iter().any(|m| l.contains(m)))
        .map(|l| l.trim().to_string())
        .collect()
}

/// A storm's random choices (see `campaign.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StormPlan {
    /// The crash comes this long after the storm starts.
    pub crash_after_ms: u64,
    /// The loop over the DIMM's blocks starts at this one (modulo their number).
    pub first_block: usize,
}

/// What a passing scenario measured and verified.
#[derive(Debug, Default)]
pub struct Report {
    /// (phase, wall time) in order.
    pub phases: Vec<(String, Duration)>,
    /// One line per verified property.
    pub verified: Vec<String>,
    /// The memory notifier chain before the crash (`probe_chain`): events timed and the median
    /// ns per event.
    pub chain: Option<(u64, f64)>,
    /// `crash_hotplug` (cpu and memory) while the kexec lock was busy and after (`busy_lock`).
    pub busy: Option<(String, String)>,
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
    /// Whether the crash had been triggered (a failure before it judged no dump).
    pub crashed: bool,
}

struct Run<'a> {
    s: &'a Scenario,
    vm: Option<Vm>,
    report: Report,
    phase: String,
    t: Instant,
    /// The `max_slots` limit set for a full-header scenario.
    full_limit: Option<u64>,
    /// Memory blocks left offline (they must be absent from the dump, the others present).
    offline_blocks: Vec<(u64, u64)>,
    /// The handler's debugfs stats after the contention phase, judged after the dump.
    contention_stats: Option<String>,
    /// The storm's states at the crash, read from the crashed kernel's log in the dump (its
    /// markers follow the storm's start there).
    storm_states: Option<BlockStates>,
    /// The crashed kernel's log, as `makedumpfile --dump-dmesg` extracted it from the dump.
    crashed_log: Option<String>,
    /// The crash was triggered.
    crashed: bool,
    /// The memory block whose online event was paused at the crash (crash in the middle of an
    /// edit): wholly present or wholly absent.
    paused_block: Option<u64>,
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
        full_limit: None,
        offline_blocks: vec![],
        contention_stats: None,
        storm_states: None,
        crashed_log: None,
        crashed: false,
        paused_block: None,
    };
    let mut res = steps(&mut r);
    if s.debug_kernel {
        // Whatever the outcome, the debug kernel's reports are this scenario's failure.
        let found =
            r.vm.as_ref()
                .map(|v| kernel_reports(&v.console.slice(0, v.console.cursor())))
                .unwrap_or_default();
        if !found.is_empty() {
            let e = VerifyError::KernelReports(found.join(" | "));
            res = match res {
                Ok(()) => {
                    r.phase("debug kernel reports");
                    Err(e.into())
                }
                Err(other) => {
                    println!("    also: {e}");
                    Err(other)
                }
            };
        } else if res.is_ok() {
            r.ok("debug kernel: no WARNING, BUG, lockdep, KASAN, KFENCE or kmemleak report in either kernel's console".into());
        }
    }
    match res {
        Ok(()) => {
            r.end_phase();
            if let Some(vm) = r.vm.take() {
                vm.quit();
            }
            Ok(r.report)
        }
        Err(error) => {
            if matches!(error, Error::Timeout { .. }) {
                // Where each vCPU is: the program counters of a guest that stopped answering.
                if let Some(regs) =
                    r.vm.as_mut()
                        .and_then(|v| v.monitor("info registers -a").ok())
                {
                    let _ = r.save("hang-registers.txt", regs.as_bytes());
                    let pcs: Vec<&str> = regs
                        .lines()
                        .filter(|l| l.starts_with("NIP ") || l.starts_with("RIP="))
                        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>())
                        .map(|w| if w[0] == "NIP" { w[1] } else { w[0] })
                        .collect();
                    println!(
                        "    timed out: the vCPUs' program counters {pcs:?} (hang-registers.txt)"
                    );
                }
            }
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
                crashed: r.crashed,
            }))
        }
    }
}

fn steps(r: &mut Run<'_>) -> Result<()> {
    let s = r.s;
    r.phase("initramfs");
    let _ = fs::remove_dir_all(&s.workdir);
    fs::create_dir_all(&s.workdir).ctx(|| format!("creating {}", s.workdir.display()))?;
    let m = s.machine;
    let userland = Userland {
        kexec: s.kexec.clone(),
        pattern_tool: s.pattern_tool.clone(),
        ..s.userland.clone()
    };
    let images = initramfs::build(
        &s.kernel,
        &userland,
        m,
        s.udev.as_ref().map(|(a, b)| (a.as_path(), b.as_path())),
        &s.workdir.join("initramfs"),
    )?;

    r.phase("boot");
    let mut append = m.first_append().to_string();
    if s.debug_kernel {
        // The KASAN capture kernel needs its shadow (1/8 of its memory) besides the initramfs and
        // the filtered dump makedumpfile writes to its tmpfs: 256 MiB does not hold them.
        append = append.replace("crashkernel=256M", "crashkernel=512M");
    }
    if s.inject_init_failure {
        append.push_str(" crash_hotplug.inject_init_failure=1");
    }
    if s.memmap_on_memory {
        append.push_str(&format!(
            " memory_hotplug.memmap_on_memory={}",
            m.memmap_on_memory().0
        ));
    }
    let vm = Vm::start(&VmConfig {
        machine: m,
        qemu: s.qemu.clone(),
        kernel: s.kernel.clone(),
        initrd: images.first.clone(),
        append,
        workdir: s.workdir.clone(),
        slots: VmConfig::SLOTS,
        nvdimm: s.pmem.map(|_| {
            (
                s.workdir.join(NVDIMM_FILE),
                pmem::NVDIMM_SIZE + m.nvdimm_label_size(),
            )
        }),
        // The debug kernel's KASAN shadow and its 512 MiB crash kernel region need a second GiB.
        boot_mem_gib: s.debug_kernel.then_some(2),
    })?;
    let boot_log_end = vm.console.wait_str("@@READY first", 0, m.boot_timeout())?;
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

    if let Some(m) = &s.mutation {
        r.phase("mutation");
        let back = r.vm()?.sh(
            &format!(
                "echo {m} > /sys/kernel/debug/crash_hotplug/mutation && \
                 cat /sys/kernel/debug/crash_hotplug/mutation"
            ),
            CMD_TIMEOUT,
        )?;
        if back.trim() != m {
            return Err(Error::Unexpected(format!(
                "debugfs mutation reads {back:?} after writing {m:?}"
            )));
        }
        r.ok(format!("mutation {m} active"));
    }

    let mut namespace = None;
    if let Some(p) = s.pmem.filter(|p| p.before_load()) {
        r.phase("pmem namespace");
        namespace = Some(pmem_create(r, p)?);
    }

    let flags = s.load.flags();
    if m.kdump() {
        r.phase("kexec load");
        r.vm()?.sh(&kexec_cmd(s, flags), CMD_TIMEOUT)?;
        let loaded = r
            .vm()?
            .sh("cat /sys/kernel/kexec_crash_loaded", CMD_TIMEOUT)?;
        if loaded.trim() != "1" {
            return Err(Error::Unexpected(format!(
                "kexec_crash_loaded reads {loaded:?} after kexec {flags}"
            )));
        }
        let hp = r.vm()?.sh(
            "cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug",
            CMD_TIMEOUT,
        )?;
        let want = if s.inject_init_failure {
            "0"
        } else {
            s.load.crash_hotplug()
        };
        if hp.split_whitespace().collect::<Vec<_>>() != [want, want] {
            return Err(Error::Unexpected(format!(
                "crash_hotplug (cpu, memory) reads {:?} after kexec {flags}, expected {want}",
                hp.split_whitespace().collect::<Vec<_>>()
            )));
        }
        r.ok(format!(
            "kdump loaded with kexec {flags}; cpu and memory crash_hotplug read {want}"
        ));
        match (s.pmem, &namespace) {
            (Some(p), None) => {
                r.phase("pmem namespace after the load");
                namespace = Some(pmem_create(r, p)?);
            }
            (Some(p), Some(ns)) if !p.present_at_crash() => {
                r.phase("pmem namespace torn down after the load");
                let ns = ns.clone();
                let left = pmem::destroy(r.vm()?, p.mode, &ns)?;
                r.ok(format!(
                    "{} unbound; /proc/iomem there now: {}",
                    ns.dev,
                    left.join(" | ")
                ));
            }
            _ => {}
        }
    } else {
        r.phase("fadump registered");
        // fadump=on registers at boot: nothing registers it here.
        let fa = r.vm()?.sh(
            "cd /sys/kernel/fadump && for f in enabled registered hotplug_ready; do \
             printf '%s=%s ' $f \"$(cat $f 2>/dev/null || echo n/a)\"; done",
            CMD_TIMEOUT,
        )?;
        if fa.trim() != "enabled=1 registered=1 hotplug_ready=1" {
            return Err(Error::Unexpected(format!(
                "fadump at boot: {} (want enabled=1 registered=1 hotplug_ready=1)",
                fa.trim()
            )));
        }
        r.ok(format!("fadump at boot: {}", fa.trim()));
    }
    if s.full_header {
        // One event makes the handler report the loaded header's size.
        let stats = r.vm()?.sh(
            "echo 0 > /sys/devices/system/cpu/cpu1/online && echo 1 > /sys/devices/system/cpu/cpu1/online \
             && cat /sys/kernel/debug/crash_hotplug/stats",
            CMD_TIMEOUT,
        )?;
        let phnum = dump::stat(&stats, "phnum")
            .filter(|&p| p > 0)
            .ok_or_else(|| Error::Unexpected(format!("no phnum in stats: {stats:?}")))?;
        let limit = phnum + 3;
        r.vm()?.sh(
            &format!("echo {limit} > /sys/kernel/debug/crash_hotplug/max_slots"),
            CMD_TIMEOUT,
        )?;
        r.full_limit = Some(limit);
        r.ok(format!(
            "the header has {phnum} program headers; debugfs max_slots set to {limit}"
        ));
    }
    let possible = r
        .vm()?
        .sh("cat /sys/devices/system/cpu/possible", CMD_TIMEOUT)?;
    let possible_cpus = dump::count_cpu_list(&possible)
        .ok_or_else(|| Error::Unexpected(format!("bad possible CPU list {possible:?}")))?;

    r.phase("memory hot-add");
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
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u64;
    let size = s.dimm_size;
    let mem_total_before = if s.memmap_on_memory {
        let param = r.vm()?.sh(
            "cat /sys/module/memory_hotplug/parameters/memmap_on_memory",
            CMD_TIMEOUT,
        )?;
        let want = m.memmap_on_memory().1;
        if param.trim() != want {
            return Err(Error::Unexpected(format!(
                "memory_hotplug.memmap_on_memory reads {:?}, want {want}",
                param.trim()
            )));
        }
        Some(mem_total_kib(r.vm()?)?)
    } else {
        None
    };
    let mut dimms = Vec::new();
    for k in 1..=s.dimms.max(1) {
        let id = format!("dimm{k}");
        let addr = r.vm()?.add_dimm(&id, size)?;
        let (b0, b1) = (addr / block, (addr + size) / block - 1);
        wait_blocks(r.vm()?, b0, b1, "online")?;
        r.ok(format!(
            "DIMM {id} at {addr:#x} (+{size:#x}) online: memory blocks {b0}-{b1}"
        ));
        dimms.push(Dimm {
            id,
            addr,
            size,
            blocks: (b0, b1),
            pattern: None,
        });
    }
    if let Some(before) = mem_total_before {
        // With the struct pages on the DIMMs, those pages are never handed to the page allocator:
        // MemTotal grows by less than the DIMMs' size (by the whole size if the memmap came from
        // boot memory, i.e. memmap_on_memory was not in effect).
        let added_kib = size / 1024 * dimms.len() as u64;
        let grown = mem_total_kib(r.vm()?)?.saturating_sub(before);
        if grown >= added_kib || grown == 0 {
            return Err(Error::Unexpected(format!(
                "MemTotal grew by {grown} KiB for {added_kib} KiB of DIMMs: memmap_on_memory is \
                 not in effect"
            )));
        }
        r.ok(format!(
            "memmap_on_memory in effect: MemTotal grew by {grown} KiB for {added_kib} KiB of \
             DIMMs ({} KiB of struct pages on the DIMMs)",
            added_kib - grown
        ));
    }

    if s.inject_init_failure {
        r.phase("no handler");
        let hp = read_crash_hotplug(r.vm()?)?;
        let log = r.vm()?.sh(
            "dmesg | grep 'fault injection: CPU hotplug state'",
            CMD_TIMEOUT,
        )?;
        if hp != ["0", "0"] || log.trim().is_empty() {
            return Err(Error::Unexpected(format!(
                "with the CPU hotplug state not registered, crash_hotplug (cpu, memory) reads {hp:?} \
                 after a DIMM hot-add (want 0 0); kernel log: {:?}",
                log.trim()
            )));
        }
        r.ok(format!(
            "registration failed at boot ({}): crash_hotplug reads 0 0 after the load and a DIMM hot-add",
            log.trim()
        ));
    }

    if s.full_header {
        r.phase("full elfcorehdr");
        check_full_header(r, &dimms[0], flags)?;
    }

    if s.fault_injection {
        r.phase("allocation failures injected");
        check_fault_injection(r, &dimms[0], flags)?;
    }

    if s.contend {
        r.phase("hotplug against 30 s of crash loads");
        check_contention(r, &dimms[0], block)?;
    }

    r.phase("cpu hotplug");
    let boot_cpus = m.boot_cpus();
    if boot_cpus >= 2 {
        r.vm()?.sh(
            "echo 0 > /sys/devices/system/cpu/cpu1/online && echo 1 > /sys/devices/system/cpu/cpu1/online",
            CMD_TIMEOUT,
        )?;
    }
    // One CPU (on pseries a core of one thread) in the first free slot. The guest may online it
    // itself (pseries does); any CPU still offline is onlined here.
    for k in 1..=s.hot_cpus {
        r.vm()?.add_cpu(&format!("cpu-hp{k}"))?;
    }
    let want_online = boot_cpus + s.hot_cpus;
    let onlined = r.vm()?.sh(
        &format!(
            "n=0; while [ $n -lt 300 ]; do \
             [ $(grep -c ^processor /proc/cpuinfo) -ge {want_online} ] && \
             ls -d /sys/devices/system/cpu/cpu[0-9]* | tail -n 1 && exit 0; \
             for c in /sys/devices/system/cpu/cpu[0-9]*; do \
             [ \"$(cat $c/online 2>/dev/null)\" = 0 ] && echo 1 > $c/online; done; \
             n=$((n+1)); sleep 0.2; done; exit 1"
        ),
        CMD_TIMEOUT,
    )?;
    let online = r
        .vm()?
        .sh("cat /sys/devices/system/cpu/online", CMD_TIMEOUT)?;
    let online_cpus = dump::count_cpu_list(&online)
        .ok_or_else(|| Error::Unexpected(format!("bad online CPU list {online:?}")))?;
    if online_cpus != want_online as usize {
        return Err(Error::Unexpected(format!(
            "expected {want_online} online CPUs after hot-add, got {online:?}"
        )));
    }
    r.ok(format!(
        "{}hot-added {} online; online CPUs {} of possible {}",
        if boot_cpus >= 2 {
            "cpu1 offline+online; "
        } else {
            ""
        },
        onlined.trim().rsplit('/').next().unwrap_or(""),
        online.trim(),
        possible.trim()
    ));

    if s.udev.is_some() {
        r.phase("udev rules");
        if m.kdump() {
            check_udev(r, dimms[0].blocks.0, s.load.crash_hotplug() == "0")?;
        } else {
            check_udev_fadump(r, dimms[0].blocks.1)?;
        }
    }

    let mut removed = None;
    let mut pre_crash_hdr: Option<(u64, Vec<u8>)> = None;
    if s.unplug {
        r.phase("memory unplug");
        let d = dimms
            .last()
            .ok_or_else(|| Error::Unexpected("no DIMM".into()))?;
        let (id, addr, size, (b0, b1)) = (d.id.clone(), d.addr, d.size, d.blocks);
        r.vm()?.sh(
            &format!(
                "for i in $(seq {b0} {b1}); do echo offline > /sys/devices/system/memory/memory$i/state || exit 1; done"
            ),
            CMD_TIMEOUT,
        )?;
        r.vm()?.remove_dimm(&id, CMD_TIMEOUT)?;
        r.ok(format!("DIMM {id} offlined and removed"));
        removed = Some((addr, addr + size - 1));
    }

    // After the unplug: a pattern in a free page (below) could else be overwritten by a page the
    // unplug migrates there.
    r.phase("pattern");
    let keep = if s.unplug {
        dimms.len() - 1
    } else {
        dimms.len()
    };
    // Preferably in a page a live process owns (the kernel cannot reuse it); a DIMM the process
    // got no page in gets its pattern in a free page through /dev/mem.
    let ranges: Vec<String> = dimms
        .iter()
        .take(keep)
        .map(|d| format!("{:#x}:{:#x}", d.addr, d.addr + d.size - 1))
        .collect();
    let owned = r.vm()?.sh(
        &format!(
            "crashhp-pattern {} {nonce:016x} {} > /tmp/pat 2>&1 & \
             n=0; until grep -q @@PATTERNS-READY /tmp/pat; do n=$((n+1)); [ $n -gt 300 ] && exit 1; sleep 0.1; done; cat /tmp/pat",
            // 64 MiB: more would press the guest's memory and make the kernel move pages (a
            // page moved after its pattern was placed leaves a stale copy at the old address).
            (64 << 20) / m.page_size(),
            ranges.join(" ")
        ),
        CMD_TIMEOUT,
    )?;
    let mut how = Vec::new();
    for (k, d) in dimms.iter_mut().take(keep).enumerate() {
        let line = owned
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&k.to_string()));
        let parsed = line.and_then(|l| {
            let mut it = l.splitn(3, ' ');
            let _ = it.next();
            let paddr = u64::from_str_radix(it.next()?.trim_start_matches("0x"), 16).ok()?;
            Some((paddr, it.next()?.to_string()))
        });
        if let Some((paddr, pattern)) = parsed.filter(|p| p.1.len() == 64) {
            how.push(format!("{}: {paddr:#x} (process-owned page)", d.id));
            d.pattern = Some((paddr, pattern));
            continue;
        }
        if s.debug_kernel {
            // A write to a free page through /dev/mem is a use-after-free to KASAN (it is one:
            // the page is the allocator's). The debug kernel's runs judge checker reports; the
            // main suite places and finds these patterns.
            how.push(format!(
                "{}: none (no process-owned page; /dev/mem into a free page is a KASAN report)",
                d.id
            ));
            continue;
        }
        let paddr = d.addr + d.size / 2 + 0x1c0;
        let pattern = format!("{:.<64}", format!("CRASHHP {paddr:#x} {nonce:016x} "));
        let vm =
            r.vm.as_mut()
                .ok_or_else(|| Error::Unexpected("no VM".into()))?;
        vm.sh(
            &format!(
                "printf '%s' '{pattern}' | dd of=/dev/mem bs=64 seek={} count=1 conv=notrunc 2>/dev/null",
                paddr / 64
            ),
            CMD_TIMEOUT,
        )?;
        let back = vm.sh(
            &format!(
                "dd if=/dev/mem bs=64 skip={} count=1 2>/dev/null; echo",
                paddr / 64
            ),
            CMD_TIMEOUT,
        )?;
        if back.trim() != pattern {
            return Err(Error::Unexpected(format!("pattern read back as {back:?}")));
        }
        how.push(format!("{}: {paddr:#x} (free page, /dev/mem)", d.id));
        d.pattern = Some((paddr, pattern));
    }
    r.ok(format!("patterns placed: {}", how.join(", ")));

    if s.check_events {
        r.phase("event counters");
        let text = r
            .vm()?
            .sh("cat /sys/kernel/debug/crash_hotplug/events", CMD_TIMEOUT)?;
        r.save("events.txt", text.as_bytes())?;
        let stats = r
            .vm()?
            .sh("cat /sys/kernel/debug/crash_hotplug/stats", CMD_TIMEOUT)?;
        r.save("stats.txt", stats.as_bytes())?;
        let get = |t: &str, k: &str| dump::stat(t, k).unwrap_or(u64::MAX);
        let per_dimm = s.dimm_size / block;
        let want_on = per_dimm * u64::from(s.dimms.max(1));
        let want_off = if s.unplug { per_dimm } else { 0 };
        let (on, off, add, rm) = (
            get(&text, "online_memory"),
            get(&text, "offline_memory"),
            get(&text, "add_cpu"),
            get(&text, "remove_cpu"),
        );
        // With contention the DIMM's blocks and cpu1 also cycled, and some blocks stayed
        // offline: only the net counts are known.
        let left_off = r.offline_blocks.len() as u64;
        // cpu1 goes offline and online once where the machine boots with two CPUs.
        let cycles = u64::from(boot_cpus >= 2);
        let (want_add, want_rm) = (u64::from(s.hot_cpus) + cycles, cycles);
        let (mem_ok, cpu_ok) = if s.contend {
            (
                on.checked_sub(off) == want_on.checked_sub(want_off + left_off)
                    && off > want_off + left_off,
                add.checked_sub(rm) == Some(u64::from(s.hot_cpus)) && rm > 1,
            )
        } else {
            (
                on == want_on && off == want_off,
                add == want_add && rm == want_rm,
            )
        };
        if !mem_ok || !cpu_ok {
            return Err(VerifyError::Events(format!(
                "online_memory {on} (want {want_on}), offline_memory {off} (want {want_off}), \
                 add_cpu {add} (want {want_add}), remove_cpu {rm} (want {want_rm}); contention: {}, blocks left \
                 offline {left_off}",
                s.contend
            ))
            .into());
        }
        let failed = get(&stats, "failed");
        if failed != 0 {
            return Err(VerifyError::Events(format!("{failed} events failed to apply")).into());
        }
        r.ok(format!(
            "debugfs: online_memory {on}, offline_memory {off}, add_cpu {add}, remove_cpu {rm}; \
             stats: failed 0, applied {}, max_ns {}, phnum {} of {}",
            get(&stats, "applied"),
            get(&stats, "max_ns"),
            get(&stats, "phnum"),
            get(&stats, "capacity")
        ));
    }
    // The header as it is right before the crash, read in the first kernel: the capture kernel's
    // /dev/mem cannot read above its own memory, where kexec-tools puts it. (Rust kernels say
    // where it is in debugfs; the notes it lists do not change in a storm.)
    let stats = r.vm()?.sh(
        "cat /sys/kernel/debug/crash_hotplug/stats 2>/dev/null; true",
        CMD_TIMEOUT,
    )?;
    // Every scenario with the Rust handler: no event failed (the full-header scenario's refusals
    // are its subject and are counted in its own phase). Exact counts: `check_events` above.
    if let Some(failed) =
        dump::stat(&stats, "failed").filter(|_| !s.full_header && !s.fault_injection)
    {
        if failed != 0 {
            return Err(VerifyError::Events(format!(
                "{failed} events failed to apply (stats: {})",
                stats.split_whitespace().collect::<Vec<_>>().join(" ")
            ))
            .into());
        }
        r.ok(format!(
            "handler stats before the crash: failed 0, applied {}, deferred {}",
            dump::stat(&stats, "applied").unwrap_or(0),
            dump::stat(&stats, "deferred").unwrap_or(0)
        ));
    }
    let hdr_addr = dump::stat(&stats, "elfcorehdr_addr");
    if let Some(a) = hdr_addr.filter(|a| *a != 0) {
        pre_crash_hdr = Some((a, fetch_core(r.vm()?, "/dev/mem", a, false)?));
    }
    let dmesg = r.vm()?.sh("dmesg", CMD_TIMEOUT)?;
    r.save("first-dmesg.txt", dmesg.as_bytes())?;
    // What the capture side is judged against: the CPUs present (the kdump capture FDT's /cpus
    // lists each). Read before a storm (its markers would mix into the output).
    let present = r
        .vm()?
        .sh("cat /sys/devices/system/cpu/present", CMD_TIMEOUT)?;
    let present_cpus = dump::count_cpu_list(&present)
        .ok_or_else(|| Error::Unexpected(format!("bad present CPU list {present:?}")))?;
    // (The contention phase loads by either syscall: the last image may be a kexec-tools one.)
    if m == Machine::Pseries && s.load == Load::File && !s.contend && !s.inject_init_failure {
        // kexec_file's crash FDT has room: every CPU add must switch FDT blocks (valid at every
        // instant), none fall back to the in-place update kexec-tools' FDTs need.
        let in_place: Vec<&str> = dmesg
            .lines()
            .filter(|l| l.contains("updating in place"))
            .collect();
        if !in_place.is_empty() {
            return Err(VerifyError::CaptureFdt(format!(
                "{} of {} CPU adds updated the crash FDT in place (not crash-consistently): {}",
                in_place.len(),
                s.hot_cpus,
                in_place.join(" | ")
            ))
            .into());
        }
        r.ok(format!(
            "each of the {} CPU adds switched crash FDT blocks (none updated it in place)",
            s.hot_cpus
        ));
    }
    if let Some(seed) = s.debugfs_fuzz {
        r.phase("debugfs bad input");
        let from = r.vm()?.console.cursor();
        let (rc, out) = r.vm()?.sh_rc(
            // 20000 inputs per file; 1000 on the debug kernel (KASAN makes each write ~100x dearer).
            &format!(
                "crashhp-debugfs-fuzz {seed} {} 2>&1",
                if s.debug_kernel { 1000 } else { 20000 }
            ),
            Duration::from_secs(300),
        )?;
        let to = r.vm()?.console.cursor();
        let reports = kernel_reports(&r.vm()?.console.slice(from, to));
        if rc != 0 || !reports.is_empty() {
            return Err(VerifyError::DebugfsInput(format!(
                "exit {rc}: {}{}",
                out.trim().replace('\n', " | "),
                if reports.is_empty() {
                    String::new()
                } else {
                    format!("; kernel reports: {}", reports.join(" | "))
                }
            ))
            .into());
        }
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            r.ok(format!("debugfs {}", line.trim()));
        }
    }
    if s.debug_kernel {
        r.phase("kmemleak scan");
        // kmemleak reports only objects older than 5 s (MSECS_MIN_AGE), and only from the second
        // scan that sees them: the first records their checksum (a changed object is not judged).
        let out = r.vm()?.sh(
            "sleep 5 && echo scan > /sys/kernel/debug/kmemleak && echo scan > /sys/kernel/debug/kmemleak \
             && cat /sys/kernel/debug/kmemleak",
            Duration::from_secs(300),
        )?;
        let leaks: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("unreferenced object"))
            .collect();
        if !leaks.is_empty() {
            return Err(VerifyError::KernelReports(format!(
                "kmemleak: {} unreferenced objects: {}",
                leaks.len(),
                out.lines().take(40).collect::<Vec<_>>().join(" / ")
            ))
            .into());
        }
        r.ok("kmemleak scan: no unreferenced object".into());
    }
    if !s.crash {
        return Ok(());
    }

    if s.storm {
        r.phase("hotplug storm");
        // Blocks of the first DIMM, except the one holding its pattern, go offline and online in
        // a loop together with cpu1, while the crash comes.
        let d = &dimms[0];
        let mut list: Vec<String> = d
            .blocks_without_pattern(block)
            .map(|b| b.to_string())
            .collect();
        let plan = s.storm_plan.unwrap_or(StormPlan {
            crash_after_ms: 2000,
            first_block: 0,
        });
        if !list.is_empty() {
            let n = plan.first_block % list.len();
            list.rotate_left(n);
        }
        // Each operation is announced in the kernel log before it starts ("going") and its
        // outcome after it ends (the state read back), so that the judge knows every block's
        // state at the crash, and which one, if any, was changing. The markers are printk'd at
        // KERN_INFO: below the console's level (init.sh: `dmesg -n 1`), they never mix with the
        // shell protocol's markers; the judge reads them from the crashed kernel's log in the dump.
        r.vm()?.sh(
            &format!(
                "( m() {{ echo \"<6>@@ST $1 $2\" > /dev/kmsg; }}; c=/sys/devices/system/cpu/cpu1/online; \
                 while :; do for i in {}; do f=/sys/devices/system/memory/memory$i/state; \
                 m $i going; echo offline > $f 2>/dev/null; m $i $(cat $f); \
                 m $i going; echo online_movable > $f 2>/dev/null; m $i $(cat $f); done; \
                 m cpu1 going; echo 0 > $c; m cpu1 $(cat $c); m cpu1 going; echo 1 > $c; m cpu1 $(cat $c); \
                 done ) >/dev/null 2>&1 </dev/null & sleep {}.{:03}",
                list.join(" "),
                plan.crash_after_ms / 1000,
                plan.crash_after_ms % 1000
            ),
            CMD_TIMEOUT,
        )?;
        r.ok(format!(
            "crash comes {} ms into a loop of memory blocks ({}, ...) and cpu1 going offline and \
             online",
            plan.crash_after_ms,
            list.first().map(String::as_str).unwrap_or("none")
        ));
    }

    if s.crash_in_edit {
        r.phase("crash in the middle of an edit");
        // A block of the first DIMM without the pattern goes offline (the first that can), then
        // online again with the edit pausing after its first store, the kexec lock held; the
        // crash comes then.
        let d = &dimms[0];
        let list: Vec<String> = d
            .blocks_without_pattern(block)
            .rev()
            .map(|b| b.to_string())
            .collect();
        let b = r.vm()?.sh(
            &format!(
                "for i in {}; do echo offline > /sys/devices/system/memory/memory$i/state 2>/dev/null \
                 && echo $i && exit 0; done; exit 1",
                list.join(" ")
            ),
            CMD_TIMEOUT,
        )?;
        let b = b.trim().to_string();
        r.paused_block = b.parse().ok();
        let (knob, paused) = s.implementation.pause_hook();
        let point = match s.implementation {
            Implementation::Rust => {
                let point = s.edit_point.clone().unwrap_or_else(|| "store".into());
                let delay = r.vm()?.sh(
                    &format!(
                        "echo {point} > /sys/kernel/debug/crash_hotplug/edit_delay_point && \
                         echo 20000 > {knob} && \
                         cat /sys/kernel/debug/crash_hotplug/edit_delay_point {knob}"
                    ),
                    CMD_TIMEOUT,
                )?;
                if delay.split_whitespace().collect::<Vec<_>>() != [point.as_str(), "20000"] {
                    return Err(Error::Unexpected(format!(
                        "edit_delay_point, edit_delay_ms read {delay:?} (want {point}, 20000)"
                    )));
                }
                point
            }
            Implementation::C => {
                let delay = r
                    .vm()?
                    .sh(&format!("echo 20000 > {knob} && cat {knob}"), CMD_TIMEOUT)?;
                if delay.trim() != "20000" {
                    return Err(Error::Unexpected(format!(
                        "{knob} reads {delay:?} (want 20000)"
                    )));
                }
                "the C handler's update (after it took the lock)".into()
            }
        };
        // The kernel's messages are not on the console here: wait for the pause in dmesg.
        r.vm()?.sh(
            &format!(
                "(echo online_movable > /sys/devices/system/memory/memory{b}/state) >/dev/null 2>&1 </dev/null & \
                 n=0; until dmesg | grep -q '{paused} 20000 ms'; do \
                 n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done"
            ),
            CMD_TIMEOUT,
        )?;
        r.ok(format!(
            "memory block {b} coming online: its update paused at '{point}', the kexec lock held"
        ));
        // The sysfs ABI while the kexec lock stays busy: each file reads 0 or 1 (nothing else, no
        // error) at once, never after a wait for the lock. (Not asked of the C handler: its
        // show() waits for the handler's mutex, held through the paused update, so the read
        // would return only after the update, and the crash would come too late.)
        if s.implementation == Implementation::Rust {
            let out = r.vm()?.sh(
                "a=$(cut -d' ' -f1 /proc/uptime); \
                 v=$(timeout 5 cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug 2>&1); \
                 rc=$?; b=$(cut -d' ' -f1 /proc/uptime); echo $rc $a $b $v",
                CMD_TIMEOUT,
            )?;
            r.save("crash_hotplug-during-edit.txt", out.as_bytes())?;
            check_sysfs_while_locked(&out)?;
            r.ok(format!(
                "crash_hotplug read during the paused edit (rc, uptime before, after, cpu, memory): {}",
                out.trim()
            ));
        }
    }

    if s.busy_lock {
        r.phase("event with the kexec lock busy");
        check_busy_lock(r, &dimms[0], block)?;
    }

    if s.probe_chain {
        let (events, samples) = crate::bench::probe(r.vm()?)?;
        if events == 0 || samples.is_empty() {
            return Err(Error::Unexpected(format!(
                "the probe timed {events} memory events before the crash: none to compare"
            )));
        }
        let median = crate::bench::median(samples);
        r.ok(format!(
            "memory notifier chain: median {median:.0} ns per event over {events} events"
        ));
        r.report.chain = Some((events, median));
    }

    if let Some(how) = &s.fadump_corrupt {
        r.phase("corrupt the crash info header");
        corrupt_fadump_header(r, how)?;
    }

    // The first kernel right before the crash, for the whole-dump RAM judge.
    // (The judge leaves device vmemmap PT_LOADs, p_flags PF_DEV_VMEMMAP, to the pmem checks
    // below, but for their place: inside persistent memory, overlapping nothing.)
    let first_kernel = crate::judge::capture(r.vm()?, m)?;
    r.save("first-kernel.txt", first_kernel.text().as_bytes())?;
    let pmem_live = s
        .pmem
        .filter(|p| p.present_at_crash())
        .and(namespace.clone());
    // The device's bytes of the device vmemmap, the last thing before the crash.
    let pmem_reference = match &pmem_live {
        Some(ns) => {
            let (base, bytes) = pmem::reference(r.vm()?, &s.workdir.join(NVDIMM_FILE), ns)?;
            let seen = s
                .pmem
                .map(|p| pmem::judge_reference(p.mode, &bytes))
                .transpose()
                .map_err(|e| Error::Unexpected(format!("pmem reference: {e}")))?
                .unwrap_or_default();
            r.ok(format!(
                "reference: {} KiB of {NVDIMM_FILE} at {:#x} ({} - NVDIMM base {base:#x}): {seen}",
                bytes.len() / 1024,
                ns.start - base,
                pmem::NAMESPACE
            ));
            Some(bytes)
        }
        None => None,
    };

    if s.tlb_storm {
        let tasks = r.vm()?.sh(
            "(crashhp-tlb-storm 4 >/dev/null 2>&1 </dev/null &) ; sleep 1; \
             ls /proc/$(pidof crashhp-tlb-storm)/task | wc -l",
            CMD_TIMEOUT,
        )?;
        // The process and its 4 threads.
        if tasks.trim().parse::<u32>().unwrap_or(0) < 5 {
            return Err(Error::Unexpected(format!(
                "crashhp-tlb-storm is not running with its 4 threads ({} tasks)",
                tasks.trim()
            )));
        }
        r.ok(format!(
            "crashhp-tlb-storm: {} tasks mapping and unmapping memory on every CPU",
            tasks.trim()
        ));
    }

    r.phase("crash + capture boot");
    let from = r.vm()?.console.cursor();
    // Where the crash must run: pinned, so that the scenario crashes where it claims to (an
    // unpinned shell lands on any online CPU, on pseries now and then the hot-added one a stale
    // FDT lacks, and the capture kernel then panics before its console).
    let pin = if s.crash_on_boot_cpu {
        Some("0".to_string())
    } else if m.crash_on_last_cpu() {
        Some(
            r.vm()?
                .sh(
                    "tr ',-' '\\n\\n' < /sys/devices/system/cpu/online | tail -n 1",
                    Duration::from_secs(10),
                )?
                .trim()
                .to_string(),
        )
    } else {
        None
    };
    let crash = match &pin {
        Some(cpu) => format!("taskset -c {cpu} sh -c 'echo c > /proc/sysrq-trigger'\n"),
        None => "echo c > /proc/sysrq-trigger\n".to_string(),
    };
    r.crashed = true;
    r.vm()?.console.send(&crash)?;
    if let Some(cpu) = &pin {
        // The panic prints the CPU it runs on (console_verbose lifts the console's level).
        let (ran, _) = r.vm()?.console.wait_for(
            "the panic's CPU line",
            from,
            Duration::from_secs(60),
            crashing_cpu,
        )?;
        if ran != *cpu {
            return Err(VerifyError::CrashCpu(format!(
                "pinned to CPU {cpu}, but the panic ran on CPU {ran}"
            ))
            .into());
        }
        r.ok(format!("the crash ran on CPU {ran}, where it was pinned"));
    }
    // A fadump capture boot whose dump is refused comes up as a first boot (no /proc/vmcore).
    let waited =
        r.vm()?
            .console
            .wait_for("the capture boot's /init", from, m.boot_timeout(), |t| {
                ["capture", "first"].into_iter().find_map(|role| {
                    t.find(&format!("@@READY {role}"))
                        .map(|i| (role, i + 8 + role.len()))
                })
            });
    let (role, _) = match waited {
        // The machine reset (panic=-1, and QEMU runs with -no-reboot): did a kernel start after
        // the panic? Every boot prints its "Linux version" banner on the console.
        Err(Error::Unexpected(m)) if m.starts_with("QEMU exited") => {
            let console = &r.vm()?.console;
            let after = console.slice(from, console.cursor());
            return Err(if after.contains("] Linux version ") {
                VerifyError::NoCapture(format!(
                    "the capture kernel started but the machine reset before its /init ({m})"
                ))
            } else {
                VerifyError::NoCaptureKernel(
                    "the machine reset after the panic without starting a capture kernel \
                     (no boot banner after the panic; QEMU exited: panic=-1, -no-reboot)"
                        .into(),
                )
            }
            .into());
        }
        other => other?,
    };
    if let Some(how) = &s.fadump_corrupt {
        return judge_fadump_refusal(r, how, role);
    }
    if role != "capture" {
        return Err(VerifyError::NoCapture(format!(
            "after the crash the machine booted without /proc/vmcore ({} capture)",
            if m.kdump() { "kdump" } else { "fadump" }
        ))
        .into());
    }

    r.phase("fetch dump headers");
    let vmcore_bytes = fetch_core(r.vm()?, "/proc/vmcore", 0, true)?;
    r.save("vmcore-head.bin", &vmcore_bytes)?;

    if s.storm {
        // What each block and cpu1 were at the crash: the storm's markers in the crashed
        // kernel's log, in printk order with the crash's own line.
        r.phase("storm states from the crashed kernel's log");
        let log = crashed_log(r)?;
        let st = storm_states_at_crash(&log)?;
        r.ok(format!(
            "storm at the crash: {} blocks online, {} offline, changing {:?}; cpu1 {}",
            st.online.len(),
            st.offline.len(),
            st.in_flight,
            match st.cpu1 {
                Some(true) => "online",
                Some(false) => "offline",
                None => "changing",
            }
        ));
        r.storm_states = Some(st);
    }

    r.phase("verify");
    let vmcore = parse_core(&vmcore_bytes)?;
    // The whole-dump RAM judge: printed now, its failure returned after the DIMM checks.
    let st = match (r.storm_states.clone(), r.paused_block) {
        (Some(st), _) => st,
        (None, p) => BlockStates {
            in_flight: p.into_iter().collect(),
            ..BlockStates::default()
        },
    };
    // (The contention phase loads by either syscall, the last one unknown.)
    let judged = crate::judge::rules(m, s.load, s.contend).map(|rules| {
        let flux = (&st.offline[..], &st.online[..], &st.in_flight[..]);
        crate::judge::verdict(&first_kernel, rules, flux, &vmcore)
    });
    if let Some(Err(e)) = &judged {
        println!("    judge: {e}");
    }
    for d in dimms.iter().take(keep) {
        let end = d.addr + d.size - 1;
        let offline: Vec<(u64, u64)> = r
            .offline_blocks
            .iter()
            .copied()
            .filter(|&(a, _)| a >= d.addr && a <= end)
            .collect();
        if !offline.is_empty() {
            // Every block of the DIMM: present if online, absent if offline.
            for k in 0..d.size / block {
                let (a, e) = (d.addr + k * block, d.addr + (k + 1) * block - 1);
                let off = offline.contains(&(a, e));
                if off && vmcore.intersects(a, e) {
                    return Err(VerifyError::RemovedMemoryPresent { start: a, end: e }.into());
                }
                if !off && !vmcore.covers(a, e) {
                    return Err(VerifyError::DimmMissing {
                        dimm: format!("{} (online block {a:#x})", d.id),
                        start: a,
                        end: e,
                    }
                    .into());
                }
            }
            r.ok(format!(
                "DIMM {}: its {} online blocks are in the dump, its {} offline blocks are not",
                d.id,
                d.size / block - offline.len() as u64,
                offline.len()
            ));
        } else if std::ptr::eq(d, &dimms[0]) && (s.storm || s.crash_in_edit) {
            // The states `st` above: the storm's, or the paused block's.
            if r.storm_states.is_none() && r.paused_block.is_none() {
                return Err(Error::Unexpected(
                    "no storm or paused block recorded".into(),
                ));
            }
            r.ok(judge_blocks(&vmcore, d, block, &st)?);
        } else if vmcore.covers(d.addr, end) {
            r.ok(format!(
                "PT_LOADs cover DIMM {} {:#x}-{end:#x}: {} KiB of {} KiB",
                d.id,
                d.addr,
                d.size / 1024,
                d.size / 1024
            ));
        } else if !(s.storm || s.crash_in_edit) {
            // (In a storm, blocks of the DIMM may be offline at the crash; the block holding the
            // pattern is not, and the pattern check below covers it.)
            let gaps = vmcore.gaps(d.addr, end);
            let missing: u64 = gaps.iter().map(|(a, b)| b - a + 1).sum();
            if missing == d.size {
                return Err(VerifyError::DimmMissing {
                    dimm: d.id.clone(),
                    start: d.addr,
                    end,
                }
                .into());
            }
            return Err(VerifyError::DimmPartlyCovered {
                dimm: d.id.clone(),
                start: d.addr,
                end,
                covered_kib: (d.size - missing) / 1024,
                size_kib: d.size / 1024,
                gaps: gaps
                    .iter()
                    .map(|(a, b)| format!("{a:#x}-{b:#x}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
        let Some((paddr, pattern)) = d.pattern.clone() else {
            continue;
        };
        let off = vmcore
            .file_offset(paddr)
            .ok_or_else(|| VerifyError::DimmMissing {
                dimm: d.id.clone(),
                start: paddr,
                end: paddr + 63,
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
            "pattern of {} found at {paddr:#x} (vmcore offset {off:#x})",
            d.id
        ));
    }
    if let Some((start, end)) = removed {
        if vmcore.intersects(start, end) {
            return Err(VerifyError::RemovedMemoryPresent { start, end }.into());
        }
        r.ok(format!(
            "removed memory {start:#x}-{end:#x} is absent from the dump"
        ));
    }
    // The pmem checks that fail are collected, not returned at once: the drgn step below reads
    // the same device vmemmap, and a dump without it must fail both (the negative control).
    let mut pmem_failed = Vec::new();
    if let (Some(p), Some(ns)) = (s.pmem, &namespace) {
        let ns = ns.clone();
        let listing = r.vm()?.sh(pmem::CAPTURE_DRIVERS, CMD_TIMEOUT)?;
        r.ok(pmem::judge_capture_drivers(&listing)?);
        let bytes = (|| -> Result<String> {
            let covered = pmem::judge_coverage(&vmcore, &ns, p.present_at_crash())?;
            let Some(reference) = &pmem_reference else {
                return Ok(covered);
            };
            r.ok(covered);
            let dumped = pmem::fetch_dumped(r.vm()?, &vmcore, &ns)?;
            Ok(pmem::judge_bytes(&ns, reference, &dumped)?)
        })();
        match bytes {
            Ok(m) => r.ok(m),
            Err(Error::Verify(e)) => {
                println!("    FAILED: {e}");
                pmem_failed.push(e);
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(j) = judged {
        r.ok(j?);
    }
    let notes = vmcore.parse_notes(&vmcore_bytes)?;
    // In a storm, cpu1 may be offline at the crash: its note then is absent. The markers say
    // which (if it was changing, either count is right).
    let cpu1 = match &r.storm_states {
        Some(st) => st.cpu1,
        None => Some(true),
    };
    match cpu1 {
        Some(true) => r.ok(dump::check_vmcore_notes(&notes, online_cpus)?),
        Some(false) => r.ok(dump::check_vmcore_notes(&notes, online_cpus - 1)?),
        None => match dump::check_vmcore_notes(&notes, online_cpus) {
            Err(_) => r.ok(dump::check_vmcore_notes(&notes, online_cpus - 1)?),
            res => r.ok(res?),
        },
    }
    if m.kdump() {
        check_raw_header(r, possible_cpus, pre_crash_hdr.take())?;
    } else {
        check_fadump_capture(r, &notes, online_cpus)?;
    }
    if m == Machine::Pseries {
        // The capture kernel booted on the crashing (hot-added) CPU; its FDT, the crash FDT as
        // the first kernel left it, must list every present CPU.
        let nodes = r.vm()?.sh(
            "ls /proc/device-tree/cpus | grep '^PowerPC,' | tr '\\n' ' '",
            CMD_TIMEOUT,
        )?;
        let n = nodes.split_whitespace().count();
        if n != present_cpus {
            return Err(VerifyError::CaptureFdt(format!(
                "{n} CPU nodes ({}), {present_cpus} CPUs present at the crash ({})",
                nodes.trim(),
                present.trim()
            ))
            .into());
        }
        r.ok(format!(
            "capture kernel's FDT /cpus: {n} nodes for {present_cpus} present CPUs ({})",
            nodes.trim()
        ));
    }

    r.phase("makedumpfile");
    let size = crashed_log(r)?.len();
    r.ok(format!(
        "makedumpfile --dump-dmesg extracted {size} bytes including the panic message"
    ));
    if s.filtered_dump {
        r.phase("makedumpfile -l -d 31");
        let size = filtered_dump(r, s.pmem.is_some())?;
        if let Some(d) = &s.drgn {
            r.phase("drgn");
            let pmem = s.pmem.zip(pmem_live.clone());
            drgn_step(r, d, &dimms, size, pmem, &mut pmem_failed)?;
        }
    } else if s.drgn.is_some() {
        return Err(Error::Unexpected(
            "the drgn step reads the filtered dump: the scenario must make it".into(),
        ));
    }
    if !pmem_failed.is_empty() {
        return Err(VerifyError::Pmem(pmem_failed).into());
    }
    if let Some(stats) = r.contention_stats.take() {
        r.phase("contention figures");
        judge_contention(r, &stats)?;
    }
    Ok(())
}

/// The elfcorehdr the crashed kernel left (kdump), as the capture kernel reads it at its
/// `elfcorehdr=` address, or as the first kernel read it right before the crash: one PT_NOTE
/// per possible CPU plus VMCOREINFO (in `/proc/vmcore` the notes are merged and empty ones
/// dropped).
fn check_raw_header(
    r: &mut Run<'_>,
    possible_cpus: usize,
    pre_crash_hdr: Option<(u64, Vec<u8>)>,
) -> Result<()> {
    // The header the crashed kernel left, as the capture kernel read it (notes per possible CPU
    // are merged, and empty ones dropped, in /proc/vmcore).
    let cmdline = r.vm()?.sh("cat /proc/cmdline", CMD_TIMEOUT)?;
    let hdr_addr = dump::elfcorehdr_addr(&cmdline)
        .ok_or_else(|| Error::Unexpected(format!("no elfcorehdr= in {cmdline:?}")))?;
    let (ehdr_bytes, when) = match fetch_core(r.vm()?, "/dev/mem", hdr_addr, false) {
        Ok(b) => (b, "read by the capture kernel"),
        Err(e) => match pre_crash_hdr {
            Some((a, b)) if a == hdr_addr => (b, "read in the first kernel right before the crash"),
            _ => return Err(e),
        },
    };
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
        "elfcorehdr at {hdr_addr:#x} ({when}): {found} PT_NOTE = {possible_cpus} possible CPUs + VMCOREINFO"
    ));
    Ok(())
}

/// The fadump capture kernel's side (the same kernel, booted again by the firmware): with the
/// Rust implementation built in (the vmlinux has its fadump entry point), the elfcorehdr and CPU
/// notes are its own, and its report lines are required; every CPU note's registers are kernel
/// context, and the crashing CPU's (the last: the crash runs on the highest online CPU and the
/// notes are in CPU order) stopped in `crash_fadump` (the registers the crashed kernel saved, not
/// the firmware's view of it in os-term).
fn check_fadump_capture(r: &mut Run<'_>, notes: &[dump::NoteInfo], online: usize) -> Result<()> {
    let image = fs::read(&r.s.kernel).ctx(|| format!("reading {}", r.s.kernel.display()))?;
    let syms = dump::Symbols::read(&image)?;
    if syms.has("crash_hotplug_fadump_elfcorehdr") {
        let log = r
            .vm()?
            .sh("dmesg | grep 'crash_hotplug: fadump:' || true", CMD_TIMEOUT)?;
        r.save("capture-fadump-dmesg.txt", log.as_bytes())?;
        let hdr = format!("CPU {} crashed, {online} CPUs online", online - 1);
        let cpu_notes = format!("{online} CPU notes");
        let has = |a: &str, b: &str| log.lines().any(|l| l.contains(a) && l.contains(b));
        if !has("crash info header", &hdr) {
            return Err(VerifyError::Fadump(format!(
                "the Rust path did not report the crash info header with \"{hdr}\": {:?}",
                log.trim()
            ))
            .into());
        }
        if !has(&cpu_notes, "the crashing CPU's from the crash info header") {
            return Err(VerifyError::Fadump(format!(
                "the Rust path did not write {cpu_notes} with the crashing CPU's from the header: {:?}",
                log.trim()
            ))
            .into());
        }
        r.ok(format!(
            "fadump capture kernel (Rust): crash info header read ({hdr}), {cpu_notes} written"
        ));
    }
    let regs = dump::check_ppc64_registers(notes, &syms, online - 1, "crash_fadump")?;
    r.ok(format!(
        "registers: {}; the crashing CPU's note holds the registers saved in crash_fadump",
        regs.join("; ")
    ));
    Ok(())
}

/// fadump negative control, first kernel: overwrites the crash info header it registered (it
/// follows the boot memory's copy: Dest + Size of the DUMP region in debugfs `fadump_region`).
fn corrupt_fadump_header(r: &mut Run<'_>, how: &str) -> Result<()> {
    let write = match how {
        "endian" => "printf 'FADMPSIG' | dd of=/dev/mem bs=1 seek=$h conv=notrunc 2>/dev/null",
        "cpumask" => {
            "printf '\\000\\004\\000\\000' | dd of=/dev/mem bs=1 seek=$((h + 36)) conv=notrunc 2>/dev/null"
        }
        _ => {
            return Err(Error::Unexpected(format!(
                "fadump corruption {how:?}: endian or cpumask"
            )))
        }
    };
    let out = r.vm()?.sh(
        &format!(
            "set -- $(sed -n 's/.*DUMP: Src: *0x[0-9a-f]*, Dest: *\\(0x[0-9a-f]*\\), Size: *\\(0x[0-9a-f]*\\).*/\\1 \\2/p' \
             /sys/kernel/debug/powerpc/fadump_region | head -n 1); [ -n \"$2\" ] || exit 1; h=$(( $1 + $2 )); \
             {write} && echo $h && dd if=/dev/mem bs=1 skip=$h count=40 2>/dev/null | od -A n -t x1 | tr -d '\\n'"
        ),
        CMD_TIMEOUT,
    )?;
    r.ok(format!(
        "crash info header corrupted ({how}): at, bytes: {}",
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    ));
    Ok(())
}

/// fadump negative control, after the crash: the capture boot must have refused the dump with
/// the reason the corruption gives, exported no `/proc/vmcore`, and booted on.
fn judge_fadump_refusal(r: &mut Run<'_>, how: &str, role: &str) -> Result<()> {
    let why = match how {
        "endian" => "crash info header magic is byte-swapped: endianness mismatch",
        _ => "cpumask is 1024 bytes in the crashed kernel",
    };
    if role == "capture" {
        return Err(VerifyError::Fadump(format!(
            "a /proc/vmcore was exported from a crash info header corrupted ({how})"
        ))
        .into());
    }
    let log = r.vm()?.sh(
        "dmesg | grep 'crash_hotplug: fadump: .*the dump is not processed' || true",
        CMD_TIMEOUT,
    )?;
    r.save("capture-fadump-dmesg.txt", log.as_bytes())?;
    if !log.contains(why) {
        return Err(VerifyError::Fadump(format!(
            "the capture boot did not refuse the dump with {why:?}: {:?}",
            log.trim()
        ))
        .into());
    }
    r.ok(format!(
        "header {how} refused by the capture kernel (no /proc/vmcore, boot continued): {}",
        log.lines().last().unwrap_or("").trim()
    ));
    Ok(())
}

/// In the capture kernel, `makedumpfile -l -d 31 /proc/vmcore` (what kdump-tools and kexec-tools'
/// kdump collectors run): it reads the struct page of every page to filter, so it fails if the
/// dump lacks any of them. It must exit 0 and write a kdump-compressed file (its signature read
/// back on the host). With `report`, makedumpfile also prints its page totals (message level
/// 16 + errors + common messages), which the report line carries.
fn filtered_dump(r: &mut Run<'_>, report: bool) -> Result<u64> {
    let level = if report { " --message-level 22" } else { "" };
    let (rc, out) = r.vm()?.sh_rc(
        &format!(
            "makedumpfile -l -d 31{level} /proc/vmcore /tmp/vmcore.kdump >/tmp/mdf31.log 2>&1; rc=$?; \
             tail -n {} /tmp/mdf31.log; s=0; [ -f /tmp/vmcore.kdump ] && s=$(wc -c < /tmp/vmcore.kdump); echo \"size $s\"; \
             exit $rc",
            if report { 24 } else { 8 }
        ),
        Duration::from_secs(300),
    )?;
    r.save("makedumpfile-d31.log", out.as_bytes())?;
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let size = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("size "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    if rc != 0 {
        let said: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.is_empty() && !l.starts_with("size "))
            .collect();
        return Err(VerifyError::Makedumpfile(format!(
            "exited {rc} ({size} bytes written): {}",
            said.join(" | ")
        ))
        .into());
    }
    if size == 0 {
        return Err(VerifyError::Makedumpfile("exited 0 but wrote nothing".into()).into());
    }
    let head = r.vm()?.fetch("/tmp/vmcore.kdump", 0, 4096.min(size))?;
    if !head.starts_with(b"KDUMP   ") {
        return Err(VerifyError::Makedumpfile(format!(
            "exited 0 but wrote {size} bytes beginning {:?}, not a kdump-compressed file",
            String::from_utf8_lossy(&head[..head.len().min(8)])
        ))
        .into());
    }
    r.ok(format!(
        "makedumpfile -l -d 31 /proc/vmcore: exit 0, kdump-compressed file of {size} bytes"
    ));
    if report {
        let totals = makedumpfile_totals(&out);
        if totals.is_empty() {
            return Err(VerifyError::Makedumpfile(format!(
                "no page totals in its report: {out:?}"
            ))
            .into());
        }
        r.ok(format!("makedumpfile page totals: {}", totals.join(", ")));
    }
    Ok(size)
}

/// The filtered dump read on the host with drgn (see `drgn.rs`): the crashed task's stack, the
/// struct pages of the first DIMM (if online), those of the pmem namespace's data (if live at the
/// crash; their failures are collected in `pmem_failed`).
fn drgn_step(
    r: &mut Run<'_>,
    d: &Drgn,
    dimms: &[Dimm],
    size: u64,
    pmem: Option<(Pmem, pmem::Namespace)>,
    pmem_failed: &mut Vec<VerifyError>,
) -> Result<()> {
    let bytes = r.vm()?.fetch("/tmp/vmcore.kdump", 0, size)?;
    let dump = r.s.workdir.join("vmcore.kdump");
    r.save("vmcore.kdump", &bytes)?;
    drop(bytes);
    let ram: Vec<u64> = dimms
        .first()
        .filter(|_| !r.s.storm && !r.s.crash_in_edit && r.offline_blocks.is_empty())
        .map(|dm| drgn::sample(dm.addr >> 12, ((dm.addr + dm.size) >> 12) - 1, 8))
        .unwrap_or_default();
    let dev: Vec<u64> = pmem
        .as_ref()
        .map(|(_, ns)| drgn::pmem_pfns(ns))
        .unwrap_or_default();
    let pfns: Vec<u64> = ram.iter().chain(&dev).copied().collect();
    let vmlinux = drgn::vmlinux_of(&r.s.kernel);
    let facts = d.read(&vmlinux, &dump, &pfns)?;
    r.ok(drgn::judge_stack(&facts)?);
    if let Some(dm) = dimms.first().filter(|_| !ram.is_empty()) {
        r.ok(drgn::judge_ram_pages(
            &facts,
            &format!("DIMM {}", dm.id),
            &ram,
        )?);
    }
    if let Some((p, ns)) = &pmem {
        match drgn::judge_pmem_pages(&facts, ns, p.mode) {
            Ok(m) => r.ok(m),
            Err(e) => {
                println!("    FAILED: {e}");
                pmem_failed.push(e);
            }
        }
    }
    Ok(())
}

/// The page totals of makedumpfile's report (`Original pages : 0x...`), as `name = decimal`.
fn makedumpfile_totals(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            let k = k.trim();
            let keep = [
                "Original pages",
                "Excluded pages",
                "Remaining pages",
                "Memory Hole",
                "Total pages",
            ]
            .contains(&k);
            let v = u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok()?;
            keep.then(|| format!("{k} = {v}"))
        })
        .collect()
}

/// MemTotal of `/proc/meminfo`, in KiB.
fn mem_total_kib(vm: &mut Vm) -> Result<u64> {
    let t = vm.sh("grep MemTotal: /proc/meminfo", CMD_TIMEOUT)?;
    t.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::Unexpected(format!("bad MemTotal line {t:?}")))
}

/// Events against a busy kexec lock: for 30 s, crash loads run back to back (kexec_file_load and
/// kexec_load --hotplug alternately, an unload now and then), holding the kexec lock most of the
/// time, while the DIMM's blocks and cpu1 go offline and online for 20 s. Then the DIMM's odd blocks
/// go offline while the lock is surely busy (debugfs `hold_lock_ms` holds it 3 s, as a slow load or
/// a kexec jump would), so their events must be deferred, and the loads go on: they read the system
/// (an offline block is still System RAM in /proc/iomem and in kexec_file's header) and must be
/// brought up to date by the kernel. Then, within 2 s, both `crash_hotplug` files must read 1; the
/// dump is judged later (odd blocks absent, even ones present), then the handler's figures
/// (events deferred, none failed, none lost, the waits for the lock).
fn check_contention(r: &mut Run<'_>, d: &Dimm, block: u64) -> Result<()> {
    let (b0, b1) = d.blocks;
    let file = kexec_cmd(r.s, Load::File.flags());
    let legacy = kexec_cmd(r.s, Load::LegacyHotplug.flags());
    let odd: Vec<String> = (b0..=b1)
        .filter(|b| (b - b0) % 2 == 1)
        .map(|b| b.to_string())
        .collect();
    let out = r.vm()?.sh(
        &format!(
            "t0=$(cut -d. -f1 /proc/uptime); \
             ( k=0; while [ $(cut -d. -f1 /proc/uptime) -lt $((t0+30)) ]; do \
               if [ $((k % 5)) = 4 ]; then kexec -p -u || echo LOAD-FAILED unload; fi; \
               if [ $((k % 2)) = 0 ]; then {file} || echo LOAD-FAILED file; \
               else {legacy} || echo LOAD-FAILED legacy; fi; k=$((k+1)); done; \
               echo $k > /tmp/loads-done ) >/tmp/loads.log 2>&1 </dev/null & \
             while [ $(cut -d. -f1 /proc/uptime) -lt $((t0+20)) ]; do \
               for i in $(seq {b0} {b1}); do f=/sys/devices/system/memory/memory$i/state; \
                 echo offline > $f 2>/dev/null; echo online_movable > $f 2>/dev/null; done; \
               echo 0 > /sys/devices/system/cpu/cpu1/online; echo 1 > /sys/devices/system/cpu/cpu1/online; \
             done; \
             h=/sys/kernel/debug/crash_hotplug/hold_lock_ms; \
             ( until echo 3000 > $h 2>/dev/null; do sleep 0.02; done ) & \
             n=0; until dmesg | grep -q 'holding the kexec lock for 3000'; do \
               n=$((n+1)); [ $n -gt 500 ] && echo NO-HOLD && exit 1; sleep 0.02; done; \
             for i in {odd}; do echo offline > /sys/devices/system/memory/memory$i/state || exit 1; done; \
             wait $!; \
             until [ -e /tmp/loads-done ]; do sleep 0.2; done; \
             n=0; until [ \"$(cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug)\" = \"$(printf '1\\n1')\" ]; do \
               n=$((n+1)); [ $n -gt 20 ] && echo NOT-SETTLED && break; sleep 0.1; done; \
             echo loads $(cat /tmp/loads-done) settled_after_ms $((n*100)); \
             cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug /sys/kernel/kexec_crash_loaded",
            odd = odd.join(" ")
        ),
        Duration::from_secs(120),
    )?;
    r.save("contention.txt", out.as_bytes())?;
    let log = r.vm()?.sh("cat /tmp/loads.log", CMD_TIMEOUT)?;
    r.save("contention-loads.log", log.as_bytes())?;
    // Every load must have worked (kexec_load --hotplug needs kexec-tools >= 2.0.28), but for
    // EBUSY: the load syscalls only try the kexec lock, which the handler holds for an update now
    // and then (upstream's handler too), and `hold_lock_ms` for 3 s; those are contention, not a
    // defect. At least 10 loads must have succeeded.
    let failed = log.lines().filter(|l| l.contains("LOAD-FAILED")).count();
    let busy = log
        .lines()
        .filter(|l| l.contains("Device or resource busy"))
        .count();
    let iterations: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("loads "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if failed > busy || iterations < failed + 10 {
        return Err(Error::Unexpected(format!(
            "{failed} crash loads failed during the contention phase ({busy} with EBUSY), of \
             {iterations} (at least 10 must succeed); kexec said: {:?}",
            log.lines()
                .find(|l| !l.contains("LOAD-FAILED") && !l.contains("Device or resource busy"))
                .unwrap_or("")
        )));
    }
    let stats = r
        .vm()?
        .sh("cat /sys/kernel/debug/crash_hotplug/stats", CMD_TIMEOUT)?;
    r.save("contention-stats.txt", stats.as_bytes())?;
    if out.contains("NOT-SETTLED") {
        return Err(VerifyError::Events(format!(
            "2 s after the loads ended, crash_hotplug (cpu, memory, kexec_crash_loaded) does not read 1: {}",
            out.trim()
        ))
        .into());
    }
    for b in (b0..=b1).filter(|b| (b - b0) % 2 == 1) {
        let a = b * block;
        r.offline_blocks.push((a, a + block - 1));
    }
    let summary = out
        .lines()
        .find(|l| l.starts_with("loads"))
        .unwrap_or("")
        .trim()
        .to_string();
    r.ok(format!(
        "30 s of crash loads against hotplug ({summary}, {failed} refused with EBUSY while the \
         handler or hold_lock_ms held the lock); crash_hotplug reads 1 at once; \
         odd blocks of {b0}..={b1} left offline (the handler's figures are judged after the dump)"
    ));
    r.contention_stats = Some(stats);
    Ok(())
}

/// A block of `d` (not the pattern's) goes offline while the kexec lock is held 3 s (the
/// implementation's `hold_lock_ms`, as a slow load or a kexec jump would). `crash_hotplug` is read
/// right after the offline and again once the lock is free (after up to 2 s for both to read 1);
/// both readings go to [`Report::busy`], and the block to the blocks the dump must not list.
fn check_busy_lock(r: &mut Run<'_>, d: &Dimm, block: u64) -> Result<()> {
    let b = d
        .blocks_without_pattern(block)
        .next_back()
        .ok_or_else(|| Error::Unexpected("no memory block to take offline".into()))?;
    let hold = r.s.implementation.hold_hook();
    let out = r.vm()?.sh(
        &format!(
            "( echo 3000 > {hold} ) >/tmp/hold.log 2>&1 & \
             n=0; until dmesg | grep -q 'holding the kexec lock'; do \
               n=$((n+1)); [ $n -gt 100 ] && echo NO-HOLD && exit 1; sleep 0.02; done; \
             echo offline > /sys/devices/system/memory/memory{b}/state || exit 1; \
             echo during $(cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug); \
             wait $!; cat /tmp/hold.log; \
             n=0; until [ \"$(cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug)\" = \"$(printf '1\\n1')\" ]; do \
               n=$((n+1)); [ $n -gt 20 ] && break; sleep 0.1; done; \
             echo after $(cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug)"
        ),
        Duration::from_secs(30),
    )?;
    r.save("busy-lock.txt", out.as_bytes())?;
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| Error::Unexpected(format!("busy lock phase: no '{k}' line in {out:?}")))
    };
    let (during, after) = (get("during ")?, get("after ")?);
    let a = b * block;
    r.offline_blocks.push((a, a + block - 1));
    r.ok(format!(
        "block {b} went offline with the kexec lock held 3 s: crash_hotplug (cpu memory) read \
         '{during}' then, once the lock was free, '{after}'"
    ));
    r.report.busy = Some((during, after));
    Ok(())
}

/// The handler's figures from the contention phase: events met the busy kexec lock and were
/// deferred (else the phase tested nothing), none failed or was lost, nothing is pending, and no
/// event waited for the lock longer than its budget allows: at most 50 ms (the budget is 1 ms;
/// under TCG a vCPU can be descheduled by the host for tens of ms) and at least half within 2 ms
/// (the budget, plus the host's share of the emulated CPU on a loaded 2-core machine).
fn judge_contention(r: &mut Run<'_>, stats: &str) -> Result<()> {
    let get = |k: &str| dump::stat(stats, k).unwrap_or(u64::MAX);
    let (deferred, failed, lossy, pending) =
        (get("deferred"), get("failed"), get("lossy"), get("pending"));
    let (wait, loads) = (get("max_lock_wait_ns"), get("loads"));
    let buckets = [
        get("lock_wait_le_1ms"),
        get("lock_wait_le_2ms"),
        get("lock_wait_le_5ms"),
        get("lock_wait_gt_5ms"),
    ];
    if deferred == 0 || deferred == u64::MAX {
        return Err(VerifyError::Events(format!(
            "no event met the busy kexec lock (deferred {deferred}): the test did not test contention"
        ))
        .into());
    }
    if failed != 0 || lossy != 0 || pending != 0 {
        return Err(VerifyError::Events(format!(
            "after the loads: failed {failed}, lossy {lossy}, pending {pending} (want 0, 0, 0)"
        ))
        .into());
    }
    let total: u64 = buckets.iter().sum();
    let within_2ms = buckets[0] + buckets[1];
    if wait > 50_000_000 || buckets.contains(&u64::MAX) || within_2ms * 2 < total {
        return Err(VerifyError::Events(format!(
            "waits for the kexec lock: longest {wait} ns (at most 50 ms), <=1 ms {}, <=2 ms {}, \
             <=5 ms {}, >5 ms {} (at least half within 2 ms wanted)",
            buckets[0], buckets[1], buckets[2], buckets[3]
        ))
        .into());
    }
    r.ok(format!(
        "contention: {loads} crash loads seen by the kernel, {deferred} events deferred, failed 0, \
         lost 0; waits for the kexec lock: longest {:.2} ms, <=1 ms {}, <=2 ms {}, <=5 ms {}, >5 ms {}",
        wait as f64 / 1e6,
        buckets[0],
        buckets[1],
        buckets[2],
        buckets[3]
    ));
    Ok(())
}

/// What the storm's markers (in the crashed kernel's log) say of each memory block and of cpu1 at the crash.
#[derive(Clone, Default, Debug)]
struct BlockStates {
    /// Blocks whose last operation ended with the block offline.
    offline: Vec<u64>,
    /// Blocks whose last operation ended with the block online.
    online: Vec<u64>,
    /// Blocks whose operation had begun and not ended.
    in_flight: Vec<u64>,
    /// cpu1: `Some(true)` online, `Some(false)` offline, `None` changing at the crash.
    cpu1: Option<bool>,
}

/// The kernel's line when the crash begins (sysrq), before it takes the kexec lock.
const CRASH_LINE: &str = "sysrq: Trigger a crash";

/// The crashed kernel's log until the crash began. The storm's markers are printk'd (written to
/// /dev/kmsg), hence in the log's order with the crash's own messages: an operation whose outcome
/// marker comes after the crash line ended after the crash began (its event may have found the
/// kexec lock held by the crash and been deferred), so it counts as changing at the crash.
/// (Markers written to /dev/console went through the tty and could reach the serial line before
/// printk text logged earlier; markers on the console at all mixed into the shell protocol's.)
fn storm_log(log: &str) -> Result<&str> {
    let end = log.find(CRASH_LINE).ok_or_else(|| {
        VerifyError::Dmesg(format!(
            "the crashed kernel's log lacks {CRASH_LINE:?}: the storm's end is unknown"
        ))
    })?;
    let log = &log[..end];
    if !log.contains("@@ST ") {
        return Err(VerifyError::Dmesg(
            "the crashed kernel's log has no storm marker before the crash".into(),
        )
        .into());
    }
    Ok(log)
}

/// What the storm's blocks and cpu1 were at the crash: their states before the crash line, and
/// any block (or cpu1) with a marker after it changing: the panic stops the other CPUs only after
/// its first line, so a change that began after that line may still have been done (an online
/// that started after "sysrq: Trigger a crash" was applied before the CPUs stopped: campaign seed
/// 0xbcc766f3b157cd49).
fn storm_states_at_crash(log: &str) -> Result<BlockStates> {
    let before = storm_log(log)?;
    let mut st = storm_states(before);
    for l in log[before.len()..].lines() {
        let Some(who) = l
            .find("@@ST ")
            .and_then(|i| l[i + 5..].split_whitespace().next())
        else {
            continue;
        };
        if who == "cpu1" {
            st.cpu1 = None;
        } else if let Ok(b) = who.parse::<u64>() {
            st.online.retain(|x| *x != b);
            st.offline.retain(|x| *x != b);
            if !st.in_flight.contains(&b) {
                st.in_flight.push(b);
            }
        }
    }
    Ok(st)
}

/// The crashed kernel's log: `makedumpfile --dump-dmesg` in the capture kernel, once per run
/// (saved as `vmcore-dmesg.txt`). It must hold the panic message.
fn crashed_log(r: &mut Run<'_>) -> Result<String> {
    if let Some(log) = &r.crashed_log {
        return Ok(log.clone());
    }
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
    let log = String::from_utf8_lossy(&log).into_owned();
    if !log.contains("sysrq triggered crash") {
        return Err(
            VerifyError::Dmesg("log extracted but lacks \"sysrq triggered crash\"".into()).into(),
        );
    }
    r.crashed_log = Some(log.clone());
    Ok(log)
}

/// The CPU a panic ran on: the `CPU: <n> ` line of the panic's stack dump (after "Kernel panic"),
/// and the offset past it.
fn crashing_cpu(text: &str) -> Option<(String, usize)> {
    let start = text.find("Kernel panic - not syncing")?;
    let mut at = start;
    for line in text[start..].split_inclusive('\n') {
        at += line.len();
        if !line.ends_with('\n') {
            return None;
        }
        let Some(i) = line.find("CPU: ") else {
            continue;
        };
        let digits: String = line[i + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() && line[i + 5 + digits.len()..].starts_with(' ') {
            return Some((digits, at));
        }
    }
    None
}

/// Parses `@@ST <block|cpu1> <going|state>` markers.
fn storm_states(log: &str) -> BlockStates {
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    for l in log.lines() {
        let Some(rest) = l.find("@@ST ").map(|i| &l[i + 5..]) else {
            continue;
        };
        let mut it = rest.split_whitespace();
        if let (Some(who), Some(what)) = (it.next(), it.next()) {
            last.insert(who.to_string(), what.to_string());
        }
    }
    let mut st = BlockStates {
        cpu1: Some(true),
        ..BlockStates::default()
    };
    for (who, what) in &last {
        if who == "cpu1" {
            st.cpu1 = match what.as_str() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            };
            continue;
        }
        let Ok(b) = who.parse::<u64>() else { continue };
        match what.as_str() {
            "offline" => st.offline.push(b),
            "going" => st.in_flight.push(b),
            _ => st.online.push(b),
        }
    }
    st
}

/// Judges each memory block of DIMM `d` against what was known at the crash: a block online at
/// the crash wholly covered, one offline wholly absent, the one changing (storm) or paused in the
/// middle of its edit wholly present or wholly absent, never in part; blocks the storm did not
/// touch wholly covered.
fn judge_blocks(vmcore: &CoreHeader, d: &Dimm, block: u64, st: &BlockStates) -> Result<String> {
    let (mut on, mut off, mut changing) = (0, 0, Vec::new());
    for b in d.blocks.0..=d.blocks.1 {
        let (a, e) = (b * block, (b + 1) * block - 1);
        let (covered, touched) = (vmcore.covers(a, e), vmcore.intersects(a, e));
        if st.in_flight.contains(&b) {
            if touched && !covered {
                return Err(VerifyError::DimmPartlyCovered {
                    dimm: format!("{} (block {b}, changing at the crash)", d.id),
                    start: a,
                    end: e,
                    covered_kib: (block
                        - vmcore
                            .gaps(a, e)
                            .iter()
                            .map(|(x, y)| y - x + 1)
                            .sum::<u64>())
                        / 1024,
                    size_kib: block / 1024,
                    gaps: format!("{:?}", vmcore.gaps(a, e)),
                }
                .into());
            }
            changing.push(format!(
                "{b} {}",
                if covered { "present" } else { "absent" }
            ));
        } else if st.offline.contains(&b) {
            if touched {
                return Err(VerifyError::RemovedMemoryPresent { start: a, end: e }.into());
            }
            off += 1;
        } else {
            if !covered {
                return Err(VerifyError::DimmMissing {
                    dimm: format!("{} (block {b}, online at the crash)", d.id),
                    start: a,
                    end: e,
                }
                .into());
            }
            on += 1;
        }
    }
    Ok(format!(
        "DIMM {} block by block, as known at the crash: {on} online and covered, {off} offline and \
         absent, changing or paused: [{}] (wholly)",
        d.id,
        changing.join(", ")
    ))
}

/// A hot-added DIMM and the pattern written into it.
struct Dimm {
    id: String,
    addr: u64,
    size: u64,
    blocks: (u64, u64),
    pattern: Option<(u64, String)>,
}

impl Dimm {
    /// The DIMM's memory blocks (of `block` bytes) but the one holding its pattern, which must
    /// stay online to be read back from the dump.
    fn blocks_without_pattern(&self, block: u64) -> impl DoubleEndedIterator<Item = u64> + '_ {
        let pblock = self.pattern.as_ref().map(|p| p.0 / block);
        (self.blocks.0..=self.blocks.1).filter(move |b| Some(*b) != pblock)
    }
}

/// How one hotplug operation under fault injection ended.
#[derive(Debug, Default)]
struct InjectedOutcomes {
    /// Applied: no injected failure reached the handler's result, `crash_hotplug` 1 1.
    applied: u32,
    /// Not applied, a kernel error said why, `crash_hotplug` 0 0.
    refused: u32,
    /// The journal could not record it (lossy), `crash_hotplug` 0 0.
    lossy: u32,
}

/// Allocation failures in the handler's paths (issue 14, item 2). failslab and fail_page_alloc
/// fail 1 in 3 of the allocations whose call stack passes through the crate's text (its range
/// read from /proc/kallsyms: the stack trace filter), sleeping ones included, while the first
/// DIMM's blocks and cpu1 go offline and online. After every operation: no kernel report (the
/// debug kernel's console is judged at the end, and a report fails the scenario), and
/// `crash_hotplug` reads 1 1 only if no error has been logged since the last load, 0 0 once one
/// has, each error naming why; the loaded elfcorehdr parses. Then the injection stops and kdump
/// is reloaded: 1 1, and a later event applies. The dump at the end is judged as every other.
fn check_fault_injection(r: &mut Run<'_>, d: &Dimm, flags: &str) -> Result<()> {
    // The crate's object text: the first run of its functions (Rust v0 names hold
    // `13crash_hotplug`, its C ABI exports start `crash_hotplug_`; monomorphised `core`/`kernel`
    // code between them is its own too), to the symbol after the run's last (kallsyms lists
    // vmlinux's symbols by address; a gap of more than 64 symbols ends the run).
    let range = r.vm()?.sh(
        "awk '$2 ~ /^[tT]$/ { n++; if (s && n == last + 1) e = $1; \
         if (($3 ~ /13crash_hotplug/ || $3 ~ /^_*crash_hotplug_/) && (!s || n - last <= 64)) { if (!s) s = $1; last = n } } \
         END { print s, e }' /proc/kallsyms",
        Duration::from_secs(120),
    )?;
    let words: Vec<&str> = range.split_whitespace().collect();
    let [start, end] = words[..] else {
        return Err(Error::Unexpected(format!(
            "no crash_hotplug text range in /proc/kallsyms: {range:?}"
        )));
    };
    let setup = ["failslab", "fail_page_alloc"]
        .iter()
        .map(|f| {
            let d = format!("/sys/kernel/debug/{f}");
            format!(
                "echo N > {d}/task-filter && echo N > {d}/ignore-gfp-wait && echo 0x{start} > {d}/require-start && \
                 echo 0x{end} > {d}/require-end && echo 32 > {d}/stacktrace-depth && echo 1 > {d}/verbose && \
                 echo 1 > {d}/interval && echo -1 > {d}/times && echo 33 > {d}/probability"
            )
        })
        .collect::<Vec<_>>()
        .join(" && ");
    r.vm()?.sh(
        &format!("echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem && {setup}"),
        CMD_TIMEOUT,
    )?;
    let from = r.vm()?.console.cursor();
    let mut out = InjectedOutcomes::default();
    let mut reasons: Vec<String> = Vec::new();
    let mut failed_before = false;
    let blocks: Vec<u64> = (d.blocks.0..=d.blocks.1).collect();
    let mut ops = Vec::new();
    for _ in 0..3 {
        for b in &blocks {
            ops.push(format!(
                "echo offline > /sys/devices/system/memory/memory{b}/state"
            ));
            ops.push(format!(
                "echo online_movable > /sys/devices/system/memory/memory{b}/state"
            ));
        }
        ops.push("echo 0 > /sys/devices/system/cpu/cpu1/online".into());
        ops.push("echo 1 > /sys/devices/system/cpu/cpu1/online".into());
    }
    // The kernel log of each operation alone: read and cleared (`dmesg -c`; the records stay in
    // the buffer, so the dump's log is whole), kept in the guest for the artifacts.
    r.vm()?
        .sh("dmesg -c > /tmp/before-injection.log", CMD_TIMEOUT)?;
    for op in &ops {
        // A refused offline (-EBUSY) is the memory's business, not the handler's.
        r.vm()?.sh_rc(&format!("{op} 2>/dev/null"), CMD_TIMEOUT)?;
        let dmesg = r
            .vm()?
            .sh("dmesg -c | tee -a /tmp/injection.log", CMD_TIMEOUT)?;
        let refused = dmesg.lines().any(|l| l.contains("kdump image NOT updated"));
        for l in dmesg
            .lines()
            .filter(|l| l.contains("NOT updated: ") || l.contains("no memory to record it"))
        {
            // The reason, without the event and the advice: "NOT updated: <why>; crash_hotplug ...".
            let why = l
                .split("NOT updated: ")
                .nth(1)
                .unwrap_or("no memory to record it")
                .split("; crash_hotplug")
                .next()
                .unwrap_or_default()
                .to_string();
            if !reasons.contains(&why) {
                reasons.push(why);
            }
        }
        let lossy = dmesg.lines().any(|l| l.contains("no memory to record it"));
        failed_before |= refused || lossy;
        let hp = read_crash_hotplug(r.vm()?)?;
        let want = if failed_before {
            ["0", "0"]
        } else {
            ["1", "1"]
        };
        if hp != want {
            return Err(VerifyError::Events(format!(
                "after `{op}` under injected allocation failures, crash_hotplug reads {hp:?}, want \
                 {want:?} ({}; kernel said: {})",
                if failed_before {
                    "an update failed since the load"
                } else {
                    "no update failed"
                },
                dmesg
                    .lines()
                    .filter(|l| l.contains("crash_hotplug") || l.contains("FAULT_INJECTION"))
                    .take(6)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ))
            .into());
        }
        if lossy {
            out.lossy += 1;
        } else if refused {
            out.refused += 1;
        } else {
            out.applied += 1;
        }
    }
    r.vm()?.sh(
        "for f in failslab fail_page_alloc; do echo 0 > /sys/kernel/debug/$f/probability; done",
        CMD_TIMEOUT,
    )?;
    let to = r.vm()?.console.cursor();
    let log = r.vm()?.console.slice(from, to);
    let hits = log.matches("FAULT_INJECTION: forcing a failure").count();
    let slab = log.matches("name failslab").count();
    let pages = log.matches("name fail_page_alloc").count();
    if hits == 0 || out.refused + out.lossy == 0 {
        return Err(Error::Unexpected(format!(
            "fault injection never reached the handler ({hits} injected failures, {} events \
             refused): the scenario proved nothing",
            out.refused + out.lossy
        )));
    }
    r.ok(format!(
        "{} operations under injected allocation failures ({hits} injected: {slab} failslab, \
         {pages} fail_page_alloc, in {start}-{end}): {} applied, {} refused with a kernel error, \
         {} not recorded (journal lossy); crash_hotplug 1 1 until the first failure, 0 0 after; \
         the kernel's reasons: {}",
        ops.len(),
        out.applied,
        out.refused,
        out.lossy,
        reasons.join(" / ")
    ));
    let reload = format!("kexec -p -u && {}", kexec_cmd(r.s, flags));
    r.vm()?.sh(&reload, CMD_TIMEOUT)?;
    r.vm()?.sh(
        "echo 0 > /sys/devices/system/cpu/cpu1/online && echo 1 > /sys/devices/system/cpu/cpu1/online",
        CMD_TIMEOUT,
    )?;
    let hp = read_crash_hotplug(r.vm()?)?;
    if hp != ["1", "1"] {
        return Err(VerifyError::Events(format!(
            "crash_hotplug reads {hp:?} after the injection stopped, kdump was reloaded and cpu1 \
             cycled; want 1 1"
        ))
        .into());
    }
    r.ok(
        "injection stopped, kdump reloaded: crash_hotplug reads 1 1 and a later event applies"
            .into(),
    );
    Ok(())
}

/// Waits until memory blocks `b0..=b1` are in `state` ("online" matches any online zone).
/// Checks what happens when the elfcorehdr is full: the handler was limited (debugfs `max_slots`,
/// set before the hot-add) to 3 program headers more than the loaded header has, so of the DIMM's
/// blocks 3 were added and the others refused. Each refusal is a kernel error that names the
/// numbers; `crash_hotplug` then reads 0, the udev rules reload, and after the reload (done here as
/// the rules would) it reads 1 again with a header that lists the whole DIMM.
fn check_full_header(r: &mut Run<'_>, d: &Dimm, flags: &str) -> Result<()> {
    let limit = r
        .full_limit
        .ok_or_else(|| Error::Unexpected("no max_slots set".into()))?;
    let blocks = d.blocks.1 - d.blocks.0 + 1;
    let want_failed = blocks.saturating_sub(3);
    let stats = r
        .vm()?
        .sh("cat /sys/kernel/debug/crash_hotplug/stats", CMD_TIMEOUT)?;
    r.save("stats-full.txt", stats.as_bytes())?;
    let failed = dump::stat(&stats, "failed").unwrap_or(u64::MAX);
    if failed != want_failed {
        return Err(VerifyError::Events(format!(
            "with max_slots {limit} and {blocks} blocks hot-added: failed {failed}, want {want_failed}"
        ))
        .into());
    }
    let dmesg = r.vm()?.sh("dmesg", CMD_TIMEOUT)?;
    let want = format!("elfcorehdr full: edit needs 1 program header slots, 0 free of {limit}");
    let errors = dmesg
        .lines()
        .filter(|l| l.contains(&want) && l.contains("crash_hotplug now reads 0"))
        .count() as u64;
    if errors != want_failed {
        return Err(Error::Unexpected(format!(
            "{errors} kernel errors say {want:?} (want {want_failed})"
        )));
    }
    let hp = read_crash_hotplug(r.vm()?)?;
    if hp != ["0", "0"] {
        return Err(Error::Unexpected(format!(
            "crash_hotplug (cpu, memory) reads {hp:?} after refused updates, want 0 0"
        )));
    }
    r.ok(format!(
        "max_slots {limit}: {want_failed} of {blocks} block events refused with \"{want}\"; \
         crash_hotplug reads 0 0"
    ));
    if r.s.udev.is_some() {
        check_udev(r, d.blocks.0, true)?;
    }
    let reload = format!("kexec -p -u && {}", kexec_cmd(r.s, flags));
    r.vm()?.sh(&reload, CMD_TIMEOUT)?;
    let hp = read_crash_hotplug(r.vm()?)?;
    if hp != ["1", "1"] {
        return Err(Error::Unexpected(format!(
            "crash_hotplug reads {hp:?} after the reload, want 1 1"
        )));
    }
    // One more event on the new image: the index is rebuilt for it and the edit applies.
    r.vm()?.sh(
        "echo 0 > /sys/devices/system/cpu/cpu1/online && echo 1 > /sys/devices/system/cpu/cpu1/online",
        CMD_TIMEOUT,
    )?;
    let stats = r
        .vm()?
        .sh("cat /sys/kernel/debug/crash_hotplug/stats", CMD_TIMEOUT)?;
    let failed_after = dump::stat(&stats, "failed").unwrap_or(u64::MAX);
    if failed_after != want_failed {
        return Err(VerifyError::Events(format!(
            "events failed on the reloaded image: failed {failed_after}, was {want_failed}"
        ))
        .into());
    }
    r.ok("reloaded as the udev rules do: crash_hotplug reads 1 1, later events apply".into());
    Ok(())
}

/// `udevadm test --action={action} {dev}` in the guest, with `setup` run before it and `undo`
/// after (bind mounts over sysfs for the controls): whether the Fedora rule (a RUN key naming
/// kdump-udev-throttler) and the Debian rule (its PROGRAM kdump-config, which test mode runs)
/// would reload kdump. The output is saved as `udevadm-test-{tag}.txt`.
fn udev_verdict(
    r: &mut Run<'_>,
    (action, dev): (&str, &str),
    (setup, undo): (&str, &str),
    tag: &str,
) -> Result<(bool, bool)> {
    let out = r.vm()?.sh(
        &format!("{setup} udevadm test --action={action} {dev} 2>&1; {undo} true"),
        CMD_TIMEOUT + CMD_TIMEOUT,
    )?;
    r.save(&format!("udevadm-test-{tag}.txt"), out.as_bytes())?;
    if !out.contains("rules.d") {
        return Err(Error::Unexpected(format!(
            "udevadm test did not read the rules: {}",
            out.lines().take(3).collect::<Vec<_>>().join(" | ")
        )));
    }
    let fedora = out
        .lines()
        .any(|l| l.contains("run:") && l.contains("kdump-udev-throttler"));
    let debian = out.lines().any(|l| l.contains("kdump-config"));
    Ok((fedora, debian))
}

/// Runs `udevadm test` in the guest for a memory block coming online and a CPU being added, and
/// checks that both rule styles trigger the kdump reload exactly when `reload_expected`.
fn check_udev(r: &mut Run<'_>, block: u64, reload_expected: bool) -> Result<()> {
    for (action, dev) in [
        ("online", format!("/devices/system/memory/memory{block}")),
        ("add", "/devices/system/cpu/cpu1".to_string()),
    ] {
        let (fedora, debian) = udev_verdict(r, (action, &dev), ("", ""), action)?;
        if fedora != reload_expected || debian != reload_expected {
            return Err(Error::Unexpected(format!(
                "udevadm test --action={action} {dev}: reload by the Fedora rule {fedora}, by the \
                 Debian rule {debian}; expected {reload_expected}"
            )));
        }
    }
    r.ok(format!(
        "udevadm test (memory online, cpu add): both rule styles {} the kdump reload",
        if reload_expected { "trigger" } else { "skip" }
    ));
    Ok(())
}

/// The ppc64 udev rules under fadump: while fadump is enabled and `hotplug_ready` reads 1 no
/// event re-registers; the controls bind-mount a 0 over `hotplug_ready` (memory events
/// re-register), over `enabled` (every event does), and an empty directory over
/// `/sys/kernel/fadump` (a kernel without it: memory events do).
fn check_udev_fadump(r: &mut Run<'_>, block: u64) -> Result<()> {
    r.vm()?
        .sh("echo 0 > /tmp/zero && mkdir -p /tmp/empty", CMD_TIMEOUT)?;
    let mem = format!("/devices/system/memory/memory{block}");
    let f = "/sys/kernel/fadump";
    let cases: [(&str, (&str, &str), String, bool); 7] = [
        ("fadump-mem", ("online", &mem), String::new(), false),
        (
            "fadump-cpu-add",
            ("add", "/devices/system/cpu/cpu1"),
            String::new(),
            false,
        ),
        (
            "fadump-cpu-online",
            ("online", "/devices/system/cpu/cpu1"),
            String::new(),
            false,
        ),
        (
            "hotplug_ready-0-mem",
            ("online", &mem),
            format!("{f}/hotplug_ready"),
            true,
        ),
        (
            "enabled-0-mem",
            ("online", &mem),
            format!("{f}/enabled"),
            true,
        ),
        (
            "enabled-0-cpu-add",
            ("add", "/devices/system/cpu/cpu1"),
            format!("{f}/enabled"),
            true,
        ),
        ("no-fadump-dir-mem", ("online", &mem), f.to_string(), true),
    ];
    let mut seen = Vec::new();
    for (tag, ev, over, want) in cases {
        let (setup, undo) = if over.is_empty() {
            (String::new(), String::new())
        } else {
            let src = if over == f { "/tmp/empty" } else { "/tmp/zero" };
            (
                format!("mount -o bind {src} {over} || exit 1;"),
                format!("umount {over};"),
            )
        };
        let (fedora, debian) = udev_verdict(r, ev, (&setup, &undo), tag)?;
        if fedora != want || debian != want {
            return Err(Error::Unexpected(format!(
                "udevadm test ({tag}: --action={} {}): re-registration by the Fedora rule {fedora}, \
                 by the Debian rule {debian}; expected {want}",
                ev.0, ev.1
            )));
        }
        seen.push(format!("{tag} {}", if want { "reload" } else { "skip" }));
    }
    r.ok(format!(
        "udevadm test, ppc64 rules under fadump, both styles: {}",
        seen.join(", ")
    ));
    Ok(())
}

/// Judges `rc before after cpu memory` of a timed read of both `crash_hotplug` files while the
/// kexec lock is held: a clean read, well under a second, each value 0 or 1.
fn check_sysfs_while_locked(out: &str) -> Result<()> {
    let f: Vec<&str> = out.split_whitespace().collect();
    let secs = |s: &str| s.parse::<f64>().ok();
    let bad = |why: &str| {
        Err(Error::Unexpected(format!(
            "crash_hotplug read while the kexec lock was held: {why} (rc, uptime before, after, values: {})",
            out.trim()
        )))
    };
    let (Some(rc), Some(a), Some(b)) = (
        f.first(),
        f.get(1).and_then(|s| secs(s)),
        f.get(2).and_then(|s| secs(s)),
    ) else {
        return bad("unparsable");
    };
    if *rc != "0" {
        return bad("the read failed or timed out after 5 s");
    }
    if b - a >= 1.0 {
        return bad(&format!(
            "it took {:.2} s (a read must not wait for the lock)",
            b - a
        ));
    }
    if f.len() != 5 || !f[3..].iter().all(|v| *v == "0" || *v == "1") {
        return bad("each file must read 0 or 1");
    }
    Ok(())
}

/// The guest command that loads the capture kernel (the same kernel) with kexec `flags`.
fn kexec_cmd(s: &Scenario, flags: &str) -> String {
    format!(
        "kexec {flags} {GUEST_KERNEL} --initrd=/boot/capture.cpio --append='{}'",
        s.machine
            .capture_append(s.pmem.is_some_and(|p| p.capture_blacklist))
    )
}

/// The NVDIMM's backing file in the scenario's directory.
const NVDIMM_FILE: &str = "nvdimm0.img";

/// Creates the scenario's pmem namespace and reports it with its `/proc/iomem` lines.
fn pmem_create(r: &mut Run<'_>, p: Pmem) -> Result<pmem::Namespace> {
    let m = r.s.machine;
    let backing = r.s.workdir.join(NVDIMM_FILE);
    let info = if m.nvdimm_label_size() > 0 {
        pmem::InfoBlock::Host {
            backing: &backing,
            page_size: m.page_size(),
            compat_align: pmem::PPC64_RADIX_COMPAT_ALIGN,
        }
    } else {
        pmem::InfoBlock::Kernel
    };
    let (ns, iomem) = pmem::create(r.vm()?, p.mode, info)?;
    r.save("pmem-iomem.txt", iomem.join("\n").as_bytes())?;
    r.ok(format!(
        "{:?} namespace: {}; /proc/iomem: {}",
        p.mode,
        ns.describe(),
        iomem.join(" | ")
    ));
    Ok(ns)
}

/// Reads the two `crash_hotplug` attributes (cpu, memory).
fn read_crash_hotplug(vm: &mut Vm) -> Result<Vec<String>> {
    Ok(vm
        .sh(
            "cat /sys/devices/system/cpu/crash_hotplug /sys/devices/system/memory/crash_hotplug",
            CMD_TIMEOUT,
        )?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

fn wait_blocks(vm: &mut Vm, b0: u64, b1: u64, state: &str) -> Result<()> {
    vm.sh(
        &format!(
            "n=0; while [ $n -lt 300 ]; do ok=1; for i in $(seq {b0} {b1}); do \
             case \"$(cat /sys/devices/system/memory/memory$i/state 2>/dev/null)\" in {state}*) ;; *) ok=0;; esac; done; \
             [ $ok = 1 ] && exit 0; n=$((n+1)); sleep 0.2; done; exit 1"
        ),
        CMD_TIMEOUT + CMD_TIMEOUT,
    )
    .map(|_| ())
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
        // Test cases are indented under their suite (KTAP subtests): they count too.
        let l = l.trim_start();
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

#[cfg(test)]
mod tests {
    use super::{
        check_sysfs_while_locked, crashing_cpu, kernel_reports, makedumpfile_totals, parse_ktap,
        storm_log, storm_states, storm_states_at_crash,
    };

    #[test]
    fn a_change_begun_after_the_crash_line_is_in_flight() {
        // Seed 0xbcc766f3b157cd49: block 33 offline, then the crash line, then "33 going".
        let log = "[ 6.32] @@ST 33 going\n[ 6.33] @@ST 33 offline\n[ 6.33] @@ST 34 online\n\
                   [ 6.33] sysrq: Trigger a crash\n[ 6.33] @@ST 33 going\n\
                   [ 6.34] Kernel panic - not syncing: sysrq triggered crash\n";
        let st = storm_states_at_crash(log).unwrap();
        assert_eq!(st.in_flight, vec![33]);
        assert!(st.offline.is_empty());
        assert_eq!(st.online, vec![34]);
        assert_eq!(st.cpu1, Some(true));
        let cpu = "[ 1] @@ST cpu1 1\n[ 2] sysrq: Trigger a crash\n[ 2] @@ST cpu1 going\n";
        assert_eq!(storm_states_at_crash(cpu).unwrap().cpu1, None);
    }

    #[test]
    fn the_crashing_cpu_comes_from_the_panic_stack_dump() {
        let console = "[ 2.4] WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2\n\
                       [ 2.41] Kernel panic - not syncing: sysrq triggered crash\n\
                       [ 2.41] CPU: 12 UID: 0 PID: 97 Comm: sh Tainted: G N 7.3.4\n\
                       [ 2.41] Hardware name: IBM pSeries\n";
        let (cpu, end) = crashing_cpu(console).unwrap();
        assert_eq!(cpu, "12");
        assert!(console[..end].ends_with("7.3.4\n"));
        // A WARNING's CPU before the panic is not the crash's; an unfinished line waits.
        assert!(crashing_cpu("[ 2.4] WARNING: CPU: 0 PID: 1 at x\n").is_none());
        assert!(crashing_cpu("Kernel panic - not syncing: x\n[ 1] CPU: 3 UID").is_none());
    }

    #[test]
    fn storm_states_come_from_the_log_before_the_crash() {
        let log = "[ 5.0] @@ST 33 going\n[ 5.1] @@ST 33 offline\n[ 5.1] @@ST 34 going\n\
                   [ 5.2] @@ST cpu1 going\n[ 5.2] @@ST cpu1 0\n[ 5.3] sysrq: Trigger a crash\n\
                   [ 5.3] @@ST 34 offline\n[ 5.4] Kernel panic - not syncing: sysrq triggered crash\n";
        let st = storm_states(storm_log(log).unwrap());
        assert_eq!(st.offline, vec![33]);
        // Block 34's outcome came after the crash began: changing at the crash.
        assert_eq!(st.in_flight, vec![34]);
        assert_eq!(st.cpu1, Some(false));
        let no_crash = "[ 5.0] @@ST 33 going\n";
        assert!(storm_log(no_crash)
            .unwrap_err()
            .to_string()
            .contains("lacks"));
        let no_marker = "[ 5.3] sysrq: Trigger a crash\n[ 5.3] @@ST 34 offline\n";
        assert!(storm_log(no_marker)
            .unwrap_err()
            .to_string()
            .contains("no storm marker"));
    }

    #[test]
    fn kernel_reports_are_found_and_the_crash_is_not_one() {
        let clean = "[    9.1] sysrq: Trigger a crash\n[    9.1] Kernel panic - not syncing: sysrq triggered crash\n\
                     [    9.1] CPU: 1 UID: 0 PID: 1 Comm: sh\n[    9.1] Call Trace:\n[    9.2] Kernel Offset: disabled\n";
        assert!(kernel_reports(clean).is_empty());
        for line in [
            "[    3.2] WARNING: CPU: 0 PID: 1 at mm/memremap.c:42 memremap_pages+0x1/0x2",
            "[    3.2] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580",
            "[    3.2] BUG: KASAN: slab-out-of-bounds in crash_hotplug_device_vmemmap+0x10/0x20",
            "[    3.2] WARNING: possible circular locking dependency detected",
            "[    3.2] BUG: KFENCE: use-after-free read in crash_hotplug::handler",
            "[   60.0] kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
        ] {
            let init = "[   10.7] kmemleak: Kernel memory leak detector initialized (mem pool available: 14727)";
            assert!(kernel_reports(init).is_empty());
            let found = kernel_reports(&format!("{clean}{line}\n[    3.3] more\n"));
            assert_eq!(found, vec![line.trim().to_string()], "{line}");
        }
    }

    #[test]
    fn makedumpfile_report_totals() {
        // makedumpfile 1.7.2 --message-level 22, c-pmem-fsdax-torn-down.
        let log = "Original pages  : 0x0000000000070b6e\n  Excluded pages   : 0x000000000006ca02\n    \
                   Pages filled with zero  : 0x0000000000004805\n  Remaining pages  : 0x000000000000416c\n  \
                   (The number of pages is reduced to 3%.)\nMemory Hole     : 0x000000000010f492\n\
                   --------------------------------------------------\nTotal pages     : 0x0000000000180000\n\
                   Write bytes     : 19970671\nsize 19978115\n";
        assert_eq!(
            makedumpfile_totals(log),
            [
                "Original pages = 461678",
                "Excluded pages = 444930",
                "Remaining pages = 16748",
                "Memory Hole = 1111186",
                "Total pages = 1572864"
            ]
        );
        assert!(makedumpfile_totals("makedumpfile Completed.\nsize 42\n").is_empty());
    }

    #[test]
    fn sysfs_read_while_locked() {
        // The fixed ABI: at once, 0 or 1.
        assert!(check_sysfs_while_locked("0 10.51 10.53 0 0\n").is_ok());
        assert!(check_sysfs_while_locked("0 10.51 10.53 1 1").is_ok());
        // What the old read did: wait ~10 s for the lock and print -EBUSY with %d.
        let slow = check_sysfs_while_locked("0 10.51 21.80 -16 -16").unwrap_err();
        assert!(slow.to_string().contains("took 11.29 s"), "{slow}");
        let ebusy = check_sysfs_while_locked("0 10.51 10.60 -16 -16").unwrap_err();
        assert!(
            ebusy.to_string().contains("each file must read 0 or 1"),
            "{ebusy}"
        );
        // Still blocked after 5 s (busybox timeout: 143).
        let stuck = check_sysfs_while_locked("143 10.51 15.52").unwrap_err();
        assert!(stuck.to_string().contains("failed or timed out"), "{stuck}");
        assert!(check_sysfs_while_locked("0 10.51 10.52 1").is_err());
        assert!(check_sysfs_while_locked("").is_err());
    }

    #[test]
    fn ktap_suites_and_cases() {
        let log = "[    1.0] KTAP version 1\n[    1.0] 1..2\n[    1.1]     ok 1 inner_case\n\
                   [    1.2] ok 1 suite_a\n[    1.3] not ok 2 suite_b # SKIP x\n";
        assert_eq!(
            parse_ktap(log),
            vec![
                ("inner_case".to_string(), true),
                ("suite_a".to_string(), true),
                ("suite_b".to_string(), false)
            ]
        );
    }
}
