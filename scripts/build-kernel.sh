#!/usr/bin/env bash
# Build the guest kernel with one crash hotplug implementation selected.
#   usage: scripts/build-kernel.sh rust|c|rust-debug|rust-release [x86_64|ppc64le]
# rust and c are the suite's test kernels (KUnit, test hooks), rust-debug the same under lockdep,
# KASAN and the rest (x86_64), rust-release the Rust kernel as a user ships it: no KUnit suites, no
# test hooks (x86_64; only built, so that code gated on the test options cannot break it).
# Output: $CRASHHP_CACHE/out/x86_64/bzImage-<variant>, or for ppc64le (QEMU pseries)
# $CRASHHP_CACHE/out/ppc64le/vmlinux-<variant>; the configuration next to it as config-<variant>.
# The source tree and the build tree live in $CRASHHP_CACHE, so later builds are incremental; switching
# the variant only rebuilds the objects that depend on the changed Kconfig symbols.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
variant=${1:?usage: build-kernel.sh rust|c|rust-debug|rust-release [x86_64|ppc64le]}
arch=${2:-x86_64}
case "$variant" in rust|c|rust-debug|rust-release) ;; *) die "variant must be rust, c, rust-debug or rust-release" ;; esac
case "$variant" in rust-debug|rust-release) [ "$arch" = x86_64 ] || die "the $variant kernel is x86_64 only" ;; esac
pristine="$CRASHHP_CACHE/linux-7.3"
src="$CRASHHP_CACHE/src-7.3"
# Per architecture: make's ARCH, the base defconfig and upstream fragments, the image to build.
case "$arch" in
  x86_64)
    karch=x86_64 defconfig=x86_64_defconfig image=bzImage image_path=arch/x86/boot/bzImage
    base_frags=("$src/kernel/configs/kvm_guest.config") ;;
  ppc64le)
    # ppc64_defconfig + le + guest + kvm_guest; the fragment trims it to a pseries guest. QEMU
    # boots the ELF vmlinux directly (-kernel), there is no zImage step.
    karch=powerpc defconfig=ppc64le_guest_defconfig image=vmlinux image_path=vmlinux
    base_frags=() ;;
  *) die "arch must be x86_64 or ppc64le" ;;
esac

out="$CRASHHP_CACHE/build-$arch-$variant"
dist="$CRASHHP_CACHE/out/$arch"
[ -f "$pristine/.crashhp-pristine" ] || die "no Linux tree: run scripts/setup.sh"
# The marker holds the source tarball's sha256: a tree from another tarball is copied anew.
if ! cmp -s "$pristine/.crashhp-pristine" "$src/.crashhp-pristine"; then
  phase "copying the pristine tree"
  # The contents, not the path: a pristine tree that is a symlink (a cache sharing another
  # cache's tree) must not make the build tree's source that shared tree.
  rm -rf "$src" "$src.tmp"; mkdir "$src.tmp"; cp -a "$pristine/." "$src.tmp/"; mv "$src.tmp" "$src"
fi
"$repo/scripts/overlay.sh" "$src"
# A build tree belongs to one source tarball (the pristine marker holds its sha256): the files of
# another 7.3.y tarball may carry older mtimes than the objects, so make would not rebuild them.
for t in "$CRASHHP_CACHE"/build-"$arch"-{rust,c,rust-debug,rust-release}; do
  if [ -d "$t" ] && ! cmp -s "$pristine/.crashhp-pristine" "$t/.crashhp-source"; then
    phase "discarding $(basename "$t"): built from another source tarball"
    rm -rf "$t"
  fi
done
# One build tree per variant, so that alternating builds do not flip the configuration. A missing
# tree is seeded from the other variant's (a cold run builds the kernel once, then incrementally).
other="$CRASHHP_CACHE/build-$arch-$([ "$variant" = c ] && echo rust || echo c)"
case "$variant" in rust-debug|rust-release) other="$CRASHHP_CACHE/build-$arch-rust" ;; esac
if [ ! -f "$out/.config" ] && [ -f "$other/vmlinux" ]; then
  phase "seeding the $variant build tree from $(basename "$other")"
  rm -rf "$out.tmp"; cp -a "$other" "$out.tmp"; mv "$out.tmp" "$out"
fi

# CLIPPY=1 always: kernel Rust is linted on every build (clippy-driver replaces rustc).
mk() { make -C "$src" O="$out" LLVM=-19 ARCH="$karch" CLIPPY=1 "$@"; }
mkdir -p "$out" "$dist"
cp "$pristine/.crashhp-pristine" "$out/.crashhp-source"
mk -s rustavailable | grep -q 'Rust is available' || die "make rustavailable failed: Rust toolchain is not usable"

# Configuration: defconfig + upstream guest fragments + our fragment + the variant, then a check that
# nothing requested was dropped (Kconfig drops options with unmet dependencies without a word).
frag_variant=$(mktemp); trap 'rm -f "$frag_variant"' EXIT
if [ "$variant" = rust-release ]; then
  printf 'CONFIG_CRASH_HOTPLUG_RUST=y\n# CONFIG_CRASH_HOTPLUG_KUNIT_TEST is not set\n# CONFIG_CRASH_HOTPLUG_TEST_HOOKS is not set\n' >"$frag_variant"
elif [ "$variant" != c ]; then
  # The test kernel: KUnit suites, and the test hooks (the mutations of the suite's mutation matrix
  # and fault injection: inactive until used; a kernel a user ships has CONFIG_CRASH_HOTPLUG_TEST_HOOKS
  # off).
  printf 'CONFIG_CRASH_HOTPLUG_RUST=y\nCONFIG_CRASH_HOTPLUG_KUNIT_TEST=y\nCONFIG_CRASH_HOTPLUG_TEST_HOOKS=y\n' >"$frag_variant"
  # The kernel crate's doctests as KUnit tests, those of kernel::{cpuhp,memory,kexec} among them
  # (rust-events and a pseries scenario require them; ~360 doctests, under a second at boot).
  printf 'CONFIG_RUST_KERNEL_DOCTESTS=y\n' >>"$frag_variant"
  # The debug kernel: the same, under lockdep, KASAN, KFENCE, kmemleak, fault injection.
  [ "$variant" != rust-debug ] || cat "$repo/configs/$arch-debug.config" >>"$frag_variant"
else
  # The C test kernel: upstream's handler with the test-only hooks of patches/test/ (the demo's
  # pause in an update and kexec lock holder; inactive until used).
  printf 'CONFIG_CRASH_HOTPLUG_C=y\n# CONFIG_CRASH_HOTPLUG_RUST is not set\nCONFIG_CRASH_HOTPLUG_C_TEST_HOOKS=y\n' >"$frag_variant"
fi
phase "configuring ($arch, $variant)"
mk -s "$defconfig" >/dev/null
(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
   "${base_frags[@]}" "$repo/configs/$arch.config" "$frag_variant" >/dev/null)
mk -s olddefconfig >/dev/null
missing=0
while IFS= read -r line; do
  if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    grep -qx "$line" "$out/.config" || { echo "config: requested $line, got: $(grep "^${BASH_REMATCH[1]}=" "$out/.config" || echo 'not set')"; missing=1; }
  elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    ! grep -q "^${BASH_REMATCH[1]}=" "$out/.config" || { echo "config: requested ${BASH_REMATCH[1]} off, got: $(grep "^${BASH_REMATCH[1]}=" "$out/.config")"; missing=1; }
  fi
done < <(cat "$repo/configs/$arch.config" "$frag_variant")
[ "$missing" = 0 ] || die "Kconfig dropped requested options (see above)"

phase "building $image ($arch, $variant, -j$(nproc))"
t0=$(date +%s)
# Our crate is always recompiled, so that its diagnostics are in this build's log
# (scripts/check-kernel-rust.sh fails on any of them).
rm -f "$out/kernel/crash_hotplug/src/crash_hotplug.o"
log="$dist/build-$variant.log"
# Never leave a stale kernel behind a failed build.
rm -f "$dist/$image-$variant"
if ! mk -s -j"$(nproc)" "$image" 2>&1 | tee "$log"; then
  die "kernel build failed (log: $log)"
fi
cp "$out/$image_path" "$dist/$image-$variant.tmp" && mv "$dist/$image-$variant.tmp" "$dist/$image-$variant"
# The ELF vmlinux with its DWARF next to the boot image: the harness's drgn step reads dumps with it.
if [ "$image" != vmlinux ]; then
  cp "$out/vmlinux" "$dist/vmlinux-$variant.tmp" && mv "$dist/vmlinux-$variant.tmp" "$dist/vmlinux-$variant"
fi
cp "$out/.config" "$dist/config-$variant"
phase "built $dist/$image-$variant in $(( $(date +%s) - t0 )) s"
