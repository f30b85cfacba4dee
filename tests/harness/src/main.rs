//! `crashhp`: the crash_hotplug QEMU harness.
//!
//! It builds the guests' initramfs, boots QEMU (TCG), hot-adds memory and CPUs over QMP, drives the
//! guest through its serial console, crashes it, lets the capture kernel boot, brings the dump's
//! headers and the bytes it needs to the host and verifies them with goblin.

mod bench;
mod campaign;
mod console;
mod demo;
mod drgn;
mod dump;
mod error;
mod initramfs;
mod judge;
mod machine;
mod mutations;
mod pmem;
mod qemu;
mod scenario;

use std::{path::PathBuf, process::ExitCode, time::Instant};

use clap::{Parser, Subcommand};

use crate::{
    error::{Error, VerifyError},
    initramfs::Userland,
    machine::Machine,
    pmem::Pmem,
    scenario::{Load, Scenario},
};

#[derive(Parser)]
#[command(about = "QEMU harness for crash_hotplug")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The kernels and guest programs the suite and the benchmark run.
#[derive(clap::Args)]
struct Kernels {
    /// bzImage with the upstream C implementation selected.
    #[arg(long)]
    kernel_c: PathBuf,
    /// bzImage with the Rust implementation selected.
    #[arg(long)]
    kernel_rust: PathBuf,
    /// Artifact root.
    #[arg(long)]
    out: PathBuf,
    /// kexec binary for the guest.
    #[arg(long, default_value = "kexec")]
    kexec: PathBuf,
    /// The static crashhp-pattern binary for the guest (crashhp-hotplug-bench next to it).
    #[arg(
        long,
        default_value = "target/x86_64-unknown-linux-gnu/release/crashhp-pattern"
    )]
    pattern_tool: PathBuf,
    #[command(flatten)]
    dump: DumpTools,
}

/// The programs that read dumps: makedumpfile in the x86_64 guests, drgn on the host.
#[derive(clap::Args, Clone)]
struct DumpTools {
    /// drgn's unpacked wheel (`scripts/setup.sh` puts it in `$CRASHHP_CACHE/drgn-*/site`): the
    /// suite reads dumps with it (required by `suite` and `mutations`).
    #[arg(long)]
    drgn_site: Option<PathBuf>,
    /// The CPython that runs drgn (the wheel's 3.11).
    #[arg(long, default_value = "/usr/bin/python3")]
    drgn_python: PathBuf,
    /// makedumpfile for the x86_64 guests: the static 1.7.7 of `scripts/build-makedumpfile.sh
    /// x86_64` (bookworm's 1.7.2 drops every slab page of a 7.3 dump as free), or a name looked up
    /// on the host.
    #[arg(long, default_value = "makedumpfile")]
    makedumpfile: PathBuf,
}

impl DumpTools {
    /// drgn as given, or why the suite cannot run without it.
    fn drgn(&self) -> Result<drgn::Drgn, String> {
        self.drgn_site
            .as_ref()
            .map(|s| drgn::Drgn::new(&self.drgn_python, s))
            .ok_or_else(|| "--drgn-site is required: the suite's drgn checks read dumps".into())
    }
}

/// `s` with `mdf` as the x86_64 guests' makedumpfile (other machines keep their userland's).
fn x86_userland(mdf: &std::path::Path, s: Scenario) -> Scenario {
    if s.machine != Machine::Q35 {
        return s;
    }
    let mut s = s;
    s.userland.makedumpfile = mdf.to_path_buf();
    s
}

/// The kernels and guest programs of the commands that run scenarios (suite, mutations,
/// campaign).
#[derive(clap::Args)]
struct Guests {
    #[command(flatten)]
    k: Kernels,
    /// kexec binary with --hotplug (kexec-tools >= 2.0.28), for the x86_64 kexec_load scenarios.
    #[arg(long)]
    kexec_hotplug: PathBuf,
    #[command(flatten)]
    ppc: PpcUserland,
}

/// The ppc64le kernel, guest programs and QEMU (pseries and fadump machines).
#[derive(clap::Args, Clone)]
struct PpcUserland {
    /// ppc64le pseries vmlinux with the Rust implementation (suite and mutations: the pseries
    /// and fadump scenarios run only with it).
    #[arg(long)]
    ppc_kernel: Option<PathBuf>,
    /// ppc64le pseries vmlinux with the upstream C implementation: the suite's pseries pmem
    /// negative control (skipped without it).
    #[arg(long)]
    ppc_kernel_c: Option<PathBuf>,
    /// Static ppc64le kexec with --hotplug (kexec-tools >= 2.0.28).
    #[arg(long)]
    ppc_kexec: Option<PathBuf>,
    /// Static ppc64le crashhp-pattern.
    #[arg(long)]
    ppc_pattern_tool: Option<PathBuf>,
    /// Static ppc64el busybox.
    #[arg(long)]
    ppc_busybox: Option<PathBuf>,
    /// ppc64el userland tree (makedumpfile in usr/bin, udevadm in bin, with their libraries).
    #[arg(long)]
    ppc_userland: Option<PathBuf>,
    /// QEMU with pseries fadump (>= 10.2), for the fadump machine.
    #[arg(long)]
    fadump_qemu: Option<PathBuf>,
}

impl PpcUserland {
    /// The userland of `machine`'s guests; `None` if a ppc64le program is not given.
    fn for_machine(
        &self,
        machine: Machine,
        kexec: &std::path::Path,
        pattern_tool: &std::path::Path,
    ) -> Option<Userland> {
        if !machine.is_ppc() {
            return Some(Userland::host(kexec, pattern_tool));
        }
        let tree = self.ppc_userland.clone()?;
        Some(Userland {
            busybox: self.ppc_busybox.clone()?,
            makedumpfile: tree.join("usr/bin/makedumpfile"),
            kexec: kexec.to_path_buf(),
            pattern_tool: pattern_tool.to_path_buf(),
            tree: Some(tree),
        })
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and print its report.
    Scenario {
        /// Name (artifact directory under --out).
        #[arg(long)]
        name: String,
        /// Kernel to boot: bzImage (q35) or vmlinux (pseries, fadump).
        #[arg(long)]
        kernel: PathBuf,
        /// The machine.
        #[arg(long, value_enum, default_value = "q35")]
        machine: Machine,
        #[command(flatten)]
        ppc: PpcUserland,
        /// fadump negative control: corrupt the registered crash info header (endian, cpumask).
        #[arg(long)]
        fadump_corrupt: Option<String>,
        /// How kdump is loaded.
        #[arg(long, value_enum, default_value = "file")]
        load: Load,
        /// KUnit suites that must pass at boot.
        #[arg(long)]
        kunit: Vec<String>,
        /// Check the Rust handler's debugfs event counters.
        #[arg(long)]
        events: bool,
        /// DIMMs to hot-add.
        #[arg(long, default_value_t = 1)]
        dimms: u32,
        /// Size of each DIMM in MiB (a multiple of the memory block size).
        #[arg(long, default_value_t = 1024)]
        dimm_mib: u64,
        /// Boot with memory_hotplug.memmap_on_memory=1 (struct pages on the hot-added memory).
        #[arg(long)]
        memmap_on_memory: bool,
        /// In the capture kernel, `makedumpfile -l -d 31 /proc/vmcore` must succeed.
        #[arg(long)]
        filtered_dump: bool,
        /// Offline and remove the last DIMM before the crash.
        #[arg(long)]
        unplug: bool,
        /// Crash during a memory/CPU hotplug storm.
        #[arg(long)]
        storm: bool,
        /// Hot-add memory while kdump is reloaded back to back.
        #[arg(long)]
        contend: bool,
        /// Limit the header so that the hot-add fills it; check errors, crash_hotplug 0, reload.
        #[arg(long)]
        full_header: bool,
        /// Crash while the handler is paused in the middle of an elfcorehdr edit.
        #[arg(long)]
        crash_in_edit: bool,
        /// Boot with the CPU hotplug state registration failing (fault injection).
        #[arg(long)]
        inject_init_failure: bool,
        /// A mutation of the test kernel to activate (debugfs crash_hotplug/mutation).
        #[arg(long)]
        mutation: Option<String>,
        /// Where the handler pauses (debugfs `edit_delay_point`: locked, index, notes, store,
        /// unmap); the kernel's default (store) if not given.
        #[arg(long)]
        edit_point: Option<String>,
        /// udevadm to test the udev rules with in the guest.
        #[arg(long)]
        udevadm: Option<PathBuf>,
        /// Directory of the udev rules under test.
        #[arg(long, default_value = "udev")]
        udev_rules: PathBuf,
        /// Stop after hotplug instead of crashing.
        #[arg(long)]
        no_crash: bool,
        /// Crash while `crashhp-tlb-storm` makes the kernel flush TLBs on every CPU.
        #[arg(long)]
        tlb_storm: bool,
        /// An NVDIMM (1 GiB; q35: label-less, pseries: spapr-nvdimm, labeled) whose namespace
        /// becomes fsdax or devdax in pfn mode `pmem` (struct pages on the device); the dump must
        /// hold that device vmemmap.
        #[arg(long, value_enum)]
        pmem: Option<pmem::Mode>,
        /// When the pmem namespace is created (or torn down) relative to the crash kernel load.
        #[arg(long, value_enum, default_value = "before")]
        pmem_when: pmem::When,
        /// Let the capture kernel probe the pmem (no initcall_blacklist): shows the capture check
        /// failing.
        #[arg(long)]
        pmem_capture_probe: bool,
        /// ppc64le: no udev rule checks (they run by default with the userland tree's udevadm).
        #[arg(long)]
        no_udev: bool,
        /// With --drgn-site, the filtered dump is read with drgn (the kernel's vmlinux-* next to it).
        #[command(flatten)]
        dump: DumpTools,
        /// Artifact root.
        #[arg(long)]
        out: PathBuf,
        /// kexec binary for the guest.
        #[arg(long, default_value = "kexec")]
        kexec: PathBuf,
        /// The static crashhp-pattern binary for the guest.
        #[arg(
            long,
            default_value = "target/x86_64-unknown-linux-gnu/release/crashhp-pattern"
        )]
        pattern_tool: PathBuf,
    },
    /// Crashes at random instants of hotplug storms (memory blocks, DIMMs, cpu1; both load
    /// paths), each dump judged strictly; prints a table with each failure's seed.
    Campaign {
        #[command(flatten)]
        g: Guests,
        /// q35 (x86_64) or pseries (ppc64le kdump).
        #[arg(long, value_enum, default_value = "q35")]
        machine: Machine,
        /// Runs.
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// The campaign's seed (decimal or 0x hex).
        #[arg(long, default_value = "1", value_parser = parse_seed)]
        seed: u64,
        /// Replay: one run whose own seed is --seed (as a failure line prints it).
        #[arg(long)]
        exact: bool,
    },
    /// The demo: the same scenarios on the Rust and the C implementation, and a report of what
    /// differs (a removed DIMM, a panic during an update, the cost per event, a busy kexec
    /// lock); fails if a difference it shows does not hold.
    Demo {
        #[command(flatten)]
        k: Kernels,
    },
    /// In-guest benchmark of the handler's cost per memory event, C versus Rust.
    Bench {
        #[command(flatten)]
        k: Kernels,
        /// Offline/online rounds over the DIMM's blocks.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Numbers of RAM ranges to measure at (boot memory holes, then extra small DIMMs).
        #[arg(long, value_delimiter = ',', default_value = "12,256")]
        ranges: Vec<u32>,
    },
    /// The mutation matrix: each mutation of the test kernel (debugfs crash_hotplug/mutation)
    /// with a scenario that must fail in the check that names the defect. Prints the table; fails
    /// if any mutation survives or is caught by another check.
    Mutations {
        #[command(flatten)]
        g: Guests,
        /// Run only the rows whose mutation or scenario name contains one of these (all if none).
        #[arg(long)]
        only: Vec<String>,
        /// The debug kernel: the rows of the defects only its checkers see (leak, sleep in atomic).
        #[arg(long)]
        kernel_rust_debug: Option<PathBuf>,
    },
    /// Judges a run's saved first-kernel capture (first-kernel.txt) against its saved
    /// /proc/vmcore head (vmcore-head.bin): the dump's RAM PT_LOADs must be exactly the RAM to dump.
    Judge {
        /// first-kernel.txt of a run.
        #[arg(long)]
        first: PathBuf,
        /// vmcore-head.bin of the same run.
        #[arg(long)]
        head: PathBuf,
        /// How kdump was loaded.
        #[arg(long, value_enum, default_value = "file")]
        load: Load,
        /// Memory blocks changing at the crash (wholly present or wholly absent).
        #[arg(long)]
        in_flight: Vec<u64>,
        /// The image may have been loaded by either syscall (the contention scenario).
        #[arg(long)]
        alternating: bool,
    },
    /// The suite: C-backed scenario and its negative control, then the Rust implementation with
    /// both load paths, several DIMMs with an unplug, and crashes during hotplug storms. Prints one
    /// line per scenario and a closing count.
    Suite {
        #[command(flatten)]
        g: Guests,
        /// udevadm to test the udev rules with in the guest.
        #[arg(long)]
        udevadm: PathBuf,
        /// Directory of the udev rules under test.
        #[arg(long, default_value = "udev")]
        udev_rules: PathBuf,
        /// How many storm scenarios to run.
        #[arg(long, default_value_t = 3)]
        storms: u32,
        /// Run only the scenarios whose name contains one of these (all if none given).
        #[arg(long)]
        only: Vec<String>,
        /// The debug kernel (`scripts/build-kernel.sh rust-debug`): every x86_64 Rust scenario
        /// runs on it too, as `debug-<name>`, and fails on any kernel report.
        #[arg(long)]
        kernel_rust_debug: Option<PathBuf>,
    },
}

fn parse_seed(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("seed {s:?}: {e}"))
}

/// What a scenario is expected to do.
#[derive(Clone, Copy)]
enum Expect {
    Pass,
    /// Fail verification because the dump lacks the hot-added DIMM.
    DimmMissing,
    /// Fail verification because the dump lacks a pmem namespace's device-backed vmemmap.
    DeviceVmemmapMissing,
}

/// Whether `e` is what a dump without the device vmemmap must make the pmem checks say: the bytes
/// check names the missing range and, where the scenario reads the dump with drgn, so does
/// drgn's struct page check (the struct page is in that range, absent from the dump).
fn vmemmap_missing_seen(s: &Scenario, e: &Error) -> bool {
    let Error::Verify(VerifyError::Pmem(failed)) = e else {
        return false;
    };
    let bytes = failed
        .iter()
        .any(|f| matches!(f, VerifyError::DeviceVmemmapMissing { .. }));
    let drgn = failed.iter().any(|f| {
        matches!(f, VerifyError::DrgnStructPage { detail, .. }
            if detail.contains("is not in the dump") && detail.contains(", in the device vmemmap"))
    });
    bytes && (drgn || s.drgn.is_none())
}

fn run_one(s: &Scenario, expect: Expect) -> bool {
    let t = Instant::now();
    let res = scenario::run(s);
    let secs = t.elapsed().as_secs_f64();
    match (res, expect) {
        (Ok(report), Expect::Pass) => {
            report.print(&s.name);
            println!("PASS {} ({secs:.1} s)", s.name);
            true
        }
        (Ok(report), Expect::DimmMissing | Expect::DeviceVmemmapMissing) => {
            report.print(&s.name);
            println!(
                "FAIL {}: the negative control passed; the harness cannot detect a stale dump",
                s.name
            );
            false
        }
        (Err(f), Expect::DimmMissing)
            if matches!(f.error, Error::Verify(VerifyError::DimmMissing { .. })) =>
        {
            f.report.print(&s.name);
            println!(
                "PASS {} ({secs:.1} s): failed as it must, in phase '{}': {}",
                s.name, f.phase, f.error
            );
            true
        }
        (Err(f), Expect::DeviceVmemmapMissing) if vmemmap_missing_seen(s, &f.error) => {
            f.report.print(&s.name);
            println!(
                "PASS {} ({secs:.1} s): failed as it must, in phase '{}': {}",
                s.name, f.phase, f.error
            );
            true
        }
        (Err(f), _) => {
            f.report.print(&s.name);
            println!("FAIL {} in phase '{}': {}", s.name, f.phase, f.error);
            println!("--- last console lines of {}:", s.name);
            println!("{}", f.console_tail);
            println!("--- artifacts: {}", s.workdir.display());
            false
        }
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A pseries (kdump or fadump) scenario with the Rust kernel and the ppc64le guest programs.
fn ppc_scenario(
    ppc: &PpcUserland,
    machine: Machine,
    name: &str,
    out: &std::path::Path,
) -> Result<Scenario, String> {
    let need = |p: &Option<PathBuf>, what: &str| {
        p.clone()
            .ok_or_else(|| format!("--{what} is needed for the pseries scenarios"))
    };
    let kernel = need(&ppc.ppc_kernel, "ppc-kernel")?;
    let kexec = need(&ppc.ppc_kexec, "ppc-kexec")?;
    let pattern_tool = need(&ppc.ppc_pattern_tool, "ppc-pattern-tool")?;
    let userland = ppc
        .for_machine(machine, &kexec, &pattern_tool)
        .ok_or("--ppc-busybox and --ppc-userland are needed for the pseries scenarios")?;
    let qemu = match machine {
        Machine::Fadump => Some(need(&ppc.fadump_qemu, "fadump-qemu")?),
        _ => None,
    };
    Ok(Scenario {
        machine,
        qemu,
        userland,
        check_events: true,
        ..Scenario::new(name, &kernel, &kexec, &pattern_tool, out)
    })
}

/// The pseries kdump and fadump scenarios of the suite (none without --ppc-kernel).
fn ppc_suite(
    ppc: &PpcUserland,
    rules: &std::path::Path,
    out: &std::path::Path,
) -> Result<Vec<(Scenario, Expect)>, String> {
    if ppc.ppc_kernel.is_none() {
        return Ok(vec![]);
    }
    let kdump = |name: &str| ppc_scenario(ppc, Machine::Pseries, name, out);
    let fadump = |name: &str| ppc_scenario(ppc, Machine::Fadump, name, out);
    let udev = |s: &Scenario| {
        s.userland
            .tree
            .as_ref()
            .map(|t| (t.join("bin/udevadm"), rules.to_path_buf()))
    };
    let with_udev = |s: Scenario| Scenario {
        udev: udev(&s),
        ..s
    };
    let mut runs = vec![
        // kexec_file: two cores one after another, each added to the crash FDT by a block switch;
        // the crash on the last; 3 DIMMs, the last removed.
        (
            with_udev(Scenario {
                hot_cpus: 2,
                dimms: 3,
                unplug: true,
                // The KUnit suites and doctests on POWER, a weakly ordered CPU.
                kunit_suites: rust_kunit(),
                ..kdump("pseries-rust-kexec-file-3dimms-unplug-2cores")?
            }),
            Expect::Pass,
        ),
        // The crash while other CPUs flush TLBs (crashhp-tlb-storm): the kdump NMI path meets
        // them mid-flush. Without disable_tlbie QEMU's broadcast-tlbie exclusive work and the
        // panic's synchronous H_SIGNAL_SYS_RESET deadlock (7 of 16 runs hung).
        (
            Scenario {
                tlb_storm: true,
                ..kdump("pseries-rust-crash-during-tlb-flushes")?
            },
            Expect::Pass,
        ),
        // kexec_load --hotplug: the userspace header adopted, its FDT (no room) updated in place.
        (
            Scenario {
                load: Load::LegacyHotplug,
                dimms: 3,
                unplug: true,
                ..kdump("pseries-rust-kexec-load-hotplug-3dimms-unplug")?
            },
            Expect::Pass,
        ),
        // Negative control: kexec_load without --hotplug; crash on CPU 0 (a stale FDT without
        // the crashing CPU hangs the capture kernel), the dump must miss the DIMM.
        (
            with_udev(Scenario {
                load: Load::Legacy,
                check_events: false,
                crash_on_boot_cpu: true,
                ..kdump("pseries-rust-negative-control-kexec-load")?
            }),
            Expect::DimmMissing,
        ),
        (
            Scenario {
                dimms: 3,
                dimm_size: 512 << 20,
                memmap_on_memory: true,
                unplug: true,
                ..kdump("pseries-rust-memmap-on-memory-makedumpfile")?
            },
            Expect::Pass,
        ),
        (
            Scenario {
                contend: true,
                ..kdump("pseries-rust-kexec-lock-contention")?
            },
            Expect::Pass,
        ),
        (
            with_udev(Scenario {
                load: Load::LegacyHotplug,
                full_header: true,
                check_events: false,
                ..kdump("pseries-rust-full-header-reload")?
            }),
            Expect::Pass,
        ),
        (
            Scenario {
                crash_in_edit: true,
                ..kdump("pseries-rust-crash-in-the-middle-of-an-edit")?
            },
            Expect::Pass,
        ),
        (
            Scenario {
                storm: true,
                check_events: false,
                ..kdump("pseries-rust-storm")?
            },
            Expect::Pass,
        ),
        (
            with_udev(fadump("fadump-rust-hotplug-crash")?),
            Expect::Pass,
        ),
    ];
    // pmem (issue 13) on pseries kdump: a spapr-nvdimm, labeled namespace, info block written by
    // the host (pmem.rs InfoBlock::Host: TCG rejects the kernel's dcbstps). fadump: not covered.
    {
        use pmem::{Mode, When};
        let pm = |name: &str, mode, when| -> Result<Scenario, String> {
            Ok(Scenario {
                pmem: Some(Pmem::new(mode, when)),
                ..kdump(name)?
            })
        };
        runs.extend([
            (
                pm(
                    "pseries-rust-pmem-fsdax-before-load",
                    Mode::Fsdax,
                    When::Before,
                )?,
                Expect::Pass,
            ),
            (
                pm(
                    "pseries-rust-pmem-fsdax-after-load",
                    Mode::Fsdax,
                    When::After,
                )?,
                Expect::Pass,
            ),
            (
                pm(
                    "pseries-rust-pmem-fsdax-torn-down-after-load",
                    Mode::Fsdax,
                    When::TornDown,
                )?,
                Expect::Pass,
            ),
            (
                pm(
                    "pseries-rust-pmem-devdax-before-load",
                    Mode::Devdax,
                    When::Before,
                )?,
                Expect::Pass,
            ),
            (
                Scenario {
                    load: Load::LegacyHotplug,
                    ..pm(
                        "pseries-rust-pmem-fsdax-kexec-load-hotplug-after-load",
                        Mode::Fsdax,
                        When::After,
                    )?
                },
                Expect::Pass,
            ),
        ]);
        // The C kernel, a negative control: upstream 7.3 never lists the device vmemmap.
        if let Some(c) = &ppc.ppc_kernel_c {
            runs.push((
                Scenario {
                    kernel: c.clone(),
                    check_events: false,
                    ..pm(
                        "pseries-c-pmem-fsdax-negative-control",
                        Mode::Fsdax,
                        When::Before,
                    )?
                },
                Expect::DeviceVmemmapMissing,
            ));
        }
    }
    for how in ["endian", "cpumask"] {
        runs.push((
            Scenario {
                fadump_corrupt: Some(how.into()),
                filtered_dump: false,
                ..fadump(&format!("fadump-rust-corrupt-header-{how}-refused"))?
            },
            Expect::Pass,
        ));
    }
    Ok(runs)
}

/// The Rust kernel's pmem scenarios (q35, issue 13). On a kernel without the feature (patch 0010
/// and its handler) each fails with "dump misses the device vmemmap ... of namespace0.0" (the
/// torn-down one has nothing to miss), as the C kernel's negative control does:
/// - rust-pmem-fsdax-before-load: kexec_file load after the namespace: the load-time header;
/// - rust-pmem-fsdax-after-load: namespace created after the load: the image updated;
/// - rust-pmem-fsdax-torn-down-after-load: pfn0.0 unbound after the load: the range gone;
/// - rust-pmem-devdax-before-load: a dax0.0 namespace;
/// - rust-pmem-fsdax-kexec-load-hotplug-after-load: kexec_load --hotplug image, namespace after.
fn pmem_rust_suite(
    rust: &dyn Fn(&str) -> Scenario,
    kexec_hotplug: &std::path::Path,
    drgn: Option<&drgn::Drgn>,
) -> Vec<(Scenario, Expect)> {
    use pmem::{Mode, When};
    let with = |name: &str, mode, when| Scenario {
        pmem: Some(Pmem::new(mode, when)),
        drgn: drgn.cloned(),
        ..rust(name)
    };
    vec![
        (
            with("rust-pmem-fsdax-before-load", Mode::Fsdax, When::Before),
            Expect::Pass,
        ),
        (
            with("rust-pmem-fsdax-after-load", Mode::Fsdax, When::After),
            Expect::Pass,
        ),
        (
            with(
                "rust-pmem-fsdax-torn-down-after-load",
                Mode::Fsdax,
                When::TornDown,
            ),
            Expect::Pass,
        ),
        (
            with("rust-pmem-devdax-before-load", Mode::Devdax, When::Before),
            Expect::Pass,
        ),
        (
            Scenario {
                load: Load::LegacyHotplug,
                kexec: kexec_hotplug.to_path_buf(),
                ..with(
                    "rust-pmem-fsdax-kexec-load-hotplug-after-load",
                    Mode::Fsdax,
                    When::After,
                )
            },
            Expect::Pass,
        ),
    ]
}

/// The KUnit suites a Rust test kernel must pass at boot: the crate's own, upstream's
/// `crash_exclude_mem_range_tests` (which then test the Rust `crash_exclude_mem_range`), the
/// kernel crate's doctests, and by name the examples of the abstractions this project adds.
fn rust_kunit() -> Vec<String> {
    [
        "crash_hotplug_model",
        "crash_hotplug_elfcorehdr",
        "crash_hotplug_kernel_abstractions",
        "crash_exclude_mem_range_tests",
        "rust_doctests_kernel",
        "rust_doctest_kernel_cpuhp_rs_0",
        "rust_doctest_kernel_memory_rs_0",
        "rust_doctest_kernel_kexec_rs_0",
    ]
    .map(String::from)
    .to_vec()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Scenario {
            name,
            kernel,
            machine,
            ppc,
            fadump_corrupt,
            load,
            kunit,
            events,
            dimms,
            dimm_mib,
            memmap_on_memory,
            filtered_dump,
            unplug,
            storm,
            contend,
            full_header,
            crash_in_edit,
            edit_point,
            inject_init_failure,
            mutation,
            udevadm,
            udev_rules,
            no_crash,
            tlb_storm,
            pmem,
            pmem_when,
            pmem_capture_probe,
            no_udev,
            dump,
            out,
            kexec,
            pattern_tool,
        } => {
            let Some(userland) = ppc.for_machine(machine, &kexec, &pattern_tool) else {
                println!("machine {machine:?} needs --ppc-busybox and --ppc-userland");
                return ExitCode::FAILURE;
            };
            let ppc_udevadm = userland.tree.as_ref().map(|t| t.join("bin/udevadm"));
            let udev = match udevadm.or(ppc_udevadm.filter(|_| machine.is_ppc())) {
                Some(u) if !no_udev => Some((u, udev_rules)),
                _ => None,
            };
            let s = Scenario {
                machine,
                qemu: if machine == Machine::Fadump {
                    ppc.fadump_qemu.clone()
                } else {
                    None
                },
                userland,
                fadump_corrupt,
                udev,
                load,
                kunit_suites: kunit,
                check_events: events,
                dimms,
                dimm_size: dimm_mib << 20,
                memmap_on_memory,
                filtered_dump,
                unplug,
                storm,
                contend,
                full_header,
                crash_in_edit,
                edit_point,
                inject_init_failure,
                mutation,
                crash: !no_crash,
                tlb_storm,
                pmem: pmem.map(|mode| Pmem {
                    capture_blacklist: !pmem_capture_probe,
                    ..Pmem::new(mode, pmem_when)
                }),
                drgn: dump.drgn().ok(),
                ..Scenario::new(&name, &kernel, &kexec, &pattern_tool, &out)
            };
            exit(run_one(&x86_userland(&dump.makedumpfile, s), Expect::Pass))
        }
        Cmd::Judge {
            first,
            head,
            load,
            in_flight,
            alternating,
        } => exit(judge::judge_files(
            &first,
            &head,
            judge::x86_64(load, alternating),
            &in_flight,
        )),
        Cmd::Mutations {
            g:
                Guests {
                    k,
                    kexec_hotplug,
                    ppc,
                },
            only,
            kernel_rust_debug,
        } => {
            let mdf = k.dump.makedumpfile.clone();
            let drgn = match k.dump.drgn() {
                Ok(d) => d,
                Err(e) => {
                    println!("mutation matrix: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let Kernels {
                kernel_rust,
                out,
                kexec,
                pattern_tool,
                ..
            } = k;
            let rust = |m: &str, name: &str| Scenario {
                check_events: true,
                mutation: Some(m.into()),
                ..Scenario::new(
                    &format!("mutation-{m}-{name}"),
                    &kernel_rust,
                    &kexec,
                    &pattern_tool,
                    &out,
                )
            };
            let coverage = "coverage: online memory in the dump";
            let rows = vec![
                mutations::Row {
                    mutation: "skip_online",
                    scenario: rust("skip_online", "kexec-file-hotplug-crash"),
                    expect: coverage,
                },
                mutations::Row {
                    mutation: "skip_online",
                    scenario: Scenario {
                        storm: true,
                        check_events: false,
                        ..rust("skip_online", "storm")
                    },
                    expect: coverage,
                },
                mutations::Row {
                    mutation: "short_memsz",
                    scenario: rust("short_memsz", "kexec-file-hotplug-crash"),
                    expect: coverage,
                },
                mutations::Row {
                    mutation: "skip_offline",
                    scenario: Scenario {
                        dimms: 3,
                        unplug: true,
                        ..rust("skip_offline", "kexec-file-3dimms-unplug")
                    },
                    expect: "nothing extra: removed or offline memory absent",
                },
                mutations::Row {
                    mutation: "drop_note",
                    scenario: Scenario {
                        load: Load::LegacyHotplug,
                        kexec: kexec_hotplug.clone(),
                        ..rust("drop_note", "kexec-load-hotplug-crash")
                    },
                    expect: "elfcorehdr: one PT_NOTE per possible CPU",
                },
                mutations::Row {
                    mutation: "report_current",
                    scenario: Scenario {
                        load: Load::LegacyHotplug,
                        kexec: kexec_hotplug.clone(),
                        full_header: true,
                        check_events: false,
                        ..rust("report_current", "full-header-reload")
                    },
                    expect: "crash_hotplug value",
                },
                mutations::Row {
                    mutation: "drop_deferred",
                    scenario: Scenario {
                        contend: true,
                        kexec: kexec_hotplug.clone(),
                        ..rust("drop_deferred", "kexec-lock-contention")
                    },
                    expect: "nothing extra: removed or offline memory absent",
                },
                mutations::Row {
                    mutation: "no_window",
                    scenario: Scenario {
                        crash_in_edit: true,
                        edit_point: Some("locked".into()),
                        ..rust("no_window", "crash-with-the-lock-held-at-locked")
                    },
                    expect: "capture kernel boots",
                },
                // A device vmemmap set up after the load is not added: the dump's bytes and
                // drgn's struct pages both miss it.
                mutations::Row {
                    mutation: "skip_device_vmemmap",
                    scenario: Scenario {
                        pmem: Some(Pmem::new(pmem::Mode::Fsdax, pmem::When::After)),
                        drgn: Some(drgn.clone()),
                        ..rust("skip_device_vmemmap", "pmem-fsdax-after-load")
                    },
                    expect:
                        "pmem: device vmemmap bytes in the dump + drgn: struct pages of pmem PFNs",
                },
            ];
            let mut rows = rows;
            if let Some(debug) = &kernel_rust_debug {
                for m in ["leak", "sleep_in_atomic"] {
                    rows.push(mutations::Row {
                        mutation: m,
                        scenario: Scenario {
                            kernel: debug.clone(),
                            debug_kernel: true,
                            ..rust(m, "debug-kexec-file-hotplug-crash")
                        },
                        expect: "debug kernel: no report in either console",
                    });
                }
                // Under injected allocation failures, an image whose update failed must not read
                // as current: the fault-injection check sees crash_hotplug 1 1 after a refusal.
                rows.push(mutations::Row {
                    mutation: "report_current",
                    scenario: Scenario {
                        kernel: debug.clone(),
                        debug_kernel: true,
                        fault_injection: true,
                        check_events: false,
                        ..rust("report_current", "debug-fault-injection")
                    },
                    expect: "handler statistics",
                });
            }
            if ppc.ppc_kernel.is_some() {
                let pseries = |m: &str, name: &str| {
                    ppc_scenario(
                        &ppc,
                        Machine::Pseries,
                        &format!("mutation-{m}-{name}"),
                        &out,
                    )
                    .map(|s| Scenario {
                        mutation: Some(m.into()),
                        ..s
                    })
                };
                let more = (|| -> Result<Vec<mutations::Row>, String> {
                    Ok(vec![
                        // The capture kernel would hang on a hot-added CPU its FDT lacks: the
                        // crash runs on CPU 0, so that the FDT check itself sees the defect.
                        mutations::Row {
                            mutation: "skip_fdt_cpu",
                            scenario: Scenario {
                                crash_on_boot_cpu: true,
                                ..pseries("skip_fdt_cpu", "pseries-kexec-file")?
                            },
                            expect: "capture FDT: a CPU node per present CPU",
                        },
                        mutations::Row {
                            mutation: "skip_online",
                            scenario: pseries("skip_online", "pseries-kexec-file")?,
                            expect: coverage,
                        },
                        mutations::Row {
                            mutation: "skip_offline",
                            scenario: Scenario {
                                dimms: 3,
                                unplug: true,
                                ..pseries("skip_offline", "pseries-3dimms-unplug")?
                            },
                            expect: "nothing extra: removed or offline memory absent",
                        },
                    ])
                })();
                match more {
                    Ok(more) => rows.extend(more),
                    Err(e) => {
                        println!("mutation matrix: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let rows = rows
                .into_iter()
                .filter(|r| {
                    only.is_empty()
                        || only
                            .iter()
                            .any(|o| r.mutation.contains(o) || r.scenario.name.contains(o))
                })
                .map(|r| mutations::Row {
                    scenario: x86_userland(&mdf, r.scenario),
                    ..r
                })
                .collect();
            exit(mutations::run(rows))
        }
        Cmd::Campaign {
            g:
                Guests {
                    k,
                    kexec_hotplug,
                    ppc,
                },
            machine,
            runs,
            seed,
            exact,
        } => {
            let run_seeds = if exact {
                vec![seed]
            } else {
                campaign::seeds(seed, runs)
            };
            let label = format!("{machine:?}").to_lowercase();
            let make = |i: usize, p: &campaign::Plan| -> Result<Scenario, String> {
                let name = format!("campaign-{label}-{i}-{:016x}", p.seed);
                let base = match machine {
                    Machine::Q35 => Scenario {
                        kexec: if p.load == Load::LegacyHotplug {
                            kexec_hotplug.clone()
                        } else {
                            k.kexec.clone()
                        },
                        ..Scenario::new(&name, &k.kernel_rust, &k.kexec, &k.pattern_tool, &k.out)
                    },
                    Machine::Pseries => ppc_scenario(&ppc, machine, &name, &k.out)?,
                    Machine::Fadump => {
                        return Err("the campaign runs on q35 and pseries (kdump)".into())
                    }
                };
                Ok(Scenario {
                    storm: true,
                    storm_plan: Some(p.storm),
                    check_events: false,
                    load: p.load,
                    dimms: p.dimms,
                    unplug: p.unplug,
                    ..base
                })
            };
            if let Err(e) = make(0, &campaign::plan(seed)) {
                println!("campaign: {e}");
                return ExitCode::FAILURE;
            }
            exit(campaign::run(&label, seed, run_seeds, &|i, p| {
                x86_userland(
                    &k.dump.makedumpfile,
                    make(i, p).unwrap_or_else(|_| unreachable!("checked above")),
                )
            }))
        }
        Cmd::Demo { k } => {
            let base = |name: &str, i: scenario::Implementation| {
                let kernel = match i {
                    scenario::Implementation::Rust => &k.kernel_rust,
                    scenario::Implementation::C => &k.kernel_c,
                };
                let label = match i {
                    scenario::Implementation::Rust => "rust",
                    scenario::Implementation::C => "c",
                };
                x86_userland(
                    &k.dump.makedumpfile,
                    Scenario {
                        implementation: i,
                        ..Scenario::new(
                            &format!("demo-{name}-{label}"),
                            kernel,
                            &k.kexec,
                            &k.pattern_tool,
                            &k.out,
                        )
                    },
                )
            };
            exit(demo::run(&base))
        }
        Cmd::Bench { k, rounds, ranges } => match bench::run(
            &k.kernel_c,
            &k.kernel_rust,
            &k.kexec,
            &k.pattern_tool,
            &k.out,
            rounds,
            &ranges,
        ) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                println!("bench failed: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Suite {
            g:
                Guests {
                    k,
                    kexec_hotplug,
                    ppc,
                },
            udevadm,
            udev_rules,
            storms,
            only,
            kernel_rust_debug,
        } => {
            let mdf = k.dump.makedumpfile.clone();
            let drgn = match k.dump.drgn() {
                Ok(d) => Some(d),
                Err(e) => {
                    println!("FAIL suite: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let Kernels {
                kernel_c,
                kernel_rust,
                out,
                kexec,
                pattern_tool,
                ..
            } = k;
            let udev = Some((udevadm.clone(), udev_rules.clone()));
            let c = |name: &str| Scenario::new(name, &kernel_c, &kexec, &pattern_tool, &out);
            let rust = |name: &str| Scenario {
                check_events: true,
                ..Scenario::new(name, &kernel_rust, &kexec, &pattern_tool, &out)
            };
            let mut runs = vec![
                (
                    Scenario {
                        kunit_suites: vec!["crash_exclude_mem_range_tests".into()],
                        drgn: drgn.clone(),
                        ..c("c-kexec-file-hotplug-crash")
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        load: Load::Legacy,
                        ..c("c-negative-control-kexec-load")
                    },
                    Expect::DimmMissing,
                ),
                (
                    Scenario {
                        kunit_suites: rust_kunit(),
                        crash: false,
                        debugfs_fuzz: Some(0x5eed),
                        ..rust("rust-events")
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        udev: udev.clone(),
                        drgn: drgn.clone(),
                        ..rust("rust-kexec-file-hotplug-crash")
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        dimms: 3,
                        unplug: true,
                        ..rust("rust-kexec-file-3dimms-unplug")
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        load: Load::LegacyHotplug,
                        kexec: kexec_hotplug.clone(),
                        dimms: 3,
                        unplug: true,
                        ..rust("rust-kexec-load-hotplug-3dimms-unplug")
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        load: Load::Legacy,
                        kexec: kexec_hotplug.clone(),
                        check_events: false,
                        udev: udev.clone(),
                        ..rust("rust-negative-control-kexec-load")
                    },
                    Expect::DimmMissing,
                ),
                (
                    Scenario {
                        crash_in_edit: true,
                        ..rust("rust-crash-in-the-middle-of-an-edit")
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        load: Load::LegacyHotplug,
                        kexec: kexec_hotplug.clone(),
                        udev: udev.clone(),
                        full_header: true,
                        // Its own counters are checked in the full-header phase (the CPU cycles
                        // that read the header's size add events the generic check does not expect).
                        check_events: false,
                        ..rust("rust-full-header-reload")
                    },
                    Expect::Pass,
                ),
            ];
            // memmap_on_memory: the struct pages of each hot-added block live in the block; the
            // dump must hold them (every byte of the DIMMs) or makedumpfile cannot filter it.
            // 256 MiB DIMMs (2 blocks each) keep the guest small; the last one is removed.
            runs.push((
                Scenario {
                    dimms: 4,
                    dimm_size: 256 << 20,
                    memmap_on_memory: true,
                    filtered_dump: true,
                    unplug: true,
                    ..rust("rust-memmap-on-memory-makedumpfile")
                },
                Expect::Pass,
            ));
            runs.push((
                Scenario {
                    contend: true,
                    kexec: kexec_hotplug.clone(),
                    ..rust("rust-kexec-lock-contention")
                },
                Expect::Pass,
            ));
            // A panic at every point at which the handler holds the kexec lock gets a dump: the
            // pause (the "store" point is the scenario above) at each of the others.
            for point in ["locked", "index", "notes", "unmap"] {
                runs.push((
                    Scenario {
                        crash_in_edit: true,
                        edit_point: Some(point.into()),
                        load: if point == "notes" {
                            Load::LegacyHotplug
                        } else {
                            Load::File
                        },
                        kexec: kexec_hotplug.clone(),
                        ..rust(&format!("rust-crash-with-the-lock-held-at-{point}"))
                    },
                    Expect::Pass,
                ));
            }
            // A registration that fails at boot leaves crash_hotplug reading 0 (issue 11,
            // finding 9: it read 1 with no CPU handler).
            runs.push((
                Scenario {
                    inject_init_failure: true,
                    check_events: false,
                    crash: false,
                    ..rust("rust-registration-failure-reads-0")
                },
                Expect::Pass,
            ));
            for i in 1..=storms {
                runs.push((
                    Scenario {
                        storm: true,
                        check_events: false,
                        load: if i % 2 == 0 {
                            Load::LegacyHotplug
                        } else {
                            Load::File
                        },
                        kexec: if i % 2 == 0 {
                            kexec_hotplug.clone()
                        } else {
                            kexec.clone()
                        },
                        ..rust(&format!("rust-storm-{i}"))
                    },
                    Expect::Pass,
                ));
            }
            // pmem (issue 13): the C kernel, a negative control: upstream 7.3 never lists a
            // namespace's device-backed vmemmap in the dump; it must fail in check (a).
            runs.push((
                Scenario {
                    pmem: Some(Pmem::new(pmem::Mode::Fsdax, pmem::When::Before)),
                    drgn: drgn.clone(),
                    ..c("c-pmem-fsdax-negative-control")
                },
                Expect::DeviceVmemmapMissing,
            ));
            runs.extend(pmem_rust_suite(&rust, &kexec_hotplug, drgn.as_ref()));
            if let Some(debug) = &kernel_rust_debug {
                let again: Vec<(Scenario, Expect)> = runs
                    .iter()
                    .filter(|(s, e)| {
                        s.machine == Machine::Q35
                            && s.kernel == kernel_rust
                            && matches!(e, Expect::Pass)
                    })
                    .map(|(s, e)| {
                        let name = format!("debug-{}", s.name);
                        (
                            Scenario {
                                kernel: debug.clone(),
                                debug_kernel: true,
                                workdir: out.join(&name),
                                name,
                                ..s.clone()
                            },
                            *e,
                        )
                    })
                    .collect();
                runs.extend(again);
                // Allocation failures injected in the handler's paths (debug kernel only).
                runs.push((
                    Scenario {
                        kernel: debug.clone(),
                        debug_kernel: true,
                        fault_injection: true,
                        // Its own counts: refused events are its subject.
                        check_events: false,
                        ..rust("debug-rust-fault-injection")
                    },
                    Expect::Pass,
                ));
            }
            match ppc_suite(&ppc, &udev_rules, &out) {
                Ok(more) => runs.extend(more),
                Err(e) => {
                    println!("FAIL pseries scenarios: {e}");
                    return ExitCode::FAILURE;
                }
            }
            runs.retain(|(s, _)| only.is_empty() || only.iter().any(|o| s.name.contains(o)));
            let runs: Vec<(Scenario, Expect)> = runs
                .into_iter()
                .map(|(s, e)| (x86_userland(&mdf, s), e))
                .collect();
            let (mut passed, mut failed) = (0, 0);
            for (s, e) in &runs {
                if run_one(s, *e) {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            println!("scenarios: {passed} passed, {failed} failed");
            exit(failed == 0)
        }
    }
}
