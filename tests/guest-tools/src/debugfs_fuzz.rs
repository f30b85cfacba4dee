//! `crashhp-debugfs-fuzz SEED PER_FILE`: bad writes to every writable file of
//! `/sys/kernel/debug/crash_hotplug` (issue 14, item 5). Each file's syntax is documented in the
//! admin guide; this program holds the same rules (`accepts`), generates inputs the rules refuse
//! (sizes 0 to 1 MiB, signs, overflow, hex, inner spaces, non-UTF-8, NUL, random bytes) and
//! checks that each write fails with `EINVAL` and leaves what the file reads unchanged. Inputs the
//! rules accept are not written (they would change the state on purpose) but counted.
//!
//! Prints one line per file (`<file>: N bad writes, N EINVAL, value unchanged ...`) and exits 1
//! after the first violation, which it names. Whether the kernel warned is the harness's check
//! (the console).

use std::{
    fs::{self, OpenOptions},
    io::{ErrorKind, Write},
    process::ExitCode,
};

const DIR: &str = "/sys/kernel/debug/crash_hotplug";
/// `EINVAL`.
const EINVAL: i32 = 22;

/// A writable file and what it accepts.
struct Knob {
    name: &'static str,
    /// The kernel's read buffer (longer writes are refused).
    max_len: usize,
    syntax: Syntax,
}

enum Syntax {
    /// A decimal `usize` (`str::parse`, after `str::trim`).
    Number,
    /// A decimal at most this.
    NumberUpTo(u64),
    /// One of these words (trimmed).
    Word(&'static [&'static str]),
}

const KNOBS: [Knob; 5] = [
    Knob {
        name: "max_slots",
        max_len: 24,
        syntax: Syntax::Number,
    },
    Knob {
        name: "edit_delay_ms",
        max_len: 24,
        syntax: Syntax::NumberUpTo(60_000),
    },
    Knob {
        name: "edit_delay_point",
        max_len: 16,
        syntax: Syntax::Word(&["locked", "index", "notes", "store", "unmap"]),
    },
    Knob {
        name: "hold_lock_ms",
        max_len: 24,
        syntax: Syntax::NumberUpTo(60_000),
    },
    Knob {
        name: "mutation",
        max_len: 24,
        syntax: Syntax::Word(&[
            "none",
            "skip_online",
            "skip_offline",
            "short_memsz",
            "drop_note",
            "report_current",
            "drop_deferred",
            "no_window",
            "skip_fdt_cpu",
            "skip_device_vmemmap",
            "leak",
            "sleep_in_atomic",
        ]),
    },
];

/// Whether the kernel accepts `input` for `k` (the documented syntax).
fn accepts(k: &Knob, input: &[u8]) -> bool {
    if input.len() > k.max_len {
        return false;
    }
    let Ok(text) = std::str::from_utf8(input) else {
        return false;
    };
    let t = text.trim();
    match k.syntax {
        Syntax::Number => t.parse::<usize>().is_ok(),
        Syntax::NumberUpTo(max) => t.parse::<u64>().is_ok_and(|v| v <= max),
        Syntax::Word(words) => words.contains(&t),
    }
}

/// Inputs every file gets: the classic bad ones.
fn classics() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        " ",
        "\n",
        "-1",
        "-0x1",
        "0x10",
        "1e3",
        "1 2",
        "18446744073709551616",
        "99999999999999999999999",
        "60001",
        "4294967296",
        "nan",
        "none ",
        "locked\0",
        "\0",
        "mutation",
        "skip_online,",
        "STORE",
        "+-1",
        "١٢",
        "9\u{a0}9",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(vec![0xff, 0xfe, b'1']);
    v.push(vec![b'7'; 25]);
    v.push(vec![b' '; 4096]);
    v.push(vec![b'1'; 65536]);
    v.push(vec![b'a'; 1 << 20]);
    v
}

/// A random input: digits, signs, words and bytes of random lengths.
fn random_input(r: &mut fastrand::Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789+- \t\nxabcdefklmnoprstuvw_,.";
    let len = match r.usize(..8) {
        0 => r.usize(25..4121),
        1 => r.usize(..3),
        _ => r.usize(..30),
    };
    (0..len)
        .map(|_| {
            if r.usize(..8) == 0 {
                r.u8(..)
            } else {
                ALPHABET[r.usize(..ALPHABET.len())]
            }
        })
        .collect()
}

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))
}

/// Writes `input` in one write(2); the errno it failed with, or 0.
fn write(path: &str, input: &[u8]) -> Result<i32, String> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("opening {path}: {e}"))?;
    match f.write(input) {
        Ok(_) => Ok(0),
        Err(e) if e.kind() == ErrorKind::Interrupted => Err(format!("{path}: interrupted")),
        Err(e) => Ok(e.raw_os_error().unwrap_or(-1)),
    }
}

fn shown(input: &[u8]) -> String {
    let s = String::from_utf8_lossy(&input[..input.len().min(40)]);
    format!("{s:?} ({} bytes)", input.len())
}

fn fuzz(k: &Knob, r: &mut fastrand::Rng, per_file: usize) -> Result<String, String> {
    let path = format!("{DIR}/{}", k.name);
    let before = read(&path)?;
    let (mut written, mut einval, mut skipped) = (0, 0, 0);
    let inputs = classics()
        .into_iter()
        .chain((0..per_file).map(|_| random_input(r)));
    for input in inputs {
        if accepts(k, &input) {
            skipped += 1;
            continue;
        }
        written += 1;
        let errno = write(&path, &input)?;
        if errno != EINVAL {
            return Err(format!(
                "{}: {} {}, documented: EINVAL",
                k.name,
                shown(&input),
                if errno == 0 {
                    "accepted".to_string()
                } else {
                    format!("refused with errno {errno}")
                }
            ));
        }
        einval += 1;
        let after = read(&path)?;
        if after != before {
            return Err(format!(
                "{}: {} refused but the file now reads {:?} (was {:?})",
                k.name,
                shown(&input),
                after.trim(),
                before.trim()
            ));
        }
    }
    Ok(format!(
        "{}: {written} bad writes, {einval} EINVAL, value unchanged ({:?}); {skipped} valid inputs not written",
        k.name,
        before.trim()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(seed), Some(per_file)) = (
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: crashhp-debugfs-fuzz SEED PER_FILE");
        return ExitCode::from(2);
    };
    let mut r = fastrand::Rng::with_seed(seed);
    for k in &KNOBS {
        match fuzz(k, &mut r, per_file) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("VIOLATION {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_match_the_kernel_parsers() {
        let num = &KNOBS[0];
        for ok in ["5", " 7\n", "+5", "18446744073709551615"] {
            assert!(accepts(num, ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "-1",
            "0x10",
            "1 2",
            "18446744073709551616",
            "7777777777777777777777777",
        ] {
            assert!(!accepts(num, bad.as_bytes()), "{bad}");
        }
        let delay = &KNOBS[1];
        assert!(accepts(delay, b"60000") && !accepts(delay, b"60001"));
        let point = &KNOBS[2];
        assert!(accepts(point, b"unmap\n") && !accepts(point, b"unmap2"));
        assert!(
            !accepts(point, b"                 store"),
            "longer than the buffer"
        );
        assert!(accepts(&KNOBS[4], b"skip_device_vmemmap"));
    }

    #[test]
    fn random_inputs_are_reproducible_and_mostly_invalid() {
        let gen = |seed: u64| {
            let mut r = fastrand::Rng::with_seed(seed);
            (0..500).map(|_| random_input(&mut r)).collect::<Vec<_>>()
        };
        assert_eq!(gen(3), gen(3));
        assert_ne!(gen(3), gen(5));
        let valid = gen(3).iter().filter(|i| accepts(&KNOBS[0], i)).count();
        assert!(valid < 100, "{valid} of 500 valid");
    }
}
