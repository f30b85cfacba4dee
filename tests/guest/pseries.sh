# Guest side of the pseries scenarios (scripts/ppc-smoke.sh, scripts/fadump-smoke.sh): sourced by
# their /init as /pseries.sh. The transfer disk /dev/vda carries results to the host: the head of
# /proc/vmcore at 0, the pattern's 64 bytes from the dump at 256 KiB.

say() { echo "SMOKE: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }

# Waits (at most 5 min) until the host has hot-added memory and a CPU came online, then reports.
wait_hotplug() {
  local blocks0 b c i=0
  blocks0=$(ls -d /sys/devices/system/memory/memory* | wc -l)
  say "ready for hotplug"
  while [ "$i" -lt 600 ]; do
    b=$(ls -d /sys/devices/system/memory/memory* | wc -l)
    c=$(cat /sys/devices/system/cpu/online)
    # With /want-cpus, that many CPUs must be online (cores are hot-added one after another).
    if [ -e /want-cpus ]; then
      [ "$b" -gt "$blocks0" ] && [ "$(grep -c ^processor /proc/cpuinfo)" -ge "$(cat /want-cpus)" ] && break
    else
      [ "$b" -gt "$blocks0" ] && [ "$c" != 0 ] && break
    fi
    sleep 0.5; i=$((i + 1))
  done
  sleep 3
  say "after hotplug: $(ls -d /sys/devices/system/memory/memory* | wc -l) blocks, online cpus $(cat /sys/devices/system/cpu/online), $(grep MemTotal /proc/meminfo)"
}

# Writes /pattern at the physical address in /pattern-addr through /dev/mem (STRICT_DEVMEM is off).
write_pattern() {
  local pa
  pa=$(cat /pattern-addr)
  printf '%s' "$(cat /pattern)" | dd of=/dev/mem bs=64 seek=$((pa / 64)) count=1 conv=notrunc 2>/dev/null
  say "pattern written at $pa: $(dd if=/dev/mem bs=64 skip=$((pa / 64)) count=1 2>/dev/null)"
}

# In the capture kernel: finds the pattern's page in /proc/vmcore from its program headers and
# writes its first 64 bytes to the transfer disk at 256 KiB for the host to compare.
save_pattern_page() {
  local pa phoff phnum i=0 h o p z off=
  pa=$(cat /pattern-addr)
  rd() { od -A n -t "u$2" -j "$1" -N "$2" /proc/vmcore | tr -d ' '; }
  phoff=$(rd 32 8); phnum=$(rd 56 2)
  while [ "$i" -lt "$phnum" ]; do
    h=$((phoff + i * 56))
    if [ "$(rd "$h" 4)" = 1 ]; then
      o=$(rd $((h + 8)) 8); p=$(rd $((h + 24)) 8); z=$(rd $((h + 32)) 8)
      say "PT_LOAD paddr $(printf 0x%x "$p") size $(printf 0x%x "$z") offset $(printf 0x%x "$o")"
      [ "$pa" -ge "$p" ] && [ "$pa" -lt $((p + z)) ] && off=$((o + pa - p))
    fi
    i=$((i + 1))
  done
  if [ -n "$off" ]; then
    dd if=/proc/vmcore of=/dev/vda bs=64 skip=$((off / 64)) seek=4096 count=1 conv=notrunc 2>/dev/null
    sync; say "pattern page at vmcore offset $off written"
  else
    say "pattern address $pa is in no PT_LOAD"
  fi
}
