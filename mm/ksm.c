// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging (KSM): entry points.
 *
 * Processes opt in per range with madvise(MADV_MERGEABLE) or for their
 * whole address space with prctl(PR_SET_MEMORY_MERGE). Each address space
 * that opted in is registered here; the ksmd thread (ksm_scan.c) walks
 * them, finds identical anonymous pages through two content indexes
 * (ksm_index.c) and maps a single write-protected KSM page in their place
 * (ksm_merge.c). A write to a KSM page takes a private copy in the fault
 * path. Rmap walks, migration and memory failure handling of KSM pages go
 * through ksm_rmap.c; the knobs and counters are in ksm_sysfs.c.
 */

/**
 * DOC: Locking
 *
 * ksm_lock (mutex)
 *	Protects the content indexes, stable nodes and tracking items (their
 *	state, their links and each mm's item xarray), the scan cursor's
 *	address, the statistics, and writes to the tunables. ksmd holds it
 *	for a whole batch; sysfs writers hold it while they apply a value.
 *	Asserted with lockdep_assert_held() by every function that changes
 *	what it protects.
 *
 * ksm_mm_lock (spinlock)
 *	Protects the list and hash of registered mms and the cursor's mm.
 *	Fork, exec and exit register and release mms with mmap_lock held, so
 *	they cannot take ksm_lock, which is taken before mmap_lock.
 *
 * mmap_lock of a registered mm (read)
 *	Held to walk its page tables and to merge or unmerge one of its
 *	pages (mmap_assert_locked()). A task that exits waits for ksmd to
 *	drop it before its page tables are torn down (see __ksm_exit()).
 *
 * folio lock of the page being merged, then of the KSM folio
 *	The first is taken with folio_trylock() and keeps the page from
 *	being split, migrated or remapped while it is write-protected and
 *	compared. The KSM folio lock (trylock while the other is held)
 *	protects the stable node's mapping array and kpfn: rmap walks and
 *	migration hold it, and so does everything that changes them.
 *
 * anon_vma lock (read), page table lock
 *	Taken by rmap walks under the KSM folio lock, and by the page table
 *	code; the page table lock is innermost.
 *
 * Order: ksm_lock -> mmap_lock -> folio lock -> KSM folio lock ->
 * anon_vma lock -> page table lock. ksm_mm_lock nests inside any of
 * these and takes nothing else.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/mman.h>
#include <linux/pagewalk.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#define CREATE_TRACE_POINTS
#include <trace/events/ksm.h>

#include "ksm_internal.h"

/* Architecture flags of mappings KSM must leave alone. */
#if defined(VM_SAO)
#define KSM_VMA_ARCH_EXCLUDED	VM_SAO
#elif defined(VM_SPARC_ADI)
#define KSM_VMA_ARCH_EXCLUDED	VM_SPARC_ADI
#else
#define KSM_VMA_ARCH_EXCLUDED	VM_NONE
#endif

/* VMAs with any of these flags are never merged. */
#define KSM_VMA_EXCLUDED	(VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | \
				 VM_DONTEXPAND | VM_HUGETLB | VM_MIXEDMAP | \
				 VM_DROPPABLE | KSM_VMA_ARCH_EXCLUDED)

/* Indexes, nodes, items, cursor, statistics: see DOC: Locking. */
DEFINE_MUTEX(ksm_lock);
/* Tasks other than ksmd waiting for ksm_lock: ksmd yields it between batches. */
atomic_t ksm_lock_waiters = ATOMIC_INIT(0);
/* Registered mms: ksm_mm_list, ksm_mm_hash and the cursor's mm. */
DEFINE_SPINLOCK(ksm_mm_lock);
LIST_HEAD(ksm_mm_list);
DECLARE_WAIT_QUEUE_HEAD(ksmd_wait);
static DEFINE_HASHTABLE(ksm_mm_hash, 10);
static struct kmem_cache *ksm_mm_cache;

atomic_long_t ksm_zero_pages = ATOMIC_LONG_INIT(0);

struct ksm_tunables ksm_tun = {
	/* Without sysfs nobody could start ksmd: run from boot then. */
	.run			= IS_ENABLED(CONFIG_SYSFS) ? KSM_RUN_STOP :
							     KSM_RUN_MERGE,
	.pages_to_scan		= KSM_DEFAULT_PAGES_TO_SCAN,
	.sleep_millisecs	= 20,
	.merge_across_nodes	= 1,
	.merge_across_cgroups	= 1,
	.use_zero_pages		= 0,
	.max_page_sharing	= 256,
	.prune_millisecs	= 2000,
	.smart_scan		= 1,
	.advisor_mode		= KSM_ADVISOR_NONE,
	.advisor_max_cpu	= 70,
	.advisor_min_pages	= 500,
	.advisor_max_pages	= 30000,
	.advisor_target_secs	= 200,
};

struct ksm_stats ksm_stats;
struct ksm_counts ksm_counts;

/**
 * ksm_vma_compatible - may KSM merge pages of this VMA at all?
 * @vma: the VMA.
 *
 * Return: false for shared, special, hugetlb and DAX mappings.
 */
bool ksm_vma_compatible(struct vm_area_struct *vma)
{
	return !(vma->vm_flags & KSM_VMA_EXCLUDED) && !vma_is_dax(vma);
}

/**
 * ksm_mm_gone - has this mm stopped being scannable?
 * @slot: the registered mm.
 *
 * Return: true once its last user left or its registration was dropped;
 * its page tables must not be touched then.
 */
bool ksm_mm_gone(struct ksm_mm *slot)
{
	return READ_ONCE(slot->dead) || !atomic_read(&slot->mm->mm_users);
}

static struct ksm_mm *ksm_mm_lookup(struct mm_struct *mm)
{
	struct ksm_mm *slot;

	lockdep_assert_held(&ksm_mm_lock);
	hash_for_each_possible(ksm_mm_hash, slot, hnode, (unsigned long)mm)
		if (slot->mm == mm)
			return slot;
	return NULL;
}

/**
 * ksm_mm_item - the item of a page of an mm that may be registered
 * @mm: the mm; only compared, so it may have gone (and its memory reused).
 * @addr: the page's address.
 * @slotp: set to the registration of @mm when an item is found.
 *
 * A registration that holds items is freed only by ksmd, under ksm_lock,
 * which the caller holds: the one returned stays until the caller lets go.
 *
 * Return: the item of @addr, or NULL.
 */
struct ksm_item *ksm_mm_item(struct mm_struct *mm, unsigned long addr,
			     struct ksm_mm **slotp)
{
	struct ksm_item *item = NULL;
	struct ksm_mm *slot;

	lockdep_assert_held(&ksm_lock);
	spin_lock(&ksm_mm_lock);
	slot = ksm_mm_lookup(mm);
	if (slot)
		item = ksm_items_load(slot, addr);
	spin_unlock(&ksm_mm_lock);
	*slotp = slot;
	return item;
}

/**
 * ksm_mm_unlink - take an mm off the scan list and the hash
 * @slot: the mm; ksm_mm_lock is held and the cursor is not on it.
 */
void ksm_mm_unlink(struct ksm_mm *slot)
{
	lockdep_assert_held(&ksm_mm_lock);
	VM_WARN_ON_ONCE(ksm_scan_is_cursor(slot));
	hash_del(&slot->hnode);
	list_del(&slot->link);
}

/**
 * ksm_mm_free - free an unlinked mm registration that has no items
 * @slot: the registration.
 */
void ksm_mm_free(struct ksm_mm *slot)
{
	VM_WARN_ON_ONCE(!xa_empty(&slot->items));
	xa_destroy(&slot->items);
	mmdrop(slot->mm);
	kmem_cache_free(ksm_mm_cache, slot);
}

/**
 * __ksm_enter - register an mm with KSM
 * @mm: the mm; fork holds its mmap_lock for write, madvise and prctl too.
 *
 * Return: 0, or -ENOMEM.
 */
int __ksm_enter(struct mm_struct *mm)
{
	struct ksm_mm *slot, *cursor;
	bool first;

	slot = kmem_cache_zalloc(ksm_mm_cache, GFP_KERNEL);
	if (!slot)
		return -ENOMEM;
	slot->mm = mm;
	xa_init(&slot->items);
	/* Pinned and flagged before ksmd can reach the slot through the list. */
	mmgrab(mm);
	set_bit(MMF_VM_MERGEABLE, &mm->flags);
	spin_lock(&ksm_mm_lock);
	first = list_empty(&ksm_mm_list);
	hash_add(ksm_mm_hash, &slot->hnode, (unsigned long)mm);
	cursor = ksm_scan_cursor_mm();
	/*
	 * Behind the cursor, so that the round in progress ends even while
	 * processes fork all the time; at the end while everything is being
	 * unmerged, so that a child forked meanwhile is unmerged too.
	 */
	if (cursor && READ_ONCE(ksm_tun.run) != KSM_RUN_UNMERGE)
		list_add_tail(&slot->link, &cursor->link);
	else
		list_add_tail(&slot->link, &ksm_mm_list);
	spin_unlock(&ksm_mm_lock);
	trace_ksm_enter(mm);
	if (first)
		wake_up_interruptible(&ksmd_wait);
	return 0;
}

/**
 * __ksm_exit - the last user of a registered mm is gone
 * @mm: the mm, before its page tables are torn down.
 *
 * Also called on a failed exec with mmap_lock held for write and
 * mm_users still set. A registration that ksmd may be using, or that has
 * items, is marked dead and left for ksmd to free.
 */
void __ksm_exit(struct mm_struct *mm)
{
	struct ksm_mm *slot;
	bool busy;

	spin_lock(&ksm_mm_lock);
	slot = ksm_mm_lookup(mm);
	if (!slot) {
		spin_unlock(&ksm_mm_lock);
		return;
	}
	busy = ksm_scan_is_cursor(slot) || !xa_empty(&slot->items);
	if (busy)
		WRITE_ONCE(slot->dead, true);
	else
		ksm_mm_unlink(slot);
	spin_unlock(&ksm_mm_lock);

	clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
	clear_bit(MMF_VM_MERGEABLE, &mm->flags);
	trace_ksm_exit(mm);
	if (!busy) {
		ksm_mm_free(slot);
		return;
	}
	/*
	 * ksmd checks that the mm is alive after taking its mmap_lock: once
	 * it let go here, it will not walk page tables that exit_mmap() frees.
	 */
	if (!atomic_read(&mm->mm_users)) {
		mmap_write_lock(mm);
		mmap_write_unlock(mm);
	}
}

static int ksm_fork_zero_pmd(pmd_t *pmd, unsigned long addr,
			     unsigned long end, struct mm_walk *walk)
{
	unsigned long *zero = walk->private;
	pte_t *start, *pte;
	spinlock_t *ptl;

	/* None for a huge pmd: KSM zero pages are mapped by ptes only. */
	start = ksm_pte_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start)
		return 0;
	for (pte = start; addr < end; addr += PAGE_SIZE, pte++)
		*zero += is_ksm_zero_pte(ptep_get(pte));
	pte_unmap_unlock(start, ptl);
	return 0;
}

/* Only a mergeable VMA holds KSM zero pages: unmerging breaks them first. */
static int ksm_fork_zero_test(unsigned long start, unsigned long end,
			      struct mm_walk *walk)
{
	return !(walk->vma->vm_flags & VM_MERGEABLE) || !walk->vma->anon_vma;
}

static const struct mm_walk_ops ksm_fork_zero_ops = {
	.test_walk	= ksm_fork_zero_test,
	.pmd_entry	= ksm_fork_zero_pmd,
	.walk_lock	= PGWALK_RDLOCK,
};

/**
 * __ksm_fork - register the fork child of a registered mm
 * @mm: the child, whose page tables fork has just copied; its mmap lock
 *	is held for write.
 * @oldmm: the parent; its mmap lock is held for write too.
 *
 * The child tracks nothing yet, but the KSM zero pages it got count once
 * more. It does not have them all: fork copies neither MADV_DONTFORK VMAs
 * nor the pages of MADV_WIPEONFORK ones, and the count copied with the
 * mm_struct is older than the page tables. So the child's own page tables
 * are counted. Only a parent that has KSM zero pages pays for that walk,
 * which reads the ptes fork has just written; counting in the fork's copy
 * loop would be cheaper but takes hooks in mm/memory.c and kernel/fork.c.
 * Registering is best effort.
 */
void __ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
	unsigned long zero = 0;

	mmap_assert_write_locked(mm);
	mmap_assert_write_locked(oldmm);
	mm->ksm_rmap_items = 0;
	mm->ksm_merging_pages = 0;
	/* The parent's page tables stay as fork copied them until it unlocks. */
	if (mm_ksm_zero_pages(oldmm))
		walk_page_range(mm, 0, mm->task_size, &ksm_fork_zero_ops, &zero);
	atomic_long_set(&mm->ksm_zero_pages, zero);
	atomic_long_add(zero, &ksm_zero_pages);
	__ksm_enter(mm);
}

static int ksm_mm_register(struct mm_struct *mm)
{
	if (test_bit(MMF_VM_MERGEABLE, &mm->flags))
		return 0;
	return __ksm_enter(mm);
}

static void ksm_vma_opt_in(struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_MERGEABLE) && ksm_vma_compatible(vma))
		vm_flags_set(vma, VM_MERGEABLE);
}

static int ksm_vma_opt_out(struct vm_area_struct *vma)
{
	int err;

	if (!(vma->vm_flags & VM_MERGEABLE))
		return 0;
	if (vma->anon_vma) {
		/* No swap-in under the VMA lock may map a KSM page again. */
		vma_start_write(vma);
		err = ksm_merge_break_range(vma, vma->vm_start, vma->vm_end);
		if (err)
			return err;
	}
	vm_flags_clear(vma, VM_MERGEABLE);
	return 0;
}

/**
 * ksm_madvise - apply MADV_MERGEABLE or MADV_UNMERGEABLE to a VMA range
 * @vma: the VMA; its mmap_lock is held.
 * @start: start of the range.
 * @end: end of the range.
 * @advice: %MADV_MERGEABLE or %MADV_UNMERGEABLE.
 * @vm_flags: the flags the caller will give the range; updated here.
 *
 * Advice on VMAs KSM cannot handle is ignored. Unmerging gives the range
 * private copies of its KSM pages before the flag goes; the mmap lock is
 * held for write then.
 *
 * Return: 0, or an error from registering the mm or unsharing pages.
 */
int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags)
{
	int err;

	mmap_assert_locked(vma->vm_mm);
	switch (advice) {
	case MADV_MERGEABLE:
		if ((vma->vm_flags & VM_MERGEABLE) || !ksm_vma_compatible(vma))
			return 0;
		err = ksm_mm_register(vma->vm_mm);
		if (err)
			return err;
		*vm_flags |= VM_MERGEABLE;
		return 0;
	case MADV_UNMERGEABLE:
		if (!(*vm_flags & VM_MERGEABLE))
			return 0;
		if (vma->anon_vma) {
			/* No swap-in under the VMA lock may map a KSM page again. */
			vma_start_write(vma);
			err = ksm_merge_break_range(vma, start, end);
			if (err)
				return err;
		}
		*vm_flags &= ~VM_MERGEABLE;
		return 0;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(ksm_madvise);

/**
 * ksm_add_vma - mark a new VMA mergeable if its mm merges everything
 * @vma: the VMA; its mmap_lock is held for write.
 */
void ksm_add_vma(struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;

	if (!test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return;
	ksm_vma_opt_in(vma);
	ksm_mm_register(mm);
}

static void ksm_mark_all_vmas(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	for_each_vma(vmi, vma)
		ksm_vma_opt_in(vma);
}

static int ksm_unmark_all_vmas(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;
	int err;

	for_each_vma(vmi, vma) {
		err = ksm_vma_opt_out(vma);
		if (err)
			return err;
	}
	return 0;
}

/**
 * ksm_enable_merge_any - merge all compatible VMAs of an mm, now and later
 * @mm: the mm; its mmap_lock is held for write.
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_enable_merge_any(struct mm_struct *mm)
{
	int err;

	mmap_assert_write_locked(mm);
	if (test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return 0;
	err = ksm_mm_register(mm);
	if (err)
		return err;
	set_bit(MMF_VM_MERGE_ANY, &mm->flags);
	ksm_mark_all_vmas(mm);
	return 0;
}

/**
 * ksm_disable_merge_any - undo ksm_enable_merge_any(), unsharing pages
 * @mm: the mm; its mmap_lock is held for write.
 *
 * If unsharing fails, every compatible VMA stays mergeable.
 *
 * Return: 0, or the error that stopped the unsharing.
 */
int ksm_disable_merge_any(struct mm_struct *mm)
{
	int err = 0;

	mmap_assert_write_locked(mm);
	if (test_bit(MMF_VM_MERGE_ANY, &mm->flags)) {
		err = ksm_unmark_all_vmas(mm);
		if (!err)
			clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
		else	/* all or nothing: the mm stays fully mergeable */
			ksm_mark_all_vmas(mm);
	}
	return err;
}

/**
 * ksm_disable - stop all merging in an mm and unshare its pages
 * @mm: the mm; its mmap_lock is held for write.
 *
 * Return: 0, or the error that stopped the unsharing.
 */
int ksm_disable(struct mm_struct *mm)
{
	mmap_assert_write_locked(mm);
	if (test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return ksm_disable_merge_any(mm);
	return test_bit(MMF_VM_MERGEABLE, &mm->flags) ? ksm_unmark_all_vmas(mm) : 0;
}

/* ksm_merge_now() without the mmap lock. */
static int ksm_merge_now_range(struct mm_struct *mm, unsigned long start,
			       unsigned long end)
{
	struct ksm_mm *slot;
	int err;

	if (ksm_lock_other_killable())
		return -EINTR;
	/* The caller holds a user of @mm: its registration stays. */
	spin_lock(&ksm_mm_lock);
	slot = ksm_mm_lookup(mm);
	spin_unlock(&ksm_mm_lock);
	if (!slot || ksm_mm_gone(slot))
		err = -EINVAL;
	else if (READ_ONCE(ksm_tun.run) == KSM_RUN_UNMERGE)
		err = -EAGAIN;
	else
		err = ksm_scan_range(slot, start, end);
	mutex_unlock(&ksm_lock);
	return err;
}

/**
 * ksm_merge_now - merge the pages of a range now, in the caller's context
 * @mm: the mm, the caller's or a process_madvise() target's; its mmap lock
 *	is held for read. It is dropped meanwhile, since ksm_lock is taken
 *	before it, and held again on return.
 * @start: start of the range.
 * @end: end of the range.
 *
 * MADV_MERGE_NOW: the pages of the range's mergeable VMAs are merged with
 * identical pages the indexes know (KSM pages, pages ksmd looked at in its
 * current round, and each other) as ksmd would merge them, but now, on the
 * caller's CPU time. Other VMAs of the range are left alone.
 *
 * Return: 0; -EINVAL if nothing of @mm is registered with KSM; -EAGAIN
 * while everything is being unmerged (run is 2); -EINTR on a fatal signal;
 * -ENOMEM.
 */
int ksm_merge_now(struct mm_struct *mm, unsigned long start,
		  unsigned long end)
{
	int err;

	mmap_assert_locked(mm);
	mmap_read_unlock(mm);
	err = ksm_merge_now_range(mm, start, end);
	mmap_read_lock(mm);
	return err;
}

/**
 * ksm_process_profit - memory an mm saves through KSM, minus its cost
 * @mm: the mm.
 *
 * Return: bytes of merged and zero-page mappings minus the size of the
 * mm's tracking items; negative when tracking costs more than it saves.
 */
long ksm_process_profit(struct mm_struct *mm)
{
	long saved = (long)(mm->ksm_merging_pages + mm_ksm_zero_pages(mm));

	return saved * PAGE_SIZE -
	       (long)(mm->ksm_rmap_items * sizeof(struct ksm_item));
}

/**
 * ksm_process_mergeable - may ksmd merge anything in this mm now?
 * @mm: the mm; its mmap_lock is held.
 *
 * Being registered is not enough: an mm stays registered after
 * MADV_UNMERGEABLE took the flag off all of its ranges.
 *
 * Return: true if at least one of its VMAs is marked VM_MERGEABLE.
 */
bool ksm_process_mergeable(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	for_each_vma(vmi, vma)
		if (vma->vm_flags & VM_MERGEABLE)
			return true;
	return false;
}

#ifdef CONFIG_DEBUG_FS
static int ksm_counts_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "looks %lu\n", READ_ONCE(ksm_counts.looks));
	seq_printf(m, "changed %lu\n", READ_ONCE(ksm_counts.changed));
	seq_printf(m, "gated %lu\n", READ_ONCE(ksm_counts.gated));
	seq_printf(m, "breaks %lu\n", READ_ONCE(ksm_counts.breaks));
	seq_printf(m, "compares %lu\n", READ_ONCE(ksm_counts.compares));
	seq_printf(m, "compare_misses %lu\n",
		   READ_ONCE(ksm_counts.compare_misses));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ksm_counts);

static void __init ksm_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("ksm", NULL);

	debugfs_create_file("counts", 0444, dir, NULL, &ksm_counts_fops);
}
#else
static inline void ksm_debugfs_init(void)
{
}
#endif

/*
 * The page an unstable item tracks, for the index: only a page that can
 * still merge as an ordinary page qualifies.
 */
static struct page *ksm_unstable_item_page(struct ksm_item *item)
{
	struct folio *folio;
	struct page *page;

	folio = ksm_merge_get_folio(ksm_item_owner(item), ksm_item_addr(item),
				    &page);
	if (!folio)
		return NULL;
	if (folio_test_ksm(folio)) {
		folio_put(folio);
		return NULL;
	}
	return page;
}

static const struct ksm_index_ops ksm_live_index_ops = {
	.item_page = ksm_unstable_item_page,
	.item_domain = ksm_item_domain,
	.node_moved = ksm_memory_node_moved,
};

static int __init ksm_init(void)
{
	int err;

	ksm_mm_cache = KMEM_CACHE(ksm_mm, 0);
	if (!ksm_mm_cache)
		return -ENOMEM;
	err = ksm_index_init(&ksm_live_index_ops);
	if (!err)
		err = ksm_scan_init();
	if (!err)
		err = ksm_memory_init();
	if (!err)
		err = ksmd_start();
	if (!err)
		err = ksm_sysfs_init();
	if (!err)
		ksm_debugfs_init();
	if (err)
		pr_err("ksm: initialisation failed: %d\n", err);
	return err;
}
subsys_initcall(ksm_init);
