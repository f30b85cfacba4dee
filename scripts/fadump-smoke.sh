#!/usr/bin/env bash
# Prototype of a PowerPC fadump scenario (QEMU pseries under TCG, QEMU >= 10.2 from the trixie
# chroot, scripts/qemu-system-ppc64-fadump): boot with fadump=on, check that fadump is enabled and
# registered, optionally hot-add a DIMM and a CPU core over QMP and write a pattern into the DIMM,
# crash with sysrq, and check that the firmware-assisted capture boot (the same kernel, booted again
# by QEMU after the os-term RTAS call) exports /proc/vmcore with the pattern, the notes and the dmesg.
# In the first kernel, after the hotplug, bookworm's udevadm (ppc64el) tests the ppc64 udev rules
# (udev/*-ppc64.rules): no fadump re-registration while hotplug_ready reads 1, and (controls, with
# bind mounts over /sys/kernel/fadump) a re-registration when it reads 0 or fadump is not enabled.
# In the capture kernel, makedumpfile 1.7.7 (static, built from the pinned upstream tarball: 1.7.2 cannot filter a
# Linux >= 6.9 ppc64 dump, see scripts/setup.sh) writes a filtered dump (-d 31 -l) and extracts the
# dmesg from /proc/vmcore. Both tools come from $CRASHHP_CACHE/ppc64el/userland (scripts/setup.sh).
# The register check resolves the crashing CPU's saved nip in the vmlinux's symbols (crash_fadump).
# Run by scripts/test.sh (vof hotplug).
#   usage: scripts/fadump-smoke.sh [vmlinux] [vof|slof] [hotplug|nohotplug]
#     vmlinux  default $CRASHHP_CACHE/out/ppc64le/vmlinux-rust (copied first: a build may replace it)
# Environment: FADUMP_MEM (default 2G), FADUMP_CRASHKERNEL (default 512M, the boot memory fadump
# preserves; pseries minimum 320M), FADUMP_SMP (default below), FADUMP_TIMEOUT (s, 600),
# FADUMP_APPEND (more kernel parameters, e.g. disable_radix). FADUMP_BREAK, negative checks of this
# script (the run must fail): makedumpfile (the capture kernel runs a makedumpfile that does not
# exist), udev (the first kernel gets the x86 rules, which know nothing of fadump: they reload).
# FADUMP_CORRUPT=endian|cpumask, negative control of the capture kernel's header check: just before
# the crash the first kernel overwrites, through /dev/mem, the crash info header it registered (at the
# end of the boot memory's copy, from debugfs fadump_region) with a byte-swapped magic, or a cpumask
# size of 1024 bytes (another NR_CPUS); the capture kernel must refuse the dump with that reason and
# export no /proc/vmcore (the script then passes; a dump, or another reason, fails it).
# Output: target/artifacts/fadump-smoke-<fw>-<hp>/ (console.log, qemu.stderr, qmp.log, vmcore-head.bin,
# makedumpfile-dmesg.txt, dumpfile-head.bin, udevadm-test.txt (hotplug only)).
# Transfer disk (/dev/vda, 64 MiB) layout: 0 the head of /proc/vmcore (256 KiB), 256 KiB the pattern
# (64 bytes), 12 MiB "FADUMP-ARMED", 16 MiB makedumpfile's dmesg (< 8 MiB), 24 MiB the first 64 KiB
# of makedumpfile's dump file, 32 MiB the udevadm test outputs (< 32 MiB).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
# shellcheck source=scripts/lib-guest.sh
. "$repo/scripts/lib-guest.sh"
kernel_in=${1:-$CRASHHP_CACHE/out/ppc64le/vmlinux-rust}
[ -n "$kernel_in" ] || kernel_in=$CRASHHP_CACHE/out/ppc64le/vmlinux-rust
fw=${2:-vof}
hp=${3:-hotplug}
case "$fw" in vof) machine_fw=',x-vof=on' ;; slof) machine_fw= ;; *) die "firmware must be vof or slof" ;; esac
case "$hp" in hotplug|nohotplug) ;; *) die "third argument: hotplug or nohotplug" ;; esac
mem=${FADUMP_MEM:-2G}
ck=${FADUMP_CRASHKERNEL:-512M}
# QEMU (11.1.3) sizes the CPU state region in ibm,configure-kernel-dump-sizes for maxcpus but saves
# the registers of the present vCPUs only: with absent possible CPUs the kernel rejects the dump
# ("Dump taken by platform is incomplete (0)"). So every possible CPU must be present at the crash:
# maxcpus=1, or maxcpus=2 with the second core hot-added before the crash.
smp=${FADUMP_SMP:-$([ "$hp" = hotplug ] && echo 1,maxcpus=2 || echo 1,maxcpus=1)}
qemu="$repo/scripts/qemu-system-ppc64-fadump"
# The Rust harness: QMP (qapi) for the hotplug, goblin for the dump checks.
crashhp="$repo/target/release/crashhp"
[ -x "$crashhp" ] || (cd "$repo" && cargo build -q --release --locked -p crashhp-harness)
"$qemu" --version >/dev/null || die "fadump QEMU missing: run scripts/setup-fadump-qemu.sh"
[ -f "$kernel_in" ] || die "$kernel_in missing"
bb=("$CRASHHP_CACHE"/ppc64el/busybox/bin/busybox)
busybox=${bb[0]}
[ -x "$busybox" ] || die "ppc64el busybox missing: run scripts/setup.sh"
# makedumpfile (static) and udevadm (bookworm, with its loader and libraries).
userland="$CRASHHP_CACHE/ppc64el/userland"
[ -f "$userland/.crashhp-complete" ] || die "ppc64el userland (makedumpfile, udevadm) missing: run scripts/setup.sh"
vmd="$CRASHHP_CACHE/kexec-tools-2.0.29-ppc64le/vmcore-dmesg"
[ -x "$vmd" ] || vmd="$(dirname "$("$repo/scripts/build-kexec-tools.sh" ppc64le | tail -n1)")/vmcore-dmesg"

art="$repo/target/artifacts/fadump-smoke-$fw-$hp${FADUMP_BREAK:+-break-$FADUMP_BREAK}${FADUMP_CORRUPT:+-corrupt-$FADUMP_CORRUPT}"
case "${FADUMP_CORRUPT:-}" in
  '') ;;
  endian) corrupt_why='crash info header magic is byte-swapped: endianness mismatch' ;;
  cpumask) corrupt_why='cpumask is 1024 bytes in the crashed kernel' ;;
  *) die "FADUMP_CORRUPT: endian or cpumask" ;;
esac
rm -rf "$art"; mkdir -p "$art"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp "$kernel_in" "$work/vmlinux"
kernel="$work/vmlinux"

# --- initramfs -------------------------------------------------------------------------------------
# One /init for both boots. The first boot leaves "FADUMP-ARMED" at 12 MiB of the transfer disk;
# a later boot without /proc/vmcore then reports that the fadump capture did not happen and powers
# off instead of crashing again (without -no-reboot, QEMU would otherwise loop).
phase "building the ppc64le initramfs"
r="$work/root"
mkdir -p "$r"/{bin,dev,proc,sys,tmp}
cp "$busybox" "$r/bin/busybox"
cp "$repo/tests/guest/pseries.sh" "$r/pseries.sh"
cp "$vmd" "$r/bin/vmcore-dmesg"
cp -a "$userland/tree/." "$r/"
mkdir -p "$r/etc/udev/rules.d"
case "${FADUMP_BREAK:-}" in
  '') cp "$repo"/udev/*-ppc64.rules "$r/etc/udev/rules.d/" ;;
  udev) cp "$repo"/udev/98-crash-hotplug-fedora.rules "$repo"/udev/50-crash-hotplug-debian.rules "$r/etc/udev/rules.d/" ;;
  makedumpfile) cp "$repo"/udev/*-ppc64.rules "$r/etc/udev/rules.d/"; echo /usr/bin/makedumpfile-missing >"$r/makedumpfile-path" ;;
  *) die "FADUMP_BREAK: makedumpfile or udev" ;;
esac
cat >"$r/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
. /pseries.sh
fa() { for f in enabled registered hotplug_ready mem_reserved; do
         printf '%s=%s ' "$f" "$(cat /sys/kernel/fadump/$f 2>/dev/null || echo n/a)"; done; }
hexprop() { od -A n -t x1 "$1" 2>/dev/null | tr -d ' \n'; }
el() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# udev_case NAME EVENT...: `udevadm test` (bookworm's udevadm) with the ppc64 rules in
# /etc/udev/rules.d for each EVENT, in parallel: mem (the last memory block, the hot-added DIMM's,
# going online), cpu-add, cpu-online (cpu1); prints whether each rule style would reload (Fedora: a
# run: line naming kdump-udev-throttler; Debian: its PROGRAM kdump-config, which test mode runs).
udev_case() {
  local name=$1 evs blk ev out rules fed deb a k d t
  shift; evs="$*"
  blk=$(ls -d /sys/devices/system/memory/memory* | sed 's/.*memory//' | sort -n | tail -n 1)
  for ev in "$@"; do
    case "$ev" in
      mem) set -- online "memory$blk" memory ;;
      cpu-add) set -- add cpu1 cpu ;;
      *) set -- online cpu1 cpu ;;
    esac
    ( t=$(up); out=$(/bin/udevadm test --action="$1" "/devices/system/$3/$2" 2>&1)
      printf '%s %s %s %s\n%s\n' "$1" "$3" "$2" "$(el "$t" "$(up)")" "$out" >"/tmp/udev.$ev" ) &
  done
  wait
  for ev in $evs; do
    read -r a k d t </tmp/udev."$ev"
    out=$(tail -n +2 /tmp/udev."$ev")
    printf '=== %s: udevadm test --action=%s /devices/system/%s/%s (%s s)\n%s\n' "$name" "$a" "$k" "$d" "$t" "$out" >>/tmp/udev.txt
    rules=0; echo "$out" | grep -q 'Reading rules file: /etc/udev/rules\.d/' && rules=1
    fed=0; echo "$out" | grep 'run:' | grep -q kdump-udev-throttler && fed=1
    deb=0; echo "$out" | grep -q kdump-config && deb=1
    say "udev $name: $a $k: rules=$rules fedora-reload=$fed debian-reload=$deb ($d, $t s)"
  done
}
armed=$(dd if=/dev/vda bs=4096 skip=3072 count=1 2>/dev/null | tr -d '\0' | head -c 12)
if [ -e /proc/vmcore ]; then
  say "capture kernel up at $(up) s (fadump)"
  say "capture fadump: $(fa)"
  say "capture rtas: $(ls /proc/device-tree/rtas | grep -i dump | tr '\n' ' ')"
  say "vmcore size $(stat -c %s /proc/vmcore)"
  grep -i fadump /proc/cmdline >/dev/null && say "capture cmdline: $(cat /proc/cmdline)"
  dd if=/proc/vmcore of=/dev/vda bs=65536 count=4 2>/dev/null && sync && say "vmcore head written"
  save_pattern_page
  t=$(up); vmcore-dmesg /proc/vmcore >/tmp/dmesg 2>&1; say "vmcore-dmesg: $(wc -l </tmp/dmesg) lines in $t..$(up) s"
  grep -E 'sysrq|Kernel panic|fadump' /tmp/dmesg | tail -n 6
  # makedumpfile 1.7.7 (static ppc64le, scripts/build-ppc-makedumpfile.sh):
  # a filtered (-d 31: zero, cache, user and free pages out), lzo-compressed (-l) kdump-compressed
  # file in /tmp (RAM: the capture kernel has the crashkernel= boot memory only), then the dmesg.
  # The first 64 KiB of the file and the dmesg go to the transfer disk for the host.
  mdf=$(cat /makedumpfile-path 2>/dev/null || echo /usr/bin/makedumpfile)
  t=$(up); rc=0
  timeout 300 "$mdf" -d 31 -l /proc/vmcore /tmp/dumpfile >/tmp/mdf.log 2>&1 || rc=$?
  t1=$(up)
  sed 's/^/makedumpfile| /' /tmp/mdf.log | tail -n 12
  say "makedumpfile -d 31 -l: rc=$rc size=$(stat -c %s /tmp/dumpfile 2>/dev/null || echo 0) signature='$(head -c 8 /tmp/dumpfile 2>/dev/null | tr -c 'A-Za-z0-9 ' '?')' in $(el "$t" "$t1") s"
  [ -f /tmp/dumpfile ] && dd if=/tmp/dumpfile of=/dev/vda bs=64k seek=384 count=1 conv=notrunc 2>/dev/null
  t=$(up); rc=0
  timeout 120 "$mdf" --dump-dmesg /proc/vmcore /tmp/dmesg.txt >/tmp/mdf.log 2>&1 || rc=$?
  t1=$(up)
  sed 's/^/makedumpfile| /' /tmp/mdf.log | tail -n 6
  say "makedumpfile --dump-dmesg: rc=$rc lines=$(wc -l </tmp/dmesg.txt 2>/dev/null || echo 0) in $(el "$t" "$t1") s: $(grep -m1 -o 'Kernel panic - not syncing: .*' /tmp/dmesg.txt 2>/dev/null)"
  [ -f /tmp/dmesg.txt ] && head -c 8000000 /tmp/dmesg.txt | dd of=/dev/vda bs=1M seek=16 conv=notrunc 2>/dev/null
  rm -f /tmp/dumpfile; sync
  t=$(up); echo 1 >/sys/kernel/fadump/release_mem 2>/dev/null && say "release_mem between $t and $(up) s: $(fa)"
  # Re-arm for the next crash, as a kdump service does after saving the dump.
  echo 1 >/sys/kernel/fadump/registered 2>/dev/null; say "re-registered: $(fa)"
  say "capture done"
  echo o >/proc/sysrq-trigger
  sleep 10
fi
if [ "$armed" = FADUMP-ARMED ]; then
  say "FAILED: rebooted without /proc/vmcore (no fadump capture)"
  echo o >/proc/sysrq-trigger
  sleep 10
fi
say "first kernel up at $(up) s, $(grep -c ^processor /proc/cpuinfo) cpu(s)"
say "fadump: $(fa)"
say "rtas: $(ls /proc/device-tree/rtas | grep -i dump | tr '\n' ' ')"
say "ibm,configure-kernel-dump-sizes $(hexprop /proc/device-tree/rtas/ibm,configure-kernel-dump-sizes)"
say "ibm,configure-kernel-dump-version $(hexprop /proc/device-tree/rtas/ibm,configure-kernel-dump-version)"
# fadump must be registered at boot (fadump=on): no fallback registration here, the host checks it.
[ "$(cat /sys/kernel/fadump/registered 2>/dev/null)" = 1 ] || say "fadump NOT registered at boot: $(fa)"
cat /sys/kernel/debug/powerpc/fadump_region 2>/dev/null | sed 's/^/SMOKE: region: /'
say "kexec_crash_loaded $(cat /sys/kernel/kexec_crash_loaded) crash_hotplug memory $(cat /sys/devices/system/memory/crash_hotplug 2>/dev/null) cpu $(cat /sys/devices/system/cpu/crash_hotplug 2>/dev/null)"
if [ -e /hotplug ]; then
  wait_hotplug
  say "fadump after hotplug: $(fa)"
  # The ppc64 udev rules: with fadump enabled and hotplug_ready 1 neither style re-registers; the
  # controls bind-mount a 0 over hotplug_ready (memory events re-register), over enabled (all
  # events reload), and an empty directory over /sys/kernel/fadump (kernels before hotplug_ready).
  t=$(up); : >/tmp/udev.txt
  udev_case fadump mem cpu-add cpu-online
  echo 0 >/tmp/zero; mkdir -p /tmp/empty
  mount -o bind /tmp/zero /sys/kernel/fadump/hotplug_ready &&
    udev_case "control-hotplug_ready=$(cat /sys/kernel/fadump/hotplug_ready)" mem
  umount /sys/kernel/fadump/hotplug_ready
  mount -o bind /tmp/zero /sys/kernel/fadump/enabled &&
    udev_case "control-enabled=$(cat /sys/kernel/fadump/enabled)" mem cpu-add
  umount /sys/kernel/fadump/enabled
  mount -o bind /tmp/empty /sys/kernel/fadump &&
    udev_case "control-no-fadump-dir=$(ls /sys/kernel/fadump | wc -l)" mem
  umount /sys/kernel/fadump
  head -c 32000000 /tmp/udev.txt | dd of=/dev/vda bs=1M seek=32 conv=notrunc 2>/dev/null; sync
  say "udev tests done in $(el "$t" "$(up)") s: $(fa)"
fi
write_pattern
if [ -e /corrupt ]; then
  # The crash info header follows the boot memory's copy: Dest + Size of the DUMP region.
  set -- $(sed -n 's/.*DUMP: Src: *0x[0-9a-f]*, Dest: *\(0x[0-9a-f]*\), Size: *\(0x[0-9a-f]*\).*/\1 \2/p' \
    /sys/kernel/debug/powerpc/fadump_region | head -n 1)
  hdr=$(( $1 + $2 ))
  case $(cat /corrupt) in
    endian) printf 'FADMPSIG' | dd of=/dev/mem bs=1 seek=$hdr conv=notrunc 2>/dev/null ;;
    cpumask) printf '\000\004\000\000' | dd of=/dev/mem bs=1 seek=$((hdr + 36)) conv=notrunc 2>/dev/null ;;
  esac
  say "crash info header at $hdr corrupted ($(cat /corrupt)): $(dd if=/dev/mem bs=1 skip=$hdr count=40 2>/dev/null | od -A n -t x1 | tr -d '\n')"
fi
printf 'FADUMP-ARMED' | dd of=/dev/vda bs=4096 seek=3072 conv=notrunc 2>/dev/null; sync
cpu=$(tr ',-' '\n\n' </sys/devices/system/cpu/online | tail -n 1)
say "crashing on cpu $cpu at $(up) s"
taskset -c "$cpu" sh -c 'echo c >/proc/sysrq-trigger'
INIT
chmod +x "$r/init"
# Without hotplug the pattern goes into boot RAM 16 MiB above the fadump reserved area, which starts
# at the crashkernel size and holds a copy of the boot memory (so at 2 * crashkernel + 16 MiB: a
# page nothing uses this early, a risk the prototype takes); with hotplug 16 MiB into the DIMM,
# which QEMU places right after the boot RAM.
memb=$(numfmt --from=iec "$mem"); ckb=$(numfmt --from=iec "$ck")
[ -z "${FADUMP_CORRUPT:-}" ] || echo "$FADUMP_CORRUPT" >"$r/corrupt"
if [ "$hp" = hotplug ]; then pattern_pa=$(( memb + 0x1000000 )); touch "$r/hotplug"
else pattern_pa=$(( 2 * ckb + 0x1000000 )); fi
pattern=$(make_pattern CRASHHP-FADUMP "$pattern_pa" "$r")
(cd "$r" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"
truncate -s 64M "$work/disk.img"

# --- QEMU + QMP ------------------------------------------------------------------------------------
phase "booting pseries ($fw, $hp) under TCG with fadump=on crashkernel=$ck, -m $mem"
t_start=$(ms)
# No -no-reboot: the fadump capture is a machine reset that QEMU performs after ibm,os-term.
"$qemu" -accel tcg -cpu power9 \
  -M "pseries$machine_fw,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off" \
  -m "$mem,slots=4,maxmem=16G" -smp "$smp" -nodefaults -display none \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" \
  -append "console=hvc0 fadump=on crashkernel=$ck panic=-1 printk.time=1${FADUMP_APPEND:+ $FADUMP_APPEND}" \
  -serial "file:$art/console.log" -monitor none -d guest_errors -D "$art/qemu-guest-errors.log" \
  -qmp "unix:$work/qmp.sock,server=on,wait=off" \
  -drive "file=$work/disk.img,format=raw,if=virtio" \
  2>"$art/qemu.stderr" &
qpid=$!
trap 'stop_qemu; rm -rf "$work"' EXIT

limit=${FADUMP_TIMEOUT:-600}
t_up=$(wait_for 'SMOKE: first kernel up' "$limit") || fail "first kernel did not reach /init"
phase "first kernel /init after ${t_up} s"
dimm_addr=0 dimm_size=0
if [ "$hp" = hotplug ]; then
  wait_for 'SMOKE: ready for hotplug' "$limit" >/dev/null || fail "no hotplug step"
  phase "hot-adding a 1 GiB DIMM and a CPU core"
  # Through the Rust harness's QMP client (qapi): a pc-dimm, then the first free spapr CPU core.
  "$crashhp" qmp --socket "$work/qmp.sock" --dimm d1:1073741824 --cpu core1 >"$art/qmp.log" ||
    fail "QMP hotplug failed: $(cat "$art/qmp.log")"
  read -r _ _ dimm_addr dimm_size < <(grep '^dimm d1 ' "$art/qmp.log")
  phase "DIMM at $(printf '0x%x' "$dimm_addr"), size $(printf '0x%x' "$dimm_size")"
fi
t_crash=$(wait_for 'SMOKE: crashing' "$limit") || fail "the first kernel did not reach the crash"
phase "crash after ${t_crash} s"
if [ -n "${FADUMP_CORRUPT:-}" ]; then
  # The capture boot must refuse the dump: no /proc/vmcore, so /init finds the armed marker.
  t_no=$(wait_for 'SMOKE: FAILED: rebooted without /proc/vmcore' "$limit") ||
    fail "the capture boot did not come up without a dump"
  wait "$qpid" 2>/dev/null || true
  grep -a 'SMOKE: crash info header at' "$art/console.log" | tr -d '\r'
  why=$(grep -a 'crash_hotplug: fadump: .*the dump is not processed' "$art/console.log" | tail -n 1 | tr -d '\r')
  echo "capture kernel: ${why#*] }"
  case "$why" in *"$corrupt_why"*) ;; *) die "the capture kernel did not refuse the dump with '$corrupt_why'" ;; esac
  ! grep -aq 'SMOKE: capture kernel up' "$art/console.log" || die "a /proc/vmcore was exported from a corrupt header"
  echo "verified: header $FADUMP_CORRUPT refused by the Rust fadump path (no /proc/vmcore, boot continued) after $t_no s"
  echo "fadump-smoke ($fw, $hp, corrupt $FADUMP_CORRUPT): ok (artifacts: $art)"
  exit 0
fi
t_cap=$(wait_for 'SMOKE: capture kernel up' "$limit") || fail "fadump capture kernel did not reach /init"
phase "fadump capture kernel /init after ${t_cap} s"
wait_for 'SMOKE: capture done' "$limit" >/dev/null || fail "capture kernel did not finish"
t_done=$(wait_for 'SMOKE: capture done' 1)
wait "$qpid" 2>/dev/null || true
t_end=$(sec $(( $(ms) - t_start )))

# --- checks ----------------------------------------------------------------------------------------
dd if="$work/disk.img" of="$art/vmcore-head.bin" bs=65536 count=4 2>/dev/null
dd if="$work/disk.img" bs=1M skip=16 count=8 2>/dev/null | tr -d '\0' >"$art/makedumpfile-dmesg.txt"
dd if="$work/disk.img" of="$art/dumpfile-head.bin" bs=64k skip=384 count=1 2>/dev/null
[ "$hp" = nohotplug ] || dd if="$work/disk.img" bs=1M skip=32 count=32 2>/dev/null | tr -d '\0' >"$art/udevadm-test.txt"
got=$(pattern_from_disk "$work/disk.img")
if [ "$got" = "$pattern" ]; then pattern_ok=1; else pattern_ok=0; fi
rc=0
# The dump's ELF header and notes, checked with goblin by the Rust harness.
# Registers: every CPU note's nip is kernel text (64-bit LE, kernel stack), and the crashing CPU's
# note (the last: the crash runs on the highest online CPU and the notes are in CPU order) stopped
# in crash_fadump (the registers the crashed kernel saved, not the firmware's view of it in os-term).
if [ "$dimm_size" != 0 ]; then ncpu=2; dimm_arg=(--dimm "$dimm_addr:$dimm_size"); else ncpu=1; dimm_arg=(); fi
"$crashhp" check-vmcore --head "$art/vmcore-head.bin" --cpus "$ncpu" "${dimm_arg[@]}" \
  --vmlinux "$kernel" --crash-symbol crash_fadump --crash-note $((ncpu - 1)) || rc=$?
# With the Rust implementation built in (the kernel has its fadump entry points), the capture
# kernel's elfcorehdr and CPU notes are its own: its report lines are required, whatever the log says
# otherwise (the module's registrations may even have failed: patch 0008 calls these directly).
if llvm-nm-19 "$kernel" 2>/dev/null | grep -q ' crash_hotplug_fadump_elfcorehdr$'; then
  hdr_line=$(grep -a 'crash_hotplug: fadump: crash info header' "$art/console.log" | tail -n 1 | tr -d '\r')
  notes_line=$(grep -a 'crash_hotplug: fadump: .* CPU notes' "$art/console.log" | tail -n 1 | tr -d '\r')
  echo "capture kernel: ${hdr_line#*] }"
  echo "capture kernel: ${notes_line#*] }"
  case "$hdr_line" in *"CPU $((ncpu - 1)) crashed, $ncpu CPUs online"*) ;;
    *) echo "FAILED: the Rust fadump path did not build the elfcorehdr for the crash on CPU $((ncpu - 1))" >&2; rc=1 ;; esac
  case "$notes_line" in *"$ncpu CPU notes"*"the crashing CPU's from the crash info header") ;;
    *) echo "FAILED: the Rust fadump path did not write $ncpu CPU notes with the crashing CPU's from the header" >&2; rc=1 ;; esac
fi
phase "QEMU start -> /init ${t_up} s, crash ${t_crash} s, fadump capture /init ${t_cap} s, capture done ${t_done} s, end $t_end s"
grep -aq 'SMOKE: fadump: enabled=1 registered=1 hotplug_ready=1' "$art/console.log" ||
  die "fadump was not enabled and registered at boot with hotplug_ready 1: $(grep -a 'SMOKE: fadump' "$art/console.log" | head -n 2 | tr -d '\r')"
[ "$rc" = 0 ] || die "vmcore checks failed (notes, registers, DIMM coverage, Rust capture path)"
[ "$pattern_ok" = 1 ] || die "pattern not found at $pattern_pa in the dump (got '$got')"
echo "verified: pattern at $pattern_pa found in the fadump /proc/vmcore (read back on the host)"

# makedumpfile in the capture kernel: exit 0, a non-empty kdump-compressed file (signature "KDUMP   "
# seen by the guest and in the head the host got), and the dmesg it extracted has the panic.
bad=0
mdf=$(grep -a 'SMOKE: makedumpfile -d 31 -l:' "$art/console.log" | tail -n 1 | tr -d '\r')
echo "${mdf:-no makedumpfile line}"
if [[ "$mdf" =~ rc=0\ size=([0-9]+)\ signature=\'KDUMP\ \ \ \' ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then :
else echo "FAILED: makedumpfile -d 31 -l did not exit 0 with a non-empty kdump-compressed file" >&2; bad=1; fi
if [ "$(head -c 8 "$art/dumpfile-head.bin" | tr -d '\0')" != 'KDUMP   ' ]; then
  echo "FAILED: the dump file's head on the transfer disk has no 'KDUMP   ' signature" >&2; bad=1
fi
dmd=$(grep -a 'SMOKE: makedumpfile --dump-dmesg:' "$art/console.log" | tail -n 1 | tr -d '\r')
echo "${dmd:-no makedumpfile --dump-dmesg line}"
case "$dmd" in *'rc=0 '*) ;; *) echo "FAILED: makedumpfile --dump-dmesg did not exit 0" >&2; bad=1 ;; esac
if ! grep -q 'Kernel panic - not syncing: sysrq triggered crash' "$art/makedumpfile-dmesg.txt"; then
  echo "FAILED: makedumpfile's dmesg ($art/makedumpfile-dmesg.txt) lacks the panic message" >&2; bad=1
fi
[ "$bad" = 1 ] || echo "verified: makedumpfile -d 31 -l wrote a kdump-compressed file; its dmesg has the panic"

# The ppc64 udev rules under udevadm test in the first kernel (after the hotplug): both styles must
# skip the fadump re-registration while fadump is enabled and hotplug_ready reads 1, and reload in the
# controls (hotplug_ready 0: memory only; enabled 0 or no /sys/kernel/fadump: every event).
if [ "$hp" = hotplug ]; then
  udev_expect=() # CASE: ACTION KIND: reload expected (both styles)
  for c in "fadump: online memory: 0" "fadump: add cpu: 0" "fadump: online cpu: 0" \
    "control-hotplug_ready=0: online memory: 1" \
    "control-enabled=0: online memory: 1" "control-enabled=0: add cpu: 1" \
    "control-no-fadump-dir=0: online memory: 1"; do
    udev_expect+=("${c%: *}: rules=1 fedora-reload=${c##* } debian-reload=${c##* }")
  done
  ubad=0
  for e in "${udev_expect[@]}"; do
    grep -aqF "SMOKE: udev $e (" "$art/console.log" && continue
    echo "FAILED: udevadm test: expected 'udev $e', got: $(grep -aF "SMOKE: udev ${e%%: rules*}:" "$art/console.log" | head -n 1 | tr -d '\r')" >&2
    ubad=1
  done
  grep -a 'SMOKE: udev' "$art/console.log" | tr -d '\r'
  if [ "$ubad" = 0 ]; then
    echo "verified: udevadm test: no fadump re-registration with hotplug_ready 1 (memory online, cpu add/online), re-registration in the controls"
  else bad=1; fi
fi
[ "$bad" = 0 ] || die "makedumpfile or udev checks failed (artifacts: $art)"
echo "fadump-smoke ($fw, $hp): ok (artifacts: $art)"
