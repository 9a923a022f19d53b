// SPDX-License-Identifier: GPL-2.0
/*
 * KSM against the address-space system calls (munmap,
 * mremap, mprotect, madvise, fork, exec, mlock, userfaultfd), MADV_FREE,
 * duplicate KSM pages, fork churn and a randomised stress run that mixes
 * them all (see ksm_mm_util.h for how the checks work).
 *
 * Usage: ksm_vma_tests [-t seconds] [-d seconds] [-r times] [-k] [-l] [test ...]
 *   -d  duration of the stress test's random phase (default 60)
 *   -t  time limit of each test (default 180)
 *   -k  exit with 4 (kselftest's "skipped") when every test skipped
 *   -r  run the selected tests this many times
 *   -l  list the tests
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR; tests skip (with the
 * reason) what the kernel or the machine lacks.
 */
#include "ksm_mm_util.h"

/* ---------------------------------------------------------------- vmas */

#define AS_WORKERS	3
#define AS_PAGES	384
#define AS_COMMON	192
#define AS_DUPS		32
#define AS_FORK		3	/* spare slot of the forked child */
#define AS_EXEC		4	/* spare slot of the exec'd worker */

/* Marks in @m the pages of worker @k that the model says are merged. */
static bool merged_mask(int k, unsigned char *m)
{
	struct expect e;
	bool merged;
	int a, b, j;

	memset(m, 0, MAX_PAGES);
	if (!model_build(&e, &merged))
		return false;
	qsort(g_mp, g_nmp, sizeof(g_mp[0]), mp_by_content);
	for (a = 0; a < g_nmp; a = b) {
		for (b = a + 1; b < g_nmp && g_mp[b].seed == g_mp[a].seed &&
		     g_mp[b].node == g_mp[a].node; b++)
			;
		for (j = a; j < b && b - a > 1; j++)
			if (g_mp[j].slot == k)
				m[g_mp[j].idx] = 1;
	}
	return true;
}

static bool step(const char *what)
{
	return verify_all(what) && settle(what);
}

static bool as_munmap_mremap(void)
{
	long i;

	if (!wdo(1, OP_MUNMAP, 32, 64, 0, 0, "munmap") || !step("munmap of merged pages"))
		return false;
	if (!wdo(2, OP_MREMAP, 64, 128, 0, 0, "mremap") || !step("mremap (move) of merged pages"))
		return false;
	/* grow worker 0 by 32 pages; they get worker 1's unique content */
	if (!wdo(0, OP_MREMAP, 0, AS_PAGES, 32, 0, "mremap (grow)"))
		return false;
	for (i = 0; i < 32; i++)
		g_slot[0].shm->seed[AS_PAGES + i] = g_slot[1].shm->seed[300 + i];
	expect_true("grown pages are mergeable",
		    g_slot[0].shm->flags[AS_PAGES] & PF_MERGEABLE);
	return wdo(0, OP_FILL, AS_PAGES, AS_PAGES + 32, 0, 0, "fill") &&
	       step("mremap (grow), new pages alike worker 1's");
}

static bool as_mprotect(void)
{
	return wdo(0, OP_MPROTECT, 128, 160, PROT_READ, 0, "mprotect") &&
	       step("PROT_READ on merged pages") &&
	       wdo(0, OP_MPROTECT, 128, 160, PROT_NONE, 0, "mprotect") &&
	       step("PROT_NONE on merged pages") &&
	       wdo(0, OP_MPROTECT, 128, 160, PROT_READ | PROT_WRITE, 0, "mprotect") &&
	       step("PROT_READ|PROT_WRITE again") &&
	       rewrite(0, 128, 132) && step("written after mprotect");
}

static bool as_madvise(void)
{
	unsigned char merged[MAX_PAGES];
	long i, kept = 0, zero = 0;

	if (!wdo(2, OP_MADVISE, 160, 176, MADV_DONTNEED, 0, "MADV_DONTNEED") ||
	    !step("MADV_DONTNEED on merged pages"))
		return false;
	std_seeds(2, 0, AS_PAGES, AS_COMMON, AS_DUPS);
	if (!wdo(2, OP_FILL, 160, 176, 0, 0, "fill") || !step("written again"))
		return false;
	/* MADV_FREE: KSM pages mapped thrice stay, lazily freed ones may go */
	lru_drain_all();
	if (!wdo(1, OP_MADVISE, 176, 192, MADV_FREE, 0, "MADV_FREE") ||
	    !wdo(1, OP_MADVISE, 340, 356, MADV_FREE, 0, "MADV_FREE") ||
	    !wdo(1, OP_MADVISE, 340, 356, MADV_PAGEOUT, 0, "MADV_PAGEOUT") ||
	    !verify_all("MADV_FREE"))
		return false;
	for (i = 0; i < 16; i++) {
		kept += g_slot[1].shm->seed[176 + i] != SEED_NONE;
		zero += g_slot[1].shm->seed[340 + i] == SEED_NONE;
	}
	diag("MADV_FREE + MADV_PAGEOUT: %ld of 16 unique pages dropped", zero);
	expect_eq("MADV_FREE'd KSM pages (mapped thrice) kept", kept, 16);
	if (!settle("MADV_FREE") || !rewrite(1, 340, 356) || !step("written after MADV_FREE"))
		return false;
	if (!wdo(0, OP_MADVISE, 0, slot_npages(0), MADV_COLD, 0, "MADV_COLD") ||
	    !step("MADV_COLD"))
		return false;
	if (!merged_mask(2, merged))
		return false;
	lru_drain_all();
	if (!wdo(2, OP_MADVISE, 0, AS_PAGES, MADV_PAGEOUT, 0, "MADV_PAGEOUT") ||
	    count_pm(2, 0, AS_PAGES, 0) < 0)
		return false;
	for (i = 0, kept = 0, zero = 0; i < AS_PAGES; i++) {
		if (!merged[i])
			continue;
		zero++;
		kept += !(g_pm[2][i] & PM_SWAP);
	}
	expect_eq("merged pages left in place by MADV_PAGEOUT", kept, zero);
	return step("MADV_PAGEOUT");
}

/*
 * fork: the child maps every KSM page too; once ksmd has scanned it,
 * pages_sharing counts its mappings.  Its writes copy; its exit undoes it.
 */
static bool as_fork(void)
{
	struct pstat parent, child;
	struct vmev a, b;
	long pid, i, st;

	if (read_pid_stat(g_slot[0].shm->pid, &parent))
		return false;
	pid = wcall(0, OP_FORK, AS_FORK, 0, 0, 0);
	if (pid <= 0) {
		fail("fork: %s", strerror(-pid));
		return false;
	}
	g_slot[AS_FORK].used = true;
	g_slot[AS_FORK].in_model = false;
	g_opt.loose_frames = true;
	g_opt.extra_sharing = parent.merging;
	if (!step("forked child scanned") || read_pid_stat(pid, &child))
		return false;
	expect_eq("child's ksm_merging_pages", child.merging, parent.merging);
	vmev_read(&a);
	for (i = 0; i < 8; i++)
		g_slot[AS_FORK].shm->seed[i] = fresh_seed();
	if (!wdo(AS_FORK, OP_FILL, 0, 8, 0, 0, "child writes"))
		return false;
	vmev_read(&b);
	if (a.cow_ksm >= 0)
		expect_eq("cow_ksm after the child wrote 8 KSM pages", b.cow_ksm - a.cow_ksm, 8);
	g_opt.extra_sharing -= 8;
	if (!step("child wrote 8 merged pages") || read_pid_stat(pid, &child))
		return false;
	expect_eq("child's ksm_merging_pages after its writes", child.merging,
		  parent.merging - 8);
	wdo(AS_FORK, OP_EXIT, 0, 0, 0, 0, "exit");
	st = wcall(0, OP_REAP, 10000, 0, 0, 0);
	expect_eq("child's exit status", st, 0);
	g_slot[AS_FORK].used = false;
	g_opt.loose_frames = false;
	g_opt.extra_sharing = 0;
	return step("child exited");
}

/* fork + exec: the exec'd program maps content alike and merges with us. */
static bool as_exec(void)
{
	struct slot_shm *s = g_slot[AS_EXEC].shm;
	long pid, i, st;

	pid = wcall(1, OP_FORK_EXEC, AS_EXEC, 2, 0, 0);
	if (pid <= 0) {
		fail("fork: %s", strerror(-pid));
		return false;
	}
	g_slot[AS_EXEC].used = true;
	g_slot[AS_EXEC].in_model = true;
	if (!wdo(AS_EXEC, OP_STAT, 0, 0, 0, 0, "exec'd worker answers"))
		return false;
	expect_eq("exec'd worker's ksm_merging_pages", s->res[0], 0);
	if (wcall(AS_EXEC, OP_MAP, 64, 0, -1, 0) != 0)
		return false;
	for (i = 0; i < 64; i++)
		s->seed[i] = make_seed(1, 128 + i);
	if (!wdo(AS_EXEC, OP_FILL, 0, 64, 0, 0, "fill") ||
	    !wdo(AS_EXEC, OP_MADVISE, 0, 64, MADV_MERGEABLE, 0, "MADV_MERGEABLE") ||
	    !step("exec'd worker merged"))
		return false;
	wdo(AS_EXEC, OP_EXIT, 0, 0, 0, 0, "exit");
	st = wcall(1, OP_REAP, 10000, 0, 0, 0);
	expect_eq("exec'd worker's exit status", st, 0);
	g_slot[AS_EXEC].used = false;
	return step("exec'd worker exited");
}

static bool as_mlock(void)
{
	return wdo(2, OP_MLOCK, 0, AS_PAGES, 1, 0, "mlock") && step("mlock") &&
	       wdo(2, OP_MLOCK, 0, AS_PAGES, 0, 0, "munlock") && step("munlock");
}

/* Write-protect merged pages with userfaultfd: each write is reported. */
static bool as_uffd(void)
{
	struct slot_shm *s = g_slot[0].shm;
	long r = wcall(0, OP_UFFD_REG, 0, 32, 0, 0);

	if (r == -EINVAL || r == -EOPNOTSUPP || r == -EPERM) {
		diag("userfaultfd write-protect not available (%s): that step skipped",
		     strerror(-r));
		return true;
	}
	if (r) {
		fail("UFFDIO_REGISTER_MODE_WP: %s", strerror(-r));
		return false;
	}
	if (!wdo(0, OP_UFFD_WP, 0, 32, 1, 0, "UFFDIO_WRITEPROTECT") ||
	    !step("merged pages write-protected"))
		return false;
	for (r = 0; r < 4; r++)
		s->seed[r] = fresh_seed();
	if (!wdo(0, OP_UFFD_WRITE, 0, 4, 0, 0, "writing protected pages"))
		return false;
	expect_eq("write-protect faults for 4 written pages", s->res[1], 4);
	return step("write-protected pages written");
}

static enum result test_address_space(void)
{
	struct std_opts o = {
		.workers = AS_WORKERS, .spare = 2, .pages = AS_PAGES,
		.common = AS_COMMON, .dups = AS_DUPS,
	};

	if (!std_start(&o) || !as_munmap_mremap() || !as_mprotect() ||
	    !as_madvise() || !as_fork() || !as_exec() || !as_mlock() ||
	    !as_uffd() || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

/*
 * userfaultfd write-protected pages that KSM merges afterwards must stay
 * write-protected: a write must still reach the handler.
 */
static enum result test_uffd_wp_merge(void)
{
	struct std_opts o = { .workers = 3, .pages = 128, .common = 64 };
	struct slot_shm *s;
	long r, i;
	int k;

	if (!std_start(&o))
		return RES_FAIL;
	for (k = 0; k < 3; k++) {
		s = g_slot[k].shm;
		for (i = 64; i < 80; i++)
			s->seed[i] = make_seed(9, i);
		if (k == 0 && !wdo(k, OP_MADVISE, 64, 80, MADV_UNMERGEABLE, 0, "MADV_UNMERGEABLE"))
			return RES_FAIL;
		if (!wdo(k, OP_FILL, 64, 80, 0, 0, "fill"))
			return RES_FAIL;
	}
	if (!step("pages of workers 1 and 2 merged"))
		return RES_FAIL;
	r = wcall(0, OP_UFFD_REG, 0, 128, 0, 0);
	if (r == -EINVAL || r == -EOPNOTSUPP || r == -EPERM) {
		skip("userfaultfd write-protect not available: %s", strerror(-r));
		return RES_SKIP;
	}
	if (r || !wdo(0, OP_UFFD_WP, 64, 80, 1, 0, "UFFDIO_WRITEPROTECT") ||
	    !wdo(0, OP_MADVISE, 64, 80, MADV_MERGEABLE, 0, "MADV_MERGEABLE") ||
	    !step("write-protected pages merged"))
		return RES_FAIL;
	s = g_slot[0].shm;
	for (i = 64; i < 80; i++)
		s->seed[i] = fresh_seed();
	if (!wdo(0, OP_UFFD_WRITE, 64, 80, 0, 0, "writing protected pages"))
		return RES_FAIL;
	if (!expect_eq("write-protect faults for 16 written pages KSM merged", s->res[1], 16))
		diag("KSM merged write-protected pages, dropping the protection: %ld writes unseen",
		     16 - s->res[1]);
	if (!step("written"))
		return RES_FAIL;
	return RES_PASS;
}

/*
 * MADV_FREE on a KSM page mapped once makes it clean and lazily freeable.
 * Another process that merges into it afterwards did not free anything:
 * reclaim must not drop its data.
 */
static enum result test_lazyfree_merge(void)
{
	struct std_opts o = { .workers = 2, .pages = 64, .common = 32, .cgroup = true };
	long i, kept = 0;
	int bad;

	if (!cg_create())
		return RES_SKIP;
	if (!std_start(&o))
		return RES_FAIL;
	if (!wdo(1, OP_MADVISE, 0, 32, MADV_DONTNEED, 0, "MADV_DONTNEED"))
		return RES_FAIL;
	mark_lone(0, 0, 32);
	if (!settle("worker 0's KSM pages mapped once") ||
	    !wdo(0, OP_MADVISE, 0, 32, MADV_FREE, 0, "MADV_FREE"))
		return RES_FAIL;
	std_seeds(1, 0, 64, 32, 0);
	if (!wdo(1, OP_FILL, 0, 32, 0, 0, "fill") ||
	    !settle("worker 1 merged with the lazily freed KSM pages"))
		return RES_FAIL;
	if (!cg_reclaim())
		return RES_FAIL;
	bad = wcall(1, OP_VERIFY, 0, 64, 0, 0);
	if (!expect_eq("pages of worker 1 (which freed nothing) lost by reclaim", bad, 0))
		diag("worker 1's pages were merged into KSM pages worker 0 had MADV_FREE'd");
	wcall(0, OP_VERIFY, 0, 64, 0, 0);
	for (i = 0; i < 32; i++)
		kept += g_slot[0].shm->seed[i] != SEED_NONE;
	diag("worker 0 kept %ld of its 32 MADV_FREE'd pages", kept);
	return step("after reclaim") ? RES_PASS : RES_FAIL;
}

/*
 * ksmd must finish full scans while processes fork and exit all the time:
 * a scan that also takes in the mms created during it may never end.
 */
/* Waits up to @secs for pages_shared, pages_sharing and the chain counts. */
static bool wait_counts(long shared, long sharing, long chains, long dups, int secs)
{
	double end = now() + secs;

	if (!ksmd_go())
		return false;
	do {
		if (ksm_get("pages_shared") == shared && ksm_get("pages_sharing") == sharing &&
		    ksm_get("stable_node_chains") == chains &&
		    ksm_get("stable_node_dups") == dups)
			return true;
		sleep_ms(20);
	} while (now() < end);
	fail(
	     "after %d s: pages_shared %ld pages_sharing %ld stable_node_chains %ld stable_node_dups %ld, expected %ld %ld %ld %ld",
	     secs, ksm_get("pages_shared"), ksm_get("pages_sharing"),
	     ksm_get("stable_node_chains"), ksm_get("stable_node_dups"),
	     shared, sharing, chains, dups);
	return false;
}

#define DR_PAGES	4

/*
 * Duplicate KSM pages of one content come together again once they fit in
 * one: with max_page_sharing=2, four identical pages make two KSM pages of
 * one chain. A write to one mapping of each leaves each with a single
 * mapping; ksmd must then move one to the other, which frees a KSM page
 * and ends the chain. (A lookup that cannot pin a KSM page for a moment,
 * under reclaim or migration, makes such duplicates too.)
 */
static enum result test_dup_regroup(void)
{
	unsigned long long pfn[DR_PAGES], left[2] = { 0, 0 };
	long i, n, x = -1, y = -1;

	if (!ksm_has("stable_node_chains") || !ksm_set("max_page_sharing", 2))
		return RES_FAIL;
	if (!workers_start(1, 0))
		return RES_FAIL;
	if (wcall(0, OP_MAP, DR_PAGES, 0, -1, 0) != 0) {
		fail("cannot map %d pages", DR_PAGES);
		return RES_FAIL;
	}
	for (i = 0; i < DR_PAGES; i++)
		g_slot[0].shm->seed[i] = make_seed(9, 1);
	if (!wdo(0, OP_FILL, 0, DR_PAGES, 0, 0, "fill") ||
	    !wdo(0, OP_MADVISE, 0, DR_PAGES, MADV_MERGEABLE, 0, "MADV_MERGEABLE") ||
	    !wait_counts(2, 2, 1, 2, 60))
		return RES_FAIL;
	for (i = 0; i < DR_PAGES; i++) {
		pfn[i] = page_pfn(0, i);
		if (x < 0)
			x = i;
		else if (pfn[i] != pfn[x] && y < 0)
			y = i;
	}
	diag("two KSM pages of one content: frames %#llx and %#llx", pfn[x], pfn[y]);
	if (y < 0) {
		fail("the four pages are not on two frames");
		return RES_FAIL;
	}
	if (!rewrite(0, x, x + 1) || !rewrite(0, y, y + 1) ||
	    !wait_counts(1, 1, 0, 0, 60) || !verify_all("after the chain ended"))
		return RES_FAIL;
	/* the two pages not written: one frame, KSM's */
	for (i = 0, n = 0; i < DR_PAGES; i++)
		if (i != x && i != y)
			left[n++] = page_pfn(0, i);
	expect_true("the two unwritten pages share one frame", left[0] && left[0] == left[1]);
	return RES_PASS;
}

static enum result test_fork_churn(void)
{
	struct std_opts o = { .workers = 4, .pages = 256, .common = 128, .dups = 32 };
	double t0, end;
	long start, scans, bad = 0, forks = 0, r;
	int k;

	if (!std_start(&o))
		return RES_FAIL;
	t0 = now();
	end = t0 + 30;
	start = ksm_get("full_scans");
	for (k = 0; k < 4; k++)
		wsend(k, OP_CHURN, (long)(end * 1000), 0, 0, 0);
	while (now() < end) {
		sleep_ms(5000);
		diag("%4.0f s: full_scans +%ld, pages_shared %ld pages_sharing %ld", now() - t0,
		     ksm_get("full_scans") - start, ksm_get("pages_shared"),
		     ksm_get("pages_sharing"));
	}
	scans = ksm_get("full_scans") - start;
	for (k = 0; k < 4; k++) {
		r = wrecv(k, now() + OP_TIMEOUT);
		bad += r ? (r < 0 ? 1 : r) : 0;
		forks += g_slot[k].shm->res[0];
	}
	diag("%ld children in 30 s; %ld full scans meanwhile", forks, scans);
	expect_eq("children that found wrong content", bad, 0);
	expect_true("ksmd completed full scans while processes forked and exited", scans >= 3);
	if (!settle("after the churn") || !verify_all("after the churn"))
		return RES_FAIL;
	return RES_PASS;
}

/* ---------------------------------------------------------------- stress */

#define ST_WORKERS	8

static void stress_progress(double t0)
{
	long swap = g_clean->cg[0] ? cg_long("memory.swap.current") : -1;

	diag("%4.0f s: full_scans %ld pages_shared %ld pages_sharing %ld swap %ld kB",
	     now() - t0, ksm_get("full_scans"), ksm_get("pages_shared"),
	     ksm_get("pages_sharing"), swap >= 0 ? swap / 1024 : -1);
}

/* Runs OP_STRESS in every worker and collects the results. */
static long stress_run(double t0, double end)
{
	bool done[ST_WORKERS] = { false };
	struct pollfd pfd;
	long bad = 0, r;
	double next = t0 + 10;
	int k, left = ST_WORKERS;

	for (k = 0; k < ST_WORKERS; k++)
		wsend(k, OP_STRESS, (long)(end * 1000), nr_memory_nodes(), 0, 0);
	while (left && now() < end + 240 && now() < g_deadline) {
		for (k = 0; k < ST_WORKERS; k++) {
			if (done[k])
				continue;
			pfd = (struct pollfd) { .fd = g_slot[k].rep_rd, .events = POLLIN };
			if (poll(&pfd, 1, 0) <= 0)
				continue;
			r = wrecv(k, now() + 1);
			bad += r ? (r < 0 ? 1 : r) : 0;
			done[k] = true;
			left--;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (now() > next) {
			stress_progress(t0);
			next += 10;
		}
		sleep_ms(50);
	}
	if (left)
		fail("%d stress workers did not finish", left);
	return bad;
}

static void stress_report(void)
{
	struct stress_stats sum = { 0 };
	long verified = 0, total = 0;
	char line[512];
	int k, j, n = 0;

	for (k = 0; k < ST_WORKERS; k++) {
		struct stress_stats *st = &g_slot[k].shm->st;

		for (j = 0; j < NR_ST_OPS; j++)
			sum.ops[j] += st->ops[j];
		sum.children += st->children;
		sum.child_fail += st->child_fail;
		sum.moved += st->moved;
		sum.move_err += st->move_err;
		sum.handovers += st->handovers;
		verified += g_slot[k].shm->verified;
	}
	for (j = 0; j < NR_ST_OPS; j++) {
		n += snprintf(line + n, sizeof(line) - n, " %s %ld", stress_names[j], sum.ops[j]);
		total += sum.ops[j];
	}
	diag("operations: %ld:%s", total, line);
	diag("children %ld (failed %ld), handovers %ld, pages moved %ld (not moved %ld)",
	     sum.children, sum.child_fail, sum.handovers, sum.moved, sum.move_err);
	diag("pages verified: %ld", verified);
	expect_eq("children that found wrong content", sum.child_fail, 0);
}

/* Processes in our process group other than us (workers, their children). */
static int pgrp_others(void)
{
	char path[64], buf[512], *p;
	int n = 0, pid, pgrp;
	struct dirent *d;
	DIR *dir = opendir("/proc");

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		pid = atoi(d->d_name);
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_text(path, buf, sizeof(buf)) <= 0)
			continue;
		p = strrchr(buf, ')');
		if (p && sscanf(p + 2, "%*c %*d %d", &pgrp) == 1 && pgrp == getpgrp())
			n++;
	}
	closedir(dir);
	return n;
}

/* Waits until only the workers are left of the stress run's processes. */
static void stress_wait_children(void)
{
	double until = now() + 60;
	int n;

	while ((n = pgrp_others()) > ST_WORKERS && now() < until) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		sleep_ms(100);
	}
	expect_eq("processes left besides the workers", n - ST_WORKERS, 0);
}

static enum result test_stress(void)
{
	double t0 = now(), end = t0 + g_duration;
	long bad, total = 0, scans;
	struct got g;
	int k;

	if (!workers_start(ST_WORKERS, 0))
		return RES_FAIL;
	if (have_swap() && cg_create()) {
		for (k = 0; k < ST_WORKERS; k++)
			if (!cg_join(k))
				return RES_FAIL;
		cg_write("memory.high", "14M");
		diag("workers in %s with memory.high=14M", g_clean->cg);
	} else {
		diag("no memcg or no swap: %s; MADV_PAGEOUT only", g_skip_reason);
		g_skip_reason[0] = '\0';
	}
	if (!ksmd_go())
		return RES_FAIL;
	diag("stress: %d workers for %d s", ST_WORKERS, g_duration);
	scans = ksm_get("full_scans");
	bad = stress_run(t0, end);
	scans = ksm_get("full_scans") - scans;
	diag("ksmd finished %ld full scans during the stress phase", scans);
	expect_true("ksmd finished full scans while the workers forked and exited", scans > 0);
	expect_eq("wrong pages seen by the stress workers", bad, 0);
	stress_report();
	if (g_clean->cg[0])
		cg_write("memory.high", "max");
	stress_wait_children();
	if (!verify_all("after the stress phase"))
		return RES_FAIL;
	/* with ksmd stopped, the processes' counts add up to the totals */
	ksm_set("run", 0);
	if (read_got(&g)) {
		for (k = 0; k < ST_WORKERS; k++)
			total += g.ps[k].merging;
		expect_eq("sum of ksm_merging_pages vs pages_shared + pages_sharing",
			  total, g.shared + g.sharing);
	}
	if (!ksm_unmerge_all() || !verify_all("after run=2") ||
	    !settle("merged again from scratch") || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

static const struct ksm_test tests[] = {
	{ "address_space", test_address_space, false },
	{ "uffd_wp_merge", test_uffd_wp_merge, false },
	{ "lazyfree_merge", test_lazyfree_merge, false },
	{ "fork_churn", test_fork_churn, false },
	{ "dup_regroup", test_dup_regroup, false },
	{ "stress", test_stress, true },
};

int main(int argc, char **argv)
{
	return mm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
