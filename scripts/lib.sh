# Shared shell helpers for crash_hotplug scripts. Source, do not run.
# CRASHHP_CACHE holds downloads and build trees outside the clone, keyed by their inputs.
: "${CRASHHP_CACHE:=/var/cache/crash_hotplug}"
export CRASHHP_CACHE
export PATH="$HOME/.cargo/bin:$PATH"
_t0=${_t0:-$(date +%s)}
phase() { printf '==> [%4ss] %s\n' "$(( $(date +%s) - _t0 ))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
