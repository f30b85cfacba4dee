# Pins of crash_hotplug's set-up, and the resolver that turns them into what a machine gets today.
# Source after lib.sh; do not run.
#
# What never changes is pinned exactly: upstream source tarballs by sha256 (PIN_SRC below). What
# Debian replaces at every point or security release is pinned by what the project needs, never by
# a Debian revision: binary packages name an upstream version (or a minimum) and a list of suites in
# order of preference. Set-up takes the newest revision of the first suite that has a matching one,
# downloads it with apt (which checks its hash against the suite's signed index), falls through to
# the next candidate when a download fails (a revision can be listed before its .deb is served),
# prints one `pin:` line per package (what it got, and whether that differs from scripts/pins.recorded,
# the resolution of the last developer run) and writes the whole resolution to
# $CRASHHP_CACHE/pins.lock.
#
# CRASHHP_PIN_UNAVAILABLE="name[:arch] ..." makes the resolver treat the recorded revision of each
# named package as gone from the archive (as trixie's libc6 2.41-12+deb13u4 was on 2026-11-29): it is
# dropped from the candidates, so set-up must succeed through its fallback. The test command runs
# set-up that way in a scratch cache for one package of each route.

# Binary packages: route name arch want suites...
#   route  apt: installed on the host (scripts/setup.sh plans and checks the install)
#          deb: downloaded and extracted into the cache, never installed
#          closure: a ppc64el library or program of the udevadm closure (downloaded, extracted)
#          build: a ppc64el -dev package whose static libraries a guest tool is linked with
#          chroot: installed in the fadump QEMU chroot by mmdebstrap (scripts/setup-fadump-qemu.sh);
#          its arch label amd64-chroot tells it from the host's qemu-system-ppc
#   want   an upstream version (shell glob, e.g. 19.1.7 or 252.*) or a minimum (>=10.2); the upstream
#          version is the Debian version without epoch, revision and +ds/+dfsg/~ suffixes
PIN_BIN=(
  "apt clang-19 amd64 19.1.7 bookworm"
  "apt lld-19 amd64 19.1.7 bookworm"
  "apt llvm-19 amd64 19.1.7 bookworm"
  "apt libclang-19-dev amd64 19.1.7 bookworm"
  "apt qemu-system-x86 amd64 10.0.2 bookworm-backports"
  "apt qemu-system-ppc amd64 10.0.2 bookworm-backports"
  "apt qemu-system-common amd64 10.0.2 bookworm-backports"
  "apt qemu-system-data amd64 10.0.2 bookworm-backports"
  "apt seabios amd64 1.16.3 bookworm-backports"
  # linux-source-7.3 ships Debian's patched tree: its tarball changes with the revision, so the
  # tarball's sha256 is recorded (pins.lock). Any 7.3.y: backports replaces 7.3.4 with the next
  # stable release and drops it; the patch series must apply (scripts/overlay.sh fails loudly if
  # not) and the build trees of another tarball are discarded (scripts/build-kernel.sh).
  "apt linux-source-7.3 all 7.3.* trixie-backports"
  # rust-src must match rustc 1.95.0 exactly.
  "apt rust-src all 1.95.0 trixie-backports"
  "apt gcc-powerpc64le-linux-gnu amd64 12.2.0 bookworm"
  "apt libc6-dev-ppc64el-cross all 2.36 bookworm"
  "apt mmdebstrap all >=1.3.5 bookworm bookworm-backports"
  # udevadm for the x86 guests' udev rule tests (its libraries come from the host).
  "deb udev amd64 252.* bookworm bookworm-security"
  # Static busybox for the ppc64le guests: bookworm's, or any newer static build.
  "deb busybox-static ppc64el >=1.35 bookworm trixie"
  # udevadm for the ppc64le guests, with the NEEDED closure of bookworm (one suite, one libc).
  "closure udev ppc64el 252.* bookworm bookworm-security"
  "closure libc6 ppc64el 2.36 bookworm bookworm-security"
  "closure libkmod2 ppc64el 30* bookworm"
  "closure libssl3 ppc64el 3.0.* bookworm bookworm-security"
  "closure liblzma5 ppc64el 5.4.* bookworm"
  "closure libzstd1 ppc64el 1.5.* bookworm"
  "closure libacl1 ppc64el 2.3.* bookworm"
  "closure libblkid1 ppc64el 2.38.* bookworm bookworm-security"
  "closure libcap2 ppc64el 2.66 bookworm bookworm-security"
  "closure libselinux1 ppc64el 3.4 bookworm"
  "closure libpcre2-8-0 ppc64el 10.42 bookworm"
  # Static libraries of the guests' makedumpfile builds (scripts/build-makedumpfile.sh): any
  # bookworm revision.
  "build libelf-dev amd64 * bookworm"
  "build libdw-dev amd64 * bookworm"
  "build zlib1g-dev amd64 * bookworm"
  "build libbz2-dev amd64 * bookworm"
  "build liblzma-dev amd64 * bookworm"
  "build libzstd-dev amd64 * bookworm"
  "build liblzo2-dev amd64 * bookworm"
  "build libelf-dev ppc64el * bookworm"
  "build libdw-dev ppc64el * bookworm"
  "build zlib1g-dev ppc64el * bookworm"
  "build libbz2-dev ppc64el * bookworm"
  "build liblzma-dev ppc64el * bookworm"
  "build libzstd-dev ppc64el * bookworm"
  "build liblzo2-dev ppc64el * bookworm"
  # QEMU with pseries fadump (RTAS ibm,configure-kernel-dump, upstream >= 10.2): any revision of
  # 11.1.3 or newer from trixie-backports, in a trixie chroot; the feature is probed, not assumed.
  "chroot qemu-system-ppc amd64-chroot >=10.2 trixie-backports"
)

# Upstream source tarballs: name version file sha256 (Debian's pool keeps an .orig's bytes).
# name version file sha256 [url]: without a url, the file is in Debian's pool under the name.
PIN_SRC=(
  "kexec-tools 2.0.29 kexec-tools_2.0.29.orig.tar.xz 67b1ac503aade45a54db0bc79228a8830a35d5d4f83cee932cff3e7a81a4a9ec"
  "makedumpfile 1.7.7 makedumpfile_1.7.7.orig.tar.gz 69b4d24ace3024cf2a41f343e162838b62b1b37d6edc7bbad4260fa36217efee"
  # drgn (PyPI; files there never change): the harness reads dumps with it on the host, run by
  # bookworm's python3 (3.11, the wheel's ABI). The manylinux wheel bundles libkdumpfile, so it
  # opens makedumpfile's kdump-compressed files.
  "drgn 0.3.0 drgn-0.3.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl 69c8b8ce9d1b714f1bcd871101b88f41694d0bc1746485b18d4f1238c72a884d https://files.pythonhosted.org/packages/30/5f/f089f571a83c7bfbb75d27df913fd3c79fa9bf1d8657861a853573a9bc28/drgn-0.3.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
)
PIN_POOL=http://deb.debian.org/debian/pool/main
PIN_RECORDED=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pins.recorded

# apt_private ARCH DIR SUITE...: a private apt configuration in DIR for ARCH's packages of SUITEs
# (main): its own sources.list, lists and cache, an empty dpkg status (nothing is installed; the
# machine gets no foreign dpkg architecture), the Debian archive keyring. Sets apt_opts.
apt_private() {
  local arch=$1 a=$2 s
  shift 2
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
  for s in "$@"; do
    printf 'deb [arch=%s signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
      "$arch" "$s"
  done >"$a/sources.list"
  apt_opts=(-o APT::Architecture="$arch" -o APT::Architectures::="$arch"
    -o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" -o Dir::State::status=/dev/null
    -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts=-
    -o Dir::Etc::Preferences=- -o Dir::Etc::PreferencesParts=-)
}

# pin_get NAME ARCH: sets pin_route pin_want pin_suites for the PIN_BIN entry.
pin_get() {
  local line r n a w s
  for line in "${PIN_BIN[@]}"; do
    read -r r n a w s <<<"$line"
    if [ "$n" = "$1" ] && [ "$a" = "$2" ]; then pin_route=$r pin_want=$w pin_suites=$s; return 0; fi
  done
  die "no pin for $1 ($2) in scripts/pins.sh"
}

# pin_upstream VERSION: the upstream part of a Debian version (no epoch, revision, +ds/+dfsg/~ tails).
pin_upstream() {
  local v=${1#*:}
  [[ "$v" != *-* ]] || v=${v%-*}
  v=${v%%+*}; v=${v%%~*}
  printf '%s\n' "$v"
}

# pin_wanted VERSION WANT: does VERSION's upstream version satisfy WANT (glob or >=min)?
pin_wanted() {
  local up; up=$(pin_upstream "$1")
  case "$2" in
    '>='*) dpkg --compare-versions "$up" ge "${2#>=}" ;;
    *) # shellcheck disable=SC2053 # WANT is a glob on purpose
       [[ "$up" == $2 ]] ;;
  esac
}

# pin_recorded NAME ARCH: the revision scripts/pins.recorded names (empty if none).
pin_recorded() {
  [ -f "$PIN_RECORDED" ] || return 0
  awk -v n="$1" -v a="$2" '$1 == n && $2 == a { print $4; exit }' "$PIN_RECORDED"
}

pin_forced_gone() { # NAME ARCH: is NAME[:ARCH] in CRASHHP_PIN_UNAVAILABLE?
  local x
  for x in ${CRASHHP_PIN_UNAVAILABLE:-}; do
    [ "$x" = "$1" ] || [ "$x" = "$1:$2" ] && return 0
  done
  return 1
}

# pin_prefetch APT_OPTS...: reads, with one apt-cache call each, the suites and versions (madison)
# and the index records (SHA256, Size, Filename) of every pinned package in APT_OPTS'
# configuration, so that the look-ups below cost no apt-cache run (each builds apt's cache, ~0.5 s).
# Call it in the main shell (not in $(...)) after every apt-get update of that configuration.
declare -A PIN_MADISON=() PIN_INFO=()
pin_prefetch() {
  local key="k:$*" line r n rest names=()
  for line in "${PIN_BIN[@]}"; do read -r r n rest <<<"$line"; names+=("$n"); done
  mapfile -t names < <(printf '%s\n' "${names[@]}" | sort -u)
  PIN_MADISON[$key]=$(apt-cache "$@" madison "${names[@]}" 2>/dev/null || true)
  while read -r n ver sha size file; do
    PIN_INFO["$key|$n=$ver"]="$sha $size $file"
  done < <(apt-cache "$@" show "${names[@]}" 2>/dev/null | awk '
    /^Package: / { p = $2 } /^Version: / { v = $2 } /^SHA256: / { h = $2 } /^Size: / { z = $2 }
    /^Filename: / { f = $2 } /^$/ { if (p != "") print p, v, h, z, f; p = v = h = z = f = "" }
    END { if (p != "") print p, v, h, z, f }')
}

# pin_info NAME VERSION APT_OPTS...: "sha256 size filename" of NAME=VERSION in the signed index.
pin_info() {
  local name=$1 ver=$2; shift 2
  local key="k:$*"
  if [ -n "${PIN_INFO["$key|$name=$ver"]+x}" ]; then printf '%s\n' "${PIN_INFO["$key|$name=$ver"]}"; return; fi
  apt-cache "$@" show "$name=$ver" 2>/dev/null | awk '/^SHA256: / { h = $2 } /^Size: / { z = $2 }
    /^Filename: / { f = $2 } /^$/ { exit } END { print h, z, f }'
}

# pin_candidates NAME ARCH APT_OPTS...: prints "suite version" lines, in the order set-up tries them:
# the pin's suites in order, newest matching revision first within a suite. The suites and versions
# come from APT_OPTS' configuration (which must list the suites).
pin_candidates() {
  local name=$1 arch=$2 s v suite ver gone= madison
  shift 2
  pin_get "$name" "$arch"
  pin_forced_gone "$name" "$arch" && gone=$(pin_recorded "$name" "$arch")
  local key="k:$*"
  if [ -n "${PIN_MADISON[$key]+x}" ]; then madison=${PIN_MADISON[$key]}
  else madison=$(apt-cache "$@" madison "$name" 2>/dev/null || true)
  fi
  madison=$(awk -F' [|] ' -v n="$name" '
    { gsub(/^ +/, "", $1) } $1 == n { split($3, u, " "); split(u[2], s, "/"); print s[1], $2 }' <<<"$madison")
  for s in $pin_suites; do
    local -a vs=()
    while read -r suite ver; do
      [ "$suite" = "$s" ] || continue
      pin_wanted "$ver" "$pin_want" || continue
      [ "$ver" != "$gone" ] || continue
      vs+=("$ver")
    done <<<"$madison"
    # Newest first (dpkg ordering: ~ sorts before anything).
    for ((i = 0; i < ${#vs[@]}; i++)); do
      for ((j = i + 1; j < ${#vs[@]}; j++)); do
        if dpkg --compare-versions "${vs[j]}" gt "${vs[i]}"; then v=${vs[i]}; vs[i]=${vs[j]}; vs[j]=$v; fi
      done
    done
    for v in "${vs[@]}"; do printf '%s %s\n' "$s" "$v"; done
  done
}

# pin_note NAME ARCH SUITE VERSION SHA256 [EXTRA]: the pin: line and the lock entry.
pin_note() {
  local name=$1 arch=$2 suite=$3 ver=$4 sum=$5 extra=${6:-} rec how
  rec=$(pin_recorded "$name" "$arch")
  pin_get "$name" "$arch"
  if pin_forced_gone "$name" "$arch"; then
    how="recorded $rec treated as unavailable (CRASHHP_PIN_UNAVAILABLE): fallback to $suite $ver"
  elif [ -z "$rec" ]; then how="not recorded before"
  elif [ "$rec" = "$ver" ]; then how="as recorded"
  else how="MOVED: recorded $rec, now $ver"
  fi
  printf 'pin: %s:%s (%s, want %s) -> %s %s [%s]%s\n' "$name" "$arch" "$pin_route" "$pin_want" "$suite" "$ver" \
    "$how" "${extra:+ $extra}"
  mkdir -p "$CRASHHP_CACHE"
  local lock="$CRASHHP_CACHE/pins.lock"
  { [ ! -f "$lock" ] || awk -v n="$name" -v a="$arch" '!($1 == n && $2 == a)' "$lock"
    printf '%s %s %s %s %s %s\n' "$name" "$arch" "$suite" "$ver" "${sum:--}" "$pin_route"; } >"$lock.tmp"
  mv "$lock.tmp" "$lock"
}

# pin_index_sha NAME VERSION APT_OPTS...: the SHA256 of NAME=VERSION's .deb in the signed index.
pin_index_sha() {
  local info; info=$(pin_info "$@")
  printf '%s\n' "${info%% *}"
}

# pin_download NAME ARCH DIR APT_OPTS...: downloads the first obtainable candidate into DIR (apt
# checks the hash against the signed index; it is checked again here), notes it, and sets pin_deb.
pin_download() {
  local name=$1 arch=$2 dir=$3 suite ver sum tried=()
  shift 3
  while read -r suite ver; do
    [ -n "$ver" ] || continue
    tried+=("$suite/$ver")
    rm -f "$dir/${name}_"*.deb
    if (cd "$dir" && apt-get "$@" download -q "$name=$ver" >/dev/null 2>&1); then
      pin_deb=$(ls "$dir/${name}_"*.deb)
      sum=$(sha256sum "$pin_deb" | cut -d' ' -f1)
      [ "$sum" = "$(pin_index_sha "$name" "$ver" "$@")" ] || die "$pin_deb: sha256 differs from the signed index"
      [ "$(dpkg-deb -f "$pin_deb" Package Version | tr '\n' ' ')" = "Package: $name Version: $ver " ] ||
        die "$pin_deb is not $name $ver"
      pin_note "$name" "$arch" "$suite" "$ver" "$sum"
      return 0
    fi
    echo "pin: $name:$arch $suite $ver is listed but could not be downloaded; trying the next candidate" >&2
  done < <(pin_candidates "$name" "$arch" "$@")
  die "$name ($arch): no obtainable revision (want $pin_want in $pin_suites; tried: ${tried[*]:-none})"
}

# pin_src NAME: downloads (once) and verifies the pinned upstream tarball into $CRASHHP_CACHE; prints
# its path.
pin_src() {
  local line n v f sum url path
  for line in "${PIN_SRC[@]}"; do
    read -r n v f sum url <<<"$line"
    [ "$n" = "$1" ] || continue
    path="$CRASHHP_CACHE/$f"
    if [ ! -f "$path" ]; then
      mkdir -p "$CRASHHP_CACHE"
      curl -fsSL -o "$path.tmp" "${url:-$PIN_POOL/${n:0:1}/$n/$f}" || die "downloading $f from ${url:-the Debian pool} failed"
      mv "$path.tmp" "$path"
    fi
    echo "$sum  $path" | sha256sum -c --quiet - >/dev/null 2>&1 || die "$f: sha256 mismatch (pinned $sum; delete it to download again)"
    printf 'pin: %s (source, %s) -> %s sha256 %s [pinned]\n' "$n" "$v" "$f" "$sum" >&2
    echo "$path"
    return 0
  done
  die "no source pin for $1"
}
