//! Error types of the harness: what failed, in which phase, with the guest's last words.

use std::{io, time::Duration};

/// A failure of the dump checks: the dump exists but is not what the scenario requires.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No PT_LOAD (or union of PT_LOADs) of the dump covers a hot-added DIMM.
    #[error("dump misses DIMM {dimm}: no PT_LOAD covers {start:#x}-{end:#x}")]
    DimmMissing {
        /// QEMU id of the DIMM.
        dimm: String,
        /// First byte of the DIMM.
        start: u64,
        /// Last byte of the DIMM.
        end: u64,
    },
    /// PT_LOADs cover a hot-added DIMM only in part (e.g. without its memory blocks' struct
    /// pages, which memmap_on_memory places at the start of each block).
    #[error(
        "dump covers DIMM {dimm} {start:#x}-{end:#x} only in part: {covered_kib} KiB of {size_kib} KiB; \
         not covered: {gaps}"
    )]
    DimmPartlyCovered {
        /// QEMU id of the DIMM.
        dimm: String,
        /// First byte of the DIMM.
        start: u64,
        /// Last byte of the DIMM.
        end: u64,
        /// KiB covered.
        covered_kib: u64,
        /// KiB of the DIMM.
        size_kib: u64,
        /// The uncovered ranges, as `start-end` (hex, inclusive).
        gaps: String,
    },
    /// makedumpfile could not write a filtered dump (`-l -d 31`), the collector's command.
    #[error("makedumpfile -l -d 31: {0}")]
    Makedumpfile(String),
    /// Memory that was removed before the crash is still listed in the dump.
    #[error("dump still lists removed memory {start:#x}-{end:#x}")]
    RemovedMemoryPresent {
        /// First byte of the removed range.
        start: u64,
        /// Last byte of the removed range.
        end: u64,
    },
    /// The test pattern is not at its physical address in the dump.
    #[error("pattern at {paddr:#x} not found in the dump (found {found:?})")]
    PatternMismatch {
        /// Physical address the pattern was written to.
        paddr: u64,
        /// The bytes found there, lossily decoded.
        found: String,
    },
    /// The elfcorehdr does not have one crash-note PT_NOTE per possible CPU plus VMCOREINFO.
    #[error("elfcorehdr has {found} PT_NOTE entries, expected {expected} ({cpus} possible CPUs + VMCOREINFO)")]
    NoteCount {
        /// PT_NOTE entries found.
        found: usize,
        /// PT_NOTE entries expected.
        expected: usize,
        /// Possible CPUs in the crashed kernel.
        cpus: usize,
    },
    /// The dump's notes lack VMCOREINFO or any CPU register note.
    #[error("dump notes: {0}")]
    Notes(String),
    /// A header could not be parsed.
    #[error("ELF: {0}")]
    Elf(String),
    /// makedumpfile could not extract the log, or the log lacks the panic message.
    #[error("makedumpfile --dump-dmesg: {0}")]
    Dmesg(String),
    /// A KUnit suite failed or did not run.
    #[error("KUnit: {0}")]
    Kunit(String),
    /// The in-kernel event counters disagree with what the scenario did.
    #[error("event counters: {0}")]
    Events(String),
    /// The crash did not lead to a capture boot with a dump.
    #[error("no capture: {0}")]
    NoCapture(String),
    /// The crash started no capture kernel at all (the panic did not reach kdump).
    #[error("no capture kernel: {0}")]
    NoCaptureKernel(String),
    /// The crash did not run on the CPU the scenario pinned it to.
    #[error("crash CPU: {0}")]
    CrashCpu(String),
    /// The kdump capture kernel's FDT does not list the CPUs the crashed kernel had.
    #[error("capture FDT /cpus: {0}")]
    CaptureFdt(String),
    /// The fadump capture kernel's own dump path (Rust) did not do what it must.
    #[error("fadump capture: {0}")]
    Fadump(String),
    /// RAM that must be in the dump (System RAM, not offline, not excluded) is not.
    #[error("dump misses RAM {start:#x}-{end:#x}{more}")]
    RamMissing {
        /// First byte of the first missing range.
        start: u64,
        /// Last byte of it.
        end: u64,
        /// How much more is missing, if any.
        more: String,
    },
    /// The dump lists memory it must not: not System RAM, an offline block, the crash kernel
    /// region, or what the machine leaves out.
    #[error("dump has extra memory {start:#x}-{end:#x} ({why}){more}")]
    RamExtra {
        /// First byte of the first extra range.
        start: u64,
        /// Last byte of it.
        end: u64,
        /// What that memory is.
        why: String,
        /// How much more is extra, if any.
        more: String,
    },
    /// Two RAM PT_LOADs cover the same bytes.
    #[error("PT_LOADs overlap at {start:#x}-{end:#x}")]
    LoadsOverlap {
        /// First byte both cover.
        start: u64,
        /// Last byte both cover.
        end: u64,
    },
    /// A memory block that was changing at the crash is neither wholly in the dump nor wholly out.
    #[error("{what} partly in the dump: {covered_kib} KiB of {size_kib} KiB; not covered: {gaps}")]
    InFlightPartial {
        /// `in-flight block N`, or the machine's range that may be dumped or not.
        what: String,
        /// KiB of it in the dump.
        covered_kib: u64,
        /// KiB of its RAM.
        size_kib: u64,
        /// Its RAM not in the dump.
        gaps: String,
    },
    /// The device-backed vmemmap of a pmem namespace in pfn mode `pmem` (map=dev: the info
    /// block and the struct pages, `[namespace start, data start)`, on the device itself) is not
    /// in the dump, wholly or in part.
    #[error("dump misses the device vmemmap {start:#x}-{end:#x} of {namespace}{partly}")]
    DeviceVmemmapMissing {
        /// The namespace (`namespace0.0`).
        namespace: String,
        /// Namespace start.
        start: u64,
        /// Last byte before the data.
        end: u64,
        /// Empty if no byte is covered, else what is not.
        partly: String,
    },
    /// A bad write to a debugfs file was not refused with EINVAL, changed the file, or made the
    /// kernel report something.
    #[error("debugfs bad input: {0}")]
    DebugfsInput(String),
    /// The debug kernel reported a defect (lockdep, KASAN, KFENCE, kmemleak, a WARNING or BUG).
    #[error("debug kernel reports: {0}")]
    KernelReports(String),
    /// drgn could not read the dump as the checks need (no crashed thread, no crash frame, the
    /// reader failed).
    #[error("drgn: {0}")]
    Drgn(String),
    /// drgn read a struct page that is not in the dump, or not what the kernel put there.
    #[error("drgn: the struct page of PFN {pfn:#x} (at {page:#x}) {detail}")]
    DrgnStructPage {
        /// The PFN.
        pfn: u64,
        /// `pfn_to_page(pfn)`.
        page: u64,
        /// What is wrong.
        detail: String,
    },
    /// The pmem checks that failed (each is run, so that a dump without the device vmemmap
    /// shows every check that sees it: the bytes and drgn's struct pages).
    #[error("pmem checks failed: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Pmem(Vec<VerifyError>),
    /// The device vmemmap of a namespace whose pfn/dax device was unbound before the crash (its
    /// memmap torn down) is still listed in the dump.
    #[error(
        "dump still lists the device vmemmap {start:#x}-{end:#x} of {namespace}, torn down before \
         the crash ({covered_kib} KiB of it)"
    )]
    DeviceVmemmapPresent {
        /// The namespace.
        namespace: String,
        /// Namespace start.
        start: u64,
        /// Last byte before the data.
        end: u64,
        /// KiB of the range in the dump.
        covered_kib: u64,
    },
    /// The dump holds the device vmemmap's range, but not the bytes the device held right before
    /// the crash.
    #[error(
        "device vmemmap {start:#x}-{end:#x} of {namespace} in the dump differs from the device's \
         bytes before the crash: {detail}"
    )]
    DeviceVmemmapBytes {
        /// The namespace.
        namespace: String,
        /// Namespace start.
        start: u64,
        /// Last byte before the data.
        end: u64,
        /// Where and how much differs.
        detail: String,
    },
    /// The capture kernel registered a driver that probes pmem namespaces (and would rebuild
    /// the info block and memmap over the crashed kernel's).
    #[error("capture kernel can probe the pmem: {0}")]
    PmemProbedInCapture(String),
}

/// Any failure of a harness run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on the host.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// QMP failed or QEMU refused a command.
    #[error("QMP {command}: {message}")]
    Qmp {
        /// The command.
        command: String,
        /// QEMU's answer or the transport error.
        message: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// A guest command failed.
    #[error("guest command `{cmd}` exited {rc}: {output}")]
    Guest {
        /// The command.
        cmd: String,
        /// Its exit status.
        rc: i32,
        /// Its output.
        output: String,
    },
    /// The guest did something unexpected (e.g. QEMU exited).
    #[error("{0}")]
    Unexpected(String),
    /// The dump was produced but fails a check.
    #[error("verification failed: {0}")]
    Verify(#[from] VerifyError),
}

/// Result alias of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a description to an I/O error.
pub trait IoContext<T> {
    /// Wraps the error with `what`.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}
