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
a="$tmp/apt-ppc64el"; mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
for s in bookworm trixie; do
  printf 'deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' "$s"
done >"$a/sources.list"
ppc=(-o APT::Architecture=ppc64el -o APT::Architectures::=ppc64el -o Dir::State::Lists="$a/lists"
  -o Dir::Cache="$a/cache" -o Dir::State::status=/dev/null -o Dir::Etc::SourceList="$a/sources.list"
  -o Dir::Etc::SourceParts=- -o Dir::Etc::Preferences=- -o Dir::Etc::PreferencesParts=-)
phase "refreshing the indexes (host suites, ppc64el bookworm + trixie)"
apt-get update -qq || die "apt-get update failed"
touch /var/lib/apt/lists/.crashhp-updated
apt-get "${ppc[@]}" update -qq || die "apt-get update (ppc64el) failed"

bad=0 moved=0 n=0
# obtainable NAME VERSION APT_OPTS...: the .deb downloads (small) or its pool file answers (large).
obtainable() {
  local name=$1 ver=$2 size file sum; shift 2
  size=$(apt-cache "$@" show "$name=$ver" 2>/dev/null | awk '/^Size: / { print $2; exit }')
  file=$(apt-cache "$@" show "$name=$ver" 2>/dev/null | awk '/^Filename: / { print $2; exit }')
  [ -n "$size" ] && [ -n "$file" ] || return 1
  if [ "$size" -le "$small" ]; then
    rm -rf "$tmp/dl"; mkdir -p "$tmp/dl"
    (cd "$tmp/dl" && apt-get "$@" download -q "$name=$ver" >/dev/null 2>&1) || return 1
    sum=$(sha256sum "$tmp/dl/"*.deb | cut -d' ' -f1)
    [ "$sum" = "$(pin_index_sha "$name" "$ver" "$@")" ] || return 1
    how="downloaded $size bytes, sha256 as in the signed index"
  else
    curl -fsS -r 0-0 -o /dev/null "http://deb.debian.org/debian/$file" || return 1
    how="pool file answers ($size bytes, not downloaded)"
  fi
}

for line in "${PIN_BIN[@]}"; do
  read -r route name arch want suites <<<"$line"
  opts=(); [ "$arch" != ppc64el ] || opts=("${ppc[@]}")
  rec=$(pin_recorded "$name" "$arch")
  n=$((n + 1)) first=1 got=
  while read -r suite ver; do
    [ -n "$ver" ] || continue
    if obtainable "$name" "$ver" "${opts[@]}"; then got="$suite $ver"; break; fi
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
  read -r name ver file sum <<<"$line"
  n=$((n + 1))
  url="$PIN_POOL/${name:0:1}/$name/$file"
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
