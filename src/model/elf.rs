// SPDX-License-Identifier: GPL-2.0-only
//! The elfcorehdr: the ELF64 core header that tells the capture kernel what to dump.
//!
//! Layout: an `Elf64_Ehdr`, then `e_phnum` program headers at `e_phoff` (one `PT_NOTE` per possible
//! CPU's crash notes, one for VMCOREINFO, an optional kernel-text `PT_LOAD`, one `PT_LOAD` per RAM
//! range, one per device-backed vmemmap), then room for more program headers up to the end of the
//! segment.
//!
//! # Device-backed vmemmaps
//!
//! A pmem/dax namespace in `map=dev` mode keeps the `struct page`s of its pages on the device
//! ([`Event::AddDeviceVmemmap`]). Its `PT_LOAD` is written like a RAM one, with one difference:
//! `p_flags` has [`PF_DEV_VMEMMAP`] besides `PF_R | PF_W | PF_X`.
//!
//! - `p_vaddr` is the direct-map address `page_offset + p_paddr`, as for RAM, because that is
//!   where the crashed kernel had those bytes: `memremap_pages()` maps a `MEMORY_DEVICE_FS_DAX` or
//!   `MEMORY_DEVICE_GENERIC` range into the direct map (`arch_add_memory()`) and returns
//!   `__va(start)`; only `MEMORY_DEVICE_PRIVATE` (never with an altmap here) stays out of it.
//! - Any other value would mislead the dump tools. makedumpfile (x86_64, without a vmlinux)
//!   takes `PAGE_OFFSET` from the *last* `PT_LOAD` whose `p_vaddr` is non-zero and below
//!   `__START_KERNEL_map`, as `p_vaddr - p_paddr` (`get_page_offset_x86_64`), and ranges added
//!   after the load are the last entries: a vmemmap address there (e.g. `vmemmap_base + pfn *
//!   64`) would make it translate every direct-map address wrongly. makedumpfile and crash find
//!   the kernel-text `PT_LOAD` as the one with `p_vaddr >= __START_KERNEL_map`
//!   (`get_phys_base_x86_64`, crash's `x86_64_calc_phys_base`), so a value there would be taken
//!   for the kernel image. `p_vaddr = 0` (makedumpfile's `NOT_KV_ADDR`) is skipped by both, but
//!   drgn adds a virtual segment at every `PT_LOAD`'s `p_vaddr`, so it would map user addresses
//!   `0..size` to the device's bytes. The direct-map address is right for all three.
//! - So `p_vaddr` cannot tell a device vmemmap from RAM, and `p_flags` does: [`PF_DEV_VMEMMAP`]
//!   is a bit of `PF_MASKOS` (`0x0ff00000`), which readers that do not know it ignore (the
//!   capture kernel copies `p_flags` into `/proc/vmcore` unchanged). The index rebuilds the kind
//!   of every listed range from it, so that removing a device vmemmap never removes RAM, and a
//!   memory block going offline never removes a device vmemmap.
//! - Like hot-added RAM, a device vmemmap fills a free slot (a tombstone or the first slot past
//!   `e_phnum`): the `PT_LOAD`s are not kept sorted by `p_paddr`. Nothing that reads the header
//!   needs that: the capture kernel (`fs/proc/vmcore.c`) lays the dump out in table order, and
//!   makedumpfile and crash look up each address in every `PT_LOAD`; the hot-add scenarios run
//!   `makedumpfile -l -d 31` on such unsorted headers.
//!
//! # Crash consistency
//!
//! A panic may read the segment at any instant. Every edit here is a sequence of *payload*
//! writes, which only touch bytes no reader looks at (program headers at or past `e_phnum`, or
//! whose `p_type` is `PT_NULL`), and *commits*, each one aligned store of 2 or 4 bytes
//! (`e_phnum`, or a `p_type`) that [`Segment::commit`] orders after every write before it and
//! before every write after it. The writes between two commits may become visible in any order
//! and any subset, down to single bytes; in every such state the segment is a valid core header
//! whose RAM `PT_LOAD`s cover exactly the old set of addresses or exactly the new one (a range
//! may transiently be listed twice, which changes no byte of the dump), and whose notes never
//! change.
//!
//! - Adding a range fills a free slot (a `PT_NULL` tombstone, or the first slot past `e_phnum`)
//!   and publishes it with the last store.
//! - Removing a range that is one `PT_LOAD` is one store: its `p_type` becomes `PT_NULL`.
//! - Removing part of a `PT_LOAD` first publishes the remainders, then tombstones the original.
//! - Removing a range that spans several `PT_LOAD`s also moves the parts inside the range to the
//!   end of the table (published with one `e_phnum` store), tombstones the originals, and drops
//!   the moved parts with one final `e_phnum` store.
//! - Notes for CPUs a userspace-built header lacks are appended with one `e_phnum` store.
//!
//! The program headers always start right after the ELF header: the capture kernel reads them
//! there and ignores `e_phoff`.
//!
//! An edit that cannot be completed (no free slots) is refused before the first write.

use core::{fmt, ops::DerefMut};

use crate::model::{
    index::{
        Index,
        Node,
        Overlap,
        RangeKind, //
    },
    Event, MemRange,
};

/// Size of an `Elf64_Ehdr`.
pub const EHDR_SIZE: usize = 64;
/// Size of an `Elf64_Phdr`.
pub const PHDR_SIZE: usize = 56;
/// `PT_NULL`: an unused program header (our tombstone).
pub const PT_NULL: u32 = 0;
/// `PT_LOAD`: a range of memory.
pub const PT_LOAD: u32 = 1;
/// `PT_NOTE`: ELF notes (per-CPU crash notes, VMCOREINFO).
pub const PT_NOTE: u32 = 4;
/// `PF_X | PF_W | PF_R`, the flags of every `PT_LOAD` the kernel writes.
pub const PF_RWX: u32 = 7;
/// The `p_flags` bit of a device-backed vmemmap's `PT_LOAD` (with [`PF_RWX`]): the `struct page`s
/// of a pmem/dax device, kept on the device. A bit of `PF_MASKOS` (`0x0ff00000`, for
/// operating-system-specific semantics), which readers that do not know it ignore. ABI: see the
/// module documentation and `Documentation/admin-guide.rst`.
pub const PF_DEV_VMEMMAP: u32 = 0x0010_0000;
/// Largest `e_phnum` that does not need the `PN_XNUM` extension.
pub const MAX_PHNUM: usize = 0xfffe;

const E_TYPE: usize = 0x10;
const E_MACHINE: usize = 0x12;
const E_VERSION: usize = 0x14;
const E_PHOFF: usize = 0x20;
const E_FLAGS: usize = 0x30;
const E_EHSIZE: usize = 0x34;
const E_PHENTSIZE: usize = 0x36;
const E_PHNUM: usize = 0x38;
const ET_CORE: u16 = 4;

const P_TYPE: usize = 0;
const P_FLAGS: usize = 4;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_PADDR: usize = 24;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;
const P_ALIGN: usize = 48;

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

/// Why a segment is not a usable elfcorehdr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than an ELF header, or its program headers run past the segment.
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes in the segment.
        have: usize,
    },
    /// Not `\x7fELF`, not ELFCLASS64, not little-endian, or not version 1.
    BadIdent,
    /// `e_type` is not `ET_CORE`.
    NotCore(u16),
    /// `e_phentsize` or `e_ehsize` is not the ELF64 size.
    BadSizes,
    /// `e_phoff` is not right after the ELF header, where the capture kernel reads them.
    BadPhoff(u64),
    /// Two RAM `PT_LOAD`s overlap (a header the kernel did not build), so ranges cannot be
    /// edited one by one.
    Overlap {
        /// One range.
        range: MemRange,
        /// A range listed before it that overlaps it.
        listed: MemRange,
    },
    /// The index storage has fewer nodes than the segment has slots.
    IndexTooSmall {
        /// Slots of the segment.
        need: usize,
        /// Nodes of the storage.
        have: usize,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, segment has {have}")
            }
            Self::BadIdent => write!(f, "not an ELF64 little-endian header"),
            Self::NotCore(t) => write!(f, "e_type {t} is not ET_CORE"),
            Self::BadSizes => write!(f, "e_ehsize/e_phentsize are not the ELF64 sizes"),
            Self::BadPhoff(o) => write!(f, "e_phoff {o:#x} is misplaced"),
            Self::Overlap { range, listed } => write!(
                f,
                "RAM PT_LOAD {:#x}-{:#x} overlaps {:#x}-{:#x}",
                range.start, range.end, listed.start, listed.end
            ),
            Self::IndexTooSmall { need, have } => {
                write!(f, "index has {have} nodes for {need} slots")
            }
        }
    }
}

/// Why an edit failed.
///
/// [`Full`](Self::Full) refuses the edit before its first store: the segment is unchanged. The
/// others are found during the edit: the segment was a valid header at every instant, but it may
/// lack part of the change, and the index no longer matches it and is invalidated (the next
/// [`open`](Elfcorehdr::open) rebuilds it from the segment). The caller must treat the image as
/// not updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditError {
    /// Not enough free program header slots.
    Full {
        /// Slots the edit needs.
        need: usize,
        /// Free slots (tombstones plus room past `e_phnum`).
        free: usize,
        /// Total slots the segment can hold.
        capacity: usize,
    },
    /// The index does not describe the segment (it drifted from it, or the segment changed
    /// behind it): listing a RAM range found a listed range that overlaps it.
    IndexDrift {
        /// The range being listed.
        range: MemRange,
        /// A listed range that overlaps it.
        listed: MemRange,
    },
    /// A program header slot just written does not read back as the RAM `PT_LOAD` written.
    ReadBack {
        /// The slot.
        slot: usize,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full {
                need,
                free,
                capacity,
            } => write!(
                f,
                "elfcorehdr full: edit needs {need} program header slots, {free} free of {capacity}"
            ),
            Self::IndexDrift { range, listed } => write!(
                f,
                "elfcorehdr index out of step with the segment: RAM range {:#x}-{:#x} overlaps \
                 listed {:#x}-{:#x}",
                range.start, range.end, listed.start, listed.end
            ),
            Self::ReadBack { slot } => write!(
                f,
                "elfcorehdr program header {slot} does not read back as the PT_LOAD just written"
            ),
        }
    }
}

/// One program header, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub p_flags: u32,
    /// `p_offset`.
    pub p_offset: u64,
    /// `p_vaddr`.
    pub p_vaddr: u64,
    /// `p_paddr`.
    pub p_paddr: u64,
    /// `p_filesz`.
    pub p_filesz: u64,
    /// `p_memsz`.
    pub p_memsz: u64,
    /// `p_align`.
    pub p_align: u64,
}

impl Phdr {
    /// The `PT_LOAD` of range `r` of `kind` in a kernel whose direct map starts at `page_offset`
    /// (see the module documentation for a device vmemmap's `p_vaddr` and `p_flags`).
    pub const fn load(r: MemRange, page_offset: u64, kind: RangeKind) -> Self {
        let mut p = Self::ram(r, page_offset);
        if let RangeKind::DeviceVmemmap = kind {
            p.p_flags |= PF_DEV_VMEMMAP;
        }
        p
    }

    /// The `PT_LOAD` of RAM range `r` in a kernel whose direct map starts at `page_offset`.
    pub const fn ram(r: MemRange, page_offset: u64) -> Self {
        let size = r.size();
        Self {
            p_type: PT_LOAD,
            p_flags: PF_RWX,
            p_offset: r.start,
            p_vaddr: r.start.wrapping_add(page_offset),
            p_paddr: r.start,
            p_filesz: size,
            p_memsz: size,
            p_align: 0,
        }
    }

    /// A `PT_NOTE` of `size` bytes at physical address `paddr`.
    pub const fn note(paddr: u64, size: u64) -> Self {
        Self {
            p_type: PT_NOTE,
            p_flags: 0,
            p_offset: paddr,
            p_vaddr: 0,
            p_paddr: paddr,
            p_filesz: size,
            p_memsz: size,
            p_align: 0,
        }
    }

    /// The physical range of a non-empty header.
    pub const fn range(&self) -> Option<MemRange> {
        if self.p_memsz == 0 {
            return None;
        }
        match self.p_paddr.checked_add(self.p_memsz - 1) {
            Some(end) => Some(MemRange {
                start: self.p_paddr,
                end,
            }),
            None => None,
        }
    }

    /// Whether this is the `PT_LOAD` of a RAM range in the direct map at `page_offset`, dumped
    /// from where it is (and not, e.g., the kernel-text map, or ppc64's backup region, whose
    /// `p_offset` is the copy's address).
    pub const fn is_ram(&self, page_offset: u64) -> bool {
        matches!(self.listed(page_offset), Some(RangeKind::Ram))
    }

    /// Whether this is the `PT_LOAD` of a device-backed vmemmap ([`PF_DEV_VMEMMAP`]) in the
    /// direct map at `page_offset`.
    pub const fn is_device_vmemmap(&self, page_offset: u64) -> bool {
        matches!(self.listed(page_offset), Some(RangeKind::DeviceVmemmap))
    }

    /// What this program header maps, if it is a `PT_LOAD` of memory dumped from where it is,
    /// at its direct-map address: RAM, or a device vmemmap if `p_flags` has [`PF_DEV_VMEMMAP`].
    pub const fn listed(&self, page_offset: u64) -> Option<RangeKind> {
        if self.p_type != PT_LOAD
            || self.p_vaddr != self.p_paddr.wrapping_add(page_offset)
            || self.p_offset != self.p_paddr
        {
            return None;
        }
        if self.p_flags & PF_DEV_VMEMMAP != 0 {
            Some(RangeKind::DeviceVmemmap)
        } else {
            Some(RangeKind::Ram)
        }
    }

    pub(crate) fn encode(&self) -> [u8; PHDR_SIZE] {
        let mut b = [0u8; PHDR_SIZE];
        b[P_TYPE..P_TYPE + 4].copy_from_slice(&self.p_type.to_le_bytes());
        b[P_FLAGS..P_FLAGS + 4].copy_from_slice(&self.p_flags.to_le_bytes());
        b[P_OFFSET..P_OFFSET + 8].copy_from_slice(&self.p_offset.to_le_bytes());
        b[P_VADDR..P_VADDR + 8].copy_from_slice(&self.p_vaddr.to_le_bytes());
        b[P_PADDR..P_PADDR + 8].copy_from_slice(&self.p_paddr.to_le_bytes());
        b[P_FILESZ..P_FILESZ + 8].copy_from_slice(&self.p_filesz.to_le_bytes());
        b[P_MEMSZ..P_MEMSZ + 8].copy_from_slice(&self.p_memsz.to_le_bytes());
        b[P_ALIGN..P_ALIGN + 8].copy_from_slice(&self.p_align.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Self {
        Self {
            p_type: rd32(b, P_TYPE),
            p_flags: rd32(b, P_FLAGS),
            p_offset: rd64(b, P_OFFSET),
            p_vaddr: rd64(b, P_VADDR),
            p_paddr: rd64(b, P_PADDR),
            p_filesz: rd64(b, P_FILESZ),
            p_memsz: rd64(b, P_MEMSZ),
            p_align: rd64(b, P_ALIGN),
        }
    }
}

fn rd16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn rd32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn rd64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// The kernel-text `PT_LOAD` (x86_64: `_text` to `_end`, needed by gdb and makedumpfile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelText {
    /// Virtual address of `_text`.
    pub vaddr: u64,
    /// Physical address of `_text`.
    pub paddr: u64,
    /// `_end - _text`.
    pub size: u64,
}

/// Everything a from-scratch elfcorehdr lists, in the kernel's order.
#[derive(Clone, Copy, Debug)]
pub struct HeaderSpec<'a> {
    /// `e_machine` (62 for x86_64, 21 for ppc64).
    pub machine: u16,
    /// Virtual address of physical 0 in the direct map.
    pub page_offset: u64,
    /// Physical address of each possible CPU's crash notes, in CPU order.
    pub cpu_notes: &'a [u64],
    /// Size of one CPU's crash notes (`sizeof(note_buf_t)`).
    pub cpu_note_size: u64,
    /// Physical address and size of the VMCOREINFO note.
    pub vmcoreinfo: (u64, u64),
    /// The kernel-text map, where the architecture has one.
    pub kernel_text: Option<KernelText>,
    /// RAM ranges to dump, sorted and disjoint.
    pub ram: &'a [MemRange],
}

impl HeaderSpec<'_> {
    /// Number of program headers.
    pub const fn phnum(&self) -> usize {
        self.cpu_notes.len() + 1 + self.kernel_text.is_some() as usize + self.ram.len()
    }

    /// Program header `i`, `None` past the end.
    pub fn phdr(&self, i: usize) -> Option<Phdr> {
        let n = self.cpu_notes.len();
        if let Some(&addr) = self.cpu_notes.get(i) {
            return Some(Phdr::note(addr, self.cpu_note_size));
        }
        if i == n {
            return Some(Phdr::note(self.vmcoreinfo.0, self.vmcoreinfo.1));
        }
        let mut j = i - n - 1;
        if let Some(t) = self.kernel_text {
            if j == 0 {
                return Some(Phdr {
                    p_type: PT_LOAD,
                    p_flags: PF_RWX,
                    p_offset: t.paddr,
                    p_vaddr: t.vaddr,
                    p_paddr: t.paddr,
                    p_filesz: t.size,
                    p_memsz: t.size,
                    p_align: 0,
                });
            }
            j -= 1;
        }
        self.ram.get(j).map(|r| Phdr::ram(*r, self.page_offset))
    }
}

/// `buf` is too small for the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooSmall {
    /// Bytes needed.
    pub need: usize,
    /// Bytes available.
    pub have: usize,
}

/// Writes the ELF64 header of a core file with `phnum` program headers at `phoff`.
fn ehdr(machine: u16, flags: u32, phoff: u64, phnum: u16) -> [u8; EHDR_SIZE] {
    let mut b = [0u8; EHDR_SIZE];
    // ELFMAG, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE.
    b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    b[E_TYPE..E_TYPE + 2].copy_from_slice(&ET_CORE.to_le_bytes());
    b[E_MACHINE..E_MACHINE + 2].copy_from_slice(&machine.to_le_bytes());
    b[E_VERSION..E_VERSION + 4].copy_from_slice(&1u32.to_le_bytes());
    b[E_PHOFF..E_PHOFF + 8].copy_from_slice(&phoff.to_le_bytes());
    b[E_FLAGS..E_FLAGS + 4].copy_from_slice(&flags.to_le_bytes());
    b[E_EHSIZE..E_EHSIZE + 2].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    b[E_PHENTSIZE..E_PHENTSIZE + 2].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    b[E_PHNUM..E_PHNUM + 2].copy_from_slice(&phnum.to_le_bytes());
    b
}

/// Builds the header of `spec` from scratch at the start of `buf` and zeroes the rest of `buf`
/// (so every further slot reads as `PT_NULL`). Returns the size of the header.
pub fn build(buf: &mut [u8], spec: &HeaderSpec<'_>) -> Result<usize, TooSmall> {
    build_with(buf, spec.machine, 0, spec.phnum(), |i| spec.phdr(i))
}

/// Builds a core header with `n` program headers, header `i` being `phdr(i)`, at the start of
/// `buf`, and zeroes the rest of `buf`. Returns the size of the header.
pub fn build_with(
    buf: &mut [u8],
    machine: u16,
    flags: u32,
    n: usize,
    phdr: impl Fn(usize) -> Option<Phdr>,
) -> Result<usize, TooSmall> {
    // The count is checked before any arithmetic on it; `need` saturates for a count too large
    // to size (only reported).
    let need = n
        .checked_mul(PHDR_SIZE)
        .and_then(|t| t.checked_add(EHDR_SIZE));
    let too_small = TooSmall {
        need: need.unwrap_or(usize::MAX),
        have: buf.len(),
    };
    if n > MAX_PHNUM {
        return Err(too_small);
    }
    let Some(need) = need.filter(|&need| need <= buf.len()) else {
        return Err(too_small);
    };
    buf.fill(0);
    buf[..EHDR_SIZE].copy_from_slice(&ehdr(machine, flags, EHDR_SIZE as u64, n as u16));
    for i in 0..n {
        let off = EHDR_SIZE + i * PHDR_SIZE;
        if let Some(p) = phdr(i) {
            buf[off..off + PHDR_SIZE].copy_from_slice(&p.encode());
        }
    }
    Ok(need)
}

/// Where the program headers of a valid elfcorehdr are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `e_phnum`.
    pub phnum: usize,
    /// Program header slots the segment can hold.
    pub capacity: usize,
}

/// Program header slots a segment of `len` bytes can hold.
pub const fn slots(len: usize) -> usize {
    let n = len.saturating_sub(EHDR_SIZE) / PHDR_SIZE;
    if n > MAX_PHNUM {
        MAX_PHNUM
    } else {
        n
    }
}

/// Checks that `seg` holds an ELF64 little-endian core header the capture kernel reads as we do.
pub fn validate<S: Segment>(seg: &S) -> Result<Layout, HeaderError> {
    let len = seg.len();
    if len < EHDR_SIZE {
        return Err(HeaderError::Truncated {
            need: EHDR_SIZE,
            have: len,
        });
    }
    let mut ehdr = [0u8; EHDR_SIZE];
    seg.read(0, &mut ehdr);
    let b = &ehdr[..];
    // EI_MAG, EI_CLASS = ELFCLASS64, EI_DATA = ELFDATA2LSB, EI_VERSION = 1.
    if b[..4] != *b"\x7fELF" || b[4] != 2 || b[5] != 1 || b[6] != 1 {
        return Err(HeaderError::BadIdent);
    }
    let e_type = rd16(b, E_TYPE);
    if e_type != ET_CORE {
        return Err(HeaderError::NotCore(e_type));
    }
    if rd16(b, E_EHSIZE) as usize != EHDR_SIZE || rd16(b, E_PHENTSIZE) as usize != PHDR_SIZE {
        return Err(HeaderError::BadSizes);
    }
    let phoff = rd64(b, E_PHOFF);
    // The capture kernel (fs/proc/vmcore.c) reads the program headers right after the ELF
    // header, whatever e_phoff says: anything else would be read wrongly.
    if phoff != EHDR_SIZE as u64 {
        return Err(HeaderError::BadPhoff(phoff));
    }
    let phnum = rd16(b, E_PHNUM) as usize;
    let capacity = slots(len);
    if phnum > capacity {
        return Err(HeaderError::Truncated {
            need: EHDR_SIZE + phnum * PHDR_SIZE,
            have: len,
        });
    }
    Ok(Layout { phnum, capacity })
}

/// Usage of an elfcorehdr's program header slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// `e_phnum`.
    pub phnum: usize,
    /// Slots the segment can hold.
    pub capacity: usize,
    /// `PT_NOTE` entries.
    pub notes: usize,
    /// RAM `PT_LOAD` entries.
    pub ram_loads: usize,
    /// Device vmemmap `PT_LOAD` entries.
    pub device_loads: usize,
    /// `PT_NULL` entries below `e_phnum`.
    pub tombstones: usize,
}

impl Usage {
    /// Slots an edit can still fill.
    pub const fn free(&self) -> usize {
        self.tombstones + (self.capacity - self.phnum)
    }
}

/// A validated elfcorehdr in a [`Segment`], with its [`Index`].
///
/// # Invariants
///
/// The segment holds a valid ELF64 little-endian core header (see [`validate`]) with `phnum`
/// visible program headers of `capacity` slots, and `index` describes exactly its visible slots:
/// every RAM `PT_LOAD` in the treap, every `PT_NULL` in the free list, the notes counted.
pub struct Elfcorehdr<'x, S: Segment, N: DerefMut<Target = [Node]>> {
    seg: S,
    phnum: usize,
    capacity: usize,
    page_offset: u64,
    index: &'x mut Index<N>,
}

impl<'x, S: Segment, N: DerefMut<Target = [Node]>> Elfcorehdr<'x, S, N> {
    /// Validates the header in `seg` and brings `index` up to date with it (one scan of the
    /// table if the index does not match it yet). `page_offset` is the virtual address of
    /// physical 0 in the direct map; RAM `PT_LOAD`s are recognised by it and new ones are written
    /// with it.
    pub fn open(seg: S, page_offset: u64, index: &'x mut Index<N>) -> Result<Self, HeaderError> {
        let Layout { phnum, capacity } = validate(&seg)?;
        if index.slots() < capacity {
            return Err(HeaderError::IndexTooSmall {
                need: capacity,
                have: index.slots(),
            });
        }
        let mut hdr = Self {
            seg,
            phnum,
            capacity,
            page_offset,
            index,
        };
        if !hdr.index.is_synced(phnum) {
            hdr.reindex().map_err(|o| HeaderError::Overlap {
                range: o.range,
                listed: o.listed,
            })?;
        }
        Ok(hdr)
    }

    /// Applies a hotplug event's memory change: online adds the range, offline removes it at
    /// once; a device vmemmap set up or torn down likewise; CPU events change nothing (the header
    /// has a note per possible CPU). Returns the number of program headers written or tombstoned.
    pub fn apply_event(&mut self, event: Event) -> Result<usize, EditError> {
        match event {
            Event::OnlineMemory(r) => self.add_ram(r),
            Event::OfflineMemory(r) => self.remove_ram(r),
            Event::AddDeviceVmemmap(r) => self.add_device_vmemmap(r),
            Event::RemoveDeviceVmemmap(r) => self.remove_device_vmemmap(r),
            Event::AddCpu(_) | Event::RemoveCpu(_) => Ok(0),
        }
    }

    /// Uses at most `max` program header slots (never fewer than are visible), as if the segment
    /// were smaller: the fault-injection hook for a full header.
    pub fn limit_capacity(&mut self, max: usize) {
        self.capacity = self.capacity.min(max.max(self.phnum));
    }

    /// Rebuilds the index from the segment. On an overlap the index is left empty and not
    /// synced.
    fn reindex(&mut self) -> Result<(), Overlap> {
        self.index.clear();
        for i in 0..self.phnum {
            let p = self.phdr(i);
            // `i < phnum <= MAX_PHNUM`, which fits the index's slot numbers.
            let x = i as u16;
            match p.p_type {
                PT_NOTE => self.index.count_note(),
                PT_NULL => self.index.push_free(x),
                _ => {
                    if let (Some(kind), Some(r)) = (p.listed(self.page_offset), p.range()) {
                        self.index
                            .insert(x, r, kind)
                            .inspect_err(|_| self.index.clear())?;
                    }
                }
            }
        }
        self.index.set_synced(self.phnum);
        Ok(())
    }

    /// Whether the index describes the visible slots exactly (a fresh scan agrees with it).
    /// O(n); for tests.
    pub fn index_matches(&self) -> bool {
        if !self.index.is_synced(self.phnum) || self.index.check().is_none() {
            return false;
        }
        let (mut notes, mut free, mut ram, mut device) = (0, 0, 0, 0);
        for i in 0..self.phnum {
            let p = self.phdr(i);
            let ok = match p.p_type {
                PT_NOTE => {
                    notes += 1;
                    !self.index.is_free(i) && self.index.listed(i).is_none()
                }
                PT_NULL => {
                    free += 1;
                    self.index.is_free(i)
                }
                _ => match (p.listed(self.page_offset), p.range()) {
                    (Some(kind), Some(r)) => {
                        match kind {
                            RangeKind::Ram => ram += 1,
                            RangeKind::DeviceVmemmap => device += 1,
                        }
                        self.index.listed(i) == Some(kind) && self.index.range(i as u16) == r
                    }
                    _ => !self.index.is_free(i) && self.index.listed(i).is_none(),
                },
            };
            if !ok {
                return false;
            }
        }
        (self.phnum..self.capacity)
            .all(|i| !self.index.is_free(i) && self.index.listed(i).is_none())
            && notes == self.index.note_count()
            && free == self.index.tombstone_count()
            && ram == self.index.ram_count()
            && device == self.index.device_count()
    }

    /// The segment.
    pub fn segment(&self) -> &S {
        &self.seg
    }

    /// Gives the segment back.
    pub fn into_segment(self) -> S {
        self.seg
    }

    /// Program header `i` (visible or not).
    pub fn phdr(&self, i: usize) -> Phdr {
        let mut b = [0u8; PHDR_SIZE];
        if i < self.capacity {
            self.seg.read(EHDR_SIZE + i * PHDR_SIZE, &mut b);
        }
        Phdr::decode(&b)
    }

    /// The visible program headers.
    pub fn phdrs(&self) -> impl Iterator<Item = Phdr> + '_ {
        (0..self.phnum).map(|i| self.phdr(i))
    }

    /// The ranges of the visible RAM `PT_LOAD`s, in table order (read from the segment).
    pub fn ram_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        let po = self.page_offset;
        self.phdrs()
            .filter(move |p| p.is_ram(po))
            .filter_map(|p| p.range())
    }

    /// The ranges of the visible device vmemmap `PT_LOAD`s, in table order (read from the
    /// segment).
    pub fn device_vmemmap_ranges(&self) -> impl Iterator<Item = MemRange> + '_ {
        let po = self.page_offset;
        self.phdrs()
            .filter(move |p| p.is_device_vmemmap(po))
            .filter_map(|p| p.range())
    }

    /// Slot usage. O(1).
    pub fn usage(&self) -> Usage {
        Usage {
            phnum: self.phnum,
            capacity: self.capacity,
            notes: self.index.note_count(),
            ram_loads: self.index.ram_count(),
            device_loads: self.index.device_count(),
            tombstones: self.index.tombstone_count(),
        }
    }

    fn set_phnum(&mut self, n: usize) {
        self.seg.commit(E_PHNUM, &(n as u16).to_le_bytes());
        self.phnum = n;
        self.index.set_synced(n);
    }

    /// A free slot: a listed tombstone (unlisted now), or the first slot past `e_phnum`.
    fn take_slot(&mut self) -> usize {
        match self.index.pop_free() {
            Some(x) => usize::from(x),
            None => self.phnum,
        }
    }

    /// Writes `p` into free slot `i` (from [`take_slot`](Self::take_slot)) and makes it visible
    /// with the last store.
    fn publish(&mut self, i: usize, p: &Phdr) {
        if i < self.phnum {
            // A tombstone: everything but p_type is invisible while p_type is PT_NULL.
            self.publish_as(i, p);
        } else {
            // Past e_phnum: invisible until e_phnum covers it.
            self.seg.write(EHDR_SIZE + i * PHDR_SIZE, &p.encode());
            self.set_phnum(i + 1);
        }
    }

    /// Fills tombstone `i` with `p` and publishes it with its `p_type` store.
    fn publish_as(&mut self, i: usize, p: &Phdr) {
        let off = EHDR_SIZE + i * PHDR_SIZE;
        let bytes = p.encode();
        self.seg.write(off + P_FLAGS, &bytes[P_FLAGS..]);
        self.seg.commit(off + P_TYPE, &bytes[P_TYPE..P_FLAGS]);
    }

    /// Turns visible slot `i` into a tombstone with one store (the index is updated by the
    /// caller).
    fn tombstone(&mut self, i: usize) {
        let off = EHDR_SIZE + i * PHDR_SIZE;
        self.seg.commit(off + P_TYPE, &PT_NULL.to_le_bytes());
    }

    /// Drops trailing tombstones by lowering `e_phnum` (the dumped set does not change).
    fn trim(&mut self) {
        let mut n = self.phnum;
        while n > 0 && self.index.is_free(n - 1) {
            self.index.take_free((n - 1) as u16);
            n -= 1;
        }
        if n != self.phnum {
            self.set_phnum(n);
        }
    }

    fn full(&self, need: usize, free: usize) -> EditError {
        EditError::Full {
            need,
            free,
            capacity: self.capacity,
        }
    }

    /// The first part of `from..=to` that no listed range (of either kind) covers.
    fn next_gap(&self, from: u64, to: u64) -> Option<MemRange> {
        let mut c = from;
        while c <= to {
            let next = self.index.first_ending_from(c).map(|x| self.index.range(x));
            match next {
                Some(cov) if cov.start <= c => c = cov.end.checked_add(1)?,
                Some(cov) if cov.start <= to => {
                    return Some(MemRange {
                        start: c,
                        end: cov.start - 1,
                    })
                }
                _ => return Some(MemRange { start: c, end: to }),
            }
        }
        None
    }

    /// The parts of `r` that no listed range covers, in address order, passed to `f`.
    fn for_each_gap(&mut self, r: MemRange, mut f: impl FnMut(&mut Self, MemRange)) {
        let mut c = Some(r.start);
        while let Some(g) = c.and_then(|c| self.next_gap(c, r.end)) {
            f(self, g);
            c = g.end.checked_add(1);
        }
    }

    /// Lists range `r` of `kind`, just published in slot `i`, in the index. The callers only list
    /// parts of gaps or of ranges they unlisted, so an overlap means that the index does not
    /// describe the segment: the edit fails and the index is invalidated.
    fn index_range(&mut self, i: usize, r: MemRange, kind: RangeKind) -> Result<(), EditError> {
        self.index.insert(i as u16, r, kind).map_err(|o| {
            self.index.invalidate();
            EditError::IndexDrift {
                range: o.range,
                listed: o.listed,
            }
        })
    }

    /// Adds RAM range `r`. Parts already covered by a RAM `PT_LOAD` are not added again, so
    /// adding a range twice is harmless. Returns the number of `PT_LOAD`s written.
    pub fn add_ram(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.add(r, RangeKind::Ram)
    }

    /// Adds device-backed vmemmap range `r` (see the module documentation), as
    /// [`add_ram`](Self::add_ram) adds RAM.
    pub fn add_device_vmemmap(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.add(r, RangeKind::DeviceVmemmap)
    }

    /// Adds range `r` of `kind`: the parts no listed `PT_LOAD` (of either kind) covers.
    fn add(&mut self, r: MemRange, kind: RangeKind) -> Result<usize, EditError> {
        let mut pieces = 0usize;
        self.for_each_gap(r, |_, _| pieces += 1);
        if pieces == 0 {
            return Ok(0);
        }
        let free = self.usage().free();
        // Several pieces are published together past e_phnum, so that one store commits them.
        let tail = self.capacity - self.phnum;
        if pieces == 1 && free == 0 {
            return Err(self.full(pieces, free));
        }
        if pieces > 1 && tail < pieces {
            return Err(self.full(pieces, tail));
        }
        if pieces == 1 {
            if let Some(g) = self.next_gap(r.start, r.end) {
                let slot = self.take_slot();
                self.publish(slot, &Phdr::load(g, self.page_offset, kind));
                self.index_range(slot, g, kind)?;
            }
            return Ok(1);
        }
        let base = self.phnum;
        let mut k = base;
        self.for_each_gap(r, |h, g| {
            h.seg.write(
                EHDR_SIZE + k * PHDR_SIZE,
                &Phdr::load(g, h.page_offset, kind).encode(),
            );
            k += 1;
        });
        self.set_phnum(k);
        for i in base..k {
            let p = self.phdr(i);
            let Some(g) = p
                .range()
                .filter(|_| p.listed(self.page_offset) == Some(kind))
            else {
                self.index.invalidate();
                return Err(EditError::ReadBack { slot: i });
            };
            self.index_range(i, g, kind)?;
        }
        Ok(pieces)
    }

    /// Adds a `PT_NOTE` for each address in `notes` that the header does not list yet, in the
    /// order given, at the end of the leading run of notes.
    ///
    /// This adopts a header built by userspace for kexec_load(2) (one note per CPU present at
    /// load time) so that CPUs hot-added later have their crash notes dumped. The capture kernel
    /// merges the notes assuming they are the first program headers, so each new note goes right
    /// after the last one: the entry in that slot is first copied past `e_phnum` and shown (one
    /// store; listed twice, same dump), then tombstoned (one store), then the note is published
    /// there (one store). The notes of CPUs that are not online at a crash are empty and left out
    /// by the capture kernel, so a new note changes no byte of a dump taken in between. Returns
    /// how many notes were added. Runs once per image: it scans the table and rebuilds the index.
    pub fn adopt_notes(&mut self, notes: &[u64], note_size: u64) -> Result<usize, EditError> {
        let listed = |this: &Self, addr: u64| {
            this.phdrs()
                .any(|p| p.p_type == PT_NOTE && p.p_paddr == addr)
        };
        let need = notes.iter().filter(|&&a| !listed(self, a)).count();
        if need == 0 {
            return Ok(0);
        }
        // Worst case every note displaces an entry to the tail.
        let tail = self.capacity - self.phnum;
        if tail < 2 * need {
            return Err(self.full(2 * need, tail));
        }
        for &addr in notes {
            if listed(self, addr) {
                continue;
            }
            let j = (0..self.phnum)
                .find(|&i| self.phdr(i).p_type != PT_NOTE)
                .unwrap_or(self.phnum);
            let note = Phdr::note(addr, note_size);
            if j == self.phnum {
                self.seg.write(EHDR_SIZE + j * PHDR_SIZE, &note.encode());
                self.set_phnum(j + 1);
                continue;
            }
            let displaced = self.phdr(j);
            if displaced.p_type != PT_NULL {
                let t = self.phnum;
                self.seg
                    .write(EHDR_SIZE + t * PHDR_SIZE, &displaced.encode());
                self.set_phnum(t + 1);
                self.tombstone(j);
            }
            self.publish_as(j, &note);
        }
        // The table was rearranged by slot: rebuild the index from it. The set of RAM ranges
        // did not change, so this finds an overlap only if the open did not scan the table (the
        // index was kept) and the index did not describe it.
        self.reindex().map_err(|o| EditError::IndexDrift {
            range: o.range,
            listed: o.listed,
        })?;
        Ok(need)
    }

    /// The listed range of `kind` with the lowest start that overlaps `r`.
    fn first_overlap(&self, r: MemRange, kind: RangeKind) -> Option<u16> {
        let mut x = self.index.first_ending_from(r.start);
        while let Some(i) = x {
            if self.index.range(i).start > r.end {
                return None;
            }
            if self.index.listed(usize::from(i)) == Some(kind) {
                return Some(i);
            }
            x = self.index.next(i);
        }
        None
    }

    /// The listed ranges of `kind` that overlap `r`, in address order, passed to `f` with their
    /// slot.
    fn for_each_overlap(
        &mut self,
        r: MemRange,
        kind: RangeKind,
        mut f: impl FnMut(&mut Self, usize, MemRange),
    ) {
        let mut x = self.first_overlap(r, kind);
        while let Some(i) = x {
            let range = self.index.range(i);
            if range.start > r.end {
                break;
            }
            if self.index.listed(usize::from(i)) == Some(kind) {
                f(self, usize::from(i), range);
            }
            x = self.index.next(i);
        }
    }

    /// Removes RAM range `r` from the dump. Returns the number of `PT_LOAD`s it touched.
    pub fn remove_ram(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.remove(r, RangeKind::Ram)
    }

    /// Removes device-backed vmemmap range `r` from the dump, as
    /// [`remove_ram`](Self::remove_ram) removes RAM. RAM `PT_LOAD`s are never touched.
    pub fn remove_device_vmemmap(&mut self, r: MemRange) -> Result<usize, EditError> {
        self.remove(r, RangeKind::DeviceVmemmap)
    }

    /// Removes range `r` of `kind`: only listed ranges of that kind are cut or dropped.
    fn remove(&mut self, r: MemRange, kind: RangeKind) -> Result<usize, EditError> {
        let po = self.page_offset;
        // The entries that overlap `r` and, since they are disjoint, at most two remainders
        // outside it: the left part of the first if it starts before `r`, the right part of the
        // last if it ends after it.
        let (mut m, mut first, mut last) = (0usize, None::<MemRange>, None::<MemRange>);
        self.for_each_overlap(r, kind, |_, _, x| {
            m += 1;
            first.get_or_insert(x);
            last = Some(x);
        });
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(0);
        };
        let outside = [
            (first.start < r.start).then(|| MemRange {
                start: first.start,
                end: r.start - 1,
            }),
            (last.end > r.end).then(|| MemRange {
                start: r.end + 1,
                end: last.end,
            }),
        ];
        let n_out = outside.iter().flatten().count();
        let (free, tail) = (self.usage().free(), self.capacity - self.phnum);
        if m == 1 && free < n_out {
            return Err(self.full(n_out, free));
        }
        if m > 1 && tail < n_out + m {
            // The inside parts are moved past e_phnum; count the remainders there too.
            return Err(self.full(n_out + m, tail));
        }
        // 1. Publish the remainders: covered twice until the originals go, same dumped set.
        let mut published = [None::<(usize, MemRange)>; 2];
        for (piece, done) in outside.into_iter().zip(published.iter_mut()) {
            if let Some(piece) = piece {
                let slot = self.take_slot();
                self.publish(slot, &Phdr::load(piece, po, kind));
                *done = Some((slot, piece));
            }
        }
        if m == 1 {
            // 2. One store removes the original: the dumped set is the new one.
            if let Some(i) = self.first_overlap(r, kind) {
                self.tombstone(usize::from(i));
            }
        } else {
            // 2. Copy the inside parts of the originals past e_phnum; one store shows them.
            let base = self.phnum;
            let mut k = base;
            self.for_each_overlap(r, kind, |h, _, x| {
                let inside = MemRange {
                    start: x.start.max(r.start),
                    end: x.end.min(r.end),
                };
                h.seg.write(
                    EHDR_SIZE + k * PHDR_SIZE,
                    &Phdr::load(inside, po, kind).encode(),
                );
                k += 1;
            });
            self.set_phnum(k);
            // 3. Tombstone the originals: the copies keep the dumped set.
            self.for_each_overlap(r, kind, |h, i, _| h.tombstone(i));
            // 4. One store drops the copies: the dumped set is the new one.
            self.set_phnum(base);
        }
        // The index: the originals become tombstones, the remainders are listed.
        while let Some(i) = self.first_overlap(r, kind) {
            self.index.remove_listed(i);
            self.index.push_free(i);
        }
        for (slot, piece) in published.into_iter().flatten() {
            self.index_range(slot, piece, kind)?;
        }
        self.trim();
        Ok(m)
    }
}
