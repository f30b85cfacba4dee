#!/usr/bin/env bash
# The pattern tool on a 64 KiB-page pseries guest: boots the kernel with an initramfs of busybox and
# crashhp-pattern (scripts/build-guest-tools.sh ppc64le), runs `crashhp-pattern 64 NONCE RANGE...`
# and reads each printed physical address back through /dev/mem. Fails unless every printed address
# is at offset 0x1c0 of a page of the kernel's page size (KernelPageSize of /proc/self/smaps, not the
# tool's own idea of it), names itself and the nonce, and /dev/mem holds that pattern there.
#   usage: scripts/ppc-pattern-smoke.sh [vmlinux]   (default $CRASHHP_CACHE/out/ppc64le/vmlinux-rust)
# Output: target/artifacts/ppc-pattern-smoke/console.log
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091 # lib.sh: phase, die, CRASHHP_CACHE
. "$repo/scripts/lib.sh"
kernel=${1:-$CRASHHP_CACHE/out/ppc64le/vmlinux-rust}
[ -f "$kernel" ] || die "$kernel missing: run scripts/build-kernel.sh rust ppc64le"
bb=("$CRASHHP_CACHE"/ppc64el/busybox/bin/busybox)
[ -x "${bb[0]}" ] || die "ppc64el busybox missing: run scripts/setup.sh"
tools=$("$repo/scripts/build-guest-tools.sh" ppc64le | tail -n1)
art="$repo/target/artifacts/ppc-pattern-smoke"
rm -rf "$art"; mkdir -p "$art"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
nonce=$(date +%s%N)
# The whole of memory, then each 256 MiB of the 2 GiB guest (some of them get "none").
ranges="0:ffffffffff"
for i in 0 1 2 3 4 5 6 7; do ranges+=" $(printf '%x:%x' $(( i << 28 )) $(( ((i + 1) << 28) - 1 )))"; done

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,tmp}
cp "${bb[0]}" "$root/bin/busybox"
cp "$tools/crashhp-pattern" "$root/bin/crashhp-pattern"
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t devtmpfs dev /dev
echo "@@PAGESIZE \$(grep -m1 KernelPageSize /proc/self/smaps)"
crashhp-pattern 64 $nonce $ranges >/tmp/out 2>&1 &
i=0; until grep -q @@PATTERNS-READY /tmp/out || [ \$i -ge 300 ]; do sleep 0.1; i=\$((i + 1)); done
sed 's/^/@@OUT /' /tmp/out
grep -E '^[0-9]+ 0x' /tmp/out | while read -r k pa pat; do
  echo "@@MEM \$k \$pa \$(dd if=/dev/mem bs=64 skip=\$((pa / 64)) count=1 2>/dev/null)"
done
echo o >/proc/sysrq-trigger
sleep 10
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"

phase "booting pseries under TCG ($(basename "$kernel"))"
timeout 600 qemu-system-ppc64 -accel tcg -cpu power9 \
  -M pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off \
  -m 2G -smp 1 -nodefaults -display none -no-reboot -serial stdio \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" -append "console=hvc0 panic=-1 quiet" \
  </dev/null >"$art/console.log" 2>"$art/qemu.stderr" || die "QEMU failed or timed out (see $art)"
tr -d '\r' <"$art/console.log" | grep '^@@' | tee "$art/result.txt"

# --- checks -----------------------------------------------------------------------------------
kb=$(sed -n 's/^@@PAGESIZE KernelPageSize: *\([0-9]*\) kB$/\1/p' "$art/result.txt")
[ -n "$kb" ] || die "no KernelPageSize from the guest"
page=$((kb * 1024))
grep -q '^@@OUT @@PATTERNS-READY$' "$art/result.txt" || die "crashhp-pattern did not print @@PATTERNS-READY"
n=0
while read -r _ k pa pat; do
  [ $((pa % page)) = $((0x1c0)) ] || die "range $k: $pa is not at 0x1c0 of a $page-byte page"
  [ "${#pat}" = 64 ] || die "range $k: pattern '$pat' is not 64 bytes"
  case "$pat" in "CRASHHP $pa $nonce "*) ;; *) die "range $k: pattern '$pat' does not name $pa and the nonce" ;; esac
  mem=$(sed -n "s/^@@MEM $k $pa //p" "$art/result.txt")
  [ "$mem" = "$pat" ] || die "range $k: /dev/mem at $pa holds '$mem', not the printed pattern"
  n=$((n + 1))
done < <(grep -E '^@@OUT [0-9]+ 0x' "$art/result.txt")
[ "$n" -gt 0 ] || die "no pattern line"
phase "ppc-pattern-smoke: $n pattern(s) at 0x1c0 of $kb KiB pages, each found at its address in /dev/mem"
