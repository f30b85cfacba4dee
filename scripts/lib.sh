# Shared shell helpers for crash_hotplug scripts. Source, do not run.
# CRASHHP_CACHE holds downloads and build trees outside the clone, keyed by their inputs.
: "${CRASHHP_CACHE:=/var/cache/crash_hotplug}"
export CRASHHP_CACHE
export PATH="$HOME/.cargo/bin:$PATH"
_t0=${_t0:-$(date +%s)}
phase() { printf '==> [%4ss] %s\n' "$(( $(date +%s) - _t0 ))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# static_elf BIN MACHINE: dies unless BIN is an executable, statically linked (no program
# interpreter, no dynamic segment: nothing for a loader to do) ELF for MACHINE (readelf's Machine
# field, e.g. PowerPC64). readelf's output is captured before matching: with pipefail, grep -q
# closing a pipe early would fail the pipeline (SIGPIPE) and invert the test.
static_elf() {
  local out
  [ -x "$1" ] || die "$1: missing or not executable"
  out=$(readelf -hlW "$1") || die "readelf $1 failed"
  if grep -qE '\b(INTERP|DYNAMIC)\b' <<<"$out"; then die "$1 is dynamically linked"; fi
  grep -q "Machine: *$2\$" <<<"$out" || die "$1 is not a $2 binary"
  elf_header=$out
}
