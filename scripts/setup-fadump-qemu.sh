#!/usr/bin/env bash
# QEMU with pseries fadump (RTAS ibm,configure-kernel-dump, QEMU >= 10.2) for the PowerPC fadump
# scenarios, without touching the bookworm host: a minimal Debian 13 (trixie) chroot made with
# mmdebstrap that holds qemu-system-ppc from trixie-backports (pinned) and its dependencies.
# bookworm-backports stops at 10.0.2 (no fadump), trixie main has 10.0.x, and installing the
# trixie-backports package on the host would pull libc6 2.41 (a partial dist-upgrade).
#
#   $CRASHHP_CACHE/trixie-qemu-<version>/        the chroot; .crashhp-complete when finished
#   scripts/qemu-system-ppc64-fadump ...         runs its qemu-system-ppc64 (host paths visible)
#
# Called by scripts/setup.sh (as root). Idempotent: with the marker present it does nothing. Built
# in a temporary directory next to the target and renamed into place, so a killed run leaves no
# half chroot behind under the final name; concurrent runs race only on the final rename.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

# --- pins -------------------------------------------------------------------------------------------
# trixie-backports. When a newer backport replaces it, deb.debian.org drops this version and the
# build fails loudly (apt: version not found): bump the pin (and FADUMP_QEMU_UPSTREAM) then.
FADUMP_QEMU_VER='1:11.1.3+ds-1~bpo13+1'
FADUMP_QEMU_UPSTREAM='11.1.3'                  # what `qemu-system-ppc64 --version` must print
FADUMP_SUITE='trixie'
MIRROR='http://deb.debian.org/debian'
KEYRING='/usr/share/keyrings/debian-archive-keyring.gpg'

root_dir() { echo "$CRASHHP_CACHE/trixie-qemu-${FADUMP_QEMU_VER#*:}"; }

case "${1:-}" in
  --print-root) root_dir; exit 0 ;;
  '') ;;
  *) die "usage: $0 [--print-root]" ;;
esac

dir=$(root_dir)
marker="$dir/.crashhp-complete"
if [ -f "$marker" ] && [ -x "$dir/usr/bin/qemu-system-ppc64" ]; then
  echo "fadump qemu: present ($(head -n1 "$marker"))"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "setup-fadump-qemu must run as root (mmdebstrap --mode=root, chroot)"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing (scripts/setup.sh installs it)"
[ -e "$dir" ] && die "$dir exists without $marker: remove it by hand"

phase "mmdebstrap: $FADUMP_SUITE chroot with qemu-system-ppc $FADUMP_QEMU_VER"
mkdir -p "$CRASHHP_CACHE"
tmp=$(mktemp -d "$CRASHHP_CACHE/.trixie-qemu.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
v=$FADUMP_QEMU_VER
# essential: only Essential:yes packages (dpkg, coreutils, ...; no apt) plus the includes and their
# Depends. No Recommends (qemu-system-gui, qemu-utils, block/spice modules are not needed).
# Documentation, man pages and translations are not installed (copyright files are kept), nor the
# 32-bit qemu-system-ppc binary (18 MB) that shares the package with qemu-system-ppc64.
mmdebstrap --mode=root --variant=essential --quiet \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/bin/qemu-system-ppc' \
  --include="qemu-system-ppc=$v,qemu-system-common=$v,qemu-system-data=$v" \
  --customize-hook='chroot "$1" dpkg-query -W -f "\${Package} \${Version}\n" >"$1/crashhp-manifest.txt"' \
  "$FADUMP_SUITE" "$tmp" \
  "deb [signed-by=$KEYRING] $MIRROR $FADUMP_SUITE main" \
  "deb [signed-by=$KEYRING] $MIRROR $FADUMP_SUITE-backports main" \
  || die "mmdebstrap failed (is $FADUMP_QEMU_VER still in $FADUMP_SUITE-backports? apt-cache madison qemu-system-ppc)"

# --- checks -----------------------------------------------------------------------------------------
got=$(grep '^qemu-system-ppc ' "$tmp/crashhp-manifest.txt" | cut -d' ' -f2)
[ "$got" = "$FADUMP_QEMU_VER" ] || die "chroot has qemu-system-ppc '$got', pinned $FADUMP_QEMU_VER"
ver=$(chroot "$tmp" /usr/bin/qemu-system-ppc64 --version | head -n1)
grep -q "version $FADUMP_QEMU_UPSTREAM " <<<"$ver " || die "chroot qemu-system-ppc64: '$ver', want $FADUMP_QEMU_UPSTREAM"
# The fadump RTAS call and both pseries firmwares must be there.
grep -q 'ibm,configure-kernel-dump' "$tmp/usr/bin/qemu-system-ppc64" || die "qemu-system-ppc64 lacks ibm,configure-kernel-dump"
for f in slof.bin vof.bin; do
  [ -f "$tmp/usr/share/qemu/$f" ] || die "chroot lacks /usr/share/qemu/$f"
done
# Mount points for the wrapper's bind mounts (it creates others it needs at run time).
mkdir -p "$tmp/dev" "$tmp/proc" "$tmp/sys" "$tmp/tmp" "$tmp/var/tmp" "$tmp/work" "$tmp/root" "$tmp/home"
secs=$(( $(date +%s) - t0 ))
size=$(du -sh "$tmp" | cut -f1)
npk=$(wc -l <"$tmp/crashhp-manifest.txt")
printf '%s\n%s\nbuilt %s in %ss, %s, %s packages\n' "qemu-system-ppc $FADUMP_QEMU_VER" "$ver" \
  "$(date -u +%FT%TZ)" "$secs" "$size" "$npk" >"$tmp/.crashhp-complete"
chmod 755 "$tmp"
if ! mv -T "$tmp" "$dir" 2>/dev/null; then
  [ -f "$marker" ] || die "could not rename $tmp to $dir"
  echo "fadump qemu: a concurrent run finished first; keeping $dir"
  exit 0
fi
trap - EXIT
phase "fadump qemu: $ver in $dir ($secs s, $size, $npk packages)"
