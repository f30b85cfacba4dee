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
//!
//! # Parts
//!
//! - [`layout`]: the stored ELF64 structures (zerocopy) and the decoded [`Phdr`].
//! - [`segment`]: the [`Segment`] the header lives in, and its two kinds of store.
//! - [`build`](mod@build): a header from scratch, in the kernel's order.
//! - [`table`]: validating a header someone else built; slot accounting.
//! - [`edit`]: [`Elfcorehdr`], the crash-consistent edits.
//! - [`error`]: why a header cannot be used or an edit cannot be made.

pub mod build;
pub mod edit;
pub mod error;
pub mod layout;
pub mod segment;
pub mod table;

pub use build::{
    build,
    build_with,
    HeaderSpec,
    KernelText, //
};
pub use edit::Elfcorehdr;
pub use error::{
    EditError,
    HeaderError,
    TooSmall, //
};
pub use layout::{
    Phdr,
    EHDR_SIZE,
    MAX_PHNUM,
    PF_DEV_VMEMMAP,
    PF_RWX,
    PHDR_SIZE,
    PT_LOAD,
    PT_NOTE,
    PT_NULL, //
};
pub use segment::Segment;
pub use table::{
    slots,
    validate,
    PhdrTable,
    Usage, //
};
