//! Fuzzes the crash FDT `/cpus` editor against a rebuild: from a pseries-like FDT with some free
//! room, an arbitrary sequence of CPU node adds (crash-consistent block switch, or in place) with
//! arbitrary properties, some of whose names the strings block lacks. After every add the edited
//! FDT must pass libfdt's header checks and parse (with the independent `fdt` crate) to exactly
//! the tree an independent writer (`vm-fdt`) builds from scratch from the expected nodes; an add
//! that is refused must have written nothing; a second add of a node that exists changes nothing.
//! (The crash consistency of each intermediate state is judged by the host tests, which record
//! every store; here the end states of long sequences are.)
#![no_main]

#[path = "../../host/model/tests/common/fdt_check.rs"]
mod fdt_check;
use fdt_check::{header_ok, strip_nops};

use crash_hotplug_model::fdt::{Fdt, FdtError};
use libfuzzer_sys::fuzz_target;
use vm_fdt::FdtWriter;

/// Property names: the ones a pseries CPU node has (already in the strings block) and new ones.
const NAMES: [&str; 8] = [
    "device_type",
    "reg",
    "ibm,ppc-interrupt-server#s",
    "clock-frequency",
    "64-bit",
    "ibm,fuzz-a",
    "ibm,fuzz-bb",
    "linux,fuzz-ccc",
];

/// A node: its name and properties, in order.
type Node = (String, Vec<(String, Vec<u8>)>);

/// The FDT a writer makes from scratch: the fixed pseries nodes and `cpus`, with `spare` free
/// bytes after the blocks.
fn build(cpus: &[Node], spare: usize) -> Vec<u8> {
    let mut w = FdtWriter::new().expect("writer");
    let root = w.begin_node("").expect("root");
    w.property_string("compatible", "qemu,pseries")
        .expect("prop");
    w.property_u32("#address-cells", 2).expect("prop");
    w.property_u32("#size-cells", 2).expect("prop");
    let chosen = w.begin_node("chosen").expect("chosen");
    w.property_string("bootargs", "console=hvc0").expect("prop");
    w.end_node(chosen).expect("end");
    let c = w.begin_node("cpus").expect("cpus");
    w.property_u32("#address-cells", 1).expect("prop");
    w.property_u32("#size-cells", 0).expect("prop");
    for (name, props) in cpus {
        let n = w.begin_node(name).expect("cpu");
        for (p, v) in props {
            w.property(p, v).expect("prop");
        }
        w.end_node(n).expect("end");
    }
    w.end_node(c).expect("end");
    let mem = w.begin_node("memory@0").expect("memory");
    w.property_string("device_type", "memory").expect("prop");
    w.property_array_u64("reg", &[0, 0x4000_0000])
        .expect("prop");
    w.end_node(mem).expect("end");
    w.end_node(root).expect("end");
    let mut b = w.finish().expect("finish");
    let total = b.len() + spare;
    b.resize(total, 0);
    b[4..8].copy_from_slice(&(total as u32).to_be_bytes());
    b
}

/// Every node of the tree as `fdt` reads it: path, properties (name, value), in order.
fn tree(b: &[u8]) -> Vec<(String, Vec<(String, Vec<u8>)>)> {
    assert!(header_ok(b), "libfdt would reject the header");
    let b = strip_nops(b);
    let f = fdt::Fdt::new(&b).expect("fdt parses");
    let mut out = Vec::new();
    fn walk(n: fdt::node::FdtNode<'_, '_>, path: String, out: &mut Vec<Node>) {
        out.push((
            path.clone(),
            n.properties()
                .map(|p| (p.name.to_string(), p.value.to_vec()))
                .collect(),
        ));
        for c in n.children() {
            walk(c, format!("{path}/{}", c.name), out);
        }
    }
    walk(f.find_node("/").expect("root"), String::new(), &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let [room, first, ops @ ..] = data else {
        return;
    };
    // 0 to ~4 KiB of free room; 1 to 4 CPU nodes to begin with.
    let spare = usize::from(*room) * 16;
    let mut expected: Vec<Node> = (0..u32::from(first % 4) + 1)
        .map(|i| {
            (
                format!("PowerPC,POWER9@{:x}", i * 8),
                vec![
                    ("device_type".to_string(), b"cpu\0".to_vec()),
                    ("reg".to_string(), (i * 8).to_be_bytes().to_vec()),
                ],
            )
        })
        .collect();
    let mut bytes = build(&expected, spare);
    let mut it = ops.iter().copied();
    while let (Some(kind), Some(reg), Some(nprops)) = (it.next(), it.next(), it.next()) {
        let name = format!("PowerPC,POWER9@{reg:x}");
        let mut props: Vec<(String, Vec<u8>)> = Vec::new();
        for _ in 0..nprops % 6 {
            let (Some(sel), Some(len)) = (it.next(), it.next()) else {
                break;
            };
            let pname = NAMES[usize::from(sel) % NAMES.len()].to_string();
            let value: Vec<u8> = (0..len % 24).map(|k| k.wrapping_mul(sel)).collect();
            if !props.iter().any(|(n, _)| *n == pname) {
                props.push((pname, value));
            }
        }
        let list: Vec<(&[u8], &[u8])> = props.iter().map(|(n, v)| (n.as_bytes(), &v[..])).collect();
        let before = bytes.clone();
        let result = {
            let mut f = match Fdt::open(&mut bytes[..]) {
                Ok(f) => f,
                Err(e) => panic!("the editor's own output does not open: {e}"),
            };
            if kind % 2 == 0 {
                f.add_cpu_node(name.as_bytes(), &list[..])
            } else {
                f.add_cpu_node_in_place(name.as_bytes(), &list[..])
            }
        };
        let exists = expected.iter().any(|(n, _)| *n == name);
        match result {
            Ok(true) => {
                assert!(!exists, "{name} added twice");
                expected.push((name, props));
            }
            Ok(false) => {
                assert!(exists, "{name} refused as existing, but it is not there");
                assert_eq!(bytes, before, "a refused add wrote");
            }
            Err(FdtError::Full { .. }) => assert_eq!(bytes, before, "a refused add wrote"),
            Err(e) => panic!("add of {name} failed on a valid FDT: {e}"),
        }
        // The edited FDT reads as the tree written from scratch from what it must hold.
        assert_eq!(
            tree(&bytes),
            tree(&build(&expected, 0)),
            "the edited FDT differs from a rebuild"
        );
    }
});
