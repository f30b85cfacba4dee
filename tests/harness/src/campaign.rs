//! Crashes at random instants, by the hundred: each run boots a guest, hot-adds one to three
//! DIMMs (removing the last of two or three), loads kdump by kexec_file or kexec_load
//! `--hotplug`, starts a hotplug storm (the first DIMM's memory blocks offline and online, cpu1
//! off and on) and crashes at a random instant of it; the dump is judged strictly, by the whole
//! scenario's checks (the whole-dump RAM judge, the storm's block states, notes, makedumpfile).
//!
//! Every choice comes from the run's seed (`plan`, fastrand), printed with each failure, so that
//! `crashhp campaign --seed S --exact` replays it.

use std::time::{Duration, Instant};

use crate::{
    error::Error,
    scenario::{self, Failure, Load, Report, Scenario, StormPlan},
};

/// One run's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The run's seed.
    pub seed: u64,
    /// kexec_file or kexec_load `--hotplug`.
    pub load: Load,
    /// DIMMs hot-added.
    pub dimms: u32,
    /// The last DIMM offlined and removed before the storm (two or three DIMMs).
    pub unplug: bool,
    /// When the crash comes and where the storm starts.
    pub storm: StormPlan,
}

/// The choices of the run with `seed`: the crash 50 ms to 3 s into the storm.
pub fn plan(seed: u64) -> Plan {
    let mut r = fastrand::Rng::with_seed(seed);
    let load = if r.bool() {
        Load::File
    } else {
        Load::LegacyHotplug
    };
    let dimms = r.u32(1..=3);
    Plan {
        seed,
        load,
        dimms,
        unplug: dimms > 1,
        storm: StormPlan {
            crash_after_ms: r.u64(50..3000),
            first_block: r.usize(..64),
        },
    }
}

/// The seeds of `runs` runs from the campaign's seed.
pub fn seeds(seed: u64, runs: u32) -> Vec<u64> {
    let mut r = fastrand::Rng::with_seed(seed);
    (0..runs).map(|_| r.u64(..)).collect()
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed.
    Valid,
    /// The machine stopped answering (no capture boot, a command that never returned).
    Hang(String),
    /// The dump failed a check (or the capture kernel did not make one).
    Invalid(String),
    /// The run failed before the crash (a hotplug step, the harness): no dump to judge. Not a
    /// valid run either: the campaign fails on it, but the table does not call it a bad dump.
    BeforeCrash(String),
}

/// Classifies a run's result.
pub fn classify(res: &Result<Report, Box<Failure>>) -> Outcome {
    match res {
        Ok(_) => Outcome::Valid,
        Err(f) => match &f.error {
            Error::Timeout { .. } => Outcome::Hang(format!("in phase '{}': {}", f.phase, f.error)),
            e if !f.crashed => Outcome::BeforeCrash(format!("in phase '{}': {e}", f.phase)),
            e => Outcome::Invalid(format!("in phase '{}': {e}", f.phase)),
        },
    }
}

/// Runs the campaign over the runs' seeds (`seeds()`, or one seed to replay): `make` gives the
/// scenario of run `i` for its plan. Prints a line per run and the table; true if every dump was
/// valid.
pub fn run(
    machine: &str,
    seed: u64,
    run_seeds: Vec<u64>,
    make: &dyn Fn(usize, &Plan) -> Scenario,
) -> bool {
    let t = Instant::now();
    let mut results = Vec::new();
    for (i, s) in run_seeds.into_iter().enumerate() {
        let p = plan(s);
        let sc = make(i, &p);
        let t1 = Instant::now();
        let res = scenario::run(&sc);
        let out = classify(&res);
        let secs = t1.elapsed().as_secs_f64();
        match &out {
            Outcome::Valid => {
                println!(
                    "campaign {machine} run {i}: seed {s:#018x} ({:?}, {} DIMMs{}, crash at {} ms): valid dump ({secs:.1} s)",
                    p.load,
                    p.dimms,
                    if p.unplug { ", last removed" } else { "" },
                    p.storm.crash_after_ms
                );
                // The artifacts of a valid run are not needed (hundreds of runs).
                let _ = std::fs::remove_dir_all(&sc.workdir);
            }
            Outcome::Hang(m) | Outcome::Invalid(m) | Outcome::BeforeCrash(m) => {
                if let Err(f) = &res {
                    f.report.print(&sc.name);
                    println!("--- last console lines of {}:\n{}", sc.name, f.console_tail);
                }
                println!(
                    "campaign {machine} run {i}: seed {s:#018x} ({:?}, {} DIMMs, crash at {} ms): {} {m} ({secs:.1} s)",
                    p.load,
                    p.dimms,
                    p.storm.crash_after_ms,
                    match out {
                        Outcome::Hang(_) => "HANG",
                        Outcome::BeforeCrash(_) => "FAILED BEFORE THE CRASH",
                        _ => "INVALID",
                    }
                );
            }
        }
        results.push((s, p, out));
    }
    print_table(machine, seed, &results, t.elapsed());
    results.iter().all(|(_, _, o)| *o == Outcome::Valid)
}

fn print_table(machine: &str, seed: u64, results: &[(u64, Plan, Outcome)], took: Duration) {
    let valid = results.iter().filter(|r| r.2 == Outcome::Valid).count();
    let hangs = results
        .iter()
        .filter(|r| matches!(r.2, Outcome::Hang(_)))
        .count();
    let before = results
        .iter()
        .filter(|r| matches!(r.2, Outcome::BeforeCrash(_)))
        .count();
    let file = results.iter().filter(|r| r.1.load == Load::File).count();
    println!(
        "campaign table ({machine}, seed {seed:#x}, {:.0} s):",
        took.as_secs_f64()
    );
    println!("  runs            {}", results.len());
    println!(
        "  load paths      {file} kexec_file, {} kexec_load --hotplug",
        results.len() - file
    );
    println!("  valid dumps     {valid}");
    println!(
        "  invalid dumps   {}",
        results.len() - valid - hangs - before
    );
    println!("  hangs           {hangs}");
    println!("  failed before the crash (no dump to judge) {before}");
    for (s, p, o) in results {
        if let Outcome::Hang(m) | Outcome::Invalid(m) | Outcome::BeforeCrash(m) = o {
            println!(
                "  FAILED seed {s:#018x} ({:?}, crash at {} ms; replay: --seed {s:#x} --exact): {m}",
                p.load, p.storm.crash_after_ms
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_reproducible_and_spread() {
        let s = seeds(7, 400);
        assert_eq!(s, seeds(7, 400));
        assert_ne!(s[0], s[1]);
        let plans: Vec<Plan> = s.iter().map(|&x| plan(x)).collect();
        assert_eq!(plans[3], plan(s[3]));
        let file = plans.iter().filter(|p| p.load == Load::File).count();
        assert!((150..250).contains(&file), "{file} of 400 by kexec_file");
        for d in 1..=3 {
            assert!(plans.iter().any(|p| p.dimms == d && p.unplug == (d > 1)));
        }
        let at: Vec<u64> = plans.iter().map(|p| p.storm.crash_after_ms).collect();
        assert!(at.iter().all(|ms| (50..3000).contains(ms)));
        assert!(at.iter().any(|ms| *ms < 300) && at.iter().any(|ms| *ms > 2700));
    }

    #[test]
    fn timeouts_are_hangs_and_check_failures_invalid() {
        let fail = |error| {
            Err(Box::new(Failure {
                phase: "crash + capture boot".into(),
                error,
                console_tail: String::new(),
                report: Report::default(),
                crashed: true,
            }))
        };
        let hang = fail(Error::Timeout {
            what: "the capture boot's /init".into(),
            after: Duration::from_secs(60),
        });
        assert!(matches!(classify(&hang), Outcome::Hang(m) if m.contains("capture boot")));
        let bad = fail(Error::Verify(crate::error::VerifyError::NoCapture(
            "no vmcore".into(),
        )));
        assert!(matches!(classify(&bad), Outcome::Invalid(m) if m.contains("no vmcore")));
        let early = Err(Box::new(Failure {
            phase: "hotplug storm".into(),
            error: Error::Unexpected("`echo 1 > online` exited -1".into()),
            console_tail: String::new(),
            report: Report::default(),
            crashed: false,
        }));
        assert!(matches!(classify(&early), Outcome::BeforeCrash(m) if m.contains("storm")));
        assert_eq!(classify(&Ok(Report::default())), Outcome::Valid);
    }
}
