//! What the host tests of the pure core share.

use crash_hotplug_model::Segment;

/// A segment that keeps every state it passes through, and checks that every commit is one
/// naturally aligned store of 2, 4 or 8 bytes.
pub struct Recorder {
    /// The bytes now.
    pub buf: Vec<u8>,
    /// The bytes after each store.
    pub states: Vec<Vec<u8>>,
}

impl Recorder {
    /// A recorder over `buf` with no states yet.
    pub fn new(buf: Vec<u8>) -> Self {
        Self {
            buf,
            states: vec![],
        }
    }
}

impl Segment for Recorder {
    fn len(&self) -> usize {
        self.buf.len()
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.buf[off..off + buf.len()]);
    }
    fn write(&mut self, off: usize, data: &[u8]) {
        self.buf[off..off + data.len()].copy_from_slice(data);
        self.states.push(self.buf.clone());
    }
    fn commit(&mut self, off: usize, data: &[u8]) {
        assert!(matches!(data.len(), 2 | 4 | 8), "a commit is one store");
        assert_eq!(off % data.len(), 0, "a commit is naturally aligned");
        self.buf[off..off + data.len()].copy_from_slice(data);
        self.states.push(self.buf.clone());
    }
}
