// SPDX-License-Identifier: GPL-2.0
/*
 * KSM and what happens to physical memory: transparent
 * huge pages split and collapsed, memory failure (MADV_HWPOISON and soft
 * offline) of merged pages, and memory hot-remove under KSM pages (see
 * ksm_mm_util.h for how the checks work).  memory_failure and hot_remove are
 * destructive: run_vmtests.sh runs them with -d only.
 *
 * Usage: ksm_phys_tests [-t seconds] [-d seconds] [-r times] [-k] [-l] [test ...]
 *   -t  time limit of each test (default 180)
 *   -k  exit with 4 (kselftest's "skipped") when every test skipped
 *   -r  run the selected tests this many times
 *   -l  list the tests
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR; tests skip (with the
 * reason) what the kernel or the machine lacks.
 */
#include "ksm_mm_util.h"

/* ---------------------------------------------------------------- THP */

#define THP_NR		512
#define THP_WORKERS	3
#define THP_FEW		16	/* common pages inside the second THP */

#define KPF_THP		22
/* Pages of worker @k in [lo, hi) that are part of a transparent huge page. */
static long thp_pages(int k, long lo, long hi)
{
	long i, n = 0;

	if (slot_pagemap(g_slot[k].shm, g_pm[k]))
		return -1;
	for (i = lo; i < hi; i++)
		if ((g_pm[k][i] & PM_PRESENT) &&
		    (pfn_flags(g_pm[k][i] & PM_PFN_MASK) & BIT_ULL(KPF_THP)))
			n++;
	return n;
}

/*
 * Three THPs per worker: one alike in every worker, one unique but for a
 * few pages, one unique.  Pages in the first two must merge, so those THPs
 * must be split; the third may stay huge.
 */
static bool thp_setup(void)
{
	struct slot_shm *s;
	long i, n;
	int k;

	for (k = 0; k < THP_WORKERS; k++) {
		s = g_slot[k].shm;
		if (wcall(k, OP_MAP, 3 * THP_NR, 1, -1, 0)) {
			fail("worker %d: cannot map THPs", k);
			return false;
		}
		for (i = 0; i < 3 * THP_NR; i++)
			s->seed[i] = make_seed(3, (unsigned long long)k << 24 | i);
		for (i = 0; i < THP_NR; i++)
			s->seed[i] = make_seed(1, i);
		for (i = 0; i < THP_FEW; i++)
			s->seed[THP_NR + 100 + i] = make_seed(1, 1000 + i);
		if (!wdo(k, OP_FILL, 0, 3 * THP_NR, 0, 0, "fill"))
			return false;
		n = thp_pages(k, 0, 3 * THP_NR);
		if (n != 3 * THP_NR) {
			skip("no THP for the test (%ld of %d pages in THPs)", n, 3 * THP_NR);
			return false;
		}
		/* keep khugepaged from collapsing what KSM splits */
		if (!wdo(k, OP_MADVISE, 0, 3 * THP_NR, MADV_NOHUGEPAGE, 0, "MADV_NOHUGEPAGE"))
			return false;
	}
	return verify_all("THPs filled");
}

#define ZS_PAGES	64	/* zero-filled small pages */

/* Maps and fills with zeroes @n pages of worker @k (a THP with @thp). */
static bool map_zeroes(int k, long n, bool thp)
{
	struct slot_shm *s = g_slot[k].shm;
	long base = s->npages, i;

	if (wcall(k, OP_MAP, n, thp, -1, 0) != base) {
		fail("worker %d: cannot map %ld pages", k, n);
		return false;
	}
	for (i = base; i < base + n; i++)
		s->seed[i] = SEED_ZEROS;
	if (!wdo(k, OP_FILL, base, base + n, 0, 0, "fill with zeroes"))
		return false;
	for (i = base; thp && i < base + n; i++)
		s->flags[i] |= PF_THPZERO;
	if (thp)
		diag("worker %d: %ld of %ld zero-filled pages in a THP", k,
		     thp_pages(k, base, base + n), n);
	return (!thp || wdo(k, OP_MADVISE, base, base + n, MADV_NOHUGEPAGE, 0, "NOHUGEPAGE")) &&
	       wdo(k, OP_MADVISE, base, base + n, MADV_MERGEABLE, 0, "MADV_MERGEABLE");
}

/* Pages of worker @k in [lo, hi) mapping the shared zero page. */
static long zero_mapped(int k, long lo, long hi)
{
	long i, n = 0;

	if (slot_pagemap(g_slot[k].shm, g_pm[k]))
		return -1;
	for (i = lo; i < hi; i++)
		n += (g_pm[k][i] & PM_PRESENT) && (g_pm[k][i] & PM_PFN_MASK) == g_zero_pfn;
	return n;
}

/*
 * use_zero_pages=1: zero-filled pages become mappings of the zero page,
 * counted exactly in ksm_zero_pages.  A THP of zeroes ends up the same, but
 * 6.12 splits a THP by mapping its zero-filled subpages to the zero page
 * itself, so those may or may not count as KSM's: the model takes either,
 * as long as each process's ksm_zero_pages adds up to the total.
 */
static bool thp_zero(void)
{
	long base = 3 * THP_NR, sbase = base + THP_NR;
	struct pstat ps;
	int k;

	if (!ksm_set("use_zero_pages", 1))
		return false;
	g_opt.zero_pages = true;
	for (k = 0; k < THP_WORKERS; k++)
		if (!map_zeroes(k, THP_NR, true) || !map_zeroes(k, ZS_PAGES, false))
			return false;
	if (!settle("zeroes merged with the zero page"))
		return false;
	for (k = 0; k < THP_WORKERS; k++) {
		expect_eq("pages mapping the zero page", zero_mapped(k, base, sbase + ZS_PAGES),
			  THP_NR + ZS_PAGES);
		expect_eq("zero-area pages left in a THP", thp_pages(k, base, sbase), 0);
		if (!read_pid_stat(g_slot[k].shm->pid, &ps))
			diag("worker %d: ksm_zero_pages %ld: %ld of them from the zero THP", k,
			     ps.zero, ps.zero - ZS_PAGES);
	}
	if (!verify_all("zero pages"))
		return false;
	/* writes and zaps drop ksm_zero_pages one by one */
	for (k = 0; k < THP_WORKERS; k++)
		if (!rewrite(k, sbase, sbase + 10) || !rewrite(k, base, base + 10) ||
		    !wdo(k, OP_MADVISE, sbase + 10, sbase + 30, MADV_DONTNEED, 0, "MADV_DONTNEED"))
			return false;
	if (!settle("zero pages written and zapped") || !verify_all("zero pages, after"))
		return false;
	for (k = 0; k < THP_WORKERS; k++)
		if (!wdo(k, OP_MUNMAP, base, sbase + ZS_PAGES, 0, 0, "munmap"))
			return false;
	return settle("zero pages unmapped");
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif
#define KC_UNIQUE	16	/* written pages, so the range is not read-only */

/*
 * khugepaged's copy path, through MADV_COLLAPSE: a 2 MiB range of small pages
 * whose zero-filled ones ksmd turned into zero page mappings is collapsed into
 * a THP while ksmd is stopped.  Each KSM zero page pte it drops must leave
 * ksm_zero_pages (global and the process's) exactly, and nothing changes in
 * the range's contents.  With ksmd running again the THP is split and the
 * zeroes mapped to the zero page once more.
 */
static bool thp_collapse_zero(void)
{
	long base = g_slot[0].shm->npages, i, z, r = 0;
	struct pstat a, b;
	long ga, gb;
	int tries;

	if (wcall(0, OP_MAP, THP_NR, 1, -1, 0) != base) {
		fail("worker 0: cannot map %d pages", THP_NR);
		return false;
	}
	/* small pages: one per fault, none of them from a THP */
	if (!wdo(0, OP_MADVISE, base, base + THP_NR, MADV_NOHUGEPAGE, 0, "NOHUGEPAGE"))
		return false;
	for (i = 0; i < THP_NR; i++)
		g_slot[0].shm->seed[base + i] = i < KC_UNIQUE ? fresh_seed() : SEED_ZEROS;
	if (!wdo(0, OP_FILL, base, base + THP_NR, 0, 0, "fill") ||
	    !wdo(0, OP_MADVISE, base, base + THP_NR, MADV_MERGEABLE, 0, "MADV_MERGEABLE") ||
	    !settle("small zero pages of a 2 MiB range merged"))
		return false;
	z = zero_mapped(0, base, base + THP_NR);
	expect_eq("zero page mappings in the range", z, THP_NR - KC_UNIQUE);
	if (!ksm_set("run", 0))
		return false;
	if (read_pid_stat(g_slot[0].shm->pid, &a) || a.zero < 0) {
		diag("no ksm_zero_pages in /proc/<pid>/ksm_stat: collapse step skipped");
		return ksm_set("run", 1);
	}
	ga = ksm_get("ksm_zero_pages");
	if (!wdo(0, OP_MADVISE, base, base + THP_NR, MADV_HUGEPAGE, 0, "MADV_HUGEPAGE"))
		return false;
	for (tries = 0; tries < 10; tries++) {
		r = wcall(0, OP_MADVISE, base, base + THP_NR, MADV_COLLAPSE, 0);
		if (r != -EAGAIN && r != -EBUSY && r != -ENOMEM)
			break;
		sleep_ms(100);
	}
	if (r) {
		fail("MADV_COLLAPSE of the range: %s", strerror(-r));
		return false;
	}
	gb = ksm_get("ksm_zero_pages");
	if (read_pid_stat(g_slot[0].shm->pid, &b)) {
		fail("cannot read /proc/%d/ksm_stat", g_slot[0].shm->pid);
		return false;
	}
	diag("MADV_COLLAPSE: ksm_zero_pages %ld -> %ld, the process's %ld -> %ld",
	     ga, gb, a.zero, b.zero);
	expect_eq("range pages in a THP after MADV_COLLAPSE", thp_pages(0, base, base + THP_NR),
		  THP_NR);
	expect_eq("zero page mappings left in the range", zero_mapped(0, base, base + THP_NR), 0);
	expect_eq("ksm_zero_pages dropped by the collapse", ga - gb, z);
	expect_eq("the process's ksm_zero_pages dropped by the collapse", a.zero - b.zero, z);
	if (!verify_all("after MADV_COLLAPSE"))
		return false;
	/* a later split may map the zeroes to the zero page without KSM */
	for (i = KC_UNIQUE; i < THP_NR; i++)
		g_slot[0].shm->flags[base + i] |= PF_THPZERO;
	return wdo(0, OP_MADVISE, base, base + THP_NR, MADV_NOHUGEPAGE, 0, "NOHUGEPAGE") &&
	       ksm_set("run", 1) && settle("collapsed range split and merged again") &&
	       wdo(0, OP_MUNMAP, base, base + THP_NR, 0, 0, "munmap") &&
	       settle("collapsed range unmapped");
}

static enum result test_thp(void)
{
	struct vmev a, b;
	int k;

	if (access(THP_DIR "enabled", W_OK)) {
		skip("no transparent hugepages (CONFIG_TRANSPARENT_HUGEPAGE)");
		return RES_SKIP;
	}
	if (write_text(THP_DIR "enabled", "madvise")) {
		fail("cannot set THP enabled=madvise");
		return RES_FAIL;
	}
	if (!workers_start(THP_WORKERS, 0))
		return RES_FAIL;
	if (!thp_setup())
		return g_skip_reason[0] && !g_failed ? RES_SKIP : RES_FAIL;
	for (k = 0; k < THP_WORKERS; k++)
		if (!wdo(k, OP_MADVISE, 0, 3 * THP_NR, MADV_MERGEABLE, 0, "MADV_MERGEABLE"))
			return RES_FAIL;
	if (!settle("THP subpages merged"))
		return RES_FAIL;
	for (k = 0; k < THP_WORKERS; k++) {
		expect_eq("pages left in the THPs that had mergeable subpages",
			  thp_pages(k, 0, 2 * THP_NR), 0);
		diag("worker %d: %ld pages of the unique THP still in a THP", k,
		     thp_pages(k, 2 * THP_NR, 3 * THP_NR));
	}
	if (!verify_all("after THP split"))
		return RES_FAIL;
	vmev_read(&a);
	if (!rewrite(0, 0, 8))
		return RES_FAIL;
	vmev_read(&b);
	if (a.cow_ksm >= 0)
		expect_eq("cow_ksm after writing 8 merged subpages", b.cow_ksm - a.cow_ksm, 8);
	if (!settle("8 subpages written") || !thp_zero() || !thp_collapse_zero() ||
	    !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

/* ---------------------------------------------------------------- hwpoison */

#define MF_WORKERS	3
#define MF_PAGES	256
#define MF_COMMON	128
#define MF_DUPS		32

static long poisoned_maps(void)
{
	long i, n = 0;
	int k;

	for (k = 0; k < g_nr_slots; k++)
		for (i = 0; slot_live(k) && i < g_slot[k].shm->npages; i++)
			n += !!(g_slot[k].shm->flags[i] & PF_POISON);
	return n;
}

/* Marks every page of every worker mapping frame @pfn as poisoned. */
static long mark_poisoned(unsigned long long pfn)
{
	struct slot_shm *s;
	long i, n = 0;
	int k;

	for (k = 0; k < g_nr_slots; k++) {
		if (!slot_live(k))
			continue;
		s = g_slot[k].shm;
		if (slot_pagemap(s, g_pm[k]))
			continue;
		for (i = 0; i < s->npages; i++) {
			if (!s->addr[i] || (g_pm[k][i] & PM_PFN_MASK) != pfn ||
			    !(g_pm[k][i] & PM_PRESENT))
				continue;
			s->flags[i] |= PF_POISON;
			n++;
		}
	}
	return n;
}

/*
 * MADV_HWPOISON on page @i of worker @k, a KSM page: every process that
 * maps it gets SIGBUS (BUS_MCEERR_AR) on access there, and only there.
 * Returns the poisoned frame, 0 on failure; sets the skip reason when the
 * kernel cannot do it at all.
 */
static unsigned long long poison(int k, long i, long want_maps)
{
	unsigned long long pfn = page_pfn(k, i);
	long sig0[MAX_SLOTS], maps, r, got = 0;
	struct slot_shm *s = g_slot[k].shm;
	int j;

	maps = mark_poisoned(pfn);
	for (j = 0; j < g_nr_slots; j++)
		sig0[j] = g_slot[j].shm->sigbus;
	r = wcall(k, OP_INJECT, i, MADV_HWPOISON, 0, 0);
	if (r == -EINVAL || r == -EPERM) {
		skip("MADV_HWPOISON: %s (needs CONFIG_MEMORY_FAILURE and CAP_SYS_ADMIN)",
		     strerror(-r));
		return 0;
	}
	if (r) {
		fail("MADV_HWPOISON on page %ld of worker %d: %s", i, k, strerror(-r));
		return 0;
	}
	diag("hwpoisoned frame %#llx (%ld mappings)%s", pfn, maps,
	     s->res[1] ? ", the caller got SIGBUS at once" : "");
	expect_eq("mappings of the poisoned KSM page", maps, want_maps);
	if (!verify_all("after MADV_HWPOISON"))
		return 0;
	for (j = 0; j < g_nr_slots; j++)
		if (slot_live(j))
			got += g_slot[j].shm->sigbus - sig0[j];
	expect_eq("SIGBUS on every poisoned page, once per mapping", got, poisoned_maps());
	return pfn;
}

/* MADV_SOFT_OFFLINE on page @i of worker @k: the KSM page moves, intact. */
static bool soft_offline(int k, long i)
{
	unsigned long long old = page_pfn(k, i), pfn;
	struct slot_shm *s;
	long r, j, n = 0;
	int w;

	/* a migration: not while ksmd holds the page (see g_ksmd_busy) */
	ksm_set("run", 0);
	r = wcall(k, OP_INJECT, i, MADV_SOFT_OFFLINE, 0, 0);
	ksm_set("run", 1);
	if (r) {
		fail("MADV_SOFT_OFFLINE on page %ld of worker %d: %s", i, k, strerror(-r));
		return false;
	}
	pfn = page_pfn(k, i);
	diag("soft-offlined frame %#llx: the KSM page is now at %#llx", old, pfn);
	expect_true("soft offline moved the page", pfn && pfn != old);
	for (w = 0; w < g_nr_slots; w++) {
		if (!slot_live(w))
			continue;
		s = g_slot[w].shm;
		if (slot_pagemap(s, g_pm[w]))
			return false;
		for (j = 0; j < s->npages; j++) {
			if (!s->addr[j] || s->seed[j] != g_slot[k].shm->seed[i])
				continue;
			expect_true("every mapping follows the soft-offlined KSM page",
				    (g_pm[w][j] & PM_PFN_MASK) == pfn);
			n++;
		}
	}
	diag("%ld mappings follow it", n);
	return verify_all("after MADV_SOFT_OFFLINE") && settle("after MADV_SOFT_OFFLINE");
}

/*
 * Fresh pages with the content of the poisoned KSM page must not be
 * merged into it: they merge with each other, on a healthy frame.
 */
static bool no_merge_into_poison(unsigned long long bad, unsigned long long seed)
{
	long idx = MF_PAGES - 1;
	unsigned long long a, b;
	int k;

	for (k = 0; k < 2; k++) {
		g_slot[k].shm->seed[idx] = seed;
		if (!wdo(k, OP_FILL, idx, idx + 1, 0, 0, "fill"))
			return false;
	}
	if (!settle("poisoned content written again") ||
	    !verify_all("poisoned content written again"))
		return false;
	a = page_pfn(0, idx);
	b = page_pfn(1, idx);
	expect_true("new pages with the poisoned content merged", a == b);
	return expect_true("new pages not mapped to the hwpoisoned frame", a != bad);
}

static enum result test_memory_failure(void)
{
	struct std_opts o = {
		.workers = MF_WORKERS, .pages = MF_PAGES, .common = MF_COMMON,
		.dups = MF_DUPS,
	};
	long kb0 = corrupted_kb(), dup = MF_COMMON + 1;
	unsigned long long bad;

	sysctl_set("/proc/sys/vm/memory_failure_early_kill", "0");
	if (!std_start(&o))
		return RES_FAIL;
	bad = poison(0, 10, MF_WORKERS);
	if (!bad)
		return g_skip_reason[0] && !g_failed ? RES_SKIP : RES_FAIL;
	if (!settle("after MADV_HWPOISON of a KSM page"))
		return RES_FAIL;
	/* a KSM page mapped MF_DUPS / 4 times in one process */
	if (!poison(2, dup, MF_DUPS / 4) || !settle("after MADV_HWPOISON of a local KSM page"))
		return RES_FAIL;
	if (kb0 >= 0)
		expect_eq("HardwareCorrupted (kB)", corrupted_kb() - kb0, 2 * page_size / 1024);
	if (!no_merge_into_poison(bad, make_seed(1, 10)))
		return RES_FAIL;
	if (!soft_offline(1, 20) || !soft_offline(2, MF_COMMON + 2))
		return RES_FAIL;
	if (kb0 >= 0)
		diag("HardwareCorrupted +%ld kB in all", corrupted_kb() - kb0);
	if (!verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

/* ---------------------------------------------------------------- hotplug */

#define HR_WORKERS	3
#define HR_PAGES	256
#define HR_COMMON	128
#define HR_NEW		16	/* pages written after the offline */

static unsigned long g_block_pages;

/* Memory blocks of @node (all blocks when @node < 0), highest first. */
static int node_blocks(int node, int *blk, int max)
{
	char path[128];
	int n = 0, b;

	for (b = 4095; b >= 0 && n < max; b--) {
		snprintf(path, sizeof(path), MEM_DIR "memory%d", b);
		if (access(path, F_OK))
			continue;
		if (node >= 0) {
			snprintf(path, sizeof(path), MEM_DIR "memory%d/node%d", b, node);
			if (access(path, F_OK))
				continue;
		}
		blk[n++] = b;
	}
	return n;
}

/*
 * A ZONE_MOVABLE block of @node: a block of a hot-plugged DIMM that is still
 * offline (the harness cold-plugs one on node 1), onlined as ZONE_MOVABLE;
 * failing that, a boot memory block taken offline and brought back movable.
 * Sets *@hotplugged to say which.
 */
static int make_movable_block(int node, bool *hotplugged)
{
	int blk[64], n, i, err, tries = 0;
	char path[128], zones[64];

	n = node_blocks(node, blk, ARRAY_SIZE(blk));
	*hotplugged = false;
	for (i = 0; i < n; i++) {
		if (block_online(blk[i]))
			continue;
		err = block_set(blk[i], "online_movable", 30);
		if (err) {
			diag("offline memory block %d: online_movable: %s", blk[i],
			     strerror(-err));
			continue;
		}
		g_clean->block = blk[i];
		g_clean->block_was_offline = true;
		*hotplugged = true;
		return blk[i];
	}
	for (i = 0; i < n && tries < 8; i++) {
		if (!block_online(blk[i]))
			continue;
		block_path(path, sizeof(path), blk[i], "valid_zones");
		if (read_text(path, zones, sizeof(zones)) < 0)
			zones[0] = '\0';
		tries++;
		err = block_set(blk[i], "offline", 20);
		if (err) {
			diag("memory block %d (%.*s): offline: %s", blk[i],
			     (int)strcspn(zones, "\n"), zones, strerror(-err));
			continue;
		}
		g_clean->block = blk[i];
		g_clean->block_was_offline = false;
		g_clean->block_was_movable = !!strstr(zones, "Movable");
		err = block_set(blk[i], "online_movable", 20);
		if (err) {
			diag("memory block %d: online_movable: %s", blk[i], strerror(-err));
			block_set(blk[i], "online", 20);
		}
		return blk[i];
	}
	return -1;
}

/* Frames of pages [lo, hi) of all workers inside memory block @blk. */
static long frames_in_block(int nw, long lo, long hi, int blk)
{
	unsigned long long pfn;
	long i, n = 0;
	int k;

	for (k = 0; k < nw; k++) {
		if (slot_pagemap(g_slot[k].shm, g_pm[k]))
			return -1;
		for (i = lo; i < hi; i++) {
			pfn = g_pm[k][i] & PM_PFN_MASK;
			if ((g_pm[k][i] & PM_PRESENT) && pfn / g_block_pages == (unsigned long)blk)
				n++;
		}
	}
	return n;
}

/* The block holding most of the workers' KSM frames. */
static int busiest_block(int nw)
{
	static unsigned long cnt[4096];
	unsigned long long b;
	long i;
	int k, best = -1;

	memset(cnt, 0, sizeof(cnt));
	for (k = 0; k < nw; k++) {
		if (slot_pagemap(g_slot[k].shm, g_pm[k]))
			return -1;
		for (i = 0; i < HR_COMMON; i++) {
			b = (g_pm[k][i] & PM_PFN_MASK) / g_block_pages;
			if ((g_pm[k][i] & PM_PRESENT) && b < ARRAY_SIZE(cnt))
				cnt[b]++;
		}
	}
	for (b = 0; b < ARRAY_SIZE(cnt); b++)
		if (cnt[b] && (best < 0 || cnt[b] > cnt[best]))
			best = b;
	return best;
}

static int offline_with_retries(int blk)
{
	int err = 0, i;

	for (i = 0; i < 3; i++) {
		err = block_set(blk, "offline", 60);
		if (err != -EBUSY)
			break;
		sleep_ms(500);
	}
	return err;
}

static enum result test_hot_remove(void)
{
	struct std_opts o = {
		.workers = HR_WORKERS, .pages = HR_PAGES, .common = HR_COMMON,
		.dups = 32,
	};
	unsigned long bsize;
	char buf[64];
	int blk, node = nr_memory_nodes() > 1 ? 1 : -1, err;
	bool hotplugged;
	double t;
	long in, i;

	if (read_text(MEM_DIR "block_size_bytes", buf, sizeof(buf)) < 0) {
		skip("no memory hotplug (" MEM_DIR ")");
		return RES_SKIP;
	}
	bsize = strtoul(buf, NULL, 16);
	g_block_pages = bsize / page_size;
	blk = make_movable_block(node, &hotplugged);
	if (blk < 0) {
		skip("no memory block could be taken offline in this machine");
		return RES_SKIP;
	}
	diag("memory block %d (%lu MiB, %s) is ZONE_MOVABLE now", blk, bsize >> 20,
	     hotplugged ? "hot-plugged DIMM" : "boot memory");
	/* new anonymous memory of the node comes from ZONE_MOVABLE first */
	if (node >= 0) {
		o.node_mode = MPOL_BIND;
		o.node = node;
	}
	if (!std_start(&o))
		return RES_FAIL;
	in = frames_in_block(HR_WORKERS, 0, HR_PAGES, blk);
	diag("%ld of the workers' pages are in block %d", in, blk);
	if (in <= 0) {
		blk = busiest_block(HR_WORKERS);
		diag("trying block %d, which holds most of the KSM pages", blk);
		if (blk < 0 || block_set(blk, "offline", 30)) {
			skip("no memory block holding KSM pages could be taken offline");
			return RES_SKIP;
		}
		g_clean->block = blk;
		g_clean->block_was_offline = false;
		g_clean->block_was_movable = false;
	} else {
		t = now();
		err = offline_with_retries(blk);
		if (err) {
			fail("offlining block %d: %s", blk, strerror(-err));
			return RES_FAIL;
		}
		diag("block %d offline in %.2f s with ksmd running", blk, now() - t);
	}
	expect_eq("workers' pages left in the offline block",
		  frames_in_block(HR_WORKERS, 0, HR_PAGES, blk), 0);
	if (!verify_all("after offlining") || !settle("after offlining"))
		return RES_FAIL;
	/* new copies of the moved KSM pages must find them where they went */
	for (i = 0; i < HR_NEW; i++)
		g_slot[1].shm->seed[HR_COMMON + i] = g_slot[0].shm->seed[i];
	if (!wdo(1, OP_FILL, HR_COMMON, HR_COMMON + HR_NEW, 0, 0, "fill") ||
	    !verify_all("new copies of moved KSM pages") ||
	    !settle("new copies merged with the moved KSM pages"))
		return RES_FAIL;
	err = block_set(blk, "online_movable", 30);
	if (err && block_set(blk, "online", 30))
		fail("cannot online block %d again: %s", blk, strerror(-err));
	if (!verify_all("after onlining again") || !settle("after onlining again"))
		return RES_FAIL;
	return RES_PASS;
}

static const struct ksm_test tests[] = {
	{ "thp", test_thp, false },
	{ "memory_failure", test_memory_failure, false },
	{ "hot_remove", test_hot_remove, false },
};

int main(int argc, char **argv)
{
	return mm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
