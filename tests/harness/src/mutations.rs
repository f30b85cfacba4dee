//! The mutation matrix: for each mutation of the test kernel (`CONFIG_CRASH_HOTPLUG_TEST_HOOKS`,
//! debugfs `crash_hotplug/mutation`), a scenario that must fail, and fail in the check that names
//! the defect the mutation makes. A mutation that survives (the scenario passes), or that another
//! check catches, fails the matrix. Printed as a table: mutation, scenario, expected check, seen.

use std::time::Instant;

use crate::{
    error::{Error, VerifyError},
    scenario::{self, Failure, Scenario},
};

/// The check a scenario failure names, as the matrix reports it.
pub fn check_of(f: &Failure) -> String {
    match &f.error {
        Error::Verify(
            VerifyError::DimmMissing { .. }
            | VerifyError::DimmPartlyCovered { .. }
            | VerifyError::RamMissing { .. }
            | VerifyError::InFlightPartial { .. },
        ) => "coverage: online memory in the dump".into(),
        Error::Verify(VerifyError::RemovedMemoryPresent { .. } | VerifyError::RamExtra { .. }) => {
            "nothing extra: removed or offline memory absent".into()
        }
        Error::Verify(VerifyError::LoadsOverlap { .. }) => "no overlapping PT_LOADs".into(),
        Error::Verify(VerifyError::NoteCount { .. }) => {
            "elfcorehdr: one PT_NOTE per possible CPU".into()
        }
        Error::Verify(VerifyError::PatternMismatch { .. }) => "pattern read back".into(),
        Error::Verify(VerifyError::Notes(_)) => "dump notes: one per online CPU".into(),
        Error::Verify(VerifyError::Events(_)) => "handler statistics".into(),
        Error::Verify(VerifyError::CaptureFdt(_)) => {
            "capture FDT: a CPU node per present CPU".into()
        }
        Error::Verify(VerifyError::NoCapture(_) | VerifyError::NoCaptureKernel(_)) => {
            "capture kernel boots".into()
        }
        Error::Verify(VerifyError::CrashCpu(_)) => "the crash runs on the pinned CPU".into(),
        Error::Verify(VerifyError::KernelReports(_)) => {
            "debug kernel: no report in either console".into()
        }
        Error::Verify(VerifyError::Pmem(failed)) => failed
            .iter()
            .map(|e| match e {
                VerifyError::DrgnStructPage { .. } => "drgn: struct pages of pmem PFNs",
                _ => "pmem: device vmemmap bytes in the dump",
            })
            .collect::<Vec<_>>()
            .join(" + "),
        Error::Unexpected(m) if m.contains("crash_hotplug") => "crash_hotplug value".into(),
        _ if f.phase == "crash + capture boot" => "capture kernel boots".into(),
        _ => format!("other (phase '{}')", f.phase),
    }
}

/// One row of the matrix.
pub struct Row {
    /// The mutation written to debugfs.
    pub mutation: &'static str,
    /// The scenario run with it.
    pub scenario: Scenario,
    /// The check that must fail.
    pub expect: &'static str,
}

/// Runs every row; prints the table. Returns whether every mutation was killed by its check.
pub fn run(rows: Vec<Row>) -> bool {
    let mut table = Vec::new();
    let mut all = true;
    for row in rows {
        let t = Instant::now();
        println!(
            "==> mutation {}: scenario {}",
            row.mutation, row.scenario.name
        );
        let seen = match scenario::run(&row.scenario) {
            Ok(_) => "none: the scenario passed".to_string(),
            Err(f) => {
                println!("    failed in phase '{}': {}", f.phase, f.error);
                check_of(&f)
            }
        };
        let killed = seen == row.expect;
        all &= killed;
        table.push((
            row.mutation,
            row.scenario.name.clone(),
            row.expect,
            seen,
            if killed { "killed" } else { "SURVIVED" },
            t.elapsed().as_secs_f64(),
        ));
    }
    println!("mutation matrix (mutation | scenario | check that must fail | check that failed | verdict):");
    for (m, s, e, seen, v, secs) in &table {
        println!("  {m:<15}| {s:<40}| {e:<48}| {seen:<48}| {v} ({secs:.0} s)");
    }
    let killed = table.iter().filter(|r| r.4 == "killed").count();
    println!(
        "mutations: {killed} of {} killed by their check",
        table.len()
    );
    all
}
