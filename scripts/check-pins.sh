#!/usr/bin/env bash
# Is every pinned input still obtainable by the route a fresh machine's set-up would take? Asks the
# registries (index look-ups; a download into a temporary directory for small files, the first byte
# of the pool file for large ones: no multi-GB transfer), prints what moved since scripts/pins.recorded
# and which candidate (or fallback) now serves each pin, and fails only if set-up on a fresh machine
# would fail: a pin with no obtainable candidate, or a source tarball whose bytes are not the pinned
# ones. Needs the apt sources scripts/setup.sh adds (the test command runs set-up first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
# shellcheck source=scripts/pins.sh
. "$here/pins.sh"

small=$((2 * 1024 * 1024))
tmp=$(mktemp -d); chmod 755 "$tmp"; trap 'rm -rf "$tmp"' EXIT

# The ppc64el indexes, fresh, in a private configuration like set-up's (bookworm, trixie).
apt_private ppc64el "$tmp/apt-ppc64el" bookworm trixie
ppc=("${apt_opts[@]}")
phase "refreshing the indexes (host suites, ppc64el bookworm + trixie)"
apt-get update -qq || die "apt-get update failed"
touch /var/lib/apt/lists/.crashhp-updated
apt-get "${ppc[@]}" update -qq || die "apt-get update (ppc64el) failed"

pin_prefetch
pin_prefetch "${ppc[@]}"

bad=0 moved=0 n=0
# The first candidate of every pin is tried first, all small .debs of one configuration in one
# apt-get call; a pin whose first candidate is not obtainable tries its other candidates one by one.
declare -A first_of=() how_of=()
small_host=() small_ppc=()
for line in "${PIN_BIN[@]}"; do
  read -r route name arch want suites <<<"$line"
  opts=(); [ "$arch" != ppc64el ] || opts=("${ppc[@]}")
  read -r suite ver < <(pin_candidates "$name" "$arch" "${opts[@]}") || true
  [ -n "${ver:-}" ] || continue
  first_of["$name:$arch"]="$suite $ver"
  read -r sha size file <<<"$(pin_info "$name" "$ver" "${opts[@]}")"
  if [ "${size:-0}" -le "$small" ]; then
    if [ "$arch" = ppc64el ]; then small_ppc+=("$name=$ver"); else small_host+=("$name=$ver"); fi
  fi
done
mkdir -p "$tmp/host" "$tmp/ppc"
phase "downloading ${#small_host[@]} + ${#small_ppc[@]} small .debs (first candidates)"
(cd "$tmp/host" && apt-get download -q "${small_host[@]}" >/dev/null 2>&1) || true
(cd "$tmp/ppc" && apt-get "${ppc[@]}" download -q "${small_ppc[@]}" >/dev/null 2>&1) || true

# obtainable NAME VERSION DIR APT_OPTS...: the .deb in DIR (or downloaded now) has the signed index's
# sha256, or, for a large one, its pool file answers. Sets how.
obtainable() {
  local name=$1 ver=$2 dir=$3 sha size file deb; shift 3
  read -r sha size file <<<"$(pin_info "$name" "$ver" "$@")"
  [ -n "$sha" ] && [ -n "$size" ] && [ -n "$file" ] || return 1
  if [ "$size" -le "$small" ]; then
    # apt-get download names the file NAME_VERSION_ARCH.deb, an epoch's colon written %3a.
    local -a debs=("$dir/${name}_${ver//:/%3a}_"*.deb)
    if [ ! -f "${debs[0]}" ]; then
      (cd "$dir" && apt-get "$@" download -q "$name=$ver" >/dev/null 2>&1) || return 1
      debs=("$dir/${name}_${ver//:/%3a}_"*.deb)
    fi
    [ -f "${debs[0]}" ] && [ "$(sha256sum "${debs[0]}" | cut -d' ' -f1)" = "$sha" ] || return 1
    how="downloaded $size bytes, sha256 as in the signed index"
  else
    curl -fsS -r 0-0 -o /dev/null "http://deb.debian.org/debian/$file" || return 1
    how="pool file answers ($size bytes, not downloaded)"
  fi
}

for line in "${PIN_BIN[@]}"; do
  read -r route name arch want suites <<<"$line"
  opts=() dir="$tmp/host"; [ "$arch" != ppc64el ] || { opts=("${ppc[@]}"); dir="$tmp/ppc"; }
  rec=$(pin_recorded "$name" "$arch")
  n=$((n + 1)) first=1 got=
  while read -r suite ver; do
    [ -n "$ver" ] || continue
    if obtainable "$name" "$ver" "$dir" "${opts[@]}"; then got="$suite $ver"; break; fi
    echo "pins: $name:$arch $suite $ver is listed but not obtainable" >&2
    first=0
  done < <(pin_candidates "$name" "$arch" "${opts[@]}")
  if [ -z "$got" ]; then
    echo "pins: FAIL $name:$arch ($route, want $want in $suites): no obtainable revision: a fresh set-up would fail"
    bad=1; continue
  fi
  state="as recorded"
  [ "${got#* }" = "$rec" ] || { state="MOVED from ${rec:-nothing recorded}"; moved=$((moved + 1)); }
  [ "$first" = 1 ] || state="$state; served by a fallback candidate"
  echo "pins: ok $name:$arch ($route, want $want) -> $got [$state] ($how)"
done

for line in "${PIN_SRC[@]}"; do
  read -r name ver file sum url <<<"$line"
  n=$((n + 1))
  url=${url:-$PIN_POOL/${name:0:1}/$name/$file}
  if curl -fsS -o "$tmp/$file" "$url" && echo "$sum  $tmp/$file" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "pins: ok $name $ver (source) -> $file, sha256 as pinned"
  elif [ -f "$CRASHHP_CACHE/$file" ] && echo "$sum  $CRASHHP_CACHE/$file" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "pins: FAIL $name $ver (source): $url is not served with the pinned bytes (this cache still has it; a fresh machine would fail)"
    bad=1
  else
    echo "pins: FAIL $name $ver (source): $url is not served with the pinned bytes"; bad=1
  fi
  rm -f "$tmp/$file"
done
echo "pins: $n checked, $moved moved since scripts/pins.recorded, $([ "$bad" = 0 ] && echo "all obtainable" || echo "SOME NOT OBTAINABLE")"
[ "$bad" = 0 ]
