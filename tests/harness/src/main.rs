//! `crashhp`: the crash_hotplug QEMU harness.
//!
//! It builds the guests' initramfs, boots QEMU (TCG), hot-adds memory and CPUs over QMP, drives the
//! guest through its serial console, crashes it, lets the capture kernel boot, brings the dump's
//! headers and the bytes it needs to the host and verifies them with goblin.

mod console;
mod dump;
mod error;
mod initramfs;
mod qemu;
mod scenario;

use std::{path::PathBuf, process::ExitCode, time::Instant};

use clap::{Parser, Subcommand};

use crate::{
    error::{Error, VerifyError},
    scenario::{Load, Scenario},
};

#[derive(Parser)]
#[command(about = "QEMU harness for crash_hotplug")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and print its report.
    Scenario {
        /// Name (artifact directory under --out).
        #[arg(long)]
        name: String,
        /// bzImage to boot.
        #[arg(long)]
        kernel: PathBuf,
        /// How kdump is loaded.
        #[arg(long, value_enum, default_value = "file")]
        load: Load,
        /// KUnit suites that must pass at boot.
        #[arg(long)]
        kunit: Vec<String>,
        /// Check the Rust handler's debugfs event counters.
        #[arg(long)]
        events: bool,
        /// Stop after hotplug instead of crashing.
        #[arg(long)]
        no_crash: bool,
        /// Artifact root.
        #[arg(long)]
        out: PathBuf,
        /// kexec binary for the guest.
        #[arg(long, default_value = "kexec")]
        kexec: PathBuf,
    },
    /// The foundation suite: the C-backed scenario, its negative control, and the Rust events
    /// scenario. Prints one line per scenario and a closing count.
    Suite {
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
    },
}

/// What a scenario is expected to do.
#[derive(Clone, Copy)]
enum Expect {
    Pass,
    /// Fail verification because the dump lacks the hot-added DIMM.
    DimmMissing,
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
        (Ok(report), Expect::DimmMissing) => {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Scenario {
            name,
            kernel,
            load,
            kunit,
            events,
            no_crash,
            out,
            kexec,
        } => {
            let s = Scenario {
                workdir: scenario::workdir(&out, &name),
                name,
                kernel,
                kexec,
                load,
                kunit_suites: kunit,
                check_events: events,
                crash: !no_crash,
            };
            if run_one(&s, Expect::Pass) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Suite {
            kernel_c,
            kernel_rust,
            out,
            kexec,
        } => {
            let base = |name: &str, kernel: &PathBuf| Scenario {
                name: name.into(),
                workdir: scenario::workdir(&out, name),
                kernel: kernel.clone(),
                kexec: kexec.clone(),
                load: Load::File,
                kunit_suites: vec![],
                check_events: false,
                crash: true,
            };
            let runs = [
                (
                    Scenario {
                        kunit_suites: vec!["crash_exclude_mem_range_tests".into()],
                        ..base("c-kexec-file-hotplug-crash", &kernel_c)
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        load: Load::Legacy,
                        ..base("c-negative-control-kexec-load", &kernel_c)
                    },
                    Expect::DimmMissing,
                ),
                (
                    Scenario {
                        kunit_suites: vec![
                            "crash_hotplug_model".into(),
                            "crash_exclude_mem_range_tests".into(),
                        ],
                        check_events: true,
                        crash: false,
                        ..base("rust-events", &kernel_rust)
                    },
                    Expect::Pass,
                ),
                (
                    Scenario {
                        check_events: true,
                        ..base("rust-kexec-file-hotplug-crash", &kernel_rust)
                    },
                    Expect::Pass,
                ),
            ];
            let (mut passed, mut failed) = (0, 0);
            for (s, e) in &runs {
                if run_one(s, *e) {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            println!("scenarios: {passed} passed, {failed} failed");
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
