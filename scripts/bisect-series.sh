#!/usr/bin/env bash
# Does the exported series bisect? Applies it patch by patch with git am to the pristine Linux 7.3
# repository of scripts/check-series.sh and builds x86_64 after each one, incrementally, in one
# build tree (configs/x86_64.config with the Rust implementation selected, CLIPPY=1: a patch that
# adds a warning fails too). Not in the test command: about a minute per patch after a first
# full build of a few minutes.
#   usage: scripts/bisect-series.sh [c]   (c: the C implementation selected instead)
# Prints one line per patch: its name, the build's result and time; exits 1 at the first failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
variant=${1:-rust}
am_tree="$CRASHHP_CACHE/linux-7.3-am"
out="$CRASHHP_CACHE/build-bisect-x86_64-$variant"
series=$(mktemp -d); trap 'rm -rf "$series"' EXIT

# Makes the pristine repository if needed (and checks the series once as a whole).
"$repo/scripts/check-series.sh" "$series"
g() { git -C "$am_tree" -c user.name="crash_hotplug bisect" -c user.email="bisect@localhost" "$@"; }
base=$(g rev-list --max-parents=0 HEAD)
reset() { g am --abort >/dev/null 2>&1 || true; g reset -q --hard "$base"; g clean -fdq; }
trap 'reset; rm -rf "$series"' EXIT
reset

frag=$(mktemp -p "$series")
if [ "$variant" = c ]; then
  printf 'CONFIG_CRASH_HOTPLUG_C=y\n# CONFIG_CRASH_HOTPLUG_RUST is not set\n' >"$frag"
else
  printf 'CONFIG_CRASH_HOTPLUG_RUST=y\nCONFIG_CRASH_HOTPLUG_KUNIT_TEST=y\n' >"$frag"
fi
mk() { make -C "$am_tree" O="$out" LLVM=-19 ARCH=x86_64 CLIPPY=1 "$@"; }
configure() {
  mk -s x86_64_defconfig >/dev/null
  (cd "$out" && "$am_tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
    "$am_tree/kernel/configs/kvm_guest.config" "$repo/configs/x86_64.config" "$frag" >/dev/null)
  mk -s olddefconfig >/dev/null
}
mkdir -p "$out"
step() { # step NAME: configure and build; prints NAME, result, time, what the config selects
  local t0; t0=$(date +%s)
  configure
  if mk -s -j"$(nproc)" bzImage >"$series/build.log" 2>&1 && ! grep -qE '^(warning|error)(\[|:)' "$series/build.log"; then
    local sel; sel=$(grep -oE '^CONFIG_CRASH_HOTPLUG_(RUST|C)=y' "$out/.config" || true)
    printf '  %-66s built in %4s s  (%s)\n' "$1" "$(( $(date +%s) - t0 ))" "${sel:-no implementation choice yet}"
  else
    tail -n 30 "$series/build.log"
    die "the tree does not build (or warns) after $1"
  fi
}
phase "x86_64 ($variant) after each patch, incrementally in $out"
step "Linux 7.3 (pristine)"
for p in "$series"/prerequisite/[0-9]*.patch "$series"/[0-9]*.patch; do
  case "$(basename "$p")" in 0000-cover-letter.patch) continue ;; esac
  g am -q "$p"
  step "${p#"$series"/}"
done
echo "bisect: every patch of the series builds (x86_64, $variant)"
