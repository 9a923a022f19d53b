// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel Samepage Merging: merging across processes, copy on
 * write, merging again, the ways to unmerge, PR_SET_MEMORY_MERGE and
 * ksmd against fork and exit, checked exactly against the model of
 * ksm_util.h.  It also takes the command line that the kernel's
 * run_vmtests.sh uses (-M, -U, -Z, -N, -P, -H, -D, -C; see runner_help()).
 *
 * Usage: ksm_tests [-l seconds] [-L] [test ...]
 *        ksm_tests -M|-U|-Z|-N|-P|-H|-D|-C [-p pages] [-s MiB] [-z 0|1]
 *                  [-m 0|1] [-t 0|1] [-l seconds] [-a rwx] [-d]
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR.
 */
#include "ksm_util.h"

/* ---------------------------------------------------------------- tests */

static enum result test_merge_across_processes(void)
{
	struct worker *ws[4];
	struct ksm_expect e;

	if (!start_layout_workers(ws, 4) || !ksm_settle(ws, 4, 2))
		return RES_FAIL;
	model_expect(ws, 4, &e);
	diag("expecting pages_shared %ld pages_sharing %ld", e.shared, e.sharing);
	check_state(ws, 4);
	verify_all(ws, 4);
	check_cow_probe(ws, 4);
	verify_all(ws, 4);
	return RES_PASS;
}

static long count_ksm_range(struct worker *w, long lo, long hi);

static unsigned long long cow_key(int w, long i)
{
	(void)w;
	return 0xc0c0ULL << 32 | i;
}

static unsigned long long cow_unique_key(int w, long i)
{
	return 0xc1c1ULL << 32 | (unsigned long long)w << 16 | i;
}

static enum result test_cow_after_merge(void)
{
	struct worker *ws[4];
	long before_sharing, before_shared;
	int j;

	if (!start_layout_workers(ws, 4) || !ksm_settle(ws, 4, 2))
		return RES_FAIL;
	check_state(ws, 4);
	before_shared = knob_val("pages_shared");
	before_sharing = knob_val("pages_sharing");

	/* Worker 0 writes: 16 common pages, the repeated key, its pair keys. */
	set_keys(ws[0], 0, 16, cow_key, 0);
	set_keys(ws[0], L_COMMON, L_PAIR, cow_unique_key, 0);
	if (!fill_range(ws[0], 0, 16) || !fill_range(ws[0], L_COMMON, L_PAIR))
		return RES_FAIL;
	/* The writer sees its data, the others keep the old data. */
	verify_all(ws, 4);
	expect_eq("shared frames left where worker 0 wrote",
		  count_ksm_range(ws[0], 0, 16) + count_ksm_range(ws[0], L_COMMON, L_PAIR), 0);
	expect_eq("shared frames of worker 1 after worker 0 wrote",
		  count_ksm_range(ws[1], 0, L_SAME), L_SAME);
	/* Worker 2 writes the same new data as worker 0 on 16 common pages. */
	set_keys(ws[2], 0, 16, cow_key, 2);
	if (!fill_range(ws[2], 0, 16))
		return RES_FAIL;
	verify_all(ws, 4);
	if (!ksm_settle(ws, 4, 2))
		return RES_FAIL;
	check_state(ws, 4);
	diag("pages_shared %ld -> %ld, pages_sharing %ld -> %ld", before_shared,
	     knob_val("pages_shared"), before_sharing, knob_val("pages_sharing"));
	/*
	 * 0 and 2 left 16 common keys (-32 sharing) but merged together on a
	 * new key (+16 shared, +16 sharing); 0 left the repeated key (-48) and
	 * 96 pair keys, which stay KSM pages mapped once by worker 1 (-96).
	 */
	expect_eq("pages_shared after COW", knob_val("pages_shared"),
		  before_shared + 16);
	expect_eq("pages_sharing after COW", knob_val("pages_sharing"),
		  before_sharing - 32 + 16 - 48 - 96);
	check_cow_probe(ws, 4);
	for (j = 0; j < 4; j++)
		if (worker_call(ws[j], w_verify, 0))
			fail("pid %d content wrong at the end", ws[j]->pid);
	return RES_PASS;
}

static long count_ksm_range(struct worker *w, long lo, long hi)
{
	return count_multi(w->pid, w->shm->region, lo, hi);
}

#define REMERGE_PAGES	512
#define REMERGE_ROUNDS	6
/*
 * Full scans after the writes within which everything must be merged
 * again: the scan in progress reaches the pages ahead of its cursor, the
 * next one those behind it, and a page found rewritten must then be seen
 * unchanged through one more scan.
 */
#define REMERGE_SCANS	3

static unsigned long long remerge_key(int w, long i)
{
	(void)w;
	return 0x7e00ULL << 32 | i;
}

/*
 * Pages merged across 4 processes are written over with the data they
 * already hold, which breaks every merge (each write takes a private
 * copy), and must be merged again within REMERGE_SCANS full scans of ksmd
 * at full speed, in every one of REMERGE_ROUNDS rounds: a page that was
 * broken before is not held back longer because of it. In odd rounds all
 * 4 processes write, so the KSM pages go away and the copies merge anew;
 * in even rounds 2 write and merge back into the KSM pages the other two
 * still map.
 */
static enum result test_remerge_after_cow(void)
{
	struct worker *ws[4];
	int j, r, writers;
	long left;

	for (j = 0; j < 4; j++) {
		ws[j] = map_worker(REMERGE_PAGES);
		if (!ws[j])
			return RES_FAIL;
		set_keys(ws[j], 0, REMERGE_PAGES, remerge_key, j);
		if (!fill_range(ws[j], 0, REMERGE_PAGES) ||
		    !madvise_worker(ws[j], MADV_MERGEABLE))
			return RES_FAIL;
	}
	if (!ksm_settle(ws, 4, 2))
		return RES_FAIL;
	check_state(ws, 4);
	for (r = 1; r <= REMERGE_ROUNDS; r++) {
		writers = r % 2 ? 4 : 2;
		for (j = 0; j < writers; j++)
			if (!fill_range(ws[j], 0, REMERGE_PAGES))
				return RES_FAIL;
		/* ksmd is stopped: every written page must be a private copy. */
		for (j = 0; j < 4; j++) {
			left = count_ksm_range(ws[j], 0, REMERGE_PAGES);
			if (left != (j < writers ? 0 : REMERGE_PAGES))
				fail(
				     "round %d: pid %d: %ld pages in shared frames after the writes",
				     r, ws[j]->pid, left);
		}
		verify_all(ws, 4);
		if (!run_scans(REMERGE_SCANS))
			return RES_FAIL;
		if (!counters_match(ws, 4) ||
		    (knob_exists("pages_volatile") && knob_val("pages_volatile"))) {
			fail("round %d: not all merged again within %d full scans",
			     r, REMERGE_SCANS);
			show_counters();
			/* How long it does take, for the record. */
			if (!ksm_settle(ws, 4, 0))
				return RES_FAIL;
		}
		check_state(ws, 4);
		verify_all(ws, 4);
		diag("round %d: %d processes wrote, all merged again", r, writers);
	}
	check_cow_probe(ws, 4);
	verify_all(ws, 4);
	return RES_PASS;
}

/* Unmerged: no frame shared, and no page copied on write (not even lone ones). */
static bool expect_no_ksm_in(struct worker *w)
{
	long shared = count_ksm_range(w, 0, w->shm->npages), i, copied = 0;

	if (shared)
		fail("pid %d: %ld pages still share frames after unmerging",
		     w->pid, shared);
	if (worker_call(w, w_cow_probe, 0)) {
		fail("pid %d: COW probe failed", w->pid);
		return false;
	}
	for (i = 0; i < w->shm->npages; i++)
		copied += w->shm->where[i] == 1;
	if (copied)
		fail("pid %d: %ld pages were still KSM pages after unmerging",
		     w->pid, copied);
	return !shared && !copied;
}

static void expect_mg(struct worker *w, int want)
{
	int r = vma_has_flag(w->pid, w->shm->region, "mg");

	if (r != want)
		fail("pid %d region VmFlags mg is %d, expected %d", w->pid, r, want);
}

static void expect_merging_zero(struct worker *w)
{
	char what[64];

	if (worker_call(w, w_stat, 0)) {
		fail("pid %d ksm_stat", w->pid);
		return;
	}
	snprintf(what, sizeof(what), "pid %d ksm_merging_pages", w->pid);
	expect_eq(what, w->shm->st.merging_file, 0);
	expect_eq(what, w->shm->st.merging_pages, 0);
}

static unsigned long long unmerge_key(int w, long i)
{
	return i < 128 ? 0x5000 + i : 0x6000 + (i - 128) / 2 + w * 1000;
}

static bool start_unmerge_workers(struct worker **ws, int n, bool use_prctl)
{
	int j;
	long r;

	for (j = 0; j < n; j++) {
		ws[j] = map_worker(256);
		if (!ws[j])
			return false;
		set_keys(ws[j], 0, 256, unmerge_key, j);
		if (!fill_range(ws[j], 0, 256))
			return false;
		if (!use_prctl) {
			if (!madvise_worker(ws[j], MADV_MERGEABLE))
				return false;
			continue;
		}
		r = worker_call(ws[j], w_prctl_set, 1);
		if (r) {
			fail("PR_SET_MEMORY_MERGE 1: %s", strerror(-r));
			return false;
		}
		ws[j]->mergeable = true;
	}
	return true;
}

static enum result test_unmerge_paths(void)
{
	struct worker *ws[6];
	long r;
	int j;

	/* 1: MADV_UNMERGEABLE, one worker first, then the others. */
	diag("MADV_UNMERGEABLE");
	if (!start_unmerge_workers(ws, 3, false) || !ksm_settle(ws, 3, 2))
		return RES_FAIL;
	check_state(ws, 3);
	/* 6.12: PR_SET_MEMORY_MERGE 0 leaves madvise()d areas alone. */
	r = worker_call(ws[2], w_prctl_set, 0);
	if (r)
		fail("PR_SET_MEMORY_MERGE 0 without merge-any: %s", strerror(-r));
	expect_mg(ws[2], 1);
	if (!madvise_worker(ws[0], MADV_UNMERGEABLE))
		return RES_FAIL;
	expect_no_ksm_in(ws[0]);
	expect_mg(ws[0], 0);
	verify_all(ws, 3);
	if (!ksm_settle(ws, 3, 2))
		return RES_FAIL;
	check_state(ws, 3);
	expect_merging_zero(ws[0]);
	for (j = 1; j < 3; j++)
		if (!madvise_worker(ws[j], MADV_UNMERGEABLE))
			return RES_FAIL;
	for (j = 0; j < 3; j++)
		expect_no_ksm_in(ws[j]);
	if (!ksm_settle(ws, 3, 2))
		return RES_FAIL;
	check_state(ws, 3);
	expect_eq("pages_shared", knob_val("pages_shared"), 0);
	expect_eq("pages_sharing", knob_val("pages_sharing"), 0);
	for (j = 0; j < 3; j++)
		expect_merging_zero(ws[j]);
	verify_all(ws, 3);

	/* 2: PR_SET_MEMORY_MERGE 0 on processes merged through prctl. */
	diag("PR_SET_MEMORY_MERGE 0");
	if (!ksm_reset())
		return RES_FAIL;
	model.noisy = true;
	if (!start_unmerge_workers(ws + 3, 2, true) || !ksm_settle(ws + 3, 2, 2))
		return RES_FAIL;
	check_state(ws + 3, 2);
	for (j = 3; j < 5; j++) {
		r = worker_call(ws[j], w_prctl_set, 0);
		if (r)
			fail("PR_SET_MEMORY_MERGE 0: %s", strerror(-r));
		ws[j]->mergeable = false;
		expect_eq("PR_GET_MEMORY_MERGE after 0",
			  worker_call(ws[j], w_prctl_get, 0), 0);
		expect_no_ksm_in(ws[j]);
		expect_mg(ws[j], 0);
	}
	model.noisy = false;
	if (!ksm_settle(ws + 3, 2, 2))
		return RES_FAIL;
	check_state(ws + 3, 2);
	for (j = 3; j < 5; j++)
		expect_merging_zero(ws[j]);
	verify_all(ws + 3, 2);

	/* 3: run=2 unmerges everything at once but keeps VM_MERGEABLE. */
	diag("run=2");
	if (!ksm_reset())
		return RES_FAIL;
	for (j = 3; j < 5; j++)
		if (!madvise_worker(ws[j], MADV_MERGEABLE))
			return RES_FAIL;
	if (!ksm_settle(ws + 3, 2, 2))
		return RES_FAIL;
	check_state(ws + 3, 2);
	if (!knob_set("run", 2))
		return RES_FAIL;
	expect_eq("pages_shared after run=2", knob_val("pages_shared"), 0);
	expect_eq("pages_sharing after run=2", knob_val("pages_sharing"), 0);
	for (j = 3; j < 5; j++) {
		expect_no_ksm_in(ws[j]);
		expect_merging_zero(ws[j]);
		expect_eq("ksm_rmap_items after run=2", ws[j]->shm->st.rmap_items, 0);
		expect_mg(ws[j], 1);
	}
	verify_all(ws + 3, 2);
	/* Still VM_MERGEABLE: run=1 merges the same pages again. */
	model_forget();
	if (!ksm_settle(ws + 3, 2, 2))
		return RES_FAIL;
	check_state(ws + 3, 2);
	knob_set("run", 2);
	return RES_PASS;
}

static unsigned long long prctl_key(int w, long i)
{
	(void)w;
	return 0x7000 + i;
}

static enum result test_prctl_merge(void)
{
	struct worker *ws[3], *child;
	long r, pid;
	int j;

	model.noisy = true;
	/* Prepared before any fork so that worker 0 can hand it to a child. */
	child = worker_prepare();
	ws[0] = map_worker(128);
	ws[1] = map_worker(128);
	if (!ws[0] || !ws[1] || !child)
		return RES_FAIL;
	/* Worker 0 turns merge-any on before it writes, worker 1 after. */
	r = worker_call(ws[0], w_prctl_set, 1);
	if (r) {
		if (r == -EINVAL) {
			skip("PR_SET_MEMORY_MERGE not supported");
			return RES_SKIP;
		}
		fail("PR_SET_MEMORY_MERGE 1: %s", strerror(-r));
		return RES_FAIL;
	}
	set_keys(ws[0], 0, 128, prctl_key, 0);
	set_keys(ws[1], 0, 128, prctl_key, 1);
	if (!fill_range(ws[0], 0, 128) || !fill_range(ws[1], 0, 128))
		return RES_FAIL;
	r = worker_call(ws[1], w_prctl_set, 1);
	if (r)
		fail("PR_SET_MEMORY_MERGE 1 (late): %s", strerror(-r));
	ws[0]->mergeable = true;
	ws[1]->mergeable = true;
	expect_eq("PR_GET_MEMORY_MERGE", worker_call(ws[0], w_prctl_get, 0), 1);
	expect_eq("PR_GET_MEMORY_MERGE", worker_call(ws[1], w_prctl_get, 0), 1);
	expect_mg(ws[0], 1);
	expect_mg(ws[1], 1);
	for (j = 0; j < 2; j++) {
		struct mm_ksm_stat *st = &ws[j]->shm->st;

		if (worker_call(ws[j], w_stat, 0))
			return RES_FAIL;
		if (st->merge_any >= 0)
			expect_eq("ksm_stat ksm_merge_any", st->merge_any, 1);
		if (st->mergeable >= 0)
			expect_eq("ksm_stat ksm_mergeable", st->mergeable, 1);
	}
	errno = 0;
	expect_eq("PR_SET_MEMORY_MERGE with arg3 set (errno)",
		  prctl(PR_SET_MEMORY_MERGE, 1, 1, 0, 0) ? errno : 0, EINVAL);
	expect_eq("PR_GET_MEMORY_MERGE with arg2 set (errno)",
		  prctl(PR_GET_MEMORY_MERGE, 1, 0, 0, 0) < 0 ? errno : 0, EINVAL);
	if (!ksm_settle(ws, 2, 2))
		return RES_FAIL;
	check_state(ws, 2);

	/* A child of worker 0 inherits merge-any and merges a new region. */
	pid = worker_call(ws[0], w_fork_worker, child - g_w);
	if (pid <= 0) {
		fail("fork in worker: %s", strerror(-pid));
		return RES_FAIL;
	}
	child->pid = pid;
	worker_attached(child);
	expect_eq("child PR_GET_MEMORY_MERGE", worker_call(child, w_prctl_get, 0), 1);
	if (!worker_call(child, w_stat, 0) && child->shm->st.merge_any >= 0)
		expect_eq("child ksm_stat ksm_merge_any", child->shm->st.merge_any, 1);
	else
		diag("ksm_stat has no ksm_merge_any field; PR_GET_MEMORY_MERGE checked");
	expect_eq("PR_GET_MEMORY_MERGE after execve (probe exit code)",
		  worker_call(child, w_exec_probe, 0), 0);
	r = worker_call(child, w_map, 128);
	if (r) {
		fail("child map: %s", strerror(-r));
		return RES_FAIL;
	}
	set_keys(child, 0, 128, prctl_key, 2);
	if (!fill_range(child, 0, 128))
		return RES_FAIL;
	child->mergeable = true;
	expect_mg(child, 1);
	ws[2] = child;
	if (!ksm_settle(ws, 3, 2))
		return RES_FAIL;
	check_state(ws, 3);
	if (!worker_call(child, w_stat, 0) && child->shm->st.merging_file < 128)
		fail("child ksm_merging_pages %ld < 128", child->shm->st.merging_file);
	verify_all(ws, 3);
	return RES_PASS;
}

/* Keys of the fork/exit test: two of each in every worker. */
static unsigned long long storm_key(int w, long i)
{
	(void)w;
	return 0x8000 + i / 2;
}

#define STORM_PAGES	256
#define STORM_CHILDREN	48

static void storm_child(struct worker *self, int nr)
{
	struct worker_shm *s = self->shm;
	char *base = (char *)s->region;
	unsigned long long *p;
	char *extra;
	long i;

	srand(nr);
	switch (nr % 4) {
	case 0:		/* break COW on some KSM pages */
		for (i = 0; i < 16; i++)
			fill_page((unsigned long long *)(base + i * 8 * page_size),
				  0x9000 + nr * 100 + i);
		break;
	case 1:		/* map more mergeable memory matching KSM pages */
	case 2:
		extra = mmap(NULL, 16 * page_size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (extra == MAP_FAILED)
			_exit(10);
		for (i = 0; i < 16; i++)
			fill_page((unsigned long long *)(extra + i * page_size),
				  storm_key(0, i * 2));
		if (madvise(extra, 16 * page_size, MADV_MERGEABLE))
			_exit(11);
		if (nr % 4 == 2 && fork() == 0)
			_exit(0);
		break;
	case 3:		/* unmerge part of the inherited region */
		if (madvise(base, 64 * page_size, MADV_UNMERGEABLE))
			_exit(12);
		break;
	}
	sleep_ms(rand() % 30);
	/* Inherited pages not written must still read back right. */
	for (i = 0; i < s->npages; i++) {
		if (nr % 4 == 0 && i % 8 == 0 && i < 128)
			continue;
		p = (unsigned long long *)(base + i * page_size);
		if (check_page(p, s->key[i]) >= 0)
			_exit(13);
	}
	wait(NULL);
	_exit(0);
}

static long w_storm(struct worker *self, long nr)
{
	int i, alive = 0, status, bad = 0;
	pid_t pid;

	for (i = 0; i < nr; i++) {
		while (alive >= 4) {
			pid = wait(&status);
			if (pid < 0)
				return -errno;
			alive--;
			if (!(WIFEXITED(status) && !WEXITSTATUS(status)) &&
			    !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
				out("# storm child %d: status %#x", pid, status);
				bad++;
			}
		}
		pid = fork();
		if (pid < 0)
			return -errno;
		if (!pid)
			storm_child(self, i);
		alive++;
		if (i % 5 == 4) {
			sleep_ms(i % 7);
			kill(pid, SIGKILL);
		}
	}
	while (alive--) {
		pid = wait(&status);
		if (pid < 0)
			return -errno;
		if (!(WIFEXITED(status) && !WEXITSTATUS(status)) &&
		    !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
			out("# storm child %d: status %#x", pid, status);
			bad++;
		}
	}
	return bad;
}

static enum result test_fork_exit_scanning(void)
{
	struct worker *ws[2];
	long r, shared, sharing;
	double t0;
	int j;

	for (j = 0; j < 2; j++) {
		ws[j] = map_worker(STORM_PAGES);
		if (!ws[j])
			return RES_FAIL;
		set_keys(ws[j], 0, STORM_PAGES, storm_key, j);
		if (!fill_range(ws[j], 0, STORM_PAGES) ||
		    !madvise_worker(ws[j], MADV_MERGEABLE))
			return RES_FAIL;
	}
	if (!ksm_settle(ws, 2, 2))
		return RES_FAIL;
	check_state(ws, 2);
	shared = knob_val("pages_shared");
	sharing = knob_val("pages_sharing");

	/* Now fork and kill while ksmd runs flat out. */
	knob_set("run", 1);
	t0 = now();
	r = worker_call(ws[0], w_storm, STORM_CHILDREN);
	if (r)
		fail("fork/exit storm: %ld children misbehaved (or error %ld)", r, r);
	diag("%d children forked and gone in %.1f s, full_scans now %ld",
	     STORM_CHILDREN, now() - t0, knob_val("full_scans"));
	knob_set("run", 0);
	if (!ksm_settle(ws, 2, 2))
		return RES_FAIL;
	check_state(ws, 2);
	expect_eq("pages_shared back to the state before", knob_val("pages_shared"),
		  shared);
	expect_eq("pages_sharing back to the state before",
		  knob_val("pages_sharing"), sharing);
	verify_all(ws, 2);
	check_cow_probe(ws, 2);
	verify_all(ws, 2);
	return RES_PASS;
}

/* ------------------------------------------- run_vmtests.sh's command line */

/*
 * The kernel's tools/testing/selftests/mm/run_vmtests.sh calls ksm_tests
 * with one check letter and its parameters (-M -p 10, -N -m 1, -P -s 100
 * and so on).  Each such call makes one check and exits 0 (passed), 1
 * (failed) or 4 (KSFT_SKIP: the kernel or the machine lacks something).
 * The checks ask for what the runner's checks ask for, and more: the
 * pages merged must also be the process's ksm_merging_pages, keep their
 * bytes, and the timed checks must end with everything merged (or, for
 * -D, nothing); -P and -H time merging until every page is merged.
 */

#define RUNNER_SKIP		4
#define RUNNER_COW_PAGES	4000
#define RUNNER_FILL		'*'
/*
 * Default -l: the base tree's program allows 120 s, which -P -s 100 (two
 * full scans of 100 MiB at pages_to_scan 10) needs half of on a debug
 * kernel under QEMU TCG alone; on a loaded host it can take twice that.
 */
#define RUNNER_LIMIT		600

enum runner_check {
	RC_MERGE,		/* -M */
	RC_UNMERGE,		/* -U */
	RC_ZERO,		/* -Z */
	RC_NUMA,		/* -N */
	RC_MERGE_TIME,		/* -P */
	RC_THP_TIME,		/* -H */
	RC_UNMERGE_TIME,	/* -D */
	RC_COW_TIME,		/* -C */
};

struct runner_opts {
	enum runner_check check;
	int prot;		/* -a, PROT_* of the merged area */
	long pages;		/* -p, also ksmd's pages_to_scan */
	int limit;		/* -l, seconds for the whole check */
	bool zero_pages;	/* -z, use_zero_pages */
	bool across;		/* -m, merge_across_nodes */
	long size_mb;		/* -s, area of the timed checks */
	bool prctl;		/* -t 1: PR_SET_MEMORY_MERGE, not madvise */
	bool verbose;		/* -d */
};

static const char * const runner_title[] = {
	[RC_MERGE] = "KSM merging",
	[RC_UNMERGE] = "KSM unmerging",
	[RC_ZERO] = "KSM zero page merging",
	[RC_NUMA] = "KSM NUMA merging",
	[RC_MERGE_TIME] = "KSM merge time",
	[RC_THP_TIME] = "KSM merge time with huge pages",
	[RC_UNMERGE_TIME] = "KSM unmerge time",
	[RC_COW_TIME] = "KSM COW time",
};

static struct runner_opts ro = {
	.check = RC_MERGE, .pages = 10, .limit = RUNNER_LIMIT, .across = true,
	.prot = PROT_READ | PROT_WRITE,
};

/* A failure of this mode: the reason as a TAP diagnostic. */
static enum result runner_fail(const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	diag("FAIL: %s", why);
	return RES_FAIL;
}

static double runner_deadline;

/* Waits for ksmd to complete @n more full scans. */
static bool runner_scans(long n)
{
	long start = knob_val("full_scans"), cur = start;

	while (cur >= 0 && cur < start + n) {
		if (now() > runner_deadline) {
			diag("only %ld of %ld full scans within %d s", cur - start, n,
			     ro.limit);
			return false;
		}
		sleep_ms(2);
		cur = knob_val("full_scans");
	}
	return cur >= 0;
}

/* KSM pages and their extra mappings that @n identical pages make. */
static void runner_expect(long n, long *shared, long *sharing)
{
	long per = knob_val("max_page_sharing");
	long full, rest;

	if (per < 2)
		per = 2;
	full = n / per;
	rest = n % per;
	*shared = full + (rest > 1);
	*sharing = full * (per - 1) + (rest > 1 ? rest - 1 : 0);
}

static void runner_show(void)
{
	static const char * const knobs[] = {
		"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
		"full_scans", "max_page_sharing", "stable_node_chains",
		"stable_node_dups", "ksm_zero_pages", "general_profit",
	};
	char text[512];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		if (knob_exists(knobs[i]))
			diag("%-20s %ld", knobs[i], knob_val(knobs[i]));
	if (read_text("/proc/self/ksm_stat", text, sizeof(text)) > 0)
		diag("/proc/self/ksm_stat: %s", text);
}

/* pages_shared and pages_sharing must be those of @n identical pages. */
static bool runner_counts(long n, const char *when)
{
	long shared, sharing, got_shared, got_sharing, mine;

	runner_expect(n, &shared, &sharing);
	got_shared = knob_val("pages_shared");
	got_sharing = knob_val("pages_sharing");
	if (ro.verbose)
		runner_show();
	if (got_shared != shared || got_sharing != sharing) {
		diag("FAIL: %s: pages_shared %ld pages_sharing %ld, expected %ld and %ld",
		     when, got_shared, got_sharing, shared, sharing);
		return false;
	}
	if (read_long("/proc/self/ksm_merging_pages", &mine))
		return true;
	/* merge-any: the rest of the process may merge with itself too */
	if (ro.prctl ? mine < shared + sharing : mine != shared + sharing) {
		diag("FAIL: %s: ksm_merging_pages %ld, expected %ld", when, mine,
		     shared + sharing);
		return false;
	}
	return true;
}

/* An area of @bytes, every byte @c, then protected as -a asks. */
static char *runner_area(size_t bytes, int c)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		diag("mmap of %zu bytes: %s", bytes, strerror(errno));
		return NULL;
	}
	memset(p, c, bytes);
	if (mprotect(p, bytes, ro.prot)) {
		diag("mprotect: %s", strerror(errno));
		munmap(p, bytes);
		return NULL;
	}
	return p;
}

/* Offset of the first byte of @p that is not @c, or -1. */
static long runner_differs(const char *p, size_t bytes, int c)
{
	size_t i;

	if (!(ro.prot & PROT_READ))
		return -1;
	for (i = 0; i < bytes; i++)
		if (p[i] != (char)c)
			return i;
	return -1;
}

static bool runner_advise(void *p, size_t bytes)
{
	int err = ro.prctl ? prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) :
			     madvise(p, bytes, MADV_MERGEABLE);

	if (err)
		diag("%s: %s", ro.prctl ? "PR_SET_MEMORY_MERGE" : "MADV_MERGEABLE",
		     strerror(errno));
	return !err;
}

/* Marks @p mergeable, runs ksmd and waits for two full scans. */
static bool runner_merge(void *p, size_t bytes)
{
	return runner_advise(p, bytes) && knob_set("run", 1) && runner_scans(2);
}

static void runner_done(void *p, size_t bytes)
{
	if (ro.prctl)
		prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	munmap(p, bytes);
}

static enum result runner_merge_check(void)
{
	size_t bytes = ro.pages * page_size;
	char *p = runner_area(bytes, RUNNER_FILL);
	bool ok;

	if (!p)
		return RES_FAIL;
	ok = runner_merge(p, bytes) && runner_counts(ro.pages, "merged");
	if (ok && runner_differs(p, bytes, RUNNER_FILL) >= 0) {
		diag("FAIL: merged pages changed content");
		ok = false;
	}
	runner_done(p, bytes);
	return ok ? RES_PASS : RES_FAIL;
}

static enum result runner_unmerge_check(void)
{
	size_t bytes = 2 * page_size;
	char *p = runner_area(bytes, RUNNER_FILL);
	bool ok;

	if (!p)
		return RES_FAIL;
	ok = runner_merge(p, bytes) && runner_counts(2, "merged");
	if (ok && mprotect(p, bytes, PROT_READ | PROT_WRITE))
		ok = false;
	if (ok) {
		/* both pages written: each gets a copy of its own */
		p[0] = '-';
		p[page_size] = '+';
		/*
		 * One scan: the kernel counts a broken mapping out by the
		 * end of the round in which the write happened, even when
		 * ksmd had passed the page already.
		 */
		ok = runner_scans(1) && runner_counts(0, "after writes");
	}
	if (ok && (p[0] != '-' || p[page_size] != '+' ||
		   runner_differs(p + 1, page_size - 1, RUNNER_FILL) >= 0)) {
		diag("FAIL: written pages read back wrong");
		ok = false;
	}
	runner_done(p, bytes);
	return ok ? RES_PASS : RES_FAIL;
}

static enum result runner_zero_check(void)
{
	size_t bytes = ro.pages * page_size;
	long zero0 = -1, zero;
	bool ok;
	char *p;

	if (!knob_set("use_zero_pages", ro.zero_pages))
		return RES_FAIL;
	if (knob_exists("ksm_zero_pages"))
		zero0 = knob_val("ksm_zero_pages");
	p = runner_area(bytes, 0);
	if (!p)
		return RES_FAIL;
	/* with use_zero_pages, each page maps the zero page instead */
	ok = runner_merge(p, bytes) &&
	     runner_counts(ro.zero_pages ? 0 : ro.pages, "merged");
	if (ok && ro.zero_pages && zero0 >= 0) {
		zero = knob_val("ksm_zero_pages") - zero0;
		if (ro.prctl ? zero < ro.pages : zero != ro.pages) {
			diag("FAIL: ksm_zero_pages grew by %ld, expected %ld", zero,
			     ro.pages);
			ok = false;
		}
	}
	if (ok && runner_differs(p, bytes, 0) >= 0) {
		diag("FAIL: zero pages read back non-zero");
		ok = false;
	}
	runner_done(p, bytes);
	return ok ? RES_PASS : RES_FAIL;
}

/* The first two nodes with memory, from "0-1" or "0,2" lists. */
static int runner_nodes(int *node)
{
	char text[256], *s = text, *end;
	long a, b;
	int n = 0;

	if (read_text("/sys/devices/system/node/has_memory", text, sizeof(text)) <= 0)
		return 0;
	while (n < 2 && *s && *s != '\n') {
		a = strtol(s, &end, 10);
		if (end == s)
			break;
		b = *end == '-' ? strtol(end + 1, &end, 10) : a;
		for (; a <= b && n < 2; a++)
			node[n++] = a;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

/* Binds the page at @p to @node before it is touched. */
static bool runner_bind(void *p, int node)
{
	unsigned long mask[4] = { 0 };

	mask[node / (8 * sizeof(long))] = 1UL << (node % (8 * sizeof(long)));
	if (syscall(__NR_mbind, p, page_size, MPOL_BIND, mask,
		    8 * sizeof(mask) + 1, 0)) {
		diag("mbind to node %d: %s", node, strerror(errno));
		return false;
	}
	return true;
}

/* Node the page at @p is on, or -1. */
static int runner_node_of(void *p)
{
	void *pages[1] = { p };
	int status = -1;

	if (syscall(__NR_move_pages, 0, 1, pages, NULL, &status, 0))
		return -1;
	return status;
}

static enum result runner_numa_check(void)
{
	size_t bytes = 2 * page_size;
	int node[2], i;
	bool ok;
	char *p;

	if (runner_nodes(node) < 2) {
		diag("two NUMA nodes with memory needed");
		return RES_SKIP;
	}
	if (!knob_set("merge_across_nodes", ro.across))
		return RES_FAIL;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return RES_FAIL;
	for (i = 0; i < 2; i++) {
		if (!runner_bind(p + i * page_size, node[i]))
			return RES_FAIL;
		memset(p + i * page_size, RUNNER_FILL, page_size);
		if (runner_node_of(p + i * page_size) != node[i])
			return runner_fail("page %d is not on node %d", i, node[i]);
	}
	/* one page per node: they may only merge across nodes */
	ok = runner_merge(p, bytes) && runner_counts(ro.across ? 2 : 0, "merged");
	if (ok && runner_differs(p, bytes, RUNNER_FILL) >= 0) {
		diag("FAIL: merged pages changed content");
		ok = false;
	}
	runner_done(p, bytes);
	return ok ? RES_PASS : RES_FAIL;
}

static void runner_rate(const char *what, double secs, size_t bytes)
{
	diag("%s", what);
	diag("Total size:    %zu MiB", bytes >> 20);
	diag("Total time:    %.9f s", secs);
	diag("Average speed: %.3f MiB/s", secs > 0 ? (bytes >> 20) / secs : 0.0);
}

/* Are pages_shared and pages_sharing those of @n identical pages? */
static bool runner_counts_are(long n)
{
	long shared, sharing;

	runner_expect(n, &shared, &sharing);
	return knob_val("pages_shared") == shared &&
	       knob_val("pages_sharing") == sharing;
}

/*
 * Times merging @bytes at @p: from the advice until every page is merged,
 * after two full scans at least (the base tree's program stops its clock
 * after two full scans, merged or not).  Fails if the limit comes first.
 */
static bool runner_timed_merge(char *p, size_t bytes, const char *what)
{
	long n = bytes / page_size, scans;
	double t0 = now();

	if (!runner_advise(p, bytes) || !knob_set("run", 1))
		return false;
	scans = knob_val("full_scans");
	if (!runner_scans(2))
		return false;
	while (!runner_counts_are(n) && now() < runner_deadline)
		sleep_ms(2);
	runner_rate(what, now() - t0, bytes);
	diag("%ld full scans", knob_val("full_scans") - scans);
	if (!runner_counts(n, "merged"))
		return false;
	if (runner_differs(p, bytes, RUNNER_FILL) >= 0) {
		diag("FAIL: merged pages changed content");
		return false;
	}
	return true;
}

static enum result runner_merge_time(void)
{
	size_t bytes = (size_t)ro.size_mb << 20;
	char *p = runner_area(bytes, RUNNER_FILL);
	bool ok;

	if (!p)
		return RES_FAIL;
	ok = runner_timed_merge(p, bytes, "merging:");
	runner_done(p, bytes);
	return ok ? RES_PASS : RES_FAIL;
}

/* kB of huge pages in the mapping of @p, from /proc/self/smaps. */
static long runner_thp_kb(char *p)
{
	char line[256];
	unsigned long lo, hi;
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = lo <= (unsigned long)p && (unsigned long)p < hi;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static enum result runner_thp_time(void)
{
	size_t bytes = (size_t)ro.size_mb << 20, huge = 2UL << 20;
	char *raw, *p;
	long kb;
	bool ok;

	if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK)) {
		diag("no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE)");
		return RES_SKIP;
	}
	bytes -= bytes % huge;
	if (!bytes)
		return runner_fail("-s must be 2 MiB or more");
	raw = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return runner_fail("mmap: %s", strerror(errno));
	p = raw + (huge - (unsigned long)raw % huge) % huge;
	if (madvise(p, bytes, MADV_HUGEPAGE))
		return runner_fail("MADV_HUGEPAGE: %s", strerror(errno));
	memset(p, RUNNER_FILL, bytes);
	kb = runner_thp_kb(p);
	diag("%ld of %zu kB in huge pages", kb, bytes >> 10);
	if (mprotect(p, bytes, ro.prot))
		return runner_fail("mprotect: %s", strerror(errno));
	ok = runner_timed_merge(p, bytes, "merging huge pages:");
	if (ro.prctl)
		prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	munmap(raw, bytes + huge);
	return ok ? RES_PASS : RES_FAIL;
}

static enum result runner_unmerge_time(void)
{
	size_t bytes = (size_t)ro.size_mb << 20;
	char *p = runner_area(bytes, RUNNER_FILL);
	double t0;
	bool ok;

	if (!p)
		return RES_FAIL;
	ok = runner_merge(p, bytes) && runner_counts(bytes / page_size, "merged");
	if (ok) {
		t0 = now();
		ok = !madvise(p, bytes, MADV_UNMERGEABLE);
		runner_rate("unmerging:", now() - t0, bytes);
		if (!ok)
			diag("FAIL: MADV_UNMERGEABLE: %s", strerror(errno));
	}
	/*
	 * The copies are made at once; the index entries that pointed to the
	 * pages go when ksmd next looks at them: within two full scans.
	 */
	ok = ok && runner_scans(2) && runner_counts(0, "unmerged");
	if (ok && runner_differs(p, bytes, RUNNER_FILL) >= 0) {
		diag("FAIL: unmerged pages changed content");
		ok = false;
	}
	runner_done(p, bytes);
	return ok ? RES_PASS : RES_FAIL;
}

/* Writes the first byte of every other page; returns the seconds taken. */
static double runner_cow_writes(char *p, long pages)
{
	double t0 = now();
	long i;

	for (i = 0; i < pages; i += 2)
		p[i * page_size] = '-';
	return now() - t0;
}

/* @pairs pairs of identical pages: one KSM page and one sharer each. */
static bool runner_pairs(long pairs)
{
	long shared = knob_val("pages_shared"), sharing = knob_val("pages_sharing");

	if (ro.verbose)
		runner_show();
	if (shared == pairs && sharing == pairs)
		return true;
	diag("FAIL: pages_shared %ld pages_sharing %ld, expected %ld each", shared,
	     sharing, pairs);
	return false;
}

static enum result runner_cow_time(void)
{
	long pages = RUNNER_COW_PAGES, i, bad = 0;
	size_t bytes = pages * page_size;
	char *p = runner_area(bytes, RUNNER_FILL);
	bool ok;

	if (!p)
		return RES_FAIL;
	if (mprotect(p, bytes, PROT_READ | PROT_WRITE))
		return runner_fail("mprotect: %s", strerror(errno));
	runner_rate("writes to pages not merged:", runner_cow_writes(p, pages),
		    bytes / 2);
	/* pairs: pages 2k and 2k + 1 alike, every pair different */
	for (i = 0; i < pages; i++) {
		memset(p + i * page_size, RUNNER_FILL, page_size);
		memset(p + i * page_size, '+', i / 2 + 1);
	}
	ok = runner_merge(p, bytes) && runner_pairs(pages / 2);
	if (ok)
		runner_rate("writes to merged pages:", runner_cow_writes(p, pages),
			    bytes / 2);
	for (i = 0; ok && i < pages; i++)
		bad += p[i * page_size] != (i % 2 ? '+' : '-') ||
		       p[i * page_size + i / 2 + 1] != RUNNER_FILL;
	if (bad) {
		diag("FAIL: %ld pages read back wrong after the writes", bad);
		ok = false;
	}
	runner_done(p, bytes);
	return ok ? RES_PASS : RES_FAIL;
}

static enum result (* const runner_fn[])(void) = {
	[RC_MERGE] = runner_merge_check,
	[RC_UNMERGE] = runner_unmerge_check,
	[RC_ZERO] = runner_zero_check,
	[RC_NUMA] = runner_numa_check,
	[RC_MERGE_TIME] = runner_merge_time,
	[RC_THP_TIME] = runner_thp_time,
	[RC_UNMERGE_TIME] = runner_unmerge_time,
	[RC_COW_TIME] = runner_cow_time,
};

#define RUNNER_LETTERS	"MUZNPHDC"
#define RUNNER_OPTS	"dha:p:l:z:m:s:t:" RUNNER_LETTERS

static void runner_help(const char *prog)
{
	printf("usage: %s [-M|-U|-Z|-N|-P|-H|-D|-C] [-a rwx] [-p pages] [-l seconds]\n"
	       "       [-z 0|1] [-m 0|1] [-s MiB] [-t 0|1] [-d]\n"
	       "  -M  identical pages merge (-p pages)\n"
	       "  -U  written merged pages are unmerged\n"
	       "  -Z  zero pages merge (-z use_zero_pages)\n"
	       "  -N  pages on two NUMA nodes (-m merge_across_nodes)\n"
	       "  -P  time merging -s MiB;  -H  the same in huge pages\n"
	       "  -D  time MADV_UNMERGEABLE of -s MiB;  -C  time writes to merged pages\n"
	       "  -a  protection of the pages (rw);  -t  1: PR_SET_MEMORY_MERGE, 0: madvise\n"
	       "  -l  time limit (%d s);  -d  show the KSM counters\n"
	       "Exit: 0 passed, 1 failed, 4 skipped.\n", prog, RUNNER_LIMIT);
}

/* Does the command line use the runner's options rather than test names? */
static bool runner_wanted(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (argv[i][0] == '-' && argv[i][1] &&
		    strchr(RUNNER_LETTERS "apzmstd", argv[i][1]))
			return true;
	return false;
}

static bool runner_flag(const char *arg)
{
	return strcmp(arg, "0") != 0;
}

static int runner_prot(const char *arg)
{
	return (strchr(arg, 'r') ? PROT_READ : 0) |
	       (strchr(arg, 'w') ? PROT_WRITE : 0) |
	       (strchr(arg, 'x') ? PROT_EXEC : 0);
}

/* Returns NULL, or what is wrong with option @opt. */
static const char *runner_option(int opt, const char *arg)
{
	const char *letter = strchr(RUNNER_LETTERS, opt);

	switch (opt) {
	case 'a':
		ro.prot = runner_prot(arg);
		return ro.prot ? NULL : "-a takes r, w and x";
	case 'p':
		ro.pages = atol(arg);
		return ro.pages > 0 ? NULL : "-p must be more than 0";
	case 'l':
		ro.limit = atoi(arg);
		return ro.limit > 0 ? NULL : "-l must be more than 0";
	case 's':
		ro.size_mb = atol(arg);
		return ro.size_mb > 0 ? NULL : "-s must be more than 0";
	case 't':
		if (strcmp(arg, "0") && strcmp(arg, "1"))
			return "-t takes 0 (madvise) or 1 (prctl)";
		ro.prctl = *arg == '1';
		return NULL;
	case 'z':
		ro.zero_pages = runner_flag(arg);
		return NULL;
	case 'm':
		ro.across = runner_flag(arg);
		return NULL;
	case 'd':
		ro.verbose = true;
		return NULL;
	}
	if (!letter)
		return "unknown option";
	ro.check = letter - RUNNER_LETTERS;
	return NULL;
}

static const char *runner_cannot(void)
{
	if (geteuid())
		return "needs root";
	if (access(KSM_SYSFS "run", F_OK))
		return "no KSM (CONFIG_KSM)";
	return NULL;
}

/* ksmd flat out over the pages to merge, from a clean start. */
static bool runner_setup(void)
{
	return knob_set("run", 2) && knob_set("sleep_millisecs", 0) &&
	       (!knob_exists("merge_across_nodes") ||
		knob_set("merge_across_nodes", 1)) &&
	       knob_set("pages_to_scan", ro.pages);
}

static int runner_report(enum result r)
{
	const char *title = runner_title[ro.check];

	if (r == RES_SKIP) {
		out("ok 1 %s # SKIP", title);
		return RUNNER_SKIP;
	}
	out("%sok 1 %s", r == RES_PASS ? "" : "not ", title);
	return r == RES_PASS ? 0 : 1;
}

static int runner_main(int argc, char **argv)
{
	const char *why;
	enum result r;
	int opt, kfd;

	out("TAP version 13");
	out("1..1");
	while ((opt = getopt(argc, argv, RUNNER_OPTS)) != -1) {
		if (opt == 'h') {
			runner_help(argv[0]);
			return 0;
		}
		why = runner_option(opt, optarg);
		if (why) {
			diag("%s", why);
			return runner_report(RES_FAIL);
		}
	}
	if (optind < argc) {
		diag("test names and -M..-C do not mix");
		return runner_report(RES_FAIL);
	}
	if (ro.check >= RC_MERGE_TIME && ro.check <= RC_UNMERGE_TIME && !ro.size_mb) {
		diag("-s is needed");
		return runner_report(RES_FAIL);
	}
	why = runner_cannot();
	if (why) {
		diag("%s", why);
		return runner_report(RES_SKIP);
	}
	page_size = sysconf(_SC_PAGESIZE);
	kfd = kmsg_open();
	knobs_save();
	runner_deadline = now() + ro.limit;
	r = runner_setup() ? runner_fn[ro.check]() : RES_FAIL;
	knob_set("run", 2);
	if (!knobs_restore() || !kmsg_clean(kfd) || g_failed)
		r = RES_FAIL;
	return runner_report(r);
}

static const struct ksm_test tests[] = {
	{ "merge_across_processes", test_merge_across_processes },
	{ "cow_after_merge", test_cow_after_merge },
	{ "remerge_after_cow", test_remerge_after_cow },
	{ "unmerge_paths", test_unmerge_paths },
	{ "prctl_merge", test_prctl_merge },
	{ "fork_exit_scanning", test_fork_exit_scanning },
};

/* Re-executed by prctl_merge: merge-any must survive execve(). */
static int merge_any_probe(void)
{
	return prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--merge-any-probe"))
		return merge_any_probe();
	if (argc == 2 && !strcmp(argv[1], "-h")) {
		runner_help(argv[0]);
		ksm_tests_usage(argv[0], tests, ARRAY_SIZE(tests));
		return 0;
	}
	if (runner_wanted(argc, argv))
		return runner_main(argc, argv);
	return ksm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
