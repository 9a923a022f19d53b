/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel Samepage Merging (KSM).
 *
 * ksmd looks for anonymous pages with identical contents in the address
 * spaces that opted in, and maps one write-protected copy in their place.
 * User documentation: Documentation/admin-guide/mm/ksm.rst.
 */
#ifndef __LINUX_KSM_H
#define __LINUX_KSM_H

#include <linux/mm.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>
#include <linux/pagemap.h>
#include <linux/bitops.h>

#ifdef CONFIG_KSM

/* Registration of address spaces: fork, exec, exit, madvise, prctl. */
int __ksm_enter(struct mm_struct *mm);
void __ksm_exit(struct mm_struct *mm);
void __ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm);
int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags);
void ksm_add_vma(struct vm_area_struct *vma);
int ksm_enable_merge_any(struct mm_struct *mm);
int ksm_disable_merge_any(struct mm_struct *mm);
int ksm_disable(struct mm_struct *mm);
long ksm_process_profit(struct mm_struct *mm);
int ksm_merge_now(struct mm_struct *mm, unsigned long start,
		  unsigned long end);
struct mem_cgroup;
struct seq_buf;
void ksm_memcg_stat_format(struct mem_cgroup *memcg, struct seq_buf *s);
int ksm_memcg_merge_any_switch(struct mem_cgroup *memcg);
int ksm_memcg_set_merge_any(struct mem_cgroup *memcg, bool on);
void ksm_memcg_attach(struct task_struct *task, struct mem_cgroup *memcg);
void ksm_memcg_offline(struct mem_cgroup *memcg);
bool ksm_process_mergeable(struct mm_struct *mm);

/* KSM folios as seen by rmap, migration, memory failure and swap-in. */
void rmap_walk_ksm(struct folio *folio, struct rmap_walk_control *rwc);
void folio_migrate_ksm(struct folio *dst, struct folio *src);
void collect_procs_ksm(struct folio *folio, struct page *page,
		       struct list_head *to_kill, int force_early);
/*
 * A folio found in the swap cache cannot always be mapped where the fault
 * is: a KSM folio while everything is being unmerged, or a folio of
 * another anon_vma or page offset. The fault then maps a private copy,
 * and ksmd may merge that again later.
 */
struct folio *ksm_might_need_to_copy(struct folio *folio,
				     struct vm_area_struct *vma,
				     unsigned long addr);

/* Zero pages that ksmd mapped, over all address spaces. */
extern atomic_long_t ksm_zero_pages;

/*
 * ksmd sets the dirty bit of the zero page ptes it installs; a read fault
 * never does. That is how they are told apart when they go away.
 */
#define is_ksm_zero_pte(pte)	(is_zero_pfn(pte_pfn(pte)) && pte_dirty(pte))

static inline long mm_ksm_zero_pages(struct mm_struct *mm)
{
	return atomic_long_read(&mm->ksm_zero_pages);
}

static inline void ksm_map_zero_page(struct mm_struct *mm)
{
	atomic_long_inc(&mm->ksm_zero_pages);
	atomic_long_inc(&ksm_zero_pages);
}

/* The fault and zap paths call this for every pte they replace. */
static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
	if (!is_ksm_zero_pte(pte))
		return;
	atomic_long_dec(&mm->ksm_zero_pages);
	atomic_long_dec(&ksm_zero_pages);
}

void __ksm_cow_broken(struct mm_struct *mm, unsigned long addr);

/*
 * A write fault replaced the mapping of @old_folio at @addr by a private
 * copy. If that was a KSM page, ksmd is told, so that the statistics stop
 * counting the mapping before its current round ends.
 */
static inline void ksm_cow_broken(struct folio *old_folio,
				  struct mm_struct *mm, unsigned long addr)
{
	if (old_folio && folio_test_ksm(old_folio))
		__ksm_cow_broken(mm, addr);
}

/* Called when fork has copied the VMAs and page tables of @oldmm. */
static inline void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
	if (test_bit(MMF_VM_MERGEABLE, &oldmm->flags))
		__ksm_fork(mm, oldmm);
}

static inline int ksm_execve(struct mm_struct *mm)
{
	return test_bit(MMF_VM_MERGE_ANY, &mm->flags) ? __ksm_enter(mm) : 0;
}

static inline void ksm_exit(struct mm_struct *mm)
{
	if (!test_bit(MMF_VM_MERGEABLE, &mm->flags))
		return;
	__ksm_exit(mm);
}

#else  /* !CONFIG_KSM: nothing is ever merged */

static inline void ksm_exit(struct mm_struct *mm)
{
}

static inline int ksm_execve(struct mm_struct *mm)
{
	return 0;
}

static inline void ksm_add_vma(struct vm_area_struct *vma)
{
}

static inline void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
}

static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
}

static inline void ksm_cow_broken(struct folio *old_folio,
				  struct mm_struct *mm, unsigned long addr)
{
}

struct mem_cgroup;
struct seq_buf;
static inline void ksm_memcg_stat_format(struct mem_cgroup *memcg,
					 struct seq_buf *s)
{
}

static inline void ksm_memcg_attach(struct task_struct *task,
				    struct mem_cgroup *memcg)
{
}

static inline void ksm_memcg_offline(struct mem_cgroup *memcg)
{
}

/* do_madvise() rejects MADV_MERGE_NOW without CONFIG_KSM. */
static inline int ksm_merge_now(struct mm_struct *mm, unsigned long start,
				unsigned long end)
{
	return -EINVAL;
}

static inline int ksm_disable(struct mm_struct *mm)
{
	return 0;
}

static inline void collect_procs_ksm(struct folio *folio, struct page *page,
				     struct list_head *to_kill,
				     int force_early)
{
}

#ifdef CONFIG_MMU
static inline void rmap_walk_ksm(struct folio *folio,
				 struct rmap_walk_control *rwc)
{
}

static inline void folio_migrate_ksm(struct folio *dst, struct folio *src)
{
}

static inline struct folio *ksm_might_need_to_copy(struct folio *folio,
						   struct vm_area_struct *vma,
						   unsigned long addr)
{
	return folio;
}

static inline int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
			      unsigned long end, int advice,
			      unsigned long *vm_flags)
{
	return 0;
}
#endif /* CONFIG_MMU */

#endif /* CONFIG_KSM */

#endif /* __LINUX_KSM_H */
