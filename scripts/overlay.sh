#!/usr/bin/env bash
# Place crash_hotplug into a Linux 7.3 tree: copy Kconfig, Kbuild and the Rust sources to
# kernel/crash_hotplug/ and the rust/kernel abstractions to rust/kernel/, apply patches/*.patch,
# then the test-only patches/test/*.patch (hooks for the suite's kernels; not part of the exported
# series). Idempotent: unchanged files keep their mtimes (so a rebuild recompiles only what
# changed), and the patch series is re-applied only when it changed.
#   usage: scripts/overlay.sh <linux-7.3-tree>
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
tree=${1:?usage: overlay.sh <linux tree>}
[ -f "$tree/kernel/crash_core.c" ] || die "$tree is not a Linux tree"

# 1. The subsystem's own files (new files only, never upstream ones).
dst="$tree/kernel/crash_hotplug"
mkdir -p "$dst"
rsync -r --checksum --delete --exclude '*.o' --exclude '.*.cmd' --exclude '*.d' \
  "$repo/Kconfig" "$repo/Kbuild" "$repo/src" "$repo/arch" "$dst/"

# 1b. The rust/kernel abstractions the subsystem uses (new files; patches/ adds them to lib.rs).
rsync --checksum "$repo"/rust/kernel/*.rs "$tree/rust/kernel/"

# 2. The C patch series. Applied patches are recorded in the tree; on a re-run, the first patch whose
#    diff differs from the recorded one (headers such as the date are ignored) and every patch after
#    it are reverted in reverse order and applied anew, so unchanged patches leave their files alone.
rec="$tree/.crashhp-applied"
mkdir -p "$rec"
body() { sed -n '/^diff --git /,$p' "$1"; }
# The series, then the test-only patches (recorded as test-<name>).
mapfile -t want < <(cd "$repo/patches" && ls -- *.patch && { ls -- test/*.patch 2>/dev/null || true; })
rec_name() { echo "${1//\//-}"; }
mapfile -t have < <(cd "$rec" && ls -- *.patch 2>/dev/null || true)
k=0
while [ "$k" -lt "${#want[@]}" ] && [ "$k" -lt "${#have[@]}" ] &&
      [ "$(rec_name "${want[$k]}")" = "${have[$k]}" ] &&
      [ "$(body "$repo/patches/${want[$k]}")" = "$(body "$rec/${have[$k]}")" ]; do
  k=$((k + 1))
done
for ((i = ${#have[@]} - 1; i >= k; i--)); do
  (cd "$tree" && git apply -R --whitespace=nowarn "$rec/${have[$i]}") || die "cannot revert ${have[$i]}"
  rm -f "$rec/${have[$i]}"
  echo "overlay: reverted ${have[$i]}"
done
for ((i = k; i < ${#want[@]}; i++)); do
  p="$repo/patches/${want[$i]}"
  (cd "$tree" && git apply --check "$p" 2>/dev/null) || die "patch does not apply: ${want[$i]}"
  (cd "$tree" && git apply --whitespace=nowarn "$p")
  cp "$p" "$rec/$(rec_name "${want[$i]}")"
  echo "overlay: applied ${want[$i]}"
done
[ "$k" -lt "${#want[@]}" ] || echo "overlay: patch series up to date (${#want[@]} patches)"
