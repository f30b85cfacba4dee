//! `RangeList::exclude` against the cases of upstream's `kernel/crash_core_test.c` (same inputs
//! and expected outputs, as a table) and against a brute-force model.

use crash_hotplug_model::{MemRange, NoRoom, RangeList};
use proptest::prelude::*;

const fn r(start: u64, end: u64) -> MemRange {
    MemRange { start, end }
}

struct Case {
    name: &'static str,
    exclude: (u64, u64),
    max: usize,
    initial: &'static [MemRange],
    /// `Ok(ranges)` or `Err(())` for -ENOMEM with the list unchanged.
    expect: Result<&'static [MemRange], ()>,
}

const B: &[MemRange] = &[r(100, 199)];

const CASES: &[Case] = &[
    Case {
        name: "1.1: A is left of B, no overlap",
        exclude: (10, 50),
        max: 1,
        initial: B,
        expect: Ok(B),
    },
    Case {
        name: "1.2: A's right boundary touches B's left boundary",
        exclude: (10, 99),
        max: 1,
        initial: B,
        expect: Ok(B),
    },
    Case {
        name: "1.3: A overlaps B's left part",
        exclude: (50, 149),
        max: 1,
        initial: B,
        expect: Ok(&[r(150, 199)]),
    },
    Case {
        name: "1.4: A is completely inside B",
        exclude: (120, 179),
        max: 2,
        initial: B,
        expect: Ok(&[r(100, 119), r(180, 199)]),
    },
    Case {
        name: "1.5: A overlaps B's right part",
        exclude: (150, 249),
        max: 1,
        initial: B,
        expect: Ok(&[r(100, 149)]),
    },
    Case {
        name: "1.6: A's left boundary touches B's right boundary",
        exclude: (200, 250),
        max: 1,
        initial: B,
        expect: Ok(B),
    },
    Case {
        name: "1.7: A is right of B, no overlap",
        exclude: (250, 300),
        max: 1,
        initial: B,
        expect: Ok(B),
    },
    Case {
        name: "1.8: A completely covers B and extends beyond",
        exclude: (50, 250),
        max: 1,
        initial: B,
        expect: Ok(&[]),
    },
    Case {
        name: "1.9: A covers B and extends to the left",
        exclude: (50, 199),
        max: 1,
        initial: B,
        expect: Ok(&[]),
    },
    Case {
        name: "1.10: A covers B and extends to the right",
        exclude: (100, 250),
        max: 1,
        initial: B,
        expect: Ok(&[]),
    },
    Case {
        name: "1.11: A is identical to B",
        exclude: (100, 199),
        max: 1,
        initial: B,
        expect: Ok(&[]),
    },
    Case {
        name: "1.12: A is a point, left of B, no overlap",
        exclude: (10, 10),
        max: 1,
        initial: B,
        expect: Ok(B),
    },
    Case {
        name: "1.13: A is a point, at start of B",
        exclude: (100, 100),
        max: 1,
        initial: B,
        expect: Ok(&[r(101, 199)]),
    },
    Case {
        name: "1.14: A is a point, in middle of B (causes split)",
        exclude: (150, 150),
        max: 2,
        initial: B,
        expect: Ok(&[r(100, 149), r(151, 199)]),
    },
    Case {
        name: "1.15: A is a point, at end of B",
        exclude: (199, 199),
        max: 1,
        initial: B,
        expect: Ok(&[r(100, 198)]),
    },
    Case {
        name: "1.16: A is a point, right of B, no overlap",
        exclude: (250, 250),
        max: 1,
        initial: B,
        expect: Ok(B),
    },
    Case {
        name: "1.17: A completely inside B (split), no space (ENOMEM)",
        exclude: (120, 179),
        max: 1,
        initial: B,
        expect: Err(()),
    },
    Case {
        name: "2.1: exclude low 1M",
        exclude: (0, (1 << 20) - 1),
        max: 3,
        initial: &[r(0, 0x3efff), r(0x3f000, 0x3ffff), r(0x40000, 0x9ffff)],
        expect: Ok(&[]),
    },
    Case {
        name: "2.2: when range out of bound",
        exclude: (100, 200),
        max: 3,
        initial: &[r(1, 299), r(401, 1000), r(1001, 2000)],
        expect: Err(()),
    },
];

#[test]
fn upstream_crash_exclude_mem_range_cases() {
    assert_eq!(CASES.len(), 19, "all upstream cases");
    for c in CASES {
        let mut storage = vec![MemRange::default(); c.max];
        storage[..c.initial.len()].copy_from_slice(c.initial);
        let mut list = RangeList::from_sorted(&mut storage, c.initial.len());
        let got = list.exclude(c.exclude.0, c.exclude.1);
        match c.expect {
            Ok(want) => {
                assert_eq!(got, Ok(()), "{}", c.name);
                assert_eq!(list.as_slice(), want, "{}", c.name);
            }
            Err(()) => {
                assert_eq!(got, Err(NoRoom { capacity: c.max }), "{}", c.name);
                assert_eq!(list.as_slice(), c.initial, "{}: unchanged on error", c.name);
            }
        }
    }
}

#[test]
fn empty_request_changes_nothing() {
    let mut s = [r(100, 199)];
    let mut list = RangeList::from_sorted(&mut s, 1);
    assert_eq!(list.exclude(150, 120), Ok(()));
    assert_eq!(list.as_slice(), &[r(100, 199)]);
}

/// Disjoint sorted ranges in 0..1024 built from a bitmap of "present" units of 8.
fn ranges_strategy() -> impl Strategy<Value = Vec<MemRange>> {
    proptest::collection::vec(any::<bool>(), 128).prop_map(|bits| {
        let mut out: Vec<MemRange> = Vec::new();
        for (i, b) in bits.iter().enumerate() {
            let (s, e) = (i as u64 * 8, i as u64 * 8 + 7);
            if *b {
                // Adjacent units stay separate ranges half of the time, as the kernel's lists may.
                match out.last_mut() {
                    Some(last) if last.end + 1 == s && i % 2 == 0 => last.end = e,
                    _ => out.push(r(s, e)),
                }
            }
        }
        out
    })
}

proptest! {
    /// The covered addresses after `exclude` are exactly the covered addresses before minus the
    /// request; the list stays sorted and disjoint; with no free slot, a split fails and leaves
    /// the list unchanged.
    #[test]
    fn exclude_matches_set_difference(initial in ranges_strategy(), a in 0u64..1100, len in 0u64..300, spare in 0usize..2) {
        let (start, end) = (a, a + len);
        let mut storage = vec![MemRange::default(); initial.len() + spare];
        storage[..initial.len()].copy_from_slice(&initial);
        let mut list = RangeList::from_sorted(&mut storage, initial.len());
        let res = list.exclude(start, end);
        let covered = |rs: &[MemRange], x: u64| rs.iter().any(|r| r.start <= x && x <= r.end);
        match res {
            Ok(()) => {
                for x in 0..1200 {
                    let want = covered(&initial, x) && !(start <= x && x <= end);
                    prop_assert_eq!(covered(list.as_slice(), x), want, "address {}", x);
                }
                for w in list.as_slice().windows(2) {
                    prop_assert!(w[0].end < w[1].start);
                }
            }
            Err(NoRoom { .. }) => {
                prop_assert_eq!(spare, 0);
                prop_assert_eq!(list.as_slice(), &initial[..]);
                prop_assert!(initial.iter().any(|r| r.start < start && end < r.end));
            }
        }
    }
}
