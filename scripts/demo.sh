#!/usr/bin/env bash
# The demo: set-up if needed, build the kernel, boot it under QEMU, load kdump, hot-add a DIMM and
# a CPU, crash, verify the dump from the host, and print a report with phase timings.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
cd "$repo"
variant=${CRASHHP_DEMO_VARIANT:-c}
phase "setup"; "$repo/scripts/setup.sh"
phase "kernel ($variant implementation)"; "$repo/scripts/build-kernel.sh" "$variant"
phase "harness"; cargo build -q --release --locked -p crashhp-harness
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked \
  -p crashhp-guest-tools --target x86_64-unknown-linux-gnu
phase "scenario"
"$repo/target/release/crashhp" scenario --name "demo-$variant" --load file \
  --kernel "$CRASHHP_CACHE/out/x86_64/bzImage-$variant" --out "$repo/target/artifacts" \
  --pattern-tool "$repo/target/x86_64-unknown-linux-gnu/release/crashhp-pattern"
phase "demo done: artifacts (console log, elfcorehdr, vmcore headers, dmesg) in target/artifacts/demo-$variant"
