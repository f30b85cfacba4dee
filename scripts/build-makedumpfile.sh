#!/usr/bin/env bash
# Build a statically linked makedumpfile 1.7.7 for the guests (their initramfs has no libc), with
# LZO (the tests run `makedumpfile -l -d 31`) and zstd.
#   usage: scripts/build-makedumpfile.sh x86_64|ppc64le
# Output: $CRASHHP_CACHE/makedumpfile-<version>-<arch>/{makedumpfile,MANIFEST}; ppc64le cross-built
# with bookworm's gcc-powerpc64le-linux-gnu and libc6-dev-ppc64el-cross (static glibc), x86_64 with
# the host's gcc and libc6-dev, all of which scripts/setup.sh installs.
# Why not Debian's makedumpfile: bookworm ships 1.7.2, which predates Linux 6.10's slab page type;
# on a 7.3 dump it takes every slab page for a free one and `-d 31` drops them all (task_structs,
# dev_pagemaps, ...: drgn then reads "Excluded page" for any slab object). 1.7.6 fixed that.
# Source: the upstream tarball as shipped in Debian (makedumpfile_1.7.7.orig.tar.gz), pinned by
# sha256; Debian's patches are not applied; ours are (patches/makedumpfile/*.patch: 1.7.7 does not
# know Linux 7.3's name of page.compound_head, compound_info, and -d 31 then drops slab tail pages).
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
arch=${1:-}
case "$arch" in
  x86_64) darch=amd64 triplet=x86_64-linux-gnu cc=gcc target=x86_64 machine="Advanced Micro Devices X86-64"
    libc=/usr/lib/x86_64-linux-gnu/libc.a ;;
  ppc64le) darch=ppc64el triplet=powerpc64le-linux-gnu cc=powerpc64le-linux-gnu-gcc target=ppc64 machine=PowerPC64
    libc=/usr/powerpc64le-linux-gnu/lib/libc.a ;;
  *) die "usage: $0 x86_64|ppc64le" ;;
esac
# What makedumpfile links: libdw and libelf (elfutils) and what their archives need (zlib, bzip2,
# lzma; bookworm's elfutils 0.188 does not use zstd), lzo2 for -l, zstd for -z.
debs=(libelf-dev libdw-dev zlib1g-dev libbz2-dev liblzma-dev libzstd-dev liblzo2-dev)

[ $# -eq 1 ] || die "usage: $0 x86_64|ppc64le"
cache=${CRASHHP_CACHE:?}
repo=$(cd "$here/.." && pwd)
patches=("$repo"/patches/makedumpfile/*.patch)
# The build is keyed by the patches' bytes: a changed patch builds a new binary.
key=$(cat "${patches[@]}" | sha256sum | cut -c1-8)
dest="$cache/makedumpfile-$ver-$arch-$key"
work="$cache/makedumpfile-$ver-$arch-$key.build"
bin="$dest/makedumpfile"

# Fail unless $1 is a static little-endian makedumpfile for $arch of the pinned version with LZO.
check() {
  local f=$1
  static_elf "$f" "$machine"
  grep -q 'Class: *ELF64$' <<<"$elf_header" || die "$f is not an ELF64 binary"
  grep -q 'Data: .*little endian$' <<<"$elf_header" || die "$f is not little-endian"
  # A cross-built binary cannot run here: look for what `makedumpfile -v` prints in its strings.
  grep -aqF "makedumpfile: version $ver (" "$f" || die "$f: no 'makedumpfile: version $ver' in the binary"
  grep -aqF $'lzo\tenabled' "$f" || die "$f: built without LZO (-l)"
  grep -aqF $'zstd\tenabled' "$f" || die "$f: built without zstd (-z)"
  grep -aqF "page.compound_info" "$f" || die "$f: built without patches/makedumpfile (no page.compound_info)"
}

if [ -e "$bin" ]; then
  check "$bin"
  [ -s "$dest/MANIFEST" ] || die "$dest/MANIFEST missing: remove $dest to rebuild"
  while read -r name v sum; do pin_note "$name" "$darch" "$suite" "$v" "$sum"; done <"$dest/MANIFEST"
  phase "makedumpfile $ver ($arch) already built"
  echo "$bin"
  exit 0
fi

# Toolchain: not installed here (scripts/setup.sh pins it).
command -v "$cc" >/dev/null || die "$cc missing: run scripts/setup.sh"
[ -f "$libc" ] || die "$libc missing (static glibc): run scripts/setup.sh"
for c in curl apt-get dpkg-deb readelf make; do
  command -v "$c" >/dev/null || die "$c missing"
done

# The pinned upstream tarball (pins.sh PIN_SRC), downloaded once, verified every time.
orig=$(pin_src makedumpfile)

# Fresh build tree each time; it is kept on failure for inspection, removed on success.
phase "building makedumpfile $ver ($arch, static)"
t0=$(date +%s)
rm -rf "$work" "$dest.tmp"
mkdir -p "$work/src" "$work/debs" "$work/sysroot" "$dest.tmp"
tar -xzf "$orig" -C "$work/src" --strip-components=1
for p in "${patches[@]}"; do
  patch -d "$work/src" -p1 --quiet --no-backup-if-mismatch <"$p" || die "$(basename "$p") does not apply"
done
log="$work/build.log"

# A private apt configuration for the architecture's packages (pins.sh apt_private): downloaded,
# extracted into the sysroot, never installed.
apt_private "$darch" "$cache/$darch/apt-build" "$suite"
phase "updating the $darch package lists ($suite)"
apt-get "${apt_opts[@]}" update -qq >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update ($darch, $suite) failed"; }

# The "build" pins of pins.sh: resolved, downloaded, checked against the signed index.
phase "downloading and extracting ${debs[*]} ($suite $darch)"
for name in "${debs[@]}"; do
  pin_download "$name" "$darch" "$work/debs" "${apt_opts[@]}"
  dpkg-deb -x "$pin_deb" "$work/sysroot"
  echo "$name $(dpkg-deb -f "$pin_deb" Version) $(sha256sum "$pin_deb" | cut -d' ' -f1)" >>"$dest.tmp/MANIFEST"
done

# makedumpfile's Makefile: TARGET=ppc64 gives -D__powerpc64__ -m64 and -U__x86_64__ (cross),
# TARGET=x86_64 the native build;
# LINKTYPE=static (its default) links "-static ... -ldw -lbz2 -ldl -lelf -lz -llzma -lpthread";
# USELZO=on and USEZSTD=on add -DUSELZO/-DUSEZSTD and -llzo2/-lzstd. CC must be given on the
# command line (its "Honour CC" test never fires). CFLAGS and LDFLAGS go through the environment,
# not the command line: the Makefile appends to CFLAGS (-DUSELZO...), which a command-line CFLAGS
# would override.
sys="$work/sysroot"
phase "compiling"
if ! (cd "$work/src" &&
      CFLAGS="-I$sys/usr/include -I$sys/usr/include/$triplet" LDFLAGS="-L$sys/usr/lib/$triplet" \
        make -j2 CC="$cc" TARGET=$target LINKTYPE=static USELZO=on USEZSTD=on makedumpfile
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
phase "built makedumpfile $ver ($arch) in $(( $(date +%s) - t0 )) s ($(stat -c %s "$bin") bytes)"
echo "$bin"
