//! The dump read as a kernel engineer reads it: drgn (PyPI wheel, pinned by sha256 in
//! `scripts/pins.sh`, unpacked by `scripts/setup.sh`) opens the capture kernel's
//! `makedumpfile -l -d 31` file with the crashed kernel's vmlinux and its DWARF.
//!
//! `tests/harness/drgn/read_dump.py` only reads (the crashed thread's stack; for each PFN asked,
//! its `struct page` through the kernel's own page tables and vmemmap, and the `dev_pagemap` the
//! kernel registered for it in `pgmap_array`) and prints JSON. The rules are here, in Rust,
//! tested on the host against recorded facts:
//!
//! - the crashed task's stack unwinds to the sysrq crash handler;
//! - the `struct page` of sampled hot-added RAM PFNs is in the dump and describes that PFN;
//! - the `struct page` of sampled pmem data PFNs is in the dump (it lives on the device: the
//!   device vmemmap), points back at the `dev_pagemap` registered for the PFN, is reserved and
//!   has the refcount `memmap_init_zone_device()` gives a free page of that pgmap type; and the
//!   pgmap's altmap places the vmemmap where the harness saw the namespace's memmap.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::{
    error::{Error, Result, VerifyError},
    pmem::{Mode, Namespace, NAMESPACE},
};

/// The frame every sysrq-triggered crash's stack holds.
pub const CRASH_FRAME: &str = "sysrq_handle_crash";

const PAGE_SHIFT: u32 = 12;

/// Where drgn is and how to run it.
#[derive(Clone, Debug)]
pub struct Drgn {
    /// A CPython of the wheel's version (3.11).
    pub python: PathBuf,
    /// The unpacked wheel (holds `drgn/` and `_drgn*.so`).
    pub site: PathBuf,
    /// `read_dump.py`.
    pub script: PathBuf,
}

impl Drgn {
    /// drgn unpacked at `site`, run by `python`, with the repository's reader script.
    pub fn new(python: &Path, site: &Path) -> Self {
        Self {
            python: python.to_path_buf(),
            site: site.to_path_buf(),
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("drgn/read_dump.py"),
        }
    }

    /// Reads `dump` with `vmlinux`: the crashed thread's stack and the struct pages of `pfns`.
    pub fn read(&self, vmlinux: &Path, dump: &Path, pfns: &[u64]) -> Result<Facts> {
        let out = Command::new(&self.python)
            .env("PYTHONPATH", &self.site)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(&self.script)
            .arg(vmlinux)
            .arg(dump)
            .args(pfns.iter().map(|p| format!("{p:#x}")))
            .output()
            .map_err(|e| Error::Unexpected(format!("running {}: {e}", self.python.display())))?;
        if !out.status.success() {
            return Err(VerifyError::Drgn(format!(
                "read_dump.py exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        Facts::parse(&String::from_utf8_lossy(&out.stdout))
            .map_err(|e| VerifyError::Drgn(format!("read_dump.py output: {e}")).into())
    }
}

/// The vmlinux with DWARF that `scripts/build-kernel.sh` writes next to a bzImage
/// (`bzImage-rust` → `vmlinux-rust`).
pub fn vmlinux_of(kernel: &Path) -> PathBuf {
    let name = kernel
        .file_name()
        .map(|n| n.to_string_lossy().replacen("bzImage", "vmlinux", 1))
        .unwrap_or_default();
    kernel.with_file_name(name)
}

/// The crashed thread as drgn unwound it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// Its pid.
    pub pid: u64,
    /// Its comm.
    pub comm: String,
    /// Function names, innermost first.
    pub frames: Vec<String>,
}

/// A `dev_pagemap` as read from the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pgmap {
    /// Its address.
    pub addr: u64,
    /// `enum memory_type` enumerator.
    pub kind: String,
    /// Compound page order of its memmap.
    pub vmemmap_shift: u64,
    /// First PFN of its altmap (the device vmemmap's start).
    pub altmap_base_pfn: u64,
    /// PFNs reserved at the start (info block).
    pub altmap_reserve: u64,
    /// PFNs set aside for the memmap.
    pub altmap_free: u64,
    /// `range.start`.
    pub range_start: u64,
}

impl Pgmap {
    /// The device vmemmap as the kernel's altmap places it: `[base_pfn, base_pfn +
    /// vmem_altmap_offset())`, in bytes, inclusive.
    pub fn vmemmap(&self) -> (u64, u64) {
        (
            self.altmap_base_pfn << PAGE_SHIFT,
            ((self.altmap_base_pfn + self.altmap_reserve + self.altmap_free) << PAGE_SHIFT) - 1,
        )
    }
}

/// A struct page as read from the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRead {
    /// `flags`.
    pub flags: u64,
    /// `_refcount`.
    pub refcount: i64,
    /// PG_reserved.
    pub reserved: bool,
    /// A compound head.
    pub head: bool,
    /// A compound tail.
    pub tail: bool,
    /// `page_to_pfn()` of it.
    pub pfn_back: u64,
    /// `page_folio(page)->pgmap`, read if a pgmap is registered for the PFN.
    pub pgmap: Option<u64>,
}

/// One PFN's struct page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageFacts {
    /// The PFN.
    pub pfn: u64,
    /// `pfn_to_page()`: the struct page's virtual address.
    pub page: u64,
    /// The struct page's physical address through the kernel's page tables, if they map it.
    pub page_phys: Option<u64>,
    /// The pgmap registered for the PFN.
    pub registered: Option<Pgmap>,
    /// The struct page, or drgn's error reading it.
    pub read: std::result::Result<PageRead, String>,
}

/// What drgn read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// `init_uts_ns` release.
    pub release: String,
    /// The crashed thread, or drgn's error unwinding it.
    pub stack: std::result::Result<Stack, String>,
    /// The PFNs asked, in order.
    pub pages: Vec<PageFacts>,
}

fn num(v: &Value, key: &str) -> std::result::Result<u64, String> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("no unsigned {key:?} in {v}"))
}

impl Facts {
    /// Parses read_dump.py's JSON.
    pub fn parse(json: &str) -> std::result::Result<Self, String> {
        let v: Value = serde_json::from_str(json.trim()).map_err(|e| e.to_string())?;
        let s = &v["stack"];
        let stack = match s.get("error").and_then(Value::as_str) {
            Some(e) => Err(e.to_string()),
            None => Ok(Stack {
                pid: num(s, "pid")?,
                comm: s["comm"].as_str().unwrap_or_default().to_string(),
                frames: s["frames"]
                    .as_array()
                    .ok_or("no stack frames")?
                    .iter()
                    .map(|f| f.as_str().unwrap_or_default().to_string())
                    .collect(),
            }),
        };
        let mut pages = Vec::new();
        for p in v["pages"].as_array().ok_or("no pages")? {
            let registered = match p.get("registered_pgmap") {
                Some(g) => Some(Pgmap {
                    addr: num(g, "addr")?,
                    kind: g["type"].as_str().unwrap_or_default().to_string(),
                    vmemmap_shift: num(g, "vmemmap_shift")?,
                    altmap_base_pfn: num(g, "altmap_base_pfn")?,
                    altmap_reserve: num(g, "altmap_reserve")?,
                    altmap_free: num(g, "altmap_free")?,
                    range_start: num(g, "range_start")?,
                }),
                None => None,
            };
            let read = match p.get("error").and_then(Value::as_str) {
                Some(e) => Err(e.to_string()),
                None => Ok(PageRead {
                    flags: num(p, "flags")?,
                    refcount: p["refcount"].as_i64().ok_or("no refcount")?,
                    reserved: p["reserved"].as_bool().unwrap_or_default(),
                    head: p["head"].as_bool().unwrap_or_default(),
                    tail: p["tail"].as_bool().unwrap_or_default(),
                    pfn_back: num(p, "pfn_back")?,
                    pgmap: p.get("pgmap").and_then(Value::as_u64),
                }),
            };
            pages.push(PageFacts {
                pfn: num(p, "pfn")?,
                page: num(p, "page")?,
                page_phys: p.get("page_phys").and_then(Value::as_u64),
                registered,
                read,
            });
        }
        Ok(Self {
            release: v["release"].as_str().unwrap_or_default().to_string(),
            stack,
            pages,
        })
    }
}

/// `n` PFNs spread over `[first, last]` (both included).
pub fn sample(first: u64, last: u64, n: u64) -> Vec<u64> {
    let span = last - first;
    let mut v: Vec<u64> = (0..n).map(|i| first + span * i / (n - 1).max(1)).collect();
    v.dedup();
    v
}

/// The crashed task's stack unwinds through the sysrq crash handler.
pub fn judge_stack(f: &Facts) -> std::result::Result<String, VerifyError> {
    let s = f
        .stack
        .as_ref()
        .map_err(|e| VerifyError::Drgn(format!("cannot unwind the crashed thread: {e}")))?;
    let at = s
        .frames
        .iter()
        .position(|n| n == CRASH_FRAME)
        .ok_or_else(|| {
            VerifyError::Drgn(format!(
                "the crashed thread {} ({}) has no {CRASH_FRAME} frame: {}",
                s.pid,
                s.comm,
                s.frames.join(" < ")
            ))
        })?;
    let shown: Vec<&str> = s.frames.iter().take(at + 3).map(String::as_str).collect();
    Ok(format!(
        "drgn ({}): crashed thread {} ({}) unwinds to {CRASH_FRAME} (frame {at} of {}): {}",
        f.release,
        s.pid,
        s.comm,
        s.frames.len(),
        shown.join(" < ")
    ))
}

fn page_of(f: &Facts, pfn: u64) -> std::result::Result<&PageFacts, VerifyError> {
    f.pages
        .iter()
        .find(|p| p.pfn == pfn)
        .ok_or_else(|| VerifyError::Drgn(format!("PFN {pfn:#x} was not read")))
}

/// The struct pages of hot-added RAM PFNs (`pfns`, in DIMM `what`) are in the dump and describe
/// their PFN.
pub fn judge_ram_pages(
    f: &Facts,
    what: &str,
    pfns: &[u64],
) -> std::result::Result<String, VerifyError> {
    for &pfn in pfns {
        let p = page_of(f, pfn)?;
        let bad = |detail: String| VerifyError::DrgnStructPage {
            pfn,
            page: p.page,
            detail,
        };
        let read = p.read.as_ref().map_err(|e| {
            bad(format!(
                "(of {what}) is not in the dump{}: {e}",
                p.page_phys
                    .map(|a| format!(" (physical {a:#x})"))
                    .unwrap_or_default()
            ))
        })?;
        if read.pfn_back != pfn {
            return Err(bad(format!(
                "(of {what}) is read, but page_to_pfn() gives {:#x}",
                read.pfn_back
            )));
        }
        if read.flags == u64::MAX {
            return Err(bad(format!(
                "(of {what}) holds the poison pattern: never initialised"
            )));
        }
    }
    Ok(format!(
        "drgn: the struct pages of {} PFNs of {what} ({:#x}..{:#x}) are in the dump and map back \
         to their PFNs",
        pfns.len(),
        pfns.first().copied().unwrap_or_default(),
        pfns.last().copied().unwrap_or_default()
    ))
}

/// The PFNs of the namespace's data to sample: its first and last and some between.
pub fn pmem_pfns(ns: &Namespace) -> Vec<u64> {
    sample(
        ns.data >> PAGE_SHIFT,
        ((ns.start + ns.size) >> PAGE_SHIFT) - 1,
        8,
    )
}

/// The refcount `memmap_init_zone_device()` leaves in a free page of a pgmap of `kind`:
/// 0 for fsdax (released to the driver allocator), 1 for generic (device-dax) pages or, in a
/// compound memmap, their heads (tails 0).
fn initial_refcount(kind: &str, compound: bool, tail: bool) -> Option<i64> {
    match kind {
        "MEMORY_DEVICE_FS_DAX" => Some(0),
        "MEMORY_DEVICE_GENERIC" if compound && tail => Some(0),
        "MEMORY_DEVICE_GENERIC" => Some(1),
        _ => None,
    }
}

/// The struct pages of the namespace's sampled data PFNs, read from the device vmemmap in the
/// dump, are the kernel's: see the module documentation.
pub fn judge_pmem_pages(
    f: &Facts,
    ns: &Namespace,
    mode: Mode,
) -> std::result::Result<String, VerifyError> {
    let (vstart, vend) = ns.vmemmap();
    let want_kind = match mode {
        Mode::Fsdax => "MEMORY_DEVICE_FS_DAX",
        Mode::Devdax => "MEMORY_DEVICE_GENERIC",
    };
    let pfns = pmem_pfns(ns);
    let mut kinds = Vec::new();
    for &pfn in &pfns {
        let p = page_of(f, pfn)?;
        let bad = |detail: String| VerifyError::DrgnStructPage {
            pfn,
            page: p.page,
            detail,
        };
        let g = p.registered.as_ref().ok_or_else(|| {
            bad(format!(
                "of {NAMESPACE}: no dev_pagemap registered for the PFN in the dump's pgmap_array"
            ))
        })?;
        let read = p.read.as_ref().map_err(|e| {
            let at = p
                .page_phys
                .map(|a| {
                    let inside = (vstart..=vend).contains(&a);
                    format!(
                        " (physical {a:#x}, {} the device vmemmap {vstart:#x}-{vend:#x} of \
                         {NAMESPACE})",
                        if inside { "in" } else { "outside" }
                    )
                })
                .unwrap_or_default();
            bad(format!("is not in the dump{at}: {e}"))
        })?;
        if g.kind != want_kind {
            return Err(bad(format!(
                "has a {} pgmap, a {} namespace needs {want_kind}",
                g.kind,
                mode.name()
            )));
        }
        if g.vmemmap() != (vstart, vend) {
            let (a, b) = g.vmemmap();
            return Err(bad(format!(
                "has a pgmap whose altmap places the vmemmap at {a:#x}-{b:#x}, the namespace's \
                 is {vstart:#x}-{vend:#x}"
            )));
        }
        if read.pgmap != Some(g.addr) {
            return Err(bad(format!(
                "points at pgmap {}, the PFN's registered pgmap is {:#x}",
                read.pgmap
                    .map_or_else(|| "(unread)".into(), |a| format!("{a:#x}")),
                g.addr
            )));
        }
        if !read.reserved {
            return Err(bad(format!("lacks PG_reserved (flags {:#x})", read.flags)));
        }
        let want = initial_refcount(&g.kind, g.vmemmap_shift > 0, read.tail);
        if want.is_some_and(|w| w != read.refcount) {
            return Err(bad(format!(
                "has refcount {}, a free {} page{} has {}",
                read.refcount,
                g.kind,
                if read.tail { " (compound tail)" } else { "" },
                want.unwrap_or_default()
            )));
        }
        if read.pfn_back != pfn {
            return Err(bad(format!("maps back to PFN {:#x}", read.pfn_back)));
        }
        kinds.push(format!("{pfn:#x}: ref {}", read.refcount));
    }
    Ok(format!(
        "drgn: the struct pages of {} data PFNs of {NAMESPACE} are in the dump (read through the \
         vmemmap from {vstart:#x}-{vend:#x}): reserved, pgmap = the registered {want_kind} pgmap, \
         whose altmap starts at {vstart:#x}; {}",
        pfns.len(),
        kinds.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS_START: u64 = 0x1_0000_0000;
    const DATA: u64 = 0x1_0120_0000;

    fn ns() -> Namespace {
        Namespace {
            dev: "pfn0.0".into(),
            start: NS_START,
            size: 1 << 30,
            data: DATA,
            align: 2 << 20,
        }
    }

    /// Facts as read_dump.py prints them for `ns()` in fsdax mode, with `page` overriding the
    /// struct page fields of every PFN (`None`: drgn's FaultError).
    fn facts(page: Option<&str>) -> String {
        let pgmap = format!(
            r#"{{"addr": 18446612682406576128, "type": "MEMORY_DEVICE_FS_DAX", "vmemmap_shift": 0,
               "range_start": {NS_START}, "range_end": {}, "altmap_base_pfn": {}, "altmap_reserve": 2,
               "altmap_free": {}, "altmap_alloc": 4096}}"#,
            NS_START + (1 << 30) - 1,
            NS_START >> 12,
            ((DATA - NS_START) >> 12) - 2
        );
        let pages: Vec<String> = pmem_pfns(&ns())
            .iter()
            .map(|pfn| {
                let read = match page {
                    Some(p) => p.replace("PFN", &pfn.to_string()),
                    None => format!(
                        r#""error": "FaultError: could not find memory segment: {:#x}""#,
                        0xffffea0000000000u64 + pfn * 64
                    ),
                };
                format!(
                    r#"{{"pfn": {pfn}, "page": {}, "page_phys": {}, "registered_pgmap": {pgmap}, {read}}}"#,
                    0xffffea0000000000u64 + pfn * 64,
                    NS_START + 0x2000 + (pfn - (NS_START >> 12)) * 64
                )
            })
            .collect();
        format!(
            r#"{{"release": "7.3.4", "stack": {{"pid": 212, "comm": "sh", "cpu": 1,
               "frames": ["__crash_kexec", "panic", "sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger"]}},
               "pages": [{}]}}"#,
            pages.join(", ")
        )
    }

    const GOOD: &str = r#""flags": 1025, "refcount": 0, "reserved": true, "head": false, "tail": false,
        "pfn_back": PFN, "pgmap": 18446612682406576128"#;

    #[test]
    fn pmem_pages_as_the_kernel_left_them_pass() {
        let f = Facts::parse(&facts(Some(GOOD))).unwrap();
        let m = judge_pmem_pages(&f, &ns(), Mode::Fsdax).unwrap();
        assert!(m.contains("8 data PFNs"), "{m}");
        assert!(judge_stack(&f)
            .unwrap()
            .contains("unwinds to sysrq_handle_crash (frame 2 of 5)"));
    }

    #[test]
    fn a_dump_without_the_device_vmemmap_names_the_range() {
        let f = Facts::parse(&facts(None)).unwrap();
        let e = judge_pmem_pages(&f, &ns(), Mode::Fsdax)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not in the dump (physical 0x10004a000, in the device vmemmap 0x100000000-0x1011fffff of namespace0.0): FaultError"),
            "{e}"
        );
    }

    #[test]
    fn each_struct_page_field_is_judged() {
        for (bad, says) in [
            (
                GOOD.replace("\"refcount\": 0", "\"refcount\": 1"),
                "has refcount 1, a free MEMORY_DEVICE_FS_DAX page has 0",
            ),
            (
                GOOD.replace("\"reserved\": true", "\"reserved\": false"),
                "lacks PG_reserved",
            ),
            (
                GOOD.replace("\"pgmap\": 18446612682406576128", "\"pgmap\": 0"),
                "points at pgmap 0x0, the PFN's registered pgmap",
            ),
            (
                GOOD.replace("\"pfn_back\": PFN", "\"pfn_back\": 7"),
                "maps back to PFN 0x7",
            ),
        ] {
            let f = Facts::parse(&facts(Some(&bad))).unwrap();
            let e = judge_pmem_pages(&f, &ns(), Mode::Fsdax)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{e}");
        }
        let f = Facts::parse(&facts(Some(GOOD))).unwrap();
        let e = judge_pmem_pages(&f, &ns(), Mode::Devdax)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a devdax namespace needs MEMORY_DEVICE_GENERIC"),
            "{e}"
        );
        let moved = Namespace {
            start: NS_START + 0x20_0000,
            size: (1 << 30) - 0x20_0000,
            ..ns()
        };
        let e = judge_pmem_pages(&f, &moved, Mode::Fsdax)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("altmap places the vmemmap at 0x100000000-0x1011fffff"),
            "{e}"
        );
    }

    #[test]
    fn devdax_compound_refcounts() {
        assert_eq!(
            initial_refcount("MEMORY_DEVICE_GENERIC", true, false),
            Some(1)
        );
        assert_eq!(
            initial_refcount("MEMORY_DEVICE_GENERIC", true, true),
            Some(0)
        );
        assert_eq!(
            initial_refcount("MEMORY_DEVICE_GENERIC", false, false),
            Some(1)
        );
        assert_eq!(
            initial_refcount("MEMORY_DEVICE_PRIVATE", false, false),
            None
        );
    }

    #[test]
    fn the_stack_must_reach_the_crash_handler() {
        let f = Facts::parse(&facts(Some(GOOD)).replace("\"sysrq_handle_crash\", ", "")).unwrap();
        let e = judge_stack(&f).unwrap_err().to_string();
        assert!(
            e.contains("has no sysrq_handle_crash frame: __crash_kexec < panic < __handle_sysrq"),
            "{e}"
        );
        let f = Facts {
            stack: Err("LookupError: no crashed thread".into()),
            ..f
        };
        assert!(judge_stack(&f)
            .unwrap_err()
            .to_string()
            .contains("cannot unwind"));
    }

    #[test]
    fn ram_pages() {
        let json = r#"{"release": "7.3.4", "stack": {"error": "x"}, "pages": [
            {"pfn": 1048576, "page": 1, "flags": 0, "refcount": 1, "reserved": false, "head": false, "tail": false, "pfn_back": 1048576},
            {"pfn": 1048577, "page": 2, "page_phys": 8192, "error": "FaultError: could not find memory segment"}]}"#;
        let f = Facts::parse(json).unwrap();
        assert!(judge_ram_pages(&f, "DIMM d1", &[1048576]).is_ok());
        let e = judge_ram_pages(&f, "DIMM d1", &[1048576, 1048577])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("PFN 0x100001 (at 0x2) (of DIMM d1) is not in the dump (physical 0x2000)"),
            "{e}"
        );
        let e = judge_ram_pages(&f, "DIMM d1", &[5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("PFN 0x5 was not read"), "{e}");
    }

    #[test]
    fn sampling_and_paths() {
        assert_eq!(sample(10, 17, 8), (10..=17).collect::<Vec<_>>());
        assert_eq!(sample(0, 70, 8), vec![0, 10, 20, 30, 40, 50, 60, 70]);
        assert_eq!(sample(5, 5, 8), vec![5]);
        assert_eq!(
            vmlinux_of(Path::new("/c/out/x86_64/bzImage-rust")),
            Path::new("/c/out/x86_64/vmlinux-rust")
        );
    }
}
