#!/usr/bin/env bash
# Every test of crash_hotplug, from a fresh clone: set-up (idempotent), host checks and tests,
# both kernels (C and Rust implementation selected) with kernel-Rust lint checks, and the QEMU suite.
# The last line is "test: N passed, M failed"; the exit status is 0 only if nothing failed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
cd "$repo"
passed=0 failed=0 failed_names=() failed_logs=()
stage_logs=$(mktemp -d /tmp/crashhp-stages.XXXXXX)
stage() { # stage NAME CMD...: run, record, keep going
  local name=$1; shift
  phase "$name"
  local t0; t0=$(date +%s)
  local log="$stage_logs/$((passed + failed)).log"
  # The stage's output goes to the run's output as before, and to a file: the digest at the end.
  local ok=0
  "$@" > >(tee "$log") 2>&1 || ok=$?
  wait # (bash >= 5.1 waits for the last process substitution) tee has written the whole log
  if [ "$ok" = 0 ]; then
    passed=$((passed + 1)); echo "    stage ok: $name ($(( $(date +%s) - t0 )) s)"
  else
    failed=$((failed + 1)); failed_names+=("$name"); failed_logs+=("$log")
    echo "    STAGE FAILED: $name ($(( $(date +%s) - t0 )) s)"
  fi
}
finish() {
  # Why each failed stage failed, where the last lines of the run (all CI keeps) show it: the
  # lines that name a failure, at most 40 per stage.
  local i
  for i in "${!failed_names[@]}"; do
    echo "why '${failed_names[$i]}' failed:"
    grep -E 'FAILED|SURVIVED|failed in phase|error(\[|:)|panicked|^mutation matrix|^  [a-z_]+ *\|' \
      "${failed_logs[$i]:-/dev/null}" 2>/dev/null | grep -v '^    ok:' | tail -n 40 | sed 's/^/  | /'
  done
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
# The crash FDT /cpus editor against a rebuild: arbitrary add sequences, every end state must read as
# the tree written from scratch (issue 14, item 4, the FDT half).
stage "host: fuzz the crash FDT /cpus editor against a rebuild (60 s)" "$repo/scripts/fuzz.sh" 60 fdt_cpus
# The elfcorehdr edit engine against a rebuild and the weak-ordering judge: arbitrary memory, device
# vmemmap, CPU, adoption and capacity events; after each, the header must equal a from-scratch build
# and every state a crash could read must be valid and old-or-new (issue 14, item 4, the ELF half).
stage "host: fuzz the elfcorehdr edit engine against a rebuild (60 s)" "$repo/scripts/fuzz.sh" 60 elf_edits
stage "kernel: build x86_64 (C implementation)" "$repo/scripts/build-kernel.sh" c
stage "kernel: build x86_64 (Rust implementation)" "$repo/scripts/build-kernel.sh" rust
# The debug kernel (issue 14): the Rust implementation under lockdep, KASAN, KFENCE, kmemleak and
# fault injection; every x86_64 Rust scenario runs on it too (debug-<name>), and the
# fault-injection scenario. The non-debug kernels stay what the benchmark and the main suite use.
stage "kernel: build x86_64 debug (Rust; lockdep, KASAN, KFENCE, kmemleak, fault injection)" "$repo/scripts/build-kernel.sh" rust-debug
stage "kernel: build x86_64 as shipped (Rust; no KUnit, no test hooks)" "$repo/scripts/build-kernel.sh" rust-release
stage "kernel: build ppc64le pseries (Rust implementation)" "$repo/scripts/build-kernel.sh" rust ppc64le
# The upstream C implementation on pseries: the negative control of the pseries pmem scenarios.
stage "kernel: build ppc64le pseries (C implementation)" "$repo/scripts/build-kernel.sh" c ppc64le
stage "kernel: Rust lints (CLIPPY=1 warnings, rustfmt)" "$repo/scripts/check-kernel-rust.sh" x86_64 ppc64le
# The patch series as a maintainer gets it: every patch signed off, applied with git am to a
# pristine 7.3 tree, checkpatch --strict clean (scripts/bisect-series.sh builds after each patch:
# too slow for this command).
stage "series: export, git am onto pristine Linux 7.3, checkpatch --strict" "$repo/scripts/check-series.sh"
kc="$CRASHHP_CACHE/out/x86_64/bzImage-c" kr="$CRASHHP_CACHE/out/x86_64/bzImage-rust"
kp="$CRASHHP_CACHE/out/ppc64le/vmlinux-rust"
if [ -f "$kc" ] && [ -f "$kr" ] && [ -f "$kp" ]; then
  cargo build -q --release --locked -p crashhp-harness || true
  # The guest tools run in the guests' initramfs, which has no libc: linked statically, for
  # x86_64 and for ppc64le (std built from rust-src: scripts/build-guest-tools.sh).
  gt=$("$repo/scripts/build-guest-tools.sh" x86_64 | tail -n1) || gt=/nonexistent
  gtp=$("$repo/scripts/build-guest-tools.sh" ppc64le | tail -n1) || gtp=/nonexistent
  kxp=$("$repo/scripts/build-kexec-tools.sh" ppc64le | tail -n1) || kxp=/nonexistent
  # The x86_64 guests' makedumpfile: static 1.7.7 from the pinned tarball (bookworm's 1.7.2 takes
  # a 7.3 kernel's slab pages for free ones and -d 31 drops them).
  mdf=$("$repo/scripts/build-makedumpfile.sh" x86_64 | tail -n1) || mdf=/nonexistent
  # The pseries kernel is copied: a build while the suite runs must not change it underneath.
  mkdir -p "$repo/target/kernels" && cp "$kp" "$repo/target/kernels/vmlinux-rust-ppc64le"
  # (If its build failed, the pseries C negative control fails on the missing file: never skipped.)
  cp "$CRASHHP_CACHE/out/ppc64le/vmlinux-c" "$repo/target/kernels/vmlinux-c-ppc64le" || true
  ppc_c=(--ppc-kernel-c "$repo/target/kernels/vmlinux-c-ppc64le")
  # x86_64 q35, pseries kdump and pseries fadump (QEMU 11.1.3 from the trixie chroot set up by
  # setup.sh), one harness: every machine's scenarios, then the mutation matrix.
  ppc=(--ppc-kernel "$repo/target/kernels/vmlinux-rust-ppc64le" --ppc-kexec "$kxp"
    --ppc-pattern-tool "$gtp/crashhp-pattern"
    --ppc-busybox "$CRASHHP_CACHE/ppc64el/busybox/bin/busybox"
    --ppc-userland "$CRASHHP_CACHE/ppc64el/userland/tree"
    --fadump-qemu "$repo/scripts/qemu-system-ppc64-fadump" "${ppc_c[@]}")
  stage "qemu: scenario suite (x86_64 q35, pseries kdump, pseries fadump)" "$repo/target/release/crashhp" suite \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" \
    --kexec-hotplug "$CRASHHP_CACHE/kexec-tools-2.0.29/kexec" \
    --pattern-tool "$gt/crashhp-pattern" --drgn-site "$CRASHHP_CACHE/drgn/site" --makedumpfile "$mdf" \
    --kernel-rust-debug "$CRASHHP_CACHE/out/x86_64/bzImage-rust-debug" \
    --udevadm "$CRASHHP_CACHE/udev/bin/udevadm" --udev-rules "$repo/udev" "${ppc[@]}"
  # The mutation matrix: each mutation of the test kernel (CONFIG_CRASH_HOTPLUG_TEST_HOOKS) must make
  # its scenario fail in the check that names the defect; a survivor fails the stage.
  stage "qemu: mutation matrix (every mutation killed by its check)" "$repo/target/release/crashhp" mutations \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" \
    --kexec-hotplug "$CRASHHP_CACHE/kexec-tools-2.0.29/kexec" \
    --pattern-tool "$gt/crashhp-pattern" --drgn-site "$CRASHHP_CACHE/drgn/site" --makedumpfile "$mdf" \
    --kernel-rust-debug "$CRASHHP_CACHE/out/x86_64/bzImage-rust-debug" "${ppc[@]}"
  # Crashes at random instants of hotplug storms, each dump judged strictly (issue 14): a small
  # campaign per kdump machine, fixed seeds (a failure prints its own seed to replay).
  stage "qemu: campaign, crashes at random instants (x86_64 q35)" "$repo/target/release/crashhp" campaign \
    --machine q35 --runs 4 --seed 0x5eed0001 \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" \
    --kexec-hotplug "$CRASHHP_CACHE/kexec-tools-2.0.29/kexec" \
    --pattern-tool "$gt/crashhp-pattern" --makedumpfile "$mdf" "${ppc[@]}"
  stage "qemu: campaign, crashes at random instants (pseries kdump)" "$repo/target/release/crashhp" campaign \
    --machine pseries --runs 2 --seed 0x5eed0002 \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" \
    --kexec-hotplug "$CRASHHP_CACHE/kexec-tools-2.0.29/kexec" \
    --pattern-tool "$gt/crashhp-pattern" "${ppc[@]}"
  # Benchmark: prints numbers (per-event handler cost, C vs Rust, at ~12 and ~256 RAM ranges);
  # it fails if it cannot run or if the work it timed was not done (events not all applied, or an
  # update error logged), never on a figure.
  stage "bench: in-guest handler cost per memory event, C vs Rust" "$repo/target/release/crashhp" bench \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" --rounds 3 --ranges 12,256 \
    --pattern-tool "$gt/crashhp-pattern"
  # The demo (scripts/demo.sh's run): the same scenarios on the Rust and the C implementation,
  # what differs side by side; each line a check.
  stage "demo: Rust and C side by side" "$repo/target/release/crashhp" demo \
    --kernel-c "$kc" --kernel-rust "$kr" --out "$repo/target/artifacts" \
    --pattern-tool "$gt/crashhp-pattern" --makedumpfile "$mdf"
else
  failed=$((failed + 1)); failed_names+=("qemu: scenario suite (a kernel is missing)")
fi
finish
