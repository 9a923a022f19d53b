// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM and memory cgroups: merge domains, and KSM's figures in memory.stat.
 *
 * With merge_across_cgroups set to 0, the memory cgroup of a page's mm is
 * part of the page's index domain (ksm_domain_make()): pages of processes
 * in different memory cgroups never match, so a tenant cannot learn from
 * the time of a write whether another tenant holds a page of the same
 * contents. The memcg of the mm (mm->owner's), not the one the page is
 * charged to, decides: cgroup v2 leaves charges behind when a process
 * moves, and a moved process writing into an old page must not merge with
 * the cgroup it left.
 *
 * A process that moves keeps its KSM pages mapped until ksmd next meets
 * them (at most one full scan later): it then unshares each of them
 * (ksm_merge_leave_node()), and the private copies merge again within the
 * new cgroup. Nothing else can make it share across domains meanwhile:
 * every new match compares the domains of both sides as they are now.
 *
 * The KSM zero page is not a domain's page: whether an empty page is
 * replaced by it depends on that page alone, so use_zero_pages applies in
 * every domain and tells a writer nothing about other cgroups.
 */

#include <linux/memcontrol.h>
#include <linux/seq_buf.h>

#include "ksm_internal.h"

/**
 * ksm_cgroup_domain - the memory cgroup part of the domain of an mm's pages
 * @slot: the registered mm, or NULL for items that belong to no mm (tests).
 *
 * Read afresh at every use, so that a move between cgroups counts from
 * the next lookup on.
 *
 * Return: the memcg id of the mm if merge_across_cgroups is 0, else 0.
 */
unsigned int ksm_cgroup_domain(struct ksm_mm *slot)
{
	struct mem_cgroup *memcg;
	unsigned int id;

	if (READ_ONCE(ksm_tun.merge_across_cgroups) || !slot)
		return 0;
	memcg = get_mem_cgroup_from_mm(slot->mm);
	id = mem_cgroup_id(memcg);
	mem_cgroup_put(memcg);
	return id;
}

/**
 * ksm_cgroup_foreign - may this mm no longer map the KSM page of a node?
 * @slot: the registered mm.
 * @node: the stable node of a KSM page that @slot maps or is about to map.
 *
 * Return: true if the mm left the memory cgroup the node belongs to.
 */
bool ksm_cgroup_foreign(struct ksm_mm *slot,
			const struct ksm_stable_node *node)
{
	return ksm_domain_cgroup(READ_ONCE(node->domain)) !=
	       ksm_cgroup_domain(slot);
}

#ifdef CONFIG_MEMCG
/* Is the process of @mm in @memcg or below it? */
static bool ksm_mm_in_memcg(struct mm_struct *mm, struct mem_cgroup *memcg)
{
	struct mem_cgroup *owner;
	bool in;

	rcu_read_lock();
	owner = mem_cgroup_from_task(rcu_dereference(mm->owner));
	in = owner && mem_cgroup_is_descendant(owner, memcg);
	rcu_read_unlock();
	return in;
}

/**
 * ksm_memcg_stat_format - KSM's lines of a memory cgroup's memory.stat
 * @memcg: the memory cgroup.
 * @s: the buffer memory.stat is formatted into.
 *
 * The sums, over the registered processes of @memcg and its descendants,
 * of what /proc/<pid>/ksm_stat shows per process, in bytes as memory.stat
 * shows memory: mappings of KSM pages, KSM zero pages, and profit. They
 * are summed when read, from the per-mm counters, so a process counts
 * where it is now, moves need no transfer, and nothing is added to the
 * paths that merge and unmerge. Read without ksm_lock: exact whenever
 * ksmd is not changing them meanwhile.
 */
void ksm_memcg_stat_format(struct mem_cgroup *memcg, struct seq_buf *s)
{
	long merging = 0, zero = 0, profit = 0;
	struct ksm_mm *slot;
	struct mm_struct *mm;

	spin_lock(&ksm_mm_lock);
	list_for_each_entry(slot, &ksm_mm_list, link) {
		mm = slot->mm;
		if (ksm_mm_gone(slot) || !ksm_mm_in_memcg(mm, memcg))
			continue;
		merging += READ_ONCE(mm->ksm_merging_pages);
		zero += mm_ksm_zero_pages(mm);
		profit += ksm_process_profit(mm);
	}
	spin_unlock(&ksm_mm_lock);
	seq_buf_printf(s, "ksm_merging %lu\n", merging * PAGE_SIZE);
	seq_buf_printf(s, "ksm_zero %lu\n", zero * PAGE_SIZE);
	seq_buf_printf(s, "ksm_profit %ld\n", profit);
}
#endif
