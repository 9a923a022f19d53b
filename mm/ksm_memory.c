// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM pages and the memory under them: NUMA node changes and hot-remove.
 *
 * With merge_across_nodes=0 every stable node belongs to the index domain
 * of the NUMA node its KSM page was on when it was indexed. Migration
 * (move_pages(2), migrate_pages(2), compaction, NUMA balancing, memory
 * offlining) may take the page to another node. Lookups from the old
 * domain then refuse the node (it must never merge across nodes) and
 * lookups from the new domain cannot see it, so the node is "misplaced".
 * folio_migrate_ksm() runs under the folio locks, which nest inside
 * ksm_lock, so it cannot fix the index: it only reports the move here, as
 * does a lookup that meets a misplaced node, and a work item takes
 * ksm_lock soon after and moves every misplaced node to the domain of its
 * page, next to the nodes of the same content there.
 *
 * Offlining a memory block migrates every KSM page out of it first. At
 * MEM_GOING_OFFLINE the notifier waits for ksmd to finish its batch (by
 * taking ksm_lock) and marks memory as going offline; ksmd then sleeps
 * until MEM_OFFLINE or MEM_CANCEL_OFFLINE, so it neither holds references
 * that make those migrations fail nor merges into pages of the block
 * meanwhile. ksm_lock itself is not held across: offline_pages() takes
 * locks between the two events (pcp_batch_high_lock) that are taken
 * before the notifier is called. Once the block is offline, a stable node
 * whose pfn lies in it can only be stale (its page was freed before):
 * stale nodes are erased from the index before ksmd runs again.
 */

#include <linux/memory.h>
#include <linux/mm.h>
#include <linux/notifier.h>
#include <linux/workqueue.h>

#include "ksm_internal.h"

/* Lets several migrations in a row share one pass over the index. */
#define KSM_REHOME_DELAY_MS	10

static void ksm_memory_rehome_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(ksm_rehome_work, ksm_memory_rehome_fn);
static atomic_t ksm_rehome_pending = ATOMIC_INIT(0);
/* Memory is going offline: ksmd waits. Written under ksm_lock. */
static bool ksm_offlining;

/**
 * ksm_memory_offlining - is a memory block going offline?
 *
 * Return: true from MEM_GOING_OFFLINE to MEM_OFFLINE or
 * MEM_CANCEL_OFFLINE: ksmd must not scan then.
 */
bool ksm_memory_offlining(void)
{
	return READ_ONCE(ksm_offlining);
}

/**
 * ksm_memory_node_moved - a KSM page left the index domain of its node
 *
 * Callable from any context, with or without ksm_lock and folio locks:
 * it only schedules the pass that re-homes misplaced nodes.
 */
void ksm_memory_node_moved(void)
{
	if (atomic_xchg(&ksm_rehome_pending, 1))
		return;
	queue_delayed_work(system_unbound_wq, &ksm_rehome_work,
			   msecs_to_jiffies(KSM_REHOME_DELAY_MS));
}

/*
 * Take a misplaced node out of the index, onto @arg (a list, linked
 * through ->group, which an erased node does not use), keeping the
 * reference on its folio: that keeps the folio from migrating again, so
 * ->kpfn stays put until the node is indexed again. Stale nodes are left
 * to the sweeps (ksm_index_stable_sweep()); a node being migrated is
 * reported again when its page lands.
 */
static void ksm_memory_pick_misplaced(struct ksm_stable_node *node, void *arg)
{
	struct list_head *moved = arg;
	struct folio *kfolio = ksm_node_get_folio(node);

	if (IS_ERR_OR_NULL(kfolio))
		return;
	if (ksm_index_domain(kfolio) == ksm_domain_node(node->domain)) {
		folio_put(kfolio);
		return;
	}
	ksm_index_stable_erase(node);
	list_add_tail(&node->group, moved);
}

/* Index a picked node again, in the domain its page is in now. */
static void ksm_memory_reindex(struct ksm_stable_node *node)
{
	struct folio *kfolio = page_folio(pfn_to_page(READ_ONCE(node->kpfn)));

	/* Only the NUMA part moves: the mms that may map it stay the same. */
	WRITE_ONCE(node->domain, ksm_domain_make(ksm_domain_cgroup(node->domain),
						 ksm_index_domain(kfolio)));
	ksm_index_stable_insert(node, kfolio);
	/* The reference ksm_memory_pick_misplaced() took. */
	folio_put(kfolio);
}

/**
 * ksm_memory_rehome - move every misplaced stable node to its domain
 *
 * Return: the number of nodes that changed domain.
 */
unsigned long ksm_memory_rehome(void)
{
	struct ksm_stable_node *node, *tmp;
	unsigned long nr = 0;
	LIST_HEAD(moved);

	lockdep_assert_held(&ksm_lock);
	atomic_set(&ksm_rehome_pending, 0);
	ksm_index_stable_walk(ksm_memory_pick_misplaced, &moved);
	list_for_each_entry_safe(node, tmp, &moved, group) {
		list_del_init(&node->group);
		ksm_memory_reindex(node);
		nr++;
	}
	return nr;
}

static void ksm_memory_rehome_fn(struct work_struct *work)
{
	mutex_lock(&ksm_lock);
	/* Not while offlining: MEM_OFFLINE re-homes what moved. */
	if (atomic_read(&ksm_rehome_pending) && !ksm_offlining)
		ksm_memory_rehome();
	mutex_unlock(&ksm_lock);
}

static void ksm_memory_set_offlining(bool on)
{
	lockdep_assert_held(&ksm_lock);
	WRITE_ONCE(ksm_offlining, on);
	if (!on)
		wake_up_interruptible(&ksmd_wait);
}

static int ksm_memory_callback(struct notifier_block *nb,
			       unsigned long action, void *arg)
{
	if (action != MEM_GOING_OFFLINE && action != MEM_OFFLINE &&
	    action != MEM_CANCEL_OFFLINE)
		return NOTIFY_OK;
	mutex_lock(&ksm_lock);
	if (action == MEM_GOING_OFFLINE) {
		/* ksmd is between two batches now; it sleeps until told. */
		ksm_memory_set_offlining(true);
	} else {
		/* Some pages moved even if the offline gave up half way. */
		if (action == MEM_OFFLINE)
			ksm_index_stable_sweep();
		ksm_memory_rehome();
		ksm_memory_set_offlining(false);
	}
	mutex_unlock(&ksm_lock);
	return NOTIFY_OK;
}

/**
 * ksm_memory_init - register for memory hot-remove events
 *
 * Return: 0, or the error of the registration.
 */
int ksm_memory_init(void)
{
	return hotplug_memory_notifier(ksm_memory_callback, KSM_CALLBACK_PRI);
}
