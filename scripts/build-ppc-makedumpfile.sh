#!/usr/bin/env bash
# Build a statically linked makedumpfile 1.7.7 for ppc64le (the guest initramfs has no libc), with
# LZO (the tests run `makedumpfile -l -d 31`) and zstd.
#   usage: scripts/build-ppc-makedumpfile.sh
# Output: $CRASHHP_CACHE/makedumpfile-<version>-ppc64le/{makedumpfile,MANIFEST}, cross-built with
# bookworm's gcc-powerpc64le-linux-gnu and libc6-dev-ppc64el-cross (static glibc), which
# scripts/setup.sh installs.
# Source: the upstream tarball as shipped in Debian (makedumpfile_1.7.7.orig.tar.gz), pinned by
# sha256; Debian's patches are not applied.
# Libraries: the static archives of bookworm's ppc64el -dev packages, downloaded by apt through a
# private configuration (the same as ppc_apt_init in scripts/setup.sh: the machine gets no foreign
# dpkg architecture) and extracted into a sysroot in the build tree, never installed. They are not
# pinned by version (the archive drops old revisions): apt takes the suite's current one and checks
# its hash against the signed index; each build prints and records (MANIFEST) what it used.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091 # lib.sh: phase, die, CRASHHP_CACHE
. "$here/lib.sh"
# shellcheck disable=SC1091 # pins.sh: PIN_SRC (the tarball's sha256), the "build" pins, the resolver
. "$here/pins.sh"

ver=1.7.7
suite=bookworm
triplet=powerpc64le-linux-gnu
# What makedumpfile links: libdw and libelf (elfutils) and what their archives need (zlib, bzip2,
# lzma; bookworm's elfutils 0.188 does not use zstd), lzo2 for -l, zstd for -z.
debs=(libelf-dev libdw-dev zlib1g-dev libbz2-dev liblzma-dev libzstd-dev liblzo2-dev)

[ $# -eq 0 ] || die "usage: $0 (no arguments)"
cache=${CRASHHP_CACHE:?}
dest="$cache/makedumpfile-$ver-ppc64le"
work="$cache/makedumpfile-$ver-ppc64le.build"
bin="$dest/makedumpfile"

# Fail unless $1 is a static PowerPC64 little-endian makedumpfile of the pinned version with LZO.
check() {
  local f=$1
  static_elf "$f" PowerPC64
  grep -q 'Class: *ELF64$' <<<"$elf_header" || die "$f is not an ELF64 binary"
  grep -q 'Data: .*little endian$' <<<"$elf_header" || die "$f is not little-endian"
  # A cross-built binary cannot run here: look for what `makedumpfile -v` prints in its strings.
  grep -aqF "makedumpfile: version $ver (" "$f" || die "$f: no 'makedumpfile: version $ver' in the binary"
  grep -aqF $'lzo\tenabled' "$f" || die "$f: built without LZO (-l)"
  grep -aqF $'zstd\tenabled' "$f" || die "$f: built without zstd (-z)"
}

if [ -e "$bin" ]; then
  check "$bin"
  [ -s "$dest/MANIFEST" ] || die "$dest/MANIFEST missing: remove $dest to rebuild"
  while read -r name v sum; do pin_note "$name" ppc64el "$suite" "$v" "$sum"; done <"$dest/MANIFEST"
  phase "makedumpfile $ver (ppc64le) already built"
  echo "$bin"
  exit 0
fi

# Toolchain: not installed here (scripts/setup.sh pins it).
command -v $triplet-gcc >/dev/null || die "$triplet-gcc missing: run scripts/setup.sh"
[ -f /usr/$triplet/lib/libc.a ] || die "/usr/$triplet/lib/libc.a missing (libc6-dev-ppc64el-cross): run scripts/setup.sh"
for c in curl apt-get dpkg-deb readelf make; do
  command -v "$c" >/dev/null || die "$c missing"
done

# The pinned upstream tarball (pins.sh PIN_SRC), downloaded once, verified every time.
orig=$(pin_src makedumpfile)

# Fresh build tree each time; it is kept on failure for inspection, removed on success.
phase "building makedumpfile $ver (ppc64le, static)"
t0=$(date +%s)
rm -rf "$work" "$dest.tmp"
mkdir -p "$work/src" "$work/debs" "$work/sysroot" "$dest.tmp"
tar -xzf "$orig" -C "$work/src" --strip-components=1
log="$work/build.log"

# A private apt configuration for ppc64el (pins.sh apt_private).
apt_private ppc64el "$cache/ppc64el/apt-build" "$suite"
phase "updating the ppc64el package lists ($suite)"
apt-get "${apt_opts[@]}" update -qq >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update (ppc64el, $suite) failed"; }

# The "build" pins of pins.sh: resolved, downloaded, checked against the signed index.
phase "downloading and extracting ${debs[*]} ($suite ppc64el)"
for name in "${debs[@]}"; do
  pin_download "$name" ppc64el "$work/debs" "${apt_opts[@]}"
  dpkg-deb -x "$pin_deb" "$work/sysroot"
  echo "$name $(dpkg-deb -f "$pin_deb" Version) $(sha256sum "$pin_deb" | cut -d' ' -f1)" >>"$dest.tmp/MANIFEST"
done

# makedumpfile's Makefile: TARGET=ppc64 gives -D__powerpc64__ -m64 and -U__x86_64__ (cross);
# LINKTYPE=static (its default) links "-static ... -ldw -lbz2 -ldl -lelf -lz -llzma -lpthread";
# USELZO=on and USEZSTD=on add -DUSELZO/-DUSEZSTD and -llzo2/-lzstd. CC must be given on the
# command line (its "Honour CC" test never fires). CFLAGS and LDFLAGS go through the environment,
# not the command line: the Makefile appends to CFLAGS (-DUSELZO...), which a command-line CFLAGS
# would override.
sys="$work/sysroot"
phase "compiling"
if ! (cd "$work/src" &&
      CFLAGS="-I$sys/usr/include -I$sys/usr/include/$triplet" LDFLAGS="-L$sys/usr/lib/$triplet" \
        make -j2 CC=$triplet-gcc TARGET=ppc64 LINKTYPE=static USELZO=on USEZSTD=on makedumpfile
     ) >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "makedumpfile build failed (log: $log)"
fi
# Static glibc: what needs shared glibc pieces at run time (NSS for getpwnam..., dlopen) warns at
# link time. Seen with bookworm's glibc 2.36: only makedumpfile's own dlopen of the eppic
# extension (--eppic, not used here).
grep -F 'warning:' "$log" | grep -E 'statically linked' | sed "s|^$work/src/||; s/^/link: /" | sort -u >&2 || true
check "$work/src/makedumpfile"

cp "$work/src/makedumpfile" "$dest.tmp/makedumpfile"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
rm -rf "$work"
check "$bin"
phase "built makedumpfile $ver (ppc64le) in $(( $(date +%s) - t0 )) s ($(stat -c %s "$bin") bytes)"
echo "$bin"
