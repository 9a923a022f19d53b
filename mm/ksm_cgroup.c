// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM and memory cgroups: merge domains.
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
