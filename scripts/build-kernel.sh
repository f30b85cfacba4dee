#!/usr/bin/env bash
# Build the x86_64 guest kernel with one crash hotplug implementation selected.
#   usage: scripts/build-kernel.sh rust|c
# Output: $CRASHHP_CACHE/out/x86_64/bzImage-<variant> (and .config-<variant>).
# The source tree and the build tree live in $CRASHHP_CACHE, so later builds are incremental; switching
# the variant only rebuilds the objects that depend on the changed Kconfig symbols.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
variant=${1:?usage: build-kernel.sh rust|c}
case "$variant" in rust|c) ;; *) die "variant must be rust or c" ;; esac

pristine="$CRASHHP_CACHE/linux-7.3.4"
src="$CRASHHP_CACHE/src-7.3.4"
out="$CRASHHP_CACHE/build-x86_64-$variant"
dist="$CRASHHP_CACHE/out/x86_64"
[ -f "$pristine/.crashhp-pristine" ] || die "no Linux tree: run scripts/setup.sh"
if [ ! -f "$src/.crashhp-pristine" ]; then
  phase "copying the pristine tree"
  rm -rf "$src" "$src.tmp"; cp -a "$pristine" "$src.tmp"; mv "$src.tmp" "$src"
fi
"$repo/scripts/overlay.sh" "$src"
# One build tree per variant, so that alternating builds do not flip the configuration. A missing
# tree is seeded from the other variant's (a cold run builds the kernel once, then incrementally).
other="$CRASHHP_CACHE/build-x86_64-$([ "$variant" = rust ] && echo c || echo rust)"
if [ ! -f "$out/.config" ] && [ -f "$other/vmlinux" ]; then
  phase "seeding the $variant build tree from $(basename "$other")"
  rm -rf "$out.tmp"; cp -a "$other" "$out.tmp"; mv "$out.tmp" "$out"
fi

# CLIPPY=1 always: kernel Rust is linted on every build (clippy-driver replaces rustc).
mk() { make -C "$src" O="$out" LLVM=-19 ARCH=x86_64 CLIPPY=1 "$@"; }
mkdir -p "$out" "$dist"
mk -s rustavailable | grep -q 'Rust is available' || die "make rustavailable failed: Rust toolchain is not usable"

# Configuration: defconfig + kvm_guest + our fragment + the variant, then a check that nothing
# requested was dropped (Kconfig drops options with unmet dependencies without a word).
frag_variant=$(mktemp); trap 'rm -f "$frag_variant"' EXIT
if [ "$variant" = rust ]; then
  printf 'CONFIG_CRASH_HOTPLUG_RUST=y\nCONFIG_CRASH_HOTPLUG_KUNIT_TEST=y\n' >"$frag_variant"
else
  printf 'CONFIG_CRASH_HOTPLUG_C=y\n# CONFIG_CRASH_HOTPLUG_RUST is not set\n' >"$frag_variant"
fi
phase "configuring ($variant)"
mk -s x86_64_defconfig >/dev/null
(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
   "$src/kernel/configs/kvm_guest.config" "$repo/configs/x86_64.config" "$frag_variant" >/dev/null)
mk -s olddefconfig >/dev/null
missing=0
while IFS= read -r line; do
  if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    grep -qx "$line" "$out/.config" || { echo "config: requested $line, got: $(grep "^${BASH_REMATCH[1]}=" "$out/.config" || echo 'not set')"; missing=1; }
  elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    ! grep -q "^${BASH_REMATCH[1]}=" "$out/.config" || { echo "config: requested ${BASH_REMATCH[1]} off, got: $(grep "^${BASH_REMATCH[1]}=" "$out/.config")"; missing=1; }
  fi
done < <(cat "$repo/configs/x86_64.config" "$frag_variant")
[ "$missing" = 0 ] || die "Kconfig dropped requested options (see above)"

phase "building bzImage ($variant, -j$(nproc))"
t0=$(date +%s)
# Our crate is always recompiled, so that its diagnostics are in this build's log
# (scripts/check-kernel-rust.sh fails on any of them).
rm -f "$out/kernel/crash_hotplug/src/crash_hotplug.o"
log="$dist/build-$variant.log"
# Never leave a stale kernel behind a failed build.
rm -f "$dist/bzImage-$variant"
if ! mk -s -j"$(nproc)" bzImage 2>&1 | tee "$log"; then
  die "kernel build failed (log: $log)"
fi
cp "$out/arch/x86/boot/bzImage" "$dist/bzImage-$variant.tmp" && mv "$dist/bzImage-$variant.tmp" "$dist/bzImage-$variant"
cp "$out/.config" "$dist/config-$variant"
phase "built $dist/bzImage-$variant in $(( $(date +%s) - t0 )) s"
