// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM pages seen from the rest of mm: rmap walks, migration, memory
 * failure and swap-in.
 *
 * A KSM folio has no anon_vma of its own: its ->mapping points to its
 * stable node, whose mapping array lists the tracked mappings. Each of
 * them records the anon_vma and the linear page offset it was merged at,
 * so the VMAs that may map it are found in the anon_vma interval tree at
 * exactly that offset, fork children included. The caller holds the folio
 * lock, which keeps the mapping array still.
 */

#include <linux/debugfs.h>
#include <linux/jump_label.h>
#include <linux/memcontrol.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/swap.h>

#include "internal.h"
#include "ksm_internal.h"

#ifdef CONFIG_DEBUG_FS
/*
 * How long rmap walks of KSM pages hold an anon_vma lock, measured in
 * local_clock() time from the moment the lock is taken to the moment it
 * is dropped (rmap_one() calls included), and how many VMAs one hold
 * looked at. Under /sys/kernel/debug/ksm/; writing 0 resets a maximum.
 * rmap_whole_anon_vma=1 makes walks look at every VMA of the anon_vma,
 * as KSM did before walks were narrowed to the page offset, for
 * comparison.
 *
 * None of it costs rmap walks anything until 1 is written to rmap_timing:
 * the clock reads, the shared maxima and rmap_whole_anon_vma sit behind a
 * static key, which writing 0 turns off again.
 */
static DEFINE_STATIC_KEY_FALSE(ksm_rmap_timing);
static unsigned long ksm_rmap_hold_max_ns;
static unsigned long ksm_rmap_vmas_max;
static unsigned long ksm_rmap_holds;
static bool ksm_rmap_whole_anon_vma;

static void ksm_rmap_stat_max(unsigned long *max, unsigned long val)
{
	unsigned long old = READ_ONCE(*max);

	while (val > old && !try_cmpxchg(max, &old, val))
		;
}

static u64 ksm_rmap_hold_start(void)
{
	if (!static_branch_unlikely(&ksm_rmap_timing))
		return 0;
	return local_clock();
}

static void ksm_rmap_hold_end(u64 start, unsigned long vmas)
{
	/* The key may have come on during the hold: start is 0 then. */
	if (!static_branch_unlikely(&ksm_rmap_timing) || !start)
		return;
	ksm_rmap_stat_max(&ksm_rmap_hold_max_ns, local_clock() - start);
	ksm_rmap_stat_max(&ksm_rmap_vmas_max, vmas);
	/* A count for people, not for the kernel: a lost update is fine. */
	data_race(ksm_rmap_holds++);
}

static bool ksm_rmap_whole(void)
{
	return static_branch_unlikely(&ksm_rmap_timing) &&
	       READ_ONCE(ksm_rmap_whole_anon_vma);
}

static pgoff_t ksm_rmap_last(pgoff_t pgoff)
{
	return ksm_rmap_whole() ? ULONG_MAX : pgoff;
}

static pgoff_t ksm_rmap_first(pgoff_t pgoff)
{
	return ksm_rmap_whole() ? 0 : pgoff;
}

static int ksm_rmap_timing_get(void *data, u64 *val)
{
	*val = static_key_enabled(&ksm_rmap_timing);
	return 0;
}

static int ksm_rmap_timing_set(void *data, u64 val)
{
	if (val > 1)
		return -EINVAL;
	/* Both are idempotent, and serialised by the jump label lock. */
	if (val)
		static_branch_enable(&ksm_rmap_timing);
	else
		static_branch_disable(&ksm_rmap_timing);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(ksm_rmap_timing_fops, ksm_rmap_timing_get,
			 ksm_rmap_timing_set, "%llu\n");

static int __init ksm_rmap_debugfs_init(void)
{
	/* ksm_init() may have made the directory already. */
	struct dentry *found = debugfs_lookup("ksm", NULL);
	struct dentry *dir = found ?: debugfs_create_dir("ksm", NULL);

	debugfs_create_file_unsafe("rmap_timing", 0600, dir, NULL,
				   &ksm_rmap_timing_fops);
	debugfs_create_ulong("rmap_hold_max_ns", 0600, dir,
			     &ksm_rmap_hold_max_ns);
	debugfs_create_ulong("rmap_vmas_max", 0600, dir, &ksm_rmap_vmas_max);
	debugfs_create_ulong("rmap_holds", 0400, dir, &ksm_rmap_holds);
	debugfs_create_bool("rmap_whole_anon_vma", 0600, dir,
			    &ksm_rmap_whole_anon_vma);
	dput(found);
	return 0;
}
late_initcall(ksm_rmap_debugfs_init);
#else
static inline u64 ksm_rmap_hold_start(void)
{
	return 0;
}

static inline void ksm_rmap_hold_end(u64 start, unsigned long vmas)
{
}

static inline pgoff_t ksm_rmap_first(pgoff_t pgoff)
{
	return pgoff;
}

static inline pgoff_t ksm_rmap_last(pgoff_t pgoff)
{
	return pgoff;
}
#endif /* CONFIG_DEBUG_FS */

static bool ksm_rmap_lock(struct anon_vma *anon_vma,
			  struct rmap_walk_control *rwc)
{
	if (!rwc->try_lock) {
		anon_vma_lock_read(anon_vma);
		return true;
	}
	if (anon_vma_trylock_read(anon_vma))
		return true;
	rwc->contended = true;
	return false;
}

/*
 * Visit the VMAs that may map the page through @map: in the first pass
 * those of the item's own mm, in the second those of other mms (fork
 * children).
 * Returns false when the walk must stop.
 */
static bool ksm_rmap_walk_item(struct folio *folio, const struct ksm_map *map,
			       bool others, struct rmap_walk_control *rwc)
{
	struct mm_struct *mm = ksm_item_owner(map->item)->mm;
	struct anon_vma *anon_vma = map->anon_vma;
	pgoff_t pgoff = ksm_item_nr(map->item);
	/* Both cover pgoff however rmap_timing changes meanwhile. */
	pgoff_t first = ksm_rmap_first(pgoff), last = ksm_rmap_last(pgoff);
	struct vm_area_struct *vma;
	struct anon_vma_chain *avc;
	unsigned long addr, vmas = 0;
	bool more = true;
	bool own;
	u64 held;

	cond_resched();
	if (!ksm_rmap_lock(anon_vma, rwc))
		return false;
	held = ksm_rmap_hold_start();
	/* Only the VMAs whose range covers the page offset can map it. */
	anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, first, last) {
		vma = avc->vma;
		vmas++;
		cond_resched();
		own = vma->vm_mm == mm;
		if (own == others)
			continue;
		addr = vma_address(vma, pgoff, 1);
		if (addr == -EFAULT)
			continue;
		if (rwc->invalid_vma && rwc->invalid_vma(vma, rwc->arg))
			continue;
		if (!rwc->rmap_one(folio, vma, addr, rwc->arg) ||
		    (rwc->done && rwc->done(folio))) {
			more = false;
			break;
		}
	}
	ksm_rmap_hold_end(held, vmas);
	anon_vma_unlock_read(anon_vma);
	return more;
}

/**
 * rmap_walk_ksm - call rwc->rmap_one() for every mapping of a KSM folio
 * @folio: the KSM folio, locked.
 * @rwc: the walk control.
 */
void rmap_walk_ksm(struct folio *folio, struct rmap_walk_control *rwc)
{
	struct ksm_stable_node *node;
	unsigned int i;
	int pass;

	VM_WARN_ON_ONCE_FOLIO(!folio_test_ksm(folio), folio);
	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);
	node = folio_ksm_node(folio);
	if (!node)
		return;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < node->nr_maps; i++) {
			if (!ksm_rmap_walk_item(folio, &node->maps[i], pass,
						rwc))
				return;
		}
	}
}

/**
 * folio_migrate_ksm - the stable node follows its folio to a new one
 * @newfolio: the destination, locked, whose ->mapping is already copied.
 * @folio: the source, locked.
 */
void folio_migrate_ksm(struct folio *newfolio, struct folio *folio)
{
	struct ksm_stable_node *node = folio_ksm_node(folio);

	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);
	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(newfolio), newfolio);
	if (!node)
		return;
	VM_WARN_ON_ONCE_FOLIO(folio_ksm_node(newfolio) != node, newfolio);
	WRITE_ONCE(node->kpfn, folio_pfn(newfolio));
	/*
	 * ksm_node_get_folio() reads ->mapping then kpfn: publish the new
	 * pfn before the old folio stops pointing to the node.
	 */
	smp_wmb();
	/* Still anon for the rest of the migration, but with no node. */
	WRITE_ONCE(folio->mapping, (void *)PAGE_MAPPING_KSM);
	/* Moved to another node's index domain: see ksm_memory.c. */
	if (ksm_index_domain(newfolio) !=
	    ksm_domain_node(READ_ONCE(node->domain)))
		ksm_memory_node_moved();
}

#ifdef CONFIG_MEMORY_FAILURE
/* Queue for killing every task that maps the page through @map. */
static void ksm_rmap_collect_item(const struct ksm_map *map, struct page *page,
				  struct list_head *to_kill, int force_early)
{
	struct anon_vma *anon_vma = map->anon_vma;
	pgoff_t pgoff = ksm_item_nr(map->item);
	struct task_struct *tsk, *t;
	struct anon_vma_chain *avc;
	unsigned long addr;

	anon_vma_lock_read(anon_vma);
	rcu_read_lock();
	for_each_process(tsk) {
		t = task_early_kill(tsk, force_early);
		if (!t)
			continue;
		anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, pgoff,
					       pgoff) {
			if (avc->vma->vm_mm != t->mm)
				continue;
			addr = vma_address(avc->vma, pgoff, 1);
			if (addr != -EFAULT)
				add_to_kill_ksm(t, page, avc->vma, to_kill,
						addr);
		}
	}
	rcu_read_unlock();
	anon_vma_unlock_read(anon_vma);
}

/**
 * collect_procs_ksm - find the tasks to kill for a poisoned KSM page
 * @folio: the KSM folio, locked.
 * @page: the poisoned page.
 * @to_kill: list the tasks are added to.
 * @force_early: kill tasks now even if they did not ask for early kill.
 */
void collect_procs_ksm(struct folio *folio, struct page *page,
		       struct list_head *to_kill, int force_early)
{
	struct ksm_stable_node *node = folio_ksm_node(folio);
	unsigned int i;

	/* The lock keeps the mapping array still. */
	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);
	if (!node)
		return;
	for (i = 0; i < node->nr_maps; i++)
		ksm_rmap_collect_item(&node->maps[i], page, to_kill,
				      force_early);
}
#endif /* CONFIG_MEMORY_FAILURE */

/* Can the swap-in fault map this folio at @addr of @vma as it is? */
static bool ksm_rmap_needs_copy(struct folio *folio,
				struct vm_area_struct *vma, unsigned long addr)
{
	struct anon_vma *anon_vma;

	if (folio_test_large(folio))
		return false;
	/*
	 * A KSM folio whose node was retired cannot be shared again, and
	 * while everything is unshared KSM pages must not come back.
	 */
	if (folio_test_ksm(folio))
		return !folio_ksm_node(folio) ||
		       READ_ONCE(ksm_tun.run) == KSM_RUN_UNMERGE;
	anon_vma = folio_anon_vma(folio);
	if (!anon_vma)
		return false;
	return folio->index != linear_page_index(vma, addr) ||
	       anon_vma->root != vma->anon_vma->root;
}

/*
 * Make a private copy look like a page just read from swap: the fault
 * path takes it locked and up to date, and dirty, since no swap slot holds
 * its contents. Only swap-in copies, so the event exists only with swap.
 */
static void ksm_swpin_copy_ready(struct folio *copy)
{
	__folio_set_locked(copy);
	__folio_mark_uptodate(copy);
	folio_set_dirty(copy);
#ifdef CONFIG_SWAP
	count_vm_event(KSM_SWPIN_COPY);
#endif
}

/**
 * ksm_might_need_to_copy - a copy of a swapped-in folio, if it needs one
 * @folio: the folio found in the swap cache, locked.
 * @vma: the VMA of the fault.
 * @addr: the address of the fault.
 *
 * Return: @folio if it can be mapped as it is, a new locked copy, NULL
 * when out of memory, or ERR_PTR(-EHWPOISON) for a poisoned page.
 */
struct folio *ksm_might_need_to_copy(struct folio *folio,
				     struct vm_area_struct *vma,
				     unsigned long addr)
{
	struct page *page = folio_page(folio, 0);
	struct folio *copy;

	if (!ksm_rmap_needs_copy(folio, vma, addr))
		return folio;
	if (PageHWPoison(page))
		return ERR_PTR(-EHWPOISON);
	/* do_swap_page() reports a failed read itself. */
	if (!folio_test_uptodate(folio))
		return folio;
	copy = vma_alloc_folio(GFP_HIGHUSER_MOVABLE, 0, vma, addr, false);
	if (copy && mem_cgroup_charge(copy, vma->vm_mm, GFP_KERNEL)) {
		folio_put(copy);
		copy = NULL;
	}
	if (!copy)
		return NULL;
	if (copy_mc_user_highpage(folio_page(copy, 0), page, addr, vma)) {
		folio_put(copy);
		return ERR_PTR(-EHWPOISON);
	}
	ksm_swpin_copy_ready(copy);
	return copy;
}
