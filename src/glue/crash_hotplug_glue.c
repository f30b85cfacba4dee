// SPDX-License-Identifier: GPL-2.0-only
/*
 * C glue of the Rust crash hotplug implementation; see crash_hotplug_glue.h.
 */
#include <linux/cpumask.h>
#include <linux/crash_core.h>
#include <linux/crash_reserve.h>
#include <linux/kexec.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/vmalloc.h>
#include <linux/vmcore_info.h>
#include <asm/sections.h>

#include "../../../kexec_internal.h"
#include "crash_hotplug_glue.h"

bool crash_hotplug_kexec_trylock(void)
{
	return kexec_trylock();
}

void crash_hotplug_kexec_unlock(void)
{
	kexec_unlock();
}

bool crash_hotplug_kexec_in_progress(void)
{
	return kexec_in_progress;
}

struct kimage *crash_hotplug_crash_image(void)
{
	return READ_ONCE(kexec_crash_image);
}

bool crash_hotplug_image_file_mode(const struct kimage *image)
{
	return image->file_mode;
}

bool crash_hotplug_image_hotplug_support(const struct kimage *image)
{
	return image->hotplug_support;
}

void *crash_hotplug_phys_to_virt(phys_addr_t phys)
{
	return phys_to_virt(phys);
}

void *crash_hotplug_map_page(phys_addr_t phys)
{
	struct page *page = pfn_to_page(PHYS_PFN(phys));

	return vmap(&page, 1, VM_MAP, PAGE_KERNEL);
}

void crash_hotplug_unmap_page(void *addr)
{
	vunmap(addr);
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

phys_addr_t crash_hotplug_vmcoreinfo_note(u64 *size)
{
	*size = VMCOREINFO_NOTE_SIZE;
	return paddr_vmcoreinfo_note();
}

bool crash_hotplug_kernel_text(u64 *vaddr, u64 *paddr, u64 *size)
{
	if (!IS_ENABLED(CONFIG_X86_64))
		return false;
	*vaddr = (u64)(unsigned long)_text;
	*paddr = __pa_symbol(_text);
	*size = _end - _text;
	return true;
}

bool crash_hotplug_excluded_range(unsigned int i, u64 *start, u64 *end)
{
	if (i == 0) {
		*start = crashk_res.start;
		*end = crashk_res.end;
		return true;
	}
	if (i == 1) {
		*start = crashk_low_res.start;
		*end = crashk_low_res.end;
		return true;
	}
	i -= 2;
	if (i < crashk_cma_cnt) {
		*start = crashk_cma_ranges[i].start;
		*end = crashk_cma_ranges[i].end;
		return true;
	}
	return false;
}
