#!/usr/bin/env bash
# Build a statically linked kexec from kexec-tools 2.0.29, which has --hotplug
# (KEXEC_UPDATE_ELFCOREHDR); bookworm ships 2.0.25, without it. The guest initramfs has no libc.
#   usage: scripts/build-kexec-tools.sh [x86_64|ppc64le]
# Output: $CRASHHP_CACHE/kexec-tools-<version>/kexec (x86_64, native), or
# $CRASHHP_CACHE/kexec-tools-<version>-ppc64le/{kexec,vmcore-dmesg} (cross-built with bookworm's
# gcc-powerpc64le-linux-gnu and libc6-dev-ppc64el-cross, which scripts/setup.sh installs).
# Source: the upstream tarball as shipped in Debian trixie (kexec-tools 1:2.0.29-2), pinned by
# sha256. Debian's patches are packaging-only (systemd units, docs) and are not applied.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091 # lib.sh: phase, die, CRASHHP_CACHE
. "$here/lib.sh"
# shellcheck disable=SC1091 # pins.sh: PIN_SRC (the tarball's sha256)
. "$here/pins.sh"

ver=2.0.29

arch=${1:-x86_64}
cache=${CRASHHP_CACHE:?}
case "$arch" in
  x86_64) suffix='' host=() tools=(kexec) machine='Advanced Micro Devices X86-64' ;;
  ppc64le)
    suffix=-ppc64le host=(--host=powerpc64le-linux-gnu) tools=(kexec vmcore-dmesg) machine=PowerPC64
    command -v powerpc64le-linux-gnu-gcc >/dev/null || die "powerpc64le-linux-gnu-gcc missing: run scripts/setup.sh" ;;
  *) die "arch must be x86_64 or ppc64le" ;;
esac
dest="$cache/kexec-tools-$ver$suffix"
work="$cache/kexec-tools-$ver$suffix.build"
kexec="$dest/kexec"

# Fail unless $1 is a static kexec of the pinned version that knows --hotplug.
check() {
  local bin=$1 out
  static_elf "$bin" "$machine"
  if [ "$arch" != x86_64 ]; then
    # A cross-built binary cannot run here: look for the version and the option in its strings.
    grep -aq "kexec-tools $ver" "$bin" || die "$bin: no 'kexec-tools $ver' in the binary"
    grep -aq -- --hotplug "$bin" || die "$bin: does not know --hotplug"
    return
  fi
  out=$("$bin" --version 2>&1) || true
  [ "$out" = "kexec-tools $ver" ] || die "$bin --version: want 'kexec-tools $ver', got '$out'"
  out=$("$bin" --help 2>&1) || true
  grep -q -- --hotplug <<<"$out" || die "$bin --help does not list --hotplug"
}

if [ -x "$kexec" ] && { [ "$arch" != x86_64 ] || [ "$("$kexec" --version 2>&1)" = "kexec-tools $ver" ]; }; then
  check "$kexec"
  phase "kexec-tools $ver ($arch) already built"
  echo "$kexec"
  exit 0
fi

# Toolchain: static glibc comes with libc6-dev. Install only what is missing, from bookworm.
need=()
for p in gcc make libc6-dev binutils xz-utils curl; do
  # shellcheck disable=SC2016 # ${Status} is a dpkg-query field, not a shell variable
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  phase "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -t bookworm "${need[@]}"
fi

# The pinned upstream tarball (pins.sh PIN_SRC), downloaded once, verified every time.
orig=$(pin_src kexec-tools)

# Fresh build tree each time; it is kept on failure for inspection, removed on success.
phase "building kexec-tools $ver ($arch, static)"
t0=$(date +%s)
rm -rf "$work" "$dest.tmp"
mkdir -p "$work"
tar -xJf "$orig" -C "$work" --strip-components=1
log="$work/build.log"
# No optional libraries: zlib/lzma only let kexec read compressed kernel files (a bzImage
# decompresses itself), xen is not used; each would be one more static archive to link.
if ! (cd "$work" &&
      ./configure "${host[@]}" --without-zlib --without-lzma --without-xen LDFLAGS=-static &&
      make -j2) >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "kexec-tools build failed (log: $log)"
fi
check "$work/build/sbin/kexec"

mkdir -p "$dest.tmp"
for t in "${tools[@]}"; do cp "$work/build/sbin/$t" "$dest.tmp/$t"; done
rm -rf "$dest"
mv "$dest.tmp" "$dest"
rm -rf "$work"
check "$kexec"
phase "built kexec-tools $ver ($arch) in $(( $(date +%s) - t0 )) s"
echo "$kexec"
