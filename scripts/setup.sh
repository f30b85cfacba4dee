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

# --- pins -------------------------------------------------------------------------------------------
QEMU_VER='1:10.0.2+ds-2+deb13u1~bpo12+1'     # bookworm-backports
SEABIOS_VER='1.16.3-2~bpo12+1'               # bookworm-backports
LINUX_SRC_VER='7.3.4-1~bpo13+1'              # trixie-backports (arch all)
RUST_SRC_VER='1.95.0+dfsg1-2~bpo13+1'        # trixie-backports (arch all), matches rustc 1.95.0
LLVM_VER='1:19.1.7-3~deb12u1'                # bookworm
BINDGEN_VER='0.73.2'                         # crates.io, kernel 7.3 needs >= 0.71.1
LINUX_TARBALL_SHA256='76df1affb19f24926949369be1d74b60071c963c598ce8780bddd4bbf0fc3bc4'
LINUX_TREE_VERSION='7.3.4'
# udevadm for the guest's udev rule tests: extracted from bookworm's package, not installed.
UDEV_VER='252.39-1~deb12u2'
UDEV_DEB_SHA256='7593d55752f2d7f20fefc5564ead8b10a536bc945f96d942e1c976f2154281cb'
# ppc64le (pseries) guests: a cross toolchain (static guest tools, kexec-tools) and bookworm's static
# busybox for ppc64el, extracted from its .deb (the machine gets no foreign dpkg architecture).
PPC_CROSS_GCC_VER='4:12.2.0-3'               # bookworm, gcc-powerpc64le-linux-gnu (gcc 12.2)
PPC_CROSS_LIBC_VER='2.36-8cross1'            # bookworm, libc6-dev-ppc64el-cross (static glibc)
PPC_BUSYBOX_VER='1:1.35.0-4+deb12u1+b1'      # bookworm, busybox-static:ppc64el
PPC_BUSYBOX_DEB_SHA256='932deb885b840a8cf529708c03a1e87833dc64e66a70585721f8a356d9fe995b'
# PowerPC fadump needs QEMU >= 10.2: scripts/setup-fadump-qemu.sh builds a trixie chroot holding
# trixie-backports' qemu-system-ppc (its pins are there) with bookworm's mmdebstrap.
MMDEBSTRAP_VER='1.3.5-7'                     # bookworm

bookworm_pkgs=(
  "clang-19=$LLVM_VER" "lld-19=$LLVM_VER" "llvm-19=$LLVM_VER" "libclang-19-dev=$LLVM_VER"
  flex bison libelf-dev bc libssl-dev cpio xz-utils busybox-static kexec-tools makedumpfile
  python3 rsync
  "gcc-powerpc64le-linux-gnu=$PPC_CROSS_GCC_VER" "libc6-dev-ppc64el-cross=$PPC_CROSS_LIBC_VER"
  "mmdebstrap=$MMDEBSTRAP_VER"
)
backports_pkgs=(
  "qemu-system-x86=$QEMU_VER" "qemu-system-ppc=$QEMU_VER" "qemu-system-common=$QEMU_VER" "qemu-system-data=$QEMU_VER"
  "seabios=$SEABIOS_VER" "linux-source-7.3=$LINUX_SRC_VER" "rust-src=$RUST_SRC_VER"
)

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
}

installed_ok() { # pkg[=ver] ...: all installed at the wanted version?
  local spec name ver have
  for spec in "$@"; do
    name=${spec%%=*}; ver=${spec#*=}; [ "$ver" = "$spec" ] && ver=
    have=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$name" 2>/dev/null || true)
    case "$have" in ii*) ;; *) return 1 ;; esac
    [ -z "$ver" ] || [ "${have#*|}" = "$ver" ] || return 1
  done
}

apt_install_checked() {
  local -a all=("${bookworm_pkgs[@]}" "${backports_pkgs[@]}")
  if installed_ok "${all[@]}"; then echo "packages: all present at pinned versions"; return; fi
  phase "apt: planning"
  local plan allowed name
  plan=$(DEBIAN_FRONTEND=noninteractive apt-get install -s -y --no-install-recommends -t bookworm "${all[@]}")
  # Every package apt wants to touch must be either on our list or a new (not upgraded) bookworm package.
  allowed=" $(printf '%s\n' "${all[@]}" | sed 's/=.*//' | tr '\n' ' ') "
  local bad=0
  # Upgrades within bookworm (point releases, security) are fine; anything from Debian 13 that is
  # not one of the pinned arch-all packages is not (it would start a partial dist-upgrade).
  while read -r line; do
    name=$(awk '{print $2}' <<<"$line")
    if grep -qE 'trixie|Debian:13|bpo13' <<<"$line" && [[ "$allowed" != *" $name "* ]]; then
      echo "REFUSED: $line"; bad=1
    fi
  done < <(grep -E '^Inst ' <<<"$plan")
  grep -q '^Remv ' <<<"$plan" && { grep '^Remv ' <<<"$plan"; echo "REFUSED: the plan removes packages"; bad=1; }
  [ "$bad" = 0 ] || die "apt would change packages outside the pinned set; refusing (see REFUSED lines)"
  phase "apt: installing $(grep -c '^Inst ' <<<"$plan") packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm "${all[@]}" >/dev/null
  installed_ok "${all[@]}" || die "packages missing after install"
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
  local tree="$CRASHHP_CACHE/linux-$LINUX_TREE_VERSION" tarball=/usr/src/linux-source-7.3.tar.xz
  if [ -f "$tree/.crashhp-pristine" ]; then return; fi
  phase "unpacking Linux $LINUX_TREE_VERSION"
  [ -f "$tarball" ] || die "$tarball missing (linux-source-7.3 not installed?)"
  local sum; sum=$(sha256sum "$tarball" | cut -d' ' -f1)
  [ "$sum" = "$LINUX_TARBALL_SHA256" ] || die "linux source tarball sha256 $sum != pinned $LINUX_TARBALL_SHA256"
  rm -rf "$tree" "$tree.tmp"; mkdir -p "$tree.tmp"
  tar -C "$tree.tmp" --strip-components=1 -xJf "$tarball"
  local v; v=$(make -s -C "$tree.tmp" kernelversion)
  [ "$v" = "$LINUX_TREE_VERSION" ] || die "unpacked tree is $v, expected $LINUX_TREE_VERSION"
  touch "$tree.tmp/.crashhp-pristine"
  mv "$tree.tmp" "$tree"
}

udev_extract() {
  local dir="$CRASHHP_CACHE/udev-$UDEV_VER"
  [ -x "$dir/bin/udevadm" ] && return
  phase "extracting udevadm $UDEV_VER"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q "udev=$UDEV_VER" >/dev/null 2>&1) || die "apt-get download udev failed"
  local deb; deb=$(ls "$tmp"/udev_*.deb)
  [ "$(sha256sum "$deb" | cut -d' ' -f1)" = "$UDEV_DEB_SHA256" ] || die "udev .deb sha256 mismatch"
  rm -rf "$dir.tmp"; dpkg-deb -x "$deb" "$dir.tmp"; mv "$dir.tmp" "$dir"; rm -rf "$tmp"
}

# busybox-static for ppc64el, downloaded by apt through a private configuration (its own lists and
# cache in $CRASHHP_CACHE, bookworm main for ppc64el only) and extracted, never installed.
ppc_busybox_extract() {
  local dir="$CRASHHP_CACHE/ppc64el/busybox-${PPC_BUSYBOX_VER#*:}"
  [ -x "$dir/bin/busybox" ] && return
  phase "extracting busybox-static:ppc64el $PPC_BUSYBOX_VER"
  local a="$CRASHHP_CACHE/ppc64el/apt"
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/etc/preferences.d"
  printf 'deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n' \
    >"$a/etc/sources.list"
  local -a opts=(-o APT::Architecture=ppc64el -o APT::Architectures::=ppc64el
    -o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" -o Dir::State::status=/dev/null
    -o Dir::Etc::SourceList="$a/etc/sources.list" -o Dir::Etc::SourceParts=-
    -o Dir::Etc::Preferences=- -o Dir::Etc::PreferencesParts="$a/etc/preferences.d")
  apt-get "${opts[@]}" update -qq || die "apt-get update (ppc64el) failed"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get "${opts[@]}" download -q "busybox-static=$PPC_BUSYBOX_VER" >/dev/null 2>&1) \
    || die "apt-get download busybox-static:ppc64el failed"
  local deb; deb=$(ls "$tmp"/busybox-static_*_ppc64el.deb)
  [ "$(sha256sum "$deb" | cut -d' ' -f1)" = "$PPC_BUSYBOX_DEB_SHA256" ] || die "busybox ppc64el .deb sha256 mismatch"
  rm -rf "$dir.tmp"; dpkg-deb -x "$deb" "$dir.tmp"
  local hdr; hdr=$(readelf -hlW "$dir.tmp/bin/busybox")
  grep -q 'Machine: *PowerPC64' <<<"$hdr" && ! grep -q INTERP <<<"$hdr" || die "busybox ppc64el: not a static ppc64 binary"
  mv "$dir.tmp" "$dir"; rm -rf "$tmp"
}

main() {
  need_root
  mkdir -p "$CRASHHP_CACHE"
  apt_sources
  apt_install_checked
  rust_src_link
  bindgen_install
  linux_tree
  udev_extract
  ppc_busybox_extract
  "$here/setup-fadump-qemu.sh"
  echo "setup: ok (cache: $CRASHHP_CACHE)"
}
main "$@"
