// SPDX-License-Identifier: GPL-2.0-only
//! The crash image as the handler uses it: how it takes the kexec lock, and the memory of the
//! image's segments as the models see it (both through `kernel::kexec`); on powerpc, the live
//! device tree nodes of CPUs.
//!
//! C header: [`include/linux/kexec.h`](srctree/include/linux/kexec.h).

#[cfg(CONFIG_PPC64)]
use core::ptr::NonNull;

#[cfg(CONFIG_PPC64)]
use kernel::alloc::KVVec;
#[cfg(CONFIG_PPC64)]
use kernel::bindings;
use kernel::{
    kexec,
    prelude::*,
    sync::barrier::{
        smp_mb,
        Write, //
    },
    time::{
        delay::fsleep,
        Delta,
        Instant,
        Monotonic, //
    },
};

#[cfg(CONFIG_PPC64)]
use crate::model::fdt::NodeSource;
use crate::{
    model::Segment,
    mutation::{
        self,
        Mutation, //
    },
};

/// How the handler holds the kexec lock: open to a panic (everything it does with the lock held
/// keeps the crash image valid at every instant; the rare update that does not runs in
/// [`kexec::Lock::exclusive_during`]), but for the `NoWindow` mutation.
fn access() -> kexec::Access {
    if mutation::active(Mutation::NoWindow) {
        kexec::Access::Exclusive
    } else {
        kexec::Access::OpenToPanic
    }
}

/// Takes the kexec lock, trying for at most `budget_us` microseconds (at least once), busy
/// waiting between attempts: a sleep (or a calibrated delay, under emulation) could overshoot the
/// budget by far on a loaded machine, and the caller may hold the CPU or memory hotplug lock.
/// Returns the lock and the number of failed attempts, or `Err(attempts)`.
pub(crate) fn lock_kexec(budget_us: i64) -> Result<(kexec::Lock, u32), u32> {
    let start = Instant::<Monotonic>::now();
    let mut failed = 0u32;
    loop {
        if let Some(lock) = kexec::Lock::try_lock(access()) {
            return Ok((lock, failed));
        }
        failed = failed.saturating_add(1);
        if start.elapsed().as_micros_ceil() >= budget_us {
            return Err(failed);
        }
        core::hint::spin_loop();
    }
}

/// The kexec lock that the calling context (the kexec load path, in a hook) holds, opened to a
/// panic as [`lock_kexec`] does; it is not released on drop.
///
/// # Safety
///
/// As for [`kexec::Lock::held_by_caller`]: the current context holds the kexec lock and keeps it
/// for as long as the returned value lives, and no other [`kexec::Lock`] exists meanwhile.
pub(crate) unsafe fn kexec_held_by_caller() -> kexec::Lock {
    // SAFETY: The function contract is that of `held_by_caller`.
    unsafe { kexec::Lock::held_by_caller(access()) }
}

/// Page aliases kept mapped during one edit; further pages evict the oldest alias.
const MAX_ALIASES: usize = 8;

/// The memory of a loaded segment, as a [`Segment`] for the elfcorehdr and FDT models: reads
/// through [`kexec::Segment::read`], writes through [`kexec::PageAlias`]es of exactly the pages
/// written, kept for the edit (dropped, so unmapped, when this is).
pub(crate) struct SegmentMem<'a> {
    seg: kexec::Segment<'a>,
    aliases: [Option<kexec::PageAlias<'a>>; MAX_ALIASES],
    next_victim: usize,
    /// A mapping failed or a store fell outside the segment; later stores are dropped and the
    /// caller must report the edit as failed.
    pub(crate) failed: bool,
    /// Fault injection: milliseconds to sleep after the first commit, then 0.
    pause_ms: u32,
}

impl<'a> SegmentMem<'a> {
    /// The memory of `seg`.
    pub(crate) fn new(seg: kexec::Segment<'a>) -> Self {
        Self {
            seg,
            aliases: [const { None }; MAX_ALIASES],
            next_victim: 0,
            failed: false,
            pause_ms: 0,
        }
    }

    /// Fault injection: sleep `ms` milliseconds right after the first commit (0: never).
    pub(crate) fn pause_after_first_store(&mut self, ms: u32) {
        self.pause_ms = ms;
    }

    /// A writable alias of the page holding segment offset `off`, and the offset of that byte in
    /// the page.
    fn alias(&mut self, off: usize) -> Option<(&mut kexec::PageAlias<'a>, usize)> {
        let page = kernel::page::PAGE_SIZE as u64;
        let pa = self.seg.mem() + off as u64;
        let page_pa = pa & !(page - 1);
        let in_page = (pa - page_pa) as usize;
        let slot = match self
            .aliases
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.phys() == page_pa))
        {
            Some(slot) => slot,
            None => {
                let alias = self.seg.map_page(off)?;
                let slot = match self.aliases.iter().position(Option::is_none) {
                    Some(free) => free,
                    None => {
                        let v = self.next_victim;
                        self.next_victim = (v + 1) % MAX_ALIASES;
                        v
                    }
                };
                // Replacing an alias drops (unmaps) it.
                self.aliases[slot] = Some(alias);
                slot
            }
        };
        self.aliases[slot].as_mut().map(|a| (a, in_page))
    }

    /// Copies `data` to segment offset `off` through the aliases, page by page.
    fn store(&mut self, off: usize, data: &[u8], commit: bool) {
        if self.failed
            || off
                .checked_add(data.len())
                .is_none_or(|end| end > self.seg.memsz())
        {
            self.failed = true;
            return;
        }
        if commit {
            // Everything written before is visible before the commit is. `smp_wmb()` is also a
            // compiler barrier (an asm with a memory clobber, or `barrier()` on !SMP), so the
            // compiler cannot move the plain copies below it either.
            smp_mb(Write);
            // A commit is one naturally aligned store of 2, 4 or 8 bytes (`write_once` refuses
            // anything else, a bug in the caller that must not reach crash kernel memory).
            if !self
                .alias(off)
                .is_some_and(|(alias, in_page)| alias.write_once(in_page, data))
            {
                self.failed = true;
                return;
            }
            // The commit is visible before anything written after it (`adopt_notes` tombstones
            // a slot and then rewrites its other bytes: they must not overtake the tombstone).
            smp_mb(Write);
            if self.pause_ms != 0 {
                let ms = core::mem::take(&mut self.pause_ms);
                pr_info!("fault injection: pausing {ms} ms after the first store of an edit\n");
                fsleep(Delta::from_millis(i64::from(ms)));
            }
            return;
        }
        let page = kernel::page::PAGE_SIZE;
        let mut done = 0;
        while done < data.len() {
            let o = off + done;
            let room = page - ((self.seg.mem() as usize + o) & (page - 1));
            let n = room.min(data.len() - done);
            if !self
                .alias(o)
                .is_some_and(|(alias, in_page)| alias.write(in_page, &data[done..done + n]))
            {
                self.failed = true;
                return;
            }
            done += n;
        }
    }
}

impl Segment for SegmentMem<'_> {
    fn len(&self) -> usize {
        self.seg.memsz()
    }

    fn read(&self, off: usize, buf: &mut [u8]) {
        if !self.seg.read(off, buf) {
            buf.fill(0);
        }
    }

    fn write(&mut self, off: usize, data: &[u8]) {
        self.store(off, data, false);
    }

    fn commit(&mut self, off: usize, data: &[u8]) {
        self.store(off, data, true);
    }
}

/// The live device tree node of a CPU (on powerpc, its core's node), referenced until dropped.
///
/// # Invariants
///
/// `0` is a valid `struct device_node` on which this holds a reference.
#[cfg(CONFIG_PPC64)]
pub(crate) struct CpuNode(NonNull<bindings::device_node>);

#[cfg(CONFIG_PPC64)]
impl CpuNode {
    /// The node of `cpu`, if the device tree has one.
    pub(crate) fn of_cpu(cpu: u32) -> Option<Self> {
        // SAFETY: `of_get_cpu_node()` returns a node with a reference taken, or NULL.
        let np = unsafe { bindings::crash_hotplug_cpu_node(cpu) };
        // INVARIANT: A node with a reference, dropped in `drop`.
        NonNull::new(np).map(Self)
    }

    /// The node's name with its unit address, e.g. `PowerPC,POWER9@8`.
    pub(crate) fn name(&self) -> &[u8] {
        // SAFETY: The node is valid (type invariant).
        let p = unsafe { (*self.0.as_ptr()).full_name };
        if p.is_null() {
            return b"";
        }
        // SAFETY: `full_name` is a NUL-terminated string owned by the node, which outlives `self`.
        unsafe { CStr::from_char_ptr(p) }.to_bytes()
    }
}

#[cfg(CONFIG_PPC64)]
impl CpuNode {
    /// A copy of the node's properties, read once: the FDT editor walks its properties several
    /// times (to size the node, to find new names, to write it), and a live property may change
    /// in between.
    pub(crate) fn props(&self) -> Result<NodeProps> {
        let mut bytes = KVVec::new();
        // SAFETY: The node is valid (type invariant).
        let mut pp = unsafe { (*self.0.as_ptr()).properties };
        while let Some(p) = NonNull::new(pp) {
            // SAFETY: `p` is on the node's property list; properties are not freed while the
            // node is referenced (updated ones move to `deadprops`).
            let prop = unsafe { p.as_ref() };
            let name: &[u8] = if prop.name.is_null() {
                b""
            } else {
                // SAFETY: `name` is a NUL-terminated string owned by the property.
                unsafe { CStr::from_char_ptr(prop.name) }.to_bytes()
            };
            let len = usize::try_from(prop.length).unwrap_or(0);
            let value: &[u8] = if prop.value.is_null() || len == 0 {
                &[]
            } else {
                // SAFETY: `value` points to `length` bytes owned by the property.
                unsafe { core::slice::from_raw_parts(prop.value.cast::<u8>(), len) }
            };
            let (nl, vl) = (
                u32::try_from(name.len()).map_err(|_| EINVAL)?,
                u32::try_from(value.len()).map_err(|_| EINVAL)?,
            );
            bytes.extend_from_slice(&nl.to_ne_bytes(), GFP_KERNEL)?;
            bytes.extend_from_slice(&vl.to_ne_bytes(), GFP_KERNEL)?;
            bytes.extend_from_slice(name, GFP_KERNEL)?;
            bytes.extend_from_slice(value, GFP_KERNEL)?;
            pp = prop.next;
        }
        Ok(NodeProps(bytes))
    }
}

/// The properties of a device tree node, copied once: `(name length, value length)` as two
/// native `u32`, then the name and the value, per property.
#[cfg(CONFIG_PPC64)]
pub(crate) struct NodeProps(KVVec<u8>);

#[cfg(CONFIG_PPC64)]
impl NodeSource for NodeProps {
    fn for_each_prop(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        let mut rest = &self.0[..];
        while let Some((h, tail)) = rest.split_first_chunk::<8>() {
            let nl = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let vl = u32::from_ne_bytes([h[4], h[5], h[6], h[7]]) as usize;
            let Some((name, tail)) = tail.split_at_checked(nl) else {
                return;
            };
            let Some((value, tail)) = tail.split_at_checked(vl) else {
                return;
            };
            f(name, value);
            rest = tail;
        }
    }
}

#[cfg(CONFIG_PPC64)]
impl Drop for CpuNode {
    fn drop(&mut self) {
        // SAFETY: Drops the reference this holds (type invariant).
        unsafe { bindings::crash_hotplug_node_put(self.0.as_ptr()) };
    }
}
