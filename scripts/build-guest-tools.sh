#!/usr/bin/env bash
# Build the guest tools (tests/guest-tools: crashhp-pattern, crashhp-hotplug-bench) statically linked
# for the guest's machine: the guest initramfs has no libc.
#   usage: scripts/build-guest-tools.sh [x86_64|ppc64le]
# Output (the last line): the directory holding both binaries,
# $CRASHHP_CACHE/guest-tools-target/<target triple>/release. The target directory lives in the cache,
# outside the clone, so a fresh clone builds incrementally.
# x86_64: the host's std with +crt-static (a static-pie: no interpreter, no shared libraries).
# ppc64le: rustup has no rust-std for powerpc64le here, so std is built from the toolchain's
# rust-src (Debian's rust-src of the same release, linked into the sysroot) with cargo's
# -Z build-std (RUSTC_BOOTSTRAP=1 on the stable toolchain), linked by powerpc64le-linux-gnu-gcc
# against the static glibc of libc6-dev-ppc64el-cross (scripts/setup.sh installs both). std's own
# dependencies come from crates.io, pinned by rust-src's library/Cargo.lock (--locked holds for it as
# for the workspace's Cargo.lock), downloaded once into cargo's registry cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck disable=SC1091 # lib.sh: phase, die, CRASHHP_CACHE
. "$here/lib.sh"

arch=${1:-x86_64}
cache=${CRASHHP_CACHE:?}
build_std=()
case "$arch" in
  x86_64) triple=x86_64-unknown-linux-gnu machine='Advanced Micro Devices X86-64' ;;
  ppc64le)
    triple=powerpc64le-unknown-linux-gnu machine=PowerPC64
    command -v powerpc64le-linux-gnu-gcc >/dev/null || die "powerpc64le-linux-gnu-gcc missing: run scripts/setup.sh"
    [ -f /usr/powerpc64le-linux-gnu/lib/libc.a ] || die "static ppc64el glibc missing (libc6-dev-ppc64el-cross): run scripts/setup.sh"
    lib="$(rustc --print sysroot)/lib/rustlib/src/rust/library"
    [ -f "$lib/Cargo.lock" ] || die "$lib/Cargo.lock missing: -Z build-std needs rust-src (scripts/setup.sh)"
    build_std=(-Z 'build-std=std,panic_abort')
    export RUSTC_BOOTSTRAP=1 \
      CARGO_TARGET_POWERPC64LE_UNKNOWN_LINUX_GNU_LINKER=powerpc64le-linux-gnu-gcc \
      CC_powerpc64le_unknown_linux_gnu=powerpc64le-linux-gnu-gcc ;;
  *) die "arch must be x86_64 or ppc64le" ;;
esac
target="$cache/guest-tools-target"
out="$target/$triple/release"

# static_exe BIN: dies unless BIN is an executable ELF for $machine that needs no loader and no
# shared library. lib.sh's static_elf also forbids a dynamic segment, but x86_64 +crt-static makes a
# static-pie, which has one (it relocates itself); a DT_NEEDED entry is what a shared library needs.
static_exe() {
  local hdr dyn
  [ -x "$1" ] || die "$1: missing or not executable"
  hdr=$(readelf -hlW "$1") || die "readelf $1 failed"
  dyn=$(readelf -dW "$1") || die "readelf -d $1 failed"
  if grep -qE '\bINTERP\b' <<<"$hdr"; then die "$1 is not static: it has a program interpreter"; fi
  if grep -q '(NEEDED)' <<<"$dyn"; then die "$1 is not static: it needs $(grep '(NEEDED)' <<<"$dyn" | tr -s ' ' | cut -d' ' -f6- | tr '\n' ' ')"; fi
  grep -q "Machine: *$machine\$" <<<"$hdr" || die "$1 is not a $machine binary"
}

phase "building the guest tools ($arch, static)"
t0=$(date +%s)
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked \
   -p crashhp-guest-tools --target "$triple" --target-dir "$target" "${build_std[@]}") ||
  die "guest tools build failed ($arch)"
for t in crashhp-pattern crashhp-hotplug-bench; do static_exe "$out/$t"; done
phase "guest tools ($arch) ready in $(( $(date +%s) - t0 )) s"
echo "$out"
