//! Host tests of the event model: ranges, statistics and the debugfs text format.

use crash_hotplug_model::{event::EventKind, Event, EventStats, MemRange};
use proptest::prelude::*;

#[test]
fn memory_block_range_from_pfns() {
    let r = MemRange::from_pfns(0x10_0000, 0x8000, 12).expect("valid range");
    assert_eq!(r.start, 0x1_0000_0000);
    assert_eq!(r.end, 0x1_07ff_ffff);
    assert_eq!(r.size(), 128 << 20);
    assert_eq!(r.to_string(), "0x100000000-0x107ffffff");
}

#[test]
fn memory_block_range_includes_the_memmap_on_memory_pages() {
    // x86_64, 128 MiB blocks (0x8000 pages): memory_block_online() reports the block at 4 GiB
    // from its 513th page when its first 2 MiB (512 pages) hold its struct pages.
    let r = MemRange::block_from_pfns(0x10_0200, 0x8000 - 0x200, 0x8000, 12).expect("valid");
    assert_eq!((r.start, r.end), (0x1_0000_0000, 0x1_07ff_ffff));
    // ppc64 (64 KiB pages), a 256 MiB LMB (0x1000 pages) with memmap_on_memory=force: the memmap
    // padded to a 2 MiB pageblock (32 pages).
    let r = MemRange::block_from_pfns(0x8000 + 32, 0x1000 - 32, 0x1000, 16).expect("valid");
    assert_eq!((r.start, r.end), (0x8000_0000, 0x8fff_ffff));
    // A block reported whole is unchanged.
    assert_eq!(
        MemRange::block_from_pfns(0x10_8000, 0x8000, 0x8000, 12),
        MemRange::from_pfns(0x10_8000, 0x8000, 12)
    );
    // Invalid input.
    assert_eq!(MemRange::block_from_pfns(0x10_0200, 0, 0x8000, 12), None);
    assert_eq!(MemRange::block_from_pfns(0x10_0200, 0x7e00, 0, 12), None);
    assert_eq!(MemRange::block_from_pfns(u64::MAX, 1, 0x8000, 12), None);
}

#[test]
fn range_rejects_empty_and_overflowing_input() {
    assert_eq!(MemRange::from_pfns(0, 0, 12), None);
    assert_eq!(MemRange::from_pfns(u64::MAX, 2, 12), None);
    assert_eq!(MemRange::from_pfns(1 << 52, 1, 12), None);
    assert_eq!(MemRange::from_pfns(0, 1, 64), None);
    let top = MemRange::from_pfns((1 << 52) - 1, 1, 12).expect("last page fits");
    assert_eq!(top.end, u64::MAX);
}

#[test]
fn debugfs_format_is_stable() {
    let mut s = EventStats::new();
    assert_eq!(
        s.to_string(),
        "add_cpu 0\nremove_cpu 0\nonline_memory 0\noffline_memory 0\nadd_device_vmemmap 0\n\
         remove_device_vmemmap 0\nlast none\n"
    );
    s.record(Event::AddCpu(3));
    s.record(Event::OnlineMemory(MemRange {
        start: 0x1000,
        end: 0x1fff,
    }));
    s.record(Event::RemoveCpu(1));
    assert_eq!(
        s.to_string(),
        "add_cpu 1\nremove_cpu 1\nonline_memory 1\noffline_memory 0\nadd_device_vmemmap 0\n\
         remove_device_vmemmap 0\nlast remove_cpu cpu1\n"
    );
    s.record(Event::AddDeviceVmemmap(MemRange {
        start: 0x1_4000_0000,
        end: 0x1_405f_ffff,
    }));
    s.record(Event::RemoveDeviceVmemmap(MemRange {
        start: 0x1_4000_0000,
        end: 0x1_405f_ffff,
    }));
    assert_eq!(
        s.to_string(),
        "add_cpu 1\nremove_cpu 1\nonline_memory 1\noffline_memory 0\nadd_device_vmemmap 1\n\
         remove_device_vmemmap 1\nlast remove_device_vmemmap 0x140000000-0x1405fffff\n"
    );
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        any::<u32>().prop_map(Event::AddCpu),
        any::<u32>().prop_map(Event::RemoveCpu),
        (0u64..1 << 40, 1u64..1 << 20).prop_map(|(p, n)| {
            Event::OnlineMemory(MemRange::from_pfns(p, n, 12).expect("in range"))
        }),
        (0u64..1 << 40, 1u64..1 << 20).prop_map(|(p, n)| {
            Event::OfflineMemory(MemRange::from_pfns(p, n, 12).expect("in range"))
        }),
        (0u64..1 << 40, 1u64..1 << 20).prop_map(|(p, n)| {
            Event::AddDeviceVmemmap(MemRange::from_pfns(p, n, 12).expect("in range"))
        }),
        (0u64..1 << 40, 1u64..1 << 20).prop_map(|(p, n)| {
            Event::RemoveDeviceVmemmap(MemRange::from_pfns(p, n, 12).expect("in range"))
        }),
    ]
}

proptest! {
    /// The counts are exactly the number of events of each kind, and `last` is the last event.
    #[test]
    fn stats_match_a_recount(events in proptest::collection::vec(event(), 0..200)) {
        let mut s = EventStats::new();
        for e in &events {
            s.record(*e);
        }
        for kind in EventKind::ALL {
            let expect = events.iter().filter(|e| e.kind() == kind).count() as u64;
            prop_assert_eq!(s.count(kind), expect);
        }
        prop_assert_eq!(s.total(), events.len() as u64);
        prop_assert_eq!(s.last(), events.last().copied());
    }

    /// A notifier range extends to the start of its block and never past its own end; a range
    /// that starts at a block boundary is unchanged.
    #[test]
    fn block_range_is_the_block_start_to_the_range_end(
        block_order in 0u32..20,
        block in 0u64..1 << 20,
        skip in 0u64..1 << 20,
        n in 1u64..1 << 20,
    ) {
        let bp = 1u64 << block_order;
        let skip = skip % bp;
        let start = block * bp + skip;
        let r = MemRange::block_from_pfns(start, n, bp, 12).expect("in range");
        prop_assert_eq!(r.start, (block * bp) << 12);
        prop_assert_eq!(r.end, ((start + n) << 12) - 1);
        if skip == 0 {
            prop_assert_eq!(Some(r), MemRange::from_pfns(start, n, 12));
        }
    }

    /// A range built from page frames covers exactly `nr_pages` pages.
    #[test]
    fn range_len_is_pages_times_page_size(p in 0u64..1 << 40, n in 1u64..1 << 24) {
        let r = MemRange::from_pfns(p, n, 12).expect("in range");
        prop_assert_eq!(r.size(), n << 12);
        prop_assert_eq!(r.start, p << 12);
    }
}
