# Shell helpers of the pseries guest scripts (ppc-smoke.sh, fadump-smoke.sh): timing, waiting for a
# console line. They use the caller's $art (artifact dir, console.log),
# $qpid (QEMU's pid) and $t_start (ms at QEMU start). QMP goes through the Rust harness
# (`crashhp qmp`), not through shell.

# Milliseconds since the epoch; milliseconds as seconds with one decimal.
ms() { echo $(( $(date +%s%N) / 1000000 )); }
sec() { printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }

stop_qemu() { kill "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; }

# wait_for PATTERN TIMEOUT: prints the seconds since QEMU start when PATTERN appears on the console.
wait_for() {
  local pat=$1 limit=$2 t
  while :; do
    t=$(( $(ms) - t_start ))
    if grep -q -- "$pat" "$art/console.log" 2>/dev/null; then sec "$t"; echo; return 0; fi
    kill -0 "$qpid" 2>/dev/null || { echo "QEMU exited while waiting for '$pat'" >&2; return 1; }
    [ "$t" -le $(( limit * 1000 )) ] || { echo "timeout waiting for '$pat'" >&2; return 1; }
    sleep 0.2
  done
}

fail() { tail -n 40 "$art/console.log" >&2; die "$*"; }

# make_pattern TAG PA ROOT...: a 64-byte pattern naming TAG, PA and a nonce, put with its address
# into each initramfs ROOT (/pattern, /pattern-addr) for tests/guest/pseries.sh; prints it.
make_pattern() {
  local tag=$1 pa=$2 pattern r
  shift 2
  pattern=$(printf '%s %x %s' "$tag" "$pa" "$(date +%s%N)")
  pattern=$(printf '%-64.64s' "$pattern" | tr ' ' '.')
  for r in "$@"; do echo "$pa" >"$r/pattern-addr"; echo "$pattern" >"$r/pattern"; done
  echo "$pattern"
}

# pattern_from_disk DISK: the 64 bytes of the dump the capture kernel saved at 256 KiB.
pattern_from_disk() { dd if="$1" bs=64 skip=4096 count=1 2>/dev/null | tr -d '\0'; }
