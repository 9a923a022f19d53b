// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_demo: watch KSM deduplicate memory, break sharing by a write, unmerge.
 *
 * Several processes each map the same amount of anonymous memory: the first
 * half holds contents that are identical across processes (page i of every
 * process is the same, distinct from page j), the second half is unique to
 * each process. All of it is marked MADV_MERGEABLE. The demo shows ksmd's
 * progress, then checks every byte in every process after merging, after one
 * process writes a shared page (copy-on-write), and after run=2 unmerges.
 *
 * Usage: ksm_demo [--quick] [--procs N] [--mib N]
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KSM "/sys/kernel/mm/ksm/"
#define MAXP 16

static long page_size;
static int nprocs = 4;
static long mib = 16;
static int failures;

struct child {
	pid_t pid;
	int cmd;	/* parent writes commands */
	int ans;	/* child answers */
};

static struct child kids[MAXP];

static long sysfs_read(const char *name)
{
	char path[128], buf[64];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), KSM "%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

static int sysfs_write(const char *name, long v)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), KSM "%s", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ret = fprintf(f, "%ld", v) < 0;
	ret |= fclose(f) != 0;
	return ret ? -1 : 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds ksmd has used so far (utime + stime), or -1. */
static double ksmd_cpu(void)
{
	static int pid = -1;
	char path[300], buf[512];
	unsigned long ut, st;
	char *p;
	FILE *f;

	if (pid < 0) {
		DIR *d = opendir("/proc");
		struct dirent *e;

		while (d && (e = readdir(d))) {
			snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
			f = fopen(path, "r");
			if (!f)
				continue;
			if (fgets(buf, sizeof(buf), f) && !strcmp(buf, "ksmd\n"))
				pid = atoi(e->d_name);
			fclose(f);
		}
		if (d)
			closedir(d);
		if (pid < 0)
			return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p)
		return -1;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* The expected 64-bit word @w of page @pg; @owner is -1 for shared content. */
static uint64_t pattern(long pg, int owner, long w)
{
	uint64_t x = ((uint64_t)pg << 20) ^ ((uint64_t)(owner + 2) << 48) ^ (uint64_t)w;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static void fill(char *map, long pages, int me)
{
	long words = page_size / 8;

	for (long pg = 0; pg < pages; pg++) {
		uint64_t *p = (uint64_t *)(map + pg * page_size);
		int owner = pg < pages / 2 ? -1 : me;

		for (long w = 0; w < words; w++)
			p[w] = pattern(pg, owner, w);
	}
}

/* Number of bytes that differ from what this process expects. */
static long verify(char *map, long pages, int me, int cowed)
{
	long words = page_size / 8, bad = 0;

	for (long pg = 0; pg < pages; pg++) {
		uint64_t *p = (uint64_t *)(map + pg * page_size);
		int owner = pg < pages / 2 ? -1 : me;

		if (pg == 0 && cowed)
			owner = 100 + me;
		for (long w = 0; w < words; w++)
			bad += p[w] != pattern(pg, owner, w);
	}
	return bad * 8;
}

static void child_main(int me, int cmd, int ans)
{
	long pages = mib * 1024 * 1024 / page_size;
	long words = page_size / 8;
	int cowed = 0;
	char *map;
	char c;

	map = mmap(NULL, pages * page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		_exit(2);
	fill(map, pages, me);
	if (madvise(map, pages * page_size, MADV_MERGEABLE))
		_exit(3);
	c = 'r';
	if (write(ans, &c, 1) != 1)
		_exit(4);
	while (read(cmd, &c, 1) == 1) {
		long bad = 0;

		if (c == 'w') {
			uint64_t *p = (uint64_t *)map;

			for (long w = 0; w < words; w++)
				p[w] = pattern(0, 100 + me, w);
			cowed = 1;
		} else if (c == 'v') {
			bad = verify(map, pages, me, cowed);
		} else if (c == 'q') {
			break;
		}
		if (write(ans, &bad, sizeof(bad)) != sizeof(bad))
			_exit(5);
	}
	_exit(0);
}

static long ask(int i, char c)
{
	long bad = -1;

	if (write(kids[i].cmd, &c, 1) != 1 ||
	    read(kids[i].ans, &bad, sizeof(bad)) != sizeof(bad))
		return -1;
	return bad;
}

static void check(int ok, const char *what)
{
	printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
	if (!ok)
		failures++;
}

static void verify_all(const char *when)
{
	long bad = 0, pages = mib * 1024 * 1024 / page_size;
	char msg[160];

	for (int i = 0; i < nprocs; i++) {
		long b = ask(i, 'v');

		bad += b < 0 ? pages * page_size : b;
	}
	snprintf(msg, sizeof(msg), "%s: every byte of %d x %ld MiB verified, %ld bytes differ",
		 when, nprocs, mib, bad);
	check(bad == 0, msg);
}

static void show(double t0, double cpu0)
{
	long shared = sysfs_read("pages_shared");
	long sharing = sysfs_read("pages_sharing");

	printf("  %6.1fs  scanned %8ld  full_scans %3ld  shared %6ld  sharing %6ld  saved %7.1f MiB  ksmd cpu %5.2fs\n",
	       now() - t0, sysfs_read("pages_scanned"), sysfs_read("full_scans"),
	       shared, sharing, sharing * (double)page_size / (1 << 20),
	       ksmd_cpu() - cpu0);
	fflush(stdout);
}

/* Wait until pages_shared/pages_sharing reach the goal; 0 on success. */
static int wait_for(long shared, long sharing, double limit)
{
	double t0 = now(), cpu0 = ksmd_cpu(), last = 0;

	for (;;) {
		long s = sysfs_read("pages_shared"), g = sysfs_read("pages_sharing");

		if (now() - last >= 1.0 || (s == shared && g == sharing)) {
			show(t0, cpu0);
			last = now();
		}
		if (s == shared && g == sharing)
			return 0;
		if (now() - t0 > limit)
			return -1;
		usleep(100000);
	}
}

int main(int argc, char **argv)
{
	long pages, shared_pages;
	char msg[160];
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			mib = 4;
		else if (!strcmp(argv[i], "--procs") && i + 1 < argc)
			nprocs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
			mib = atol(argv[++i]);
	}
	if (nprocs < 2 || nprocs > MAXP || mib < 1) {
		fprintf(stderr, "usage: ksm_demo [--quick] [--procs 2..16] [--mib N]\n");
		return 2;
	}
	pages = mib * 1024 * 1024 / page_size;
	shared_pages = pages / 2;

	printf("== KSM demo: %d processes x %ld MiB; half identical across processes, half unique\n",
	       nprocs, mib);
	if (sysfs_read("run") < 0) {
		printf("  no /sys/kernel/mm/ksm: kernel without KSM\n");
		return 1;
	}
	sysfs_write("run", 2);
	sysfs_write("pages_to_scan", 2000);
	sysfs_write("sleep_millisecs", 10);

	for (int i = 0; i < nprocs; i++) {
		int c[2], a[2];
		char r;

		if (pipe(c) || pipe(a))
			return 1;
		kids[i].pid = fork();
		if (!kids[i].pid) {
			close(c[1]);
			close(a[0]);
			child_main(i, c[0], a[1]);
		}
		close(c[0]);
		close(a[1]);
		kids[i].cmd = c[1];
		kids[i].ans = a[0];
		if (read(kids[i].ans, &r, 1) != 1 || r != 'r') {
			printf("  child %d failed to set up\n", i);
			return 1;
		}
	}
	verify_all("before merging");

	printf("== ksmd merging (expect pages_shared %ld, pages_sharing %ld)\n",
	       shared_pages, shared_pages * (nprocs - 1));
	t0 = now();
	sysfs_write("run", 1);
	check(!wait_for(shared_pages, shared_pages * (nprocs - 1), 600),
	      "identical pages merged, unique pages left alone");
	printf("  converged in %.1f s; %.1f MiB saved\n", now() - t0,
	       shared_pages * (nprocs - 1) * (double)page_size / (1 << 20));
	verify_all("after merging");

	printf("== process 0 writes one merged page (copy-on-write)\n");
	ask(0, 'w');
	snprintf(msg, sizeof(msg), "pages_sharing dropped by one (%ld)",
		 shared_pages * (nprocs - 1) - 1);
	check(!wait_for(shared_pages, shared_pages * (nprocs - 1) - 1, 60), msg);
	verify_all("after the write");

	printf("== run=2: unmerge everything\n");
	check(sysfs_write("run", 2) == 0, "run=2 accepted");
	check(sysfs_read("pages_shared") == 0 && sysfs_read("pages_sharing") == 0,
	      "pages_shared and pages_sharing back to 0");
	verify_all("after unmerging");

	for (int i = 0; i < nprocs; i++) {
		ask(i, 'q');
		waitpid(kids[i].pid, NULL, 0);
	}
	sysfs_write("run", 0);
	printf("== summary: %s (%d check%s failed)\n", failures ? "FAILED" : "all checks passed",
	       failures, failures == 1 ? "" : "s");
	return failures ? 1 : 0;
}
