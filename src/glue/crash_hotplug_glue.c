// SPDX-License-Identifier: GPL-2.0-only
/*
 * C glue of the Rust crash hotplug implementation; see crash_hotplug_glue.h.
 */
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/of.h>

#include "crash_hotplug_glue.h"

struct device_node *crash_hotplug_cpu_node(unsigned int cpu)
{
	return of_get_cpu_node(cpu, NULL);
}

void crash_hotplug_node_put(struct device_node *np)
{
	of_node_put(np);
}

#ifdef CONFIG_FA_DUMP
phys_addr_t crash_hotplug_virt_to_phys(const void *addr)
{
	return virt_to_phys((void *)addr);
}

size_t crash_hotplug_memblock_memory(u64 *ranges, size_t max)
{
	phys_addr_t start, end;
	size_t n = 0;
	u64 i;

	for_each_mem_range(i, &start, &end) {
		if (n < max) {
			ranges[2 * n] = start;
			ranges[2 * n + 1] = end;
		}
		n++;
	}
	return n;
}
#endif
