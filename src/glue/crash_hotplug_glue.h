/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * C glue of the Rust crash hotplug implementation (kernel/crash_hotplug/): what Rust cannot
 * reach through bindings (static inlines, macros, state private to kernel/). No logic lives here.
 */
#ifndef _CRASH_HOTPLUG_GLUE_H
#define _CRASH_HOTPLUG_GLUE_H

#include <linux/types.h>

struct device_node;

/* Direct-map address of physical memory (read access to crash kernel memory). */
void *crash_hotplug_phys_to_virt(phys_addr_t phys);
/*
 * A private writable alias of one page of crash kernel memory; the direct map
 * keeps its protection.
 */
void *crash_hotplug_map_page(phys_addr_t phys);
void crash_hotplug_unmap_page(void *addr);

/* What an elfcorehdr lists. */
u64 crash_hotplug_page_offset(void);
unsigned int crash_hotplug_next_possible_cpu(int prev);
phys_addr_t crash_hotplug_cpu_notes(unsigned int cpu);
u64 crash_hotplug_cpu_notes_size(void);

/* The live device tree node of a CPU (a core node on powerpc), with a reference; NULL if none. */
struct device_node *crash_hotplug_cpu_node(unsigned int cpu);
void crash_hotplug_node_put(struct device_node *np);

/*
 * fadump capture kernel (CONFIG_FA_DUMP): the physical address of a direct-map buffer, and the
 * memblock memory ranges (as [start, end) pairs; returns the number of ranges, of which at most
 * max are stored).
 */
phys_addr_t crash_hotplug_virt_to_phys(const void *addr);
size_t crash_hotplug_memblock_memory(u64 *ranges, size_t max);

#endif /* _CRASH_HOTPLUG_GLUE_H */
