//! The crash FDT `/cpus` editor against an independent FDT writer (`vm-fdt`) and parser (`fdt`):
//! every byte state an edit passes through must be an FDT that the capture kernel accepts
//! (libfdt's header checks) and whose `/cpus` lists exactly the old or exactly the new CPU nodes;
//! the new node has exactly the properties given; refused edits write nothing.

mod common;
use common::Recorder;
// The FDT tests use the kernel's barriers only (the ELF tests also use the old ones).
#[allow(dead_code)]
#[path = "common/order.rs"]
mod order;
use order::{check_every_state, Barriers, Explore, Journal};

#[path = "common/fdt_check.rs"]
mod fdt_check;
use fdt_check::{be, header_ok, strip_nops};

use crash_hotplug_model::fdt::{Fdt, FdtError, FDT_MAGIC};
use vm_fdt::FdtWriter;

/// A node's name and its properties.
type Node = (String, Vec<(String, Vec<u8>)>);

/// The CPU node names under `/cpus` as `fdt` parses them, with each node's properties.
fn cpus(b: &[u8]) -> Vec<Node> {
    assert!(header_ok(b), "libfdt would reject the header");
    let b = &strip_nops(b)[..];
    let f = fdt::Fdt::new(b).expect("fdt parses");
    let cpus = f.find_node("/cpus").expect("/cpus");
    cpus.children()
        .map(|c| {
            (
                c.name.to_string(),
                c.properties()
                    .map(|p| (p.name.to_string(), p.value.to_vec()))
                    .collect(),
            )
        })
        .collect()
}

/// `props` as the `(name, value)` pairs the editor takes.
fn as_list<N: AsRef<[u8]>>(props: &[(N, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    props.iter().map(|(n, v)| (n.as_ref(), &v[..])).collect()
}

/// `props` as the `fdt` crate's reading gives them back.
fn owned(props: &[(&str, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    props
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

fn cpu_props(reg: u32) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("device_type", b"cpu\0".to_vec()),
        ("reg", reg.to_be_bytes().to_vec()),
        (
            "ibm,ppc-interrupt-server#s",
            [reg, reg + 1]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
        ),
        ("clock-frequency", 1_000_000_000u32.to_be_bytes().to_vec()),
        ("ibm,pft-size", vec![0, 0, 0, 0, 0, 0, 0, 0x18]),
        ("64-bit", vec![]),
    ]
}

/// A pseries-like FDT with `n` CPU nodes, padded with `spare` free bytes at the end.
fn pseries(n: u32, spare: usize) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string("compatible", "qemu,pseries").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let chosen = w.begin_node("chosen").unwrap();
    w.property_string("bootargs", "console=hvc0").unwrap();
    w.end_node(chosen).unwrap();
    let cpus = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    for i in 0..n {
        let c = w
            .begin_node(&format!("PowerPC,POWER9@{:x}", i * 8))
            .unwrap();
        for (name, v) in cpu_props(i * 8) {
            w.property(name, &v).unwrap();
        }
        w.end_node(c).unwrap();
    }
    w.end_node(cpus).unwrap();
    let mem = w.begin_node("memory@0").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0, 0x4000_0000]).unwrap();
    w.end_node(mem).unwrap();
    let rtas = w.begin_node("rtas").unwrap();
    w.property_u32("linux,rtas-base", 0x2fff_0000).unwrap();
    w.end_node(rtas).unwrap();
    w.end_node(root).unwrap();
    let mut b = w.finish().unwrap();
    let total = b.len() + spare;
    b.resize(total, 0);
    b[4..8].copy_from_slice(&(total as u32).to_be_bytes());
    b
}

fn add(b: Vec<u8>, reg: u32) -> (Result<bool, FdtError>, Recorder) {
    let props = cpu_props(reg);
    let list = as_list(&props);
    let mut f = Fdt::open(Recorder::new(b)).expect("valid FDT");
    let name = format!("PowerPC,POWER9@{reg:x}");
    let r = f.add_cpu_node(name.as_bytes(), &list[..]);
    (r, f.into_segment())
}

#[test]
fn adding_a_cpu_is_valid_at_every_store_and_exact() {
    let b = pseries(2, 4096);
    let before = cpus(&b);
    let (r, rec) = add(b, 0x10);
    assert_eq!(r, Ok(true));
    let after = cpus(&rec.buf);
    assert_eq!(after.len(), 3);
    assert_eq!(&after[..2], &before[..]);
    let (name, props) = &after[2];
    assert_eq!(name, "PowerPC,POWER9@10");
    let want = owned(&cpu_props(0x10));
    assert_eq!(props, &want);
    // Everything else parses as before.
    let f = fdt::Fdt::new(&rec.buf).unwrap();
    assert_eq!(
        f.find_node("/chosen")
            .unwrap()
            .property("bootargs")
            .unwrap()
            .as_str(),
        Some("console=hvc0")
    );
    assert!(f.find_node("/rtas").is_some());
    for (k, st) in rec.states.iter().enumerate() {
        let c = cpus(st);
        assert!(
            c == before || c == after,
            "store {k}: /cpus is neither old nor new"
        );
    }
    // Only the two header cells are stores the parser sees.
    assert!(rec.states.len() > 2);
}

#[test]
fn existing_node_is_not_added_twice() {
    let b = pseries(2, 4096);
    let (r, rec) = add(b.clone(), 8);
    assert_eq!(r, Ok(false));
    assert!(rec.states.is_empty());
    assert_eq!(rec.buf, b);
}

#[test]
fn no_room_is_refused_before_any_write() {
    let b = pseries(2, 64);
    let (r, rec) = add(b.clone(), 0x10);
    assert!(
        matches!(r, Err(FdtError::Full { need, free }) if need > free),
        "{r:?}"
    );
    assert!(rec.states.is_empty());
    assert_eq!(rec.buf, b);
}

/// A property name the strings block lacks (kexec-tools builds the crash FDT from
/// /proc/device-tree, which may lack names a hot-added core's node has) is appended to a copy of
/// the strings block first; every state is valid and the old nodes read the same names.
#[test]
fn missing_property_names_are_appended() {
    let b = pseries(2, 8192);
    let before = cpus(&b);
    let mut props = cpu_props(0x10);
    props.push(("ibm,my-drc-index", 0x1000_0001u32.to_be_bytes().to_vec()));
    props.push(("ibm,hot-added-only", vec![1, 2, 3]));
    let list = as_list(&props);
    let mut f = Fdt::open(Recorder::new(b)).unwrap();
    assert_eq!(f.add_cpu_node(b"PowerPC,POWER9@10", &list[..]), Ok(true));
    let rec = f.into_segment();
    let after = cpus(&rec.buf);
    assert_eq!(&after[..2], &before[..]);
    let want = owned(&props);
    assert_eq!(after[2].1, want);
    for (k, st) in rec.states.iter().enumerate() {
        let c = cpus(st);
        assert!(
            c == before || c == after,
            "store {k}: /cpus is neither old nor new"
        );
    }
    // Four header stores: strings offset and size, structure size and offset.
    let header_changes = rec
        .states
        .windows(2)
        .filter(|w| w[0][..0x28] != w[1][..0x28])
        .count();
    assert_eq!(header_changes, 4);
}

#[test]
fn header_errors_are_named() {
    let mut b = pseries(1, 0);
    b[..4].copy_from_slice(&FDT_MAGIC.to_le_bytes());
    let e = Fdt::open(&mut b[..]).err().unwrap();
    assert!(e.to_string().contains("byte-swapped"), "{e}");
    let mut b = pseries(1, 0);
    b[0x14..0x18].copy_from_slice(&16u32.to_be_bytes());
    assert_eq!(Fdt::open(&mut b[..]).err(), Some(FdtError::Version(16)));
    let mut b = pseries(1, 0);
    let total = b.len() as u32;
    b[4..8].copy_from_slice(&(total + 1).to_be_bytes());
    assert_eq!(Fdt::open(&mut b[..]).err(), Some(FdtError::Truncated));
}

/// Repeated adds reuse the space of structure blocks given up before, until the FDT is full;
/// every intermediate state of every add is valid.
#[test]
fn many_adds_until_full() {
    let mut b = pseries(2, 3 * 1024);
    let mut n = 2;
    let mut reg = 0x10;
    loop {
        let before = cpus(&b);
        let (r, rec) = add(b, reg);
        match r {
            Ok(true) => {
                n += 1;
                let after = cpus(&rec.buf);
                assert_eq!(after.len(), n);
                for st in &rec.states {
                    let c = cpus(st);
                    assert!(c == before || c == after);
                }
            }
            Err(FdtError::Full { .. }) => {
                assert!(rec.states.is_empty());
                assert_eq!(cpus(&rec.buf), before);
                break;
            }
            other => panic!("{other:?}"),
        }
        b = rec.buf;
        reg += 8;
        assert!(n < 100);
    }
    assert!(n >= 3, "at least one add fits in 3 KiB of spare room");
}

/// Without room for the block switch (kexec-tools pads the crash FDT by the new nodes' size
/// only), the node can be added in place; the result is exact, other nodes read the same, and a
/// missing name is appended.
#[test]
fn in_place_add_when_there_is_no_room_to_switch() {
    let b = pseries(2, 600);
    let before = cpus(&b);
    let mut props = cpu_props(0x10);
    props.push(("ibm,my-drc-index", 0x1000_0001u32.to_be_bytes().to_vec()));
    let list = as_list(&props);
    let mut buf = b.clone();
    let mut f = Fdt::open(&mut buf[..]).unwrap();
    assert!(matches!(
        f.add_cpu_node(b"PowerPC,POWER9@10", &list[..]),
        Err(FdtError::Full { .. })
    ));
    assert_eq!(
        f.add_cpu_node_in_place(b"PowerPC,POWER9@10", &list[..]),
        Ok(true)
    );
    assert_eq!(
        f.add_cpu_node_in_place(b"PowerPC,POWER9@10", &list[..]),
        Ok(false)
    );
    let after = cpus(&buf);
    assert_eq!(&after[..2], &before[..]);
    let want = owned(&props);
    assert_eq!(after[2].1, want);
    let f = fdt::Fdt::new(&buf).unwrap();
    assert!(f.find_node("/rtas").is_some());
    assert!(f.find_node("/memory@0").is_some());
    // Not even room in place: refused, nothing written.
    let small = pseries(2, 16);
    let mut copy = small.clone();
    let mut f = Fdt::open(&mut copy[..]).unwrap();
    assert!(matches!(
        f.add_cpu_node_in_place(b"PowerPC,POWER9@10", &list[..]),
        Err(FdtError::Full { .. })
    ));
    assert_eq!(copy, small);
}

/// The crash FDT a pseries guest (QEMU 10.0.2, TCG) booted its capture kernel with, after our
/// kernel added the hot-added core `PowerPC,POWER9@1` to it with the block switch; captured by
/// the pseries shell scenario of issue 4 from the capture kernel's /sys/firmware/fdt.
const PSERIES_CRASH_FDT: &[u8] = include_bytes!("data/pseries-crash-fdt.dtb");

/// The real crash FDT: the `fdt` crate reads our kernel's edit as a valid tree with both cores,
/// and a third core (a copy of the second's properties) is added to it crash-consistently.
#[test]
fn real_pseries_crash_fdt() {
    let before = cpus(PSERIES_CRASH_FDT);
    let names: Vec<&str> = before.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["PowerPC,POWER9@0", "PowerPC,POWER9@1"]);
    let (_, props) = &before[1];
    let mut props = props.clone();
    for (n, v) in &mut props {
        if n == "reg" || n == "ibm,ppc-interrupt-server#s" {
            *v = 2u32.to_be_bytes().to_vec();
        }
    }
    let list = as_list(&props);
    let mut f = Fdt::open(Recorder::new(PSERIES_CRASH_FDT.to_vec()))
        .expect("our editor opens the real crash FDT");
    assert_eq!(f.add_cpu_node(b"PowerPC,POWER9@2", &list[..]), Ok(true));
    let rec = f.into_segment();
    let after = cpus(&rec.buf);
    assert_eq!(after.len(), 3);
    assert_eq!(&after[..2], &before[..]);
    assert_eq!(after[2].1, props);
    for (k, st) in rec.states.iter().enumerate() {
        let c = cpus(st);
        assert!(
            c == before || c == after,
            "store {k}: /cpus is neither old nor new"
        );
    }
    // Everything outside /cpus reads the same.
    let (a, b) = (strip_nops(PSERIES_CRASH_FDT), strip_nops(&rec.buf));
    let (a, b) = (fdt::Fdt::new(&a).unwrap(), fdt::Fdt::new(&b).unwrap());
    let outside = |f: &fdt::Fdt| -> Vec<String> {
        f.all_nodes()
            .filter(|n| !n.name.starts_with("PowerPC,"))
            .map(|n| {
                let props: Vec<String> = n
                    .properties()
                    .map(|p| format!("{}={:?}", p.name, p.value))
                    .collect();
                format!("{} {}", n.name, props.join(","))
            })
            .collect()
    };
    assert_eq!(outside(&a), outside(&b));
}

/// Bytes one CPU node of `cpu_props` takes in the structure block.
fn node_bytes() -> usize {
    let b = pseries(2, 64 * 1024);
    let (r, rec) = add(b.clone(), 0x10);
    assert_eq!(r, Ok(true));
    be(&rec.buf, 0x24) - be(&b, 0x24)
}

/// With the room patch 0006 reserves for kexec_file crash FDTs (the room for the new nodes `E`,
/// plus two areas of `2 S + E` each, S the boot FDT's structure block), every CPU add up to that
/// count switches blocks, crash-consistently: not only the first (issue 11, finding 7). With the
/// room it reserved before (`E + S + E`), add 7 of 8 fell back.
#[test]
fn every_add_switches_blocks_with_the_reserve_of_patch_0006() {
    const NEW: usize = 8;
    let probe = pseries(2, 0);
    let s = be(&probe, 0x24);
    let e = NEW * node_bytes();
    let mut b = pseries(2, e + 2 * (2 * s + e));
    for k in 0..NEW {
        let before = cpus(&b);
        let reg = 0x10 + 8 * k as u32;
        let (r, rec) = add(b, reg);
        assert_eq!(
            r,
            Ok(true),
            "add {} of {NEW} (reg {reg:#x}) could not switch blocks",
            k + 1
        );
        let after = cpus(&rec.buf);
        assert_eq!(after.len(), before.len() + 1);
        for st in &rec.states {
            let c = cpus(st);
            assert!(
                c == before || c == after,
                "add {}: a state lists neither",
                k + 1
            );
        }
        b = rec.buf;
    }
}

/// Gives one more property on every walk after the first: a live node that changed while the
/// editor copied it.
struct Growing {
    props: Vec<(&'static str, Vec<u8>)>,
    walks: std::cell::Cell<usize>,
}

impl crash_hotplug_model::fdt::NodeSource for Growing {
    fn for_each_prop(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        let w = self.walks.get();
        self.walks.set(w + 1);
        for (n, v) in &self.props {
            f(n.as_bytes(), v);
        }
        if w > 0 {
            f(b"reg", &[0u8; 64]);
        }
    }
}

/// A node source that changes between sizing and writing is refused before the switch: the FDT
/// stays valid and lists the old CPUs at every store (issue 11, finding 6).
#[test]
fn a_node_that_changes_while_copied_is_refused() {
    let b = pseries(2, 16 * 1024);
    let before = cpus(&b);
    let src = Growing {
        props: cpu_props(0x10),
        walks: std::cell::Cell::new(0),
    };
    let mut f = Fdt::open(Recorder::new(b)).expect("valid FDT");
    let r = f.add_cpu_node(b"PowerPC,POWER9@10", &src);
    let rec = f.into_segment();
    assert!(
        matches!(r, Err(FdtError::SourceChanged { .. })),
        "got {r:?} for a source that changed"
    );
    assert_eq!(cpus(&rec.buf), before, "the FDT must list the old CPUs");
    for st in &rec.states {
        assert_eq!(cpus(st), before, "every state must list the old CPUs");
    }
}

/// `/cpus` of `b` if it is an FDT the capture kernel accepts and parses, else why not.
fn cpus_or_why(b: &[u8]) -> Result<Vec<Node>, String> {
    if !header_ok(b) {
        return Err("libfdt would reject the header".into());
    }
    let b = b.to_vec();
    std::panic::catch_unwind(move || cpus(&b)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unparsable".into())
    })
}

/// Adds CPU nodes one after another (some with property names the strings block lacks) and
/// checks every state a reader could see with the kernel's barriers (any subset, in any order, of
/// the stores between two barriers: `common/order.rs`): each is a valid FDT whose `/cpus` lists
/// the old or the new CPUs (issue 11, finding 3, for the FDT editor too).
#[test]
fn adding_cpus_is_valid_in_every_state_the_barriers_allow() {
    let probe = pseries(2, 0);
    let e = 4 * node_bytes() + 256;
    let mut b = pseries(2, e + 2 * (2 * be(&probe, 0x24) + e));
    let ex = Explore {
        exhaustive: 256,
        store_subsets: 8,
        samples: 64,
        seed: 0x5eed,
    };
    let mut checked = 0;
    for k in 0..4u32 {
        let before = cpus(&b);
        let reg = 0x10 + 8 * k;
        let mut props = cpu_props(reg);
        if k % 2 == 1 {
            props.push(("ibm,hot-added-only", vec![k as u8; 3 + k as usize]));
        }
        let list = as_list(&props);
        let mut f = Fdt::open(Journal::new(b)).expect("valid FDT");
        let name = format!("PowerPC,POWER9@{reg:x}");
        assert_eq!(f.add_cpu_node(name.as_bytes(), &list[..]), Ok(true));
        let j = f.into_segment();
        let after = cpus(&j.buf);
        let what = format!("add {} ({name})", k + 1);
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = check_every_state(&j, Barriers::AroundCommits, &ex, &what, |st| {
            let c = cpus_or_why(st)?;
            if c == before || c == after {
                Ok(())
            } else {
                Err(format!(
                    "/cpus lists {} nodes, neither the old nor the new",
                    c.len()
                ))
            }
        });
        std::panic::set_hook(prev);
        checked += r.unwrap_or_else(|m| panic!("{m}"));
        b = j.buf;
    }
    assert!(checked > 4);
    println!("FDT adds: {checked} states, all valid");
}
