#!/usr/bin/env bash
# Prototype of the ppc64le (QEMU pseries, TCG) crash hotplug scenario: boot, load kdump, hot-add a
# DIMM and a CPU core over QMP, crash with sysrq, check that the capture kernel boots and that its
# /proc/vmcore covers the hot-added DIMM. A stepping stone for the Rust harness, not part of test.sh.
#   usage: scripts/ppc-smoke.sh [vmlinux] [file|load|stale|cores|memmap]
#     vmlinux  default $CRASHHP_CACHE/out/ppc64le/vmlinux-c (scripts/build-kernel.sh c ppc64le)
#     file     kexec -p -s (kexec_file_load; default); load: kexec -p -c --hotplug (kexec_load)
#     stale    negative control: kexec -p -c (kexec_load without --hotplug); the dump must miss
#              the DIMM, or the checks cannot see a stale header
#     cores    kexec_file_load, three cores hot-added one after another, crash on the last: every
#              add must switch FDT blocks crash-consistently (none "updating in place")
#     memmap   kexec_file with memory_hotplug.memmap_on_memory=$SMOKE_MEMMAP (default force: with
#              64 KiB pages an LMB's 256 KiB memmap is smaller than a pageblock, so =1 has no
#              effect) and hot-added memory in ZONE_MOVABLE: the guest must show the struct pages
#              on the DIMM (MemTotal grows by less than its size); the DIMM's last LMB is offlined
#              before the crash. Checks: the DIMM's online LMBs covered whole (struct pages
#              included), the offlined one absent, and in the capture kernel makedumpfile 1.7.7
#              (static, scripts/build-ppc-makedumpfile.sh) `-l -d 31 /proc/vmcore` exits 0 with a
#              kdump-compressed file.
# Environment: SMOKE_CRASH_CPU=new|0 (default: new, stale: 0), SMOKE_CAPTURE_TIMEOUT (s, 300),
# SMOKE_APPEND (more first-kernel arguments, e.g. crash_hotplug.inject_init_failure=1 to see the
# "crash_hotplug reads 1 1" check fail), SMOKE_KEXEC_ARGS (cores mode; "-p -c --hotplug" makes the in-place check fail: kexec-tools FDTs
# have no room to switch blocks), SMOKE_MEMMAP (memmap mode: the memmap_on_memory value, default force).
# Output: target/artifacts/ppc-smoke-<mode>/ (console.log, qemu.stderr, qmp.log, vmcore-head.bin).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
# shellcheck source=scripts/lib-guest.sh
. "$repo/scripts/lib-guest.sh"
kernel=${1:-$CRASHHP_CACHE/out/ppc64le/vmlinux-c}
mode=${2:-file}
case "$mode" in
  file) kexec_args='-p -s' ;;
  load) kexec_args='-p -c --hotplug' ;;
  stale) kexec_args='-p -c' ;;
  cores) kexec_args=${SMOKE_KEXEC_ARGS:-'-p -s'} ;;
  memmap) kexec_args='-p -s' ;;
  *) die "mode must be file, load, stale, cores or memmap" ;;
esac
extra_append=
if [ "$mode" = memmap ]; then
  memmap=${SMOKE_MEMMAP:-force}
  extra_append=" memory_hotplug.memmap_on_memory=$memmap memhp_default_state=online_movable"
  mdf=$("$repo/scripts/build-ppc-makedumpfile.sh" | tail -n1)
fi
[ -f "$kernel" ] || die "$kernel missing: run scripts/build-kernel.sh c ppc64le"
bb=("$CRASHHP_CACHE"/ppc64el/busybox/bin/busybox)
busybox=${bb[0]}
[ -x "$busybox" ] || die "ppc64el busybox missing: run scripts/setup.sh"
kexec=$("$repo/scripts/build-kexec-tools.sh" ppc64le | tail -n1)
kdir=$(dirname "$kexec")
# The Rust harness: QMP (qapi) for the hotplug, goblin for the dump checks.
crashhp="$repo/target/release/crashhp"
[ -x "$crashhp" ] || (cd "$repo" && cargo build -q --release --locked -p crashhp-harness)

art="$repo/target/artifacts/ppc-smoke-$mode"
rm -rf "$art"; mkdir -p "$art"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# --- initramfs -------------------------------------------------------------------------------------
# One /init for both kernels: with /proc/vmcore it is the capture kernel. The first kernel's
# initramfs also holds the capture kernel (vmlinux) and the capture initramfs (capture.cpio).
phase "building the ppc64le initramfs"
mkroot() {
  local r=$1
  mkdir -p "$r"/{bin,dev,proc,sys,tmp}
  cp "$busybox" "$r/bin/busybox"
  cp "$kdir/vmcore-dmesg" "$r/bin/vmcore-dmesg"
  cp "$repo/tests/guest/pseries.sh" "$r/pseries.sh"
  [ "$mode" != memmap ] || { cp "$mdf" "$r/bin/makedumpfile"; touch "$r/memmap"; }
  cat >"$r/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
. /pseries.sh
if [ -e /proc/vmcore ]; then
  say "capture kernel up at $(cut -d' ' -f1 /proc/uptime) s"
  say "vmcore size $(stat -c %s /proc/vmcore)"
  # the headers and the merged notes of /proc/vmcore (notes at 64 KiB: page size) to the host
  dd if=/proc/vmcore of=/dev/vda bs=65536 count=4 2>/dev/null && sync && say "vmcore head written"
  # The FDT this capture kernel booted with (the crash FDT as the first kernel left it), at 8 MiB.
  dd if=/sys/firmware/fdt of=/dev/vda bs=4096 seek=2048 conv=notrunc 2>/dev/null
  say "capture cpus: $(ls /proc/device-tree/cpus | tr '\n' ' ')"
  save_pattern_page
  vmcore-dmesg /proc/vmcore 2>&1 | tail -n 4
  if [ -e /memmap ]; then
    # What a distribution's collector runs: it reads the struct page of every page it filters.
    t=$(cut -d' ' -f1 /proc/uptime); rc=0
    makedumpfile -l -d 31 /proc/vmcore /tmp/dumpfile >/tmp/mdf.log 2>&1 || rc=$?
    sed 's/^/makedumpfile| /' /tmp/mdf.log | tail -n 8
    say "makedumpfile -l -d 31: rc=$rc size=$(stat -c %s /tmp/dumpfile 2>/dev/null || echo 0) signature='$(head -c 8 /tmp/dumpfile 2>/dev/null | tr -c 'A-Za-z0-9 ' '?')' from $t to $(cut -d' ' -f1 /proc/uptime) s"
    rm -f /tmp/dumpfile
  fi
  say "capture done"
  echo o >/proc/sysrq-trigger
  sleep 10
fi
say "first kernel up at $(cut -d' ' -f1 /proc/uptime) s, $(grep -c ^processor /proc/cpuinfo) cpu(s)"
# The first kernel's boot FDT, at 4 MiB of the transfer disk (the host keeps it as an artifact).
dd if=/sys/firmware/fdt of=/dev/vda bs=4096 seek=1024 conv=notrunc 2>/dev/null
say "memory block size 0x$(cat /sys/devices/system/memory/block_size_bytes), $(ls -d /sys/devices/system/memory/memory* | wc -l) blocks"
say "fadump: $(cat /sys/kernel/fadump/enabled 2>/dev/null || echo n/a)"
KARGS=$(cat /kexec-args)
t0=$(cut -d' ' -f1 /proc/uptime)
# shellcheck disable=SC2086
if /bin/kexec $KARGS --initrd=/capture.cpio \
     --append="console=hvc0 irqpoll nr_cpus=1 reset_devices rdinit=/init panic=-1" /vmlinux; then
  say "kdump loaded ($KARGS) between $t0 and $(cut -d' ' -f1 /proc/uptime) s"
else
  say "kdump load FAILED"
fi
say "kexec_crash_loaded $(cat /sys/kernel/kexec_crash_loaded)"
say "crash_hotplug memory $(cat /sys/devices/system/memory/crash_hotplug) cpu $(cat /sys/devices/system/cpu/crash_hotplug)"
say "elfcorehdr size $(cat /sys/kernel/crash_elfcorehdr_size 2>/dev/null)"
echo 8 >/proc/sys/kernel/printk
echo 'file crash_core.c +p; file arch/powerpc/kexec/crash.c +p' >/sys/kernel/debug/dynamic_debug/control 2>/dev/null
[ -e /memmap ] && say "memmap_on_memory $(cat /sys/module/memory_hotplug/parameters/memmap_on_memory 2>/dev/null || echo n/a) before hotplug: $(grep MemTotal /proc/meminfo)"
wait_hotplug
if [ -e /memmap ]; then
  # The DIMM's last LMB goes offline: it must leave the dump whole, struct pages included.
  blk=$(ls -d /sys/devices/system/memory/memory* | sed 's/.*memory//' | sort -n | tail -n 1)
  if echo offline >"/sys/devices/system/memory/memory$blk/state"; then
    say "offlined memory block $blk"
  else
    say "offline of memory block $blk FAILED"
  fi
fi
for m in /sys/devices/system/memory/memory*; do
  [ "$(cat "$m/state")" = online ] || say "$(basename "$m") $(cat "$m/state")"
done
# The pattern, in a free page of the DIMM.
write_pattern
hp="$(cat /sys/devices/system/memory/crash_hotplug) $(cat /sys/devices/system/cpu/crash_hotplug)"
say "after hotplug crash_hotplug memory/cpu: $hp"
[ -d /sys/kernel/debug/crash_hotplug ] && say "stats: $(tr '\n' ' ' </sys/kernel/debug/crash_hotplug/stats)"
# The capture kernel starts on the CPU that crashed: crash on the hot-added one (the highest online
# CPU) unless told to crash on CPU 0, so that the updated /cpus of the capture FDT is exercised.
cpu=0
[ "$(cat /crash-cpu)" = new ] && cpu=$(tr ',-' '\n\n' </sys/devices/system/cpu/online | tail -n 1)
say "crashing on cpu $cpu at $(cut -d' ' -f1 /proc/uptime) s"
taskset -c "$cpu" sh -c 'echo c >/proc/sysrq-trigger'
INIT
  chmod +x "$r/init"
}
mkroot "$work/capture"
(cd "$work/capture" && find . | cpio -o -H newc --quiet) >"$work/capture.cpio"
mkroot "$work/first"
cp "$kexec" "$work/first/bin/kexec"
cp "$kernel" "$work/first/vmlinux"
cp "$work/capture.cpio" "$work/first/capture.cpio"
echo "$kexec_args" >"$work/first/kexec-args"
# A stale header without the new CPU in the capture FDT hangs the capture kernel after purgatory when
# the crash runs on that CPU (see Documentation/ppc64le-notes.md): the negative control crashes on
# CPU 0 so that it reaches the dump checks.
# SMOKE_CRASH_CPU=new|0 overrides the choice.
crash_cpu=${SMOKE_CRASH_CPU:-$([ "$mode" = stale ] && echo 0 || echo new)}
echo "$crash_cpu" >"$work/first/crash-cpu"
# CPU cores to hot-add (QEMU device ids) and the CPUs the guest must then have online.
cores=(core1); [ "$mode" = cores ] && cores=(core1 core2 core3)
want_cpus=$(( ${#cores[@]} + 1 ))
echo "$want_cpus" >"$work/first/want-cpus"
# The first DIMM lands at 2 GiB (right after the boot memory); the pattern goes 16 MiB into it.
pattern_pa=$(( 0x81000000 ))
pattern=$(make_pattern CRASHHP-PPC "$pattern_pa" "$work/first" "$work/capture")
(cd "$work/capture" && find . | cpio -o -H newc --quiet) >"$work/capture.cpio"
cp "$work/capture.cpio" "$work/first/capture.cpio"
(cd "$work/first" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"
truncate -s 64M "$work/disk.img"

# --- QEMU + QMP ------------------------------------------------------------------------------------
phase "booting pseries under TCG ($mode)"
t_start=$(ms)
# The cap-* settings only silence "TCG doesn't support requested feature" warnings (spectre knobs).
qemu-system-ppc64 -accel tcg -cpu power9 \
  -M pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off \
  -m 2G,slots=4,maxmem=8G -smp 1,maxcpus=4 -nodefaults -display none -no-reboot \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" \
  -append "console=hvc0 crashkernel=512M panic=-1 printk.time=1$extra_append${SMOKE_APPEND:+ $SMOKE_APPEND}" \
  -serial "file:$art/console.log" -monitor none \
  -qmp "unix:$work/qmp.sock,server=on,wait=off" \
  -drive "file=$work/disk.img,format=raw,if=virtio" \
  2>"$art/qemu.stderr" &
qpid=$!
trap 'stop_qemu; rm -rf "$work"' EXIT

t_up=$(wait_for 'SMOKE: first kernel up' 300) || fail "first kernel did not reach /init"
phase "first kernel /init after ${t_up} s"
t_ready=$(wait_for 'SMOKE: ready for hotplug' 300) || fail "kdump load step did not finish"
grep -q 'SMOKE: kdump loaded' "$art/console.log" || fail "kdump load failed"
phase "kdump loaded, ready after ${t_ready} s"

phase "hot-adding a 1 GiB DIMM and a CPU core"
t_hp=$(sec $(( $(ms) - t_start )))
# Through the Rust harness's QMP client (qapi): a pc-dimm, then the first free spapr CPU core.
"$crashhp" qmp --socket "$work/qmp.sock" --dimm d1:1073741824 "${cores[@]/#/--cpu=}" >"$art/qmp.log" ||
  fail "QMP hotplug failed: $(cat "$art/qmp.log")"
read -r _ _ dimm_addr dimm_size < <(grep '^dimm d1 ' "$art/qmp.log")
printf -v dimm_hex '0x%x-0x%x' "$dimm_addr" "$((dimm_addr + dimm_size - 1))"
phase "DIMM at $dimm_hex"
t_crash=$(wait_for 'SMOKE: crashing' 300) || fail "the guest did not see the hotplug"
phase "crash after ${t_crash} s (hotplug sent at $t_hp s)"
t_cap=$(wait_for 'SMOKE: capture kernel up' "${SMOKE_CAPTURE_TIMEOUT:-300}") || fail "capture kernel did not reach /init"
phase "capture kernel /init after ${t_cap} s"
wait_for 'SMOKE: capture done' 120 >/dev/null || fail "capture kernel did not finish"
wait "$qpid" 2>/dev/null || true
t_end=$(sec $(( $(ms) - t_start )))

# --- checks ----------------------------------------------------------------------------------------
dd if="$work/disk.img" of="$art/vmcore-head.bin" bs=65536 count=4 2>/dev/null
# The two FDTs, cut to their totalsize: the first kernel's and the capture kernel's (the crash FDT).
for f in first:1024 capture:2048; do
  dd if="$work/disk.img" of="$art/${f%%:*}-fdt.dtb" bs=4096 skip="${f##*:}" count=256 2>/dev/null
  total=$(od -A n -t x1 -j 4 -N 4 "$art/${f%%:*}-fdt.dtb" | tr -d ' ')
  [ -n "$total" ] && [ "$total" != 00000000 ] && truncate -s $((16#$total)) "$art/${f%%:*}-fdt.dtb"
done
got=$(pattern_from_disk "$work/disk.img")
[ "$((pattern_pa))" -ge "$dimm_addr" ] && [ "$((pattern_pa))" -lt $((dimm_addr + dimm_size)) ] ||
  die "the DIMM at $dimm_hex does not hold the pattern address $pattern_pa"
if [ "$got" = "$pattern" ]; then pattern_ok=1; else pattern_ok=0; fi
# The capture kernel's /proc/device-tree/cpus must list the hot-added core's node too.
cap_cpus=$(sed -n 's/.*SMOKE: capture cpus: //p' "$art/console.log" | tr -d '\r')
ncpu_nodes=$(tr ' ' '\n' <<<"$cap_cpus" | grep -c '^PowerPC,' || true)
grep -q 'sysrq triggered crash\|Trigger a crash' "$art/console.log" || fail "no sysrq crash message"
rc=0
# The dump's ELF header and notes, checked with goblin by the Rust harness.
cover=(--dimm "$dimm_addr:$dimm_size")
if [ "$mode" = memmap ]; then
  # The guest offlined the DIMM's last block: the rest must be covered whole, that block absent.
  block=$((16#$(sed -n 's/.*SMOKE: memory block size 0x\([0-9a-f]*\),.*/\1/p' "$art/console.log" | head -n 1 | tr -d '\r')))
  off=$(sed -n 's/.*SMOKE: offlined memory block \([0-9]*\).*/\1/p' "$art/console.log" | head -n 1 | tr -d '\r')
  [ -n "$off" ] || fail "the guest could not offline the DIMM's last memory block"
  [ $((off * block)) = $((dimm_addr + dimm_size - block)) ] ||
    die "offlined block $off is not the last block of the DIMM at $dimm_hex"
  cover=(--dimm "$dimm_addr:$((dimm_size - block))" --absent "$((off * block)):$block")
fi
"$crashhp" check-vmcore --head "$art/vmcore-head.bin" --cpus "$want_cpus" "${cover[@]}" >"$art/check-vmcore.txt" 2>&1 || rc=$?
cat "$art/check-vmcore.txt"
phase "QEMU start -> /init ${t_up} s, -> kdump loaded ${t_ready} s, crash ${t_crash} s, capture /init ${t_cap} s, end $t_end s"
# No scenario repairs itself: the guest never reloads kdump; crash_hotplug must read what the mode
# implies after the hotplug, and the handler must not have failed an event.
hp_line=$(grep -a 'SMOKE: after hotplug crash_hotplug memory/cpu:' "$art/console.log" | tr -d '\r' | head -n 1)
if [ "$mode" = stale ]; then
  case "$hp_line" in *": 0 0") ;; *) die "negative control: crash_hotplug after the hotplug: '$hp_line' (want 0 0)" ;; esac
else
  case "$hp_line" in *": 1 1") ;; *) die "crash_hotplug after the hotplug: '$hp_line' (want 1 1: the kernel kept the image current)" ;; esac
  grep -aq 'SMOKE: stats: .*failed 0 ' "$art/console.log" ||
    die "the handler failed events: $(grep -a 'SMOKE: stats:' "$art/console.log" | grep -o 'failed [0-9]*' | head -n 1)"
  echo "verified: crash_hotplug read 1 1 after the hotplug (no reload), handler stats failed 0"
fi
if [ "$mode" = stale ]; then
  # It must fail for the stated reason: the DIMM missing from the stale header.
  grep -q 'PT_LOADs do not cover the DIMM' "$art/check-vmcore.txt" ||
    die "negative control: check-vmcore did not fail on the DIMM: $(tail -n 2 "$art/check-vmcore.txt" | tr '\n' ' ')"
  grep -q 'SMOKE: crash_hotplug memory 0 cpu 0' "$art/console.log" || die "negative control: crash_hotplug did not read 0"
  echo "ppc-smoke ($mode): ok, the stale dump was detected (artifacts: $art)"
else
  if [ "$mode" = memmap ]; then
    # The struct pages are on the DIMM: MemTotal grows by less than its size (by all of it if the
    # memmap came from boot memory, i.e. memory_hotplug.memmap_on_memory=$memmap had no effect).
    kb() { sed -n "s/.*SMOKE: $1.*MemTotal: *\([0-9]*\) kB.*/\1/p" "$art/console.log" | head -n 1; }
    before=$(kb 'memmap_on_memory'); after=$(kb 'after hotplug')
    grown=$(( after - before )) added=$(( dimm_size / 1024 ))
    param=$(sed -n 's/.*SMOKE: memmap_on_memory \([^ ]*\) before.*/\1/p' "$art/console.log" | head -n 1)
    # Each check reports; the run fails after all of them (the coverage check's failure first).
    mm_bad=()
    if [ "$grown" -gt 0 ] && [ "$grown" -lt "$added" ]; then
      echo "verified: memmap_on_memory $param in effect: MemTotal grew by $grown KiB for the $added KiB DIMM ($((added - grown)) KiB of struct pages on it)"
    else
      mm_bad+=("memory_hotplug.memmap_on_memory=$memmap (reads '$param') not in effect: MemTotal grew by $grown KiB for the $added KiB DIMM")
    fi
    mdl=$(grep -a 'SMOKE: makedumpfile -l -d 31:' "$art/console.log" | tail -n 1 | tr -d '\r')
    case "$mdl" in
      *'rc=0 size='[1-9]*"signature='KDUMP   '"*) echo "verified: in the capture kernel ${mdl#*SMOKE: }" ;;
      *) grep -a 'makedumpfile|' "$art/console.log" | tail -n 8 >&2
         mm_bad+=("makedumpfile -l -d 31 /proc/vmcore did not write a kdump-compressed file: ${mdl:-no makedumpfile line}") ;;
    esac
    for m in "${mm_bad[@]}"; do echo "FAILED: $m" >&2; done
    [ "$rc" = 0 ] || die "the dump does not hold the DIMM's online memory whole, or lists its offlined block (see check-vmcore above)"
    [ "${#mm_bad[@]}" = 0 ] || die "${mm_bad[-1]}"
  fi
  [ "$rc" = 0 ] || die "the dump misses the hot-added DIMM or CPU (want $want_cpus NT_PRSTATUS and VMCOREINFO)"
  [ "$pattern_ok" = 1 ] || die "pattern not found at $pattern_pa in the dump (got '$got')"
  echo "verified: pattern at $pattern_pa found in /proc/vmcore (read back on the host)"
  [ "$ncpu_nodes" = "$want_cpus" ] || die "capture kernel /proc/device-tree/cpus: '$cap_cpus' (want $want_cpus CPU nodes)"
  echo "verified: capture kernel /proc/device-tree/cpus: $cap_cpus"
  if [ "$mode" = cores ]; then
    inplace=$(grep -c 'updating in place' "$art/console.log" || true)
    [ "$inplace" = 0 ] || die "$inplace of ${#cores[@]} CPU adds updated the crash FDT in place (not crash-consistently): $(grep 'updating in place' "$art/console.log" | head -n 2 | tr -d '\r')"
    echo "verified: all ${#cores[@]} CPU core adds switched FDT blocks crash-consistently; crashed on the last"
  fi
  echo "ppc-smoke ($mode): ok (artifacts: $art)"
fi
