#!/usr/bin/env bash
# Kernel-Rust lint gate for crash_hotplug's crate and its rust/kernel abstractions: the Rust-variant
# build runs with CLIPPY=1, and its log must hold no warning from kernel/crash_hotplug/ or our
# rust/kernel/ files; rustfmt with the kernel's settings must find nothing to change in them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
# usage: check-kernel-rust.sh [ARCH...]   (default: x86_64)
[ "$#" -gt 0 ] || set -- x86_64
# Our files in the tree: the crate and the rust/kernel abstractions it adds.
ours="crash_hotplug/$(for f in "$repo"/rust/kernel/*.rs; do printf '|rust/kernel/%s' "$(basename "$f")"; done)"
for arch in "$@"; do
  # The test kernel, and on x86_64 the kernel as shipped (no KUnit, no test hooks: code gated on
  # them must not leave it with dead code or an unused import).
  variants=(rust); [ "$arch" != x86_64 ] || variants+=(rust-release)
  for variant in "${variants[@]}"; do
    log="$CRASHHP_CACHE/out/$arch/build-$variant.log"
    [ -f "$log" ] || die "no $arch $variant build log ($log): run scripts/build-kernel.sh $variant $arch"
    # A diagnostic names its file on the line after "warning:"/"error:"; look at both.
    if grep -n -B1 -E -- "--> .*($ours)" "$log" | grep -iE 'warning|error'; then
      die "the $arch kernel build reported the diagnostics above for our files"
    fi
    if grep -n -E "$ours" "$log" | grep -iE 'warning|error'; then
      die "the $arch kernel build reported the diagnostics above for our files"
    fi
  done
done
rustfmt --check --edition 2021 --config-path "$repo/.rustfmt.toml" "$repo"/src/*.rs "$repo"/arch/*/*.rs \
  "$repo"/rust/kernel/*.rs
echo "kernel Rust ($*): no clippy/rustc diagnostics in kernel/crash_hotplug or rust/kernel/{$(cd "$repo/rust/kernel" && ls | paste -sd,)}, rustfmt clean"
