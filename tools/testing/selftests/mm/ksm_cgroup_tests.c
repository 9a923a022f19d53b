// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_cgroup_tests.c - KSM and memory cgroups: merge domains.
 *
 * Worker processes join memory cgroups under /sys/fs/cgroup (cgroup2 with
 * the memory controller), map pages whose contents are a function of a seed
 * and the page number, and mark them mergeable; the test drives ksmd and
 * checks which page frames they end up sharing, through /proc/<pid>/pagemap
 * and /proc/kpagecount, not only through counters. (/proc/kpageflags is no
 * help: 6.12 reports KPF_KSM for every anonymous page.) Unrelated processes
 * that map one frame map a KSM page. Every byte of every page is verified
 * in the worker before it exits.
 *
 * Tests (default: all):
 *   across     merge_across_cgroups=1: twins in two cgroups share a frame
 *   domains    merge_across_cgroups=0: twins share a frame within a cgroup,
 *              never across; with merge_across_nodes=0 too, never across
 *              NUMA nodes either
 *   knob       EBUSY while KSM pages exist, EINVAL for bad values, and a
 *              rejected write changes nothing
 *   move       a process moved to another cgroup stops sharing with the
 *              one it left and merges within the new one
 *   fork_move  the same for a fork child, which inherits KSM pages
 *   zero       use_zero_pages maps empty pages of every cgroup to the zero
 *              page
 *   merge_now  MADV_MERGE_NOW merges a range with ksmd stopped, on the
 *              caller's CPU time, within domains; process_madvise() too
 *   merge_now_intr  a fatal signal ends a long MADV_MERGE_NOW early
 *   memory_stat  ksm_merging, ksm_zero and ksm_profit of memory.stat are
 *              exact for processes in several cgroups, a nested one, and
 *              after a move
 *   cgroup_merge_any  memory.ksm_merge_any applies merge-any to the
 *              processes of a cgroup's subtree, present, moved in later,
 *              in a child cgroup made later, and their fork children
 *   timing     the side channel: with merge_across_cgroups=0, the first
 *              write to a page whose contents another cgroup holds takes
 *              the time of a write to a private page; with 1 (the control,
 *              which shows the measurement can tell) the COW time
 *
 * Output is TAP. Usage: ksm_cgroup_tests [-n pages] [test ...]
 * Needs root, CONFIG_KSM, CONFIG_MEMCG and CONFIG_PROC_PAGE_MONITOR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE		12
#endif
#ifndef MADV_MERGE_NOW
#define MADV_MERGE_NOW		26
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open		434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise	440
#endif
#ifndef MPOL_BIND
#define MPOL_BIND		2
#endif

#define KSM_DIR		"/sys/kernel/mm/ksm/"
#define CG_ROOT		"/sys/fs/cgroup"
#define PM_PRESENT	(1ULL << 63)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define SCAN_TIMEOUT	300
#define MAX_WORKERS	8
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const char * const saved_names[] = {
	"run", "sleep_millisecs", "pages_to_scan", "use_zero_pages",
	"smart_scan", "merge_across_nodes", "merge_across_cgroups",
};

static long saved[ARRAY_SIZE(saved_names)];
static long psize;
static long npages = 256;
static int failed_checks;

/* ---- small helpers ---- */

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* One check of a test: a failure is reported and fails the test. */
static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return true;
	printf("# FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failed_checks++;
	return false;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Write @val to @path; 0 or the errno of the write. */
static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

static long read_long(const char *path)
{
	char buf[64] = "";
	long v = -1;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		v = strtol(buf, NULL, 10);
	close(fd);
	return v;
}

static int set_knob(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	return write_file(path, val);
}

static long knob(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	return read_long(path);
}

static void knobs_save(void)
{
	unsigned int k;

	for (k = 0; k < ARRAY_SIZE(saved); k++)
		saved[k] = knob(saved_names[k]);
}

/* Unmerge everything, then put the knobs back as they were, run last. */
static void knobs_restore(void)
{
	char val[32];
	int k;

	set_knob("run", "2");
	for (k = ARRAY_SIZE(saved) - 1; k >= 0; k--) {
		if (saved[k] < 0)
			continue;
		snprintf(val, sizeof(val), "%ld", saved[k]);
		set_knob(saved_names[k], val);
	}
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dc0f7ULL;
	return x ^ (x >> 33);
}

/* Page @i of seed @seed: unique per (seed, i); seed 0 is all zeroes. */
static void fill(uint64_t *w, uint64_t seed, long i)
{
	long k, words = psize / 8;

	for (k = 0; k < words; k++)
		w[k] = seed ? mix(seed * 1000003 + (uint64_t)i * words + k) : 0;
}

static uint64_t read_u64(const char *path, uint64_t index)
{
	uint64_t v = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &v, 8, index * 8) != 8)
		v = 0;
	close(fd);
	return v;
}

static uint64_t pfn_of(pid_t pid, unsigned long addr)
{
	char path[64];
	uint64_t ent;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	ent = read_u64(path, addr / psize);
	return (ent & PM_PRESENT) ? (ent & PM_PFN_MASK) : 0;
}

static uint64_t pfn_mapcount(uint64_t pfn)
{
	return read_u64("/proc/kpagecount", pfn);
}

/* ---- cgroups ---- */

static char cg_path[4][64];
static const char * const cg_names[4] = { "ksm-a", "ksm-b", "ksm-c", "ksm-d" };

static bool cgroups_setup(void)
{
	unsigned int i;

	if (access(CG_ROOT "/cgroup.subtree_control", W_OK))
		return false;
	if (write_file(CG_ROOT "/cgroup.subtree_control", "+memory"))
		return false;
	for (i = 0; i < ARRAY_SIZE(cg_path); i++) {
		snprintf(cg_path[i], sizeof(cg_path[i]), CG_ROOT "/%s",
			 cg_names[i]);
		if (mkdir(cg_path[i], 0755) && errno != EEXIST)
			return false;
	}
	return true;
}

static void cgroups_cleanup(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cg_path); i++)
		if (cg_path[i][0])
			rmdir(cg_path[i]);
}

/* Move process @pid into cgroup @cg (0 = self). */
static int cg_move(int cg, pid_t pid)
{
	char path[96], val[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_path[cg]);
	snprintf(val, sizeof(val), "%d", pid);
	return write_file(path, val);
}

/* ---- workers ---- */

/**
 * struct worker - a process holding pages
 * @pid: its pid.
 * @cmd: pipe for commands to it.
 * @resp: pipe for its answers.
 * @region: where its pages are (the same address in a fork child).
 * @seed: the seed of its pages.
 */
struct worker {
	pid_t pid;
	int cmd;
	int resp;
	char *region;
	uint64_t seed;
};

enum worker_cmd {
	CMD_VERIFY = 'v',	/* answer: pages whose contents are wrong */
	CMD_FORK = 'f',		/* answer: the pid of a fork child that sleeps */
	CMD_MERGE_NOW = 'm',	/* answer: CPU us it took, or -errno */
	/* Time the first write to every page; answer: 0, then ns per page. */
	CMD_TIME = 't',
	CMD_EXIT = 'q',
};

static struct worker workers[MAX_WORKERS];
static int nr_workers;
/* Workers leave their pages alone instead of marking them mergeable. */
static bool plain_workers;
/* Workers fill page 2i as page i of their seed, page 2i+1 uniquely. */
static bool guess_workers;

static long worker_verify(char *region, uint64_t seed)
{
	uint64_t *tmp = malloc(psize);
	long i, bad = 0;

	if (!tmp)
		return -1;
	for (i = 0; i < npages; i++) {
		if (guess_workers)
			fill(tmp, i % 2 ? seed + 1000 : seed, i / 2);
		else
			fill(tmp, seed, i);
		bad += !!memcmp(region + i * psize, tmp, psize);
	}
	free(tmp);
	return bad;
}

static long worker_fork(void)
{
	pid_t pid = fork();

	if (!pid) {
		for (;;)
			pause();
	}
	return pid;
}

static long cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static long worker_merge_now(char *region)
{
	long t = cpu_us();

	if (madvise(region, npages * psize, MADV_MERGE_NOW))
		return -errno;
	return cpu_us() - t;
}

static long ns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Time one store to each page, in order; send the times after the answer. */
static void worker_time(char *region, int resp_fd)
{
	long *ns = calloc(npages, sizeof(*ns)), i, j, t, zero = 0;
	long *order = calloc(npages, sizeof(*order));
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char *p, c;

	if (!ns || !order)
		_exit(7);
	/*
	 * In a shuffled order (fixed seed): in address order every guess
	 * would come first in its pair of pages, and a cost of being first
	 * (a cold TLB or page table line) would tell the two populations
	 * apart with no KSM involved.
	 */
	for (i = 0; i < npages; i++)
		order[i] = i;
	for (i = npages - 1; i > 0; i--) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		j = (x >> 33) % (i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (j = 0; j < npages; j++) {
		i = order[j];
		p = region + i * psize;
		t = ns_now();
		/*
		 * The same byte: contents stay, the write counts. Atomic
		 * accesses, so that the compiler keeps the store.
		 */
		c = __atomic_load_n(p, __ATOMIC_RELAXED);
		__atomic_store_n(p, c, __ATOMIC_RELAXED);
		ns[i] = ns_now() - t;
	}
	if (write(resp_fd, &zero, sizeof(zero)) != sizeof(zero) ||
	    write(resp_fd, ns, npages * sizeof(*ns)) !=
	    (ssize_t)(npages * sizeof(*ns)))
		_exit(8);
	free(order);
	free(ns);
}

static void worker_loop(int cmd_fd, int resp_fd, char *region, uint64_t seed)
{
	char cmd;
	long ans;

	while (read(cmd_fd, &cmd, 1) == 1) {
		switch (cmd) {
		case CMD_VERIFY:
			ans = worker_verify(region, seed);
			break;
		case CMD_FORK:
			ans = worker_fork();
			break;
		case CMD_MERGE_NOW:
			ans = worker_merge_now(region);
			break;
		case CMD_TIME:
			worker_time(region, resp_fd);
			continue;
		case CMD_EXIT:
			_exit(0);
		default:
			ans = -1;
		}
		if (write(resp_fd, &ans, sizeof(ans)) != sizeof(ans))
			_exit(1);
	}
	_exit(0);
}

static void worker_main(int cg, int node, uint64_t seed, int cmd_fd,
			int resp_fd)
{
	unsigned long mask = 1UL << (node < 0 ? 0 : node);
	char *region;
	long i;

	if (cg >= 0 && cg_move(cg, 0))
		_exit(2);
	if (node >= 0 && syscall(SYS_set_mempolicy, MPOL_BIND, &mask,
				 sizeof(mask) * 8))
		_exit(3);
	region = mmap(NULL, npages * psize, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		_exit(4);
	for (i = 0; i < npages; i++) {
		/* Zero pages must be real pages first, then emptied. */
		memset(region + i * psize, 0xff, psize);
		if (guess_workers)
			fill((uint64_t *)(region + i * psize),
			     i % 2 ? seed + 1000 : seed, i / 2);
		else
			fill((uint64_t *)(region + i * psize), seed, i);
	}
	if (!plain_workers && madvise(region, npages * psize, MADV_MERGEABLE))
		_exit(5);
	if (write(resp_fd, &region, sizeof(region)) != sizeof(region))
		_exit(6);
	worker_loop(cmd_fd, resp_fd, region, seed);
}

/* Start a worker in cgroup @cg (-1: stay), bound to @node (-1: any). */
static struct worker *worker_start(int cg, int node, uint64_t seed)
{
	struct worker *w = &workers[nr_workers];
	int to[2], from[2];

	if (nr_workers == MAX_WORKERS || pipe(to) || pipe(from))
		return NULL;
	w->seed = seed;
	w->pid = fork();
	if (!w->pid) {
		close(to[1]);
		close(from[0]);
		worker_main(cg, node, seed, to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	w->cmd = to[1];
	w->resp = from[0];
	if (w->pid < 0 ||
	    read(w->resp, &w->region, sizeof(w->region)) != sizeof(w->region)) {
		diag("worker %d did not start", nr_workers);
		return NULL;
	}
	nr_workers++;
	return w;
}

static long worker_ask(struct worker *w, char cmd)
{
	long ans = -1;

	if (write(w->cmd, &cmd, 1) != 1 ||
	    read(w->resp, &ans, sizeof(ans)) != sizeof(ans))
		return -1;
	return ans;
}

/* Verify every worker's bytes and end them all. */
static void workers_stop(void)
{
	int i, status;
	long bad;

	for (i = 0; i < nr_workers; i++) {
		bad = worker_ask(&workers[i], CMD_VERIFY);
		check(bad == 0, "worker %d: %ld pages with wrong contents",
		      i, bad);
		worker_ask(&workers[i], CMD_EXIT);
		close(workers[i].cmd);
		close(workers[i].resp);
		waitpid(workers[i].pid, &status, 0);
	}
	nr_workers = 0;
}

static uint64_t wpfn(struct worker *w, long i)
{
	return pfn_of(w->pid, (unsigned long)w->region + i * psize);
}

/* ---- driving ksmd ---- */

static bool ksm_reset(const char *across_cgroups, const char *across_nodes)
{
	if (set_knob("run", "2") || set_knob("run", "0"))
		return false;
	set_knob("sleep_millisecs", "0");
	set_knob("pages_to_scan", "1000");
	set_knob("smart_scan", "0");
	set_knob("use_zero_pages", "0");
	if (set_knob("merge_across_nodes", across_nodes) && *across_nodes != '1')
		return false;
	return !set_knob("merge_across_cgroups", across_cgroups);
}

/* Let ksmd run @scans full scans. */
static bool ksm_scans(long scans)
{
	long start = knob("full_scans");
	double deadline = now() + SCAN_TIMEOUT;

	set_knob("run", "1");
	while (knob("full_scans") < start + scans && now() < deadline)
		usleep(10000);
	set_knob("run", "0");
	return check(knob("full_scans") >= start + scans,
		     "ksmd did not finish %ld full scans in %d s", scans,
		     SCAN_TIMEOUT);
}

static void show_counters(void)
{
	diag("pages_shared %ld pages_sharing %ld pages_unshared %ld ksm_zero_pages %ld",
	     knob("pages_shared"), knob("pages_sharing"),
	     knob("pages_unshared"), knob("ksm_zero_pages"));
}

/*
 * How many pages of @a share their frame with the same page of @b, and
 * check /proc/kpagecount agrees that each such frame is mapped twice or
 * more.
 */
static long shared_pages(struct worker *a, struct worker *b)
{
	long i, same = 0, once = 0;
	uint64_t pa;

	for (i = 0; i < npages; i++) {
		pa = wpfn(a, i);
		if (!pa || pa != wpfn(b, i))
			continue;
		same++;
		once += pfn_mapcount(pa) < 2;
	}
	check(!once, "%ld shared frames mapped less than twice", once);
	return same;
}

/* Pages of @w whose frame is mapped exactly @count times. */
static long pages_mapped(struct worker *w, uint64_t count)
{
	long i, n = 0;

	for (i = 0; i < npages; i++)
		n += pfn_mapcount(wpfn(w, i)) == count;
	return n;
}

/* ---- the tests ---- */

/* merge_across_cgroups=1: twins in two cgroups merge, as before. */
static void test_across(void)
{
	struct worker *a, *b;
	long n;

	if (!check(ksm_reset("1", "1"), "cannot set the knobs"))
		return;
	a = worker_start(0, -1, 1);
	b = worker_start(1, -1, 1);
	if (!check(a && b, "workers"))
		return;
	ksm_scans(3);
	show_counters();
	n = shared_pages(a, b);
	check(n == npages, "%ld of %ld twins across cgroups share a frame",
	      n, npages);
	n = pages_mapped(a, 2);
	check(n == npages, "%ld of %ld frames mapped twice", n, npages);
	check(knob("pages_shared") == npages &&
	      knob("pages_sharing") == npages,
	      "pages_shared %ld pages_sharing %ld, want %ld and %ld",
	      knob("pages_shared"), knob("pages_sharing"), npages, npages);
	workers_stop();
}

/*
 * merge_across_cgroups=0: four workers of one content, two per cgroup.
 * Each pair shares a frame; the pairs never do.
 */
static void domains_check(struct worker **w, const char *what)
{
	long n;

	n = shared_pages(w[0], w[1]);
	check(n == npages, "%s: %ld of %ld twins in cgroup a share a frame",
	      what, n, npages);
	n = shared_pages(w[2], w[3]);
	check(n == npages, "%s: %ld of %ld twins in cgroup b share a frame",
	      what, n, npages);
	n = shared_pages(w[0], w[2]) + shared_pages(w[1], w[3]);
	check(n == 0, "%s: %ld frames shared across cgroups", what, n);
	n = pages_mapped(w[0], 2) + pages_mapped(w[2], 2);
	check(n == 2 * npages, "%s: %ld of %ld frames mapped exactly twice",
	      what, n, 2 * npages);
}

static void test_domains(void)
{
	struct worker *w[6];
	long n, i;

	if (!check(ksm_reset("0", "1"), "cannot set the knobs"))
		return;
	for (i = 0; i < 4; i++)
		w[i] = worker_start(i / 2, -1, 2);
	if (!check(w[0] && w[1] && w[2] && w[3], "workers"))
		return;
	ksm_scans(3);
	show_counters();
	domains_check(w, "after 3 scans");
	check(knob("pages_shared") == 2 * npages &&
	      knob("pages_sharing") == 2 * npages,
	      "pages_shared %ld pages_sharing %ld, want %ld and %ld",
	      knob("pages_shared"), knob("pages_sharing"), 2 * npages,
	      2 * npages);
	/* And it stays so. */
	ksm_scans(2);
	domains_check(w, "2 scans later");
	workers_stop();

	/* Both domains at once: cgroup and NUMA node. */
	if (knob("merge_across_nodes") < 0) {
		diag("no NUMA: node and cgroup domains not combined");
		return;
	}
	if (!check(ksm_reset("0", "0"), "cannot set both knobs to 0"))
		return;
	w[0] = worker_start(0, 0, 3);
	w[1] = worker_start(0, 0, 3);
	w[2] = worker_start(0, 1, 3);
	w[3] = worker_start(0, 1, 3);
	w[4] = worker_start(1, 0, 3);
	w[5] = worker_start(1, 0, 3);
	for (i = 0; i < 6; i++)
		if (!check(w[i] != NULL, "worker %ld (NUMA)", i))
			return;
	ksm_scans(3);
	show_counters();
	for (i = 0; i < 6; i += 2) {
		n = shared_pages(w[i], w[i + 1]);
		check(n == npages, "pair %ld (cgroup, node): %ld of %ld share",
		      i / 2, n, npages);
	}
	n = shared_pages(w[0], w[2]) + shared_pages(w[0], w[4]) +
	    shared_pages(w[2], w[4]);
	check(n == 0, "%ld frames shared across nodes or cgroups", n);
	check(knob("pages_shared") == 3 * npages,
	      "pages_shared %ld, want %ld", knob("pages_shared"), 3 * npages);
	workers_stop();
}

/* The knob: EBUSY while KSM pages exist, EINVAL for bad input. */
static void test_knob(void)
{
	static const char * const bad[] = { "2", "-1", "x", "\n", "01x", "1 1" };
	struct worker *a, *b;
	unsigned int i;
	int err;

	if (!check(ksm_reset("1", "1"), "cannot set the knobs"))
		return;
	a = worker_start(0, -1, 4);
	b = worker_start(1, -1, 4);
	if (!check(a && b, "workers"))
		return;
	ksm_scans(2);
	check(knob("pages_shared") > 0, "nothing merged");
	err = set_knob("merge_across_cgroups", "0");
	check(err == EBUSY, "write 0 with KSM pages: errno %d, want EBUSY",
	      err);
	check(knob("merge_across_cgroups") == 1, "value changed to %ld",
	      knob("merge_across_cgroups"));
	err = set_knob("merge_across_cgroups", "1");
	check(!err, "writing the value it has: errno %d", err);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		err = set_knob("merge_across_cgroups", bad[i]);
		check(err == EINVAL, "write \"%s\": errno %d, want EINVAL",
		      bad[i], err);
	}
	check(knob("merge_across_cgroups") == 1, "value changed to %ld",
	      knob("merge_across_cgroups"));
	check(shared_pages(a, b) == npages, "pages unmerged by bad writes");
	check(!set_knob("run", "2"), "run=2");
	err = set_knob("merge_across_cgroups", "0");
	check(!err, "write 0 after unmerging: errno %d", err);
	check(knob("merge_across_cgroups") == 0, "value %ld, want 0",
	      knob("merge_across_cgroups"));
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		set_knob("merge_across_cgroups", bad[i]);
	check(knob("merge_across_cgroups") == 0, "bad writes changed 0 to %ld",
	      knob("merge_across_cgroups"));
	check(!set_knob("merge_across_cgroups", "1"), "write 1 back");
	workers_stop();
}

/*
 * Move w[1] from cgroup a to b: it must stop sharing with w[0] and merge
 * with w[2], which was in b from the start. @fork: w[1] is instead a fork
 * child of w[0], which inherited its KSM pages, moved to b.
 */
static void move_test(bool fork_child)
{
	struct worker *w[3], child;
	long n, moved_ok;

	if (!check(ksm_reset("0", "1"), "cannot set the knobs"))
		return;
	w[0] = worker_start(0, -1, 5);
	w[1] = fork_child ? NULL : worker_start(0, -1, 5);
	w[2] = worker_start(1, -1, 5);
	if (!check(w[0] && w[2] && (fork_child || w[1]), "workers"))
		return;
	if (fork_child) {
		/* Twin of w[0] in a, so that w[0]'s pages are KSM pages. */
		if (!check(worker_start(0, -1, 5) != NULL, "worker"))
			return;
	}
	ksm_scans(2);
	if (fork_child) {
		child = *w[0];
		child.pid = worker_ask(w[0], CMD_FORK);
		if (!check(child.pid > 0, "fork"))
			return;
		w[1] = &child;
	}
	n = shared_pages(w[0], w[1]);
	check(n == npages, "before the move: %ld of %ld pages shared in a",
	      n, npages);
	check(!cg_move(1, w[1]->pid), "move to cgroup b");
	ksm_scans(3);
	show_counters();
	n = shared_pages(w[0], w[1]);
	check(n == 0, "after the move: %ld frames still shared with cgroup a",
	      n);
	moved_ok = shared_pages(w[1], w[2]);
	check(moved_ok == npages,
	      "after the move: %ld of %ld pages merged within cgroup b",
	      moved_ok, npages);
	if (fork_child) {
		kill(child.pid, SIGKILL);
		waitpid(child.pid, NULL, 0);
	}
	workers_stop();
}

static void test_move(void)
{
	move_test(false);
}

static void test_fork_move(void)
{
	move_test(true);
}

/* use_zero_pages: empty pages of every cgroup map the zero page. */
static void test_zero(void)
{
	struct worker *a, *b;
	uint64_t zero_pfn;
	long i, za = 0, zb = 0;
	char *probe;

	probe = mmap(NULL, psize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	if (!check(probe != MAP_FAILED, "mmap"))
		return;
	/* An atomic load is never dropped: it maps the zero page. */
	(void)__atomic_load_n(probe, __ATOMIC_RELAXED);
	zero_pfn = pfn_of(getpid(), (unsigned long)probe);
	munmap(probe, psize);
	if (!check(ksm_reset("0", "1"), "cannot set the knobs"))
		return;
	set_knob("use_zero_pages", "1");
	a = worker_start(0, -1, 0);
	b = worker_start(1, -1, 0);
	if (!check(a && b, "workers"))
		return;
	ksm_scans(2);
	show_counters();
	for (i = 0; i < npages; i++) {
		za += wpfn(a, i) == zero_pfn;
		zb += wpfn(b, i) == zero_pfn;
	}
	check(zero_pfn && za == npages && zb == npages,
	      "zero page (pfn %llu) mapped by %ld and %ld of %ld pages",
	      (unsigned long long)zero_pfn, za, zb, npages);
	check(knob("ksm_zero_pages") == 2 * npages,
	      "ksm_zero_pages %ld, want %ld", knob("ksm_zero_pages"),
	      2 * npages);
	check(knob("pages_shared") == 0, "pages_shared %ld, want 0",
	      knob("pages_shared"));
	workers_stop();
}

/* utime + stime of ksmd, in clock ticks. */
static long ksmd_ticks(void)
{
	char path[64], buf[512], *p;
	unsigned long ut, st;
	int pid;

	for (pid = 1; pid < 200; pid++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		int fd = open(path, O_RDONLY);
		ssize_t n;

		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		if (!strstr(buf, "(ksmd)"))
			continue;
		p = strrchr(buf, ')');
		if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			   &ut, &st) == 2)
			return ut + st;
	}
	return -1;
}

/*
 * MADV_MERGE_NOW with ksmd stopped: the first caller's pages wait in the
 * unstable index, the second's merge with them at once; only within a
 * domain; on the callers' CPU time, none of ksmd's.
 */
static void test_merge_now(void)
{
	struct worker *w[4], *u;
	long scans, scanned, ticks, cpu, n, i;
	struct iovec iov;
	char *probe;
	int pidfd;

	if (!check(ksm_reset("0", "1"), "cannot set the knobs"))
		return;
	for (i = 0; i < 3; i++)
		w[i] = worker_start(i == 1, -1, 6);
	u = worker_start(0, -1, 6);
	if (!check(w[0] && w[1] && w[2] && u, "workers"))
		return;
	scans = knob("full_scans");
	scanned = knob("pages_scanned");
	ticks = ksmd_ticks();
	for (i = 0; i < 3; i++) {
		cpu = worker_ask(w[i], CMD_MERGE_NOW);
		check(cpu >= 0, "worker %ld: MADV_MERGE_NOW: %s", i,
		      strerror(-cpu));
		diag("worker %ld: MADV_MERGE_NOW took %ld us of its CPU time",
		     i, cpu);
	}
	show_counters();
	n = shared_pages(w[0], w[2]);
	check(n == npages, "%ld of %ld pages merged within cgroup a", n,
	      npages);
	n = shared_pages(w[0], w[1]);
	check(n == 0, "%ld pages merged across cgroups", n);
	n = pages_mapped(w[0], 2);
	check(n == npages, "%ld of %ld frames mapped twice", n, npages);
	check(knob("pages_shared") == npages &&
	      knob("pages_sharing") == npages,
	      "pages_shared %ld pages_sharing %ld, want %ld and %ld",
	      knob("pages_shared"), knob("pages_sharing"), npages, npages);
	check(knob("full_scans") == scans && knob("pages_scanned") == scanned,
	      "ksmd counters moved: full_scans %ld -> %ld, pages_scanned %ld -> %ld",
	      scans, knob("full_scans"), scanned, knob("pages_scanned"));
	check(ticks >= 0 && ksmd_ticks() == ticks,
	      "ksmd CPU ticks %ld -> %ld while it was stopped", ticks,
	      ksmd_ticks());

	/* process_madvise(): the caller merges another process's range. */
	pidfd = syscall(SYS_pidfd_open, u->pid, 0);
	iov.iov_base = u->region;
	iov.iov_len = npages * psize;
	n = pidfd < 0 ? -1 : syscall(SYS_process_madvise, pidfd, &iov, 1,
				     MADV_MERGE_NOW, 0);
	check(n == npages * psize, "process_madvise(MADV_MERGE_NOW): %ld, %s",
	      n, strerror(errno));
	if (pidfd >= 0)
		close(pidfd);
	n = shared_pages(w[0], u);
	check(n == npages, "process_madvise: %ld of %ld pages merged", n,
	      npages);

	/* Errors: a range KSM was never told about, and run=2. */
	probe = mmap(NULL, psize, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(probe != MAP_FAILED && madvise(probe, psize, MADV_MERGE_NOW) &&
	      errno == EINVAL, "unregistered process: errno %d, want EINVAL",
	      errno);
	if (probe != MAP_FAILED)
		munmap(probe, psize);
	set_knob("run", "2");
	check(worker_ask(w[2], CMD_MERGE_NOW) == -EAGAIN,
	      "while unmerged (run=2): want EAGAIN");
	workers_stop();
}

/*
 * A fatal signal ends a long MADV_MERGE_NOW long before it would end: the
 * pages it put in the unstable index (its items stay there until ksmd,
 * stopped, frees them) are counted, and compared with the pages it had.
 */
static void test_merge_now_intr(void)
{
	long saved_npages = npages, full, done;
	struct worker *a, *b;
	double t, full_s, killed_s;
	char cmd = CMD_MERGE_NOW;
	int status;

	if (!check(ksm_reset("1", "1"), "cannot set the knobs"))
		return;
	npages = 16384;
	a = worker_start(-1, -1, 7);
	b = worker_start(-1, -1, 8);
	if (!check(a && b, "workers"))
		goto out;
	t = now();
	full = worker_ask(a, CMD_MERGE_NOW);
	full_s = now() - t;
	check(full >= 0, "MADV_MERGE_NOW: %s", strerror(-full));
	check(knob("pages_unshared") == npages,
	      "pages_unshared %ld after MADV_MERGE_NOW of %ld unique pages",
	      knob("pages_unshared"), npages);
	if (!check(write(b->cmd, &cmd, 1) == 1, "command"))
		goto out;
	usleep(full_s * 1e6 / 10);
	t = now();
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &status, 0);
	killed_s = now() - t;
	diag(
	     "%ld pages: MADV_MERGE_NOW took %.3f s; SIGKILL %.3f s into another ended it in %.3f s",
	     npages, full_s, full_s / 10, killed_s);
	check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "status 0x%x", status);
	done = knob("pages_unshared") - npages;
	diag("the killed call had looked at %ld of %ld pages", done, npages);
	check(done > 0 && done <= npages / 2,
	      "the killed call looked at %ld of %ld pages", done, npages);
	check(killed_s < full_s, "killed after %.3f s, the call takes %.3f s",
	      killed_s, full_s);
	/* Not a worker any more: leave it out of workers_stop(). */
	close(b->cmd);
	close(b->resp);
	nr_workers--;
out:
	workers_stop();
	npages = saved_npages;
}

/* The value of line @name of the memory.stat of the cgroup at @dir. */
static bool memstat(const char *dir, const char *name, long *val)
{
	char path[128], line[128];
	size_t len = strlen(name);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ' ') {
			*val = strtol(line + len + 1, NULL, 10);
			found = true;
		}
	fclose(f);
	return found;
}

/* A field of /proc/<pid>/ksm_stat. */
static long ksm_stat_of(pid_t pid, const char *name)
{
	char path[64], line[128];
	size_t len = strlen(name);
	long v = LONG_MIN;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/ksm_stat", pid);
	f = fopen(path, "r");
	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ' ')
			v = strtol(line + len + 1, NULL, 10);
	fclose(f);
	return v;
}

/* memory.stat of @dir against the model and the members' ksm_stat. */
static void memstat_check(const char *dir, long merging, long zero,
			  struct worker **members, int nr)
{
	long m = -1, z = -1, p = -1, profit = 0;
	int i;

	check(memstat(dir, "ksm_merging", &m) && memstat(dir, "ksm_zero", &z) &&
	      memstat(dir, "ksm_profit", &p), "%s: no KSM lines in memory.stat",
	      dir);
	for (i = 0; i < nr; i++)
		profit += ksm_stat_of(members[i]->pid, "ksm_process_profit");
	diag("%s: ksm_merging %ld ksm_zero %ld ksm_profit %ld", dir, m, z, p);
	check(m == merging * psize, "%s: ksm_merging %ld, want %ld", dir, m,
	      merging * psize);
	check(z == zero * psize, "%s: ksm_zero %ld, want %ld", dir, z,
	      zero * psize);
	check(p == profit, "%s: ksm_profit %ld, the processes' sum is %ld",
	      dir, p, profit);
}

/* Move @pid into the cgroup at @dir. */
static int move_to(const char *dir, pid_t pid)
{
	char path[128], val[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(val, sizeof(val), "%d", pid);
	return write_file(path, val);
}

/*
 * Cgroup a holds a/one (two twins of seed 9) and a/two (a third twin);
 * cgroup b a fourth twin and a process of empty pages (use_zero_pages).
 * merge_across_cgroups=1, so all four twins share one KSM page per page.
 * memory.stat of a counts a/one and a/two, as memory.stat does.
 */
static void test_memory_stat(void)
{
	struct worker *w[5], *m[3];
	char one[96], two[96];
	int i;

	snprintf(one, sizeof(one), "%s/one", cg_path[0]);
	snprintf(two, sizeof(two), "%s/two", cg_path[0]);
	if (!check(ksm_reset("1", "1"), "cannot set the knobs"))
		return;
	set_knob("use_zero_pages", "1");
	if (!check(!write_file(CG_ROOT "/ksm-a/cgroup.subtree_control",
			       "+memory"), "enable memory below ksm-a"))
		return;
	if (!check((!mkdir(one, 0755) || errno == EEXIST) &&
		   (!mkdir(two, 0755) || errno == EEXIST), "mkdir"))
		goto out;
	for (i = 0; i < 5; i++)
		w[i] = worker_start(i < 3 ? -1 : 1, -1, i == 4 ? 0 : 9);
	for (i = 0; i < 5; i++)
		if (!check(w[i] != NULL, "worker %d", i))
			goto out;
	check(!move_to(one, w[0]->pid) && !move_to(one, w[1]->pid) &&
	      !move_to(two, w[2]->pid), "moves into a/one and a/two");
	ksm_scans(3);
	show_counters();
	memstat_check(one, 2 * npages, 0, w, 2);
	memstat_check(two, npages, 0, &w[2], 1);
	memstat_check(cg_path[0], 3 * npages, 0, w, 3);
	memstat_check(cg_path[1], npages, npages, &w[3], 2);
	memstat_check(cg_path[2], 0, 0, NULL, 0);
	/* A move: its figures go with the process, at once. */
	check(!cg_move(1, w[1]->pid), "move to b");
	m[0] = w[0];
	m[1] = w[2];
	memstat_check(cg_path[0], 2 * npages, 0, m, 2);
	memstat_check(one, npages, 0, w, 1);
	m[0] = w[1];
	m[1] = w[3];
	m[2] = w[4];
	memstat_check(cg_path[1], 2 * npages, npages, m, 3);
out:
	workers_stop();
	rmdir(one);
	rmdir(two);
	write_file(CG_ROOT "/ksm-a/cgroup.subtree_control", "-memory");
}

/* ksm_merge_any of /proc/<pid>/ksm_stat: 1 for yes, 0 for no, else -1. */
static int merge_any_of(pid_t pid)
{
	char path[64], line[128];
	int v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/ksm_stat", pid);
	f = fopen(path, "r");
	if (!f)
		return v;
	while (fgets(line, sizeof(line), f)) {
		if (!strcmp(line, "ksm_merge_any: yes\n"))
			v = 1;
		else if (!strcmp(line, "ksm_merge_any: no\n"))
			v = 0;
	}
	fclose(f);
	return v;
}

/*
 * memory.ksm_merge_any of d, whose processes are in d/one and d/two: d/one
 * has a worker before the switch, d/two (made after it) gets one moved in
 * from c, and a fork child of the first inherits it; c (no switch) keeps a
 * twin that must stay unmerged. None of them uses madvise().
 */
static void test_cgroup_merge_any(void)
{
	char one[96], two[96], sw[96];
	struct worker *w[3];
	long child, n;
	int i;

	snprintf(one, sizeof(one), "%s/one", cg_path[3]);
	snprintf(two, sizeof(two), "%s/two", cg_path[3]);
	snprintf(sw, sizeof(sw), "%s/memory.ksm_merge_any", cg_path[3]);
	if (!check(ksm_reset("1", "1"), "cannot set the knobs"))
		return;
	if (!check(!write_file(CG_ROOT "/ksm-d/cgroup.subtree_control",
			       "+memory"), "enable memory below ksm-d"))
		return;
	if (!check(!mkdir(one, 0755) || errno == EEXIST, "mkdir"))
		goto out;
	plain_workers = true;
	for (i = 0; i < 3; i++)
		w[i] = worker_start(2, -1, 10);
	plain_workers = false;
	for (i = 0; i < 3; i++)
		if (!check(w[i] != NULL, "worker %d", i))
			goto out;
	check(!move_to(one, w[0]->pid), "move into d/one");
	check(merge_any_of(w[0]->pid) == 0,
	      "merge-any before the switch");
	check(read_long(sw) == 0, "memory.ksm_merge_any reads %ld, want 0",
	      read_long(sw));
	check(write_file(sw, "2") == EINVAL, "writing 2: want EINVAL");
	check(!write_file(sw, "1") && read_long(sw) == 1,
	      "switch on: reads %ld", read_long(sw));
	check(merge_any_of(w[0]->pid) == 1,
	      "present process: ksm_merge_any %d, want 1",
	      merge_any_of(w[0]->pid));
	child = worker_ask(w[0], CMD_FORK);
	check(child > 0 && merge_any_of(child) == 1,
	      "fork child: ksm_merge_any %d, want 1",
	      merge_any_of(child));
	/* Gone before ksmd runs: pages it shares with w[0] are not merged. */
	if (child > 0)
		kill(child, SIGKILL);
	check(!mkdir(two, 0755) || errno == EEXIST, "mkdir later");
	check(!move_to(two, w[1]->pid), "move into d/two");
	check(merge_any_of(w[1]->pid) == 1,
	      "process moved into a child cgroup made later: ksm_merge_any %d, want 1",
	      merge_any_of(w[1]->pid));
	check(merge_any_of(w[2]->pid) == 0,
	      "process outside: ksm_merge_any %d, want 0",
	      merge_any_of(w[2]->pid));
	ksm_scans(3);
	show_counters();
	n = shared_pages(w[0], w[1]);
	check(n == npages, "%ld of %ld pages of d/one and d/two merged", n,
	      npages);
	n = shared_pages(w[0], w[2]);
	check(n == 0, "%ld pages merged with the process outside", n);
	/* Off: newcomers are left alone. */
	check(!write_file(sw, "0") && read_long(sw) == 0, "switch off");
	check(!move_to(two, w[2]->pid), "move c's process into d/two");
	check(merge_any_of(w[2]->pid) == 0,
	      "moved in after the switch went off: ksm_merge_any %d, want 0",
	      merge_any_of(w[2]->pid));
out:
	workers_stop();
	rmdir(one);
	rmdir(two);
	write_file(CG_ROOT "/ksm-d/cgroup.subtree_control", "-memory");
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Kolmogorov-Smirnov distance of two samples of @n: the largest gap
 * between their distribution functions. A threshold on the time tells
 * the populations apart with accuracy 1/2 + D/2 at best.
 */
static double ks_distance(long *a, long *b, long n)
{
	long i = 0, j = 0;
	double d = 0, gap;

	qsort(a, n, sizeof(*a), cmp_long);
	qsort(b, n, sizeof(*b), cmp_long);
	while (i < n && j < n) {
		if (a[i] <= b[j])
			i++;
		else
			j++;
		gap = (double)(i - j) / n;
		if (gap < 0)
			gap = -gap;
		if (gap > d)
			d = gap;
	}
	return d;
}

/*
 * One round of the attack: the victim (cgroup a) holds n pages; the
 * attacker (cgroup b) maps 2n: page 2i a guess equal to the victim's page
 * i, page 2i+1 a private page. ksmd runs; then the attacker times its
 * first write to each page, in a shuffled order. Returns the KS distance
 * of the two populations, or -1.
 */
static double timing_round(const char *across, long *held_ksm)
{
	long n = npages, saved_npages = npages, i, *t, *g, *p;
	struct worker *victim, *attacker;
	double d = -1;

	*held_ksm = -1;
	if (!check(ksm_reset(across, "1"), "cannot set the knobs"))
		return -1;
	victim = worker_start(0, -1, 11);
	npages = 2 * n;
	guess_workers = true;
	attacker = worker_start(1, -1, 11);
	guess_workers = false;
	t = calloc(2 * n, sizeof(*t));
	g = calloc(n, sizeof(*g));
	p = calloc(n, sizeof(*p));
	if (!check(victim && attacker && t && g && p, "workers"))
		goto out;
	ksm_scans(3);
	show_counters();
	for (i = 0, *held_ksm = 0; i < n; i++)
		*held_ksm += wpfn(attacker, 2 * i) == wpfn(victim, i);
	if (!check(worker_ask(attacker, CMD_TIME) == 0 &&
		   read(attacker->resp, t, 2 * n * sizeof(*t)) ==
		   (ssize_t)(2 * n * sizeof(*t)), "timing"))
		goto out;
	for (i = 0; i < n; i++) {
		g[i] = t[2 * i];
		p[i] = t[2 * i + 1];
	}
	d = ks_distance(g, p, n);
	diag(
	     "merge_across_cgroups=%s: %ld of %ld guesses shared the victim's frame; first write: guesses median %ld ns, p90 %ld; private median %ld ns, p90 %ld; KS distance %.3f",
	     across, *held_ksm, n, g[n / 2], g[n * 9 / 10], p[n / 2],
	     p[n * 9 / 10], d);
out:
	workers_stop();
	npages = saved_npages;
	free(t);
	free(g);
	free(p);
	return d;
}

static void test_timing(void)
{
	long held;
	double d;

	/* The control: merged guesses take the COW fault. */
	d = timing_round("1", &held);
	check(held == npages, "control: %ld of %ld guesses merged", held,
	      npages);
	check(d >= 0.8,
	      "control: KS distance %.3f, want >= 0.8: the measurement cannot tell a COW fault",
	      d);
	/* Domains: a guess is a private page, and takes its time. */
	d = timing_round("0", &held);
	check(held == 0, "domains: %ld guesses share the victim's frame",
	      held);
	check(d >= 0 && d <= 0.25,
	      "domains: KS distance %.3f, want <= 0.25: the populations can be told apart",
	      d);
}

static const struct test {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "across", test_across },
	{ "domains", test_domains },
	{ "knob", test_knob },
	{ "move", test_move },
	{ "fork_move", test_fork_move },
	{ "zero", test_zero },
	{ "merge_now", test_merge_now },
	{ "merge_now_intr", test_merge_now_intr },
	{ "memory_stat", test_memory_stat },
	{ "cgroup_merge_any", test_cgroup_merge_any },
	{ "timing", test_timing },
};

static bool selected(int argc, char **argv, const char *name)
{
	int i;

	if (optind >= argc)
		return true;
	for (i = optind; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	unsigned int k, nr = 0, nr_failed = 0;
	int opt, before, i;
	double t;

	psize = sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			npages = atol(optarg);
		if (opt != 'n' || npages < 1 || npages > 65536)
			return fprintf(stderr, "usage: %s [-n pages] [test ...]\n",
				       argv[0]), 2;
	}
	for (i = optind; i < argc; i++) {
		for (k = 0; k < ARRAY_SIZE(tests); k++)
			if (!strcmp(argv[i], tests[k].name))
				break;
		if (k == ARRAY_SIZE(tests))
			return fprintf(stderr, "no test %s\n", argv[i]), 2;
	}
	for (k = 0; k < ARRAY_SIZE(tests); k++)
		nr += selected(argc, argv, tests[k].name);
	printf("TAP version 13\n1..%u\n", nr);
	if (access(KSM_DIR "merge_across_cgroups", W_OK) ||
	    !cgroups_setup()) {
		for (k = 0, i = 1; k < ARRAY_SIZE(tests); k++)
			if (selected(argc, argv, tests[k].name))
				printf(
				       "ok %d %s # SKIP no merge_across_cgroups or no cgroup2 memory controller\n",
				       i++, tests[k].name);
		return 4;
	}
	knobs_save();
	for (k = 0, i = 1; k < ARRAY_SIZE(tests); k++) {
		if (!selected(argc, argv, tests[k].name))
			continue;
		before = failed_checks;
		t = now();
		tests[k].fn();
		if (nr_workers)
			workers_stop();
		knobs_restore();
		diag("%s: %.1f s", tests[k].name, now() - t);
		printf("%s %d %s\n", failed_checks == before ? "ok" : "not ok",
		       i++, tests[k].name);
		fflush(stdout);
		nr_failed += failed_checks != before;
	}
	cgroups_cleanup();
	diag("%u of %u failed", nr_failed, nr);
	return nr_failed ? 1 : 0;
}
