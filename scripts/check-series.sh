#!/usr/bin/env bash
# The series as a maintainer receives it: scripts/export-series.sh writes it, `git am` applies every
# patch to a pristine Linux 7.3 tree (the whole tree, as a git repository), and the tree's own
# `scripts/checkpatch.pl --strict` must report no error, warning or check on any patch.
#   usage: scripts/check-series.sh [OUTDIR]   (default: a temporary directory)
# The pristine tree's repository is made once per tarball ($CRASHHP_CACHE/linux-7.3-am, keyed by
# the tarball's sha256) and reset to its one commit before and after every check.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
pristine="$CRASHHP_CACHE/linux-7.3"
[ -f "$pristine/.crashhp-pristine" ] || die "no Linux tree: run scripts/setup.sh"
key=$(cat "$pristine/.crashhp-pristine")
am_tree="$CRASHHP_CACHE/linux-7.3-am"
g() { git -C "$am_tree" -c user.name="crash_hotplug check" -c user.email="check@localhost" "$@"; }

if [ "$(cat "$am_tree/.git/crashhp-key" 2>/dev/null)" != "$key" ]; then
  phase "a git repository of the pristine tree (once per tarball)"
  rm -rf "$am_tree" "$am_tree.tmp"
  cp -a "$pristine" "$am_tree.tmp"
  rm -f "$am_tree.tmp/.crashhp-pristine"
  git -C "$am_tree.tmp" init -q
  git -C "$am_tree.tmp" add -A -f # (the tarball's .gitignore ignores its top level)
  git -C "$am_tree.tmp" -c user.name=pristine -c user.email=pristine@localhost \
    commit -qm "Linux $(make -s -C "$pristine" kernelversion) (tarball sha256 $key)"
  echo "$key" > "$am_tree.tmp/.git/crashhp-key"
  mv "$am_tree.tmp" "$am_tree"
fi
base=$(g rev-list --max-parents=0 HEAD)
reset() { g am --abort >/dev/null 2>&1 || true; g reset -q --hard "$base"; g clean -fdxq; }
reset

out=${1:-$(mktemp -d)}
phase "export the series"
"$repo/scripts/export-series.sh" "$out" >/dev/null
# The prerequisite series (one patch), then the series.
mapfile -t patches < <(printf '%s\n' "$out"/prerequisite/[0-9]*.patch "$out"/[0-9]*.patch)
[ "${#patches[@]}" -gt 1 ] || die "export-series wrote no patches to $out"

phase "git am: ${#patches[@]} files (cover letter and patches) onto Linux $(g log -1 --format=%s "$base")"
n=0
for p in "${patches[@]}"; do
  case "$(basename "$p")" in 0000-cover-letter.patch) continue ;; esac
  if ! g am -q "$p" 2>"$out/am.err"; then
    cat "$out/am.err"; reset
    die "git am: $(basename "$p") does not apply to pristine Linux 7.3 after the $n before it"
  fi
  n=$((n + 1))
done
echo "    git am: $n patches applied; the tree at their end: $(g diff --shortstat "$base" HEAD)"
for p in "${patches[@]}"; do
  grep -q '^Signed-off-by: ' "$p" || [ "$(basename "$p")" = 0000-cover-letter.patch ] ||
    die "$(basename "$p"): no Signed-off-by"
done

phase "scripts/checkpatch.pl --strict (from the tree, as a maintainer runs it)"
bad=0
for p in "${patches[@]}"; do
  res=$(cd "$am_tree" && perl scripts/checkpatch.pl --strict --color=never "$p" 2>&1) || true
  total=$(grep -E '^total: ' <<<"$res" || echo "total: no result")
  printf '    %-70s %s\n' "${p#"$out"/}" "$total"
  if [ "$total" != "$(grep -E '^total: 0 errors, 0 warnings, 0 checks' <<<"$total")" ]; then
    grep -E '^(ERROR|WARNING|CHECK):' -A3 <<<"$res" | sed 's/^/      /'
    bad=$((bad + 1))
  fi
done
reset
[ "$bad" = 0 ] || die "checkpatch: $bad patches with an error, a warning or a check"
echo "series: ${#patches[@]} files (a one-patch prerequisite series, a cover letter and the series), $n patches apply with git am to pristine Linux 7.3; checkpatch --strict: 0 errors, 0 warnings, 0 checks"
