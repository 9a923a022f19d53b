// SPDX-License-Identifier: GPL-2.0
/*
 * Unmerging: copies made dirty, zero-page counts
 * across fork, exact unmerge under signals, pipes and migration, and page
 * offsets KSM cannot track, and twins whose folios a fork child shares (see
 * ksm_mm_util.h for how the checks work).
 *
 * Usage: ksm_unmerge_tests [-t seconds] [-d seconds] [-r times] [-k] [-l] [test ...]
 *   -t  time limit of each test (default 180)
 *   -k  exit with 4 (kselftest's "skipped") when every test skipped
 *   -r  run the selected tests this many times
 *   -l  list the tests
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR; tests skip (with the
 * reason) what the kernel or the machine lacks.
 */
#include "ksm_mm_util.h"
#include <stdatomic.h>

/* ---------------------------------------------------------------- unmerging */

#define UD_PAGES	64	/* pages of each range */

/*
 * These tests map their own memory in the test process (or in a process
 * of their own) instead of using workers: they need fork(), MADV_FREE and
 * exit at exact moments.
 */
static char *map_pages(long n)
{
	char *p = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fail("mmap of %ld pages: %s", n, strerror(errno));
		return NULL;
	}
	return p;
}

/* Page @i of @p gets the content named by (@tag, @i), or zeroes for tag 0. */
static void fill_tagged(char *p, long n, unsigned long long tag)
{
	long i;

	for (i = 0; i < n; i++)
		fill_page((unsigned long long *)(p + i * page_size),
			  tag ? make_seed(tag, i) : SEED_ZEROS);
}

/* How many pages of @p do not hold what fill_tagged() wrote. */
static long wrong_tagged(const char *p, long n, unsigned long long tag)
{
	long i, bad = 0;

	for (i = 0; i < n; i++)
		bad += check_page((const unsigned long long *)(p + i * page_size),
				  tag ? make_seed(tag, i) : SEED_ZEROS) >= 0;
	return bad;
}

static bool madv(void *p, long n, int advice, const char *what)
{
	if (!madvise(p, n * page_size, advice))
		return true;
	fail("%s: %s", what, strerror(errno));
	return false;
}

/* Pagemap entries of @n pages of process @pid from @p; false on error. */
static bool pagemap_of(pid_t pid, const char *p, long n, unsigned long long *ent)
{
	int fd = pagemap_fd(pid);
	ssize_t want = n * sizeof(*ent);
	bool ok;

	if (fd < 0)
		return false;
	ok = pread(fd, ent, want, (unsigned long)p / page_size * 8) == want;
	close(fd);
	return ok;
}

/*
 * Pages of [@p, @p + @n pages) of @pid mapped from a KSM page, or -1: in
 * these tests, pages whose frame is mapped more than once. (6.12's
 * /proc/kpageflags sets KPF_KSM for every anonymous page.)
 */
static long ksm_mapped(pid_t pid, const char *p, long n)
{
	unsigned long long ent[UD_PAGES * 4];
	long i, ksm = 0;

	if (n > (long)ARRAY_SIZE(ent) || !pagemap_of(pid, p, n, ent))
		return -1;
	for (i = 0; i < n; i++)
		if ((ent[i] & PM_PRESENT) && pfn_count(ent[i] & PM_PFN_MASK) > 1)
			ksm++;
	return ksm;
}

/* Waits up to @secs for pages_shared and pages_sharing; quiet on failure. */
static bool wait_shared(long shared, long sharing, int secs)
{
	double end = now() + secs;

	do {
		if (ksm_get("pages_shared") == shared && ksm_get("pages_sharing") == sharing)
			return true;
		sleep_ms(20);
	} while (now() < end);
	return false;
}

static bool merge_twins(char *a, char *b, long n, unsigned long long tag, const char *what)
{
	fill_tagged(a, n, tag);
	fill_tagged(b, n, tag);
	if (!madv(a, n, MADV_MERGEABLE, "MADV_MERGEABLE") ||
	    !madv(b, n, MADV_MERGEABLE, "MADV_MERGEABLE") || !ksmd_go())
		return false;
	if (wait_shared(n, n, 60))
		return true;
	fail("%s: pages_shared %ld pages_sharing %ld after 60 s, expected %ld %ld", what,
	     ksm_get("pages_shared"), ksm_get("pages_sharing"), n, n);
	return false;
}

/*
 * A fork child MADV_FREEs the copies that unmerging gave @a and exits; then
 * the parent, which freed nothing, pages @a out. A copy that unmerging left
 * clean was made lazily freeable by the child, and reclaim drops it.
 */
static bool free_in_child_then_pageout(char *a, unsigned long long tag, const char *how)
{
	int status;
	long lost;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return false;
	}
	if (!pid)
		_exit(madvise(a, UD_PAGES * page_size, MADV_FREE) ? 1 : 0);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fail("%s: the child's MADV_FREE failed (status %#x)", how, status);
		return false;
	}
	/* lazily freed folios wait in per-CPU batches before they move */
	lru_drain_all();
	if (!madv(a, UD_PAGES, MADV_PAGEOUT, "MADV_PAGEOUT"))
		return false;
	lost = wrong_tagged(a, UD_PAGES, tag);
	if (!expect_eq("pages lost by the parent after its unmerged copies were paged out",
		       lost, 0))
		diag("%s: the copies were clean: the child's MADV_FREE made them lazily freeable",
		     how);
	return !lost;
}

/*
 * Unmerging (MADV_UNMERGEABLE, then run=2) must give each mapping a copy
 * that is dirty: its contents exist nowhere else.
 */
static enum result test_unmerge_dirty(void)
{
	char *a = map_pages(UD_PAGES), *b = map_pages(UD_PAGES);

	if (!a || !b || !merge_twins(a, b, UD_PAGES, 11, "first merge"))
		return RES_FAIL;
	if (!madv(a, UD_PAGES, MADV_UNMERGEABLE, "MADV_UNMERGEABLE") ||
	    !madv(b, UD_PAGES, MADV_UNMERGEABLE, "MADV_UNMERGEABLE") ||
	    !expect_eq("KSM pages mapped after MADV_UNMERGEABLE",
		       ksm_mapped(getpid(), a, UD_PAGES), 0))
		return RES_FAIL;
	free_in_child_then_pageout(a, 11, "MADV_UNMERGEABLE");
	if (!merge_twins(a, b, UD_PAGES, 12, "second merge") || !ksm_set("run", 2) ||
	    !expect_eq("KSM pages mapped after run=2", ksm_mapped(getpid(), a, UD_PAGES), 0))
		return RES_FAIL;
	free_in_child_then_pageout(a, 12, "run=2");
	expect_eq("pages of the twin range lost", wrong_tagged(b, UD_PAGES, 12), 0);
	return RES_PASS;
}

/* ---------------------------------------------------------------- fork counters */

#define FC_ZERO		32	/* zero-filled pages of each range */
#define FC_DUPS		16	/* pages of each range with content common to all three */

/* The KSM counters that must read 0 once no process uses KSM. */
static const char * const fc_counters[] = {
	"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
	"ksm_zero_pages", "general_profit", "stable_node_chains", "stable_node_dups",
};

static long self_zero_pages(void)
{
	return read_key("/proc/self/ksm_stat", "ksm_zero_pages");
}

/* A child reports its own ksm_zero_pages, then exits (or first forks again). */
static long fc_child_zero_pages(bool grandchild)
{
	int fd[2], status;
	long got = -1;
	pid_t pid;

	if (pipe(fd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		long v = grandchild ? fc_child_zero_pages(false) : self_zero_pages();

		_exit(write(fd[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}
	close(fd[1]);
	if (read(fd[0], &got, sizeof(got)) != sizeof(got))
		got = -1;
	close(fd[0]);
	waitpid(pid, &status, 0);
	return got;
}

/*
 * The process that uses KSM: three ranges, one plain, one MADV_DONTFORK,
 * one MADV_WIPEONFORK, each with zero-filled pages (mapped to the zero page
 * by ksmd) and pages of one content. Its fork children get only the plain
 * range's zero pages. Exits with the number of failed checks.
 */
static void fc_process(void)
{
	static const int advice[3] = { 0, MADV_DONTFORK, MADV_WIPEONFORK };
	long n = FC_ZERO + FC_DUPS, zero;
	char *r[3];
	int i;

	for (i = 0; i < 3; i++) {
		r[i] = map_pages(n);
		if (!r[i])
			_exit(1);
		fill_tagged(r[i], FC_ZERO, 0);
		fill_tagged(r[i] + FC_ZERO * page_size, FC_DUPS, 13);
		if ((advice[i] && !madv(r[i], n, advice[i], "MADV_DONTFORK/WIPEONFORK")) ||
		    !madv(r[i], n, MADV_MERGEABLE, "MADV_MERGEABLE"))
			_exit(1);
	}
	if (!ksmd_go() || !wait_shared(FC_DUPS, 2 * FC_DUPS, 60)) {
		fail("ranges not merged: pages_shared %ld pages_sharing %ld",
		     ksm_get("pages_shared"), ksm_get("pages_sharing"));
		_exit(1);
	}
	for (i = 0; i < 600 && ksm_get("ksm_zero_pages") != 3 * FC_ZERO; i++)
		sleep_ms(100);
	expect_eq("ksm_zero_pages", ksm_get("ksm_zero_pages"), 3 * FC_ZERO);
	expect_eq("own ksm_zero_pages (ksm_stat)", self_zero_pages(), 3 * FC_ZERO);
	zero = fc_child_zero_pages(false);
	expect_eq("a child's ksm_zero_pages (it has the plain range only)", zero, FC_ZERO);
	zero = fc_child_zero_pages(true);
	expect_eq("a grandchild's ksm_zero_pages", zero, FC_ZERO);
	expect_eq("ksm_zero_pages after the children exited", ksm_get("ksm_zero_pages"),
		  3 * FC_ZERO);
	for (i = 0; i < 3; i++)
		expect_eq("wrong pages", wrong_tagged(r[i], FC_ZERO, 0) +
			  wrong_tagged(r[i] + FC_ZERO * page_size, FC_DUPS, 13), 0);
	_exit(g_failed);
}

/*
 * Every KSM counter returns to 0 once every process that used KSM exited,
 * fork children of VMAs that fork does not copy included.
 */
static enum result test_fork_counters(void)
{
	long v = 0;
	int status;
	double end;
	size_t k;
	pid_t pid;

	if (!ksm_has("ksm_zero_pages") || !ksm_set("use_zero_pages", 1))
		return RES_FAIL;
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return RES_FAIL;
	}
	if (!pid)
		fc_process();
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("the KSM process failed (status %#x)", status);
	end = now() + 60;
	for (k = 0; k < ARRAY_SIZE(fc_counters); k++) {
		/* items of exited mms go when ksmd passes them: wait for it */
		while (!read_long(ksm_path(fc_counters[k]), &v) && v && now() < end)
			sleep_ms(50);
		expect_eq(fc_counters[k], v, 0);
	}
	return RES_PASS;
}

/* ---------------------------------------------------------------- exact unmerge */

#define UE_PAGES	192	/* pages of each range */
#define UE_SPLICED	8	/* pages of range a held by a pipe */

/* Lock-free, so the signal handler may count. */
static atomic_int g_alarms;

static void on_alarm(int sig)
{
	(void)sig;
	g_alarms++;
}

/* SIGALRM every @us microseconds, without SA_RESTART; 0 stops it. */
static void alarm_storm(long us)
{
	struct itimerval it = { { 0, us }, { 0, us } };
	struct sigaction sa = { .sa_handler = on_alarm };

	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

/* Waits up to @secs for @n KSM pages mapped in each of a and b. */
static bool wait_mapped(char *a, char *b, long n, int secs)
{
	double end = now() + secs;

	do {
		if (ksm_mapped(getpid(), a, n) == n && ksm_mapped(getpid(), b, n) == n)
			return true;
		sleep_ms(50);
	} while (now() < end);
	return false;
}

/* A child that keeps migrating @n pages at @p (KSM pages it shares) between nodes. */
static pid_t migrator_start(char *p, long n)
{
	void *pages[UE_PAGES];
	int nodes[UE_PAGES], status[UE_PAGES], to = 0;
	pid_t pid;
	long i;

	pid = fork();
	if (pid)
		return pid;
	for (i = 0; i < n; i++)
		pages[i] = p + i * page_size;
	for (;;) {
		to = !to;
		for (i = 0; i < n; i++)
			nodes[i] = to;
		sys_move_pages(0, n, pages, nodes, status, MPOL_MF_MOVE_ALL);
	}
}

/*
 * Unmerges with @how (0: MADV_UNMERGEABLE of a and b, 1: PR_SET_MEMORY_MERGE
 * 0, 2: run=2) while signals interrupt it every millisecond: each attempt
 * either fails with EINTR or succeeds, and success means no KSM page is
 * mapped any more in what it covered. Returns the number of EINTRs.
 */
static long unmerge_interrupted(int how, char *a, char *b, const char **name)
{
	static const char * const names[] = {
		"MADV_UNMERGEABLE", "PR_SET_MEMORY_MERGE 0", "run=2"
	};
	double end = now() + 120;
	long eintr = 0;
	int err;

	*name = names[how];
	alarm_storm(1000);
	for (;;) {
		if (how == 0)
			err = madvise(a, UE_PAGES * page_size, MADV_UNMERGEABLE) ||
			      madvise(b, UE_PAGES * page_size, MADV_UNMERGEABLE) ? errno : 0;
		else if (how == 1)
			err = prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0) ? errno : 0;
		else
			err = write_text(KSM_DIR "run", "2");
		if (err != EINTR || now() > end)
			break;
		eintr++;
	}
	alarm_storm(0);
	if (err)
		fail("%s: %s (after %ld EINTRs)", names[how], strerror(err), eintr);
	return eintr;
}

/* After a successful unmerge: nothing KSM mapped in a and b, contents intact. */
static void check_unmerged(pid_t pid, char *a, char *b, unsigned long long tag,
			   const char *name)
{
	char what[96];

	snprintf(what, sizeof(what), "%s returned 0: KSM pages still mapped", name);
	expect_eq(what, ksm_mapped(pid, a, UE_PAGES) + ksm_mapped(pid, b, UE_PAGES), 0);
	expect_eq("wrong pages after unmerging", wrong_tagged(a, UE_PAGES, tag) +
		  wrong_tagged(b, UE_PAGES, tag), 0);
}

/* What the pipe holds is what the KSM pages held when they were spliced. */
static void check_spliced(int rd, unsigned long long tag)
{
	char *buf = map_pages(UE_SPLICED);
	long got = 0, n;

	if (!buf)
		return;
	while (got < UE_SPLICED * page_size) {
		n = read(rd, buf + got, UE_SPLICED * page_size - got);
		if (n <= 0)
			break;
		got += n;
	}
	expect_eq("bytes read back from the pipe", got, UE_SPLICED * page_size);
	expect_eq("wrong pages read back from the pipe", wrong_tagged(buf, UE_SPLICED, tag), 0);
	munmap(buf, UE_SPLICED * page_size);
}

/* One round: merge, splice, migrate, unmerge with @how under signals. */
static bool unmerge_exact_round(int how, char *a, char *b, unsigned long long tag,
				bool migrate)
{
	struct iovec iov = { a, UE_SPLICED * page_size };
	pid_t mig = 0;
	const char *name;
	long eintr;
	int pfd[2];

	/*
	 * The last round's migrator was killed with ksmd stopped: its KSM
	 * mappings stay counted until ksmd passes its mm, and would pass
	 * for the merge this round waits for.
	 */
	if (!ksmd_go() || !wait_shared(0, 0, 60)) {
		fail("round %d: pages_shared %ld pages_sharing %ld left from the last round", how,
		     ksm_get("pages_shared"), ksm_get("pages_sharing"));
		return false;
	}
	if (how == 1) {
		fill_tagged(a, UE_PAGES, tag);
		fill_tagged(b, UE_PAGES, tag);
		if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
			fail("PR_SET_MEMORY_MERGE 1: %s", strerror(errno));
			return false;
		}
		/* everything of ours is mergeable now: count what a and b map */
		if (!ksmd_go() || !wait_mapped(a, b, UE_PAGES, 60)) {
			fail("not merged after PR_SET_MEMORY_MERGE 1: %ld and %ld KSM pages",
			     ksm_mapped(getpid(), a, UE_PAGES), ksm_mapped(getpid(), b, UE_PAGES));
			return false;
		}
	} else if (!merge_twins(a, b, UE_PAGES, tag, "merging")) {
		return false;
	} else if (!wait_mapped(a, b, UE_PAGES, 60)) {
		fail("merged by the counters, yet %ld and %ld KSM pages mapped",
		     ksm_mapped(getpid(), a, UE_PAGES), ksm_mapped(getpid(), b, UE_PAGES));
		return false;
	}
	/* the pipe takes references on KSM pages (vmsplice does not unshare) */
	if (pipe(pfd) || fcntl(pfd[0], F_SETPIPE_SZ, UE_SPLICED * page_size) < 0 ||
	    vmsplice(pfd[1], &iov, 1, 0) != UE_SPLICED * page_size) {
		fail("vmsplice: %s", strerror(errno));
		return false;
	}
	expect_eq("spliced pages still KSM pages", ksm_mapped(getpid(), a, UE_SPLICED),
		  UE_SPLICED);
	/* ksmd stays out of it; the child's mappings keep the KSM pages alive */
	if (!ksm_set("run", 0))
		return false;
	if (migrate)
		mig = migrator_start(b, UE_PAGES);
	sleep_ms(200);
	eintr = unmerge_interrupted(how, a, b, &name);
	if (mig > 0) {
		if (how == 2)	/* run=2 unmerges the migrator too */
			check_unmerged(mig, a, b, tag, "run=2 (in the migrating child)");
		kill(mig, SIGKILL);
		waitpid(mig, NULL, 0);
	}
	diag("%s: %ld attempts interrupted by a signal", name, eintr);
	check_unmerged(getpid(), a, b, tag, name);
	check_spliced(pfd[0], tag);
	close(pfd[0]);
	close(pfd[1]);
	return true;
}

/*
 * MADV_UNMERGEABLE, PR_SET_MEMORY_MERGE 0 and run=2 succeed only once no
 * KSM page is mapped in what they cover, however often a signal interrupts
 * them (EINTR: the caller tries again), while some KSM pages are held by
 * a pipe (vmsplice: references that do not unshare) and a fork child keeps
 * migrating them (an unshare fault on a page under migration waits and
 * must be tried again).
 */
static enum result test_unmerge_exact(void)
{
	bool migrate = nr_memory_nodes() >= 2;
	char *a = map_pages(UE_PAGES), *b = map_pages(UE_PAGES);
	int how;

	if (!a || !b)
		return RES_FAIL;
	if (!migrate)
		diag("one NUMA node: no migrations during the unmerge");
	for (how = 0; how < 3; how++)
		if (!unmerge_exact_round(how, a, b, 20 + how, migrate))
			return RES_FAIL;
	return RES_PASS;
}

/* ---------------------------------------------------------------- merge offset */

#define MO_PAGES	8
/* KSM keeps the page offset of a merged page above its low 12 bits. */
#define MO_NR_MAX	(ULONG_MAX >> 12)

/* The file offset /proc/self/maps shows for the mapping at @p, or 0. */
static unsigned long long maps_offset(const char *p)
{
	unsigned long long start, end, off = 0;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %*s %llx", &start, &end, &off) == 3 &&
		    start == (unsigned long)p)
			break;
		off = 0;
	}
	if (f)
		fclose(f);
	return off;
}

/*
 * A MAP_PRIVATE mapping of /dev/zero is anonymous, with the page offset
 * given to mmap(): @first is the page offset of its first page. mmap()
 * keeps the last page offset below MO_NR_MAX, mremap() lets it grow past.
 * The first pages are written before: mremap() moves a mapping that has
 * no anonymous pages yet to the page offset of its new address.
 */
static char *map_dev_zero(unsigned long first, long n, long grown)
{
	int fd = open("/dev/zero", O_RDWR);
	void *p, *q;

	if (fd < 0) {
		fail("/dev/zero: %s", strerror(errno));
		return NULL;
	}
#ifdef SYS_mmap2
	p = (void *)syscall(SYS_mmap2, NULL, n * page_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE, fd, first * (page_size >> 12));
#else
	p = (void *)syscall(SYS_mmap, NULL, n * page_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE, fd, first * page_size);
#endif
	close(fd);
	if (p == MAP_FAILED) {
		fail("mmap of /dev/zero at page offset %#lx: %s", first, strerror(errno));
		return NULL;
	}
	memset(p, 1, n * page_size);
	q = mremap(p, n * page_size, grown * page_size, MREMAP_MAYMOVE);
	if (q == MAP_FAILED) {
		fail("mremap to %ld pages: %s", grown, strerror(errno));
		return NULL;
	}
	if (maps_offset(q) != (unsigned long long)first * page_size) {
		fail("/proc/self/maps shows offset %#llx, not %#llx", maps_offset(q),
		     (unsigned long long)first * page_size);
		return NULL;
	}
	return q;
}

/*
 * Moves each of the @n pages at @p to the other of nodes 0 and 1 (KSM
 * pages with all their mappings, which rmap walks must find); returns the
 * number of pages that stayed where they were, or -1.
 */
static long move_all_left(char *p, long n)
{
	void *pages[MO_PAGES];
	int nodes[MO_PAGES], status[MO_PAGES];
	long i, left = n;
	int r;

	for (i = 0; i < n; i++)
		pages[i] = p + i * page_size;
	if (sys_move_pages(0, n, pages, NULL, status, 0))
		return -1;
	for (i = 0; i < n; i++) {
		if (status[i] < 0 || status[i] > 1)
			return -1;
		nodes[i] = !status[i];
	}
	for (r = 0; r < 10 && left; r++) {
		sys_move_pages(0, n, pages, nodes, status, MPOL_MF_MOVE_ALL);
		sys_move_pages(0, n, pages, NULL, status, 0);
		for (i = 0, left = 0; i < n; i++)
			left += status[i] != nodes[i];
		if (left)
			sleep_ms(100);
	}
	return left;
}

/* Frames and nodes of the pages of both ranges, for a failure report. */
static void mo_show(const char *when, char *a, char *t)
{
	unsigned long long ea[MO_PAGES], et[MO_PAGES];
	void *pages[2 * MO_PAGES];
	int status[2 * MO_PAGES];
	long i;

	for (i = 0; i < MO_PAGES; i++) {
		pages[i] = a + i * page_size;
		pages[MO_PAGES + i] = t + i * page_size;
	}
	if (!pagemap_of(getpid(), a, MO_PAGES, ea) || !pagemap_of(getpid(), t, MO_PAGES, et) ||
	    sys_move_pages(0, 2 * MO_PAGES, pages, NULL, status, 0))
		return;
	for (i = 0; i < MO_PAGES; i++)
		diag("%s: page %ld: frames %#llx (node %d, %ld maps) and %#llx (node %d)", when,
		     i, ea[i] & PM_PFN_MASK, status[i], pfn_count(ea[i] & PM_PFN_MASK),
		     et[i] & PM_PFN_MASK, status[MO_PAGES + i]);
}

/*
 * Pages whose page offset does not fit where KSM keeps it: either KSM
 * merges them and keeps track of them (rmap walks find every mapping, so
 * migration moves them), or it leaves them alone. Pages below the limit
 * merge either way.
 */
static enum result test_merge_offset(void)
{
	unsigned long first = MO_NR_MAX - 2;
	long i, fits = 0, shared, start;
	char *a, *t;

	for (i = 0; i < MO_PAGES; i++)
		fits += first + i <= MO_NR_MAX;
	a = map_dev_zero(first, 2, MO_PAGES);
	t = map_pages(MO_PAGES);
	if (!a || !t)
		return RES_FAIL;
	diag("page offsets %#lx..%#lx, %ld of %d within %#lx", first, first + MO_PAGES - 1,
	     fits, MO_PAGES, MO_NR_MAX);
	fill_tagged(a, MO_PAGES, 30);
	fill_tagged(t, MO_PAGES, 30);
	if (!madv(a, MO_PAGES, MADV_MERGEABLE, "MADV_MERGEABLE") ||
	    !madv(t, MO_PAGES, MADV_MERGEABLE, "MADV_MERGEABLE") || !ksmd_go())
		return RES_FAIL;
	wait_shared(fits, fits, 60);
	/* the pages that may not merge have had their chance: three more scans */
	start = ksm_get("full_scans");
	for (i = 0; i < 600 && ksm_get("full_scans") < start + 3; i++)
		sleep_ms(50);
	shared = ksm_get("pages_shared");
	diag("pages_shared %ld pages_sharing %ld", shared, ksm_get("pages_sharing"));
	expect_true("pages within the limit merged, the others all or none",
		    shared == fits || shared == MO_PAGES);
	expect_eq("pages_sharing", ksm_get("pages_sharing"), shared);
	expect_eq("KSM pages mapped by the /dev/zero range", ksm_mapped(getpid(), a, MO_PAGES),
		  shared);
	if (nr_memory_nodes() >= 2 && ksm_set("run", 0)) {
		if (!expect_eq("pages of the /dev/zero range not migrated (rmap missed a mapping)",
			       move_all_left(a, MO_PAGES), 0) ||
		    !expect_eq("pages of the twin range not migrated",
			       move_all_left(t, MO_PAGES), 0))
			mo_show("migrated", a, t);
	} else {
		diag("one NUMA node: migration not tried");
	}
	expect_eq("wrong pages", wrong_tagged(a, MO_PAGES, 30) + wrong_tagged(t, MO_PAGES, 30),
		  0);
	if (!madv(a, MO_PAGES, MADV_UNMERGEABLE, "MADV_UNMERGEABLE"))
		return RES_FAIL;
	expect_eq("KSM pages left in the /dev/zero range", ksm_mapped(getpid(), a, MO_PAGES), 0);
	return RES_PASS;
}

/* ---------------------------------------------------------------- shared folios */

#define SF_PAGES	32	/* pages of each half */

/* Pages of both ranges, each of two halves, that lost their contents. */
static long sf_wrong(const char *a, const char *b)
{
	long half = SF_PAGES * page_size;

	return wrong_tagged(a, SF_PAGES, 40) + wrong_tagged(a + half, SF_PAGES, 40) +
	       wrong_tagged(b, SF_PAGES, 41) + wrong_tagged(b + half, SF_PAGES, 41);
}

/*
 * The fork child of test_shared_folio(): it made its copy of both ranges
 * unmergeable before ksmd ran, waits for a byte on @go, checks its contents
 * and exits with the number of wrong pages (at most 127).
 */
static void sf_child(char *a, char *b, int ready, int go)
{
	long bad;
	char c = 0;

	if (madvise(a, 2 * SF_PAGES * page_size, MADV_UNMERGEABLE) ||
	    madvise(b, 2 * SF_PAGES * page_size, MADV_UNMERGEABLE))
		_exit(127);
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
		_exit(127);
	bad = sf_wrong(a, b);
	_exit(bad > 126 ? 126 : bad);
}

/* Pages of @pid at @p whose frame is one the parent maps at @q: -1 on error. */
static long sf_same_frames(pid_t pid, const char *p, const char *q, long n)
{
	unsigned long long mine[2 * SF_PAGES], theirs[2 * SF_PAGES];
	long i, j, same = 0;

	if (!pagemap_of(pid, p, n, theirs) || !pagemap_of(getpid(), q, n, mine))
		return -1;
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			same += (theirs[i] & PM_PRESENT) && (mine[j] & PM_PRESENT) &&
				(theirs[i] & PM_PFN_MASK) == (mine[j] & PM_PFN_MASK);
	return same;
}

/* Frames of the parent's @n pages at @p mapped other than twice. */
static long sf_odd_counts(const char *p, long n)
{
	unsigned long long ent[2 * SF_PAGES];
	long i, odd = 0;

	if (!pagemap_of(getpid(), p, n, ent))
		return -1;
	for (i = 0; i < n; i++)
		odd += !(ent[i] & PM_PRESENT) || pfn_count(ent[i] & PM_PFN_MASK) != 2;
	return odd;
}

/*
 * Twins whose folios a fork child still maps (copy on write), in a range
 * the child made unmergeable. Range a: both halves are shared with the
 * child; range b: only the first half, the parent rewrote the second. The
 * parent's twins must merge, each KSM page mapped exactly by the two pages
 * KSM counts; the child must keep its own frames: a folio it shares may
 * not become a KSM page where it is.
 */
static enum result test_shared_folio(void)
{
	long n = 2 * SF_PAGES, same;
	int ready[2], go[2], status;
	char *a, *b, c = 0;
	pid_t pid;

	a = map_pages(n);
	b = map_pages(n);
	if (!a || !b)
		return RES_FAIL;
	fill_tagged(a, SF_PAGES, 40);
	fill_tagged(a + SF_PAGES * page_size, SF_PAGES, 40);
	fill_tagged(b, SF_PAGES, 41);
	fill_tagged(b + SF_PAGES * page_size, SF_PAGES, 41);
	if (pipe(ready) || pipe(go)) {
		fail("pipe: %s", strerror(errno));
		return RES_FAIL;
	}
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return RES_FAIL;
	}
	if (!pid)
		sf_child(a, b, ready[1], go[0]);
	if (read(ready[0], &c, 1) != 1) {
		fail("the child did not get ready");
		waitpid(pid, NULL, 0);
		return RES_FAIL;
	}
	/* the parent's own copies of b's second half, with the same contents */
	fill_tagged(b + SF_PAGES * page_size, SF_PAGES, 41);
	if (!madv(a, n, MADV_MERGEABLE, "MADV_MERGEABLE") ||
	    !madv(b, n, MADV_MERGEABLE, "MADV_MERGEABLE") || !ksmd_go())
		goto out;
	if (!wait_shared(2 * SF_PAGES, 2 * SF_PAGES, 60))
		fail("pages_shared %ld pages_sharing %ld after 60 s, expected %d %d",
		     ksm_get("pages_shared"), ksm_get("pages_sharing"), 2 * SF_PAGES,
		     2 * SF_PAGES);
	same = sf_same_frames(pid, a, a, n);
	expect_eq("child pages of range a on a frame the parent maps", same, 0);
	same = sf_same_frames(pid, b, b, n);
	expect_eq("child pages of range b on a frame the parent maps", same, 0);
	expect_eq("parent frames of range a not mapped exactly twice", sf_odd_counts(a, n), 0);
	expect_eq("parent frames of range b not mapped exactly twice", sf_odd_counts(b, n), 0);
	expect_eq("wrong pages in the parent", sf_wrong(a, b), 0);
out:
	if (write(go[1], &c, 1) != 1)
		fail("could not tell the child to finish");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		fail("the child did not exit (status %#x)", status);
	else
		expect_eq("wrong pages in the child (127: its madvise failed)",
			  WEXITSTATUS(status), 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	if (!madv(a, n, MADV_UNMERGEABLE, "MADV_UNMERGEABLE") ||
	    !madv(b, n, MADV_UNMERGEABLE, "MADV_UNMERGEABLE"))
		return RES_FAIL;
	expect_eq("wrong pages after unmerging", sf_wrong(a, b), 0);
	return RES_PASS;
}

static const struct ksm_test tests[] = {
	{ "unmerge_dirty", test_unmerge_dirty, false },
	{ "fork_counters", test_fork_counters, false },
	{ "unmerge_exact", test_unmerge_exact, false },
	{ "merge_offset", test_merge_offset, false },
	{ "shared_folio", test_shared_folio, false },
};

int main(int argc, char **argv)
{
	return mm_tests_main(tests, ARRAY_SIZE(tests), argc, argv);
}
