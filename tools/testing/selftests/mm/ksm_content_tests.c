// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_content_tests.c - KSM merges identical pages whatever they hold.
 *
 * Two processes map the same pages of several content families: pages
 * that differ from each other in a single word at positions spread over
 * the page, mostly-zero pages with a small header, pages that differ only
 * in their last bytes, and random pages. Within a process every page is
 * unique; each page has exactly one twin in the other process. Once both
 * processes have marked their memory mergeable, ksmd must merge every
 * twin pair within the first full scan that sees both: a content index
 * that tells pages apart by a sample of their words, and gives up when
 * many pages agree on it, fails here.
 *
 * Checked exactly: pages_shared and pages_sharing, each process's
 * ksm_merging_pages, that each twin pair maps one frame
 * (/proc/<pid>/pagemap), and every byte of every page in both processes.
 *
 * Output is TAP. Usage: ksm_content_tests [-n pages] [-s scans]
 *   -n: pages per family and process (default 2048)
 *   -s: full scans allowed after both processes registered (default 2)
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define KSM_DIR		"/sys/kernel/mm/ksm/"
#define PM_PRESENT	(1ULL << 63)	/* pagemap: page present */
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define TIMEOUT_SECS	600
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

enum family { FAM_SPREAD, FAM_HEADER, FAM_TAIL, FAM_RANDOM, NR_FAMILIES };

static const char * const family_name[NR_FAMILIES] = {
	"one word differs, spread over the page",
	"mostly zero, small header",
	"differ in the last bytes only",
	"random pages",
};

static const char * const saved_names[] = {
	"run", "sleep_millisecs", "pages_to_scan", "use_zero_pages",
	"smart_scan",
};

static long saved[ARRAY_SIZE(saved_names)];

static long psize;
static long npages = 2048;
static long max_scans = 2;
static int failures, test_nr;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dc0f7ULL;
	return x ^ (x >> 33);
}

/* Contents of page @i of family @f: the same in both processes. */
static void fill(uint64_t *w, enum family f, long i)
{
	long words = psize / 8, k;

	switch (f) {
	case FAM_SPREAD:
		for (k = 0; k < words; k++)
			w[k] = 0x5151515151515151ULL;
		w[(i * 37) % words] ^= (uint64_t)i + 1;
		break;
	case FAM_HEADER:
		memset(w, 0, psize);
		w[0] = 0x48454144;		/* a magic, as headers have */
		w[1] = (uint64_t)i + 1;		/* and a sequence number */
		break;
	case FAM_TAIL:
		memset(w, 0xee, psize);
		((unsigned char *)w)[psize - 1] = (unsigned char)i;
		((unsigned char *)w)[psize - 2] = (unsigned char)(i >> 8);
		break;
	case FAM_RANDOM:
		for (k = 0; k < words; k++)
			w[k] = mix((uint64_t)i * words + k + 1);
		break;
	default:
		break;
	}
}

static long check(const uint64_t *w, enum family f, long i, uint64_t *tmp)
{
	fill(tmp, f, i);
	return memcmp(w, tmp, psize) ? 1 : 0;
}

static int write_knob(const char *name, const char *val)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
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

/* Put the knobs back as they were, run last. */
static void knobs_restore(void)
{
	char val[32];
	int k;

	for (k = ARRAY_SIZE(saved) - 1; k >= 0; k--) {
		if (saved[k] < 0)
			continue;
		snprintf(val, sizeof(val), "%ld", saved[k]);
		write_knob(saved_names[k], val);
	}
}

static uint64_t pfn_of(pid_t pid, unsigned long addr)
{
	char path[64];
	uint64_t ent = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	if (pread(fd, &ent, 8, (addr / psize) * 8) != 8)
		ent = 0;
	close(fd);
	return (ent & PM_PRESENT) ? (ent & PM_PFN_MASK) : 0;
}

static void result(bool ok, const char *fmt, const char *what)
{
	test_nr++;
	if (!ok)
		failures++;
	printf("%s %d ", ok ? "ok" : "not ok", test_nr);
	printf(fmt, what);
	printf("\n");
	fflush(stdout);
}

/*
 * A child maps and fills the families, marks them mergeable, reports its
 * region through @pipe_fd and waits; on SIGUSR1 it checks every byte and
 * exits with the number of wrong pages (at most 255).
 */
/* Lock-free, so the signal handler may set it. */
static atomic_int verify_now;

static void on_usr1(int sig)
{
	(void)sig;
	verify_now = 1;
}

static void child(int pipe_fd)
{
	long total = NR_FAMILIES * npages, i, bad = 0;
	uint64_t *tmp = malloc(psize);
	char *region;

	signal(SIGUSR1, on_usr1);
	region = mmap(NULL, total * psize, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || !tmp)
		_exit(255);
	for (i = 0; i < total; i++)
		fill((uint64_t *)(region + i * psize), i / npages, i % npages);
	if (madvise(region, total * psize, MADV_MERGEABLE))
		_exit(254);
	if (write(pipe_fd, &region, sizeof(region)) != sizeof(region))
		_exit(253);
	while (!verify_now)
		pause();
	for (i = 0; i < total; i++)
		bad += check((uint64_t *)(region + i * psize), i / npages,
			     i % npages, tmp);
	_exit(bad > 250 ? 250 : bad);
}

static pid_t start_child(char **region)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child(fds[1]);
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], region, sizeof(*region)) !=
	    sizeof(*region))
		pid = -1;
	close(fds[0]);
	return pid;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long total, i, f, scans0, merged, pairs[NR_FAMILIES] = { 0 };
	char *region[2], path[64];
	pid_t pid[2];
	int opt, status, c;
	double deadline;
	bool ok;

	psize = sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			npages = atol(optarg);
		else if (opt == 's')
			max_scans = atol(optarg);
		else
			return fprintf(stderr, "usage: %s [-n pages] [-s scans]\n",
				       argv[0]), 2;
	}
	if (npages < 1 || npages > 65536 || max_scans < 1)
		return fprintf(stderr, "bad -n or -s\n"), 2;
	total = NR_FAMILIES * npages;
	printf("TAP version 13\n1..%d\n", NR_FAMILIES + 4);
	if (access(KSM_DIR "run", W_OK)) {
		printf("# no writable " KSM_DIR "run: skipping\n");
		return 4;
	}
	knobs_save();
	/* Stop, unmerge everything left, then merge flat out. */
	if (write_knob("run", "2") || write_knob("run", "0") ||
	    write_knob("sleep_millisecs", "0") ||
	    write_knob("pages_to_scan", "5000"))
		return printf("# cannot set the KSM knobs\n"), 1;
	write_knob("use_zero_pages", "0");
	write_knob("smart_scan", "0");
	write_knob("max_page_sharing", "256");
	pid[0] = start_child(&region[0]);
	pid[1] = start_child(&region[1]);
	if (pid[0] < 0 || pid[1] < 0)
		return printf("# cannot start the processes\n"), 1;

	scans0 = knob("full_scans");
	write_knob("run", "1");
	deadline = now() + TIMEOUT_SECS;
	while (knob("full_scans") < scans0 + max_scans && now() < deadline)
		usleep(20000);
	write_knob("run", "0");
	printf("# %ld full scans after both registered; ",
	       knob("full_scans") - scans0);
	printf("pages_shared %ld pages_sharing %ld pages_unshared %ld\n",
	       knob("pages_shared"),
	       knob("pages_sharing"), knob("pages_unshared"));

	for (i = 0; i < total; i++) {
		uint64_t a = pfn_of(pid[0], (unsigned long)region[0] + i * psize);
		uint64_t b = pfn_of(pid[1], (unsigned long)region[1] + i * psize);

		if (a && a == b)
			pairs[i / npages]++;
	}
	for (f = 0; f < NR_FAMILIES; f++) {
		printf("# %s: %ld of %ld twin pairs share a frame\n",
		       family_name[f], pairs[f], npages);
		result(pairs[f] == npages, "twins merged: %s", family_name[f]);
	}
	result(knob("pages_shared") == total && knob("pages_sharing") == total,
	       "%s", "pages_shared and pages_sharing count every pair once");
	ok = true;
	for (c = 0; c < 2; c++) {
		snprintf(path, sizeof(path), "/proc/%d/ksm_merging_pages",
			 pid[c]);
		merged = read_long(path);
		if (merged != total) {
			printf("# process %d: ksm_merging_pages %ld, want %ld\n",
			       c, merged, total);
			ok = false;
		}
	}
	result(ok, "%s", "each process's ksm_merging_pages");

	ok = true;
	for (c = 0; c < 2; c++) {
		kill(pid[c], SIGUSR1);
		if (waitpid(pid[c], &status, 0) != pid[c] ||
		    !WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("# process %d: %d pages wrong (status 0x%x)\n", c,
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			       status);
			ok = false;
		}
	}
	result(ok, "%s", "every byte of every page, in both processes");
	write_knob("run", "2");
	result(knob("pages_shared") == 0 && knob("pages_sharing") == 0,
	       "%s", "nothing left shared after both exited and run=2");
	knobs_restore();
	printf("# %d of %d failed\n", failures, test_nr);
	return failures ? 1 : 0;
}
