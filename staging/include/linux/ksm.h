/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __LINUX_KSM_H
#define __LINUX_KSM_H
/*
 * Kernel Samepage Merging: ksmd finds anonymous pages with identical
 * contents in registered address spaces and maps one write-protected
 * copy in their place. See Documentation/admin-guide/mm/ksm.rst.
 */

#include <linux/bitops.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>

#ifdef CONFIG_KSM
int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags);

void ksm_add_vma(struct vm_area_struct *vma);
int ksm_enable_merge_any(struct mm_struct *mm);
int ksm_disable_merge_any(struct mm_struct *mm);
int ksm_disable(struct mm_struct *mm);

int __ksm_enter(struct mm_struct *mm);
void __ksm_exit(struct mm_struct *mm);

/*
 * A zero page that ksmd put in place of an empty anonymous page is told
 * apart from one mapped by a read fault by its dirty bit: ksmd sets it,
 * the fault path never does.
 */
#define is_ksm_zero_pte(pte)	(is_zero_pfn(pte_pfn(pte)) && pte_dirty(pte))

/* Number of zero pages ksmd mapped, over all address spaces. */
extern atomic_long_t ksm_zero_pages;

static inline void ksm_map_zero_page(struct mm_struct *mm)
{
	atomic_long_inc(&ksm_zero_pages);
	atomic_long_inc(&mm->ksm_zero_pages);
}

/* Called whenever a pte is zapped or replaced, to keep the counts right. */
static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
	if (!is_ksm_zero_pte(pte))
		return;
	atomic_long_dec(&ksm_zero_pages);
	atomic_long_dec(&mm->ksm_zero_pages);
}

static inline long mm_ksm_zero_pages(struct mm_struct *mm)
{
	return atomic_long_read(&mm->ksm_zero_pages);
}

static inline void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
	long inherited;

	if (!test_bit(MMF_VM_MERGEABLE, &oldmm->flags))
		return;
	/*
	 * The child starts without tracking items of its own, but the
	 * zero page ptes it inherited are still ksmd's: count them once
	 * more globally. Registering the child is best effort.
	 */
	inherited = atomic_long_read(&mm->ksm_zero_pages);
	mm->ksm_merging_pages = 0;
	mm->ksm_rmap_items = 0;
	atomic_long_add(inherited, &ksm_zero_pages);
	__ksm_enter(mm);
}

static inline int ksm_execve(struct mm_struct *mm)
{
	if (!test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return 0;
	return __ksm_enter(mm);
}

static inline void ksm_exit(struct mm_struct *mm)
{
	if (test_bit(MMF_VM_MERGEABLE, &mm->flags))
		__ksm_exit(mm);
}

/*
 * A swapped-in folio that was a KSM folio, or that belongs to another
 * anon_vma or offset, cannot be mapped at @addr as it is: the caller gets
 * a private copy instead, and ksmd may merge it again later.
 */
struct folio *ksm_might_need_to_copy(struct folio *folio,
			struct vm_area_struct *vma, unsigned long addr);

void rmap_walk_ksm(struct folio *folio, struct rmap_walk_control *rwc);
void folio_migrate_ksm(struct folio *newfolio, struct folio *folio);
void collect_procs_ksm(struct folio *folio, struct page *page,
		struct list_head *to_kill, int force_early);
long ksm_process_profit(struct mm_struct *mm);

#else  /* !CONFIG_KSM */

static inline void ksm_add_vma(struct vm_area_struct *vma)
{
}

static inline int ksm_disable(struct mm_struct *mm)
{
	return 0;
}

static inline void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
}

static inline int ksm_execve(struct mm_struct *mm)
{
	return 0;
}

static inline void ksm_exit(struct mm_struct *mm)
{
}

static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
}

static inline void collect_procs_ksm(struct folio *folio, struct page *page,
				     struct list_head *to_kill, int force_early)
{
}

#ifdef CONFIG_MMU
static inline int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags)
{
	return 0;
}

static inline struct folio *ksm_might_need_to_copy(struct folio *folio,
			struct vm_area_struct *vma, unsigned long addr)
{
	return folio;
}

static inline void rmap_walk_ksm(struct folio *folio,
			struct rmap_walk_control *rwc)
{
}

static inline void folio_migrate_ksm(struct folio *newfolio, struct folio *old)
{
}
#endif /* CONFIG_MMU */
#endif /* !CONFIG_KSM */

#endif /* __LINUX_KSM_H */
