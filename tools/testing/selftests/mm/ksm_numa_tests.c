// SPDX-License-Identifier: GPL-2.0
/*
 * KSM pages and NUMA: move_pages(), migrate_pages() and
 * compaction of merged pages, merging per node, migration while ksmd is busy,
 * and the reverse map of KSM pages mapped by many VMAs and processes (see
 * ksm_mm_util.h for how the checks work).  Needs two memory nodes.
 *
 * Usage: ksm_numa_tests [-t seconds] [-d seconds] [-r times] [-k] [-l] [test ...]
 *   -t  time limit of each test (default 180)
 *   -k  exit with 4 (kselftest's "skipped") when every test skipped
 *   -r  run the selected tests this many times
 *   -l  list the tests
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR; tests skip (with the
 * reason) what the kernel or the machine lacks.
 */
#include "ksm_mm_util.h"

/* ---------------------------------------------------------------- NUMA */

#define MG_WORKERS	4
#define MG_PAGES	256
#define MG_COMMON	128
#define MG_DUPS		32

/* Nodes of the pages of worker @k into @node[] (status of move_pages()). */
static bool worker_nodes(int k, int *node)
{
	struct slot_shm *s = g_slot[k].shm;

	if (!wdo(k, OP_NODES, 0, s->npages, 0, 0, "move_pages(query)"))
		return false;
	memcpy(node, s->status, s->npages * sizeof(int));
	return true;
}

static long mapped_in(int k, long lo, long hi)
{
	long i, n = 0;

	for (i = lo; i < hi; i++)
		n += !!g_slot[k].shm->addr[i];
	return n;
}

/* Pages of worker @k in [lo, hi) on @node. */
static long pages_on(int k, long lo, long hi, int node)
{
	static int where[MAX_PAGES];
	long i, n = 0;

	if (!worker_nodes(k, where))
		return -1;
	for (i = lo; i < hi; i++)
		n += g_slot[k].shm->addr[i] && where[i] == node;
	return n;
}

/*
 * ksmd keeps the KSM pages near the root of its stable tree referenced
 * nearly all the time when it searches the tree for many pages back to
 * back (sleep_millisecs=0): their migration fails with -EAGAIN.  Moves are
 * made with ksmd stopped, unless this is set (migrate_busy).
 */
static bool g_ksmd_busy;

/* Has a page of worker @k in [lo, i) the content of page @i? */
static bool seen_before(struct slot_shm *s, long lo, long i)
{
	long j;

	for (j = lo; j < i; j++)
		if (s->addr[j] && s->seed[j] == s->seed[i])
			return true;
	return false;
}

/*
 * move_pages(MPOL_MF_MOVE_ALL) of [lo, hi) of worker @k: every page must
 * get there.  A page whose KSM page was already queued by an earlier page
 * of the same call reports -EBUSY (it cannot be isolated twice).
 *
 * A migration fails for the moment (move_pages() then returns how many
 * pages it did not move) while anyone else holds a reference on the
 * page: ksmd does on the pages it is looking at.  With ksmd stopped five
 * calls are plenty; with ksmd scanning flat out (migrate_busy) up to
 * MB_CALLS calls are made, and how many were needed is reported.
 */
#define MB_CALLS	20

static bool move_all_to(int k, long lo, long hi, int node, const char *what)
{
	struct slot_shm *s = g_slot[k].shm;
	long i, bad = 0, busy = 0, left = -1;
	int tries, calls = g_ksmd_busy ? MB_CALLS : 5;
	bool ok;

	/* a page that fails to migrate says so in the return value: again */
	if (!g_ksmd_busy)
		ksm_set("run", 0);
	for (tries = 0; tries < calls && left; tries++) {
		left = wcall(k, OP_MOVE, lo, hi, node, MPOL_MF_MOVE_ALL);
		if (left < 0) {
			fail("%s: move_pages: %s", what, strerror(-left));
			return false;
		}
	}
	if (tries > 1 || left)
		diag("%s: move_pages left %ld pages behind, %d calls", what, left, tries);
	for (i = lo; left && i < hi && bad < 8; i++) {
		long r = wcall(k, OP_MOVE, i, i + 1, node, MPOL_MF_MOVE_ALL);
		unsigned long long pfn = page_pfn(k, i);

		if (!r && s->status[i] == node)
			continue;
		bad++;
		diag("  page %ld (%#llx): move_pages %ld, status %d; pfn %#llx %ld maps, %#llx",
		     i, s->seed[i], r, s->status[i], pfn, pfn_count(pfn), pfn_flags(pfn));
	}
	bad = 0;
	expect_eq("pages move_pages could not move", left, 0);
	for (i = lo; i < hi; i++) {
		if (!s->addr[i] || s->status[i] == node)
			continue;
		if (s->status[i] == -EBUSY && seen_before(s, lo, i)) {
			busy++;
			continue;
		}
		if (bad++ < 3)
			fail("%s: page %ld: status %d", what, i, s->status[i]);
	}
	g_checks++;
	if (busy)
		diag("%s: %ld pages -EBUSY, their KSM page queued by another page", what, busy);
	ok = !bad && expect_eq("pages on the target node", pages_on(k, lo, hi, node),
			       mapped_in(k, lo, hi));
	/*
	 * ksmd restarts only now: once it runs, a KSM page moved next to a
	 * copy of the same content may fold into it, through a private copy
	 * of each mapping for a moment (allocated by the VMA's policy, on
	 * the other node), before the mapping merges again.
	 */
	if (!g_ksmd_busy)
		ksm_set("run", 1);
	return ok;
}

/*
 * move_pages(MPOL_MF_MOVE) moves only pages mapped once: a KSM page mapped
 * more than once reports -EACCES and stays; with MPOL_MF_MOVE_ALL it moves,
 * for every process that maps it.
 */
static bool check_move_pages(int nw, long merged, int to)
{
	static int before[MAX_PAGES];
	struct slot_shm *s = g_slot[0].shm;
	long i, bad = 0;
	int k;

	if (!worker_nodes(0, before) ||
	    wcall(0, OP_MOVE, 0, MG_PAGES, to, MPOL_MF_MOVE) < 0)
		return false;
	for (i = 0; i < MG_PAGES; i++) {
		int want = i >= merged || before[i] == to ? to : -EACCES;

		if (s->status[i] != want && bad++ < 3)
			fail("MPOL_MF_MOVE: page %ld (%s, on node %d): status %d, expected %d",
			     i, i < merged ? "merged" : "unique", before[i], s->status[i], want);
	}
	g_checks++;
	if (!verify_all("after MPOL_MF_MOVE") || !settle("after MPOL_MF_MOVE"))
		return false;
	if (!move_all_to(0, 0, merged, to, "MPOL_MF_MOVE_ALL"))
		return false;
	for (k = 1; k < nw; k++)
		expect_eq("common pages of the other workers on the new node",
			  pages_on(k, 0, MG_COMMON, to), MG_COMMON);
	if (!verify_all("after MPOL_MF_MOVE_ALL") || !settle("KSM pages moved"))
		return false;
	if (!move_all_to(0, 0, merged, !to, "MPOL_MF_MOVE_ALL back") ||
	    !verify_all("moved back") || !settle("KSM pages moved back"))
		return false;
	return true;
}

/* Pages of worker @k still on @node: which, and what they are. */
static void show_left_on(int k, int node)
{
	static int where[MAX_PAGES];
	struct slot_shm *s = g_slot[k].shm;
	unsigned long long pfn;
	long i, n = 0;

	if (!worker_nodes(k, where))
		return;
	for (i = 0; i < s->npages && n < 8; i++) {
		if (!s->addr[i] || where[i] != node)
			continue;
		pfn = page_pfn(k, i);
		diag("  page %ld (seed %#llx) on node %d: pfn %#llx count %ld flags %#llx",
		     i, s->seed[i], node, pfn, pfn_count(pfn), pfn_flags(pfn));
		n++;
	}
}

/*
 * migrate_pages(2) of all of worker @k's memory from node @from to @to.
 * It returns how many pages it could not move (ksmd holding a KSM page
 * for a moment is enough): call it again a few times.
 */
static bool check_migrate_pages(int k, int from, int to)
{
	unsigned long f = 1UL << from, t = 1UL << to;
	long r = -1, left = -1;
	int tries;

	if (!g_ksmd_busy)
		ksm_set("run", 0);
	for (tries = 0; tries < 5 && left; tries++) {
		r = sys_migrate_pages(g_slot[k].shm->pid, 8 * sizeof(f), &f, &t);
		if (r < 0) {
			fail("migrate_pages: %s", strerror(errno));
			return false;
		}
		left = pages_on(k, 0, slot_npages(k), from);
	}
	if (!g_ksmd_busy)
		ksm_set("run", 1);
	diag("migrate_pages(worker %d, %d -> %d): %d calls, last %ld; %ld pages on node %d",
	     k, from, to, tries, r, left, from);
	if (!expect_eq("pages left on the source node", left, 0))
		show_left_on(k, from);
	return verify_all("after migrate_pages") && settle("after migrate_pages");
}

/* Whole-system compaction; counts the workers' pages that changed frame. */
static bool check_compaction(int nw)
{
	static unsigned long long before[MAX_SLOTS][MAX_PAGES];
	long moved = 0, i;
	int k, err;

	for (k = 0; k < nw; k++)
		if (slot_pagemap(g_slot[k].shm, before[k]))
			return false;
	err = write_text("/proc/sys/vm/compact_memory", "1");
	if (err)
		diag("compact_memory: %s", strerror(err));
	for (k = 0; k < nw; k++) {
		if (slot_pagemap(g_slot[k].shm, g_pm[k]))
			return false;
		for (i = 0; i < slot_npages(k); i++)
			moved += (g_pm[k][i] & PM_PFN_MASK) != (before[k][i] & PM_PFN_MASK);
	}
	diag("compaction moved %ld of the workers' pages", moved);
	return verify_all("after compaction") && settle("after compaction");
}

static void show_chains(const char *when)
{
	if (ksm_has("stable_node_chains"))
		diag("%s: stable_node_chains %ld stable_node_dups %ld", when,
		     ksm_get("stable_node_chains"), ksm_get("stable_node_dups"));
}

/* merge_across_nodes=0: one KSM page per content and node. */
static bool migrate_per_node(int nw)
{
	int k;

	if (!ksm_unmerge_all() || !ksm_set("merge_across_nodes", 0))
		return false;
	g_opt.mac0 = true;
	for (k = 0; k < nw; k++)
		if (!move_all_to(k, 0, MG_PAGES, k % 2, "to the home node"))
			return false;
	if (!settle("merged per node (merge_across_nodes=0)"))
		return false;
	/*
	 * A KSM page moved to a node that has one of the same content: KSM
	 * may keep both (a chain of duplicates) or fold them; either way,
	 * every page stays merged and the counters agree with the frames.
	 */
	g_opt.relaxed = true;
	if (!move_all_to(0, 0, MG_COMMON, 1, "node-0 KSM pages to node 1") ||
	    !verify_all("after moving across nodes") ||
	    !settle("after moving KSM pages across nodes"))
		return false;
	show_chains("moved across nodes");
	if (!check_migrate_pages(3, 1, 0) || !check_compaction(nw))
		return false;
	show_chains("at the end");
	return true;
}

static enum result test_migrate(void)
{
	struct std_opts o = {
		.workers = MG_WORKERS, .pages = MG_PAGES, .common = MG_COMMON,
		.dups = MG_DUPS, .node_mode = MPOL_PREFERRED, .node_by_worker = true,
	};

	if (nr_memory_nodes() < 2) {
		skip("needs two NUMA nodes with memory");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	if (!std_start(&o))
		return RES_FAIL;
	diag("worker 0: %ld pages on node 0, worker 1: %ld pages on node 1",
	     pages_on(0, 0, MG_PAGES, 0), pages_on(1, 0, MG_PAGES, 1));
	if (!check_move_pages(MG_WORKERS, MG_COMMON + MG_DUPS, 1) ||
	    !check_migrate_pages(3, 1, 0) || !check_compaction(MG_WORKERS) ||
	    !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

/* The same with merge_across_nodes=0, switched to after a first merge. */
static enum result test_migrate_pernode(void)
{
	struct std_opts o = {
		.workers = MG_WORKERS, .pages = MG_PAGES, .common = MG_COMMON,
		.dups = MG_DUPS, .node_mode = MPOL_PREFERRED, .node_by_worker = true,
	};

	if (nr_memory_nodes() < 2 || !ksm_has("merge_across_nodes")) {
		skip("needs two NUMA nodes with memory and merge_across_nodes");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	if (!std_start(&o) || !migrate_per_node(MG_WORKERS) || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

#define MB_ROUNDS	6

/*
 * KSM pages migrate while ksmd scans flat out (sleep_millisecs=0) and
 * looks up its unmerged pages in the stable tree: move_pages(MPOL_MF_MOVE_ALL)
 * must get all of them there (MB_CALLS calls allowed per round), back and
 * forth between the nodes.
 */
static enum result test_migrate_busy(void)
{
	struct std_opts o = {
		.workers = MG_WORKERS, .pages = MG_PAGES, .common = MG_COMMON,
		.dups = MG_DUPS, .node_mode = MPOL_PREFERRED, .node_by_worker = true,
	};
	int r;

	if (nr_memory_nodes() < 2) {
		skip("needs two NUMA nodes with memory");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	g_ksmd_busy = true;
	if (!std_start(&o))
		return RES_FAIL;
	for (r = 0; r < MB_ROUNDS; r++) {
		if (!move_all_to(0, 0, MG_COMMON + MG_DUPS, r % 2 ? 0 : 1,
				 "KSM pages, ksmd busy") ||
		    !verify_all("moved with ksmd busy") || !settle("moved with ksmd busy"))
			return RES_FAIL;
	}
	return RES_PASS;
}

/* ---------------------------------------------------------------- rmap */

#define RM_VMAS		20000	/* VMAs that share one anon_vma */
#define RM_TARGETS	8	/* merged pages among them */
#define RM_KIDS		9	/* fork children in the fork-heavy case */
#define RM_ROUNDS	6	/* migrations there and back again */
#define RM_WHOLE_ROUNDS	2	/* the same, walking whole anon_vmas */
#define RM_DEBUGFS	"/sys/kernel/debug/ksm/"

/*
 * What the kernel says about the anon_vma lock holds of KSM rmap walks
 * (our KSM's debugfs; absent elsewhere): holds, the most VMAs one hold
 * looked at, the longest hold in ns.
 */
struct rmap_stats {
	long holds;
	long vmas_max;
	long hold_max_ns;
};

static bool rmap_stats_have(void)
{
	return !access(RM_DEBUGFS "rmap_holds", R_OK);
}

/* The figures are kept only while rmap_timing is 1 (a static key). */
static bool rmap_stats_start(bool whole)
{
	return !write_text(RM_DEBUGFS "rmap_timing", "1") &&
	       !write_text(RM_DEBUGFS "rmap_hold_max_ns", "0") &&
	       !write_text(RM_DEBUGFS "rmap_vmas_max", "0") &&
	       !write_text(RM_DEBUGFS "rmap_whole_anon_vma", whole ? "1" : "0");
}

static bool rmap_stats_read(struct rmap_stats *st, long holds_before)
{
	if (read_long(RM_DEBUGFS "rmap_holds", &st->holds) ||
	    read_long(RM_DEBUGFS "rmap_vmas_max", &st->vmas_max) ||
	    read_long(RM_DEBUGFS "rmap_hold_max_ns", &st->hold_max_ns))
		return false;
	st->holds -= holds_before;
	return !write_text(RM_DEBUGFS "rmap_whole_anon_vma", "0") &&
	       !write_text(RM_DEBUGFS "rmap_timing", "0");
}

/*
 * A range of @nvmas one-page VMAs that share one anon_vma (every other
 * page read-only: mprotect() splits a VMA that already has an anon_vma),
 * and a twin range of RM_TARGETS pages with the same contents as the
 * target pages among them. Both are fenced by PROT_NONE pages so that no
 * neighbour can lend them its anon_vma.
 */
struct rmap_area {
	char *range;
	char *twin;
	long nvmas;
	char *tgt[RM_TARGETS];
	unsigned long long seed[RM_TARGETS];
};

static bool rmap_area_map(struct rmap_area *a, long nvmas)
{
	long twin_pages = RM_TARGETS, i, len;
	char *base;

	len = (twin_pages + nvmas + 3) * page_size;
	base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (base == MAP_FAILED) {
		fail("mmap of %ld pages: %s", len / page_size, strerror(errno));
		return false;
	}
	a->nvmas = nvmas;
	a->twin = base + page_size;
	a->range = a->twin + (twin_pages + 1) * page_size;
	if (mprotect(a->twin, twin_pages * page_size, PROT_READ | PROT_WRITE) ||
	    mprotect(a->range, nvmas * page_size, PROT_READ | PROT_WRITE)) {
		fail("mprotect: %s", strerror(errno));
		return false;
	}
	a->range[0] = 1;	/* the anon_vma, before the splits */
	for (i = 1; i < nvmas; i += 2) {
		if (mprotect(a->range + i * page_size, page_size, PROT_READ)) {
			fail("mprotect to split VMA %ld: %s", i, strerror(errno));
			return false;
		}
	}
	for (i = 0; i < RM_TARGETS; i++) {
		/* even pages stay writable; spread over the whole range */
		a->tgt[i] = a->range + 2 * ((i + 1) * (nvmas / 2) / (RM_TARGETS + 1)) * page_size;
		a->seed[i] = fresh_seed();
		fill_page((unsigned long long *)a->tgt[i], a->seed[i]);
		fill_page((unsigned long long *)(a->twin + i * page_size), a->seed[i]);
	}
	if (madvise(a->twin, twin_pages * page_size, MADV_MERGEABLE) ||
	    madvise(a->range, nvmas * page_size, MADV_MERGEABLE)) {
		fail("MADV_MERGEABLE: %s", strerror(errno));
		return false;
	}
	return true;
}

static long rmap_area_verify(const struct rmap_area *a)
{
	long i, bad = 0;

	for (i = 0; i < RM_TARGETS; i++) {
		bad += check_page((unsigned long long *)a->tgt[i], a->seed[i]) >= 0;
		bad += check_page((unsigned long long *)(a->twin + i * page_size),
				  a->seed[i]) >= 0;
	}
	return bad;
}

/* Waits (bounded) until pages_shared and pages_sharing read as given. */
static bool rmap_wait_counts(long shared, long sharing, const char *what)
{
	double limit = now() + 120;
	long s = -1, g = -1;

	if (limit > g_deadline - 10)
		limit = g_deadline - 10;
	while (now() < limit) {
		s = ksm_get("pages_shared");
		g = ksm_get("pages_sharing");
		if (s == shared && g == sharing)
			break;
		sleep_ms(50);
	}
	diag("%s: pages_shared %ld pages_sharing %ld", what, s, g);
	return expect_eq("pages_shared", s, shared) && expect_eq("pages_sharing", g, sharing);
}

/* Nodes of the target pages (and their twins) as mapped in process @pid. */
static bool rmap_nodes(pid_t pid, const struct rmap_area *a, int *node)
{
	void *pages[2 * RM_TARGETS];
	long i;

	for (i = 0; i < RM_TARGETS; i++) {
		pages[i] = a->tgt[i];
		pages[RM_TARGETS + i] = a->twin + i * page_size;
	}
	if (sys_move_pages(pid, 2 * RM_TARGETS, pages, NULL, node, 0)) {
		fail("move_pages(query): %s", strerror(errno));
		return false;
	}
	return true;
}

/* Which pages did not move, and their frames. */
static void rmap_show_stuck(const struct rmap_area *a, const int *status, long r)
{
	unsigned long long ent = 0, pfn;
	int fd = pagemap_fd(getpid());
	long i;

	for (i = 0; i < RM_TARGETS; i++) {
		ent = 0;
		if (fd >= 0 && pread(fd, &ent, 8, (unsigned long)a->tgt[i] / page_size * 8) != 8)
			ent = 0;
		pfn = ent & PM_PFN_MASK;
		diag(
		     "  page %ld: status %d (move_pages returned %ld), pfn %#llx mapped %ld, flags %#llx",
		     i, status[i], r, pfn, pfn_count(pfn), pfn_flags(pfn));
	}
	if (fd >= 0)
		close(fd);
}

/*
 * Moves the target pages to @to with MPOL_MF_MOVE_ALL: each migration
 * walks the rmap of the KSM page twice (unmap, then remap). It only
 * succeeds if the walk found every mapping, the twins' and the fork
 * children's included, which then all read from @to.
 */
static bool rmap_migrate(const struct rmap_area *a, int to, const pid_t *kids, int nkids)
{
	int node[2 * RM_TARGETS], status[RM_TARGETS], nodes[RM_TARGETS];
	void *pages[RM_TARGETS];
	long r, i, left = RM_TARGETS;
	int tries, k;

	for (i = 0; i < RM_TARGETS; i++) {
		pages[i] = a->tgt[i];
		nodes[i] = to;
	}
	for (tries = 0; tries < MB_CALLS && left; tries++) {
		for (i = 0; i < RM_TARGETS; i++)
			status[i] = STATUS_UNSET;
		r = sys_move_pages(0, RM_TARGETS, pages, nodes, status, MPOL_MF_MOVE_ALL);
		if (r < 0) {
			fail("move_pages: %s", strerror(errno));
			return false;
		}
		for (i = 0, left = 0; i < RM_TARGETS; i++)
			left += status[i] != to;
	}
	if (!expect_eq("target pages that did not reach the node", left, 0)) {
		rmap_show_stuck(a, status, r);
		return false;
	}
	if (tries > 1)
		diag("to node %d: %d move_pages calls", to, tries);
	for (k = -1; k < nkids; k++) {
		if (!rmap_nodes(k < 0 ? 0 : kids[k], a, node))
			return false;
		for (i = 0, left = 0; i < 2 * RM_TARGETS; i++)
			left += node[i] != to;
		if (!expect_eq(k < 0 ? "mappings left behind here" :
			       "mappings left behind in a fork child", left, 0))
			return false;
	}
	return expect_eq("wrong pages after migration", rmap_area_verify(a), 0);
}

/*
 * Migrations there and back, with walks narrowed or of the whole anon_vma,
 * while ksmd scans flat out (a migration fails for the moment while ksmd
 * holds a reference on the page: rmap_migrate() calls again).
 */
static bool rmap_rounds(const struct rmap_area *a, bool whole, const pid_t *kids,
			int nkids, struct rmap_stats *st)
{
	int r, rounds = whole ? RM_WHOLE_ROUNDS : RM_ROUNDS;
	long before = 0;

	if (st) {
		if (!rmap_stats_start(whole) || read_long(RM_DEBUGFS "rmap_holds", &before)) {
			fail("cannot reset " RM_DEBUGFS);
			return false;
		}
	}
	for (r = 0; r < rounds; r++)
		if (!rmap_migrate(a, (r + 1) % 2, kids, nkids))
			return false;
	if (st && !rmap_stats_read(st, before)) {
		fail("cannot read " RM_DEBUGFS);
		return false;
	}
	return true;
}

/*
 * rmap_timing is off unless asked for: rmap walks then neither count nor
 * time their lock holds (nor read the clock).
 */
static bool rmap_timing_off(const struct rmap_area *a, const pid_t *kids, int nkids)
{
	long timing = -1, before = -1, after = -1;

	if (read_long(RM_DEBUGFS "rmap_timing", &timing) ||
	    read_long(RM_DEBUGFS "rmap_holds", &before)) {
		fail("cannot read " RM_DEBUGFS "rmap_timing and rmap_holds");
		return false;
	}
	expect_eq(RM_DEBUGFS "rmap_timing (off by default)", timing, 0);
	if (!rmap_migrate(a, 1, kids, nkids) || !rmap_migrate(a, 0, kids, nkids))
		return false;
	read_long(RM_DEBUGFS "rmap_holds", &after);
	return expect_eq("lock holds counted while rmap_timing is 0", after - before, 0);
}

/* Both kinds of walk on the same pages; the figures are reported, not judged. */
static bool rmap_measure(const char *setup, const struct rmap_area *a, const pid_t *kids,
			 int nkids, long vmas_in_anon_vma)
{
	struct rmap_stats narrow, whole;
	bool have = rmap_stats_have();

	if (have && !rmap_timing_off(a, kids, nkids))
		return false;
	if (!rmap_rounds(a, false, kids, nkids, have ? &narrow : NULL))
		return false;
	if (!have) {
		/* our KSM has ksm/counts there too: its rmap stats must not go */
		if (!access(RM_DEBUGFS "counts", F_OK)) {
			fail("%s: " RM_DEBUGFS "rmap_holds is missing", setup);
			return false;
		}
		diag("%s: no " RM_DEBUGFS " in this kernel: lock holds not measured", setup);
		return true;
	}
	if (!rmap_rounds(a, true, kids, nkids, &whole))
		return false;
	diag("%s: anon_vma lock holds in rmap_walk_ksm (%d KSM pages migrated):", setup,
	     RM_TARGETS);
	diag(
	     "  narrowed to the page offset, %d migrations each: %ld holds, at most %ld VMAs and %ld ns per hold",
	     RM_ROUNDS, narrow.holds, narrow.vmas_max, narrow.hold_max_ns);
	diag(
	     "  whole anon_vma (for comparison), %d migrations each: %ld holds, at most %ld VMAs and %ld ns per hold",
	     RM_WHOLE_ROUNDS, whole.holds, whole.vmas_max, whole.hold_max_ns);
	expect_true("rmap walks took anon_vma locks", narrow.holds > 0 && whole.holds > 0);
	/* one VMA per process covers the offset; the anon_vma has them all */
	expect_eq("most VMAs one narrowed hold looked at", narrow.vmas_max, nkids + 1);
	expect_eq("most VMAs one whole-anon_vma hold looked at", whole.vmas_max,
		  vmas_in_anon_vma);
	return true;
}

/*
 * Fork child @n, which maps the area: it verifies it on request ('v') and
 * exits on anything else. It closes the pipe ends of the children before
 * it, which it inherited, so that each child sees its own pipe's end.
 */
static pid_t rmap_kid(const struct rmap_area *a, int n, int *cmd_wr, int *rep_rd)
{
	int cmd[2], rep[2], k;
	char c, r;
	pid_t pid;

	if (pipe(cmd) || pipe(rep))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		for (k = 0; k < n; k++) {
			close(cmd_wr[k]);
			close(rep_rd[k]);
		}
		close(cmd[1]);
		close(rep[0]);
		while (read(cmd[0], &c, 1) == 1 && c == 'v') {
			r = rmap_area_verify(a) ? 'x' : 'k';
			if (write(rep[1], &r, 1) != 1)
				break;
		}
		_exit(0);
	}
	close(cmd[0]);
	close(rep[1]);
	cmd_wr[n] = cmd[1];
	rep_rd[n] = rep[0];
	return pid;
}

static long rmap_kids_verify(const int *cmd_wr, const int *rep_rd, int n)
{
	long bad = 0;
	char c;
	int k;

	for (k = 0; k < n; k++) {
		c = 'v';
		if (write(cmd_wr[k], &c, 1) != 1 || read(rep_rd[k], &c, 1) != 1 || c != 'k')
			bad++;
	}
	return bad;
}

/* 20,000 VMAs from splits of one range, in one process. */
static bool rmap_splits(void)
{
	struct rmap_area a;

	if (!rmap_area_map(&a, RM_VMAS) || !ksmd_go() ||
	    !rmap_wait_counts(RM_TARGETS, RM_TARGETS, "split range merged with its twin") ||
	    !expect_eq("wrong pages after merging", rmap_area_verify(&a), 0))
		return false;
	if (!rmap_measure("20000 split VMAs, one process", &a, NULL, 0, RM_VMAS) ||
	    !rmap_wait_counts(RM_TARGETS, RM_TARGETS, "after the migrations"))
		return false;
	return !munmap(a.twin - page_size, (RM_TARGETS + RM_VMAS + 3) * page_size);
}

/* 2,000 split VMAs, mapped by 10 processes: 20,000 VMAs in one anon_vma. */
static bool rmap_forks(void)
{
	int cmd_wr[RM_KIDS], rep_rd[RM_KIDS], n = 0, k;
	long nvmas = RM_VMAS / (RM_KIDS + 1), sharing;
	pid_t kids[RM_KIDS];
	struct rmap_area a;
	bool ok = false;

	if (!rmap_area_map(&a, nvmas) || !ksmd_go() ||
	    !rmap_wait_counts(RM_TARGETS, RM_TARGETS, "parent's range merged with its twin"))
		return false;
	for (n = 0; n < RM_KIDS; n++) {
		kids[n] = rmap_kid(&a, n, cmd_wr, rep_rd);
		if (kids[n] < 0) {
			fail("fork: %s", strerror(errno));
			goto out;
		}
	}
	/* once ksmd has scanned the children, it counts their mappings too */
	sharing = RM_TARGETS * (2 * (RM_KIDS + 1)) - RM_TARGETS;
	if (!rmap_wait_counts(RM_TARGETS, sharing, "children scanned") ||
	    !expect_eq("children that read wrong pages", rmap_kids_verify(cmd_wr, rep_rd, n), 0))
		goto out;
	if (!rmap_measure("2000 split VMAs x 10 processes (fork)", &a, kids, n,
			  nvmas * (RM_KIDS + 1)))
		goto out;
	ok = expect_eq("children that read wrong pages after the migrations",
		       rmap_kids_verify(cmd_wr, rep_rd, n), 0) &&
	     rmap_wait_counts(RM_TARGETS, sharing, "after the migrations");
out:
	for (k = 0; k < n; k++) {
		if (write(cmd_wr[k], "q", 1) != 1)
			diag("child %d: %s", k, strerror(errno));
		close(cmd_wr[k]);
		close(rep_rd[k]);
		waitpid(kids[k], NULL, 0);
	}
	return ok && rmap_wait_counts(RM_TARGETS, RM_TARGETS, "children gone");
}

/*
 * rmap walks of KSM pages mapped from a VMA whose anon_vma has 20,000 VMAs:
 * every migration must find all mappings (and only look at the VMAs that
 * cover the page offset, where the kernel can tell us).
 */
static enum result test_rmap(void)
{
	if (nr_memory_nodes() < 2) {
		skip("needs two NUMA nodes with memory");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	if (!rmap_splits() || !ksm_set("run", 2) || !rmap_forks())
		return RES_FAIL;
	return RES_PASS;
}

static const struct ksm_test tests[] = {
	{ "migrate", test_migrate, false },
	{ "migrate_pernode", test_migrate_pernode, false },
	{ "migrate_busy", test_migrate_busy, false },
	{ "rmap", test_rmap, false },
};

int main(int argc, char **argv)
{
	return mm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
