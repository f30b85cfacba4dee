#!/usr/bin/env bash
# Set up a fresh Debian 12 (bookworm) x86_64 machine for crash_hotplug: pinned toolchain, QEMU,
# guest userland and the Linux 7.3 source. Idempotent: a second run changes nothing and takes seconds.
#
# Everything version-sensitive is pinned below. Backports suites are added at a low pin priority and
# only the listed packages are taken from them; the install plan is simulated first and the script
# fails if apt would install or upgrade anything that is not on the list (e.g. libc6 from trixie).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

# --- pins: scripts/pins.sh (upstream versions and suites; the resolver) -------------------------------
# shellcheck source=scripts/pins.sh
. "$here/pins.sh"
BINDGEN_VER='0.73.2'                         # crates.io, kernel 7.3 needs >= 0.71.1
LINUX_SERIES='7.3'                           # any 7.3.y stable release (pins.sh)
# Unpinned bookworm packages: any revision the suite has.
bookworm_any=(flex bison libelf-dev bc libssl-dev cpio xz-utils busybox-static kexec-tools makedumpfile python3 rsync curl)
# The private apt configuration for ppc64el downloads (udevadm's closure, busybox, the static
# libraries of makedumpfile): its own lists and cache in $CRASHHP_CACHE/ppc64el/apt, an empty dpkg
# status (nothing is installed), the machine gets no foreign dpkg architecture.
PPC_SUITES=(bookworm trixie)
# udevadm for the ppc64le guests' udev rule tests: bookworm's udev with the NEEDED closure of its
# binary (the closure pins in pins.sh), kept under $CRASHHP_CACHE/ppc64el/userland-<key>/tree.
PPC_UDEVADM_BINS=(/bin/udevadm)
PPC_UDEVADM_DEBS=(udev libc6 libkmod2 libssl3 liblzma5 libzstd1 libacl1 libblkid1 libcap2 libselinux1 libpcre2-8-0)

need_root() { [ "$(id -u)" = 0 ] || die "setup must run as root (it installs Debian packages)"; }

apt_sources() {
  local f=/etc/apt/sources.list.d/crashhp-backports.sources p=/etc/apt/preferences.d/crashhp-backports
  local want_src want_pin
  want_src=$'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports trixie-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  # Backports never win by default; trixie-backports even less (it must not pull trixie libraries).
  want_pin=$'Package: *\nPin: release n=trixie-backports\nPin-Priority: 50\n\nPackage: *\nPin: release n=bookworm-backports\nPin-Priority: 100\n'
  local changed=0
  if [ "$(cat "$f" 2>/dev/null)"$'\n' != "$want_src" ]; then printf '%s' "$want_src" >"$f"; changed=1; fi
  if [ "$(cat "$p" 2>/dev/null)"$'\n' != "$want_pin" ]; then printf '%s' "$want_pin" >"$p"; changed=1; fi
  local stamp=/var/lib/apt/lists/.crashhp-updated
  if [ "$changed" = 1 ] || [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
    phase "apt-get update"
    apt-get update -qq
    touch "$stamp"
  fi
  pin_prefetch
}

# apt_pins: the apt-route pins (pins.sh) as "name arch" lines.
apt_pins() {
  local line r n a w rest
  for line in "${PIN_BIN[@]}"; do
    read -r r n a w rest <<<"$line"
    [ "$r" = apt ] && echo "$n $a"
  done
}

# installed_version NAME: the installed version, empty unless installed.
installed_version() {
  local have
  have=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null || true)
  case "$have" in ii*) printf '%s\n' "${have#*|}" ;; esac
}

# Host packages: every apt pin is resolved (an installed revision that satisfies it is kept, unless
# CRASHHP_PIN_UNAVAILABLE names it), then the install is planned and refused if it would touch
# anything from Debian 13 but the pinned arch-all packages.
apt_install_checked() {
  local -a want=() names=()
  local name arch have suite ver
  while read -r name arch; do
    names+=("$name")
    have=$(installed_version "$name")
    pin_get "$name" "$arch"
    if [ -n "$have" ] && pin_wanted "$have" "$pin_want" &&
       ! { pin_forced_gone "$name" "$arch" && [ "$have" = "$(pin_recorded "$name" "$arch")" ]; }; then
      pin_note "$name" "$arch" installed "$have" "$(pin_index_sha "$name" "$have")"
      continue
    fi
    read -r suite ver < <(pin_candidates "$name" "$arch") ||
      die "$name: no revision of $pin_want in $pin_suites (apt-cache madison $name)"
    want+=("$name=$ver")
    pin_note "$name" "$arch" "$suite" "$ver" "$(pin_index_sha "$name" "$ver")"
  done < <(apt_pins)
  for name in "${bookworm_any[@]}"; do [ -n "$(installed_version "$name")" ] || want+=("$name"); done
  if [ "${#want[@]}" = 0 ]; then echo "packages: all present"; return; fi
  phase "apt: planning ${want[*]}"
  local plan allowed bad=0 line
  plan=$(DEBIAN_FRONTEND=noninteractive apt-get install -s -y --no-install-recommends -t bookworm "${want[@]}")
  # Every package apt wants to touch must be either a pin or a new (not upgraded) bookworm package.
  # Upgrades within bookworm (point releases, security) are fine; anything from Debian 13 that is
  # not one of the pinned arch-all packages is not (it would start a partial dist-upgrade).
  allowed=" ${names[*]} "
  while read -r line; do
    name=$(awk '{print $2}' <<<"$line")
    if grep -qE 'trixie|Debian:13|bpo13' <<<"$line" && [[ "$allowed" != *" $name "* ]]; then
      echo "REFUSED: $line"; bad=1
    fi
  done < <(grep -E '^Inst ' <<<"$plan")
  if grep -q '^Remv ' <<<"$plan"; then grep '^Remv ' <<<"$plan"; echo "REFUSED: the plan removes packages"; bad=1; fi
  [ "$bad" = 0 ] || die "apt would change packages outside the pinned set; refusing (see REFUSED lines)"
  [ -z "${CRASHHP_SETUP_PLAN_ONLY:-}" ] || { echo "packages: plan ok, not installed (CRASHHP_SETUP_PLAN_ONLY)"; return; }
  phase "apt: installing $(grep -c '^Inst ' <<<"$plan") packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm "${want[@]}" >/dev/null
  for line in "${want[@]}"; do
    name=${line%%=*}; ver=${line#*=}; [ "$ver" != "$line" ] || ver=
    have=$(installed_version "$name")
    [ -n "$have" ] && { [ -z "$ver" ] || [ "$have" = "$ver" ]; } || die "$line: not installed after apt-get install"
  done
}

rust_src_link() {
  local sysroot dst
  sysroot=$(rustc --print sysroot)
  dst="$sysroot/lib/rustlib/src/rust"
  [ -e /usr/lib/rustlib/src/rust/library/core/src/lib.rs ] || die "Debian rust-src missing"
  if [ "$(readlink "$dst" 2>/dev/null)" != /usr/lib/rustlib/src/rust ]; then
    mkdir -p "$(dirname "$dst")"
    ln -sfn /usr/lib/rustlib/src/rust "$dst"
  fi
  rustc --version | grep -q '^rustc 1\.95\.0 ' || die "rustc 1.95.0 expected, got: $(rustc --version)"
}

bindgen_install() {
  if command -v bindgen >/dev/null && bindgen --version | grep -q " $BINDGEN_VER\$"; then return; fi
  phase "cargo install bindgen-cli $BINDGEN_VER"
  LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install --locked --quiet --version "$BINDGEN_VER" bindgen-cli
}

linux_tree() {
  local tree="$CRASHHP_CACHE/linux-$LINUX_SERIES" tarball=/usr/src/linux-source-$LINUX_SERIES.tar.xz
  [ -f "$tarball" ] || die "$tarball missing (linux-source-7.3 not installed?)"
  # Debian's patched tree: its bytes change with the package revision, so the sha256 is recorded
  # (pins.lock) and compared with the last developer run's, and the tree's version is checked.
  local sum rec
  sum=$(sha256sum "$tarball" | cut -d' ' -f1)
  rec=$(pin_recorded linux-source-7.3.tar.xz all)
  printf 'pin: linux-source-7.3.tar.xz (tarball of the package) sha256 %s [%s]\n' "$sum" \
    "$([ "$sum" = "$rec" ] && echo "as recorded" || echo "MOVED: recorded ${rec:-none}; the package revision moved")"
  { awk '$1 != "linux-source-7.3.tar.xz"' "$CRASHHP_CACHE/pins.lock" 2>/dev/null
    echo "linux-source-7.3.tar.xz all tarball $sum - tarball"; } >"$CRASHHP_CACHE/pins.lock.tmp"
  mv "$CRASHHP_CACHE/pins.lock.tmp" "$CRASHHP_CACHE/pins.lock"
  if [ -f "$tree/.crashhp-pristine" ] && [ "$(cat "$tree/.crashhp-pristine")" = "$sum" ]; then return; fi
  phase "unpacking Linux $LINUX_SERIES ($tarball)"
  rm -rf "$tree" "$tree.tmp"; mkdir -p "$tree.tmp"
  tar -C "$tree.tmp" --strip-components=1 -xJf "$tarball"
  local v; v=$(make -s -C "$tree.tmp" kernelversion)
  [[ "$v" == "$LINUX_SERIES".* ]] || die "unpacked tree is $v, expected $LINUX_SERIES.y"
  echo "Linux tree: $v (build trees from another tarball are discarded by scripts/build-kernel.sh)"
  echo "$sum" >"$tree.tmp/.crashhp-pristine"
  mv "$tree.tmp" "$tree"
}

# deb_extract NAME ARCH DEST_PREFIX APT_OPTS...: the resolved .deb of a "deb" pin extracted (never
# installed) into DEST_PREFIX-<version>, which DEST_PREFIX (a symlink) then names. Sets deb_dir.
deb_extract() {
  local name=$1 arch=$2 prefix=$3 suite ver tmp
  shift 3
  read -r suite ver < <(pin_candidates "$name" "$arch" "$@") || true
  deb_dir="$prefix-${ver#*:}"
  if [ -n "$ver" ] && [ -f "$deb_dir/.crashhp-complete" ]; then
    pin_note "$name" "$arch" "$suite" "$ver" "$(cat "$deb_dir/.crashhp-complete")"
  else
    phase "extracting $name ($arch)"
    mkdir -p "$(dirname "$prefix")"
    tmp=$(mktemp -d "$prefix.XXXXXX")
    pin_download "$name" "$arch" "$tmp" "$@"
    ver=$(dpkg-deb -f "$pin_deb" Version)
    deb_dir="$prefix-${ver#*:}"
    rm -rf "$deb_dir"; dpkg-deb -x "$pin_deb" "$deb_dir"
    sha256sum "$pin_deb" | cut -d' ' -f1 >"$deb_dir/.crashhp-complete"
    rm -rf "$tmp"
  fi
  ln -sfn "$(basename "$deb_dir")" "$prefix.link" && mv -T "$prefix.link" "$prefix"
}

# udevadm for the x86 guests (bookworm's udev, amd64): $CRASHHP_CACHE/udev/bin/udevadm.
udev_extract() {
  deb_extract udev amd64 "$CRASHHP_CACHE/udev"
  [ -x "$CRASHHP_CACHE/udev/bin/udevadm" ] || die "udev: no bin/udevadm in $deb_dir"
}

# ppc_apt_init: the private apt configuration for ppc64el downloads (PPC_SUITES, main); sets
# ppc_apt_opts; updates the lists once per run.
ppc_apt_opts=()
ppc_apt_init() {
  [ "${#ppc_apt_opts[@]}" = 0 ] || return 0
  apt_private ppc64el "$CRASHHP_CACHE/ppc64el/apt" "${PPC_SUITES[@]}"
  ppc_apt_opts=("${apt_opts[@]}")
  apt-get "${ppc_apt_opts[@]}" update -qq || die "apt-get update (ppc64el: ${PPC_SUITES[*]}) failed"
  pin_prefetch "${ppc_apt_opts[@]}"
}

# Static busybox for ppc64el: $CRASHHP_CACHE/ppc64el/busybox/bin/busybox.
ppc_busybox_extract() {
  ppc_apt_init
  deb_extract busybox-static ppc64el "$CRASHHP_CACHE/ppc64el/busybox" "${ppc_apt_opts[@]}"
  # bookworm's package has bin/busybox, trixie's (merged /usr) usr/bin/busybox.
  if [ ! -e "$deb_dir/bin/busybox" ] && [ -x "$deb_dir/usr/bin/busybox" ]; then
    mkdir -p "$deb_dir/bin"; ln -s ../usr/bin/busybox "$deb_dir/bin/busybox"
  fi
  static_elf "$deb_dir/bin/busybox" PowerPC64
}

# root_follow ROOT PATH: sets `chain` to PATH and, while it is a symlink inside ROOT, every path it
# leads to (absolute targets taken relative to ROOT), ending with a regular file.
root_follow() {
  local root=$1 p=$2 t
  chain=("$p")
  while [ -L "$root$p" ]; do
    t=$(readlink "$root$p")
    case "$t" in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
    p=$(realpath -m -s "$p")
    chain+=("$p")
    [ "${#chain[@]}" -lt 20 ] || die "symlink loop at $2 in $root"
  done
  [ -f "$root$p" ] || die "$2 -> $p: missing in $root"
}

# elf_closure ROOT BIN...: the paths (in ROOT) of the BINs, their interpreter (unless $no_interp is
# set) and every library of their NEEDED closure, symlinks and their targets included; dies on a
# NEEDED library not in ROOT. Search order of Debian's ppc64el loader without ld.so.cache: RUNPATH,
# then the multiarch and default directories.
elf_closure() {
  local root=$1 f so d hit interp rp
  local -a chain
  shift
  local -a queue=("$@") out=()
  local -A seen=()
  while [ "${#queue[@]}" -gt 0 ]; do
    f=${queue[0]}; queue=("${queue[@]:1}")
    [ -z "${seen[$f]:-}" ] || continue
    seen[$f]=1
    root_follow "$root" "$f"
    out+=("${chain[@]}"); f=${chain[-1]}
    interp=$(readelf -lW "$root$f" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    [ -z "$interp" ] || [ -n "${no_interp:-}" ] || queue+=("$interp")
    rp=$(readelf -dW "$root$f" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p; s/.*(RPATH).*\[\(.*\)\]/\1/p' | tr ':' ' ')
    for so in $(readelf -dW "$root$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      hit=
      for d in $rp /lib/powerpc64le-linux-gnu /usr/lib/powerpc64le-linux-gnu /lib64 /usr/lib64 /lib /usr/lib; do
        if [ -e "$root$d/$so" ] || [ -L "$root$d/$so" ]; then hit=$d/$so; break; fi
      done
      [ -n "$hit" ] || die "$so (NEEDED by $f) is in no extracted package: add its package to PPC_UDEVADM_DEBS (and a closure pin to pins.sh)"
      queue+=("$hit")
    done
  done
  printf '%s\n' "${out[@]}" | awk '!seen[$0]++'
}

# ppc_tree DEST: downloads the closure pins (PPC_UDEVADM_DEBS, resolved, verified), extracts them
# and copies the NEEDED closure of PPC_UDEVADM_BINS into DEST/tree; then checks that the copy holds
# its own closure and only PowerPC64 ELFs.
ppc_tree() {
  local dest=$1 name deb f x
  x=$(mktemp -d "$dest/.x.XXXXXX")
  mkdir -p "$x/debs" "$x/root" "$dest/tree"
  for name in "${PPC_UDEVADM_DEBS[@]}"; do
    pin_download "$name" ppc64el "$x/debs" "${ppc_apt_opts[@]}"
    dpkg-deb -x "$pin_deb" "$x/root"
    echo "bookworm $name $(dpkg-deb -f "$pin_deb" Version) $(sha256sum "$pin_deb" | cut -d' ' -f1)" >>"$dest/MANIFEST"
  done
  elf_closure "$x/root" "${PPC_UDEVADM_BINS[@]}" >"$x/files"
  while read -r f; do
    mkdir -p "$dest/tree$(dirname "$f")"
    cp -a "$x/root$f" "$dest/tree$f"
    echo "$f" >>"$dest/FILES"
  done <"$x/files"
  elf_closure "$dest/tree" "${PPC_UDEVADM_BINS[@]}" | cmp -s - "$x/files" ||
    die "ppc64el userland: the trimmed tree does not hold its own closure"
  while read -r f; do
    [ -L "$dest/tree$f" ] || readelf -h "$dest/tree$f" | grep -q 'Machine: *PowerPC64' ||
      die "ppc64el userland: $f is not a PowerPC64 ELF"
  done <"$x/files"
  rm -rf "$x"
}

# The ppc64el userland of the guests, $CRASHHP_CACHE/ppc64el/userland/tree: udevadm (bookworm, with
# its closure) and makedumpfile (static, built from the pinned upstream tarball by
# scripts/build-makedumpfile.sh). Keyed by the resolved revisions and the makedumpfile binary;
# built in a temporary directory and renamed when complete.
ppc_userland_extract() {
  local base="$CRASHHP_CACHE/ppc64el" key dir tmp name mdf res=() suite ver
  ppc_apt_init
  "$here/build-makedumpfile.sh" ppc64le >"$base/.makedumpfile.out" || die "scripts/build-makedumpfile.sh ppc64le failed"
  head -n -1 "$base/.makedumpfile.out"
  mdf=$(tail -n 1 "$base/.makedumpfile.out"); rm -f "$base/.makedumpfile.out"
  [ -x "$mdf" ] || die "static ppc64le makedumpfile missing"
  for name in "${PPC_UDEVADM_DEBS[@]}"; do
    read -r suite ver < <(pin_candidates "$name" ppc64el "${ppc_apt_opts[@]}") || true
    res+=("$name=$ver")
  done
  key=$(printf '%s\n' layout-tree "${PPC_UDEVADM_BINS[@]}" "${res[@]}" "$(sha256sum "$mdf" | cut -d' ' -f1)" | sha256sum | cut -c1-12)
  dir="$base/userland-$key"
  if [ -f "$dir/.crashhp-complete" ]; then
    while read -r suite name ver sum; do pin_note "$name" ppc64el "$suite" "$ver" "$sum"; done <"$dir/MANIFEST"
  else
    rm -rf "$dir"
    phase "assembling the ppc64el userland: udevadm (bookworm), makedumpfile (static)"
    mkdir -p "$base"
    tmp=$(mktemp -d "$base/.userland.XXXXXX")
    # shellcheck disable=SC2064 # expand $tmp now: it is local
    trap "rm -rf '$tmp'" EXIT
    ppc_tree "$tmp"
    install -D -m 755 "$mdf" "$tmp/tree/usr/bin/makedumpfile"
    echo /usr/bin/makedumpfile >>"$tmp/FILES"
    printf 'built %s, %s files, %s\n' "$(date -u +%FT%TZ)" "$(wc -l <"$tmp/FILES")" \
      "$(du -sh "$tmp/tree" | cut -f1)" >"$tmp/.crashhp-complete"
    chmod 755 "$tmp"
    mv -T "$tmp" "$dir" 2>/dev/null || [ -f "$dir/.crashhp-complete" ] || die "cannot create $dir"
    rm -rf "$tmp"; trap - EXIT
  fi
  if [ "$(readlink "$base/userland" 2>/dev/null)" != "userland-$key" ]; then
    ln -sfn "userland-$key" "$base/.userland-link"
    mv -T "$base/.userland-link" "$base/userland"
  fi
}

# Steps, in order; `scripts/setup.sh STEP...` runs only those (the test command's fallback check runs
# the download routes in a scratch cache that way).
steps=(apt_sources apt_install_checked rust_src_link bindgen_install linux_tree udev_extract
  ppc_busybox_extract ppc_userland_extract fadump_qemu drgn_unpack)
fadump_qemu() { "$here/setup-fadump-qemu.sh"; }

# drgn for the harness's dump checks: the pinned wheel unpacked into $CRASHHP_CACHE/drgn-<sha>/site
# (keyed by the wheel's sha256), run by bookworm's python3, which must be the wheel's 3.11.
drgn_unpack() {
  local whl sum dir
  whl=$(pin_src drgn)
  sum=$(sha256sum "$whl" | cut -c1-12)
  dir="$CRASHHP_CACHE/drgn-$sum"
  /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "/usr/bin/python3 is $(/usr/bin/python3 --version 2>&1), the drgn wheel needs 3.11"
  if [ ! -f "$dir/.crashhp-complete" ]; then
    phase "unpacking $(basename "$whl")"
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
    /usr/bin/python3 -m zipfile -e "$whl" "$dir.tmp/site"
    touch "$dir.tmp/.crashhp-complete"; rm -rf "$dir"; mv "$dir.tmp" "$dir"
  fi
  PYTHONPATH="$dir/site" /usr/bin/python3 -c 'import drgn, sys; sys.exit(not drgn._with_libkdumpfile)' ||
    die "drgn in $dir/site does not import, or lacks libkdumpfile"
  ln -sfn "$(basename "$dir")" "$CRASHHP_CACHE/drgn"
  echo "drgn: $(PYTHONPATH="$dir/site" /usr/bin/python3 -c 'import drgn; print(drgn.__version__)') in $CRASHHP_CACHE/drgn/site"
}

main() {
  need_root
  mkdir -p "$CRASHHP_CACHE"
  local -a run=("$@") s
  [ "$#" -gt 0 ] || run=("${steps[@]}")
  for s in "${run[@]}"; do
    [[ " ${steps[*]} " == *" $s "* ]] || die "unknown step $s (steps: ${steps[*]})"
    "$s"
  done
  echo "setup: ok (cache: $CRASHHP_CACHE; resolution: $CRASHHP_CACHE/pins.lock)"
}
main "$@"
