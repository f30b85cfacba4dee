/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * C glue of the Rust crash hotplug implementation (kernel/crash_hotplug/): what Rust cannot
 * reach through bindings (static inlines, macros, state private to kernel/). No logic lives here.
 */
#ifndef _CRASH_HOTPLUG_GLUE_H
#define _CRASH_HOTPLUG_GLUE_H

#include <linux/types.h>

struct kimage;
struct device_node;

/*
 * The NMI-safe kexec lock of kernel/kexec_internal.h, in the states of its lock word: taken
 * with a panic allowed to use the crash image (KEXEC_LOCK_HOTPLUG_EDIT) in one step, released
 * from there in one step (false if a panic took the image over: the lock must stay taken);
 * edit_begin/edit_end switch a held lock between the two held states (edit_end false likewise).
 */
bool crash_hotplug_kexec_trylock(void);
bool crash_hotplug_kexec_trylock_edit(void);
bool crash_hotplug_kexec_unlock_edit(void);
void crash_hotplug_kexec_unlock(void);
void crash_hotplug_edit_begin(void);
bool crash_hotplug_edit_end(void);
bool crash_hotplug_kexec_in_progress(void);

/* kexec_crash_image, read once; valid while the kexec lock is held. */
struct kimage *crash_hotplug_crash_image(void);
bool crash_hotplug_image_file_mode(const struct kimage *image);
bool crash_hotplug_image_hotplug_support(const struct kimage *image);

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
 * fadump capture kernel (CONFIG_FA_DUMP): zeroed page-exact buffers (freed by fadump.c's release
 * path with free_pages_exact()), their physical address, and the memblock memory ranges (as
 * [start, end) pairs; returns the number of ranges, of which at most max are stored).
 */
void *crash_hotplug_alloc_exact(size_t size);
void crash_hotplug_free_exact(void *addr, size_t size);
phys_addr_t crash_hotplug_virt_to_phys(const void *addr);
size_t crash_hotplug_memblock_memory(u64 *ranges, size_t max);

#endif /* _CRASH_HOTPLUG_GLUE_H */
