//! The hotplug journal: replaying it onto an image that saw any prefix of the events gives the
//! image that saw all of them (so an event deferred, or missed by a load that read the system
//! state before it, is never lost), and it stays small. Device-backed vmemmaps are journalled
//! apart from RAM and replayed as what they are.

use crash_hotplug_model::{
    build,
    journal::{Full, Journal, Subject},
    slots, Elfcorehdr, Event, HeaderSpec, Index, MemRange, Node,
};
use proptest::prelude::*;

const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
const UNIT: u64 = 0x1000;
const UNITS: u64 = 64;
/// Device vmemmap ranges live in units `UNITS..2 * UNITS` (never RAM, as in the kernel:
/// `memremap_pages()` refuses a range that intersects System RAM).
const ALL_UNITS: u64 = 2 * UNITS;
const CPUS: u32 = 8;
const CPU_NOTES: [u64; 2] = [0x7f00_0000, 0x7f00_1000];

fn journal(cap: usize) -> Journal<Vec<crash_hotplug_model::journal::Entry>> {
    Journal::new(vec![crash_hotplug_model::journal::Entry::EMPTY; cap])
}

fn range(s: u64, e: u64) -> MemRange {
    MemRange {
        start: s * UNIT,
        end: (e + 1) * UNIT - 1,
    }
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (any::<bool>(), 0..UNITS, 1u64..12).prop_map(|(on, s, n)| {
            let r = range(s, (s + n).min(UNITS) - 1);
            if on {
                Event::OnlineMemory(r)
            } else {
                Event::OfflineMemory(r)
            }
        }),
        (any::<bool>(), 0..UNITS, 1u64..12).prop_map(|(on, s, n)| {
            let r = range(UNITS + s, UNITS + (s + n).min(UNITS) - 1);
            if on {
                Event::AddDeviceVmemmap(r)
            } else {
                Event::RemoveDeviceVmemmap(r)
            }
        }),
        (any::<bool>(), 0..CPUS).prop_map(|(on, c)| if on {
            Event::AddCpu(c)
        } else {
            Event::RemoveCpu(c)
        }),
    ]
}

/// Records every event, growing the journal as the kernel does when it is full.
fn record_all(events: &[Event]) -> Journal<Vec<crash_hotplug_model::journal::Entry>> {
    let mut j = journal(2);
    for &e in events {
        if j.needs_room() {
            let bigger = vec![crash_hotplug_model::journal::Entry::EMPTY; 2 * j.capacity()];
            let old = j.grow_into(bigger);
            assert!(
                old.len() < j.capacity(),
                "grow_into took the larger storage"
            );
        }
        j.record(e).expect("room was made");
    }
    j
}

/// Per unit: dumped as RAM, and dumped as a device vmemmap, after `events` (from `base`, RAM
/// units); per CPU: added.
type Units = (Vec<bool>, Vec<bool>);

fn expected(base: &[bool], events: &[Event]) -> (Units, Vec<Option<bool>>) {
    let mut mem = base.to_vec();
    mem.resize(ALL_UNITS as usize, false);
    let mut dev = vec![false; ALL_UNITS as usize];
    let mut cpus = vec![None; CPUS as usize];
    for e in events {
        match *e {
            Event::OnlineMemory(r) | Event::OfflineMemory(r) => {
                for u in r.start / UNIT..=r.end / UNIT {
                    mem[u as usize] = matches!(e, Event::OnlineMemory(_));
                }
            }
            Event::AddDeviceVmemmap(r) | Event::RemoveDeviceVmemmap(r) => {
                for u in r.start / UNIT..=r.end / UNIT {
                    dev[u as usize] = matches!(e, Event::AddDeviceVmemmap(_));
                }
            }
            Event::AddCpu(c) => cpus[c as usize] = Some(true),
            Event::RemoveCpu(c) => cpus[c as usize] = Some(false),
        }
    }
    ((mem, dev), cpus)
}

/// A header listing the units set in `base`, with room for any edit sequence.
fn header(base: &[bool]) -> Vec<u8> {
    let ram: Vec<MemRange> = base
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .map(|(u, _)| range(u as u64, u as u64))
        .collect();
    let spec = HeaderSpec {
        machine: 62,
        page_offset: PAGE_OFFSET,
        cpu_notes: &CPU_NOTES,
        cpu_note_size: 0x150,
        vmcoreinfo: (0x7e00_0000, 0x1000),
        kernel_text: None,
        ram: &ram,
    };
    let mut buf = vec![0u8; 64 + 4 * ALL_UNITS as usize * 56];
    build(&mut buf, &spec).expect("fits");
    buf
}

/// Applies `events` to the header in `buf`; returns the units it dumps as RAM and as device
/// vmemmaps (read from the segment, by `p_flags`).
fn apply(buf: &mut [u8], events: impl IntoIterator<Item = Event>) -> Units {
    let mut ix = Index::new(vec![Node::EMPTY; slots(buf.len())]);
    let mut h = Elfcorehdr::open(&mut *buf, PAGE_OFFSET, &mut ix).expect("valid header");
    for e in events {
        h.apply_event(e).expect("room for the edit");
    }
    assert!(h.index_matches(), "index out of step with the segment");
    let mut units = (
        vec![false; ALL_UNITS as usize],
        vec![false; ALL_UNITS as usize],
    );
    for r in h.ram_ranges() {
        for u in r.start / UNIT..=r.end / UNIT {
            units.0[u as usize] = true;
        }
    }
    for r in h.device_vmemmap_ranges() {
        for u in r.start / UNIT..=r.end / UNIT {
            units.1[u as usize] = true;
        }
    }
    units
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The image saw the first `k` events (the rest were deferred, or a load read the system
    /// before them); replaying the journal of all of them gives what applying all gives.
    #[test]
    fn replay_onto_any_prefix_gives_the_final_state(
        base in proptest::collection::vec(any::<bool>(), UNITS as usize),
        events in proptest::collection::vec(event(), 0..40),
        cut in any::<proptest::sample::Index>(),
    ) {
        let k = cut.index(events.len() + 1);
        let j = record_all(&events);
        let (want_mem, want_cpus) = expected(&base, &events);

        let mut image = header(&base);
        let seen = apply(&mut image, events[..k].iter().copied());
        prop_assert_eq!(&seen, &expected(&base, &events[..k]).0);
        let replayed = apply(&mut image, j.events());
        prop_assert_eq!(&replayed, &want_mem, "replay onto the image that saw {} of {} events", k, events.len());

        // The journal's CPU entries are the last state of each CPU an event touched.
        let mut cpus = vec![None; CPUS as usize];
        for e in j.events() {
            match e {
                Event::AddCpu(c) => cpus[c as usize] = Some(true),
                Event::RemoveCpu(c) => cpus[c as usize] = Some(false),
                _ => {}
            }
        }
        prop_assert_eq!(cpus, want_cpus);

        // Sorted, disjoint, and merged: no two adjacent entries in the same state.
        let entries: Vec<_> = j.entries().collect();
        for w in entries.windows(2) {
            let ((sa, _, ea, oa), (sb, fb, _, ob)) = (w[0], w[1]);
            prop_assert!(sa < sb || (sa == sb && ea < fb), "sorted and disjoint: {:?}", w);
            prop_assert!(!(sa == sb && oa == ob && ea + 1 == fb), "not merged: {:?}", w);
        }
    }
}

#[test]
fn a_dimm_of_many_blocks_is_one_entry() {
    let mut j = journal(5);
    for b in 0..32 {
        j.record(Event::OnlineMemory(range(b * 2, b * 2 + 1)))
            .expect("merging needs no room");
    }
    assert_eq!(
        j.entries().collect::<Vec<_>>(),
        [(Subject::Memory, 0, 64 * UNIT - 1, true)]
    );
    // Offlining one block in the middle splits it into three.
    j.record(Event::OfflineMemory(range(10, 11))).expect("room");
    assert_eq!(j.len(), 3);
    // And onlining it again merges them back.
    j.record(Event::OnlineMemory(range(10, 11))).expect("room");
    assert_eq!(j.len(), 1);
}

#[test]
fn a_full_journal_refuses_and_keeps_what_it_has() {
    let mut j = journal(3);
    j.record(Event::AddCpu(1)).expect("room");
    j.record(Event::OnlineMemory(range(0, 9))).expect("room");
    assert!(j.needs_room());
    let before: Vec<_> = j.entries().collect();
    assert_eq!(j.record(Event::OfflineMemory(range(4, 4))), Err(Full));
    assert_eq!(j.entries().collect::<Vec<_>>(), before);
    // Storage smaller than the entries is handed back untouched.
    let small = j.grow_into(vec![crash_hotplug_model::journal::Entry::EMPTY; 1]);
    assert_eq!(small.len(), 1);
    assert_eq!(j.entries().collect::<Vec<_>>(), before);
    let _ = j.grow_into(vec![crash_hotplug_model::journal::Entry::EMPTY; 8]);
    j.record(Event::OfflineMemory(range(4, 4)))
        .expect("room after growing");
    assert_eq!(
        j.entries().collect::<Vec<_>>(),
        [
            (Subject::Cpu, 1, 1, true),
            (Subject::Memory, 0, 4 * UNIT - 1, true),
            (Subject::Memory, 4 * UNIT, 5 * UNIT - 1, false),
            (Subject::Memory, 5 * UNIT, 10 * UNIT - 1, true),
        ]
    );
    let events: Vec<_> = j.events().collect();
    assert_eq!(
        events,
        [
            Event::AddCpu(1),
            Event::OnlineMemory(range(0, 3)),
            Event::OfflineMemory(range(4, 4)),
            Event::OnlineMemory(range(5, 9)),
        ]
    );
}
