// SPDX-License-Identifier: GPL-2.0-only
//! KUnit suites of crash_hotplug, run at boot when `CONFIG_CRASH_HOTPLUG_KUNIT_TEST=y`.

use kernel::prelude::*;

#[kunit_tests(crash_hotplug_model)]
mod model_tests {
    use crate::model::{
        Event,
        EventKind,
        EventStats,
        MemRange, //
    };

    #[test]
    fn mem_range_from_pfns() {
        // One 128 MiB memory block at 4 GiB with 4 KiB pages.
        let r = MemRange::from_pfns(0x100000, 0x8000, 12);
        assert_eq!(
            r,
            Some(MemRange {
                start: 0x1_0000_0000,
                end: 0x1_07ff_ffff
            })
        );
        assert_eq!(r.map(|r| r.size()), Some(128 << 20));
    }

    #[test]
    fn mem_range_whole_block_with_memmap_on_memory() {
        // memory_block_online() reports the 128 MiB block at 4 GiB from past its 2 MiB of struct
        // pages (memmap_on_memory); the event covers the whole block.
        let r = MemRange::block_from_pfns(0x100200, 0x7e00, 0x8000, 12);
        assert_eq!(
            r,
            Some(MemRange {
                start: 0x1_0000_0000,
                end: 0x1_07ff_ffff
            })
        );
        assert_eq!(
            MemRange::block_from_pfns(0x100000, 0x8000, 0x8000, 12),
            MemRange::from_pfns(0x100000, 0x8000, 12)
        );
        assert_eq!(MemRange::block_from_pfns(0x100200, 0x7e00, 0, 12), None);
    }

    #[test]
    fn mem_range_rejects_empty_and_overflow() {
        assert_eq!(MemRange::from_pfns(1, 0, 12), None);
        assert_eq!(MemRange::from_pfns(u64::MAX, 2, 12), None);
        assert_eq!(MemRange::from_pfns(1 << 52, 1, 12), None);
        assert!(MemRange::from_pfns((1 << 52) - 1, 1, 12).is_some());
    }

    #[test]
    fn stats_count_per_kind_and_keep_last() {
        let mut s = EventStats::new();
        let r = MemRange {
            start: 0x1000,
            end: 0x1fff,
        };
        assert_eq!(s.record(Event::OnlineMemory(r)), 1);
        assert_eq!(s.record(Event::OnlineMemory(r)), 2);
        assert_eq!(s.record(Event::AddCpu(3)), 1);
        assert_eq!(s.count(EventKind::OnlineMemory), 2);
        assert_eq!(s.count(EventKind::AddCpu), 1);
        assert_eq!(s.count(EventKind::RemoveCpu), 0);
        assert_eq!(s.count(EventKind::OfflineMemory), 0);
        assert_eq!(s.total(), 3);
        assert_eq!(s.last(), Some(Event::AddCpu(3)));
    }
}

#[kunit_tests(crash_hotplug_elfcorehdr)]
mod elfcorehdr_tests {
    use kernel::{
        alloc::KVVec,
        prelude::*, //
    };

    use crate::model::{
        build,
        slots,
        Elfcorehdr,
        Event,
        HeaderSpec,
        Index,
        MemRange,
        Node,
        PF_DEV_VMEMMAP,
        PF_RWX, //
    };

    const PO: u64 = 0xffff_8880_0000_0000;

    fn spec(ram: &[MemRange]) -> HeaderSpec<'_> {
        HeaderSpec {
            machine: 62,
            page_offset: PO,
            cpu_notes: &[0x1000, 0x2000],
            cpu_note_size: 0x170,
            vmcoreinfo: (0x3000, 0x1000),
            kernel_text: None,
            ram,
        }
    }

    #[test]
    fn online_offline_in_place() -> Result {
        let mut buf = KVec::from_elem(0u8, 64 + 32 * 56, GFP_KERNEL)?;
        let base = [MemRange {
            start: 0x10_0000,
            end: 0x3fff_ffff,
        }];
        assert!(build(&mut buf, &spec(&base)).is_ok());
        let nodes = KVVec::from_elem(Node::EMPTY, slots(buf.len()), GFP_KERNEL)?;
        let mut ix = Index::new(nodes);
        let mut hdr = match Elfcorehdr::open(&mut buf[..], PO, &mut ix) {
            Ok(h) => h,
            Err(_) => return Err(EINVAL),
        };
        let block = MemRange {
            start: 0x1_0000_0000,
            end: 0x1_07ff_ffff,
        };
        assert_eq!(hdr.add_ram(block), Ok(1));
        assert_eq!(hdr.add_ram(block), Ok(0));
        assert_eq!(hdr.usage().ram_loads, 2);
        assert_eq!(hdr.usage().notes, 3);
        // Offlining a block inside the boot range splits it.
        let inner = MemRange {
            start: 0x800_0000,
            end: 0xfff_ffff,
        };
        assert_eq!(hdr.remove_ram(inner), Ok(1));
        assert_eq!(hdr.remove_ram(block), Ok(1));
        let mut n = 0;
        let mut covered = 0u64;
        for r in hdr.ram_ranges() {
            n += 1;
            covered += r.size();
            assert!(r.end < inner.start || r.start > inner.end);
        }
        assert_eq!(n, 2);
        assert_eq!(covered, base[0].size() - inner.size());
        assert!(hdr.index_matches());
        Ok(())
    }

    /// A pmem namespace's device-backed vmemmap (issue 13): added as its own kind of `PT_LOAD`
    /// at its direct-map address, left alone by a memory block going offline over it, found again
    /// by a fresh index, and removed by its own event.
    #[test]
    fn device_vmemmap_in_place() -> Result {
        let mut buf = KVec::from_elem(0u8, 64 + 32 * 56, GFP_KERNEL)?;
        let base = [MemRange {
            start: 0x10_0000,
            end: 0x3fff_ffff,
        }];
        assert!(build(&mut buf, &spec(&base)).is_ok());
        // A 1 GiB namespace at 5 GiB: 8 KiB info block padded to 2 MiB, 4 MiB of memmap.
        let ns = MemRange {
            start: 0x1_4000_0000,
            end: 0x1_405f_ffff,
        };
        {
            let nodes = KVVec::from_elem(Node::EMPTY, slots(buf.len()), GFP_KERNEL)?;
            let mut ix = Index::new(nodes);
            let mut hdr = Elfcorehdr::open(&mut buf[..], PO, &mut ix).map_err(|_| EINVAL)?;
            assert_eq!(hdr.apply_event(Event::AddDeviceVmemmap(ns)), Ok(1));
            assert_eq!(hdr.apply_event(Event::AddDeviceVmemmap(ns)), Ok(0));
            assert_eq!(hdr.apply_event(Event::OfflineMemory(ns)), Ok(0));
            let last = hdr.phdr(hdr.usage().phnum - 1);
            assert_eq!(last.p_vaddr, PO + ns.start);
            assert_eq!(last.p_flags, PF_RWX | PF_DEV_VMEMMAP);
            assert_eq!((hdr.usage().ram_loads, hdr.usage().device_loads), (1, 1));
        }
        let nodes = KVVec::from_elem(Node::EMPTY, slots(buf.len()), GFP_KERNEL)?;
        let mut ix = Index::new(nodes);
        let mut hdr = Elfcorehdr::open(&mut buf[..], PO, &mut ix).map_err(|_| EINVAL)?;
        assert!(hdr.index_matches());
        assert_eq!(hdr.usage().device_loads, 1);
        assert_eq!(hdr.apply_event(Event::RemoveDeviceVmemmap(ns)), Ok(1));
        assert_eq!(hdr.device_vmemmap_ranges().count(), 0);
        assert_eq!(hdr.ram_ranges().count(), 1);
        assert!(hdr.index_matches());
        Ok(())
    }
}

/// The rust/kernel abstractions this crate adds, against the live kernel at boot.
#[kunit_tests(crash_hotplug_kernel_abstractions)]
mod abstraction_tests {
    use kernel::{
        cpu::CpuId,
        cpuhp::{
            self,
            Section, //
        },
        kexec::{
            Access,
            Lock, //
        },
        prelude::*,
    };

    struct Idle;

    impl cpuhp::Callbacks for Idle {
        fn startup(_cpu: CpuId) -> Result {
            Ok(())
        }

        fn teardown(_cpu: CpuId) -> Result {
            Ok(())
        }
    }

    #[test]
    fn cpuhp_state_is_freed_on_drop() -> Result {
        // The core gives the first free dynamic state: once the first registration is dropped,
        // the second one gets its number back.
        let first = cpuhp::Registration::<Idle>::new_nocalls(Section::Online, c"crash/kunit")?;
        let state = first.state();
        assert!(state > 0);
        drop(first);
        let second = cpuhp::Registration::<Idle>::new_nocalls(Section::Online, c"crash/kunit")?;
        assert_eq!(second.state(), state);
        Ok(())
    }

    #[cfg(CONFIG_MEMORY_HOTPLUG)]
    #[test]
    fn memory_notifier_is_called_until_dropped() -> Result {
        use kernel::{
            memory::{
                self,
                Action,
                Pages, //
            },
            sync::atomic::{
                Atomic,
                Relaxed, //
            },
        };

        // Pages no memory has: only this test's notifiers act on them.
        const NOWHERE: Pages = Pages {
            start_pfn: usize::MAX,
            nr_pages: 0,
        };
        static SEEN: Atomic<u32> = Atomic::new(0);

        struct Counter;

        impl memory::Notifier for Counter {
            fn notify(_action: Action, pages: Pages) -> Result {
                if pages == NOWHERE {
                    SEEN.fetch_add(1, Relaxed);
                }
                Ok(())
            }
        }

        // Called after `Counter` (a lower priority) and before every other notifier: it ends
        // the chain for `NOWHERE`, so that no other notifier sees those pages.
        struct Stopper;

        impl memory::Notifier for Stopper {
            fn notify(_action: Action, pages: Pages) -> Result {
                if pages == NOWHERE {
                    return Err(EALREADY);
                }
                Ok(())
            }
        }

        let stopper = KBox::pin_init(
            memory::Registration::<Stopper>::new(i32::MAX - 1),
            GFP_KERNEL,
        )?;
        let counter = KBox::pin_init(memory::Registration::<Counter>::new(i32::MAX), GFP_KERNEL)?;
        // The error that stopped the chain comes back (`notifier_from_errno()`).
        assert_eq!(memory::notify(Action::CancelOnline, NOWHERE), Err(EALREADY));
        assert_eq!(SEEN.load(Relaxed), 1);
        // Dropped, the counter is off the chain (left on it, its freed block would be called).
        drop(counter);
        assert_eq!(memory::notify(Action::CancelOnline, NOWHERE), Err(EALREADY));
        assert_eq!(SEEN.load(Relaxed), 1);
        drop(stopper);
        assert!(memory::block_size_bytes().is_power_of_two());
        Ok(())
    }

    #[test]
    fn kexec_lock_states_exclude_each_other() -> Result {
        // At boot no load is under way and nothing is loaded yet.
        let exclusive = Lock::try_lock(Access::Exclusive).ok_or(EBUSY)?;
        assert!(exclusive.crash_image().is_none());
        assert!(Lock::try_lock(Access::OpenToPanic).is_none());
        assert!(Lock::try_lock(Access::Exclusive).is_none());
        drop(exclusive);
        // Released from the plain held state.
        let open = Lock::try_lock(Access::OpenToPanic).ok_or(EBUSY)?;
        assert!(Lock::try_lock(Access::Exclusive).is_none());
        // Closed and opened again around `f`: still held throughout.
        assert!(open.exclusive_during(|| Lock::try_lock(Access::Exclusive).is_none()));
        assert!(Lock::try_lock(Access::OpenToPanic).is_none());
        drop(open);
        // Released from the open state.
        assert!(Lock::try_lock(Access::Exclusive).is_some());
        Ok(())
    }
}
