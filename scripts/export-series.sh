#!/usr/bin/env bash
# Export crash_hotplug as a git format-patch series against Linux 7.3, for review and `git am`.
#   usage: scripts/export-series.sh OUTDIR
# OUTDIR/prerequisite/ holds a one-patch series of its own, the powerpc fix to rust/kernel/bug.rs
# (Rust with CONFIG_BUG=y), which this series is based on. Order (each step builds): the bindings
# patch; the rust/kernel abstractions kernel::cpuhp and kernel::memory; the C hooks that call into
# the crate (fadump capture, crash load begin/end, device-backed vmemmaps: their declarations are
# what the crate's #[export]s are checked against); the panic-during-edit kexec lock state and
# kernel::kexec over it; the Rust implementation (kernel/crash_hotplug/, not yet reachable from
# Kconfig); the guards that compile the C handler and crash_exclude_mem_range() out of a Rust
# build; the Kconfig/Makefile hook; the powerpc kexec_file FDT room for a crash-consistent CPU add.
# A cover letter comes first.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/lib.sh"
out=${1:?usage: export-series.sh OUTDIR}
pristine="$CRASHHP_CACHE/linux-7.3"
[ -f "$pristine/.crashhp-pristine" ] || die "no Linux tree: run scripts/setup.sh"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
g() { git -C "$work" -c user.name="crash_hotplug developers" -c user.email="crash-hotplug@localhost" "$@"; }
git init -q "$work"
# The base: the upstream files the patches touch, as they are in 7.3.
for f in MAINTAINERS $(sed -n 's|^+++ b/||p' "$repo"/patches/*.patch | sort -u); do
  [ -e "$pristine/$f" ] || continue  # a file a patch creates
  mkdir -p "$work/$(dirname "$f")"; cp "$pristine/$f" "$work/$f"
done
g add -A; g commit -qm "Linux $(make -s -C "$pristine" kernelversion) (the files this series touches)"
base=$(g rev-parse HEAD)

# Every patch signed off by the project (the Developer's Certificate of Origin, checkpatch ERROR
# without it); the author of each is the project too.
am() {
  g am -q -s --committer-date-is-author-date "$1" 2>"$work/am.err" ||
    { grep -v '^hint:' "$work/am.err" >&2; die "$(basename "$1") does not apply to Linux 7.3 (with the patches before it)"; }
}
# The powerpc fix to rust/kernel/bug.rs is a series of its own (it is not about crash hotplug);
# this one is based on it.
am "$repo"/patches/0005-*.patch
prereq=$(g rev-parse HEAD)
am "$repo"/patches/0003-*.patch
# The project's MAINTAINERS entry, right after KDUMP (the entries are sorted by name), with the
# files given added to its F: lines (sorted); each patch that adds files adds them here.
maintain() {
  local f="$work/MAINTAINERS" files
  files=$( { awk '/^KDUMP CRASH HOTPLUG \[RUST\]$/ { o = 1; next } o && /^$/ { o = 0 }
                  o && /^F:\t/ { print substr($0, 4) }' "$f"; printf '%s\n' "$@"; } | LC_ALL=C sort -u)
  awk -v files="$files" '
    function entry(  n, i, l) {
      print "KDUMP CRASH HOTPLUG [RUST]"
      print "M:\tcrash_hotplug developers <crash-hotplug@localhost>"
      print "L:\tkexec@lists.infradead.org"
      print "L:\trust-for-linux@vger.kernel.org"
      print "S:\tMaintained"
      n = split(files, l, "\n"); for (i = 1; i <= n; i++) print "F:\t" l[i]
      print ""
    }
    /^KDUMP CRASH HOTPLUG \[RUST\]$/ { skip = 1; next }
    skip { if (/^$/) skip = 0; next }
    { print }
    /^KDUMP$/ { k = 1 }
    k && /^$/ && !done { entry(); done = 1 }' "$f" > "$f.new"
  mv "$f.new" "$f"
}
# A rust/kernel abstraction the crate uses, one patch each: the patch adds the module to
# rust/kernel/lib.rs (and any helper), the file comes from rust/kernel/ (amended into the same
# commit, with its MAINTAINERS lines).
abstraction() {
  am "$repo"/patches/"$1"-*.patch
  cp "$repo/rust/kernel/$2.rs" "$work/rust/kernel/"
  maintain "rust/kernel/$2.rs" $(git -C "$work" show --name-only --diff-filter=A --format= HEAD)
  g add -A; g commit -q --amend --no-edit
}
abstraction 0011 cpuhp
abstraction 0012 memory
# The C hooks the crate exports for (each an empty inline until the crate is selected).
# The lock state the crate takes the kexec lock into (a panic may use the image): before
# kernel::kexec and the crate, which use it.
for p in 0008 0009 0010 0007; do am "$repo"/patches/$p-*.patch; done
# The kexec lock abstraction, with the lock states of 0007.
abstraction 0013 kexec
dst="$work/kernel/crash_hotplug"; mkdir -p "$dst"
cp -r "$repo/Kconfig" "$repo/Kbuild" "$repo/src" "$repo/arch" "$dst/"
maintain kernel/crash_hotplug/
g add -A
g commit -q -s -F - <<'MSG'
crash: hotplug: add a Rust implementation

Keeps the loaded kdump image current across CPU and memory hot(un)plug
without a window in which a panic gets no dump: each event is a few
stores into the loaded elfcorehdr, and between any two of them the
header is valid and lists either the old or the new set of memory
(no kexec_crash_image = NULL while a whole new header is copied).

- src/model/: the pure core (no_std, no allocation): events, range
  lists with crash_exclude_mem_range() semantics, and the elfcorehdr
  model whose edits fill free slots and publish them with one aligned
  store, tombstone removed ranges, and refuse an edit that does not
  fit before writing anything; a per-image index (treap of the RAM
  ranges, free list of tombstones) makes an edit O(log n). The ELF
  structures are #[repr(C)] zerocopy types (model/elf/layout.rs); the
  builder, validator and editor are separate files with a domain
  error type. The same files are built and tested on the host.
- src/handler.rs: events serialised by a mutex; the kexec lock is
  retried rather than the event dropped; an event that cannot be
  applied marks the image stale so that crash_hotplug reads 0.
- src/image.rs: how the handler takes the kexec lock (kernel::kexec,
  open to a panic, retried for a bounded time), and segment memory,
  written through per-page vm_map_ram aliases so that the direct map
  keeps kexec's read-only protection.
- src/probe.rs: an optional benchmark probe (its own crate) that
  times the memory notifier chain with either implementation.
- src/sys.rs: the CPU hotplug state and memory notifier callbacks
  (kernel::cpuhp, kernel::memory) and the C entry points; pmem/dax
  namespaces whose struct pages live on the device
  (mm/memremap.c) add and remove their memmap's PT_LOAD (p_flags bit
  0x00100000) like memory blocks.
- arch/x86/backend.rs: memory online/offline edit the RAM PT_LOADs
  (offlined memory leaves the dump at once); a kexec_load header is
  replaced once by one with a note per possible CPU.
- src/fault.rs, src/mutation.rs: the test suite's hooks (fault
  injection in debugfs, deliberate defects), compiled only with
  CONFIG_CRASH_HOTPLUG_TEST_HOOKS, never in a kernel that takes dumps.
- src/glue/: C glue for static inlines and macros (direct map, page
  aliases, per-CPU crash notes, OF CPU nodes, fadump buffers), no
  logic.

Not reachable from Kconfig until the next patch.
MSG
# The guards that keep the C handler and crash_exclude_mem_range() out of a Rust build come
# before the Kconfig hook that makes the crate buildable (bisect: two definitions otherwise).
for p in 0002 0004 0001 0006; do am "$repo"/patches/$p-*.patch; done

rm -rf "$out"; mkdir -p "$out"
g format-patch -q --zero-commit -o "$out/prerequisite" "$base..$prereq"
g format-patch -q --cover-letter --zero-commit -o "$out" "$prereq"
# The cover letter: patches/cover-letter.txt, its first line the subject, the rest the blurb.
cover="$out/0000-cover-letter.patch"
subject=$(head -n 1 "$repo/patches/cover-letter.txt")
awk -v subject="$subject" -v blurb="$repo/patches/cover-letter.txt" '
  /\*\*\* SUBJECT HERE \*\*\*/ { sub(/\*\*\* SUBJECT HERE \*\*\*/, subject) }
  /^\*\*\* BLURB HERE \*\*\*$/ { n = 0; while ((getline l < blurb) > 0) if (n++ > 1 || (n == 2 && l != "")) print l; next }
  { print }' "$cover" > "$cover.new" && mv "$cover.new" "$cover"
ls "$out" "$out/prerequisite"
