// SPDX-License-Identifier: GPL-2.0
/*
 * KSM pages and swap: reclaim under a memory cgroup,
 * mremap of swapped merged pages, and the copies made when a swapped KSM page
 * is faulted back in (see ksm_mm_util.h for how the checks work).
 *
 * Usage: ksm_swap_tests [-t seconds] [-d seconds] [-r times] [-k] [-l] [test ...]
 *   -t  time limit of each test (default 180)
 *   -k  exit with 4 (kselftest's "skipped") when every test skipped
 *   -r  run the selected tests this many times
 *   -l  list the tests
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR; tests skip (with the
 * reason) what the kernel or the machine lacks.
 */
#include "ksm_mm_util.h"

#define RS_WORKERS	4
#define RS_PAGES	512
#define RS_COMMON	256
#define RS_DUPS		32
#define RS_LONE		16

/* Memcg reclaim swaps KSM pages out; swap-in under the limit, re-merge. */
static bool reclaim_under_memcg(struct vmev *v0)
{
	long maj0 = cg_key("memory.stat", "pgmajfault"), maj;
	struct vmev v1;

	if (!swap_out_all(RS_WORKERS, "memory.reclaim", v0) ||
	    !settle("KSM pages swapped out"))
		return false;
	/* every byte again, with memory.high far below the working set */
	if (cg_write("memory.high", "2M"))
		fail("cannot set memory.high");
	if (!verify_all("swapped in under memory.high=2M"))
		return false;
	cg_write("memory.high", "max");
	maj = cg_key("memory.stat", "pgmajfault");
	diag("memcg: pgmajfault +%ld, memory.events high %ld oom_kill %ld", maj - maj0,
	     cg_key("memory.events", "high"), cg_key("memory.events", "oom_kill"));
	if (maj0 >= 0)
		expect_true("swap-in faults in the cgroup", maj > maj0);
	expect_eq("oom kills in the cgroup", cg_key("memory.events", "oom_kill"), 0);
	vmev_read(&v1);
	if (v0->pswpin >= 0)
		diag("vmstat: pswpout +%ld pswpin +%ld ksm_swpin_copy +%ld",
		     v1.pswpout - v0->pswpout, v1.pswpin - v0->pswpin,
		     v1.swpin_copy - v0->swpin_copy);
	else
		diag("/proc/vmstat has no event counters (CONFIG_VM_EVENT_COUNTERS off)");
	if (v0->pswpin >= 0)
		expect_true("pswpin grew", v1.pswpin > v0->pswpin);
	return verify_all("after swap-in") && settle("re-merged after swap-in");
}

static enum result test_reclaim_swap(void)
{
	struct std_opts o = {
		.workers = RS_WORKERS, .pages = RS_PAGES, .common = RS_COMMON,
		.dups = RS_DUPS, .cgroup = true,
	};
	long shared;
	struct vmev v0;
	int k;

	if (!have_swap() || !cg_create())
		return RES_SKIP;
	vmev_read(&v0);
	if (!std_start(&o) || !reclaim_under_memcg(&v0))
		return RES_FAIL;

	/* MADV_PAGEOUT leaves pages mapped more than once (all KSM here) */
	for (k = 0; k < RS_WORKERS; k++) {
		lru_drain_all();
		if (!wdo(k, OP_MADVISE, 0, RS_PAGES, MADV_PAGEOUT, 0, "MADV_PAGEOUT"))
			return RES_FAIL;
		expect_eq("KSM pages swapped by MADV_PAGEOUT",
			  count_pm(k, 0, RS_COMMON + RS_DUPS, PM_SWAP), 0);
		pageout_all(k, RS_COMMON + RS_DUPS, RS_PAGES, "unique pages paged out");
	}
	shared = ksm_get("pages_shared");
	if (!settle("after MADV_PAGEOUT") || !verify_all("after MADV_PAGEOUT"))
		return RES_FAIL;
	expect_eq("pages_shared after MADV_PAGEOUT", ksm_get("pages_shared"), shared);
	if (!lone_pageout(RS_WORKERS, 0, RS_LONE) || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

#define SC_PAGES	128
#define SC_POISON	5	/* page worker 0 poisons after its swap-in */

/*
 * Swap-in of a page that another process brought in first.  Two workers
 * share SC_PAGES KSM pages; everything goes to swap, and the swap cache is
 * emptied, so the KSM folios are gone.  Worker 0 reads its pages back: new
 * folios, in the swap cache, now anonymous pages of worker 0.  When worker
 * 1 reads the same swap entries, it finds those folios under an anon_vma it
 * cannot use: ksm_might_need_to_copy() must give it copies, counted in
 * ksm_swpin_copy, one per page that did not share worker 0's frame.  One
 * of worker 0's swapped-in pages is hardware-poisoned before worker 1's
 * reads: both must still read the right contents.
 */
static enum result test_swpin_copy(void)
{
	struct std_opts o = {
		.workers = 2, .pages = SC_PAGES, .common = SC_PAGES, .cgroup = true,
	};
	long cached = -1, last, copied = 0, i, kb0, sig0, r;
	struct vmev v0, v1;
	int round;

	if (!have_swap() || !cg_create())
		return RES_SKIP;
	if (!std_start(&o))
		return RES_FAIL;
	ksm_set("run", 0);
	/* reclaim writes the pages out, a later pass frees their swap cache */
	for (round = 1; round <= 10; round++) {
		lru_drain_all();
		if (!cg_reclaim())
			return RES_FAIL;
		last = cached;
		cached = read_key("/proc/meminfo", "SwapCached");
		diag(
		     "  round %d: memory.current %ld anon %ld active_anon %ld swap.current %ld",
		     round, cg_long("memory.current"), cg_key("memory.stat", "anon"),
		     cg_key("memory.stat", "active_anon"), cg_long("memory.swap.current"));
		if (count_pm(0, 0, SC_PAGES, PM_SWAP) == SC_PAGES &&
		    count_pm(1, 0, SC_PAGES, PM_SWAP) == SC_PAGES &&
		    (cached == 0 || cached == last))
			break;
		sleep_ms(100);
	}
	diag("after %d memory.reclaim: %ld and %ld pages in swap, SwapCached %ld kB", round,
	     count_pm(0, 0, SC_PAGES, PM_SWAP), count_pm(1, 0, SC_PAGES, PM_SWAP), cached);
	if (!expect_eq("worker 0's pages in swap", count_pm(0, 0, SC_PAGES, PM_SWAP), SC_PAGES) ||
	    !expect_eq("worker 1's pages in swap", count_pm(1, 0, SC_PAGES, PM_SWAP), SC_PAGES))
		return RES_FAIL;
	vmev_read(&v0);
	if (!wdo(0, OP_VERIFY, 0, SC_PAGES, 0, 0, "worker 0's swap-in"))
		return RES_FAIL;
	/*
	 * Poison one of them: memory failure unmaps a swap cache page to its
	 * swap entry (no poison marker) and drops it from the swap cache, so
	 * both workers read the page from swap again, intact, without SIGBUS.
	 */
	kb0 = corrupted_kb();
	sig0 = g_slot[0].shm->sigbus + g_slot[1].shm->sigbus;
	r = wcall(0, OP_INJECT, SC_POISON, MADV_HWPOISON, 0, 0);
	if (r)
		diag("MADV_HWPOISON: %s: the poison step skipped", strerror(-r));
	else
		expect_eq("worker 0's poisoned page back in swap",
			  count_pm(0, SC_POISON, SC_POISON + 1, PM_SWAP), 1);
	if (!wdo(0, OP_VERIFY, 0, SC_PAGES, 0, 0, "worker 0 after the poison") ||
	    !wdo(1, OP_VERIFY, 0, SC_PAGES, 0, 0, "worker 1's swap-in"))
		return RES_FAIL;
	vmev_read(&v1);
	if (!r && kb0 >= 0)
		expect_eq("HardwareCorrupted (kB)", corrupted_kb() - kb0, page_size / 1024);
	expect_eq("SIGBUS", g_slot[0].shm->sigbus + g_slot[1].shm->sigbus - sig0, 0);
	if (slot_pagemap(g_slot[0].shm, g_pm[0]) || slot_pagemap(g_slot[1].shm, g_pm[1]))
		return RES_FAIL;
	for (i = 0; i < SC_PAGES; i++)
		copied += (g_pm[0][i] & PM_PRESENT) &&
			  (g_pm[1][i] & PM_PFN_MASK) != (g_pm[0][i] & PM_PFN_MASK);
	diag("worker 1: %ld of %d pages on a frame of its own; ksm_swpin_copy +%ld", copied,
	     SC_PAGES, v0.swpin_copy >= 0 ? v1.swpin_copy - v0.swpin_copy : -1);
	expect_true("worker 1 got copies", copied > 0);
	if (v0.swpin_copy >= 0)
		expect_eq("ksm_swpin_copy counts worker 1's copies", v1.swpin_copy - v0.swpin_copy,
			  copied);
	if (!verify_all("after both swap-ins") || !settle("merged again after the copies"))
		return RES_FAIL;
	return RES_PASS;
}

#define MR_WORKERS	3
#define MR_PAGES	384
#define MR_COMMON	192
#define MR_DUPS		32

/* Moves pages [lo, hi) of every worker with MREMAP_MAYMOVE|MREMAP_FIXED. */
static bool move_all(int nw, long lo, long hi, const char *what)
{
	long kept = 0, i;
	int k;

	for (k = 0; k < nw; k++) {
		if (!wdo(k, OP_MREMAP, lo, hi, 0, 0, "mremap"))
			return false;
		if (slot_pagemap(g_slot[k].shm, g_pm[k]))
			return false;
		for (i = lo; i < hi; i++)
			kept += pfn_count(g_pm[k][i] & PM_PFN_MASK) > 1;
	}
	diag("%s: %ld of %ld moved pages still on a shared frame right after mremap",
	     what, kept, nw * (hi - lo));
	return verify_all(what);
}

static enum result test_mremap_swap(void)
{
	struct std_opts o = {
		.workers = MR_WORKERS, .pages = MR_PAGES, .common = MR_COMMON,
		.dups = MR_DUPS, .cgroup = true,
	};
	struct vmev v0, v1;

	if (!have_swap() || !cg_create())
		return RES_SKIP;
	if (!std_start(&o))
		return RES_FAIL;

	/* moved while merged (ksmd stopped, so the move itself is seen) */
	vmev_read(&v0);
	ksm_set("run", 0);
	if (!move_all(MR_WORKERS, 0, MR_COMMON, "moved merged pages"))
		return RES_FAIL;
	vmev_read(&v1);
	if (v0.cow_ksm >= 0)
		diag("mremap: cow_ksm +%ld", v1.cow_ksm - v0.cow_ksm);
	if (!settle("merged again at the new address"))
		return RES_FAIL;
	vmev_read(&v0);
	if (!swap_out_all(MR_WORKERS, "swapped out at the new address", &v0) ||
	    !settle("moved KSM pages in swap") || !verify_all("swapped in") ||
	    !settle("merged again after swap-in"))
		return RES_FAIL;
	if (!lone_pageout(MR_WORKERS, 0, 16))
		return RES_FAIL;

	/* moved while in swap: the swap entries move, rmap must follow */
	vmev_read(&v0);
	if (!swap_out_all(MR_WORKERS, "swapped out before moving", &v0) ||
	    !move_all(MR_WORKERS, 0, MR_COMMON, "moved swapped pages") ||
	    !move_all(MR_WORKERS, MR_COMMON, MR_COMMON + MR_DUPS, "moved swapped pages") ||
	    !settle("swapped-in after the move, merged"))
		return RES_FAIL;
	vmev_read(&v0);
	if (!swap_out_all(MR_WORKERS, "swapped out again after the move", &v0) ||
	    !verify_all("swapped in again") || !settle("merged again"))
		return RES_FAIL;
	if (!lone_pageout(MR_WORKERS, 16, 32) || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

static const struct ksm_test tests[] = {
	{ "reclaim_swap", test_reclaim_swap, false },
	{ "mremap_swap", test_mremap_swap, false },
	{ "swpin_copy", test_swpin_copy, false },
};

int main(int argc, char **argv)
{
	return mm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
