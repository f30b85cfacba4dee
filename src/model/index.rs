// SPDX-License-Identifier: GPL-2.0-only
//! An index of an elfcorehdr's program header table, so that an edit costs O(log n) in the
//! number of RAM ranges instead of several scans of the table.
//!
//! The index has one [`Node`] per program header slot, in storage the caller allocates once per
//! segment size (the kernel keeps it across events; it is a cache, rebuilt from the segment by one
//! scan whenever it may not match, e.g. for a newly loaded image or after a failed edit):
//!
//! - the visible RAM `PT_LOAD`s and device vmemmap `PT_LOAD`s ([`RangeKind`]) form one treap
//!   ordered by start address (the ranges are disjoint, so this is also their end order); the
//!   priority of a node is a hash of its start, so the shape does not depend on the order of edits
//!   and the expected depth is O(log n). Both kinds are maps of where the memory is, so both count
//!   as covered when a range is added; a removal touches only ranges of its own kind;
//! - the visible tombstones (`PT_NULL` slots below `e_phnum`) form a doubly linked free list;
//! - counts of notes, RAM ranges, device vmemmap ranges and tombstones make the usage report O(1).
//!
//! Everything is iterative (no recursion) and allocation-free, and no operation can panic: an
//! index past the storage reads as an empty node and writes to a scratch node.

use core::ops::DerefMut;

use crate::model::MemRange;

/// No node.
const NIL: u16 = u16::MAX;

/// What a listed `PT_LOAD` maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeKind {
    /// System RAM (a memory block, or a range the load-time builder listed).
    Ram,
    /// A device-backed vmemmap: the `struct page`s of a pmem/dax device, kept on the device
    /// ([`Event::AddDeviceVmemmap`](crate::model::Event::AddDeviceVmemmap)).
    DeviceVmemmap,
}

/// What a slot holds, as far as the index cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    /// Past `e_phnum`, or a note, the kernel text or an entry the index does not track.
    #[default]
    Other,
    /// A visible RAM `PT_LOAD`, in the treap.
    Ram,
    /// A visible device vmemmap `PT_LOAD`, in the treap.
    Device,
    /// A visible tombstone, in the free list.
    Free,
}

impl Kind {
    const fn of(kind: RangeKind) -> Self {
        match kind {
            RangeKind::Ram => Self::Ram,
            RangeKind::DeviceVmemmap => Self::Device,
        }
    }

    const fn listed(self) -> Option<RangeKind> {
        match self {
            Self::Ram => Some(RangeKind::Ram),
            Self::Device => Some(RangeKind::DeviceVmemmap),
            Self::Other | Self::Free => None,
        }
    }
}

/// One slot's entry in the index. For [`Kind::Ram`] and [`Kind::Device`], `left`/`right`/`parent`
/// are treap links; for
/// [`Kind::Free`], `left`/`right` are the previous and next tombstone in the free list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    start: u64,
    end: u64,
    left: u16,
    right: u16,
    parent: u16,
    kind: Kind,
}

impl Node {
    /// An unused node: the value to fill new storage with.
    pub const EMPTY: Self = Self {
        start: 0,
        end: 0,
        left: NIL,
        right: NIL,
        parent: NIL,
        kind: Kind::Other,
    };
}

impl Default for Node {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// The treap priority of a node starting at `start` (splitmix64's finaliser).
const fn priority(start: u64) -> u64 {
    let mut z = start.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Two RAM `PT_LOAD`s of a header overlap: the header cannot be edited range by range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overlap {
    /// The range being added to the index.
    pub range: MemRange,
    /// A range already in it that overlaps `range`.
    pub listed: MemRange,
}

/// The index, over storage `N` of at least one node per slot of the header it indexes.
pub struct Index<N: DerefMut<Target = [Node]>> {
    nodes: N,
    scratch: Node,
    root: u16,
    free_head: u16,
    ram: usize,
    device: usize,
    tombstones: usize,
    notes: usize,
    /// `Some(e_phnum)` of the header the index matches, `None` if it must be rebuilt.
    synced: Option<usize>,
    /// Times the index was built from a segment.
    builds: u64,
}

impl<N: DerefMut<Target = [Node]>> Index<N> {
    /// An empty index over `nodes`; it is built at the first [`open`](super::Elfcorehdr::open).
    pub fn new(nodes: N) -> Self {
        Self {
            nodes,
            scratch: Node::EMPTY,
            root: NIL,
            free_head: NIL,
            ram: 0,
            device: 0,
            tombstones: 0,
            notes: 0,
            synced: None,
            builds: 0,
        }
    }

    /// Times the index was built from a segment (one scan of its table each).
    pub fn builds(&self) -> u64 {
        self.builds
    }

    /// Slots the storage can index.
    pub fn slots(&self) -> usize {
        self.nodes.len().min(usize::from(NIL))
    }

    /// Forgets what the index knows, so that the next open rebuilds it from the segment. The
    /// caller must do this when the segment may have changed behind the index's back (a new
    /// image, an edit that failed half way).
    pub fn invalidate(&mut self) {
        self.synced = None;
    }

    /// Whether the index was built for a header with `phnum` visible entries and kept since.
    pub(crate) fn is_synced(&self, phnum: usize) -> bool {
        self.synced == Some(phnum)
    }

    pub(crate) fn set_synced(&mut self, phnum: usize) {
        self.synced = Some(phnum);
    }

    /// Empties the index before a rebuild.
    pub(crate) fn clear(&mut self) {
        self.builds = self.builds.wrapping_add(1);
        self.nodes.fill(Node::EMPTY);
        self.root = NIL;
        self.free_head = NIL;
        self.ram = 0;
        self.device = 0;
        self.tombstones = 0;
        self.notes = 0;
        self.synced = None;
    }

    /// Visible RAM `PT_LOAD`s.
    pub(crate) fn ram_count(&self) -> usize {
        self.ram
    }

    /// Visible device vmemmap `PT_LOAD`s.
    pub(crate) fn device_count(&self) -> usize {
        self.device
    }

    /// Visible tombstones.
    pub(crate) fn tombstone_count(&self) -> usize {
        self.tombstones
    }

    /// Visible notes.
    pub(crate) fn note_count(&self) -> usize {
        self.notes
    }

    pub(crate) fn count_note(&mut self) {
        self.notes += 1;
    }

    fn node(&self, x: u16) -> Node {
        self.nodes
            .get(usize::from(x))
            .copied()
            .unwrap_or(Node::EMPTY)
    }

    fn node_mut(&mut self, x: u16) -> &mut Node {
        let Self { nodes, scratch, .. } = self;
        match nodes.get_mut(usize::from(x)) {
            Some(n) => n,
            None => scratch,
        }
    }

    fn prio(&self, x: u16) -> (u64, u16) {
        (priority(self.node(x).start), x)
    }

    /// The range of listed node `x`.
    pub(crate) fn range(&self, x: u16) -> MemRange {
        let n = self.node(x);
        MemRange {
            start: n.start,
            end: n.end,
        }
    }

    /// Whether slot `i` is a listed tombstone.
    pub(crate) fn is_free(&self, i: usize) -> bool {
        u16::try_from(i).is_ok_and(|x| self.node(x).kind == Kind::Free)
    }

    /// What slot `i` lists, if it is a listed range.
    pub(crate) fn listed(&self, i: usize) -> Option<RangeKind> {
        u16::try_from(i)
            .ok()
            .and_then(|x| self.node(x).kind.listed())
    }

    /// Points `g`'s link to `old` (or the root, if `g` is `NIL`) at `new`.
    fn replace_child(&mut self, g: u16, old: u16, new: u16) {
        if g == NIL {
            self.root = new;
        } else if self.node(g).left == old {
            self.node_mut(g).left = new;
        } else {
            self.node_mut(g).right = new;
        }
    }

    /// Rotates `x` above its parent.
    fn rotate_up(&mut self, x: u16) {
        let p = self.node(x).parent;
        if p == NIL {
            return;
        }
        let g = self.node(p).parent;
        if self.node(p).left == x {
            let b = self.node(x).right;
            self.node_mut(p).left = b;
            if b != NIL {
                self.node_mut(b).parent = p;
            }
            self.node_mut(x).right = p;
        } else {
            let b = self.node(x).left;
            self.node_mut(p).right = b;
            if b != NIL {
                self.node_mut(b).parent = p;
            }
            self.node_mut(x).left = p;
        }
        self.node_mut(p).parent = x;
        self.node_mut(x).parent = g;
        self.replace_child(g, p, x);
    }

    /// The listed node (of either kind) with the lowest start among those that end at or after
    /// `from`.
    pub(crate) fn first_ending_from(&self, from: u64) -> Option<u16> {
        let (mut cur, mut best) = (self.root, None);
        while cur != NIL {
            let n = self.node(cur);
            if n.end >= from {
                best = Some(cur);
                cur = n.left;
            } else {
                cur = n.right;
            }
        }
        best
    }

    /// The listed node after `x` in address order.
    pub(crate) fn next(&self, x: u16) -> Option<u16> {
        let mut c = self.node(x).right;
        if c != NIL {
            while self.node(c).left != NIL {
                c = self.node(c).left;
            }
            return Some(c);
        }
        let (mut c, mut p) = (x, self.node(x).parent);
        while p != NIL && self.node(p).right == c {
            c = p;
            p = self.node(p).parent;
        }
        (p != NIL).then_some(p)
    }

    /// The listed node before `x` in address order.
    fn prev(&self, x: u16) -> Option<u16> {
        let mut c = self.node(x).left;
        if c != NIL {
            while self.node(c).right != NIL {
                c = self.node(c).right;
            }
            return Some(c);
        }
        let (mut c, mut p) = (x, self.node(x).parent);
        while p != NIL && self.node(p).left == c {
            c = p;
            p = self.node(p).parent;
        }
        (p != NIL).then_some(p)
    }

    /// Lists range `r` of `kind` in slot `slot`, which must be untracked. Refused, with the index
    /// unchanged, if `r` overlaps a listed range of either kind.
    pub(crate) fn insert(
        &mut self,
        slot: u16,
        r: MemRange,
        kind: RangeKind,
    ) -> Result<(), Overlap> {
        if let Some(y) = self.first_ending_from(r.start) {
            let listed = self.range(y);
            if listed.start <= r.end {
                return Err(Overlap { range: r, listed });
            }
        }
        let (mut p, mut cur, mut left) = (NIL, self.root, false);
        while cur != NIL {
            p = cur;
            left = r.start < self.node(cur).start;
            cur = if left {
                self.node(cur).left
            } else {
                self.node(cur).right
            };
        }
        *self.node_mut(slot) = Node {
            start: r.start,
            end: r.end,
            left: NIL,
            right: NIL,
            parent: p,
            kind: Kind::of(kind),
        };
        if p == NIL {
            self.root = slot;
        } else if left {
            self.node_mut(p).left = slot;
        } else {
            self.node_mut(p).right = slot;
        }
        while self.node(slot).parent != NIL && self.prio(slot) > self.prio(self.node(slot).parent) {
            self.rotate_up(slot);
        }
        match kind {
            RangeKind::Ram => self.ram += 1,
            RangeKind::DeviceVmemmap => self.device += 1,
        }
        Ok(())
    }

    /// Unlists node `x`, a listed range of either kind.
    pub(crate) fn remove_listed(&mut self, x: u16) {
        let Some(kind) = self.node(x).kind.listed() else {
            return;
        };
        // Rotate `x` down below the child of higher priority until it is a leaf.
        loop {
            let n = self.node(x);
            let c = match (n.left, n.right) {
                (NIL, NIL) => break,
                (NIL, c) | (c, NIL) => c,
                (l, r) if self.prio(l) > self.prio(r) => l,
                (_, r) => r,
            };
            self.rotate_up(c);
        }
        let p = self.node(x).parent;
        self.replace_child(p, x, NIL);
        *self.node_mut(x) = Node::EMPTY;
        match kind {
            RangeKind::Ram => self.ram -= 1,
            RangeKind::DeviceVmemmap => self.device -= 1,
        }
    }

    /// Lists slot `x` as a tombstone.
    pub(crate) fn push_free(&mut self, x: u16) {
        let head = self.free_head;
        *self.node_mut(x) = Node {
            left: NIL,
            right: head,
            kind: Kind::Free,
            ..Node::EMPTY
        };
        if head != NIL {
            self.node_mut(head).left = x;
        }
        self.free_head = x;
        self.tombstones += 1;
    }

    /// Unlists tombstone `x` (it is being filled, or dropped past `e_phnum`).
    pub(crate) fn take_free(&mut self, x: u16) {
        let n = self.node(x);
        if n.kind != Kind::Free {
            return;
        }
        if n.left == NIL {
            self.free_head = n.right;
        } else {
            self.node_mut(n.left).right = n.right;
        }
        if n.right != NIL {
            self.node_mut(n.right).left = n.left;
        }
        *self.node_mut(x) = Node::EMPTY;
        self.tombstones -= 1;
    }

    /// A listed tombstone, if any, unlisted.
    pub(crate) fn pop_free(&mut self) -> Option<u16> {
        let x = self.free_head;
        if x == NIL {
            return None;
        }
        self.take_free(x);
        Some(x)
    }

    /// Checks the index's own invariants: the treap is a binary search tree of disjoint ranges
    /// with heap-ordered priorities and consistent parent links, and the counts match. Returns
    /// the number of listed nodes visited (RAM and device vmemmap), or `None` on any violation.
    /// O(n); for tests.
    pub fn check(&self) -> Option<usize> {
        let mut seen = 0usize;
        let mut devices = 0usize;
        let mut prev: Option<MemRange> = None;
        // In-order walk without recursion.
        let mut x = self.root;
        if x != NIL {
            if self.node(x).parent != NIL {
                return None;
            }
            while self.node(x).left != NIL {
                x = self.node(x).left;
            }
        }
        let mut cur = (x != NIL).then_some(x);
        while let Some(x) = cur {
            let n = self.node(x);
            if n.kind.listed().is_none() || n.start > n.end {
                return None;
            }
            devices += usize::from(n.kind == Kind::Device);
            for c in [n.left, n.right] {
                if c != NIL && (self.node(c).parent != x || self.prio(c) > self.prio(x)) {
                    return None;
                }
            }
            if prev.is_some_and(|p| p.end >= n.start) {
                return None;
            }
            if self.prev(x).map(|p| self.range(p)) != prev {
                return None;
            }
            prev = Some(self.range(x));
            seen += 1;
            if seen > self.slots() {
                return None;
            }
            cur = self.next(x);
        }
        let mut free = 0usize;
        let mut f = self.free_head;
        let mut back = NIL;
        while f != NIL {
            let n = self.node(f);
            if n.kind != Kind::Free || n.left != back {
                return None;
            }
            free += 1;
            if free > self.slots() {
                return None;
            }
            back = f;
            f = n.right;
        }
        (seen == self.ram + self.device && devices == self.device && free == self.tombstones)
            .then_some(seen)
    }
}
