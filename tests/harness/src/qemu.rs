//! One QEMU guest under TCG (any [`Machine`]): console on stdio, QMP on a unix socket, a scratch
//! disk that carries dump bytes from the guest to the host.

use std::{
    fs::{self, File},
    io::{Read, Seek, SeekFrom},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use qapi::{qmp, Qmp};
use serde_json::{json, Value};

use crate::{
    console::Console,
    error::{Error, IoContext, Result},
    machine::Machine,
};

type QmpStream = Qmp<qapi::Stream<std::io::BufReader<UnixStream>, UnixStream>>;

/// Block size of the scratch disk transfers.
const BLK: u64 = 4096;
/// Size of the scratch disk.
const DISK_SIZE: u64 = 512 << 20;

/// What to boot.
pub struct VmConfig {
    /// The machine profile.
    pub machine: Machine,
    /// The QEMU program, if not the machine's default (the fadump QEMU wrapper).
    pub qemu: Option<PathBuf>,
    /// bzImage (x86_64) or vmlinux (ppc64le).
    pub kernel: PathBuf,
    /// initramfs (newc cpio).
    pub initrd: PathBuf,
    /// Kernel command line.
    pub append: String,
    /// Directory for the console log, sockets and the scratch disk.
    pub workdir: PathBuf,
    /// DIMM slots (at most 256) and the most memory they may add, in GiB.
    pub slots: (u32, u32),
    /// An NVDIMM (q35: label-less; pseries: with a label area): its host backing file and size
    /// in bytes, labels included. The file is created (sparse, zero) if missing.
    pub nvdimm: Option<(PathBuf, u64)>,
    /// Boot memory in GiB, if not the machine's.
    pub boot_mem_gib: Option<u32>,
}

impl VmConfig {
    /// 8 DIMM slots, up to 8 GiB: what the scenarios need.
    pub const SLOTS: (u32, u32) = (8, 8);
}

/// A running guest.
pub struct Vm {
    child: Child,
    /// The serial console.
    pub console: Console,
    qmp: QmpClient,
    disk: PathBuf,
    disk_next: u64,
    seq: u64,
}

/// The exit status after an end marker: the digits that start its line. Kernel console lines (a
/// storm's printk markers) may come between the marker and the digits, or right after the digits
/// on the same line: they are skipped. `None` until the line is complete; -1 if it holds no
/// number.
fn exit_status(mut rest: &str) -> Option<i32> {
    loop {
        let nl = rest.find('\n')?;
        let line = rest[..nl].trim_start_matches([' ', '\r']);
        if line.starts_with('[') {
            rest = &rest[nl + 1..];
            continue;
        }
        let end = line
            .char_indices()
            .find(|&(k, c)| !(c.is_ascii_digit() || (k == 0 && c == '-')))
            .map_or(line.len(), |(k, _)| k);
        return Some(line[..end].parse::<i32>().unwrap_or(-1));
    }
}

impl Vm {
    /// Starts QEMU and connects to QMP.
    pub fn start(cfg: &VmConfig) -> Result<Self> {
        fs::create_dir_all(&cfg.workdir).ctx(|| format!("creating {}", cfg.workdir.display()))?;
        let qmp_path = cfg.workdir.join("qmp.sock");
        let _ = fs::remove_file(&qmp_path);
        let disk = cfg.workdir.join("transfer.img");
        let f = File::create(&disk).ctx(|| format!("creating {}", disk.display()))?;
        f.set_len(DISK_SIZE)
            .ctx(|| "sizing the transfer disk".into())?;
        if let Some((path, size)) = &cfg.nvdimm {
            if !cfg.machine.has_nvdimm() {
                return Err(Error::Unexpected(format!(
                    "an NVDIMM is only set up on q35 and pseries, not on {:?}",
                    cfg.machine
                )));
            }
            let f = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .ctx(|| format!("creating {}", path.display()))?;
            f.set_len(*size)
                .ctx(|| format!("sizing {}", path.display()))?;
        }
        let log = File::create(cfg.workdir.join("console.log")).ctx(|| "console log".into())?;
        let qemu = cfg
            .qemu
            .clone()
            .unwrap_or_else(|| PathBuf::from(cfg.machine.qemu()));
        let child = Command::new(&qemu)
            .args(["-accel", "tcg", "-nodefaults", "-display", "none"])
            .args(cfg.machine.qemu_args(
                cfg.boot_mem_gib,
                cfg.slots,
                cfg.nvdimm.as_ref().map(|(p, n)| (p.as_path(), *n)),
            ))
            .arg("-kernel")
            .arg(&cfg.kernel)
            .arg("-initrd")
            .arg(&cfg.initrd)
            .args(["-append", &cfg.append])
            .args(["-serial", "stdio", "-monitor", "none"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=virtio,cache=writethrough",
                disk.display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                File::create(cfg.workdir.join("qemu.stderr")).ctx(|| "qemu stderr".into())?,
            ))
            .spawn()
            .ctx(|| format!("starting {}", qemu.display()))?;
        // Until the Vm owns it, a failure must not leave QEMU running (a failed QMP handshake
        // once left a guest behind for the rest of the session).
        let mut reap = Reap(Some(child));
        let child = reap
            .0
            .as_mut()
            .ok_or_else(|| Error::Unexpected("no QEMU".into()))?;
        let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(Error::Unexpected("qemu stdio not captured".into()));
        };
        let console = Console::new(out, inp, log);
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(&qmp_path) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    if let Ok(Some(st)) = child.try_wait() {
                        return Err(Error::Unexpected(format!(
                            "QEMU exited ({st}) before QMP came up: {e}; see {}",
                            cfg.workdir.join("qemu.stderr").display()
                        )));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(Error::Io {
                        what: "connecting to QMP".into(),
                        source: e,
                    })
                }
            }
        };
        let qmp = QmpClient::new(stream)?;
        let child = reap
            .0
            .take()
            .ok_or_else(|| Error::Unexpected("no QEMU".into()))?;
        Ok(Self {
            child,
            console,
            qmp,
            disk,
            disk_next: 0,
            seq: 0,
        })
    }

    /// Hot-adds a DIMM of `size` bytes with QEMU id `id`; returns its guest physical address.
    pub fn add_dimm(&mut self, id: &str, size: u64) -> Result<u64> {
        self.qmp.add_dimm(id, size)
    }

    /// Unplugs DIMM `id` (the guest must release it) and deletes its memory backend.
    pub fn remove_dimm(&mut self, id: &str, timeout: Duration) -> Result<()> {
        self.qmp.remove_dimm(id, timeout)
    }

    /// `(id, address, size)` of every memory device QEMU knows (DIMMs and NVDIMMs).
    pub fn memory_devices(&mut self) -> Result<Vec<(String, u64, u64)>> {
        self.qmp.dimms()
    }

    /// Hot-adds one CPU in the first free hotpluggable slot, with QEMU device id `id`.
    pub fn add_cpu(&mut self, id: &str) -> Result<()> {
        self.qmp.add_cpu(id)
    }

    /// Runs `cmd` in the guest shell; returns its exit status and output.
    pub fn sh_rc(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        self.seq += 1;
        let n = self.seq;
        let from = self.console.cursor();
        // The markers are printed by printf so that the typed command line never contains them.
        self.console.send(&format!(
            "printf '@@%s%d\\n' B {n}; ( {cmd} ); printf '@@%s%d:%d\\n' E {n} $?\n"
        ))?;
        let begin = format!("@@B{n}\n");
        let end_tag = format!("@@E{n}:");
        let what = format!("guest command `{cmd}`");
        let start = self.console.wait_str(&begin, from, timeout)?;
        let (rc, end) = self.console.wait_for(&what, start, timeout, |t| {
            let i = t.find(&end_tag)?;
            Some((exit_status(&t[i + end_tag.len()..])?, i))
        })?;
        Ok((rc, self.console.slice(start, end)))
    }

    /// Runs `cmd` in the guest shell and fails unless it exits 0. Returns its output.
    pub fn sh(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (rc, output) = self.sh_rc(cmd, timeout)?;
        if rc != 0 {
            return Err(Error::Guest {
                cmd: cmd.into(),
                rc,
                output,
            });
        }
        Ok(output)
    }

    /// Copies `len` bytes at `offset` of the guest file `src` to the host, through the transfer
    /// disk (`dd` in the guest, a read of the image file on the host).
    pub fn fetch(&mut self, src: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let first = offset / BLK;
        let last = (offset + len).div_ceil(BLK);
        let count = last - first;
        if (self.disk_next + count) * BLK > DISK_SIZE {
            return Err(Error::Unexpected("transfer disk full".into()));
        }
        let seek = self.disk_next;
        self.disk_next += count;
        self.sh(
            &format!("dd if={src} of=/dev/vda bs={BLK} skip={first} seek={seek} count={count} conv=notrunc,fsync 2>/dev/null"),
            Duration::from_secs(120),
        )?;
        let mut f = File::open(&self.disk).ctx(|| "opening the transfer disk".into())?;
        f.seek(SeekFrom::Start(seek * BLK + (offset - first * BLK)))
            .ctx(|| "seeking the transfer disk".into())?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf)
            .ctx(|| "reading the transfer disk".into())?;
        Ok(buf)
    }

    /// A human monitor command's output (diagnostics of a guest that stopped answering).
    pub fn monitor(&mut self, command: &str) -> Result<String> {
        self.qmp.exec(
            "human-monitor-command",
            &qmp::human_monitor_command {
                command_line: command.into(),
                cpu_index: None,
            },
        )
    }

    /// Asks QEMU to quit and reaps it.
    pub fn quit(mut self) {
        let _ = self.qmp.exec("quit", &qmp::quit {});
        let _ = self.child.wait();
    }
}

/// A QEMU process killed and reaped on drop unless taken out.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A QMP connection (the `qapi` crate), with the hotplug commands the scenarios use.
pub struct QmpClient {
    qmp: QmpStream,
}

impl QmpClient {
    /// Takes over a connected QMP socket and negotiates capabilities.
    pub fn new(stream: UnixStream) -> Result<Self> {
        let w = stream.try_clone().ctx(|| "cloning the QMP socket".into())?;
        let mut qmp = Qmp::new(qapi::Stream::new(std::io::BufReader::new(stream), w));
        qmp.handshake().map_err(|e| Error::Qmp {
            command: "qmp_capabilities".into(),
            message: e.to_string(),
        })?;
        Ok(Self { qmp })
    }

    pub(crate) fn exec<C: qapi::Command>(&mut self, name: &str, cmd: &C) -> Result<C::Ok> {
        let r = self.qmp.execute(cmd).map_err(|e| Error::Qmp {
            command: name.into(),
            message: e.to_string(),
        });
        // Events (ACPI_DEVICE_OST, DEVICE_DELETED, ...) are not used; keep the queue short.
        let _ = self.qmp.events().count();
        r
    }

    /// Hot-adds a DIMM of `size` bytes with QEMU id `id`; returns its guest physical address.
    pub fn add_dimm(&mut self, id: &str, size: u64) -> Result<u64> {
        let backend: qmp::ObjectOptions = serde_json::from_value(json!({
            "qom-type": "memory-backend-ram", "id": format!("mem-{id}"), "size": size
        }))
        .map_err(|e| Error::Unexpected(format!("object-add arguments: {e}")))?;
        self.exec("object-add", &qmp::object_add(backend))?;
        let mut args = serde_json::Map::new();
        args.insert("memdev".into(), json!(format!("mem-{id}")));
        self.exec(
            "device_add pc-dimm",
            &qmp::device_add {
                driver: "pc-dimm".into(),
                id: Some(id.into()),
                bus: None,
                arguments: args,
            },
        )?;
        self.dimms()?
            .into_iter()
            .find(|d| d.0 == id)
            .map(|d| d.1)
            .ok_or_else(|| {
                Error::Unexpected(format!("DIMM {id} not listed by query-memory-devices"))
            })
    }

    /// Unplugs DIMM `id` (the guest must release it) and deletes its memory backend.
    pub fn remove_dimm(&mut self, id: &str, timeout: Duration) -> Result<()> {
        self.exec("device_del", &qmp::device_del { id: id.into() })?;
        let deadline = Instant::now() + timeout;
        while self.dimms()?.iter().any(|d| d.0 == id) {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the guest to release DIMM {id}"),
                    after: timeout,
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.exec(
            "object-del",
            &qmp::object_del {
                id: format!("mem-{id}"),
            },
        )
        .map(|_| ())
    }

    /// `(id, address, size)` of every DIMM QEMU knows.
    pub fn dimms(&mut self) -> Result<Vec<(String, u64, u64)>> {
        let list = self.exec("query-memory-devices", &qmp::query_memory_devices {})?;
        let v = serde_json::to_value(&list).map_err(|e| Error::Unexpected(e.to_string()))?;
        let mut out = Vec::new();
        for d in v.as_array().into_iter().flatten() {
            let data = &d["data"];
            if let (Some(id), Some(addr), Some(size)) = (
                data["id"].as_str(),
                data["addr"].as_u64(),
                data["size"].as_u64(),
            ) {
                out.push((id.to_string(), addr, size));
            }
        }
        Ok(out)
    }

    /// Hot-adds one CPU in the first free hotpluggable slot; returns the QEMU device id.
    pub fn add_cpu(&mut self, id: &str) -> Result<()> {
        let cpus = self.exec("query-hotpluggable-cpus", &qmp::query_hotpluggable_cpus {})?;
        let free = cpus
            .into_iter()
            .filter(|c| c.qom_path.is_none())
            .min_by_key(|c| (c.props.socket_id, c.props.core_id, c.props.thread_id))
            .ok_or_else(|| Error::Unexpected("no free hotpluggable CPU slot".into()))?;
        let props =
            serde_json::to_value(&free.props).map_err(|e| Error::Unexpected(e.to_string()))?;
        let Value::Object(args) = props else {
            return Err(Error::Unexpected("CPU props are not an object".into()));
        };
        self.exec(
            "device_add cpu",
            &qmp::device_add {
                driver: free.type_,
                id: Some(id.into()),
                bus: None,
                arguments: args,
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::exit_status;

    #[test]
    fn exit_status_survives_interleaved_kernel_lines() {
        assert_eq!(exit_status("0\n"), Some(0));
        assert_eq!(exit_status("1\r\n"), Some(1));
        assert_eq!(exit_status("0[    2.053738] @@ST 33 offline\r\n"), Some(0));
        assert_eq!(
            exit_status("[    2.053738] @@ST 33 offline\r\n2\r\n"),
            Some(2)
        );
        assert_eq!(exit_status("[    2.053738] @@ST 33 offline\r\n"), None);
        assert_eq!(exit_status("0"), None);
        assert_eq!(exit_status("x\n"), Some(-1));
        assert_eq!(exit_status("-1\n"), Some(-1));
    }
}
