/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * C glue of the Rust crash hotplug implementation (kernel/crash_hotplug/): what Rust cannot
 * reach through bindings (static inlines, macros, state private to kernel/). No logic lives here.
 */
#ifndef _CRASH_HOTPLUG_GLUE_H
#define _CRASH_HOTPLUG_GLUE_H

#include <linux/types.h>

struct device_node;

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
