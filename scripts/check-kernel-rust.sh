#!/usr/bin/env bash
# Kernel-Rust lint gate for crash_hotplug's crate: the Rust-variant build runs with CLIPPY=1, and
# its log must hold no warning from kernel/crash_hotplug/; rustfmt with the kernel's settings must
# find nothing to change in our files.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
log="$CRASHHP_CACHE/out/x86_64/build-rust.log"
[ -f "$log" ] || die "no Rust-variant build log ($log): run scripts/build-kernel.sh rust"
if grep -n 'crash_hotplug/' "$log" | grep -iE 'warning|error'; then
  die "the kernel build reported the diagnostics above for kernel/crash_hotplug"
fi
rustfmt --check --edition 2021 --config-path "$repo/.rustfmt.toml" "$repo"/src/*.rs "$repo"/arch/*/*.rs
echo "kernel Rust: no clippy/rustc diagnostics in kernel/crash_hotplug, rustfmt clean"
