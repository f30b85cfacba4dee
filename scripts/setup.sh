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
# ppc64el userland of the fadump smoke, dynamically linked, extracted (never installed) with the
# runtime closure of each binary: every .deb pinned (version + sha256), downloaded through a
# private apt configuration per suite like busybox above; only the binaries, their loader and the
# libraries of their NEEDED closure (checked with readelf) are kept, in
# $CRASHHP_CACHE/ppc64el/userland-<hash of these pins>/root (linked as ppc64el/userland), which the
# smoke copies into its initramfs.
# - udevadm (udev rule tests in the first kernel): bookworm, the same udev as UDEV_VER, at the
#   standard paths of the initramfs.
PPC_UDEVADM_BINS=(/bin/udevadm)
PPC_UDEVADM_DEBS=( # package version sha256 (bookworm main, ppc64el)
  "udev $UDEV_VER 31e56691880898bd6080078586c258255e5a087f445133a4fd225496b9506ef5"
  "libc6 2.36-9+deb12u14 b3fbe86d5b7cf02d8653b34a0753c6b5bc89dd962ef843c355cdd154ea87baff"
  "libkmod2 30+20221128-1 ccd48192db3da110e4b3ada1903bd86099bea5cc224effac53a7f4479b53fb4b"
  "libssl3 3.0.20-1~deb12u2 63f6227ceee7fc5839c748e53da922d9805307cae9a2033f2acc3a7994c94656"
  "liblzma5 5.4.1-1+deb12u1 363a40e5433b084989ecce473af3bd2eaebe4be53e078aac2f77ddd4c56421a0"
  "libzstd1 1.5.4+dfsg2-5 fb8cdf6c07f8cbf6760d8f6da5ec75c8bca9cea042734456a2b7e6e73b915495"
  "libacl1 2.3.1-3 811988ab6fe6d60e2c50407abd02e7a59d5857e5adee363afe03788beadcabdc"
  "libblkid1 2.38.1-5+deb12u3 add6a7e4c96fa6797c7c9a17f690d567b23f59d83280c11cf1bddb8defcb00b1"
  "libcap2 1:2.66-4+deb12u3+b1 dbc89213ceceb0897e73f4ac244804773cd36c3d6249c04d8d2fb1b7551c1b81"
  "libselinux1 3.4-1+b6 d5e2ecc9044f11101140456fd7c7496422a52275461a1c4c46d0ca5a41a0d772"
  "libpcre2-8-0 10.42-1 13cfe079e615d5bba2b73bf856fcac7ffe8ad8ff94d5eaac7ba899f69fb2c748"
)
# - makedumpfile (in the fadump capture kernel): trixie's 1.7.6. Bookworm's 1.7.2 cannot filter a
#   Linux >= 6.9 ppc64 dump: it finds vmalloc_start only through SYMBOL(vmap_area_list), gone from
#   VMCOREINFO (1.7.6 also reads NUMBER(VMALLOC_START)), so it never sets up the vmemmap translation
#   and reads struct pages at their linear-map address ("readmem: ... addr:c00c000000000000", "Can't
#   exclude unnecessary pages"). It needs glibc >= 2.38, so its closure (trixie's glibc included)
#   lives under /opt/trixie and /usr/bin/makedumpfile is a wrapper that runs it through that loader.
PPC_MAKEDUMPFILE_PREFIX=/opt/trixie
PPC_MAKEDUMPFILE_BINS=(/usr/bin/makedumpfile)
PPC_MAKEDUMPFILE_DEBS=( # package version sha256 (trixie main, ppc64el)
  "makedumpfile 1:1.7.6-1 121edbfc87f81f71cb64970025586f920b5cdb6955338f5c3ab18c06186da839"
  "libc6 2.41-12+deb13u4 917cbd81a9038133bd58bbfe0991db889a78eb446be2080015b7804942b45ec2"
  "libdw1t64 0.192-4 648eff54db99a48378091d4bc5dccced6d80941e6ccadce908fe1b9a15e955f7"
  "libelf1t64 0.192-4 23258591059aee59b7c2cf2ce68976d2a1510beddacd7432d726d1d62f0616d9"
  "liblzo2-2 2.10-3+b1 31eb94baf892b456bb6d8ff29df5d070875a70df37adf3b3c347e7db7fd0d9db"
  "libzstd1 1.5.7+dfsg-1 1cdefa11a7d31bb36b610d4e44551870a44dfc6cac8359ebe9f9061a4f830773"
  "zlib1g 1:1.3.dfsg+really1.3.1-1+b1 f526e830310db11983cf51cfde95a74bc449a7bdc44b6ce68827d78802f1b4ae"
  "libbz2-1.0 1.0.8-6 10390b9ded521aaf6c37df8f63b32a0f127f96d0818c34e60c6ea5260fd99e39"
  "liblzma5 5.8.1-1+deb13u1 8e02e866cf1bb0e98c56a56c79a47c3011055074414cd56482f8db20738adeea"
)
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

# ppc_apt_init SUITE: the private apt configuration for ppc64el downloads from SUITE main: its own
# lists and cache in $CRASHHP_CACHE/ppc64el (apt: bookworm, apt-<suite>: others), an empty dpkg status
# (nothing is installed). Sets ppc_apt_opts; updates each suite's lists once per run.
ppc_apt_opts=()
ppc_apt_updated=" "
ppc_apt_init() {
  local suite=${1:-bookworm} a="$CRASHHP_CACHE/ppc64el/apt"
  [ "$suite" = bookworm ] || a="$a-$suite"
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/etc/preferences.d"
  printf 'deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    "$suite" >"$a/etc/sources.list"
  ppc_apt_opts=(-o APT::Architecture=ppc64el -o APT::Architectures::=ppc64el
    -o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" -o Dir::State::status=/dev/null
    -o Dir::Etc::SourceList="$a/etc/sources.list" -o Dir::Etc::SourceParts=-
    -o Dir::Etc::Preferences=- -o Dir::Etc::PreferencesParts="$a/etc/preferences.d")
  [[ "$ppc_apt_updated" != *" $suite "* ]] || return 0
  apt-get "${ppc_apt_opts[@]}" update -qq || die "apt-get update (ppc64el, $suite) failed"
  ppc_apt_updated+="$suite "
}

# busybox-static for ppc64el, downloaded by apt through the private configuration and extracted,
# never installed.
ppc_busybox_extract() {
  local dir="$CRASHHP_CACHE/ppc64el/busybox-${PPC_BUSYBOX_VER#*:}"
  [ -x "$dir/bin/busybox" ] && return
  phase "extracting busybox-static:ppc64el $PPC_BUSYBOX_VER"
  ppc_apt_init
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get "${ppc_apt_opts[@]}" download -q "busybox-static=$PPC_BUSYBOX_VER" >/dev/null 2>&1) \
    || die "apt-get download busybox-static:ppc64el failed"
  local deb; deb=$(ls "$tmp"/busybox-static_*_ppc64el.deb)
  [ "$(sha256sum "$deb" | cut -d' ' -f1)" = "$PPC_BUSYBOX_DEB_SHA256" ] || die "busybox ppc64el .deb sha256 mismatch"
  rm -rf "$dir.tmp"; dpkg-deb -x "$deb" "$dir.tmp"
  local hdr; hdr=$(readelf -hlW "$dir.tmp/bin/busybox")
  grep -q 'Machine: *PowerPC64' <<<"$hdr" && ! grep -q INTERP <<<"$hdr" || die "busybox ppc64el: not a static ppc64 binary"
  mv "$dir.tmp" "$dir"; rm -rf "$tmp"
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
      [ -n "$hit" ] || die "$so (NEEDED by $f) is in no extracted package: add its package to PPC_USERLAND_DEBS"
      queue+=("$hit")
    done
  done
  printf '%s\n' "${out[@]}" | awk '!seen[$0]++'
}

# ppc_tree SUITE PREFIX DEST BINS DEBS (the last two: array names): downloads the DEBS from SUITE
# (sha256 and control fields checked), extracts them, and copies the NEEDED closure of BINS into
# DEST/root/PREFIX; then checks that the copy holds its own closure and only PowerPC64 ELFs. With a
# PREFIX the binaries run through the copied loader (the interpreter path is not copied).
ppc_tree() {
  local suite=$1 prefix=$2 dest=$3 spec name ver sum deb f x
  local -n bins=$4 debs=$5
  local no_interp=; [ -z "$prefix" ] || no_interp=1
  x=$(mktemp -d "$dest/.x.XXXXXX")
  mkdir -p "$x/debs" "$x/root" "$dest/root$prefix"
  ppc_apt_init "$suite"
  for spec in "${debs[@]}"; do
    read -r name ver sum <<<"$spec"
    (cd "$x/debs" && apt-get "${ppc_apt_opts[@]}" download -q "$name=$ver" >/dev/null 2>&1) ||
      die "apt-get download $name=$ver ($suite, ppc64el) failed (the pin moved? see: apt-cache ${ppc_apt_opts[*]} policy $name)"
    deb=$(ls "$x/debs/${name}_"*_ppc64el.deb)
    [ "$(sha256sum "$deb" | cut -d' ' -f1)" = "$sum" ] || die "$name ppc64el .deb sha256 mismatch"
    [ "$(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ')" = "Package: $name Version: $ver Architecture: ppc64el " ] ||
      die "$deb is not $name $ver ppc64el"
    dpkg-deb -x "$deb" "$x/root"
    echo "$suite $name $ver $sum" >>"$dest/MANIFEST"
  done
  elf_closure "$x/root" "${bins[@]}" >"$x/files"
  while read -r f; do
    mkdir -p "$dest/root$prefix$(dirname "$f")"
    cp -a "$x/root$f" "$dest/root$prefix$f"
    echo "$prefix$f" >>"$dest/FILES"
  done <"$x/files"
  elf_closure "$dest/root$prefix" "${bins[@]}" | cmp -s - "$x/files" ||
    die "ppc64el userland: the trimmed $suite tree does not hold its own closure"
  while read -r f; do
    [ -L "$dest/root$prefix$f" ] || readelf -h "$dest/root$prefix$f" | grep -q 'Machine: *PowerPC64' ||
      die "ppc64el userland: $f is not a PowerPC64 ELF"
  done <"$x/files"
  rm -rf "$x"
}

# udevadm (bookworm) and makedumpfile (trixie) for ppc64el with their runtime closures, built in a
# temporary directory and renamed when complete; ppc64el/userland points to the current one.
ppc_userland_extract() {
  local base="$CRASHHP_CACHE/ppc64el" key dir tmp p libdirs ver
  key=$(printf '%s\n' "${PPC_UDEVADM_BINS[@]}" "${PPC_UDEVADM_DEBS[@]}" "$PPC_MAKEDUMPFILE_PREFIX" \
    "${PPC_MAKEDUMPFILE_BINS[@]}" "${PPC_MAKEDUMPFILE_DEBS[@]}" | sha256sum | cut -c1-12)
  dir="$base/userland-$key"
  if [ ! -f "$dir/.crashhp-complete" ]; then
    [ ! -e "$dir" ] || die "$dir exists without .crashhp-complete: remove it by hand"
    phase "extracting the ppc64el userland: udevadm (bookworm), makedumpfile (trixie)"
    mkdir -p "$base"
    tmp=$(mktemp -d "$base/.userland.XXXXXX")
    # shellcheck disable=SC2064 # expand $tmp now: it is local
    trap "rm -rf '$tmp'" EXIT
    ppc_tree bookworm "" "$tmp" PPC_UDEVADM_BINS PPC_UDEVADM_DEBS
    ppc_tree trixie "$PPC_MAKEDUMPFILE_PREFIX" "$tmp" PPC_MAKEDUMPFILE_BINS PPC_MAKEDUMPFILE_DEBS
    # The wrapper: trixie's loader with trixie's library directories (only those of the closure).
    p=$PPC_MAKEDUMPFILE_PREFIX
    libdirs=$(grep "^$p/" "$tmp/FILES" | grep -F '.so' | xargs -n1 dirname | sort -u | paste -sd:)
    if [ ! -f "$tmp/root$p/usr/lib/powerpc64le-linux-gnu/ld64.so.2" ] || [ -z "$libdirs" ]; then
      die "ppc64el userland: trixie loader or libraries missing"
    fi
    mkdir -p "$tmp/root/usr/bin"
    read -r _ ver _ <<<"${PPC_MAKEDUMPFILE_DEBS[0]}"
    printf '#!/bin/sh\n# makedumpfile %s (Debian trixie) through its own loader: see scripts/setup.sh\nexec %s --library-path %s %s "$@"\n' \
      "$ver" "$p/usr/lib/powerpc64le-linux-gnu/ld64.so.2" "$libdirs" "$p/usr/bin/makedumpfile" \
      >"$tmp/root/usr/bin/makedumpfile"
    chmod 755 "$tmp/root/usr/bin/makedumpfile"
    printf 'built %s, %s files, %s\n' "$(date -u +%FT%TZ)" "$(wc -l <"$tmp/FILES")" \
      "$(du -sh "$tmp/root" | cut -f1)" >"$tmp/.crashhp-complete"
    chmod 755 "$tmp"
    mv -T "$tmp" "$dir" 2>/dev/null || [ -f "$dir/.crashhp-complete" ] || die "cannot create $dir"
    rm -rf "$tmp"; trap - EXIT
  fi
  if [ "$(readlink "$base/userland" 2>/dev/null)" != "userland-$key" ]; then
    ln -sfn "userland-$key" "$base/.userland-link"
    mv -T "$base/.userland-link" "$base/userland"
  fi
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
  ppc_userland_extract
  "$here/setup-fadump-qemu.sh"
  echo "setup: ok (cache: $CRASHHP_CACHE)"
}
main "$@"
