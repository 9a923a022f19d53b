// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM and memory cgroups: merge domains, KSM's figures in memory.stat, and
 * the memory.ksm_merge_any switch.
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
#include <linux/sched/mm.h>
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

/*
 * The memory cgroups whose memory.ksm_merge_any is 1, by memcg id: KSM's
 * own state, kept out of struct mem_cgroup. An id is not reused before
 * its cgroup went offline, which erases it (ksm_memcg_offline()).
 */
static DEFINE_XARRAY(ksm_memcg_switches);

/**
 * ksm_memcg_merge_any_switch - read memory.ksm_merge_any of a memory cgroup
 * @memcg: the memory cgroup.
 *
 * Return: 1 if it was switched on, else 0.
 */
int ksm_memcg_merge_any_switch(struct mem_cgroup *memcg)
{
	return !!xa_load(&ksm_memcg_switches, mem_cgroup_id(memcg));
}

/* Is merge-any switched on for @memcg, or for a cgroup above it? */
static bool ksm_memcg_merge_any(struct mem_cgroup *memcg)
{
	for (; memcg; memcg = parent_mem_cgroup(memcg))
		if (ksm_memcg_merge_any_switch(memcg))
			return true;
	return false;
}

/* Make the process of @task merge everything, as PR_SET_MEMORY_MERGE. */
static int ksm_memcg_merge_task(struct task_struct *task)
{
	struct mm_struct *mm = get_task_mm(task);
	int err;

	if (!mm)
		return 0;	/* a kernel thread, or exiting */
	err = mmap_write_lock_killable(mm);
	if (!err) {
		err = ksm_enable_merge_any(mm);
		mmap_write_unlock(mm);
	}
	mmput(mm);
	return err;
}

static int ksm_memcg_merge_one(struct task_struct *task, void *arg)
{
	int *err = arg;

	*err = ksm_memcg_merge_task(task);
	return *err;
}

/**
 * ksm_memcg_set_merge_any - write memory.ksm_merge_any of a memory cgroup
 * @memcg: the memory cgroup, not the root.
 * @on: the value written.
 *
 * Switched on, every process of @memcg and of its descendants, present
 * or future, merges everything it maps, as after PR_SET_MEMORY_MERGE:
 * the present ones now, those that join later when they are attached, and
 * their fork children inherit it as they do from prctl(). Switched off,
 * processes that join later are left alone; those that merge keep doing so
 * (PR_SET_MEMORY_MERGE 0 ends it for one), since unmerging everything of
 * a cgroup at once is what a write of 0 should not risk.
 *
 * Return: 0, or the error that stopped applying it (-EINTR, -ENOMEM);
 * the switch stays on then, for the processes not yet reached.
 */
int ksm_memcg_set_merge_any(struct mem_cgroup *memcg, bool on)
{
	unsigned short id = mem_cgroup_id(memcg);
	int err = 0;

	if (!on) {
		xa_erase(&ksm_memcg_switches, id);
		return 0;
	}
	err = xa_err(xa_store(&ksm_memcg_switches, id, xa_mk_value(1),
			      GFP_KERNEL));
	if (!err)
		mem_cgroup_scan_tasks(memcg, ksm_memcg_merge_one, &err);
	return err;
}

/**
 * ksm_memcg_offline - a memory cgroup goes offline
 * @memcg: the memory cgroup; its id is still its own.
 */
void ksm_memcg_offline(struct mem_cgroup *memcg)
{
	xa_erase(&ksm_memcg_switches, mem_cgroup_id(memcg));
}

/**
 * ksm_memcg_attach - a process joined a memory cgroup
 * @task: the thread group leader that moved.
 * @memcg: its new memory cgroup.
 *
 * Called from the cgroup attach path, which may take the mmap lock (as
 * cpuset's does). Best effort: a failure leaves the process as it was.
 */
void ksm_memcg_attach(struct task_struct *task, struct mem_cgroup *memcg)
{
	if (ksm_memcg_merge_any(memcg))
		ksm_memcg_merge_task(task);
}
#endif
