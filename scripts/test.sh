#!/usr/bin/env bash
# Every test of crash_hotplug, from a fresh clone: set-up (idempotent), host checks and tests,
# both kernels (C and Rust implementation selected) with kernel-Rust lint checks, and the QEMU suite.
# The last line is "test: N passed, M failed"; the exit status is 0 only if nothing failed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
cd "$repo"
passed=0 failed=0 failed_names=()
stage() { # stage NAME CMD...: run, record, keep going
  local name=$1; shift
  phase "$name"
  local t0; t0=$(date +%s)
  if "$@"; then
    passed=$((passed + 1)); echo "    stage ok: $name ($(( $(date +%s) - t0 )) s)"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "    STAGE FAILED: $name ($(( $(date +%s) - t0 )) s)"
  fi
}
finish() {
  [ "${#failed_names[@]}" = 0 ] || echo "failed stages: ${failed_names[*]}"
  echo "test: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}

stage "setup" "$repo/scripts/setup.sh" || true
# The resolution of this run's set-up, for the record (scripts/pins.sh says how pins work).
[ ! -f "$CRASHHP_CACHE/pins.lock" ] || { echo "pins.lock (name arch suite version sha256 route):"; sed 's/^/  /' "$CRASHHP_CACHE/pins.lock"; }
stage "setup: static kexec-tools with --hotplug" "$repo/scripts/build-kexec-tools.sh" || true
[ "$failed" = 0 ] || finish
# Would a fresh machine's set-up still get every pinned input today? (Index look-ups, small downloads.)
stage "setup: every pinned input still obtainable (what moved, what serves it)" "$repo/scripts/check-pins.sh"
# The fallback itself: set-up in a scratch cache with pinned revisions treated as gone.
stage "setup: fallback when pinned revisions vanish (scratch cache)" "$repo/scripts/check-pin-fallback.sh"
stage "host: cargo fmt --check" cargo fmt --all -- --check
stage "host: cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -q -- -D warnings
stage "host: cargo test" cargo test --workspace --locked
# The fadump parsers take bytes a crashed kernel and the firmware left: libFuzzer, 60 s from seeds.
stage "host: fuzz the fadump crash info header and register save area (60 s)" "$repo/scripts/fuzz.sh" 60 fadump_header
stage "kernel: build x86_64 (C implementation)" "$repo/scripts/build-kernel.sh" c
stage "kernel: build x86_64 (Rust implementation)" "$repo/scripts/build-kernel.sh" rust
stage "kernel: build ppc64le pseries (Rust implementation)" "$repo/scripts/build-kernel.sh" rust ppc64le
stage "kernel: Rust lints (CLIPPY=1 warnings, rustfmt)" "$repo/scripts/check-kernel-rust.sh" x86_64 ppc64le
kc="$CRASHHP_CACHE/out/x86_64/bzImage-c" kr="$CRASHHP_CACHE/out/x86_64/bzImage-rust"
if [ -f "$kc" ] && [ -f "$kr" ]; then
  cargo build -q --release --locked -p crashhp-harness || true
  # The guest tool runs in the guest's initramfs, which has no libc: link it statically.
  RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked \
    -p crashhp-guest-tools --target x86_64-unknown-linux-gnu || true
  stage "qemu: scenario suite" "$repo/target/release/crashhp" suite \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" \
    --kexec-hotplug "$CRASHHP_CACHE/kexec-tools-2.0.29/kexec" \
    --pattern-tool "$repo/target/x86_64-unknown-linux-gnu/release/crashhp-pattern" \
    --udevadm "$CRASHHP_CACHE/udev/bin/udevadm" --udev-rules "$repo/udev"
  # The mutation matrix: each mutation of the test kernel (CONFIG_CRASH_HOTPLUG_MUTATIONS) must make
  # its scenario fail in the check that names the defect; a survivor fails the stage.
  stage "qemu: mutation matrix (every mutation killed by its check)" "$repo/target/release/crashhp" mutations \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" \
    --kexec-hotplug "$CRASHHP_CACHE/kexec-tools-2.0.29/kexec" \
    --pattern-tool "$repo/target/x86_64-unknown-linux-gnu/release/crashhp-pattern"
  # Benchmark: prints numbers (per-event handler cost, C vs Rust, at ~12 and ~256 RAM ranges);
  # it fails if it cannot run or if the work it timed was not done (events not all applied, or an
  # update error logged), never on a figure.
  stage "bench: in-guest handler cost per memory event, C vs Rust" "$repo/target/release/crashhp" bench \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" --rounds 3 --ranges 12,256 \
    --pattern-tool "$repo/target/x86_64-unknown-linux-gnu/release/crashhp-pattern"
else
  failed=$((failed + 1)); failed_names+=("qemu: scenario suite (no kernels)")
fi
# pseries under TCG, Rust implementation: kexec_file_load (the crash FDT gains the hot-added core by a
# crash-consistent block switch) and kexec_load --hotplug (kexec-tools' FDT has no room for that: the
# node is added in place under the kexec lock). Both crash on the hot-added CPU, so the capture
# kernel boots there only if its FDT lists it; pattern, DIMM coverage and /cpus checked.
kp="$CRASHHP_CACHE/out/ppc64le/vmlinux-rust"
if [ -f "$kp" ]; then
  stage "qemu ppc64le: kexec_file, DIMM + CPU core, crash on the new CPU" "$repo/scripts/ppc-smoke.sh" "$kp" file
  stage "qemu ppc64le: kexec_load --hotplug, DIMM + CPU core, crash on the new CPU" "$repo/scripts/ppc-smoke.sh" "$kp" load
  # Every CPU add to a kexec_file image switches FDT blocks crash-consistently, not only the first:
  # three cores one after another, crash on the last; no add may fall back to the in-place update.
  stage "qemu ppc64le: kexec_file, three cores one after another, each add crash-consistent" \
    "$repo/scripts/ppc-smoke.sh" "$kp" cores
  # Negative control: kexec_load without --hotplug; the checks must see that the dump lacks the DIMM.
  stage "qemu ppc64le: negative control, kexec_load without --hotplug (stale dump detected)" \
    "$repo/scripts/ppc-smoke.sh" "$kp" stale
  # memmap_on_memory (=force: with 64 KiB pages an LMB's memmap is smaller than a pageblock and =1
  # has no effect): the struct pages of the hot-added DIMM are in the dump, an offlined LMB is not,
  # and makedumpfile -l -d 31 (static 1.7.7) filters the dump in the capture kernel.
  stage "qemu ppc64le: memmap_on_memory, DIMM with its struct pages in the dump, makedumpfile -l -d 31" \
    "$repo/scripts/ppc-smoke.sh" "$kp" memmap
  # fadump (QEMU 11.1.3 from the trixie chroot set up by setup.sh): registered at boot, a DIMM and a
  # CPU core hot-added without re-registration, crash, firmware-assisted capture boot of the same
  # kernel; vmcore notes, DIMM coverage and the pattern checked on the host.
  stage "qemu ppc64le: fadump, DIMM + CPU core hot-added after registration" \
    "$repo/scripts/fadump-smoke.sh" "$kp" vof hotplug
  # Negative controls of the capture kernel's header check: the first kernel corrupts the crash info
  # header it registered (byte-swapped magic; a cpumask size of another NR_CPUS) just before the
  # crash; the capture kernel must refuse the dump with that reason and export no /proc/vmcore.
  stage "qemu ppc64le: fadump negative controls, corrupt crash info header refused (endian, cpumask)" \
    bash -c 'FADUMP_CORRUPT=endian "$0" "$1" vof nohotplug && FADUMP_CORRUPT=cpumask "$0" "$1" vof nohotplug' \
    "$repo/scripts/fadump-smoke.sh" "$kp"
else
  failed=$((failed + 1)); failed_names+=("qemu ppc64le (no kernel)")
fi
finish
