// SPDX-License-Identifier: GPL-2.0-only
//! The x86_64 backend: how an event changes the elfcorehdr.
//!
//! - Memory online adds the block's range; memory offline removes it at once. (Upstream rebuilds
//!   the header from "System RAM" resources, which still list an offlined block until it is
//!   removed, so its dump keeps reading memory that may be gone.)
//! - The header has one `PT_NOTE` per possible CPU, so CPU events change nothing, except the
//!   first event of a kexec_load image: its header was built by userspace (one note per present
//!   CPU, its own range list) and is replaced once by a kernel-built one.
//! - The kernel-text `PT_LOAD` is kept; crash kernel memory and the low 1 MiB are never listed.

use crate::model::{
    EditError,
    Elfcorehdr,
    Event,
    Segment, //
};

/// `EM_X86_64`.
pub(crate) const ELF_MACHINE: u16 = 62;

/// Whether the elfcorehdr of an image must be replaced before its first update.
pub(crate) fn needs_replacement(file_mode: bool, updated: bool) -> bool {
    !file_mode && !updated
}

/// Ranges the dump never lists besides the crash kernel reservations: the low 1 MiB.
pub(crate) const ARCH_EXCLUDED: &[(u64, u64)] = &[(0, (1 << 20) - 1)];

/// Applies `event` to the header. Returns the number of program headers written or tombstoned.
pub(crate) fn apply<S: Segment>(hdr: &mut Elfcorehdr<S>, event: Event) -> Result<usize, EditError> {
    match event {
        Event::OnlineMemory(r) => hdr.add_ram(r),
        Event::OfflineMemory(r) => hdr.remove_ram(r),
        Event::AddCpu(_) | Event::RemoveCpu(_) => Ok(0),
    }
}
