// SPDX-License-Identifier: GPL-2.0-only
//! Where the bytes of an elfcorehdr live, and the two kinds of store an edit makes.

/// Where the bytes of an elfcorehdr live, and how they are stored.
///
/// The kernel implementation maps the loaded segment; the host tests journal every store and
/// check every state a reader on another CPU could see.
///
/// # Ordering
///
/// A [`commit`](Self::commit) is ordered after every earlier write and commit, and before every
/// later write and commit: a reader that sees a commit sees everything stored before it, and a
/// reader that sees anything stored after a commit sees the commit. Plain
/// [`write`](Self::write)s between two commits are not ordered among themselves: they may become
/// visible in any order and any subset, a write's bytes separately.
pub trait Segment {
    /// Size of the segment in bytes.
    fn len(&self) -> usize;
    /// Whether the segment has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `buf.len()` bytes at `off` into `buf` (zeros past the end).
    fn read(&self, off: usize, buf: &mut [u8]);
    /// Writes `data` at `off`, in bytes no reader of the header looks at yet. Not ordered
    /// against the other writes since the last commit; may be seen torn.
    fn write(&mut self, off: usize, data: &[u8]);
    /// Makes a change visible: one naturally aligned store of `data` (2, 4 or 8 bytes) at `off`,
    /// seen whole or not at all, ordered after every earlier write and commit and before every
    /// later one (a write barrier on each side).
    fn commit(&mut self, off: usize, data: &[u8]);
}

impl Segment for &mut [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn read(&self, off: usize, buf: &mut [u8]) {
        buf.fill(0);
        if let Some(s) = self.get(off..off.saturating_add(buf.len())) {
            buf.copy_from_slice(s);
        }
    }

    fn write(&mut self, off: usize, data: &[u8]) {
        if let Some(d) = self.get_mut(off..off + data.len()) {
            d.copy_from_slice(data);
        }
    }

    fn commit(&mut self, off: usize, data: &[u8]) {
        self.write(off, data);
    }
}
