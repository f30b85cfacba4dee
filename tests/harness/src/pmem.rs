//! The pmem scenarios (issue 13): a QEMU NVDIMM (q35: label-less, its io namespace; pseries:
//! `spapr-nvdimm` with labels, a labeled namespace the guest creates) whose namespace is turned,
//! with busybox sysfs writes only, into an fsdax or devdax namespace in pfn mode `pmem` (map=dev):
//! the info block and the `struct page` array of the namespace's data pages (the altmap vmemmap)
//! live on the device, in `[namespace start, data start)`. Those bytes are neither System RAM nor,
//! upstream, in the elfcorehdr. The checks, from the host:
//! - the capture kernel registered neither pmem driver (it would rebuild the info block and the
//!   memmap over the crashed kernel's);
//! - a PT_LOAD of `/proc/vmcore` covers `[NS, DATA)` (or, after the namespace's pfn/dax device was
//!   unbound, none touches it);
//! - the dump's bytes of that range equal the backing file's bytes taken right before the crash.

use std::{
    fs::{self, File},
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
    time::Duration,
};

use crate::{
    dump::CoreHeader,
    error::{Error, IoContext, Result, VerifyError},
    machine::NVDIMM_ID,
    qemu::Vm,
};

/// Size of the NVDIMM (128 MiB aligned and a multiple of it: the whole memmap goes to the device).
pub const NVDIMM_SIZE: u64 = 1 << 30;
/// The label-less DIMM's one namespace.
pub const NAMESPACE: &str = "namespace0.0";
/// Bytes per transfer of the dumped range (the range is up to 16 MiB + 2 MiB for 1 GiB).
const CHUNK: u64 = 4 << 20;
/// Offset of the pfn/dax info block in the namespace (`SZ_4K`, drivers/nvdimm/pfn_devs.c).
const INFO_OFFSET: usize = 4096;
/// Where the struct pages may start: after the info block and the 8 KiB reserve. (The altmap's
/// first vmemmap block: x86_64 at 2 MiB, a PMD; ppc64 radix with 64 KiB pages at 64 KiB, the
/// first page after the reserve, base pages: the memmap's 2 MiB PMD block does not fit in front
/// of a 2 MiB data offset.)
const MEMMAP_OFFSET: usize = 8 << 10;
/// `sizeof(struct page)` on x86_64 and ppc64 (`MAX_STRUCT_PAGE_SIZE`: pfn mode `pmem` refuses
/// larger ones without KMSAN).
const STRUCT_PAGE: usize = 64;
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// What the namespace becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A pfn device (`region0/pfn_seed`) bound to `nd_pmem`: /dev/pmem0 with struct pages.
    Fsdax,
    /// A dax device (`region0/dax_seed`) bound to `dax_pmem`: /dev/dax0.0.
    Devdax,
}

impl Mode {
    /// `fsdax` or `devdax`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Fsdax => "fsdax",
            Mode::Devdax => "devdax",
        }
    }

    fn seed(self) -> &'static str {
        match self {
            Mode::Fsdax => "pfn_seed",
            Mode::Devdax => "dax_seed",
        }
    }

    fn driver(self) -> &'static str {
        match self {
            Mode::Fsdax => "nd_pmem",
            Mode::Devdax => "dax_pmem",
        }
    }

    /// The info block's signature (`PFN_SIG`, `DAX_SIG`).
    fn signature(self) -> &'static [u8; 16] {
        match self {
            Mode::Fsdax => b"NVDIMM_PFN_INFO\0",
            Mode::Devdax => b"NVDIMM_DAX_INFO\0",
        }
    }

    /// The device node the mode gives.
    fn node(self) -> &'static str {
        match self {
            Mode::Fsdax => "[ -b /dev/pmem0 ]",
            Mode::Devdax => "[ -c /dev/dax0.0 ]",
        }
    }
}

/// When the namespace comes and goes, relative to the crash kernel load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// Created before the load: the load-time header must list it.
    Before,
    /// Created after the load: the image must be updated.
    After,
    /// Created before the load, its pfn/dax device unbound after it: the range must be gone.
    TornDown,
}

/// A pmem scenario's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pmem {
    /// fsdax or devdax.
    pub mode: Mode,
    /// When it is created (and destroyed).
    pub when: When,
    /// Keep the capture kernel from probing pmem (on unless a test shows what happens without).
    pub capture_blacklist: bool,
}

impl Pmem {
    /// A namespace in `mode`, created (and destroyed) `when`.
    pub fn new(mode: Mode, when: When) -> Self {
        Self {
            mode,
            when,
            capture_blacklist: true,
        }
    }

    /// Whether the namespace is created before the crash kernel is loaded.
    pub fn before_load(self) -> bool {
        self.when != When::After
    }

    /// Whether its vmemmap must be in the dump.
    pub fn present_at_crash(self) -> bool {
        self.when != When::TornDown
    }
}

/// The namespace as the guest reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// The pfn or dax device (`pfn0.0`, `dax0.0`).
    pub dev: String,
    /// Namespace start (physical).
    pub start: u64,
    /// Namespace size.
    pub size: u64,
    /// Start of the data (the pfn/dax device's `resource`).
    pub data: u64,
    /// The device's alignment.
    pub align: u64,
}

impl Namespace {
    /// The device vmemmap range, inclusive: info block, padding, struct pages.
    pub fn vmemmap(&self) -> (u64, u64) {
        (self.start, self.data - 1)
    }

    /// A description for report lines.
    pub fn describe(&self) -> String {
        format!(
            "{NAMESPACE} {:#x}+{:#x} via {} (align {:#x}): device vmemmap {:#x}-{:#x} ({} KiB)",
            self.start,
            self.size,
            self.dev,
            self.align,
            self.start,
            self.data - 1,
            (self.data - self.start) / 1024
        )
    }
}

/// A number as sysfs prints it: `0x` hex or decimal.
fn num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses the `@@PMEM dev ns_resource ns_size data_resource mode align` line of [`create`].
pub fn parse_line(out: &str) -> Option<Namespace> {
    let l = out.lines().find_map(|l| l.trim().strip_prefix("@@PMEM "))?;
    let f: Vec<&str> = l.split_whitespace().collect();
    let [dev, start, size, data, mode, align] = f[..] else {
        return None;
    };
    let ns = Namespace {
        dev: dev.to_string(),
        start: num(start)?,
        size: num(size)?,
        data: num(data)?,
        align: num(align)?,
    };
    (mode == "pmem" && ns.data > ns.start && ns.data < ns.start + ns.size).then_some(ns)
}

/// The `/proc/iomem` lines (indentation kept) that overlap `start..start+size`.
pub fn iomem_lines(iomem: &str, start: u64, size: u64) -> Vec<String> {
    iomem
        .lines()
        .filter(|l| {
            let Some((range, _)) = l.trim().split_once(" : ") else {
                return false;
            };
            let Some((a, b)) = range.split_once('-') else {
                return false;
            };
            match (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                (Ok(a), Ok(b)) => a < start + size && b >= start,
                _ => false,
            }
        })
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The guest commands that give the region's namespace [`NAMESPACE`], unbound, covering the
/// region. Label-less (q35): the io namespace exists and the raw pmem driver holds it: unbind it.
/// Labeled (pseries `spapr-nvdimm`): the region's seed namespace has no size: give it a uuid,
/// then the region's whole size (the kernel writes the label index on the first label update).
pub fn namespace_steps(labeled: bool) -> String {
    if labeled {
        format!(
            "NS=$(cat region0/namespace_seed) && [ \"$NS\" = {NAMESPACE} ] && \
             cat /proc/sys/kernel/random/uuid > $NS/uuid && cat region0/available_size > $NS/size"
        )
    } else {
        format!("[ -e {NAMESPACE}/driver ] && echo {NAMESPACE} > ../drivers/nd_pmem/unbind")
    }
}

/// Where the pfn/dax device's info block comes from.
#[derive(Clone, Copy, Debug)]
pub enum InfoBlock<'a> {
    /// The kernel writes it when the device is bound (q35).
    Kernel,
    /// The host writes it into the NVDIMM's backing file before the bind, as the kernel would
    /// (pseries under TCG: the kernel's pmem write path flushes with `dcbstps`, which QEMU's
    /// TCG (10.0.2, 11.1.3; power9 and power10) rejects: "Oops: Exception in kernel mode,
    /// sig: 4" in `memcpy_flushcache` from `nsio_rw_bytes`). The kernel validates it (checksum,
    /// both uuids, mode, alignment) and builds the memmap on the device as usual; it writes
    /// nothing else to the device.
    Host {
        /// The NVDIMM's backing file.
        backing: &'a Path,
        /// The guest's page size.
        page_size: u64,
        /// `memremap_compat_align()` of the guest (ppc64 radix: the 2 MiB subsection).
        compat_align: u64,
    },
}

/// The pfn/dax device's settings the guest printed before the bind (`@@PFNDEV` line): the
/// namespace's uuid and start and size, the device's uuid and alignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfnSettings {
    /// The pfn or dax device (`pfn0.0`, `dax0.0`).
    pub dev: String,
    /// The namespace's uuid (the info block's parent uuid).
    pub ns_uuid: [u8; 16],
    /// The pfn/dax device's uuid.
    pub uuid: [u8; 16],
    /// Namespace start (physical).
    pub start: u64,
    /// Namespace size.
    pub size: u64,
    /// The device's alignment.
    pub align: u64,
}

/// A uuid as sysfs prints it (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), in its byte order
/// (`uuid_t`: the bytes in the order the text gives them).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    if groups != [8, 4, 4, 4, 12] {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Parses the `@@PFNDEV dev ns_uuid dev_uuid ns_resource ns_size align` line.
pub fn parse_pfn_settings(out: &str) -> Option<PfnSettings> {
    let l = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("@@PFNDEV "))?;
    let f: Vec<&str> = l.split_whitespace().collect();
    let [dev, ns_uuid, uuid, start, size, align] = f[..] else {
        return None;
    };
    Some(PfnSettings {
        dev: dev.to_string(),
        ns_uuid: parse_uuid(ns_uuid)?,
        uuid: parse_uuid(uuid)?,
        start: num(start)?,
        size: num(size)?,
        align: num(align)?,
    })
}

/// `memremap_compat_align()` of a ppc64 guest with the radix MMU (the 2 MiB subsection; the
/// pseries TCG guest runs radix, and [`create`] checks the kernel's data offset against it).
pub const PPC64_RADIX_COMPAT_ALIGN: u64 = 2 << 20;

/// The uuid of a label-less (io) namespace, which has no `uuid` attribute: the null uuid (what
/// libnvdimm puts in an info block's parent uuid for it).
const NULL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// Size of an info block (`struct nd_pfn_sb`, 4 KiB) and of the area before the data that the
/// layout reserves for it (`SZ_8K`).
const INFO_SIZE: usize = 4096;
const INFO_RESERVE: u64 = 8 << 10;
/// `PFN_MODE_PMEM` (enum nd_pfn_mode: none, ram, pmem).
const PFN_MODE_PMEM: u32 = 2;

/// The Fletcher-64 sum of the info block (little-endian 32-bit words, the checksum field zero),
/// as libnvdimm checks it.
pub fn fletcher64(bytes: &[u8]) -> u64 {
    let (mut lo, mut hi) = (0u32, 0u32);
    for w in bytes.chunks_exact(4) {
        lo = lo.wrapping_add(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        hi = hi.wrapping_add(lo);
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The info block of a pfn/dax device in mode `pmem` (map=dev) on namespace `p`, version 1.4,
/// laid out as the kernel lays out a new one: the data starts at the first `max(align,
/// compat_align)` boundary after the 8 KiB reserve and room for 64 bytes of `struct page` per
/// page of the namespace (less the reserve). Returns the block and its data offset.
pub fn info_block(
    mode: Mode,
    p: &PfnSettings,
    page_size: u64,
    compat_align: u64,
) -> std::result::Result<(Vec<u8>, u64), String> {
    let align = p.align.max(compat_align);
    if align == 0 || p.start % compat_align != 0 || p.size < 2 * align {
        return Err(format!(
            "namespace {:#x}+{:#x} cannot take alignment {align:#x}",
            p.start, p.size
        ));
    }
    let pages0 = (p.size - INFO_RESERVE) / page_size;
    let end = p.start + INFO_RESERVE + STRUCT_PAGE as u64 * pages0;
    let dataoff = end.div_ceil(align) * align - p.start;
    let end_trunc = (p.start + p.size) - (p.start + p.size) / align * align;
    if dataoff >= p.size - end_trunc {
        return Err(format!("data offset {dataoff:#x} leaves no data"));
    }
    let npfns = (p.size - dataoff - end_trunc) / page_size;
    let mut b = vec![0u8; INFO_SIZE];
    b[..16].copy_from_slice(mode.signature());
    b[16..32].copy_from_slice(&p.uuid);
    b[32..48].copy_from_slice(&p.ns_uuid);
    // flags 0; version 1.4
    b[52..54].copy_from_slice(&1u16.to_le_bytes());
    b[54..56].copy_from_slice(&4u16.to_le_bytes());
    b[56..64].copy_from_slice(&dataoff.to_le_bytes());
    b[64..72].copy_from_slice(&npfns.to_le_bytes());
    b[72..76].copy_from_slice(&PFN_MODE_PMEM.to_le_bytes());
    // start_pad 0 (76..80)
    let u32_of = |v: u64| u32::try_from(v).map_err(|_| format!("{v:#x} does not fit 32 bits"));
    b[80..84].copy_from_slice(&u32_of(end_trunc)?.to_le_bytes());
    b[84..88].copy_from_slice(&u32_of(p.align)?.to_le_bytes());
    b[88..92].copy_from_slice(&u32_of(page_size)?.to_le_bytes());
    b[92..94].copy_from_slice(&(STRUCT_PAGE as u16).to_le_bytes());
    let sum = fletcher64(&b);
    b[INFO_SIZE - 8..].copy_from_slice(&sum.to_le_bytes());
    Ok((b, dataoff))
}

/// In the guest: makes the region's namespace ([`namespace_steps`]) an fsdax (pfn) or devdax
/// namespace in mode `pmem`; returns it and its `/proc/iomem` lines. With [`InfoBlock::Host`],
/// the host writes the info block between the device's configuration and its bind, and the data
/// offset the kernel then reports must be the block's.
pub fn create(vm: &mut Vm, mode: Mode, info: InfoBlock<'_>) -> Result<(Namespace, Vec<String>)> {
    let labeled = matches!(info, InfoBlock::Host { .. });
    let out = vm.sh(
        &format!(
            "cd /sys/bus/nd/devices && {ns} && P=$(cat region0/{seed}) && [ -n \"$P\" ] && \
             cat /proc/sys/kernel/random/uuid > $P/uuid && echo pmem > $P/mode && \
             echo {NAMESPACE} > $P/namespace && echo \"@@PFNDEV $P $(cat {NAMESPACE}/uuid 2>/dev/null || \
             echo {NULL_UUID}) \
             $(cat $P/uuid) $(cat {NAMESPACE}/resource) $(cat {NAMESPACE}/size) $(cat $P/align)\"",
            ns = namespace_steps(labeled),
            seed = mode.seed(),
        ),
        CMD_TIMEOUT,
    )?;
    let settings = parse_pfn_settings(&out)
        .ok_or_else(|| Error::Unexpected(format!("pmem device set-up said {out:?}")))?;
    let mut written = None;
    if let InfoBlock::Host {
        backing,
        page_size,
        compat_align,
    } = info
    {
        let (block, dataoff) = info_block(mode, &settings, page_size, compat_align)
            .map_err(|e| Error::Unexpected(format!("pmem info block: {e}")))?;
        let base = nvdimm_base(vm, settings.start, settings.size)?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(backing)
            .ctx(|| format!("opening {}", backing.display()))?;
        f.seek(SeekFrom::Start(settings.start - base + INFO_OFFSET as u64))
            .ctx(|| format!("seeking {}", backing.display()))?;
        f.write_all(&block)
            .ctx(|| format!("writing the info block to {}", backing.display()))?;
        f.sync_all()
            .ctx(|| format!("syncing {}", backing.display()))?;
        written = Some(dataoff);
    }
    let out = vm.sh(
        &format!(
            "cd /sys/bus/nd/devices && P={dev} && \
             [ \"$(cat $P/namespace)\" = {NAMESPACE} ] && echo $P > ../drivers/{drv}/bind && \
             n=0; until {node}; do n=$((n+1)); [ $n -gt 50 ] && exit 3; sleep 0.1; done; \
             echo \"@@PMEM $P $(cat {NAMESPACE}/resource) $(cat {NAMESPACE}/size) $(cat $P/resource) \
             $(cat $P/mode) $(cat $P/align)\"",
            dev = settings.dev,
            drv = mode.driver(),
            node = mode.node(),
        ),
        CMD_TIMEOUT,
    )?;
    let ns = parse_line(&out)
        .ok_or_else(|| Error::Unexpected(format!("pmem namespace set-up said {out:?}")))?;
    if let Some(dataoff) = written {
        if ns.data - ns.start != dataoff {
            return Err(Error::Unexpected(format!(
                "the kernel's data offset {:#x} is not the info block's {dataoff:#x}",
                ns.data - ns.start
            )));
        }
    }
    let iomem = vm.sh("cat /proc/iomem", CMD_TIMEOUT)?;
    Ok((ns.clone(), iomem_lines(&iomem, ns.start, ns.size)))
}

/// The NVDIMM's guest physical base (QMP `query-memory-devices`), checked to hold
/// `start..start+size`.
fn nvdimm_base(vm: &mut Vm, start: u64, size: u64) -> Result<u64> {
    let (_, base, len) = vm
        .memory_devices()?
        .into_iter()
        .find(|d| d.0 == NVDIMM_ID)
        .ok_or_else(|| Error::Unexpected(format!("QMP lists no {NVDIMM_ID}")))?;
    if start < base || start + size > base + len {
        return Err(Error::Unexpected(format!(
            "{NAMESPACE} {start:#x}+{size:#x} is not inside {NVDIMM_ID} {base:#x}+{len:#x}"
        )));
    }
    Ok(base)
}

/// In the guest: unbinds the namespace's pfn/dax device (its memmap is torn down); returns the
/// `/proc/iomem` lines left.
pub fn destroy(vm: &mut Vm, mode: Mode, ns: &Namespace) -> Result<Vec<String>> {
    vm.sh(
        &format!(
            "echo {dev} > /sys/bus/nd/drivers/{drv}/unbind && [ ! -e /sys/bus/nd/devices/{dev}/driver ] \
             && ! {node}",
            dev = ns.dev,
            drv = mode.driver(),
            node = mode.node(),
        ),
        CMD_TIMEOUT,
    )?;
    let iomem = vm.sh("cat /proc/iomem", CMD_TIMEOUT)?;
    Ok(iomem_lines(&iomem, ns.start, ns.size))
}

/// On the host, right before the crash: the bytes of `[NS, DATA)` from the NVDIMM's backing file
/// (the NVDIMM's guest physical base from QMP `query-memory-devices`).
pub fn reference(vm: &mut Vm, backing: &Path, ns: &Namespace) -> Result<(u64, Vec<u8>)> {
    let (_, base, size) = vm
        .memory_devices()?
        .into_iter()
        .find(|d| d.0 == NVDIMM_ID)
        .ok_or_else(|| Error::Unexpected(format!("QMP lists no {NVDIMM_ID}")))?;
    if ns.start < base || ns.data > base + size {
        return Err(Error::Unexpected(format!(
            "{NAMESPACE} {:#x}-{:#x} is not inside {NVDIMM_ID} {base:#x}+{size:#x}",
            ns.start, ns.data
        )));
    }
    let mut f = File::open(backing).ctx(|| format!("opening {}", backing.display()))?;
    f.seek(SeekFrom::Start(ns.start - base))
        .ctx(|| format!("seeking {}", backing.display()))?;
    let mut buf = vec![0u8; (ns.data - ns.start) as usize];
    f.read_exact(&mut buf)
        .ctx(|| format!("reading {}", backing.display()))?;
    Ok((base, buf))
}

/// What the reference holds: the info block of `mode` and struct pages (non-zero 64-byte
/// records) in the memmap area. Without both, the namespace is not map=dev and the byte check
/// would prove nothing.
pub fn judge_reference(mode: Mode, bytes: &[u8]) -> std::result::Result<String, String> {
    let sig = mode.signature();
    if bytes.get(INFO_OFFSET..INFO_OFFSET + sig.len()) != Some(&sig[..]) {
        return Err(format!(
            "no {} info block at offset {INFO_OFFSET:#x} of the namespace",
            String::from_utf8_lossy(&sig[..15])
        ));
    }
    let area = bytes.get(MEMMAP_OFFSET..).unwrap_or_default();
    let pages = area
        .chunks(STRUCT_PAGE)
        .filter(|p| p.iter().any(|b| *b != 0));
    let n = pages.count();
    if n == 0 {
        return Err(format!(
            "no struct page in the memmap area ({} KiB from offset {MEMMAP_OFFSET:#x} are zero)",
            area.len() / 1024
        ));
    }
    Ok(format!(
        "{} info block at +{INFO_OFFSET:#x}, {n} non-zero struct pages in the {} KiB memmap area",
        String::from_utf8_lossy(&sig[..15]),
        area.len() / 1024
    ))
}

/// Check (a): a PT_LOAD covers the device vmemmap if the namespace is live at the crash; none
/// touches it if it was torn down.
pub fn judge_coverage(
    vmcore: &CoreHeader,
    ns: &Namespace,
    present: bool,
) -> std::result::Result<String, VerifyError> {
    let (start, end) = ns.vmemmap();
    let gaps = vmcore.gaps(start, end);
    let missing: u64 = gaps.iter().map(|(a, b)| b - a + 1).sum();
    let len = end - start + 1;
    if present {
        if gaps.is_empty() {
            return Ok(format!(
                "PT_LOADs cover the device vmemmap {start:#x}-{end:#x} of {NAMESPACE} ({} KiB)",
                len / 1024
            ));
        }
        let partly = if missing == len {
            String::new()
        } else {
            format!(
                " ({} KiB of {} KiB covered; not covered: {})",
                (len - missing) / 1024,
                len / 1024,
                gaps.iter()
                    .map(|(a, b)| format!("{a:#x}-{b:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(VerifyError::DeviceVmemmapMissing {
            namespace: NAMESPACE.into(),
            start,
            end,
            partly,
        });
    }
    if vmcore.intersects(start, end) {
        return Err(VerifyError::DeviceVmemmapPresent {
            namespace: NAMESPACE.into(),
            start,
            end,
            covered_kib: (len - missing) / 1024,
        });
    }
    Ok(format!(
        "the device vmemmap {start:#x}-{end:#x} of {NAMESPACE}, torn down before the crash, is \
         absent from the dump"
    ))
}

/// In the capture kernel: the bytes of the device vmemmap from `/proc/vmcore`, at the file
/// offsets the program headers give, in chunks.
pub fn fetch_dumped(vm: &mut Vm, vmcore: &CoreHeader, ns: &Namespace) -> Result<Vec<u8>> {
    let (start, end) = ns.vmemmap();
    let mut out = Vec::with_capacity((end - start + 1) as usize);
    let mut at = start;
    while at <= end {
        let (off, left) =
            vmcore
                .file_extent(at)
                .ok_or_else(|| VerifyError::DeviceVmemmapMissing {
                    namespace: NAMESPACE.into(),
                    start,
                    end,
                    partly: format!(" (no file data at {at:#x})"),
                })?;
        let n = CHUNK.min(left).min(end - at + 1);
        out.extend(vm.fetch("/proc/vmcore", off, n)?);
        at += n;
    }
    Ok(out)
}

/// Check (b): the dump's bytes of the device vmemmap equal the reference.
pub fn judge_bytes(
    ns: &Namespace,
    reference: &[u8],
    dumped: &[u8],
) -> std::result::Result<String, VerifyError> {
    let (start, end) = ns.vmemmap();
    let err = |detail: String| VerifyError::DeviceVmemmapBytes {
        namespace: NAMESPACE.into(),
        start,
        end,
        detail,
    };
    if reference.len() != dumped.len() {
        return Err(err(format!(
            "{} bytes read from the dump, {} from the device",
            dumped.len(),
            reference.len()
        )));
    }
    let pages: Vec<usize> = reference
        .chunks(4096)
        .zip(dumped.chunks(4096))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    if let Some(&first) = pages.first() {
        let i = first * 4096
            + reference[first * 4096..]
                .iter()
                .zip(&dumped[first * 4096..])
                .position(|(a, b)| a != b)
                .unwrap_or(0);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let j = (i + 16).min(reference.len());
        return Err(err(format!(
            "{} of {} pages differ; first difference at {:#x}: dump {}, device {}",
            pages.len(),
            reference.len().div_ceil(4096),
            start + i as u64,
            hex(&dumped[i..j]),
            hex(&reference[i..j])
        )));
    }
    Ok(format!(
        "the dump's {} KiB of the device vmemmap {start:#x}-{end:#x} equal the device's bytes \
         before the crash",
        reference.len() / 1024
    ))
}

/// In the capture kernel: neither pmem driver is registered (`initcall_blacklist`), so nothing
/// probed the namespace. Returns the nd drivers and the bound nd devices.
pub fn judge_capture_drivers(listing: &str) -> std::result::Result<String, VerifyError> {
    let mut drivers = Vec::new();
    let mut bound = Vec::new();
    for l in listing.lines().map(str::trim) {
        if let Some(d) = l.strip_prefix("driver ") {
            drivers.push(d.to_string());
        } else if let Some(b) = l.strip_prefix("bound ") {
            bound.push(b.to_string());
        }
    }
    let probing: Vec<&String> = drivers
        .iter()
        .filter(|d| *d == "nd_pmem" || *d == "dax_pmem")
        .collect();
    if !probing.is_empty() || drivers.is_empty() {
        return Err(VerifyError::PmemProbedInCapture(format!(
            "nd drivers registered: [{}]; bound nd devices: [{}]",
            drivers.join(", "),
            bound.join(", ")
        )));
    }
    Ok(format!(
        "capture kernel: no pmem driver registered (nd drivers: {}; bound: {})",
        drivers.join(", "),
        bound.join(", ")
    ))
}

/// The guest script whose output [`judge_capture_drivers`] reads.
pub const CAPTURE_DRIVERS: &str = "for d in /sys/bus/nd/drivers/*; do [ -e \"$d\" ] && echo \"driver ${d##*/}\"; done; \
     for d in /sys/bus/nd/devices/*; do [ -e \"$d/driver\" ] && echo \"bound ${d##*/}=$(basename $(readlink $d/driver))\"; done; true";

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace {
            dev: "pfn0.0".into(),
            start: 0x1_0000_0000,
            size: 1 << 30,
            data: 0x1_0120_0000,
            align: 2 << 20,
        }
    }

    #[test]
    fn the_set_up_line() {
        let out = "junk\n@@PMEM pfn0.0 0x100000000 1073741824 0x101200000 pmem 2097152\n";
        assert_eq!(parse_line(out), Some(ns()));
        // map=mem ("ram"), data outside the namespace, a missing field: refused.
        for bad in [
            "@@PMEM pfn0.0 0x100000000 1073741824 0x101200000 ram 2097152",
            "@@PMEM pfn0.0 0x100000000 1073741824 0x140000000 pmem 2097152",
            "@@PMEM pfn0.0 0x100000000 1073741824 0x101200000 pmem",
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn iomem_lines_of_the_namespace() {
        let io = "00000000-00000fff : Reserved\n100000000-13fffffff : Persistent Memory\n  \
                  100000000-13fffffff : namespace0.0\n140000000-17fffffff : System RAM\n";
        assert_eq!(
            iomem_lines(io, 0x1_0000_0000, 1 << 30),
            vec![
                "100000000-13fffffff : Persistent Memory",
                "  100000000-13fffffff : namespace0.0"
            ]
        );
    }

    #[test]
    fn coverage_is_judged_both_ways() {
        const M: u64 = 1 << 20;
        let ns = ns();
        let none = CoreHeader::from_loads(&[(0x10_0000, 1 << 30)]);
        let all = CoreHeader::from_loads(&[(0x10_0000, 1 << 30), (ns.start, 18 * M)]);
        let half = CoreHeader::from_loads(&[(ns.start, 2 * M)]);
        let e = judge_coverage(&none, &ns, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dump misses the device vmemmap 0x100000000-0x1011fffff of namespace0.0"
        );
        assert!(matches!(
            judge_coverage(&half, &ns, true),
            Err(VerifyError::DeviceVmemmapMissing { ref partly, .. }) if partly.contains("0x100200000-0x1011fffff")
        ));
        assert!(judge_coverage(&all, &ns, true).is_ok());
        // Torn down: absent is right, any overlap is not.
        assert!(judge_coverage(&none, &ns, false).is_ok());
        for h in [&all, &half] {
            assert!(matches!(
                judge_coverage(h, &ns, false),
                Err(VerifyError::DeviceVmemmapPresent { .. })
            ));
        }
    }

    #[test]
    fn bytes_are_compared() {
        let ns = ns();
        let reference: Vec<u8> = (0..3 * 4096).map(|i| (i % 251) as u8).collect();
        assert!(judge_bytes(&ns, &reference, &reference).is_ok());
        let mut other = reference.clone();
        other[4096 + 10] ^= 1;
        let e = judge_bytes(&ns, &reference, &other)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 of 3 pages differ; first difference at 0x10000100a"),
            "{e}"
        );
        assert!(judge_bytes(&ns, &reference, &reference[..4096]).is_err());
    }

    #[test]
    fn the_reference_must_hold_an_info_block_and_struct_pages() {
        let mut b = vec![0u8; MEMMAP_OFFSET + 4 * STRUCT_PAGE];
        assert!(judge_reference(Mode::Fsdax, &b).is_err());
        b[INFO_OFFSET..INFO_OFFSET + 16].copy_from_slice(b"NVDIMM_PFN_INFO\0");
        assert!(judge_reference(Mode::Fsdax, &b)
            .unwrap_err()
            .contains("no struct page"));
        b[MEMMAP_OFFSET + STRUCT_PAGE] = 1;
        assert!(judge_reference(Mode::Fsdax, &b)
            .unwrap()
            .contains("1 non-zero struct pages"));
        assert!(judge_reference(Mode::Devdax, &b).is_err());
    }

    #[test]
    fn capture_drivers() {
        let ok = "driver nd_bus\ndriver nd_region\ndriver nvdimm\nbound region0=nd_region\n";
        assert!(judge_capture_drivers(ok).is_ok());
        let probed = "driver nd_pmem\ndriver nd_region\nbound namespace0.0=nd_pmem\n";
        assert!(matches!(
            judge_capture_drivers(probed),
            Err(VerifyError::PmemProbedInCapture(_))
        ));
        // No listing at all is no evidence.
        assert!(judge_capture_drivers("").is_err());
    }

    /// The info block the host writes on pseries: the one a pseries guest (Linux 7.3, radix,
    /// 64 KiB pages) accepted and bound in map=dev mode (hook: `add_device_vmemmap
    /// 0x80000000-0x801fffff`), byte for byte in its fields and checksum.
    #[test]
    fn info_block_as_the_kernel_accepts_it() {
        let p = parse_pfn_settings(
            "x\n@@PFNDEV pfn0.0 11111111-2222-4333-8444-555555555555 \
             66666666-7777-4888-9999-aaaaaaaaaaaa 0x80000000 1073741824 2097152\n",
        )
        .expect("settings");
        assert_eq!(p.dev, "pfn0.0");
        assert_eq!(p.ns_uuid[..4], [0x11; 4]);
        assert_eq!(p.uuid[15], 0xaa);
        let (b, dataoff) =
            info_block(Mode::Fsdax, &p, 64 << 10, PPC64_RADIX_COMPAT_ALIGN).expect("block");
        assert_eq!(dataoff, 0x20_0000);
        assert_eq!(b.len(), 4096);
        assert_eq!(&b[..16], b"NVDIMM_PFN_INFO\0");
        assert_eq!(u64::from_le_bytes(b[64..72].try_into().unwrap()), 16352);
        assert_eq!(
            u64::from_le_bytes(b[4088..].try_into().unwrap()),
            0x3d51_f09c_169a_677e
        );
        // The checksum is over the block with the checksum field zero.
        let mut z = b.clone();
        z[4088..].fill(0);
        assert_eq!(fletcher64(&z), 0x3d51_f09c_169a_677e);
        // devdax: the other signature, the same layout.
        let (d, _) = info_block(Mode::Devdax, &p, 64 << 10, PPC64_RADIX_COMPAT_ALIGN).unwrap();
        assert_eq!(&d[..16], b"NVDIMM_DAX_INFO\0");
        // x86_64 (4 KiB pages): the data offset the q35 kernel chose, 18 MiB.
        let x = PfnSettings {
            start: 0x1_0000_0000,
            ..p.clone()
        };
        assert_eq!(
            info_block(Mode::Fsdax, &x, 4096, 4096).unwrap().1,
            0x120_0000
        );
        // A namespace too small for its alignment, a misaligned start: refused.
        let small = PfnSettings {
            size: 2 << 20,
            ..p.clone()
        };
        assert!(info_block(Mode::Fsdax, &small, 64 << 10, 2 << 20).is_err());
        let odd = PfnSettings {
            start: 0x8001_0000,
            ..p.clone()
        };
        assert!(info_block(Mode::Fsdax, &odd, 64 << 10, 2 << 20).is_err());
        // A label-less namespace's parent uuid.
        assert_eq!(parse_uuid(NULL_UUID), Some([0; 16]));
        for bad in ["1111-2222", "11111111-2222-4333-8444-55555555555g", ""] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn labeled_and_label_less_namespace_steps() {
        assert!(namespace_steps(false).contains("drivers/nd_pmem/unbind"));
        let l = namespace_steps(true);
        assert!(l.contains("region0/namespace_seed"), "{l}");
        // uuid first: size_store refuses a namespace without one.
        assert!(l.find("/uuid").unwrap() < l.find("/size").unwrap(), "{l}");
    }
}
