// SPDX-License-Identifier: GPL-2.0-only
//! The ppc64 (pseries) kdump backend.
//!
//! - Memory online adds the LMB's range, memory offline removes it at once
//!   ([`Elfcorehdr::apply_event`](crate::model::Elfcorehdr::apply_event)), as on x86_64. The
//!   header the load path built keeps its other entries as they are: the 64 KiB backup region's
//!   `PT_LOAD` (`p_paddr` 0, `p_offset` the copy) and the RTAS/OPAL ranges. (Upstream rebuilds
//!   the whole header from memblock on every memory event.)
//! - CPU add: the crash kernel must see the new CPU in its FDT, so the CPU's (core's) node of the
//!   live device tree is added to the crash FDT's `/cpus`, crash-consistently and only if it is
//!   not there yet (the threads of a core share one node); see [`crate::model::fdt`]. An FDT
//!   without room for that (kexec-tools pads the crash FDT by the new nodes' size only) is
//!   updated in place, checked for room first, with the kexec lock keeping a crash kexec out
//!   meanwhile. (Upstream deletes and re-adds every CPU node in place, and can leave the FDT half
//!   rewritten when it runs out of room.)
//! - CPU remove changes nothing: an offline CPU may stay in the FDT.
//! - A kexec_load header is adopted once as on x86_64 (notes of all possible CPUs).

use kernel::{
    kexec,
    prelude::*, //
};

use crate::{
    handler::Failure,
    image::{
        CpuNode,
        SegmentMem, //
    },
    model::{
        fdt::{
            Be32,
            Fdt,
            FdtError,
            FDT_MAGIC, //
        },
        Event, //
    },
    mutation::{
        self,
        Mutation, //
    },
};

/// Whether an image's header was built by userspace and has not been adopted yet.
pub(crate) fn needs_adoption(file_mode: bool, updated: bool) -> bool {
    !file_mode && !updated
}

/// The segment holding the crash kernel's FDT (the one starting with `FDT_MAGIC`).
fn find_fdt<'a>(image: &kexec::CrashImage<'a>) -> Option<kexec::Segment<'a>> {
    (0..kexec::SEGMENT_MAX)
        .map_while(|i| image.segment(i))
        .find(|&s| {
            let mut magic = [0u8; 4];
            s.read(0, &mut magic);
            Be32(magic).get() == FDT_MAGIC
        })
}

/// Updates the segments other than the elfcorehdr for `event`: a hot-added CPU's node goes
/// into the crash FDT's `/cpus`.
pub(crate) fn update_other_segments(
    lock: &kexec::Lock,
    image: &kexec::CrashImage<'_>,
    event: Event,
) -> Result<(), Failure> {
    let Event::AddCpu(cpu) = event else {
        return Ok(());
    };
    if mutation::active(Mutation::SkipFdtCpu) {
        return Ok(());
    }
    let node = CpuNode::of_cpu(cpu).ok_or(Failure::NoCpuNode(cpu))?;
    // Read the live node once; the editor walks the copy as often as it needs.
    let props = node.props().map_err(Failure::Gather)?;
    let seg = find_fdt(image).ok_or(Failure::NoFdt)?;
    let mut fdt = Fdt::open(SegmentMem::new(seg)).map_err(Failure::Fdt)?;
    // The block switch keeps the FDT valid at every instant: a panic meanwhile may use the image.
    match fdt.add_cpu_node(node.name(), &props) {
        Ok(_) => {}
        Err(FdtError::Full { need, free }) => {
            // No room for the block switch (kexec-tools' crash FDTs): add the node in place, as
            // upstream does. The kexec lock, held for the whole update, keeps a crash kexec from
            // starting while the FDT is not valid.
            pr_info!(
                "cpu{cpu}: crash FDT has {free} of {need} bytes for a crash-consistent update; \
                 updating in place under the kexec lock\n"
            );
            lock.exclusive_during(|| fdt.add_cpu_node_in_place(node.name(), &props))
                .map_err(Failure::Fdt)?;
        }
        Err(e) => return Err(Failure::Fdt(e)),
    }
    if fdt.segment().failed {
        return Err(Failure::Write);
    }
    Ok(())
}
