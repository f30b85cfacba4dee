//! The demo: the same scenarios on the Rust implementation and on upstream's C one, in one run,
//! and a report of what differs, side by side. Every line of the report is a check: the Rust
//! side must be right and the C side must show the defect the line names, else the demo fails
//! (a line that stopped being true is not shown as a difference).

use std::time::Instant;

use crate::{
    error::{
        Error,
        VerifyError, //
    },
    scenario::{
        self,
        Failure,
        Implementation,
        Report,
        Scenario, //
    },
};

/// One case: a scenario run on both kernels.
struct Case {
    /// What the line shows.
    what: &'static str,
    /// The scenario's name (the implementation is added).
    name: &'static str,
    /// The scenario's settings over the base one.
    tweak: fn(Scenario) -> Scenario,
}

/// The outcome of one run.
type Outcome = Result<Report, Box<Failure>>;

/// A side's cell and whether it is as the line claims.
struct Side {
    text: String,
    holds: bool,
}

fn side(text: impl Into<String>, holds: bool) -> Side {
    Side {
        text: text.into(),
        holds,
    }
}

/// What a run shows, in a few words, when it did not end as expected.
fn unexpected(o: &Outcome) -> String {
    match o {
        Ok(_) => "passed every check".into(),
        Err(f) => format!("failed in '{}': {}", f.phase, f.error),
    }
}

/// Whether the run failed because the dump lists memory that was offline or removed.
fn lists_removed(o: &Outcome) -> Option<String> {
    match o {
        Err(f) => match &f.error {
            Error::Verify(
                e @ (VerifyError::RemovedMemoryPresent { .. } | VerifyError::RamExtra { .. }),
            ) => Some(e.to_string()),
            _ => None,
        },
        Ok(_) => None,
    }
}

/// The removed DIMM: the Rust dump must pass (the judge requires the DIMM absent), the C dump
/// must still list it.
fn judge_unplug(rust: &Outcome, c: &Outcome) -> (Side, Side) {
    let r = match rust {
        Ok(_) => side("absent: the dump is the system at the crash", true),
        Err(_) => side(unexpected(rust), false),
    };
    let c = match lists_removed(c) {
        Some(e) => side(format!("still listed ({e})"), true),
        None => side(unexpected(c), false),
    };
    (r, c)
}

/// A panic while an update holds the kexec lock: Rust must take a valid dump, C none.
fn judge_panic(rust: &Outcome, c: &Outcome) -> (Side, Side) {
    let r = match rust {
        Ok(_) => side("dump taken and valid", true),
        Err(_) => side(unexpected(rust), false),
    };
    let c = match c {
        Err(f)
            if matches!(f.error, Error::Verify(VerifyError::NoCaptureKernel(_))) && f.crashed =>
        {
            side(
                "no dump: the panic found the kexec lock busy and reset the machine",
                true,
            )
        }
        _ => side(unexpected(c), false),
    };
    (r, c)
}

/// The notifier chain's cost per memory event: both measured, Rust below C.
fn judge_cost(rust: &Outcome, c: &Outcome) -> (Side, Side) {
    let chain = |o: &Outcome| match o {
        Ok(r) => r.chain,
        Err(f) => f.report.chain,
    };
    match (chain(rust), chain(c)) {
        (Some((rn, r)), Some((cn, c))) => {
            let cheaper = r < c;
            (
                side(format!("{r:.0} ns (median of {rn} events)"), cheaper),
                side(
                    format!(
                        "{c:.0} ns (median of {cn} events){}",
                        if cheaper {
                            format!(", {:.1}x Rust's", c / r.max(1.0))
                        } else {
                            String::new()
                        }
                    ),
                    cheaper,
                ),
            )
        }
        (r, c) => (
            side(
                r.map_or_else(|| unexpected(rust), |(_, v)| format!("{v:.0} ns")),
                false,
            ),
            side(
                c.map_or_else(|| "not measured".into(), |(_, v)| format!("{v:.0} ns")),
                false,
            ),
        ),
    }
}

/// An event while the kexec lock is busy: Rust reads 0 until it applied the event, then 1, and
/// the dump is right; C reads 0 while the lock is busy and 1 once it is free although it dropped
/// the event, and the dump still lists the offline block.
fn judge_busy(rust: &Outcome, c: &Outcome) -> (Side, Side) {
    let busy = |o: &Outcome| match o {
        Ok(r) => r.busy.clone(),
        Err(f) => f.report.busy.clone(),
    };
    let r = match (rust, busy(rust)) {
        (Ok(_), Some((during, after))) if during == "0 0" && after == "1 1" => side(
            "read 0 while the event waited, 1 once applied; the dump lacks the block",
            true,
        ),
        (_, Some((during, after))) => side(
            format!(
                "read '{during}' then '{after}'; {}",
                if rust.is_ok() {
                    "dump right"
                } else {
                    "dump wrong"
                }
            ),
            false,
        ),
        (_, None) => side(unexpected(rust), false),
    };
    let c = match (lists_removed(c), busy(c)) {
        // 0 while the lock is busy: `crash_check_hotplug_support()` fails its trylock too.
        (Some(e), Some((during, after))) if during == "0 0" && after == "1 1" => side(
            format!(
                "read 0 while the lock was busy, then 1 although the event was dropped; the dump \
                 still lists the block ({e})"
            ),
            true,
        ),
        (_, Some((during, after))) => side(
            format!("read '{during}' then '{after}'; {}", unexpected(c)),
            false,
        ),
        (_, None) => side(unexpected(c), false),
    };
    (r, c)
}

/// Runs the demo; prints the report. Returns whether every line holds.
pub fn run(base: &dyn Fn(&str, Implementation) -> Scenario) -> bool {
    type Judge = fn(&Outcome, &Outcome) -> (Side, Side);
    let cases: Vec<(Case, Judge)> = vec![
        (
            Case {
                what: "a removed DIMM in the dump",
                name: "unplug",
                tweak: |s| Scenario {
                    dimms: 2,
                    unplug: true,
                    probe_chain: true,
                    ..s
                },
            },
            judge_unplug,
        ),
        (
            Case {
                what: "a panic in the middle of an update",
                name: "panic-in-update",
                tweak: |s| Scenario {
                    crash_in_edit: true,
                    ..s
                },
            },
            judge_panic,
        ),
        (
            Case {
                what: "crash_hotplug with the kexec lock busy",
                name: "busy-lock",
                tweak: |s| Scenario {
                    busy_lock: true,
                    ..s
                },
            },
            judge_busy,
        ),
    ];
    let mut lines: Vec<(&str, Side, Side)> = Vec::new();
    let mut unplug = None;
    for (case, judge) in &cases {
        let mut outcomes = Vec::new();
        for i in [Implementation::Rust, Implementation::C] {
            let s = (case.tweak)(base(case.name, i));
            println!("==> demo: {} ({i:?}): scenario {}", case.what, s.name);
            let t = Instant::now();
            let o = scenario::run(&s);
            println!(
                "    {} in {:.0} s",
                match &o {
                    Ok(_) => "passed".to_string(),
                    Err(f) => format!("failed in '{}': {}", f.phase, f.error),
                },
                t.elapsed().as_secs_f64()
            );
            outcomes.push(o);
        }
        let (rust, c) = (&outcomes[0], &outcomes[1]);
        let (r, cside) = judge(rust, c);
        lines.push((case.what, r, cside));
        if unplug.is_none() {
            unplug = Some(judge_cost(rust, c));
        }
    }
    if let Some((r, c)) = unplug {
        lines.insert(1, ("the handler's cost per memory event", r, c));
    }
    println!("demo: the same scenario on each implementation (x86_64 q35, kexec_file_load)");
    println!(
        "  {:<40} | {:<52} | {:<52} | check",
        "what", "Rust (kernel/crash_hotplug)", "C (upstream kernel/crash_core.c)"
    );
    let mut held = 0;
    for (what, r, c) in &lines {
        let ok = r.holds && c.holds;
        held += usize::from(ok);
        println!(
            "  {:<40} | {:<52} | {:<52} | {}",
            what,
            r.text,
            c.text,
            if ok { "holds" } else { "FAILS" }
        );
    }
    println!("demo: {held} of {} differences hold", lines.len());
    held == lines.len()
}

#[cfg(test)]
mod tests {
    use super::{
        judge_busy,
        judge_cost,
        judge_panic,
        judge_unplug,
        Outcome, //
    };
    use crate::{
        error::{
            Error,
            VerifyError, //
        },
        scenario::{
            Failure,
            Report, //
        },
    };

    fn failed(error: Error, crashed: bool, report: Report) -> Outcome {
        Err(Box::new(Failure {
            phase: "verify".into(),
            error,
            console_tail: String::new(),
            report,
            crashed,
        }))
    }

    fn removed() -> Error {
        Error::Verify(VerifyError::RemovedMemoryPresent {
            start: 0x1_4000_0000,
            end: 0x1_7fff_ffff,
        })
    }

    fn busy(during: &str, after: &str) -> Report {
        Report {
            busy: Some((during.into(), after.into())),
            ..Report::default()
        }
    }

    #[test]
    fn each_line_holds_only_when_both_sides_show_what_it_claims() {
        // The removed DIMM: Rust passes, C lists it.
        let (r, c) = judge_unplug(
            &Ok(Report::default()),
            &failed(removed(), true, Report::default()),
        );
        assert!(r.holds && c.holds, "{} / {}", r.text, c.text);
        // C passing too: the difference is gone, the line fails.
        let (_, c) = judge_unplug(&Ok(Report::default()), &Ok(Report::default()));
        assert!(!c.holds);
        // C failing for another reason is not the difference either.
        let other = failed(
            Error::Verify(VerifyError::NoCapture("x".into())),
            true,
            Report::default(),
        );
        assert!(!judge_unplug(&Ok(Report::default()), &other).1.holds);

        // The panic during an update: C must have crashed and started no capture kernel.
        let none = failed(
            Error::Verify(VerifyError::NoCaptureKernel("x".into())),
            true,
            Report::default(),
        );
        let (r, c) = judge_panic(&Ok(Report::default()), &none);
        assert!(r.holds && c.holds);
        let before = failed(
            Error::Verify(VerifyError::NoCaptureKernel("x".into())),
            false,
            Report::default(),
        );
        assert!(!judge_panic(&Ok(Report::default()), &before).1.holds);
        // A capture kernel that started and died is not "no dump because of the lock".
        let died = failed(
            Error::Verify(VerifyError::NoCapture("x".into())),
            true,
            Report::default(),
        );
        assert!(!judge_panic(&Ok(Report::default()), &died).1.holds);
        assert!(!judge_panic(&none, &none).0.holds);

        // The busy lock: Rust 0 then 1 and a right dump; C 0 while busy, 1 after, the block
        // listed.
        let (r, c) = judge_busy(
            &Ok(busy("0 0", "1 1")),
            &failed(removed(), true, busy("0 0", "1 1")),
        );
        assert!(r.holds && c.holds, "{} / {}", r.text, c.text);
        assert!(
            !judge_busy(&Ok(busy("1 1", "1 1")), &Ok(busy("0 0", "1 1")))
                .0
                .holds
        );
        assert!(
            !judge_busy(
                &Ok(busy("0 0", "1 1")),
                &failed(removed(), true, busy("0 0", "0 0"))
            )
            .1
            .holds
        );
        // C reading 1 while the lock is busy is not what the line says either.
        assert!(
            !judge_busy(
                &Ok(busy("0 0", "1 1")),
                &failed(removed(), true, busy("1 1", "1 1"))
            )
            .1
            .holds
        );

        // The cost: both measured, Rust cheaper.
        let cost = |ns: f64| Report {
            chain: Some((16, ns)),
            ..Report::default()
        };
        let (r, c) = judge_cost(
            &Ok(cost(20_000.0)),
            &failed(removed(), true, cost(700_000.0)),
        );
        assert!(r.holds && c.holds && c.text.contains("35.0x"), "{}", c.text);
        let (r, _) = judge_cost(&Ok(cost(900_000.0)), &Ok(cost(700_000.0)));
        assert!(!r.holds);
        assert!(!judge_cost(&Ok(Report::default()), &Ok(cost(1.0))).0.holds);
    }
}
