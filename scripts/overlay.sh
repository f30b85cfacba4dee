#!/usr/bin/env bash
# Place crash_hotplug into a Linux 7.3 tree: copy Kconfig, Kbuild and the Rust sources to
# kernel/crash_hotplug/ and apply patches/*.patch. Idempotent: unchanged files keep their mtimes (so a
# rebuild recompiles only what changed), and the patch series is re-applied only when it changed.
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
  "$repo/Kconfig" "$repo/Kbuild" "$repo/src" "$dst/"

# 2. The C patch series, applied as a unit. The applied copy is kept in the tree so that a changed
#    series is first reverted exactly as it was applied.
applied="$tree/.crashhp-series.applied"
want=$(cat "$repo"/patches/*.patch)
if [ -f "$applied" ] && [ "$(cat "$applied")" = "$want" ]; then
  echo "overlay: patch series already applied"
else
  if [ -f "$applied" ]; then
    echo "overlay: patch series changed, reverting the old one"
    (cd "$tree" && git apply -R --whitespace=nowarn "$applied") || die "cannot revert the old series"
    rm -f "$applied"
  fi
  for p in "$repo"/patches/*.patch; do
    (cd "$tree" && git apply --check "$p" 2>/dev/null) || die "patch does not apply: $(basename "$p")"
    (cd "$tree" && git apply --whitespace=nowarn "$p")
    echo "overlay: applied $(basename "$p")"
  done
  printf '%s' "$want" >"$applied"
fi
