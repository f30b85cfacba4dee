// SPDX-License-Identifier: GPL-2.0-only
/*
 * C glue of the Rust crash hotplug implementation; see crash_hotplug_glue.h.
 */
#include <linux/cpumask.h>
#include <linux/crash_core.h>
#include <linux/kexec.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/of.h>
#include <linux/percpu.h>
#include <linux/vmalloc.h>
#include <linux/vmcore_info.h>

#include "crash_hotplug_glue.h"

void *crash_hotplug_phys_to_virt(phys_addr_t phys)
{
	return phys_to_virt(phys);
}

void *crash_hotplug_map_page(phys_addr_t phys)
{
	struct page *page = pfn_to_page(PHYS_PFN(phys));

	/* Per-CPU vmap blocks: no vmap_area allocation per call, unlike vmap(). */
	return vm_map_ram(&page, 1, NUMA_NO_NODE);
}

void crash_hotplug_unmap_page(void *addr)
{
	vm_unmap_ram(addr, 1);
}

u64 crash_hotplug_page_offset(void)
{
	return (u64)(unsigned long)__va(0);
}

unsigned int crash_hotplug_next_possible_cpu(int prev)
{
	return cpumask_next(prev, cpu_possible_mask);
}

phys_addr_t crash_hotplug_cpu_notes(unsigned int cpu)
{
	return per_cpu_ptr_to_phys(per_cpu_ptr(crash_notes, cpu));
}

u64 crash_hotplug_cpu_notes_size(void)
{
	return sizeof(note_buf_t);
}

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
