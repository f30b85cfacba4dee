// SPDX-License-Identifier: GPL-2.0-only
//! The x86_64 backend.
//!
//! - Memory online adds the block's range; memory offline removes it at once
//!   ([`Elfcorehdr::apply_event`](crate::model::Elfcorehdr::apply_event)). (Upstream rebuilds the
//!   header from "System RAM" resources, which still list an offlined block until it is removed,
//!   so its dump keeps reading memory that may be gone.)
//! - A kexec_file_load header has one `PT_NOTE` per possible CPU, so CPU events change nothing.
//!   A kexec_load header was built by userspace with a note per CPU present at load time; at the
//!   first event the notes of the other possible CPUs are appended once (the handler does that
//!   through [`needs_adoption`]), after which CPU events change nothing either.
//! - The kernel-text `PT_LOAD` and any entry userspace made that is not a direct-map RAM range
//!   are kept as they are.
//! - No other segment changes.

use kernel::kexec;

use crate::{handler::Failure, model::Event};

/// Whether an image's header was built by userspace and has not been adopted yet.
pub(crate) fn needs_adoption(file_mode: bool, updated: bool) -> bool {
    !file_mode && !updated
}

/// Updates the segments other than the elfcorehdr for `event`: nothing on x86_64.
pub(crate) fn update_other_segments(
    _lock: &kexec::Lock,
    _image: &kexec::CrashImage<'_>,
    _event: Event,
) -> Result<(), Failure> {
    Ok(())
}
