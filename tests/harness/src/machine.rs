//! The machines the scenarios run on: what differs between an x86_64 q35 guest, a pseries guest
//! that takes its dump with kdump, and a pseries guest that takes it with fadump. Everything else
//! (initramfs, `/init`, console, QMP, transfer disk, pattern tool, dump judge) is shared.

use std::{path::Path, time::Duration};

/// QEMU id of the scenario's NVDIMM (its memory backend is `<id>-mem`).
pub const NVDIMM_ID: &str = "nvdimm0";

/// What the capture kernel's command line gets on a machine with a pmem namespace: the pmem
/// (`nd_pmem`) and device-DAX (`dax_pmem`) drivers are never registered, so nothing probes the
/// namespace and rebuilds its info block and memmap over the crashed kernel's.
pub const CAPTURE_NO_PMEM_PROBE: &str = "initcall_blacklist=nd_pmem_driver_init,dax_pmem_init";

/// The same on pseries: the PAPR SCM driver (`papr_scm`, built in) is not registered either, so
/// the capture kernel neither binds the DIMM again (`H_SCM_BIND_MEM`) nor reads its labels.
pub const CAPTURE_NO_PMEM_PROBE_PSERIES: &str =
    "initcall_blacklist=papr_scm_init,nd_pmem_driver_init,dax_pmem_init";

/// The label area of the pseries NVDIMM (QEMU: `label-size` is required on pseries, at least
/// 128 KiB; the backing file holds the data, then the labels).
pub const PSERIES_NVDIMM_LABEL: u64 = 128 << 10;

/// The pseries NVDIMM's QEMU `uuid` (required on pseries; fixed, so that runs are alike).
pub const PSERIES_NVDIMM_UUID: &str = "6a1b7c3e-2f4d-4e5a-9b8c-0d1e2f3a4b5c";

/// A machine profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// x86_64 q35 under TCG, kdump.
    Q35,
    /// ppc64le pseries (POWER9, TCG, VOF firmware), kdump: the capture kernel is loaded with
    /// kexec and gets its own FDT, whose `/cpus` the kernel keeps current.
    Pseries,
    /// ppc64le pseries with firmware-assisted dump (`fadump=on`, QEMU >= 10.2): no kexec; the
    /// crash is a machine reset after `ibm,os-term`, and the same kernel boots again and builds
    /// the dump's elfcorehdr itself.
    Fadump,
}

impl Machine {
    /// A PowerPC machine.
    pub fn is_ppc(self) -> bool {
        self != Machine::Q35
    }

    /// The dump is taken by a kexec-loaded capture kernel.
    pub fn kdump(self) -> bool {
        self != Machine::Fadump
    }

    /// The QEMU program, unless the scenario names another (the fadump QEMU wrapper).
    pub fn qemu(self) -> &'static str {
        match self {
            Machine::Q35 => "qemu-system-x86_64",
            Machine::Pseries | Machine::Fadump => "qemu-system-ppc64",
        }
    }

    /// CPUs online at boot. fadump: QEMU sizes the register save area for `maxcpus` but saves
    /// the registers of present vCPUs only, and the kernel rejects a dump with absent possible
    /// CPUs ("Dump taken by platform is incomplete"): one CPU at boot, the second hot-added
    /// before the crash.
    pub fn boot_cpus(self) -> u32 {
        match self {
            Machine::Q35 | Machine::Pseries => 2,
            Machine::Fadump => 1,
        }
    }

    /// Boot memory in GiB.
    fn boot_mem_gib(self) -> u32 {
        match self {
            Machine::Q35 => 1,
            // crashkernel=512M (the pseries capture kernel needs more than x86's) leaves room.
            Machine::Pseries | Machine::Fadump => 2,
        }
    }

    /// The guest kernel's page size.
    pub fn page_size(self) -> u64 {
        if self.is_ppc() {
            64 << 10
        } else {
            4 << 10
        }
    }

    /// Whether a pmem scenario can run on the machine: q35 (a label-less NVDIMM) and pseries
    /// kdump (`spapr-nvdimm`, labeled). fadump is not covered.
    pub fn has_nvdimm(self) -> bool {
        self != Machine::Fadump
    }

    /// The NVDIMM's label area: none on q35 (label-less), [`PSERIES_NVDIMM_LABEL`] on pseries.
    pub fn nvdimm_label_size(self) -> u64 {
        match self {
            Machine::Q35 => 0,
            Machine::Pseries | Machine::Fadump => PSERIES_NVDIMM_LABEL,
        }
    }

    /// QEMU arguments of the machine (not the kernel, initramfs, console or disks), with an
    /// NVDIMM backed by the host file `nvdimm` of `size` bytes (its label area included) if
    /// given (q35 and pseries: the caller refuses it elsewhere). The NVDIMM takes one of the
    /// slots and counts against `maxmem`.
    pub fn qemu_args(
        self,
        boot_mem_gib: Option<u32>,
        slots: (u32, u32),
        nvdimm: Option<(&Path, u64)>,
    ) -> Vec<String> {
        let boot = boot_mem_gib.unwrap_or(self.boot_mem_gib());
        let mem = format!("{boot}G,slots={},maxmem={}G", slots.0, slots.1 + boot);
        let smp = match self {
            Machine::Q35 | Machine::Pseries => "2,maxcpus=4",
            Machine::Fadump => "1,maxcpus=2",
        };
        let mut a: Vec<String> = match self {
            // The guest counts hotpluggable CPUs only when it detects a hypervisor; under TCG it
            // detects VMware through the backdoor port and the DMI serial.
            Machine::Q35 => [
                "-machine",
                if nvdimm.is_some() {
                    "q35,vmport=on,nvdimm=on"
                } else {
                    "q35,vmport=on"
                },
                "-cpu",
                "qemu64,-hypervisor",
                "-smbios",
                "type=1,serial=VMware-56-4d-00-00-00-00-00-00",
            ]
            .map(String::from)
            .to_vec(),
            // The cap-* settings only silence "TCG doesn't support requested feature" warnings.
            Machine::Pseries | Machine::Fadump => [
                "-cpu",
                "power9",
                "-machine",
                "pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off",
            ]
            .map(String::from)
            .to_vec(),
        };
        a.extend(["-m".into(), mem, "-smp".into(), smp.into()]);
        if let Some((path, size)) = nvdimm {
            a.extend([
                "-object".into(),
                format!(
                    "memory-backend-file,id={NVDIMM_ID}-mem,share=on,mem-path={},size={size}",
                    path.display()
                ),
                "-device".into(),
                match self {
                    // No label-size: a label-less DIMM gives one io namespace covering it, which
                    // busybox sysfs writes can turn into an fsdax or devdax namespace (no label
                    // writes, no ndctl).
                    Machine::Q35 => format!("nvdimm,id={NVDIMM_ID},memdev={NVDIMM_ID}-mem"),
                    // PAPR requires a label area and a uuid, and a size without the labels that
                    // is a multiple of 256 MiB (QEMU hw/ppc/spapr_nvdimm.c). The guest's
                    // namespace is labeled: the kernel writes the label index on first use.
                    Machine::Pseries | Machine::Fadump => format!(
                        "spapr-nvdimm,id={NVDIMM_ID},memdev={NVDIMM_ID}-mem,label-size={},\
                         uuid={PSERIES_NVDIMM_UUID}",
                        PSERIES_NVDIMM_LABEL
                    ),
                },
            ]);
        }
        // fadump's capture is a machine reset that QEMU performs after ibm,os-term.
        if self != Machine::Fadump {
            a.push("-no-reboot".into());
        }
        a
    }

    /// The first kernel's command line (the scenario adds its own options).
    pub fn first_append(self) -> &'static str {
        // Hot-added memory goes to ZONE_MOVABLE, so that it can be offlined again.
        match self {
            Machine::Q35 => {
                "console=ttyS0 crashkernel=256M memhp_default_state=online_movable panic=-1 printk.devkmsg=on"
            }
            // disable_tlbie: TLB invalidations by IPI and tlbiel instead of broadcast tlbie. QEMU
            // (TCG) runs a broadcast tlbie as exclusive work on all vCPUs, and the panic's
            // H_SIGNAL_SYS_RESET as a synchronous run_on_cpu from a vCPU: the two wait for each
            // other forever (crash while other CPUs flush TLBs: 8 of 24 runs hung without it, 0
            // of 16 with it; Documentation/ppc64le-notes.md). An emulator deadlock, not the
            // kernel's: real hypervisors signal the reset asynchronously.
            Machine::Pseries => {
                "console=hvc0 crashkernel=512M memhp_default_state=online_movable panic=-1 printk.devkmsg=on disable_tlbie"
            }
            Machine::Fadump => {
                "console=hvc0 fadump=on crashkernel=512M memhp_default_state=online_movable panic=-1 printk.devkmsg=on"
            }
        }
    }

    /// The capture kernel's command line (kdump machines).
    ///
    /// x86: without the two memory-hotplug options the capture kernel finds the hot-added DIMMs
    /// through ACPI and takes them as its own RAM (reading them from /proc/vmcore then fails).
    ///
    /// With `pmem` (the machine has an NVDIMM with a namespace): the capture kernel must not
    /// probe the namespace, or it rewrites the info block and the device-backed memmap that the
    /// dump is to hold (the NFIT comes with the ACPI tables; kexec-tools also passes PMEM ranges
    /// in its e820 table). The two initcalls that would register the pmem and device-DAX drivers
    /// are skipped (`initcall_blacklist` finds them by name: KALLSYMS).
    pub fn capture_append(self, pmem: bool) -> String {
        let base = match self {
            Machine::Q35 => {
                "console=ttyS0 irqpoll nr_cpus=1 reset_devices acpi_no_memhotplug \
                 memhp_default_state=offline panic=-1 rdinit=/init"
            }
            Machine::Pseries | Machine::Fadump => {
                "console=hvc0 irqpoll nr_cpus=1 reset_devices panic=-1 rdinit=/init"
            }
        };
        if pmem {
            let no_probe = match self {
                Machine::Q35 => CAPTURE_NO_PMEM_PROBE,
                Machine::Pseries | Machine::Fadump => CAPTURE_NO_PMEM_PROBE_PSERIES,
            };
            format!("{base} {no_probe}")
        } else {
            base.to_string()
        }
    }

    /// The `memory_hotplug.memmap_on_memory` value that puts the struct pages on hot-added
    /// memory, and what the parameter then reads. ppc64le: with 64 KiB pages a 256 MiB LMB's
    /// memmap is smaller than a pageblock, so `1` has no effect and `force` is needed.
    pub fn memmap_on_memory(self) -> (&'static str, &'static str) {
        match self {
            Machine::Q35 => ("1", "Y"),
            Machine::Pseries | Machine::Fadump => ("force", "force"),
        }
    }

    /// How long a boot (first kernel, or capture) may take to reach `/init` under TCG.
    pub fn boot_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Machine::Q35 => 180,
            Machine::Pseries => 300,
            // The firmware-assisted capture boots the whole kernel again, with all its memory.
            Machine::Fadump => 600,
        })
    }

    /// Crash on the highest online CPU (a hot-added one) rather than where the shell runs: on
    /// pseries the kdump capture kernel starts on the crashing CPU and boots only if its FDT
    /// lists it.
    pub fn crash_on_last_cpu(self) -> bool {
        self.is_ppc()
    }

    /// The suffix of the udev rules this machine's distribution would install.
    pub fn udev_rules(self, name: &str) -> bool {
        name.ends_with(".rules") && (name.ends_with("-ppc64.rules") == self.is_ppc())
    }
}
