//! Builds the guests' initramfs images (newc cpio): busybox, kexec-tools, makedumpfile with their
//! shared libraries, the init script, and for the first kernel the capture kernel and its initramfs.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::Command,
};

use crate::error::{Error, IoContext, Result};

const INIT: &str = include_str!("../../guest/init.sh");

enum Node {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    CharDev { major: u32, minor: u32 },
}

/// A set of paths to put into one archive.
#[derive(Default)]
struct Tree(BTreeMap<String, Node>);

impl Tree {
    fn dir(&mut self, path: &str) {
        let mut p = String::new();
        for part in path.trim_matches('/').split('/') {
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str(part);
            self.0.entry(p.clone()).or_insert(Node::Dir);
        }
    }

    fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        if let Some((parent, _)) = path.trim_start_matches('/').rsplit_once('/') {
            self.dir(parent);
        }
        self.0.insert(
            path.trim_start_matches('/').to_string(),
            Node::File { data, mode },
        );
    }

    fn host_file(&mut self, host: &Path, guest: &str, mode: u32) -> Result<()> {
        let data = fs::read(host).ctx(|| format!("reading {}", host.display()))?;
        self.file(guest, data, mode);
        Ok(())
    }

    /// Adds a host program as `/usr/bin/<name>` and every library `ldd` says it needs (none for
    /// a static one). `host` is a path, or a name looked up in the usual directories.
    fn program(&mut self, host: &str) -> Result<()> {
        let path = find_program(host)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(host);
        self.host_file(&path, &format!("usr/bin/{name}"), 0o755)?;
        let out = Command::new("ldd")
            .arg(&path)
            .output()
            .ctx(|| format!("ldd {}", path.display()))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            for tok in line.split_whitespace().filter(|t| t.starts_with('/')) {
                let real = fs::canonicalize(tok).ctx(|| format!("resolving {tok}"))?;
                self.host_file(&real, tok, 0o755)?;
            }
        }
        Ok(())
    }

    fn base(&mut self) -> Result<()> {
        for d in [
            "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "boot",
        ] {
            self.dir(d);
        }
        self.0
            .insert("dev/console".into(), Node::CharDev { major: 5, minor: 1 });
        self.host_file(Path::new("/bin/busybox"), "bin/busybox", 0o755)?;
        self.file("init", INIT.as_bytes().to_vec(), 0o755);
        self.program("makedumpfile")
    }

    fn write(&self, out: &Path) -> Result<()> {
        let tmp = out.with_extension("tmp");
        let f = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::new(f);
        for (ino, (path, node)) in self.0.iter().enumerate() {
            let b = cpio::newc::Builder::new(path).ino(ino as u32 + 1).nlink(1);
            let io = match node {
                Node::Dir => b.mode(0o040755).write(&mut w, 0).finish().map(|_| ()),
                Node::CharDev { major, minor } => b
                    .mode(0o020600)
                    .rdev_major(*major)
                    .rdev_minor(*minor)
                    .write(&mut w, 0)
                    .finish()
                    .map(|_| ()),
                Node::File { data, mode } => {
                    let size = u32::try_from(data.len())
                        .map_err(|_| Error::Unexpected(format!("{path} too large for cpio")))?;
                    let mut fw = b.mode(0o100000 | mode).write(&mut w, size);
                    fw.write_all(data).and_then(|_| fw.finish().map(|_| ()))
                }
            };
            io.ctx(|| format!("writing {path} into {}", out.display()))?;
        }
        cpio::newc::trailer(&mut w).ctx(|| "cpio trailer".into())?;
        w.flush().ctx(|| "flushing cpio".into())?;
        drop(w);
        fs::rename(&tmp, out).ctx(|| format!("renaming {}", out.display()))
    }
}

/// `name` if it is a path, else the first of the usual directories that has it.
fn find_program(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Unexpected(format!("program {name} not found on the host")))
}

/// The two images: one for the first (production) kernel, one for the capture kernel.
pub struct Images {
    /// initramfs of the first kernel (contains the capture kernel and its initramfs).
    pub first: PathBuf,
}

/// Builds the images for `kernel` into `dir`. The capture kernel is the same bzImage.
pub fn build(kernel: &Path, kexec: &Path, pattern_tool: &Path, dir: &Path) -> Result<Images> {
    build_with(kernel, kexec, pattern_tool, None, dir)
}

/// As [`build`], plus `udevadm` and the project's udev rules (in `/etc/udev/rules.d`).
pub fn build_with(
    kernel: &Path,
    kexec: &Path,
    pattern_tool: &Path,
    udev: Option<(&Path, &Path)>,
    dir: &Path,
) -> Result<Images> {
    fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let mut capture = Tree::default();
    capture.base()?;
    let capture_path = dir.join("capture.cpio");
    capture.write(&capture_path)?;

    let mut first = Tree::default();
    first.base()?;
    first.program(
        kexec
            .to_str()
            .ok_or_else(|| Error::Unexpected("kexec path".into()))?,
    )?;
    first.program(
        pattern_tool
            .to_str()
            .ok_or_else(|| Error::Unexpected("pattern tool path".into()))?,
    )?;
    let bench = pattern_tool.with_file_name("crashhp-hotplug-bench");
    first.program(
        bench
            .to_str()
            .ok_or_else(|| Error::Unexpected("bench tool path".into()))?,
    )?;
    if let Some((udevadm, rules)) = udev {
        first.program(
            udevadm
                .to_str()
                .ok_or_else(|| Error::Unexpected("udevadm path".into()))?,
        )?;
        for e in fs::read_dir(rules).ctx(|| format!("reading {}", rules.display()))? {
            let p = e.ctx(|| "listing rules".into())?.path();
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                if name.ends_with(".rules") {
                    first.host_file(&p, &format!("etc/udev/rules.d/{name}"), 0o644)?;
                }
            }
        }
    }
    first.host_file(kernel, "boot/bzImage", 0o644)?;
    first.host_file(&capture_path, "boot/capture.cpio", 0o644)?;
    let first_path = dir.join("first.cpio");
    first.write(&first_path)?;
    Ok(Images { first: first_path })
}
