// SPDX-License-Identifier: GPL-2.0
/*
 * How ksmd scans: smart scan, the scan-time advisor,
 * memory KSM must leave alone (unsuitable VMAs), max_page_sharing chains,
 * transparent huge pages and writes counted by the end of their round,
 * checked exactly against the model of
 * ksm_util.h.
 *
 * Usage: ksm_scan_tests [-l seconds] [-L] [test ...]
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR.
 */
#include "ksm_util.h"

struct scan_counts {
	long scanned;
	long skipped;
	long full_scans;
};

static void scan_counts(struct scan_counts *c)
{
	c->scanned = knob_val("pages_scanned");
	c->skipped = knob_val("pages_skipped");
	c->full_scans = knob_val("full_scans");
}

/* @c becomes the change since @c; returns the number of full scans. */
static long scan_counts_delta(struct scan_counts *c)
{
	struct scan_counts now;

	scan_counts(&now);
	c->scanned = now.scanned - c->scanned;
	c->skipped = now.skipped - c->skipped;
	c->full_scans = now.full_scans - c->full_scans;
	diag("%ld full scans: %ld pages looked at, %ld skipped", c->full_scans,
	     c->scanned, c->skipped);
	return c->full_scans;
}

#define SMART_PAGES	128
#define SMART_LATE	16
/*
 * Full scans that take a page that never merges from its first look to
 * the rarest looks and then some: smart scan leaves out a few rounds only
 * after several looks, and longer runs of rounds as the page ages.
 */
#define SMART_SCANS	24

static unsigned long long smart_key(int w, long i)
{
	if (!w)
		return 0x5300ULL << 32 | i / 2;	/* pairs: KSM pages */
	return 0x5400ULL << 32 | (unsigned long long)w << 16 | i;
}

static enum result test_smart_scan(void)
{
	long visits, lo, hi;
	struct worker *ws[4];
	struct scan_counts c;
	int j;

	if (!knob_exists("smart_scan") || !knob_exists("pages_skipped")) {
		skip("no smart_scan or pages_skipped");
		return RES_SKIP;
	}
	for (j = 0; j < 3; j++) {
		ws[j] = map_worker(SMART_PAGES);
		if (!ws[j])
			return RES_FAIL;
		set_keys(ws[j], 0, SMART_PAGES, smart_key, j);
		if (!fill_range(ws[j], 0, SMART_PAGES))
			return RES_FAIL;
	}

	/* KSM pages alone (and the sentinel): only the sentinel is skipped. */
	if (!madvise_worker(ws[0], MADV_MERGEABLE) || !ksm_settle(ws, 1, 2))
		return RES_FAIL;
	check_state(ws, 1);
	scan_counts(&c);
	if (!run_scans(SMART_SCANS) || scan_counts_delta(&c) < SMART_SCANS)
		return RES_FAIL;
	if (c.skipped > c.full_scans + 1)
		fail("%ld pages skipped, but only the sentinel may be", c.skipped);
	if (c.scanned < SMART_PAGES * (c.full_scans - 1))
		fail("%ld looks at %d KSM mappings in %ld full scans", c.scanned,
		     SMART_PAGES, c.full_scans);
	check_state(ws, 1);

	/* Unique pages join: they are skipped more and more often. */
	if (!madvise_worker(ws[1], MADV_MERGEABLE) ||
	    !madvise_worker(ws[2], MADV_MERGEABLE) || !ksm_settle(ws, 3, 2))
		return RES_FAIL;
	check_state(ws, 3);
	scan_counts(&c);
	if (!run_scans(SMART_SCANS) || scan_counts_delta(&c) < SMART_SCANS)
		return RES_FAIL;
	if (c.skipped < 2 * SMART_PAGES)
		fail("%ld skips of %d unique pages in %ld full scans", c.skipped,
		     2 * SMART_PAGES + 1, c.full_scans);
	/* Each page is either looked at or skipped in every full scan. */
	visits = 3 * SMART_PAGES + 1;
	lo = visits * (c.full_scans - 1);
	hi = visits * (c.full_scans + 1);
	if (c.scanned + c.skipped < lo || c.scanned + c.skipped > hi)
		fail("%ld looks + %ld skips, expected %ld to %ld", c.scanned,
		     c.skipped, lo, hi);
	check_state(ws, 3);

	/* Old unique pages that become copies of each other still merge. */
	for (j = 0; j < SMART_LATE; j++)
		ws[2]->shm->key[j] = ws[1]->shm->key[j];
	if (!fill_range(ws[2], 0, SMART_LATE) || !ksm_settle(ws, 3, 2))
		return RES_FAIL;
	check_state(ws, 3);
	expect_eq("pages_shared with the late copies", knob_val("pages_shared"),
		  SMART_PAGES / 2 + SMART_LATE);

	/*
	 * New copies of old unique pages merge in the first full scan that
	 * sees both, skipped or not (the base selftest's -N waits for two).
	 */
	ws[3] = map_worker(SMART_LATE);
	if (!ws[3])
		return RES_FAIL;
	for (j = 0; j < SMART_LATE; j++)
		ws[3]->shm->key[j] = ws[1]->shm->key[SMART_LATE + j];
	if (!fill_range(ws[3], 0, SMART_LATE) ||
	    !madvise_worker(ws[3], MADV_MERGEABLE) || !run_scans(2))
		return RES_FAIL;
	if (!counters_match(ws, 4)) {
		fail("new copies of old pages not merged within 2 full scans");
		show_counters();
	}
	check_state(ws, 4);
	verify_all(ws, 4);
	check_cow_probe(ws, 4);
	verify_all(ws, 4);
	return RES_PASS;
}

#define ADV_PAGES	1024
#define TRACE_DIR	"/sys/kernel/tracing/"

static unsigned long long adv_key(int w, long i)
{
	return 0x5a00ULL << 32 | (unsigned long long)w << 16 | i;
}

/*
 * Runs ksmd until the advisor sets pages_to_scan to @want; every value
 * read meanwhile must lie within [@lo, @hi].
 */
static bool advisor_wait(long lo, long hi, long want)
{
	long v = -1, start = knob_val("full_scans");

	if (!knob_set("run", 1))
		return false;
	while (now() < g_deadline) {
		v = knob_val("pages_to_scan");
		if (v < lo || v > hi) {
			fail("the advisor set pages_to_scan %ld, outside [%ld, %ld]",
			     v, lo, hi);
			break;
		}
		if (v == want)
			break;
		sleep_ms(10);
	}
	knob_set("run", 0);
	diag("pages_to_scan %ld after %ld full scans", v,
	     knob_val("full_scans") - start);
	if (v != want)
		fail("pages_to_scan is %ld, expected the advisor to set %ld", v,
		     want);
	return v == want;
}

/* Empties the trace buffer; 0 or an errno. */
static int trace_clear(void)
{
	int fd = open(TRACE_DIR "trace", O_WRONLY | O_TRUNC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* A ksm_advisor event in the trace buffer that reports @batch. */
static bool advisor_traced(long batch)
{
	char want[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(want, sizeof(want), " pages_to_scan %ld cpu percent ", batch);
	f = fopen(TRACE_DIR "trace", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "ksm_advisor: ksm scan time ") &&
			strstr(line, want);
	fclose(f);
	return found;
}

static enum result test_advisor(void)
{
	bool tracing = !access(TRACE_DIR "events/ksm", F_OK);
	struct worker *ws[1];

	if (!knob_exists("advisor_mode")) {
		skip("no advisor_mode");
		return RES_SKIP;
	}
	ws[0] = map_worker(ADV_PAGES);
	if (!ws[0])
		return RES_FAIL;
	set_keys(ws[0], 0, ADV_PAGES, adv_key, 0);
	if (!fill_range(ws[0], 0, ADV_PAGES) ||
	    !madvise_worker(ws[0], MADV_MERGEABLE))
		return RES_FAIL;
	if (tracing && (trace_clear() ||
			write_text(TRACE_DIR "events/ksm/ksm_advisor/enable", "1"))) {
		fail("cannot enable the ksm_advisor event");
		tracing = false;
	}
	/*
	 * Rounds of 1025 pages at 4 pages per batch and 20 ms between
	 * batches last several seconds, far over a 1 s target: the advisor
	 * raises pages_to_scan to the maximum. Smart scan would shorten
	 * rounds as pages age, so it is off.
	 */
	if (!knob_set("smart_scan", 0) || !knob_set("sleep_millisecs", 20) ||
	    !knob_set("advisor_max_cpu", 100) ||
	    !knob_set("advisor_min_pages_to_scan", 4) ||
	    !knob_set("advisor_max_pages_to_scan", 6) ||
	    !knob_set("advisor_target_scan_time", 1))
		return RES_FAIL;
	expect_write_err("advisor_mode", "scan-time", 0);
	expect_eq("pages_to_scan when the advisor starts",
		  knob_val("pages_to_scan"), 4);
	expect_write_err("pages_to_scan", "50", EINVAL);
	if (!advisor_wait(4, 6, 6))
		return RES_FAIL;
	if (tracing && !advisor_traced(6))
		fail("no ksm_advisor event with pages_to_scan 6");

	/* Rounds far under a target of 11 days: down to the minimum. */
	if (!knob_set("advisor_target_scan_time", 1000000) ||
	    !advisor_wait(4, 6, 4))
		return RES_FAIL;
	if (tracing && !advisor_traced(4))
		fail("no ksm_advisor event with pages_to_scan 4");
	if (tracing)
		write_text(TRACE_DIR "events/ksm/ksm_advisor/enable", "0");

	/* Off again: pages_to_scan is the default and writable. */
	expect_write_err("advisor_mode", "none", 0);
	expect_eq("pages_to_scan after the advisor", knob_val("pages_to_scan"),
		  100);
	expect_write_err("pages_to_scan", "50", 0);
	expect_eq("pages_to_scan", knob_val("pages_to_scan"), 50);
	check_state(ws, 1);
	verify_all(ws, 1);
	return RES_PASS;
}

struct area {
	const char *name;
	char *addr;
	long pages;
	int want_mg;
};

/* Identical content everywhere: only the suitable areas may merge. */
static void fill_area(struct area *a)
{
	long i;

	for (i = 0; i < a->pages; i++)
		fill_page((unsigned long long *)(a->addr + i * page_size), 0x4242);
}

static long check_area(struct area *a)
{
	long i, bad = 0;

	for (i = 0; i < a->pages; i++, g_page_checks++)
		if (check_page((unsigned long long *)(a->addr + i * page_size),
			       0x4242) >= 0)
			bad++;
	return bad;
}

static long count_self_ksm(struct area *a)
{
	unsigned long long pm[64];
	long i, n = 0;

	if (read_pagemap(getpid(), (unsigned long)a->addr, a->pages, pm))
		return -1;
	for (i = 0; i < a->pages; i++)
		if ((pm[i] & PM_PRESENT) && frame_maps(pm[i] & PM_PFN_MASK) >= 2)
			n++;
	return n;
}

static char *find_special(const char *name)
{
	char line[512];
	unsigned long start = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, name)) {
			start = strtoul(line, NULL, 16);
			break;
		}
	fclose(f);
	return (char *)start;
}

/* Maps the areas of unsuitable_vmas; returns how many could be mapped. */
static int map_areas(struct area *a, int memfd)
{
	static const struct {
		const char *name;
		int flags;
		bool file;
		int want_mg;
	} kinds[] = {
		{ "MAP_SHARED anonymous", MAP_SHARED | MAP_ANONYMOUS, false, 0 },
		{ "MAP_SHARED memfd", MAP_SHARED, true, 0 },
		{ "MAP_PRIVATE memfd (suitable)", MAP_PRIVATE, true, 1 },
		{ "MAP_DROPPABLE", MAP_DROPPABLE | MAP_ANONYMOUS, false, 0 },
		{ "hugetlb", MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, false, 0 },
	};
	size_t k;
	int n = 0;

	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		bool huge = kinds[k].flags & MAP_HUGETLB;
		size_t len = huge ? 2UL << 20 : 16UL * page_size;
		char *p;

		if (huge)
			write_text(NR_HUGEPAGES, "1");
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, kinds[k].flags,
			 kinds[k].file ? memfd : -1, 0);
		if (p == MAP_FAILED) {
			diag("%s: mmap failed (%s), not checked", kinds[k].name,
			     strerror(errno));
			continue;
		}
		a[n].name = kinds[k].name;
		a[n].addr = p;
		a[n].pages = huge ? 1 : 16;
		a[n++].want_mg = kinds[k].want_mg;
	}
	return n;
}

/* VM_PFNMAP/VM_IO ([vvar]) and VM_DONTEXPAND ([vdso]): advice ignored. */
static void check_special(const char *name)
{
	char *p = find_special(name), what[64];

	if (!p) {
		diag("no %s mapping, not checked", name);
		return;
	}
	snprintf(what, sizeof(what), "madvise(%s) errno", name);
	expect_eq(what, madvise(p, page_size, MADV_MERGEABLE) ? errno : 0, 0);
	snprintf(what, sizeof(what), "%s VmFlags mg", name);
	expect_eq(what, vma_has_flag(getpid(), (unsigned long)p, "mg"), 0);
}

/* One call over a private and a shared VMA marks only the private one. */
static bool check_mixed(void)
{
	char *mixed = mmap(NULL, 32 * page_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long m = (unsigned long)mixed;

	if (mixed == MAP_FAILED ||
	    mmap(mixed + 16 * page_size, 16 * page_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		return false;
	}
	expect_eq("madvise over private+shared errno",
		  madvise(mixed, 32 * page_size, MADV_MERGEABLE) ? errno : 0, 0);
	expect_eq("private half mg", vma_has_flag(getpid(), m, "mg"), 1);
	expect_eq("shared half mg",
		  vma_has_flag(getpid(), m + 16 * page_size, "mg"), 0);
	/* The generic madvise() errors come first. */
	expect_eq("madvise on an unaligned address errno",
		  madvise(mixed + 1, page_size, MADV_MERGEABLE) ? errno : 0, EINVAL);
	if (munmap(mixed + 8 * page_size, page_size))
		fail("munmap: %s", strerror(errno));
	expect_eq("madvise over a hole errno",
		  madvise(mixed, 16 * page_size, MADV_MERGEABLE) ? errno : 0, ENOMEM);
	return true;
}

static enum result test_unsuitable_vmas(void)
{
	struct area a[8];
	double t0 = now();
	int n, i, memfd;
	char what[96];
	long fs;

	memfd = memfd_create("ksm_tests", 0);
	if (memfd < 0 || ftruncate(memfd, 16 * page_size)) {
		fail("memfd: %s", strerror(errno));
		return RES_FAIL;
	}
	n = map_areas(a, memfd);
	for (i = 0; i < n; i++) {
		/* Identical content everywhere: only suitable areas may merge. */
		fill_area(&a[i]);
		snprintf(what, sizeof(what), "%s: madvise(MADV_MERGEABLE) errno",
			 a[i].name);
		expect_eq(what, madvise(a[i].addr, a[i].pages * page_size,
					MADV_MERGEABLE) ? errno : 0, 0);
		snprintf(what, sizeof(what), "%s: VmFlags mg", a[i].name);
		expect_eq(what, vma_has_flag(getpid(), (unsigned long)a[i].addr, "mg"),
			  a[i].want_mg);
	}
	check_special("[vvar]");
	check_special("[vdso]");
	if (!check_mixed())
		return RES_FAIL;
	expect_eq("MADV_UNMERGEABLE on shared memory errno",
		  madvise(a[0].addr, 16 * page_size, MADV_UNMERGEABLE) ? errno : 0, 0);

	/* Only the 16 pages of the private memfd mapping merge. */
	fs = knob_val("full_scans");
	knob_set("run", 1);
	while ((knob_val("full_scans") < fs + 3 ||
		knob_val("pages_sharing") < 15) && now() < g_deadline)
		sleep_ms(10);
	knob_set("run", 0);
	diag("ksmd ran %.1f s", now() - t0);
	expect_eq("pages_shared", knob_val("pages_shared"), 1);
	expect_eq("pages_sharing", knob_val("pages_sharing"), 15);
	for (i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "merged pages in %s", a[i].name);
		expect_eq(what, count_self_ksm(&a[i]), a[i].want_mg ? a[i].pages : 0);
		snprintf(what, sizeof(what), "pages with wrong content in %s",
			 a[i].name);
		expect_eq(what, check_area(&a[i]), 0);
	}
	check_ksm_frames();
	knob_set("run", 2);
	return RES_PASS;
}

#define CHAIN_LIMIT	4
#define CHAIN_PAGES	8	/* per worker, all alike */

/* Frames of the first CHAIN_PAGES pages of each worker, sorted. */
static int chain_frames(struct worker **ws, int n, unsigned long long *frames)
{
	unsigned long long pm[CHAIN_PAGES];
	int j, i, nr = 0;

	for (j = 0; j < n; j++) {
		if (read_pagemap(ws[j]->pid, ws[j]->shm->region, CHAIN_PAGES, pm))
			return -1;
		for (i = 0; i < CHAIN_PAGES; i++)
			frames[nr++] = pm[i] & PM_PFN_MASK;
	}
	qsort(frames, nr, sizeof(*frames), ref_cmp_ull);
	return nr;
}

static bool chain_merged(struct worker **ws, int n)
{
	(void)ws;
	return knob_val("pages_shared") + knob_val("pages_sharing") ==
	       (long)n * CHAIN_PAGES && knob_val("stable_node_chains") == 1;
}

static unsigned long long chain_key(int w, long i)
{
	return i < CHAIN_PAGES ? 0x3300 :
	       0x3400ULL << 32 | (unsigned long long)w << 16 | i;
}

static enum result test_max_page_sharing(void)
{
	unsigned long long frames[3 * CHAIN_PAGES];
	long shared, run, maps, k;
	struct worker *ws[3];
	int j, nr;

	if (!knob_set("max_page_sharing", CHAIN_LIMIT))
		return RES_FAIL;
	for (j = 0; j < 3; j++) {
		ws[j] = map_worker(2 * CHAIN_PAGES);
		if (!ws[j])
			return RES_FAIL;
		set_keys(ws[j], 0, 2 * CHAIN_PAGES, chain_key, j);
		if (!fill_range(ws[j], 0, 2 * CHAIN_PAGES) ||
		    !madvise_worker(ws[j], MADV_MERGEABLE))
			return RES_FAIL;
	}
	g_settle_pred = chain_merged;
	if (!ksm_settle(ws, 3, 2))
		return RES_FAIL;
	g_settle_pred = NULL;
	/* 24 mappings of one content, at most 4 per KSM page: a chain of dups. */
	shared = knob_val("pages_shared");
	expect_eq("mappings of the chained content",
		  shared + knob_val("pages_sharing"), 3 * CHAIN_PAGES);
	expect_eq("stable_node_chains", knob_val("stable_node_chains"), 1);
	expect_eq("stable_node_dups (one per KSM page)",
		  knob_val("stable_node_dups"), shared);
	if (shared < 3 * CHAIN_PAGES / CHAIN_LIMIT)
		fail("%ld KSM pages hold %d mappings with max_page_sharing %d",
		     shared, 3 * CHAIN_PAGES, CHAIN_LIMIT);
	diag("%ld KSM pages hold %d mappings", shared, 3 * CHAIN_PAGES);
	nr = chain_frames(ws, 3, frames);
	for (k = 0, run = 0; k < nr; k += maps, run++) {
		for (maps = 1; k + maps < nr && frames[k + maps] == frames[k]; maps++)
			;
		if (maps > CHAIN_LIMIT || maps < 2 || frame_maps(frames[k]) != maps)
			fail("KSM page %llx: %ld mappings here, %ld in all, limit %d",
			     frames[k], maps, frame_maps(frames[k]), CHAIN_LIMIT);
	}
	expect_eq("distinct frames of the chained content", run, shared);
	for (j = 0; j < 3; j++) {
		if (worker_call(ws[j], w_stat, 0))
			return RES_FAIL;
		expect_eq("ksm_merging_pages", ws[j]->shm->st.merging_file,
			  CHAIN_PAGES);
	}
	expect_write_err("max_page_sharing", "256", EBUSY);
	verify_all(ws, 3);
	knob_set("run", 2);
	expect_write_err("max_page_sharing", "256", 0);
	return RES_PASS;
}

#define THP_PAGES	512

static long anon_huge_kb(pid_t pid, unsigned long addr)
{
	unsigned long start, end;
	char path[64], line[256];
	bool in = false;
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = addr >= start && addr < end;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* Pairs inside each THP, the same pairs in both workers, then unique. */
static unsigned long long thp_key(int w, long i)
{
	if (i < THP_PAGES / 2)
		return 0x3500 + i / 2;
	if (i < THP_PAGES * 3 / 4)
		return 0x3600 + i;
	return 0x3700ULL << 32 | (unsigned long long)w << 16 | i;
}

static enum result test_thp_merge(void)
{
	char buf[128];
	struct worker *ws[2];
	long r, kb;
	int j;

	if (read_text("/sys/kernel/mm/transparent_hugepage/enabled", buf,
		      sizeof(buf)) < 0 || strstr(buf, "[never]")) {
		skip("transparent hugepages not available");
		return RES_SKIP;
	}
	for (j = 0; j < 2; j++) {
		ws[j] = worker_start();
		if (!ws[j])
			return RES_FAIL;
		r = worker_call(ws[j], w_map_thp, THP_PAGES);
		if (r) {
			fail("THP mapping: %s", strerror(-r));
			return RES_FAIL;
		}
		set_keys(ws[j], 0, THP_PAGES, thp_key, j);
		if (!fill_range(ws[j], 0, THP_PAGES))
			return RES_FAIL;
		kb = anon_huge_kb(ws[j]->pid, ws[j]->shm->region);
		if (kb < 2048) {
			skip("no THP allocated for the region");
			return RES_SKIP;
		}
		if (!madvise_worker(ws[j], MADV_MERGEABLE))
			return RES_FAIL;
	}
	if (!ksm_settle(ws, 2, 2))
		return RES_FAIL;
	check_state(ws, 2);
	for (j = 0; j < 2; j++)
		expect_eq("AnonHugePages after merging (kB)",
			  anon_huge_kb(ws[j]->pid, ws[j]->shm->region), 0);
	verify_all(ws, 2);
	check_cow_probe(ws, 2);
	verify_all(ws, 2);
	return RES_PASS;
}

#define COW_PAGES	8
#define COW_ROUNDS	100
#define COW_MERGE_SCANS	20

/* Busy-waits, as the base tree's ksm_tests does, for full_scans > @from. */
static bool scan_after(long from)
{
	double end = now() + DEFAULT_TIMEOUT;

	while (knob_val("full_scans") <= from) {
		if (now() > end) {
			fail("no full scan in %d s", DEFAULT_TIMEOUT);
			return false;
		}
	}
	return true;
}

/* Waits up to COW_MERGE_SCANS full scans for the area to be merged. */
static bool cow_merged(void)
{
	long scans;

	for (scans = 0; scans < COW_MERGE_SCANS; scans++) {
		if (knob_val("pages_shared") == 1 &&
		    knob_val("pages_sharing") == COW_PAGES - 1)
			return true;
		if (!scan_after(knob_val("full_scans")))
			return false;
	}
	show_counters();
	fail("%d identical pages not merged in %d full scans", COW_PAGES,
	     COW_MERGE_SCANS);
	return false;
}

/*
 * A write to a merged page is counted out by the end of the round in
 * which it happened, even when ksmd's walk had passed the page already:
 * after the writes and the next increment of full_scans, nothing may be
 * counted as shared. The base tree's ksm_tests -U relies on this with two
 * pages, once; here it is tried COW_ROUNDS times with ksmd at full speed,
 * so that the writes land at every point of a round.
 */
static enum result test_cow_counted(void)
{
	size_t bytes = COW_PAGES * page_size;
	unsigned char *p, *areas[COW_ROUNDS];
	long round, i, from;
	bool ok = true;

	if (!knob_set("run", 1))
		return RES_FAIL;
	for (round = 0; round < COW_ROUNDS && ok; round++) {
		/*
		 * A new address every round: KSM remembers the pages of an
		 * address, and an area unmapped a moment ago may still be
		 * known by its last round's breaks, which make new contents
		 * there wait (the volatility gate) before they merge.
		 */
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			fail("mmap: %s", strerror(errno));
			ok = false;
			break;
		}
		areas[round] = p;
		/* Contents of this round only: no KSM page of an earlier one. */
		memset(p, 0x5a, bytes);
		for (i = 0; i < COW_PAGES; i++)
			memcpy(p + i * page_size + 64, &round, sizeof(round));
		if (madvise(p, bytes, MADV_MERGEABLE)) {
			fail("MADV_MERGEABLE: %s", strerror(errno));
			return RES_FAIL;
		}
		ok = cow_merged();
		for (i = 0; ok && i < COW_PAGES; i++)
			p[i * page_size] = 1 + i;
		from = knob_val("full_scans");
		if (ok && scan_after(from)) {
			ok &= expect_eq("pages_shared one scan after the writes",
					knob_val("pages_shared"), 0);
			ok &= expect_eq("pages_sharing one scan after the writes",
					knob_val("pages_sharing"), 0);
			if (!ok)
				diag("round %ld: full_scans %ld -> %ld", round,
				     from, knob_val("full_scans"));
		}
		for (i = 0; ok && i < COW_PAGES; i++) {
			if (p[i * page_size] != 1 + i ||
			    p[i * page_size + 1] != 0x5a ||
			    memcmp(p + i * page_size + 64, &round,
				   sizeof(round))) {
				fail("round %ld: page %ld reads back wrong",
				     round, i);
				ok = false;
			}
		}
	}
	for (i = 0; i < round; i++)
		munmap(areas[i], bytes);
	if (ok)
		diag("%ld rounds: every write counted out by the next full scan",
		     round);
	return ok ? RES_PASS : RES_FAIL;
}

static const struct ksm_test tests[] = {
	{ "smart_scan", test_smart_scan },
	{ "advisor", test_advisor },
	{ "unsuitable_vmas", test_unsuitable_vmas },
	{ "max_page_sharing", test_max_page_sharing },
	{ "thp_merge", test_thp_merge },
	{ "cow_counted", test_cow_counted },
};

int main(int argc, char **argv)
{
	return ksm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
