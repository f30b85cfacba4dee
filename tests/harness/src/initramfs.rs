//! Builds the guests' initramfs images (newc cpio): busybox, kexec-tools, makedumpfile with their
//! shared libraries, the init script, and for the first kernel the capture kernel and its initramfs.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::Command,
};

use crate::{
    error::{Error, IoContext, Result},
    machine::Machine,
};

const INIT: &str = include_str!("../../guest/init.sh");

enum Node {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    CharDev { major: u32, minor: u32 },
    Symlink(String),
}

/// A set of paths to put into one archive.
#[derive(Default)]
struct Tree(BTreeMap<String, Node>);

impl Tree {
    fn dir(&mut self, path: &str) {
        let mut p = String::new();
        for part in path.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
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

    /// Adds the host directory `host` at `guest` (files, directories and symbolic links).
    fn host_tree(&mut self, host: &Path, guest: &str) -> Result<()> {
        for e in fs::read_dir(host).ctx(|| format!("reading {}", host.display()))? {
            let e = e.ctx(|| format!("listing {}", host.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let g = format!("{}/{name}", guest.trim_end_matches('/'));
            let ty = e.file_type().ctx(|| format!("stat {}", path.display()))?;
            if ty.is_symlink() {
                let target = fs::read_link(&path).ctx(|| format!("readlink {}", path.display()))?;
                self.dir(guest);
                self.0.insert(
                    g.trim_start_matches('/').to_string(),
                    Node::Symlink(target.to_string_lossy().into_owned()),
                );
            } else if ty.is_dir() {
                self.dir(&g);
                self.host_tree(&path, &g)?;
            } else {
                self.host_file(&path, &g, 0o755)?;
            }
        }
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

    fn base(&mut self, u: &Userland) -> Result<()> {
        for d in [
            "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "boot",
        ] {
            self.dir(d);
        }
        self.0
            .insert("dev/console".into(), Node::CharDev { major: 5, minor: 1 });
        self.host_file(&u.busybox, "bin/busybox", 0o755)?;
        self.file("init", INIT.as_bytes().to_vec(), 0o755);
        self.program(path_str(&u.makedumpfile, "makedumpfile")?)
    }

    fn write(&self, out: &Path) -> Result<()> {
        let tmp = out.with_extension("tmp");
        let f = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::new(f);
        for (ino, (path, node)) in self.0.iter().enumerate() {
            let b = cpio::newc::Builder::new(path).ino(ino as u32 + 1).nlink(1);
            let io = match node {
                Node::Dir => b.mode(0o040755).write(&mut w, 0).finish().map(|_| ()),
                Node::Symlink(target) => {
                    let size = target.len() as u32;
                    let mut fw = b.mode(0o120777).write(&mut w, size);
                    fw.write_all(target.as_bytes())
                        .and_then(|_| fw.finish().map(|_| ()))
                }
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

fn path_str<'a>(p: &'a Path, what: &str) -> Result<&'a str> {
    p.to_str()
        .ok_or_else(|| Error::Unexpected(format!("{what} path {} is not UTF-8", p.display())))
}

/// The guest programs of one architecture.
#[derive(Clone, Debug)]
pub struct Userland {
    /// A static busybox.
    pub busybox: PathBuf,
    /// makedumpfile: a path, or a name looked up on the host (its libraries come along).
    pub makedumpfile: PathBuf,
    /// The kexec binary (kdump machines).
    pub kexec: PathBuf,
    /// The static `crashhp-pattern` (with `crashhp-hotplug-bench` next to it).
    pub pattern_tool: PathBuf,
    /// A directory copied whole into the first kernel's image (programs with their own
    /// libraries and loader, e.g. the ppc64el udevadm).
    pub tree: Option<PathBuf>,
}

impl Userland {
    /// The x86_64 guest: the host's busybox and makedumpfile.
    pub fn host(kexec: &Path, pattern_tool: &Path) -> Self {
        Self {
            busybox: PathBuf::from("/bin/busybox"),
            makedumpfile: PathBuf::from("makedumpfile"),
            kexec: kexec.to_path_buf(),
            pattern_tool: pattern_tool.to_path_buf(),
            tree: None,
        }
    }
}

/// The first kernel's image (it contains the capture kernel and the capture image).
pub struct Images {
    /// initramfs of the first kernel.
    pub first: PathBuf,
}

/// Where the first kernel's image holds the kernel that kdump loads (the same kernel).
pub const GUEST_KERNEL: &str = "/boot/kernel";

/// Builds the images for `kernel` into `dir`, with `udev` (udevadm and the directory of the
/// rules) if given: the rules `machine` would install go to `/etc/udev/rules.d`.
pub fn build(
    kernel: &Path,
    u: &Userland,
    machine: Machine,
    udev: Option<(&Path, &Path)>,
    dir: &Path,
) -> Result<Images> {
    fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let mut capture = Tree::default();
    capture.base(u)?;
    let capture_path = dir.join("capture.cpio");
    capture.write(&capture_path)?;

    let mut first = Tree::default();
    first.base(u)?;
    if machine.kdump() {
        first.program(path_str(&u.kexec, "kexec")?)?;
    }
    first.program(path_str(&u.pattern_tool, "pattern tool")?)?;
    for (tool, what) in [
        ("crashhp-hotplug-bench", "bench tool"),
        ("crashhp-debugfs-fuzz", "debugfs fuzzer"),
        ("crashhp-tlb-storm", "TLB flush storm"),
    ] {
        let p = u.pattern_tool.with_file_name(tool);
        if p.is_file() {
            first.program(path_str(&p, what)?)?;
        }
    }
    if let Some(t) = &u.tree {
        first.host_tree(t, "/")?;
    }
    if let Some((udevadm, rules)) = udev {
        first.program(path_str(udevadm, "udevadm")?)?;
        for e in fs::read_dir(rules).ctx(|| format!("reading {}", rules.display()))? {
            let p = e.ctx(|| "listing rules".into())?.path();
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                if machine.udev_rules(name) {
                    first.host_file(&p, &format!("etc/udev/rules.d/{name}"), 0o644)?;
                }
            }
        }
    }
    if machine.kdump() {
        first.host_file(kernel, GUEST_KERNEL, 0o644)?;
        first.host_file(&capture_path, "boot/capture.cpio", 0o644)?;
    }
    let first_path = dir.join("first.cpio");
    first.write(&first_path)?;
    Ok(Images { first: first_path })
}
