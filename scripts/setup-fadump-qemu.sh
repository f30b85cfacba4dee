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

# --- pins: scripts/pins.sh ("chroot qemu-system-ppc"): any revision of upstream >= 10.2 that
# trixie-backports has today, resolved from the host's apt indexes (setup.sh adds trixie-backports
# at priority 50); the fadump feature is then probed in the chroot's binary, not assumed from a
# version string. The chroot is keyed by the resolved revision.
# shellcheck source=scripts/pins.sh
. "$here/pins.sh"
MIRROR='http://deb.debian.org/debian'
KEYRING='/usr/share/keyrings/debian-archive-keyring.gpg'
read -r FADUMP_SUITE FADUMP_QEMU_VER < <(pin_candidates qemu-system-ppc amd64-chroot) || true
[ -n "${FADUMP_QEMU_VER:-}" ] || die "no qemu-system-ppc >= 10.2 in trixie-backports (apt-cache madison qemu-system-ppc)"
FADUMP_BASE=${FADUMP_SUITE%-backports}

root_dir() { echo "$CRASHHP_CACHE/trixie-qemu-${FADUMP_QEMU_VER#*:}"; }

case "${1:-}" in
  --print-root) root_dir; exit 0 ;;
  '') ;;
  *) die "usage: $0 [--print-root]" ;;
esac

dir=$(root_dir)
marker="$dir/.crashhp-complete"
if [ -f "$marker" ] && [ -x "$dir/usr/bin/qemu-system-ppc64" ]; then
  pin_note qemu-system-ppc amd64-chroot "$FADUMP_SUITE" "$FADUMP_QEMU_VER" "$(pin_index_sha qemu-system-ppc "$FADUMP_QEMU_VER")"
  echo "fadump qemu: present ($(head -n1 "$marker"))"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "setup-fadump-qemu must run as root (mmdebstrap --mode=root, chroot)"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing (scripts/setup.sh installs it)"
[ -e "$dir" ] && die "$dir exists without $marker: remove it by hand"

phase "mmdebstrap: $FADUMP_BASE chroot with qemu-system-ppc $FADUMP_QEMU_VER ($FADUMP_SUITE)"
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
  "$FADUMP_BASE" "$tmp" \
  "deb [signed-by=$KEYRING] $MIRROR $FADUMP_BASE main" \
  "deb [signed-by=$KEYRING] $MIRROR $FADUMP_SUITE main" \
  || die "mmdebstrap failed (is $FADUMP_QEMU_VER still in $FADUMP_SUITE-backports? apt-cache madison qemu-system-ppc)"

# --- checks -----------------------------------------------------------------------------------------
got=$(grep '^qemu-system-ppc ' "$tmp/crashhp-manifest.txt" | cut -d' ' -f2)
[ "$got" = "$FADUMP_QEMU_VER" ] || die "chroot has qemu-system-ppc '$got', pinned $FADUMP_QEMU_VER"
ver=$(chroot "$tmp" /usr/bin/qemu-system-ppc64 --version | head -n1)
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
# The probe: the device tree a pseries machine gives its guest must have the fadump RTAS call
# (/rtas/ibm,configure-kernel-dump, which Linux checks before it offers fadump). QEMU, stopped
# before the first instruction, writes the tree it built at reset (QMP dumpdtb) and quits; it runs
# through the wrapper (the chroot with /dev, /proc, /tmp).
probe=$(mktemp -d)
printf '%s\n' '{"execute":"qmp_capabilities"}' \
  "{\"execute\":\"dumpdtb\",\"arguments\":{\"filename\":\"$probe/pseries.dtb\"}}" '{"execute":"quit"}' |
  FADUMP_QEMU_ROOT=$tmp timeout 60 "$here/qemu-system-ppc64-fadump" -M pseries,x-vof=on -accel tcg -m 1G -S \
    -display none -nodefaults -qmp stdio >"$probe/log" 2>&1 || true
[ -s "$probe/pseries.dtb" ] || die "qemu-system-ppc64 ($ver) did not write its pseries device tree: $(tail -c 300 "$probe/log")"
grep -aq 'ibm,configure-kernel-dump' "$probe/pseries.dtb" ||
  die "qemu-system-ppc64 ($ver): its pseries device tree has no ibm,configure-kernel-dump (no fadump)"
rm -rf "$probe"
if ! mv -T "$tmp" "$dir" 2>/dev/null; then
  [ -f "$marker" ] || die "could not rename $tmp to $dir"
  echo "fadump qemu: a concurrent run finished first; keeping $dir"
  exit 0
fi
trap - EXIT
pin_note qemu-system-ppc amd64-chroot "$FADUMP_SUITE" "$FADUMP_QEMU_VER" "$(pin_index_sha qemu-system-ppc "$FADUMP_QEMU_VER")" "probe: /rtas/ibm,configure-kernel-dump present"
phase "fadump qemu: $ver in $dir ($secs s, $size, $npk packages)"
