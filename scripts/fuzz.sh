#!/usr/bin/env bash
# Fuzz the pure core's parsers of untrusted input with cargo-fuzz (libFuzzer), for a fixed time.
#   usage: scripts/fuzz.sh [SECONDS] [TARGET]   (default 60 s, fadump_header)
# cargo-fuzz is installed from crates.io at a pinned version into $CRASHHP_CACHE (keyed by the
# version), never into ~/.cargo. It runs on the machine's stable toolchain with `-s none` (no
# sanitizer: the target is safe Rust, so a bug shows as a panic or a failed assertion, which
# libFuzzer reports as a crash). The corpus starts from fuzz/seeds/<target> (valid inputs written
# as a PAPR firmware and a ppc64le kernel would) and lives in target/, so every run starts clean.
# A crash fails the script and leaves the input in fuzz/artifacts/<target>/.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
secs=${1:-60}
target=${2:-fadump_header}
CARGO_FUZZ_VER='0.13.1'
root="$CRASHHP_CACHE/cargo-fuzz-$CARGO_FUZZ_VER"
if [ ! -x "$root/bin/cargo-fuzz" ]; then
  phase "installing cargo-fuzz $CARGO_FUZZ_VER"
  rm -rf "$root.tmp"
  cargo install -q --locked cargo-fuzz --version "=$CARGO_FUZZ_VER" --root "$root.tmp" ||
    die "cargo install cargo-fuzz failed"
  rm -rf "$root"; mv "$root.tmp" "$root"
fi
export PATH="$root/bin:$PATH"
cd "$repo/fuzz"
(cargo fmt --check) || die "fuzz/: cargo fmt --check"
phase "building fuzz target $target"
cargo fuzz build -s none "$target" 2>&1 | tail -n 1
corpus="$repo/target/fuzz-corpus/$target"
rm -rf "$corpus"; mkdir -p "$corpus"
cp "$repo/fuzz/seeds/$target"/* "$corpus/"
phase "fuzzing $target for $secs s"
log="$repo/target/fuzz-$target.log"
if cargo fuzz run -s none "$target" "$corpus" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  echo "fuzz $target: no crash in $secs s (corpus $(ls "$corpus" | wc -l) inputs)"
else
  tail -n 40 "$log"
  die "fuzz $target found a crash (input in fuzz/artifacts/$target/)"
fi
