#!/usr/bin/env bash
# The demo: the same scenarios on this project's Rust implementation and on upstream's C one, in
# one run, and a report of what differs side by side (a removed DIMM, a panic in the middle of an
# update, the handler's cost per event, crash_hotplug with the kexec lock busy). Each line is a
# check: the demo fails if a difference it shows does not hold. Set-up and kernels as needed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
cd "$repo"
phase "setup"; "$repo/scripts/setup.sh"
phase "kernels (Rust and C implementations, x86_64)"
"$repo/scripts/build-kernel.sh" rust
"$repo/scripts/build-kernel.sh" c
phase "harness and guest tools"
cargo build -q --release --locked -p crashhp-harness
gt=$("$repo/scripts/build-guest-tools.sh" x86_64 | tail -n1)
mdf=$("$repo/scripts/build-makedumpfile.sh" x86_64 | tail -n1)
phase "demo"
"$repo/target/release/crashhp" demo \
  --kernel-rust "$CRASHHP_CACHE/out/x86_64/bzImage-rust" --kernel-c "$CRASHHP_CACHE/out/x86_64/bzImage-c" \
  --out "$repo/target/artifacts" --pattern-tool "$gt/crashhp-pattern" --makedumpfile "$mdf"
phase "demo done: each run's console, headers and dump in target/artifacts/demo-*"
