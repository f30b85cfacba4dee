//! Independent checks of an FDT's bytes, shared by the FDT editor's host tests and its fuzz
//! target (`fuzz/fuzz_targets/fdt_cpus.rs` includes this file by path): libfdt's header check,
//! and the structure block's tokens walked without the editor's code.

use crash_hotplug_model::fdt::FDT_MAGIC;

/// The big-endian 32-bit word at `o`.
pub fn be(b: &[u8], o: usize) -> usize {
    u32::from_be_bytes(b[o..o + 4].try_into().expect("4 bytes")) as usize
}

/// libfdt's `fdt_check_header()` for version 17, as the capture kernel runs it.
pub fn header_ok(b: &[u8]) -> bool {
    let total = be(b, 4);
    let block = |off: usize, size: usize| off >= 0x28 && off <= total && off + size <= total;
    be(b, 0) == FDT_MAGIC as usize
        && be(b, 0x14) >= 17
        && total <= b.len()
        && block(be(b, 8), be(b, 0x24))
        && block(be(b, 0xc), be(b, 0x20))
        && be(b, 0x10) >= 0x28
}

/// `b` with its `FDT_NOP` tokens dropped from the structure block (same layout otherwise): the
/// `fdt` crate mis-parses a node whose properties are interleaved with NOPs (as libfdt's
/// `fdt_nop_property()` leaves them, e.g. in a real crash FDT's /chosen). A plain token walk,
/// independent of the editor; it also checks that the token stream is well formed and that every
/// property's name lies inside the strings block (the `fdt` crate would panic on it without
/// saying so).
pub fn strip_nops(b: &[u8]) -> Vec<u8> {
    let (off, size) = (be(b, 8), be(b, 0x24));
    let mut out = Vec::new();
    let mut o = off;
    loop {
        let tag = be(b, o);
        let len = match tag {
            1 => 4 + (b[o + 4..].iter().position(|&c| c == 0).expect("node name") + 4) / 4 * 4,
            3 => 12 + be(b, o + 4).div_ceil(4) * 4,
            2 | 4 | 9 => 4,
            t => panic!("bad token {t} at {o:#x}"),
        };
        assert!(o + len <= off + size, "token past the structure block");
        if tag == 3 {
            let (name_off, strings) = (be(b, o + 8), be(b, 0x20));
            assert!(
                name_off < strings,
                "property name offset {name_off:#x} outside the strings block ({strings:#x} bytes)"
            );
        }
        if tag != 4 {
            out.extend_from_slice(&b[o..o + len]);
        }
        o += len;
        if tag == 9 {
            break;
        }
    }
    let mut n = b.to_vec();
    n[off..off + out.len()].copy_from_slice(&out);
    n[0x24..0x28].copy_from_slice(&(out.len() as u32).to_be_bytes());
    n
}
