// SPDX-License-Identifier: GPL-2.0
/*
 * KSM counters and knobs: zero pages (use_zero_pages),
 * merging per NUMA node, the global and per-process statistics, the
 * ksm_stat flags and the errors of bad sysfs writes, checked exactly
 * against the model of ksm_util.h.
 *
 * Usage: ksm_stat_tests [-l seconds] [-L] [test ...]
 * Run by name, ksm_stat_flags fails on a kernel without the ksm_stat lines
 * it checks instead of skipping.
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR.
 */
#include "ksm_util.h"

static unsigned long long zero_key(int w, long i)
{
	if (i < 64)
		return KEY_ZERO;
	if (i < 96)
		return 0xa000 + w * 1000 + i;
	return 0xb000 + (i - 96) / 2;
}

/* Worker side: fork; the child checks its own ksm_stat zero pages. */
static long w_fork_zero_check(struct worker *self, long want)
{
	struct mm_ksm_stat st;
	int status;
	long global;
	pid_t pid = fork();

	(void)self;
	if (pid < 0)
		return -errno;
	if (!pid) {
		if (parse_ksm_stat("/proc/self/ksm_stat", &st))
			_exit(2);
		if (st.zero_pages != want) {
			out("# child ksm_stat ksm_zero_pages %ld, expected %ld",
			    st.zero_pages, want);
			_exit(3);
		}
		if (read_long(knob_path("ksm_zero_pages"), &global) ||
		    global != 2 * want) {
			out("# ksm_zero_pages with a child %ld, expected %ld",
			    global, 2 * want);
			_exit(4);
		}
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static long worker_zero_pages(struct worker *w)
{
	if (worker_call(w, w_stat, 0))
		return -1;
	return w->shm->st.zero_pages;
}

static enum result test_zero_pages(void)
{
	struct worker *ws[2];
	long r, i;

	if (!knob_exists("ksm_zero_pages")) {
		skip("no /sys/kernel/mm/ksm/ksm_zero_pages");
		return RES_SKIP;
	}
	if (!knob_set("use_zero_pages", 1))
		return RES_FAIL;
	model.use_zero_pages = true;
	ws[0] = map_worker(128);
	if (!ws[0])
		return RES_FAIL;
	set_keys(ws[0], 0, 128, zero_key, 0);
	if (!fill_range(ws[0], 0, 128) || !madvise_worker(ws[0], MADV_MERGEABLE))
		return RES_FAIL;
	if (!ksm_settle(ws, 1, 2))
		return RES_FAIL;
	check_state(ws, 1);
	expect_eq("ksm_zero_pages", knob_val("ksm_zero_pages"), 64);
	expect_eq("ksm_stat ksm_zero_pages", worker_zero_pages(ws[0]), 64);
	verify_all(ws, 1);

	/* A fork maps the same zero pages and is counted as such. */
	r = worker_call(ws[0], w_fork_zero_check, 64);
	if (r)
		fail("forked child's zero page accounting (code %ld)", r);
	expect_eq("ksm_zero_pages after the child exited",
		  knob_val("ksm_zero_pages"), 64);

	/* Writing breaks a zero page at once, as does MADV_DONTNEED. */
	for (i = 0; i < 16; i++)
		ws[0]->shm->key[i] = 0xd000 + i;
	if (!fill_range(ws[0], 0, 16))
		return RES_FAIL;
	expect_eq("ksm_zero_pages after writing 16", knob_val("ksm_zero_pages"), 48);
	expect_eq("ksm_stat ksm_zero_pages after writing 16",
		  worker_zero_pages(ws[0]), 48);
	for (i = 16; i < 24; i++)
		ws[0]->shm->key[i] = KEY_ABSENT;
	if (!fill_range(ws[0], 16, 24))
		return RES_FAIL;
	expect_eq("ksm_zero_pages after MADV_DONTNEED of 8",
		  knob_val("ksm_zero_pages"), 40);
	expect_eq("ksm_stat ksm_zero_pages after MADV_DONTNEED of 8",
		  worker_zero_pages(ws[0]), 40);
	verify_all(ws, 1);
	if (!ksm_settle(ws, 1, 2))
		return RES_FAIL;
	check_state(ws, 1);

	/* MADV_UNMERGEABLE turns the rest back into ordinary pages. */
	if (!madvise_worker(ws[0], MADV_UNMERGEABLE))
		return RES_FAIL;
	expect_eq("ksm_zero_pages after MADV_UNMERGEABLE",
		  knob_val("ksm_zero_pages"), 0);
	expect_eq("ksm_stat ksm_zero_pages after MADV_UNMERGEABLE",
		  worker_zero_pages(ws[0]), 0);
	verify_all(ws, 1);

	/* use_zero_pages=0: zero pages merge into one ordinary KSM page. */
	if (!ksm_reset())
		return RES_FAIL;
	ws[1] = map_worker(128);
	if (!ws[1])
		return RES_FAIL;
	set_keys(ws[1], 0, 128, zero_key, 1);
	if (!fill_range(ws[1], 0, 128) || !madvise_worker(ws[1], MADV_MERGEABLE))
		return RES_FAIL;
	if (!ksm_settle(ws + 1, 1, 2))
		return RES_FAIL;
	check_state(ws + 1, 1);
	expect_eq("ksm_zero_pages with use_zero_pages=0",
		  knob_val("ksm_zero_pages"), 0);
	verify_all(ws + 1, 1);
	check_cow_probe(ws + 1, 1);
	verify_all(ws + 1, 1);
	return RES_PASS;
}

static int memory_nodes(void)
{
	char buf[64];
	int a, b;

	if (read_text("/sys/devices/system/node/has_memory", buf, sizeof(buf)) < 0)
		return 1;
	/* "0-1" or "0,2": enough to know whether there are two */
	if (sscanf(buf, "%d-%d", &a, &b) == 2)
		return b - a + 1;
	return strchr(buf, ',') ? 2 : 1;
}

#define NUMA_P	64

static unsigned long long numa_key(int w, long i)
{
	(void)w;
	return 0xe000 + i % NUMA_P;
}

static bool numa_setup(struct worker *w)
{
	long r;
	int q;

	set_keys(w, 0, 4 * NUMA_P, numa_key, 0);
	for (q = 0; q < 4; q++) {
		w->shm->arg[0] = q * NUMA_P;
		w->shm->arg[1] = (q + 1) * NUMA_P;
		w->shm->arg[2] = q / 2;
		r = worker_call(w, w_mbind, 0);
		if (r) {
			fail("mbind: %s", strerror(-r));
			return false;
		}
	}
	return fill_range(w, 0, 4 * NUMA_P) && madvise_worker(w, MADV_MERGEABLE);
}

/* Every page of the region sits on the node it is bound to. */
static void check_nodes(struct worker *w)
{
	long r = worker_call(w, w_where, 0), i, bad = 0;

	if (r) {
		fail("move_pages: %s", strerror(-r));
		return;
	}
	for (i = 0; i < w->shm->npages; i++)
		if (w->shm->where[i] != w->shm->node[i] && bad++ < 3)
			fail("page %ld on node %d, expected %d", i,
			     w->shm->where[i], w->shm->node[i]);
}

static enum result test_numa(void)
{
	struct worker *ws[1];

	if (!knob_exists("merge_across_nodes")) {
		skip("kernel without NUMA: no merge_across_nodes");
		return RES_SKIP;
	}
	if (memory_nodes() < 2) {
		skip("fewer than 2 memory nodes");
		return RES_SKIP;
	}
	ws[0] = map_worker(4 * NUMA_P);
	if (!ws[0] || !numa_setup(ws[0]))
		return RES_FAIL;
	check_nodes(ws[0]);

	/* merge_across_nodes=1: one KSM page per content. */
	if (!ksm_settle(ws, 1, 2))
		return RES_FAIL;
	check_state(ws, 1);
	expect_eq("pages_shared across nodes", knob_val("pages_shared"), NUMA_P);
	expect_eq("pages_sharing across nodes", knob_val("pages_sharing"),
		  3 * NUMA_P);
	expect_write_err("merge_across_nodes", "0", EBUSY);
	expect_write_err("merge_across_nodes", "1", 0);
	verify_all(ws, 1);

	/* merge_across_nodes=0: one KSM page per content and node. */
	if (!knob_set("run", 2) || !knob_set("merge_across_nodes", 0))
		return RES_FAIL;
	model.across_nodes = false;
	model_forget();
	if (!ksm_settle(ws, 1, 2))
		return RES_FAIL;
	check_state(ws, 1);
	expect_eq("pages_shared per node", knob_val("pages_shared"), 2 * NUMA_P);
	expect_eq("pages_sharing per node", knob_val("pages_sharing"), 2 * NUMA_P);
	check_nodes(ws[0]);
	expect_write_err("merge_across_nodes", "1", EBUSY);
	verify_all(ws, 1);
	check_cow_probe(ws, 1);
	knob_set("run", 2);
	if (knob_set("merge_across_nodes", 1))
		model.across_nodes = true;
	return RES_PASS;
}

static unsigned long long stats_key(int w, long i)
{
	if (i < 48)
		return 0xf000ULL << 32 | (unsigned long long)w << 16 | i;
	if (i < 112)
		return 0xf100 + i;
	return 0xf200;
}

static enum result test_statistics(void)
{
	struct worker *ws[3];
	long sharing, rmap = 0, profit, skipped;
	struct ksm_expect e;
	int j;

	if (knob_exists("smart_scan")) {
		if (!knob_set("smart_scan", 0))
			return RES_FAIL;
		model.exact_unshared = true;
	} else {
		diag("no smart_scan knob: pages_unshared not checked exactly");
	}
	/* 0 and 1 mergeable, 2 has the same content as 0 but is not. */
	ws[0] = map_worker(128);
	ws[1] = map_worker(112);
	ws[2] = map_worker(128);
	if (!ws[0] || !ws[1] || !ws[2])
		return RES_FAIL;
	set_keys(ws[0], 0, 128, stats_key, 0);
	set_keys(ws[1], 0, 112, stats_key, 1);
	set_keys(ws[2], 0, 128, stats_key, 0);
	for (j = 0; j < 3; j++)
		if (!fill_range(ws[j], 0, ws[j]->shm->npages))
			return RES_FAIL;
	if (!madvise_worker(ws[0], MADV_MERGEABLE) ||
	    !madvise_worker(ws[1], MADV_MERGEABLE))
		return RES_FAIL;
	/* pages_skipped comes with smart_scan; a kernel may have neither. */
	skipped = model.exact_unshared ? knob_val("pages_skipped") : 0;
	if (!ksm_settle(ws, 3, 2))
		return RES_FAIL;
	check_state(ws, 3);
	model_expect(ws, 3, &e);
	expect_eq("pages_shared", e.shared, 65);
	expect_eq("pages_sharing", e.sharing, 79);
	expect_eq("pages_unshared (model)", e.unshared, 96 + (g_sentinel ? 1 : 0));
	expect_eq("stable_node_chains", knob_val("stable_node_chains"), 0);
	expect_eq("stable_node_dups", knob_val("stable_node_dups"), 0);
	if (model.exact_unshared)
		expect_eq("pages_skipped with smart_scan=0",
			  knob_val("pages_skipped"), skipped);

	/* Per-process fields. */
	for (j = 0; j < 3; j++) {
		struct mm_ksm_stat *st = &ws[j]->shm->st;

		if (worker_call(ws[j], w_stat, 0))
			return RES_FAIL;
		if (st->merge_any >= 0)
			expect_eq("ksm_stat ksm_merge_any", st->merge_any, 0);
		if (st->mergeable >= 0)
			expect_eq("ksm_stat ksm_mergeable", st->mergeable, j < 2);
		rmap += st->rmap_items;
	}
	if (ws[0]->shm->st.merge_any < 0)
		diag("ksm_stat has no ksm_merge_any / ksm_mergeable (as in 6.12)");
	expect_eq("pid 2 (not mergeable) ksm_rmap_items", ws[2]->shm->st.rmap_items, 0);
	expect_eq("pid 2 ksm_merging_pages", ws[2]->shm->st.merging_file, 0);
	expect_eq("pid 2 ksm_process_profit", ws[2]->shm->st.profit, 0);
	if (g_sentinel && !worker_call(g_sentinel, w_stat, 0)) {
		expect_eq("sentinel ksm_rmap_items", g_sentinel->shm->st.rmap_items, 1);
		rmap += g_sentinel->shm->st.rmap_items;
	}
	/* general_profit = (sharing + zero) * PAGE - all rmap_items * size */
	sharing = knob_val("pages_sharing");
	profit = sharing * page_size - rmap * g_rmap_item_size;
	if (knob_exists("general_profit"))
		expect_eq("general_profit", knob_val("general_profit"), profit);
	diag("rmap_item size %ld bytes, general_profit %ld", g_rmap_item_size,
	     profit);

	/* smart_scan=1: unmerged pages get skipped, merged ones stay. */
	if (model.exact_unshared) {
		long fs;

		knob_set("smart_scan", 1);
		model.exact_unshared = false;
		fs = knob_val("full_scans");
		knob_set("run", 1);
		while (knob_val("full_scans") < fs + 8 && now() < g_deadline)
			sleep_ms(10);
		knob_set("run", 0);
		if (knob_val("pages_skipped") <= skipped)
			fail("smart_scan=1 skipped no page in 8 scans");
		check_state(ws, 3);
	}
	verify_all(ws, 3);
	check_cow_probe(ws, 3);
	verify_all(ws, 3);
	return RES_PASS;
}

/*
 * One of the ksm_stat lines Linux 6.14 added, in its format:
 * "ksm_merge_any: yes" or "...: no". Returns 1 or 0, or -1 when the line
 * is missing or malformed.
 */
static int ksm_stat_flag(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text;

	while (p) {
		if (!strncmp(p, name, n) && !strncmp(p + n, ": ", 2)) {
			p += n + 2;
			if (!strncmp(p, "yes\n", 4))
				return 1;
			return strncmp(p, "no\n", 3) ? -1 : 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* Does this kernel's ksm_stat have either of the two lines? */
static bool ksm_stat_has_flags(void)
{
	char buf[1024];

	if (read_text("/proc/self/ksm_stat", buf, sizeof(buf)) < 0)
		return false;
	return strstr(buf, "ksm_merge_any") || strstr(buf, "ksm_mergeable");
}

/* Checks both flags of @path's ksm_stat: well-formed, with these values. */
static bool expect_stat_flags(const char *path, const char *when, int any,
			      int mergeable)
{
	char buf[1024], what[160];
	int got_any, got_mg;

	if (read_text(path, buf, sizeof(buf)) < 0) {
		fail("%s: cannot read %s", when, path);
		return false;
	}
	got_any = ksm_stat_flag(buf, "ksm_merge_any");
	got_mg = ksm_stat_flag(buf, "ksm_mergeable");
	if (got_any < 0 || got_mg < 0) {
		fail("%s: no well-formed ksm_merge_any / ksm_mergeable line", when);
		return false;
	}
	snprintf(what, sizeof(what), "%s: ksm_merge_any", when);
	expect_eq(what, got_any, any);
	snprintf(what, sizeof(what), "%s: ksm_mergeable", when);
	expect_eq(what, got_mg, mergeable);
	return true;
}

/* A child of a merge-any process inherits both flags (exit code 0). */
static int stat_flags_child(void)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (!pid)
		_exit(expect_stat_flags("/proc/self/ksm_stat", "forked child",
					1, 1) && !g_failed ? 0 : 1);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * ksm_merge_any and ksm_mergeable of /proc/<pid>/ksm_stat, with Linux
 * 6.14's meaning: merge_any is PR_SET_MEMORY_MERGE; mergeable says that
 * at least one VMA is mergeable now, by madvise or by that prctl.
 * A kernel without the lines (6.12's own KSM) skips, unless the test was
 * asked for by name.
 */
static enum result test_ksm_stat_flags(void)
{
	const char *self = "/proc/self/ksm_stat";
	size_t len = 16 * page_size;
	char *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		return RES_FAIL;
	}
	memset(p, 0x5a, len);
	if (!ksm_stat_has_flags() && !g_named) {
		skip("ksm_stat has no ksm_merge_any / ksm_mergeable (6.12)");
		return RES_SKIP;
	}
	if (!expect_stat_flags(self, "before opting in", 0, 0))
		return RES_FAIL;
	if (madvise(p, len, MADV_MERGEABLE)) {
		fail("MADV_MERGEABLE: %s", strerror(errno));
		return RES_FAIL;
	}
	expect_stat_flags(self, "after MADV_MERGEABLE", 0, 1);
	/* Still registered with KSM, but nothing is mergeable any more. */
	if (madvise(p, len, MADV_UNMERGEABLE)) {
		fail("MADV_UNMERGEABLE: %s", strerror(errno));
		return RES_FAIL;
	}
	expect_stat_flags(self, "after MADV_UNMERGEABLE", 0, 0);
	if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
		if (errno == EINVAL) {
			skip("PR_SET_MEMORY_MERGE not supported");
			return RES_SKIP;
		}
		fail("PR_SET_MEMORY_MERGE 1: %s", strerror(errno));
		return RES_FAIL;
	}
	expect_stat_flags(self, "after PR_SET_MEMORY_MERGE 1", 1, 1);
	expect_eq("forked child's ksm_stat flags (exit code)",
		  stat_flags_child(), 0);
	if (prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0))
		fail("PR_SET_MEMORY_MERGE 0: %s", strerror(errno));
	expect_stat_flags(self, "after PR_SET_MEMORY_MERGE 0", 0, 0);
	munmap(p, len);
	return RES_PASS;
}

struct bad_write {
	const char *knob;
	const char *val;
	int err;
};

/* What 6.12 answers (mm/ksm.c *_store); values must stay unchanged. */
static const struct bad_write bad_writes[] = {
	{ "run", "3", EINVAL },
	{ "run", "-1", EINVAL },
	{ "run", "abc", EINVAL },
	{ "run", "1x", EINVAL },
	{ "run", "4294967297", EINVAL },
	{ "sleep_millisecs", "-5", EINVAL },
	{ "sleep_millisecs", "ten", EINVAL },
	{ "sleep_millisecs", "99999999999", EINVAL },
	{ "pages_to_scan", "-1", EINVAL },
	{ "pages_to_scan", "0x10", EINVAL },
	{ "pages_to_scan", "99999999999", EINVAL },
	{ "merge_across_nodes", "2", EINVAL },
	{ "merge_across_nodes", "-1", EINVAL },
	{ "merge_across_nodes", "x", EINVAL },
	{ "merge_across_nodes", "99999999999999999999999", ERANGE },
	{ "use_zero_pages", "2", EINVAL },
	{ "use_zero_pages", "maybe", EINVAL },
	{ "max_page_sharing", "0", EINVAL },
	{ "max_page_sharing", "1", EINVAL },
	{ "max_page_sharing", "-3", EINVAL },
	{ "max_page_sharing", "lots", EINVAL },
	{ "max_page_sharing", "99999999999", ERANGE },
	{ "stable_node_chains_prune_millisecs", "-1", EINVAL },
	{ "stable_node_chains_prune_millisecs", "soon", EINVAL },
	{ "smart_scan", "2", EINVAL },
	{ "smart_scan", "-1", EINVAL },
	{ "smart_scan", "maybe", EINVAL },
	{ "advisor_mode", "fast", EINVAL },
	{ "advisor_mode", "1", EINVAL },
	{ "advisor_mode", "[none]", EINVAL },
	{ "advisor_mode", "scan-time none", EINVAL },
	{ "advisor_target_scan_time", "0", EINVAL },
	{ "advisor_target_scan_time", "-1", EINVAL },
	{ "advisor_target_scan_time", "soon", EINVAL },
	{ "advisor_max_cpu", "-1", EINVAL },
	{ "advisor_max_cpu", "most", EINVAL },
	{ "advisor_min_pages_to_scan", "-1", EINVAL },
	{ "advisor_min_pages_to_scan", "few", EINVAL },
	{ "advisor_min_pages_to_scan", "99999999999999999999999", EINVAL },
	{ "advisor_max_pages_to_scan", "-1", EINVAL },
	{ "advisor_max_pages_to_scan", "0x100", EINVAL },
};

static enum result test_bad_sysfs_writes(void)
{
	struct worker *ws[1];
	size_t i;
	char buf[64];

	for (i = 0; i < ARRAY_SIZE(bad_writes); i++) {
		if (!knob_exists(bad_writes[i].knob)) {
			diag("no %s, not checked", bad_writes[i].knob);
			continue;
		}
		expect_write_err(bad_writes[i].knob, bad_writes[i].val,
				 bad_writes[i].err);
	}
	/* Read-only files cannot be opened for writing, even by root. */
	expect_eq("errno opening pages_shared for writing",
		  write_text(knob_path("pages_shared"), "0"), EACCES);
	expect_eq("errno opening full_scans for writing",
		  write_text(knob_path("full_scans"), "0"), EACCES);
	/* Edge values 6.12 accepts. */
	expect_write_err("pages_to_scan", "0", 0);
	expect_eq("pages_to_scan", knob_val("pages_to_scan"), 0);
	expect_write_err("use_zero_pages", "y", 0);
	expect_eq("use_zero_pages", knob_val("use_zero_pages"), 1);
	expect_write_err("use_zero_pages", "0", 0);
	expect_write_err("max_page_sharing", "2", 0);
	expect_eq("max_page_sharing", knob_val("max_page_sharing"), 2);
	expect_write_err("max_page_sharing", "256", 0);
	if (knob_exists("pages_skipped"))
		expect_eq("errno opening pages_skipped for writing",
			  write_text(knob_path("pages_skipped"), "0"), EACCES);
	if (knob_exists("smart_scan")) {
		expect_write_err("smart_scan", "off", 0);
		expect_eq("smart_scan", knob_val("smart_scan"), 0);
		expect_write_err("smart_scan", "y\n", 0);
		expect_eq("smart_scan", knob_val("smart_scan"), 1);
	}
	/* pages_to_scan belongs to the advisor while it is on. */
	if (knob_exists("advisor_mode")) {
		read_text(knob_path("advisor_mode"), buf, sizeof(buf));
		expect_eq("advisor_mode reads \"[none] scan-time\"",
			  strcmp(buf, "[none] scan-time\n"), 0);
		expect_write_err("advisor_target_scan_time", "1", 0);
		expect_eq("advisor_target_scan_time",
			  knob_val("advisor_target_scan_time"), 1);
		expect_write_err("advisor_max_cpu", "0", 0);
		expect_write_err("advisor_min_pages_to_scan", "0", 0);
		expect_write_err("advisor_max_pages_to_scan",
				 "18446744073709551615", 0);
		expect_write_err("advisor_mode", "scan-time\n", 0);
		read_text(knob_path("advisor_mode"), buf, sizeof(buf));
		expect_eq("advisor_mode reads \"none [scan-time]\"",
			  strcmp(buf, "none [scan-time]\n"), 0);
		expect_write_err("advisor_mode", "scan-time", 0);
		read_text(knob_path("advisor_mode"), buf, sizeof(buf));
		if (!strstr(buf, "[scan-time]"))
			fail("advisor_mode reads %s", buf);
		expect_write_err("pages_to_scan", "100", EINVAL);
		expect_write_err("advisor_mode", "none", 0);
		expect_write_err("pages_to_scan", "100", 0);
	}

	/* While KSM pages exist, the knobs that reshape the trees are busy. */
	ws[0] = map_worker(32);
	if (!ws[0])
		return RES_FAIL;
	for (i = 0; i < 32; i++)
		ws[0]->shm->key[i] = 0x1100 + i / 4;
	if (!fill_range(ws[0], 0, 32) || !madvise_worker(ws[0], MADV_MERGEABLE) ||
	    !ksm_settle(ws, 1, 2))
		return RES_FAIL;
	check_state(ws, 1);
	expect_write_err("max_page_sharing", "100", EBUSY);
	expect_write_err("max_page_sharing", "256", 0);
	if (knob_exists("merge_across_nodes"))
		expect_write_err("merge_across_nodes", "0", EBUSY);
	/* Unmerged, they are free to change. */
	knob_set("run", 2);
	expect_write_err("max_page_sharing", "100", 0);
	expect_eq("max_page_sharing", knob_val("max_page_sharing"), 100);
	knob_set("max_page_sharing", 256);
	verify_all(ws, 1);
	return RES_PASS;
}

static const struct ksm_test tests[] = {
	{ "zero_pages", test_zero_pages },
	{ "numa", test_numa },
	{ "statistics", test_statistics },
	{ "ksm_stat_flags", test_ksm_stat_flags },
	{ "bad_sysfs_writes", test_bad_sysfs_writes },
};

int main(int argc, char **argv)
{
	return ksm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
