// SPDX-License-Identifier: GPL-2.0-only
//! Validating a header someone else built (the kernel at load time, or kexec-tools) and
//! accounting for its program header slots.

use super::{
    error::HeaderError,
    layout::{
        Elf64Ehdr,
        EHDR_SIZE,
        ET_CORE,
        IDENT,
        MAX_PHNUM,
        PHDR_SIZE, //
    },
    segment::Segment,
};

/// Where the program headers of a valid elfcorehdr are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhdrTable {
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
pub fn validate<S: Segment>(seg: &S) -> Result<PhdrTable, HeaderError> {
    let len = seg.len();
    if len < EHDR_SIZE {
        return Err(HeaderError::Truncated {
            need: EHDR_SIZE,
            have: len,
        });
    }
    let mut bytes = [0u8; EHDR_SIZE];
    seg.read(0, &mut bytes);
    let ehdr: Elf64Ehdr = zerocopy::transmute!(bytes);
    if ehdr.e_ident[..IDENT.len()] != IDENT {
        return Err(HeaderError::BadIdent);
    }
    let e_type = ehdr.e_type.get();
    if e_type != ET_CORE {
        return Err(HeaderError::NotCore(e_type));
    }
    if usize::from(ehdr.e_ehsize.get()) != EHDR_SIZE
        || usize::from(ehdr.e_phentsize.get()) != PHDR_SIZE
    {
        return Err(HeaderError::BadSizes);
    }
    let phoff = ehdr.e_phoff.get();
    // The capture kernel (fs/proc/vmcore.c) reads the program headers right after the ELF
    // header, whatever e_phoff says: anything else would be read wrongly.
    if phoff != EHDR_SIZE as u64 {
        return Err(HeaderError::BadPhoff(phoff));
    }
    let phnum = usize::from(ehdr.e_phnum.get());
    let capacity = slots(len);
    if phnum > capacity {
        return Err(HeaderError::Truncated {
            need: EHDR_SIZE + phnum * PHDR_SIZE,
            have: len,
        });
    }
    Ok(PhdrTable { phnum, capacity })
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
