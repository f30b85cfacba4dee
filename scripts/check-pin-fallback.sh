#!/usr/bin/env bash
# The fallback of set-up, tested: in a scratch cache, set-up runs with CRASHHP_PIN_UNAVAILABLE naming
# one package of each route that has a second candidate today, as if the archive had dropped the
# revision scripts/pins.recorded names for it (as it dropped trixie's libc6 2.41-12+deb13u4 on
# 2026-11-29). Set-up must succeed, say for each that it fell back and to what, and what it got must
# work: the host install plan is valid (simulated: the machine is not changed), the extracted udevadm
# runs, the extracted busybox is a static PowerPC64 binary.
#   apt route:  mmdebstrap:all        (bookworm 1.3.5 -> bookworm-backports)
#   deb route:  udev:amd64            (bookworm -> bookworm-security)
#               busybox-static:ppc64el (bookworm 1.35 -> trixie's static build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
gone="mmdebstrap:all udev:amd64 busybox-static:ppc64el"
scratch=$(mktemp -d /var/tmp/crashhp-fallback.XXXXXX)
chmod 755 "$scratch"
trap 'rm -rf "$scratch"' EXIT
log="$scratch/setup.log"
set +e
CRASHHP_CACHE="$scratch/cache" CRASHHP_PIN_UNAVAILABLE="$gone" CRASHHP_SETUP_PLAN_ONLY=1 \
  "$here/setup.sh" apt_sources apt_install_checked udev_extract ppc_busybox_extract >"$log" 2>&1
rc=$?
set -e
grep -E '^(pin|packages|REFUSED|error):' "$log" | grep -E 'CRASHHP_PIN_UNAVAILABLE|REFUSED|error|plan' || true
[ "$rc" = 0 ] || { tail -n 20 "$log"; die "set-up failed with $gone unavailable"; }
bad=0
for p in $gone; do
  line=$(grep -E "^pin: $p .*treated as unavailable \(CRASHHP_PIN_UNAVAILABLE\): fallback to " "$log" || true)
  if [ -z "$line" ]; then echo "FAILED: set-up did not report a fallback for $p"; bad=1; continue; fi
  rec=$(awk -v n="${p%%:*}" -v a="${p#*:}" '$1 == n && $2 == a { print $4 }' "$here/pins.recorded")
  got=${line##*fallback to }; got=${got%% *}; got=${line##*fallback to $got }; got=${got%%]*}
  [ "$got" != "$rec" ] || { echo "FAILED: $p fell back to the recorded revision $rec itself"; bad=1; }
done
grep -q '^packages: plan ok, not installed' "$log" || { echo "FAILED: no valid install plan for the apt route"; bad=1; }
u="$scratch/cache/udev/bin/udevadm"
v=$("$u" --version 2>&1) || { echo "FAILED: the fallback udevadm does not run: $v"; bad=1; }
echo "fallback udevadm --version: $v"
if (static_elf "$scratch/cache/ppc64el/busybox/bin/busybox" PowerPC64); then
  echo "fallback busybox: static PowerPC64 ($(readlink "$scratch/cache/ppc64el/busybox"))"
else echo "FAILED: the fallback busybox is not a static PowerPC64 binary"; bad=1; fi
[ "$bad" = 0 ] || { cp "$log" /var/tmp/crashhp-fallback.log; die "set-up's fallback check failed (log: /var/tmp/crashhp-fallback.log)"; }
echo "fallback: set-up succeeded with $gone unavailable"
