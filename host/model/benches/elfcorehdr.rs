//! Cost of one memory event on the elfcorehdr: the Rust implementation's incremental edit versus
//! a full rebuild of the header (what the upstream C handler does on every event), at 8, 256 and
//! 8192 RAM ranges.

use crash_hotplug_model::{
    build, slots, Elfcorehdr, HeaderSpec, Index, KernelText, MemRange, Node,
};
use criterion::{criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;

const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
const BLOCK: u64 = 128 << 20;
const CPUS: [u64; 64] = {
    let mut a = [0u64; 64];
    let mut i = 0;
    while i < 64 {
        a[i] = 0x7f00_0000 + i as u64 * 0x1000;
        i += 1;
    }
    a
};

/// `n` separate 128 MiB ranges with holes between them (a sparsely populated machine).
fn ranges(n: usize) -> Vec<MemRange> {
    (0..n as u64)
        .map(|i| MemRange {
            start: 0x1_0000_0000 + i * 2 * BLOCK,
            end: 0x1_0000_0000 + i * 2 * BLOCK + BLOCK - 1,
        })
        .collect()
}

fn spec(ram: &[MemRange]) -> HeaderSpec<'_> {
    HeaderSpec {
        machine: 62,
        page_offset: PAGE_OFFSET,
        cpu_notes: &CPUS,
        cpu_note_size: 0x170,
        vmcoreinfo: (0x7e00_0000, 0x1024),
        kernel_text: Some(KernelText {
            vaddr: 0xffff_ffff_8100_0000,
            paddr: 0x100_0000,
            size: 0x200_0000,
        }),
        ram,
    }
}

/// Segment sized like x86's kexec_file one: (2 + NR_CPUS_DEFAULT + CRASH_MAX_MEMORY_RANGES) slots.
const SLOTS: usize = 2 + 64 + 8192 + 64;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory event");
    for n in [8usize, 256, 8192] {
        let ram = ranges(n);
        let mut seg = vec![0u8; 64 + SLOTS * 56];
        build(&mut seg, &spec(&ram)).expect("fits");
        // A block that fills the hole after the middle range: online then offline, one event each.
        let mid = ram[n / 2];
        let block = MemRange {
            start: mid.end + 1,
            end: mid.end + BLOCK,
        };
        g.bench_with_input(
            BenchmarkId::new("incremental online+offline", n),
            &n,
            |b, _| {
                // The index lives as long as the image, as in the kernel: built once.
                let mut ix = Index::new(vec![Node::EMPTY; slots(seg.len())]);
                let mut hdr = Elfcorehdr::open(&mut seg[..], PAGE_OFFSET, &mut ix).expect("valid");
                b.iter(|| {
                    black_box(hdr.add_ram(black_box(block)).expect("room"));
                    black_box(hdr.remove_ram(black_box(block)).expect("room"));
                })
            },
        );
        let mut with = ram.clone();
        with.push(block);
        with.sort_unstable_by_key(|r| r.start);
        let mut out = vec![0u8; 64 + SLOTS * 56];
        g.bench_with_input(BenchmarkId::new("full rebuild x2", n), &n, |b, _| {
            b.iter(|| {
                black_box(build(&mut out, &spec(black_box(&with))).expect("fits"));
                black_box(build(&mut out, &spec(black_box(&ram))).expect("fits"));
            })
        });
    }
    g.finish();
}

/// The criterion group (the macro generates an undocumented public function).
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
