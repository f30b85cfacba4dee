#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A crash dump as drgn reads it: facts for the harness's judge (tests/harness/src/drgn.rs).

usage: read_dump.py VMLINUX DUMP [PFN ...]

Prints one JSON object: the crashed thread's stack, and for each PFN its struct page as drgn
reads it from the dump through the kernel's own page tables and vmemmap (or the error doing so),
with the dev_pagemap the kernel registered for that PFN (mm/memremap.c's pgmap_array). No
judgement here: the harness judges, so that its rules are Rust, tested on the host.
"""
import json
import sys

import drgn
from drgn.helpers.linux.mm import (
    PageHead,
    PageReserved,
    PageTail,
    compound_head,
    follow_phys,
    page_to_pfn,
    pfn_to_page,
)
from drgn.helpers.linux.xarray import xa_load


def stack(prog):
    try:
        thread = prog.crashed_thread()
        trace = thread.stack_trace()
    except (drgn.FaultError, LookupError, ValueError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    task = thread.object
    return {
        "pid": thread.tid,
        "comm": task.comm.string_().decode(errors="replace"),
        "cpu": int(task.thread_info.cpu) if hasattr(task, "thread_info") else -1,
        "frames": [frame.name or hex(frame.pc) for frame in trace],
    }


def pgmap_facts(prog, pgmap):
    altmap = pgmap.altmap
    return {
        "addr": pgmap.value_(),
        "type": type_name(prog, int(pgmap.type)),
        "vmemmap_shift": int(pgmap.vmemmap_shift),
        "range_start": int(pgmap.range.start),
        "range_end": int(pgmap.range.end),
        "altmap_base_pfn": int(altmap.base_pfn),
        "altmap_reserve": int(altmap.reserve),
        "altmap_free": int(altmap.free),
        "altmap_alloc": int(altmap.alloc),
    }


def type_name(prog, value):
    for e in prog.type("enum memory_type").enumerators:
        if e.value == value:
            return e.name
    return str(value)


def page_facts(prog, pgmap_array, pfn):
    out = {"pfn": pfn}
    page = pfn_to_page(prog, pfn)
    out["page"] = page.value_()
    try:
        out["page_phys"] = int(follow_phys(prog["init_mm"].address_of_(), page.value_()))
    except (drgn.FaultError, ValueError) as e:
        out["page_phys_error"] = f"{type(e).__name__}: {e}"
    registered = xa_load(pgmap_array, pfn)
    if registered.value_():
        registered = drgn.cast("struct dev_pagemap *", registered)
        out["registered_pgmap"] = pgmap_facts(prog, registered)
    try:
        out["flags"] = int(page.flags.f) if hasattr(page.flags, "f") else int(page.flags)
        out["refcount"] = int(page._refcount.counter)
        out["reserved"] = bool(PageReserved(page))
        out["head"] = bool(PageHead(page))
        out["tail"] = bool(PageTail(page))
        out["pfn_back"] = int(page_to_pfn(page))
        if registered.value_():
            # page_folio(page)->pgmap (7.3 keeps the back-pointer in struct folio only).
            folio = drgn.cast("struct folio *", compound_head(page))
            out["pgmap"] = folio.pgmap.value_()
    except drgn.FaultError as e:
        out["error"] = f"FaultError: {e}"
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    vmlinux, dump = sys.argv[1], sys.argv[2]
    pfns = [int(a, 0) for a in sys.argv[3:]]
    prog = drgn.Program()
    prog.set_core_dump(dump)
    prog.load_debug_info([vmlinux])
    pgmap_array = prog["pgmap_array"].address_of_()
    facts = {
        "release": prog["init_uts_ns"].name.release.string_().decode(),
        "stack": stack(prog),
        "pages": [page_facts(prog, pgmap_array, pfn) for pfn in pfns],
    }
    json.dump(facts, sys.stdout)
    print()


if __name__ == "__main__":
    main()
