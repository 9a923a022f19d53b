// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_tests.c - strict userspace tests of Kernel Samepage Merging.
 *
 * Every test sets up anonymous memory in helper processes ("workers"),
 * lets ksmd run until an expected state is reached (or a deadline passes),
 * stops ksmd so that the counters are stable, and then compares the
 * counters in /sys/kernel/mm/ksm and /proc/<pid>/ksm_* exactly with a
 * model of what must be merged: every page has a content key, and pages of
 * equal key (and node, without merge_across_nodes) share one KSM page.
 *
 * The model is cross-checked page by page: through /proc/<pid>/pagemap and
 * /proc/kpagecount, pages of one KSM page share one frame mapped once per
 * page, and no other page shares its frame; at the end of most tests a
 * write to every page shows which pages were KSM pages (they are copied on
 * write, private pages are not).  Every byte of every page is verified in
 * the process that owns it, and the kernel log must stay free of warnings.
 *
 * Output is TAP, diagnostics are "# " lines.  Each test runs in its own
 * process group with a time limit; KSM knobs and the sysctls the tests
 * change are restored after each test and at exit.
 *
 * Usage: ksm_tests [-t seconds] [-l] [test-name ...]
 * Run by name, ksm_stat_flags fails on a kernel without the ksm_stat lines
 * it checks instead of skipping.
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/mempolicy.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#define MADV_UNMERGEABLE 13
#endif

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define BIT_ULL(n)	(1ULL << (n))

#define KSM_SYSFS	"/sys/kernel/mm/ksm/"
#define MAX_WORKERS	8
#define MAX_PAGES	1024
#define SCAN_BATCH	5000
#define DEFAULT_TIMEOUT	120
/* ksm_settle() gives up when the counters stay put this long. */
#define SETTLE_STUCK_SCANS	200
#define SETTLE_STUCK_SECONDS	15

/* kpageflags bits (include/uapi/linux/kernel-page-flags.h) */
#define KPF_BIT_KSM	21
#define KPF_BIT_ZERO	24

#define PM_PRESENT	BIT_ULL(63)
#define PM_PFN_MASK	((1ULL << 55) - 1)

/* Page keys: 0 is a zero-filled page, KEY_ABSENT a page that is not mapped */
#define KEY_ZERO	0ULL
#define KEY_ABSENT	(~0ULL)
/*
 * A near twin of page @base: the same bytes except one word in the second
 * half of the page, chosen by @n.  Such pages must never be merged.
 */
#define KEY_TWIN_BIT	BIT_ULL(62)
#define KEY_TWIN(base, n)	(KEY_TWIN_BIT | (unsigned long long)(n) << 40 | (base))
#define TWIN_BASE(key)	((key) & ((1ULL << 40) - 1))
#define TWIN_N(key)	(((key) >> 40) & 0xfffff)

enum result { RES_PASS, RES_FAIL, RES_SKIP };

struct mm_ksm_stat {
	long rmap_items;
	long zero_pages;
	long merging_pages;
	long profit;
	int merge_any;		/* -1 when the kernel does not report it */
	int mergeable;		/* -1 when the kernel does not report it */
	long merging_file;	/* /proc/self/ksm_merging_pages */
};

/* Shared between the test process and one worker. */
struct worker_shm {
	unsigned long long key[MAX_PAGES];
	signed char node[MAX_PAGES];	/* bound node, -1 when not bound */
	signed char where[MAX_PAGES];	/* node reported by move_pages() */
	unsigned long region;		/* address of the region in the worker */
	long npages;
	long arg[4];
	struct mm_ksm_stat st;
};

struct worker {
	pid_t pid;
	int cmd_rd, cmd_wr;		/* commands: test -> worker */
	int rep_rd, rep_wr;		/* replies: worker -> test */
	bool mergeable;			/* model: region may be merged */
	bool pending;			/* prepared, not running yet */
	bool dead;			/* stopped answering */
	struct worker_shm *shm;
};

typedef long (*worker_fn)(struct worker *self, long arg);

struct worker_msg {
	worker_fn fn;
	long arg;
};

struct ksm_expect {
	long shared;
	long sharing;
	long unshared;
	long zero;
	long merging[MAX_WORKERS];
	long wzero[MAX_WORKERS];
	long present[MAX_WORKERS];	/* pages that keep a rmap_item */
	long multi[MAX_WORKERS];	/* pages of KSM groups mapped twice+ */
};

/* The model of which content groups have become KSM pages. */
struct group {
	unsigned long long key;
	int node;
};

static struct {
	bool use_zero_pages;
	bool across_nodes;
	bool noisy;		/* merge-any workers: global counts unknown */
	bool exact_unshared;	/* smart_scan off: pages_unshared is exact */
	struct group ksm[(MAX_WORKERS + 1) * MAX_PAGES];
	int nr_ksm;
} model;

static struct worker g_w[MAX_WORKERS];
static int g_nr_workers;
static struct worker *g_sentinel;
static long page_size;
static unsigned long long g_seed;
static double g_deadline;
static int g_failed;
static int g_checks;
static long g_page_checks;
static int g_timeout = DEFAULT_TIMEOUT;
static char *g_skip_reason;	/* shared with the parent */
static bool g_named;		/* tests were selected by name */
static long g_rmap_item_size;

/* ---------------------------------------------------------------- output */

/* One line, one write(): lines of concurrent processes never mix. */
static void out_line(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDOUT_FILENO, buf, n) < 0)
		_exit(3);
}

/* printf() in dead code makes the compiler check the format. */
#define out(fmt, ...)	do {						\
		if (0)							\
			printf(fmt, ##__VA_ARGS__);			\
		out_line(fmt, ##__VA_ARGS__);				\
	} while (0)
#define diag(fmt, ...)	out("# " fmt, ##__VA_ARGS__)
#define fail(fmt, ...)	do {						\
		g_failed = 1;						\
		out("# FAIL %s:%d: " fmt, __func__, __LINE__, ##__VA_ARGS__); \
	} while (0)
#define expect_eq(what, got, want) ({					\
		long __g = (got), __w = (want);				\
		g_checks++;						\
		if (__g != __w)						\
			fail("%s: got %ld, expected %ld", what, __g, __w); \
		__g == __w;						\
	})

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void skip(const char *reason)
{
	snprintf(g_skip_reason, 256, "%s", reason);
}

/* ---------------------------------------------------------------- files */

static int read_text(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			n = -errno;
			close(fd);
			return n;
		}
		if (!n)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

/* Returns 0 or the errno the write (or the open) failed with. */
static int write_text(const char *path, const char *s)
{
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		err = errno;
	else if ((size_t)n != strlen(s))
		err = EIO;
	close(fd);
	return err;
}

static int read_long(const char *path, long *val)
{
	char buf[64], *end;
	int n;

	n = read_text(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	errno = 0;
	*val = strtol(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------- knobs */

static const char *knob_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), KSM_SYSFS "%s", name);
	return path;
}

static bool knob_exists(const char *name)
{
	return !access(knob_path(name), F_OK);
}

static long knob_val(const char *name)
{
	long v;
	int err = read_long(knob_path(name), &v);

	if (err) {
		fail("cannot read %s: %s", name, strerror(-err));
		return -1;
	}
	return v;
}

static int knob_put(const char *name, const char *val)
{
	return write_text(knob_path(name), val);
}

static bool knob_set(const char *name, long val)
{
	char buf[32];
	int err;

	snprintf(buf, sizeof(buf), "%ld", val);
	err = knob_put(name, buf);
	if (err)
		fail("writing %s to %s: %s", buf, name, strerror(err));
	return !err;
}

/* Knobs restored after each test and at exit, in this order ("run" last). */
static const char * const saved_knobs[] = {
	"advisor_max_cpu", "advisor_min_pages_to_scan",
	"advisor_max_pages_to_scan", "advisor_target_scan_time",
	"advisor_mode", "max_page_sharing", "merge_across_nodes",
	"use_zero_pages", "smart_scan", "pages_to_scan", "sleep_millisecs",
	"stable_node_chains_prune_millisecs", "run",
};

#define NR_SAVED ARRAY_SIZE(saved_knobs)
static char saved_val[NR_SAVED][64];
static char saved_hugepages[32];

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

static void knobs_save(void)
{
	size_t i;
	char *s, *e;

	if (read_text(NR_HUGEPAGES, saved_hugepages, sizeof(saved_hugepages)) < 0)
		saved_hugepages[0] = '\0';
	for (i = 0; i < NR_SAVED; i++) {
		saved_val[i][0] = '\0';
		if (read_text(knob_path(saved_knobs[i]), saved_val[i],
			      sizeof(saved_val[i])) < 0)
			continue;
		s = saved_val[i];
		/* advisor_mode reads as "[none] scan-time" */
		if (strchr(s, '[')) {
			s = strchr(s, '[') + 1;
			e = strchr(s, ']');
			if (e)
				*e = '\0';
			memmove(saved_val[i], s, strlen(s) + 1);
		}
		saved_val[i][strcspn(saved_val[i], "\n")] = '\0';
	}
}

/*
 * Page migration behind our back (NUMA hinting faults, proactive
 * compaction) moves pages to new frames; the tests compare frames, so both
 * are off while they run.
 */
static struct {
	const char *path;
	const char *value;
	char saved[32];
} quiet_sysctls[] = {
	{ "/proc/sys/kernel/numa_balancing", "0", "" },
	{ "/proc/sys/vm/compaction_proactiveness", "0", "" },
};

#define NR_QUIET ARRAY_SIZE(quiet_sysctls)

static void sysctls_quiet(void)
{
	size_t i;

	for (i = 0; i < NR_QUIET; i++) {
		if (read_text(quiet_sysctls[i].path, quiet_sysctls[i].saved,
			      sizeof(quiet_sysctls[i].saved)) < 0) {
			quiet_sysctls[i].saved[0] = '\0';
			continue;
		}
		if (write_text(quiet_sysctls[i].path, quiet_sysctls[i].value))
			diag("cannot write %s", quiet_sysctls[i].path);
	}
}

static void sysctls_restore(void)
{
	size_t i;

	for (i = 0; i < NR_QUIET; i++)
		if (quiet_sysctls[i].saved[0])
			write_text(quiet_sysctls[i].path, quiet_sysctls[i].saved);
}

/* Returns false if a knob could not be put back. */
static bool knobs_restore(void)
{
	bool ok = true;
	char now_hp[32];
	size_t i;
	int err;

	/* unsuitable_vmas may have reserved a huge page */
	if (saved_hugepages[0] &&
	    read_text(NR_HUGEPAGES, now_hp, sizeof(now_hp)) > 0 &&
	    strcmp(now_hp, saved_hugepages))
		write_text(NR_HUGEPAGES, saved_hugepages);
	for (i = 0; i < NR_SAVED; i++) {
		if (!saved_val[i][0])
			continue;
		err = knob_put(saved_knobs[i], saved_val[i]);
		if (err == EBUSY) {
			/* KSM pages left behind: unmerge them and retry. */
			knob_put("run", "2");
			err = knob_put(saved_knobs[i], saved_val[i]);
		}
		if (err) {
			out("# cannot restore %s=%s: %s", saved_knobs[i],
			    saved_val[i], strerror(err));
			ok = false;
		}
	}
	return ok;
}

/* ---------------------------------------------------------------- content */

static inline unsigned long long mix64(unsigned long long x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* Word @i of the content named by @key. */
static unsigned long long page_word(unsigned long long key, long i)
{
	long words = page_size / sizeof(unsigned long long), twin_word;
	unsigned long long base = key, w;

	if (key == KEY_ZERO || key == KEY_ABSENT)
		return 0;
	if (key != KEY_ABSENT && (key & KEY_TWIN_BIT))
		base = TWIN_BASE(key);
	w = base == KEY_ZERO ? 0 : mix64(mix64(g_seed + base) + i);
	if (base != key) {
		twin_word = words - 1 - TWIN_N(key) % (words / 2);
		if (i == twin_word)
			w ^= 1ULL << (TWIN_N(key) % 64);
	}
	return w;
}

static void fill_page(unsigned long long *p, unsigned long long key)
{
	long i, words = page_size / sizeof(*p);

	if (key == KEY_ZERO) {
		memset(p, 0, page_size);
		return;
	}
	for (i = 0; i < words; i++)
		p[i] = page_word(key, i);
}

/* Returns the index of the first wrong word, or -1. */
static long check_page(const unsigned long long *p, unsigned long long key)
{
	long i, words = page_size / sizeof(*p);

	for (i = 0; i < words; i++)
		if (p[i] != page_word(key, i))
			return i;
	return -1;
}

/* ---------------------------------------------------------------- procfs */

/* Parses /proc/<pid>/ksm_stat; fields the kernel lacks stay -1. */
static int parse_ksm_stat(const char *path, struct mm_ksm_stat *st)
{
	char buf[1024], *line, *val, *save = NULL;
	long v;
	int n;

	st->rmap_items = -1;
	st->zero_pages = -1;
	st->merging_pages = -1;
	st->profit = LONG_MIN;
	st->merge_any = -1;
	st->mergeable = -1;
	n = read_text(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		val = line + strcspn(line, " :");
		if (!*val)
			continue;
		*val++ = '\0';
		val += strspn(val, " :");
		if (!strcmp(val, "yes"))
			v = 1;
		else if (!strcmp(val, "no"))
			v = 0;
		else
			v = strtol(val, NULL, 10);
		if (!strcmp(line, "ksm_rmap_items"))
			st->rmap_items = v;
		else if (!strcmp(line, "ksm_zero_pages"))
			st->zero_pages = v;
		else if (!strcmp(line, "ksm_merging_pages"))
			st->merging_pages = v;
		else if (!strcmp(line, "ksm_process_profit"))
			st->profit = v;
		else if (!strcmp(line, "ksm_merge_any"))
			st->merge_any = v;
		else if (!strcmp(line, "ksm_mergeable"))
			st->mergeable = v;
	}
	return 0;
}

/* Reads the pagemap entries of [addr, addr + n pages) of @pid. */
static int read_pagemap(pid_t pid, unsigned long addr, long n,
			unsigned long long *ent)
{
	char path[64];
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	got = pread(fd, ent, n * sizeof(*ent), addr / page_size * sizeof(*ent));
	close(fd);
	return got == (ssize_t)(n * sizeof(*ent)) ? 0 : -EIO;
}

static unsigned long long frame_flags(unsigned long long pfn)
{
	static int fd = -1;
	unsigned long long f = 0;

	if (fd < 0)
		fd = open("/proc/kpageflags", O_RDONLY);
	if (pread(fd, &f, sizeof(f), pfn * sizeof(f)) != sizeof(f))
		return 0;
	return f;
}

static bool pfn_is_ksm(unsigned long long pfn)
{
	return frame_flags(pfn) & (1ULL << KPF_BIT_KSM);
}

static bool pfn_is_zero(unsigned long long pfn)
{
	return frame_flags(pfn) & (1ULL << KPF_BIT_ZERO);
}

static long frame_maps(unsigned long long pfn)
{
	static int fd = -1;
	unsigned long long c = 0;

	if (fd < 0)
		fd = open("/proc/kpagecount", O_RDONLY);
	if (pread(fd, &c, sizeof(c), pfn * sizeof(c)) != sizeof(c))
		return -1;
	return c;
}

/*
 * 6.12 reports KPF_KSM for every anonymous page (fs/proc/page.c tests the
 * two-bit PAGE_MAPPING_KSM with '&'), so the flag is only used when a page
 * that cannot be KSM does not carry it.
 */
static bool g_kpf_ksm_ok;

static void probe_kpf_ksm(void)
{
	unsigned long long pm;
	char *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	memset(p, 0x5a, page_size);
	if (!read_pagemap(getpid(), (unsigned long)p, 1, &pm) &&
	    (pm & PM_PRESENT) && (pm & PM_PFN_MASK))
		g_kpf_ksm_ok = !pfn_is_ksm(pm & PM_PFN_MASK);
	munmap(p, page_size);
	if (!g_kpf_ksm_ok)
		diag("/proc/kpageflags sets KPF_KSM on a plain anonymous page: flag not used");
}

/* Present pages in [lo, hi) of a worker whose frame is mapped twice or more. */
static long count_multi(pid_t pid, unsigned long region, long lo, long hi)
{
	static unsigned long long pm[MAX_PAGES];
	long i, n = 0;

	if (read_pagemap(pid, region + lo * page_size, hi - lo, pm))
		return -1;
	for (i = 0; i < hi - lo; i++)
		if ((pm[i] & PM_PRESENT) && frame_maps(pm[i] & PM_PFN_MASK) >= 2)
			n++;
	return n;
}

/* Returns 1 if the VMA of @pid containing @addr has VmFlag @flag, 0 if not. */
static int vma_has_flag(pid_t pid, unsigned long addr, const char *flag)
{
	unsigned long start, end;
	char path[64], line[512];
	bool in = false;
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = addr >= start && addr < end;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			char want[8];

			snprintf(want, sizeof(want), " %s", flag);
			ret = !!strstr(line + 8, want);
			break;
		}
	}
	fclose(f);
	return ret;
}

/*
 * System-wide cross-check that needs no model: every KSM page frame is
 * counted once in pages_shared, and every pte mapping a KSM page is either
 * the first mapping (pages_shared) or an extra one (pages_sharing).
 */
static void check_ksm_frames(void)
{
	static unsigned long long fl[8192], cnt[8192];
	long frames = 0, maps = 0, shared, sharing;
	int ffd, cfd;
	ssize_t a, b;
	long i, off = 0;

	if (!g_kpf_ksm_ok)
		return;
	ffd = open("/proc/kpageflags", O_RDONLY);
	cfd = open("/proc/kpagecount", O_RDONLY);
	if (ffd < 0 || cfd < 0) {
		fail("cannot open /proc/kpageflags or kpagecount");
		goto out;
	}
	for (;;) {
		a = pread(ffd, fl, sizeof(fl), off);
		if (a <= 0)
			break;
		b = pread(cfd, cnt, a, off);
		if (b != a) {
			fail("short read of /proc/kpagecount");
			goto out;
		}
		for (i = 0; i < a / 8; i++) {
			if (!(fl[i] & (1ULL << KPF_BIT_KSM)))
				continue;
			frames++;
			maps += cnt[i];
		}
		off += a;
	}
	shared = knob_val("pages_shared");
	sharing = knob_val("pages_sharing");
	expect_eq("KSM frames in /proc/kpageflags vs pages_shared", frames,
		  shared);
	expect_eq("ptes mapping KSM frames vs pages_shared + pages_sharing",
		  maps, shared + sharing);
out:
	if (ffd >= 0)
		close(ffd);
	if (cfd >= 0)
		close(cfd);
}

/* ---------------------------------------------------------------- workers */

/* A store the compiler cannot drop: forces a write fault on a RO pte. */
static void rewrite_byte(char *p)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

static long worker_call(struct worker *w, worker_fn fn, long arg);

static void worker_loop(struct worker *self)
{
	struct worker_msg m;
	long r;

	while (read(self->cmd_rd, &m, sizeof(m)) == sizeof(m)) {
		r = m.fn(self, m.arg);
		if (write(self->rep_wr, &r, sizeof(r)) != sizeof(r))
			break;
	}
	_exit(0);
}

/*
 * Break COW on every private writable page inherited from the parent, so
 * that no anonymous page is shared with a process that KSM does not track.
 */
static void unshare_inherited(void)
{
	unsigned long start, end, a;
	char line[512], perms[8];
	unsigned char vec;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3)
			continue;
		if (strcmp(perms, "rw-p"))
			continue;
		for (a = start; a < end; a += page_size) {
			if (mincore((void *)a, page_size, &vec) || !(vec & 1))
				continue;
			rewrite_byte((char *)a);
		}
	}
	fclose(f);
}

static void worker_main(struct worker *self)
{
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < g_nr_workers; i++) {
		if (&g_w[i] == self || g_w[i].pending)
			continue;
		close(g_w[i].cmd_rd);
		close(g_w[i].rep_wr);
	}
	close(self->cmd_wr);
	close(self->rep_rd);
	unshare_inherited();
	worker_loop(self);
}

/* Allocates pipes and shared memory for a worker that is not yet running. */
static struct worker *worker_prepare(void)
{
	struct worker *w = &g_w[g_nr_workers];
	int c[2], r[2];

	if (g_nr_workers == MAX_WORKERS || pipe(c) || pipe(r)) {
		fail("cannot prepare a worker");
		return NULL;
	}
	memset(w, 0, sizeof(*w));
	w->cmd_rd = c[0];
	w->cmd_wr = c[1];
	w->rep_rd = r[0];
	w->rep_wr = r[1];
	w->shm = mmap(NULL, sizeof(*w->shm), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w->shm == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		return NULL;
	}
	memset(w->shm->node, -1, sizeof(w->shm->node));
	w->pending = true;
	g_nr_workers++;
	return w;
}

static void worker_attached(struct worker *w)
{
	w->pending = false;
	close(w->cmd_rd);
	close(w->rep_wr);
	w->cmd_rd = -1;
	w->rep_wr = -1;
}

static struct worker *worker_start(void)
{
	struct worker *w = worker_prepare();

	if (!w)
		return NULL;
	w->pid = fork();
	if (w->pid < 0) {
		fail("fork: %s", strerror(errno));
		return NULL;
	}
	if (!w->pid)
		worker_main(w);
	worker_attached(w);
	return w;
}

/* Says once how a worker that stopped answering ended. */
static void worker_gone(struct worker *w)
{
	int status;

	if (w->dead)
		return;
	w->dead = true;
	sleep_ms(100);
	if (waitpid(w->pid, &status, WNOHANG) != w->pid)
		fail("worker %d does not answer", w->pid);
	else if (WIFSIGNALED(status))
		fail("worker %d killed by signal %d", w->pid, WTERMSIG(status));
	else
		fail("worker %d exited with %d", w->pid, WEXITSTATUS(status));
}

static long worker_call(struct worker *w, worker_fn fn, long arg)
{
	struct worker_msg m = { fn, arg };
	long r;

	if (write(w->cmd_wr, &m, sizeof(m)) != sizeof(m) ||
	    read(w->rep_rd, &r, sizeof(r)) != sizeof(r)) {
		worker_gone(w);
		return -EPIPE;
	}
	return r;
}

/* Worker side: map the region of shm->npages anonymous private pages. */
static long w_map(struct worker *self, long npages)
{
	void *p = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	/* THP would add splitting to the picture; keep small pages. */
	madvise(p, npages * page_size, MADV_NOHUGEPAGE);
	self->shm->region = (unsigned long)p;
	self->shm->npages = npages;
	return 0;
}

/* Worker side: map @npages at a 2 MiB boundary with MADV_HUGEPAGE. */
static long w_map_thp(struct worker *self, long npages)
{
	unsigned long len = npages * page_size, huge = 2UL << 20;
	char *p = mmap(NULL, len + huge, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *start;

	if (p == MAP_FAILED)
		return -errno;
	start = (char *)(((unsigned long)p + huge - 1) & ~(huge - 1));
	if (start > p)
		munmap(p, start - p);
	munmap(start + len, p + huge - start);
	if (madvise(start, len, MADV_HUGEPAGE))
		return -errno;
	self->shm->region = (unsigned long)start;
	self->shm->npages = npages;
	return 0;
}

/* Worker side: write pages [arg[0], arg[1]) as their keys say. */
static long w_fill(struct worker *self, long unused)
{
	struct worker_shm *s = self->shm;
	char *base = (char *)s->region;
	long i;

	(void)unused;
	for (i = s->arg[0]; i < s->arg[1]; i++) {
		if (s->key[i] == KEY_ABSENT) {
			if (madvise(base + i * page_size, page_size, MADV_DONTNEED))
				return -errno;
			continue;
		}
		fill_page((unsigned long long *)(base + i * page_size),
			  s->key[i]);
	}
	return 0;
}

/* Worker side: verify every byte of the region; returns bad pages. */
static long w_verify(struct worker *self, long unused)
{
	struct worker_shm *s = self->shm;
	long i, w, bad = 0;

	(void)unused;
	for (i = 0; i < s->npages; i++) {
		const unsigned long long *p;

		p = (unsigned long long *)(s->region + i * page_size);
		w = check_page(p, s->key[i]);
		if (w < 0)
			continue;
		if (bad++ < 3)
			out("# pid %d page %ld word %ld: %llx, expected %llx (key %llx)",
			    getpid(), i, w, p[w], page_word(s->key[i], w), s->key[i]);
	}
	return bad;
}

static long w_madvise(struct worker *self, long advice)
{
	struct worker_shm *s = self->shm;

	if (madvise((void *)s->region, s->npages * page_size, advice))
		return -errno;
	return 0;
}

static long w_prctl_set(struct worker *self, long on)
{
	(void)self;
	if (prctl(PR_SET_MEMORY_MERGE, on, 0, 0, 0))
		return -errno;
	return 0;
}

static long w_prctl_get(struct worker *self, long unused)
{
	long r = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);

	(void)self;
	(void)unused;
	return r < 0 ? -errno : r;
}

static long w_stat(struct worker *self, long unused)
{
	int err = parse_ksm_stat("/proc/self/ksm_stat", &self->shm->st);

	(void)unused;
	if (err)
		return err;
	return read_long("/proc/self/ksm_merging_pages",
			 &self->shm->st.merging_file);
}

/* Worker side: bind pages [arg[0], arg[1]) to node arg[2]. */
static long w_mbind(struct worker *self, long unused)
{
	struct worker_shm *s = self->shm;
	unsigned long mask = 1UL << s->arg[2];
	long i;

	(void)unused;
	if (syscall(SYS_mbind, s->region + s->arg[0] * page_size,
		    (s->arg[1] - s->arg[0]) * page_size, MPOL_BIND, &mask,
		    sizeof(mask) * 8, 0))
		return -errno;
	for (i = s->arg[0]; i < s->arg[1]; i++)
		s->node[i] = s->arg[2];
	return 0;
}

/* Worker side: record in where[] the node of every page of the region. */
static long w_where(struct worker *self, long unused)
{
	struct worker_shm *s = self->shm;
	void *pages[MAX_PAGES];
	int status[MAX_PAGES];
	long i;

	(void)unused;
	for (i = 0; i < s->npages; i++)
		pages[i] = (char *)s->region + i * page_size;
	if (syscall(SYS_move_pages, 0, s->npages, pages, NULL, status, 0))
		return -errno;
	for (i = 0; i < s->npages; i++)
		s->where[i] = status[i];
	return 0;
}

/*
 * Worker side: write one byte of every page back unchanged and record in
 * where[] whether the page moved to a new frame.  Only a KSM page (or the
 * zero page) is copied on write; a private anonymous page is reused.
 */
static long w_cow_probe(struct worker *self, long unused)
{
	struct worker_shm *s = self->shm;
	unsigned long long before, after;
	long i;

	(void)unused;
	for (i = 0; i < s->npages; i++) {
		char *p = (char *)s->region + i * page_size;

		s->where[i] = -1;
		if (s->key[i] == KEY_ABSENT)
			continue;
		if (read_pagemap(getpid(), (unsigned long)p, 1, &before))
			return -EIO;
		rewrite_byte(p);
		if (read_pagemap(getpid(), (unsigned long)p, 1, &after))
			return -EIO;
		s->where[i] = (before & PM_PFN_MASK) != (after & PM_PFN_MASK);
	}
	return 0;
}

/* Worker side: fork a child that serves g_w[idx]; returns its pid. */
static long w_fork_worker(struct worker *self, long idx)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		g_w[idx].shm->region = self->shm->region;
		g_w[idx].shm->npages = self->shm->npages;
		g_w[idx].pending = false;
		worker_main(&g_w[idx]);
	}
	return pid;
}

/* Worker side: merge-any must survive execve() of a child. */
static long w_exec_probe(struct worker *self, long unused)
{
	int status;
	pid_t pid = fork();

	(void)self;
	(void)unused;
	if (pid < 0)
		return -errno;
	if (!pid) {
		execl("/proc/self/exe", "ksm_tests", "--merge-any-probe",
		      (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ---------------------------------------------------------------- model */

static int ref_cmp_ull(const void *a, const void *b)
{
	const unsigned long long *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

static int group_cmp(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->node - y->node;
}

static struct group page_group(struct worker *w, long i)
{
	struct group g = { w->shm->key[i], 0 };

	if (!model.across_nodes)
		g.node = w->shm->node[i];
	return g;
}

/* Does the content of this page take part in normal merging? */
static bool page_counted(struct worker *w, long i)
{
	unsigned long long k = w->shm->key[i];

	if (!w->mergeable || k == KEY_ABSENT)
		return false;
	return !(k == KEY_ZERO && model.use_zero_pages);
}

static bool group_was_ksm(struct group g)
{
	return bsearch(&g, model.ksm, model.nr_ksm, sizeof(g), group_cmp);
}

/*
 * The scan set: all workers the test gave plus the sentinel.  Content groups
 * mapped twice or more are KSM pages; a group that was KSM and is left with
 * one mapping stays a KSM page (nobody breaks it).
 */
static int model_groups(struct worker **ws, int n, struct group *all)
{
	int nr = 0, j;
	long i;

	for (j = 0; j < n; j++)
		for (i = 0; i < ws[j]->shm->npages; i++)
			if (page_counted(ws[j], i))
				all[nr++] = page_group(ws[j], i);
	qsort(all, nr, sizeof(*all), group_cmp);
	return nr;
}

static long group_count(struct group *all, int nr, struct group g)
{
	struct group *p = bsearch(&g, all, nr, sizeof(g), group_cmp);
	long c = 0;

	if (!p)
		return 0;
	while (p > all && !group_cmp(p - 1, &g))
		p--;
	while (p < all + nr && !group_cmp(p, &g)) {
		c++;
		p++;
	}
	return c;
}

static bool group_is_ksm(struct group *all, int nr, struct group g)
{
	long c = group_count(all, nr, g);

	return c >= 2 || (c == 1 && group_was_ksm(g));
}

static struct worker *scan_set[MAX_WORKERS + 1];

static int with_sentinel(struct worker **ws, int n)
{
	int i;

	for (i = 0; i < n; i++)
		scan_set[i] = ws[i];
	if (g_sentinel)
		scan_set[n++] = g_sentinel;
	return n;
}

static void model_expect(struct worker **ws, int n, struct ksm_expect *e)
{
	static struct group all[(MAX_WORKERS + 1) * MAX_PAGES];
	int nr, j, k, m;
	long i, c;

	memset(e, 0, sizeof(*e));
	m = with_sentinel(ws, n);
	nr = model_groups(scan_set, m, all);
	for (k = 0; k < nr; k += c) {
		c = group_count(all, nr, all[k]);
		if (group_is_ksm(all, nr, all[k])) {
			e->shared++;
			e->sharing += c - 1;
		} else {
			e->unshared++;
		}
	}
	for (j = 0; j < n; j++) {
		struct worker *w = ws[j];

		for (i = 0; i < w->shm->npages; i++) {
			unsigned long long key = w->shm->key[i];

			if (!w->mergeable || key == KEY_ABSENT)
				continue;
			if (key == KEY_ZERO && model.use_zero_pages) {
				e->wzero[j]++;
				continue;
			}
			e->present[j]++;
			if (group_is_ksm(all, nr, page_group(w, i)))
				e->merging[j]++;
			if (group_count(all, nr, page_group(w, i)) >= 2)
				e->multi[j]++;
		}
		e->zero += e->wzero[j];
	}
}

/* Remember which groups are KSM pages now. */
static void model_commit(struct worker **ws, int n)
{
	static struct group all[(MAX_WORKERS + 1) * MAX_PAGES];
	int nr, k, m, out = 0;

	m = with_sentinel(ws, n);
	nr = model_groups(scan_set, m, all);
	for (k = 0; k < nr; k++) {
		if (k && !group_cmp(&all[k - 1], &all[k]))
			continue;
		if (group_is_ksm(all, nr, all[k]))
			all[out++] = all[k];
	}
	memcpy(model.ksm, all, out * sizeof(*all));
	model.nr_ksm = out;
}

static void model_forget(void)
{
	model.nr_ksm = 0;
}

static bool counters_match(struct worker **ws, int n)
{
	struct ksm_expect e;

	model_expect(ws, n, &e);
	if (knob_val("pages_shared") != e.shared ||
	    knob_val("pages_sharing") != e.sharing)
		return false;
	if (knob_exists("ksm_zero_pages") &&
	    knob_val("ksm_zero_pages") != e.zero)
		return false;
	return true;
}

struct frame_ref {
	struct group g;
	unsigned long long frame;
};

static int ref_by_group(const void *a, const void *b)
{
	const struct frame_ref *x = a, *y = b;
	int c = group_cmp(&x->g, &y->g);

	if (c)
		return c;
	return x->frame < y->frame ? -1 : x->frame > y->frame;
}

static int ref_by_frame(const void *a, const void *b)
{
	const struct frame_ref *x = a, *y = b;

	if (x->frame != y->frame)
		return x->frame < y->frame ? -1 : 1;
	return group_cmp(&x->g, &y->g);
}

/* One frame per KSM group, one KSM group per frame. */
static long check_frames(struct worker **ws, int n,
			 unsigned long long frame[][MAX_PAGES],
			 struct group *all, int nr, bool quiet)
{
	static struct frame_ref ref[MAX_WORKERS * MAX_PAGES];
	long i, k, cnt = 0, bad = 0;
	int j;

	for (j = 0; j < n; j++)
		for (i = 0; i < ws[j]->shm->npages; i++) {
			struct group g = page_group(ws[j], i);

			if (!page_counted(ws[j], i) || group_count(all, nr, g) < 2)
				continue;
			ref[cnt].g = g;
			ref[cnt++].frame = frame[j][i];
		}
	qsort(ref, cnt, sizeof(*ref), ref_by_group);
	for (k = 1; k < cnt; k++)
		if (!group_cmp(&ref[k].g, &ref[k - 1].g) &&
		    ref[k].frame != ref[k - 1].frame) {
			if (!quiet && bad < 5)
				fail("key %llx node %d in frames %llx and %llx",
				     ref[k].g.key, ref[k].g.node, ref[k - 1].frame,
				     ref[k].frame);
			bad++;
		}
	qsort(ref, cnt, sizeof(*ref), ref_by_frame);
	for (k = 1; k < cnt; k++)
		if (ref[k].frame == ref[k - 1].frame &&
		    group_cmp(&ref[k].g, &ref[k - 1].g)) {
			if (!quiet && bad < 5)
				fail("frame %llx holds keys %llx and %llx",
				     ref[k].frame, ref[k - 1].g.key, ref[k].g.key);
			bad++;
		}
	return bad;
}

/*
 * Page-by-page view of the workers' regions through pagemap: every page of
 * a KSM group maps the same KSM frame, other pages are not KSM, zero pages
 * map the zero page.  Returns the number of wrong pages.
 */
static long check_layout(struct worker **ws, int n, bool quiet)
{
	static struct group all[(MAX_WORKERS + 1) * MAX_PAGES];
	static unsigned long long pm[MAX_WORKERS][MAX_PAGES];
	static unsigned long long frame[MAX_WORKERS][MAX_PAGES];
	int nr, j, m;
	long i, bad = 0;

	m = with_sentinel(ws, n);
	nr = model_groups(scan_set, m, all);
	for (j = 0; j < n; j++)
		if (read_pagemap(ws[j]->pid, ws[j]->shm->region,
				 ws[j]->shm->npages, pm[j])) {
			if (!quiet)
				fail("cannot read pagemap of %d", ws[j]->pid);
			return 1;
		}
	for (j = 0; j < n; j++) {
		struct worker *w = ws[j];

		for (i = 0; i < w->shm->npages; i++) {
			unsigned long long key = w->shm->key[i];
			unsigned long long pfn = pm[j][i] & PM_PFN_MASK;
			bool present = pm[j][i] & PM_PRESENT;
			const char *why = NULL;
			long c, maps;

			frame[j][i] = present ? pfn : 0;
			if (key == KEY_ABSENT)
				continue;
			if (!quiet)
				g_page_checks++;
			c = page_counted(w, i) ? group_count(all, nr, page_group(w, i)) : 0;
			maps = present ? frame_maps(pfn) : 0;
			if (!present) {
				why = "not present";
			} else if (key == KEY_ZERO && w->mergeable &&
				   model.use_zero_pages) {
				if (!pfn_is_zero(pfn))
					why = "not the zero page";
			} else if (c >= 2) {
				/* A KSM group: its frame is mapped once per page. */
				if (model.noisy ? maps < c : maps != c)
					why = "frame mapped a wrong number of times";
			} else if (c == 1 && group_is_ksm(all, nr, page_group(w, i))) {
				/* A KSM page left with one mapping. */
				if (maps != 1 || (g_kpf_ksm_ok && !pfn_is_ksm(pfn)))
					why = "lone KSM page mapped elsewhere";
			} else if (maps != 1) {
				why = "unique page mapped more than once";
			} else if (g_kpf_ksm_ok && pfn_is_ksm(pfn)) {
				why = "unique page is a KSM page";
			}
			if (why) {
				if (!quiet && bad < 5)
					fail("pid %d page %ld key %llx: %s (%ld maps)",
					     w->pid, i, key, why, maps);
				bad++;
			}
		}
	}
	if (!bad)
		bad = check_frames(ws, n, frame, all, nr, quiet);
	return bad;
}

/* ---------------------------------------------------------------- ksmd */

static bool ksm_reset(void)
{
	bool ok = knob_set("run", 2);

	model_forget();
	if (knob_exists("merge_across_nodes") && knob_val("merge_across_nodes") != 1)
		ok &= knob_set("merge_across_nodes", 1);
	if (knob_val("max_page_sharing") != 256)
		ok &= knob_set("max_page_sharing", 256);
	ok &= knob_set("use_zero_pages", 0);
	if (knob_exists("smart_scan"))
		ok &= knob_set("smart_scan", 1);
	ok &= knob_set("pages_to_scan", SCAN_BATCH);
	ok &= knob_set("sleep_millisecs", 0);
	model.use_zero_pages = false;
	model.across_nodes = true;
	model.noisy = false;
	model.exact_unshared = false;
	ok &= expect_eq("pages_shared after run=2", knob_val("pages_shared"), 0);
	ok &= expect_eq("pages_sharing after run=2", knob_val("pages_sharing"), 0);
	if (knob_exists("ksm_zero_pages"))
		ok &= expect_eq("ksm_zero_pages after run=2",
				knob_val("ksm_zero_pages"), 0);
	return ok;
}

static void show_counters(void)
{
	diag("full_scans %ld pages_shared %ld pages_sharing %ld",
	     knob_val("full_scans"), knob_val("pages_shared"),
	     knob_val("pages_sharing"));
	diag("pages_unshared %ld pages_volatile %ld ksm_zero_pages %ld",
	     knob_val("pages_unshared"), knob_val("pages_volatile"),
	     knob_exists("ksm_zero_pages") ? knob_val("ksm_zero_pages") : -1);
}

/* When set, replaces the model as the condition ksm_settle() waits for. */
static bool (*g_settle_pred)(struct worker **ws, int n);

/*
 * Runs ksmd until the model holds after at least @min_scans full scans,
 * then for one more complete scan (to catch anything merged too much),
 * and stops it.  Fails when the test deadline comes first.
 */
static bool ksm_settle(struct worker **ws, int n, int min_scans)
{
	long start, cur, done_at = -1, sig, last_sig = -1, still_from = 0;
	double t0 = now(), still_since = t0;

	knob_set("pages_to_scan", SCAN_BATCH);
	knob_set("sleep_millisecs", 0);
	start = knob_val("full_scans");
	if (!knob_set("run", 1))
		return false;
	for (;;) {
		cur = knob_val("full_scans");
		if (cur < 0)
			break;
		if (cur - start >= min_scans && done_at < 0) {
			if (g_settle_pred ? g_settle_pred(ws, n) :
			    model.noisy ? !check_layout(ws, n, true) :
			    counters_match(ws, n))
				done_at = cur;
		}
		if (done_at >= 0 && cur >= done_at + 2)
			break;
		/* Nothing changed for SETTLE_STUCK_SCANS scans and seconds. */
		sig = knob_val("pages_shared") * 1000003 + knob_val("pages_sharing");
		if (sig != last_sig) {
			last_sig = sig;
			still_from = cur;
			still_since = now();
		} else if (done_at < 0 && cur - still_from > SETTLE_STUCK_SCANS &&
			   now() - still_since > SETTLE_STUCK_SECONDS) {
			knob_set("run", 0);
			fail("ksmd is stuck short of the expected state (%ld full scans)",
			     cur - start);
			show_counters();
			return false;
		}
		if (now() > g_deadline) {
			knob_set("run", 0);
			fail("ksmd did not reach the expected state in time (%ld full scans)",
			     cur - start);
			show_counters();
			return false;
		}
		sleep_ms(10);
	}
	knob_set("run", 0);
	diag("ksmd: %ld full scans in %.1f s", cur - start, now() - t0);
	return cur >= 0;
}

/* Per-process statistics of every worker against pagemap and the model. */
static void check_worker_stats(struct worker **ws, int n, struct ksm_expect *e)
{
	long profit, sz, multi;
	int j;

	for (j = 0; j < n; j++) {
		struct mm_ksm_stat *st = &ws[j]->shm->st;
		char what[96];

		if (worker_call(ws[j], w_stat, 0)) {
			fail("worker %d cannot read its ksm_stat", ws[j]->pid);
			continue;
		}
		multi = count_multi(ws[j]->pid, ws[j]->shm->region, 0,
				    ws[j]->shm->npages);
		snprintf(what, sizeof(what), "pid %d ksm_merging_pages file vs ksm_stat",
			 ws[j]->pid);
		expect_eq(what, st->merging_file, st->merging_pages);
		if (st->merging_file < multi)
			fail("pid %d ksm_merging_pages %ld, but %ld pages share frames",
			     ws[j]->pid, st->merging_file, multi);
		/* rmap_item size from profit = (merging + zero) * PAGE - rmap * size */
		profit = (st->merging_pages + st->zero_pages) * page_size - st->profit;
		if (st->rmap_items > 0) {
			sz = profit / st->rmap_items;
			if (profit % st->rmap_items || sz < 16 || sz > 512)
				fail("pid %d ksm_process_profit %ld vs %ld rmap_items",
				     ws[j]->pid, st->profit, st->rmap_items);
			else if (g_rmap_item_size && sz != g_rmap_item_size)
				fail("pid %d: rmap_item size %ld, elsewhere %ld",
				     ws[j]->pid, sz, g_rmap_item_size);
			else
				g_rmap_item_size = sz;
		} else {
			snprintf(what, sizeof(what), "pid %d ksm_process_profit", ws[j]->pid);
			expect_eq(what, st->profit,
				  (st->merging_pages + st->zero_pages) * page_size);
		}
		if (model.noisy || !e)
			continue;
		snprintf(what, sizeof(what), "pid %d ksm_merging_pages", ws[j]->pid);
		expect_eq(what, st->merging_pages, e->merging[j]);
		snprintf(what, sizeof(what), "pid %d pages sharing a frame (pagemap)",
			 ws[j]->pid);
		expect_eq(what, multi, e->multi[j]);
		snprintf(what, sizeof(what), "pid %d ksm_stat ksm_zero_pages", ws[j]->pid);
		expect_eq(what, st->zero_pages, e->wzero[j]);
		snprintf(what, sizeof(what), "pid %d ksm_rmap_items", ws[j]->pid);
		expect_eq(what, st->rmap_items, e->present[j]);
	}
}

/*
 * general_profit counts every rmap_item in the system: with only our
 * processes in KSM, it finds rmap_items leaked by exited processes.
 */
static void check_general_profit(struct worker **ws, int n)
{
	long rmap = 0, zero = 0, want;
	int j;

	if (!knob_exists("general_profit") || !g_rmap_item_size)
		return;
	for (j = 0; j < n; j++)
		rmap += ws[j]->shm->st.rmap_items;
	if (g_sentinel) {
		if (worker_call(g_sentinel, w_stat, 0))
			return;
		rmap += g_sentinel->shm->st.rmap_items;
	}
	if (knob_exists("ksm_zero_pages"))
		zero = knob_val("ksm_zero_pages");
	want = (knob_val("pages_sharing") + zero) * page_size -
	       rmap * g_rmap_item_size;
	expect_eq("general_profit (all rmap_items are ours)",
		  knob_val("general_profit"), want);
}

/* Full check after ksm_settle(): counters, layout, per-mm stats, frames. */
static void check_state(struct worker **ws, int n)
{
	struct ksm_expect e;

	model_expect(ws, n, &e);
	if (!model.noisy) {
		expect_eq("pages_shared", knob_val("pages_shared"), e.shared);
		expect_eq("pages_sharing", knob_val("pages_sharing"), e.sharing);
		if (knob_exists("ksm_zero_pages"))
			expect_eq("ksm_zero_pages", knob_val("ksm_zero_pages"),
				  e.zero);
		if (model.exact_unshared) {
			expect_eq("pages_unshared", knob_val("pages_unshared"),
				  e.unshared);
			expect_eq("pages_volatile", knob_val("pages_volatile"), 0);
		}
	}
	check_layout(ws, n, false);
	check_worker_stats(ws, n, &e);
	if (!model.noisy)
		check_general_profit(ws, n);
	check_ksm_frames();
	model_commit(ws, n);
}

/*
 * Destructive: every page that the model says is KSM (or a KSM zero page)
 * must be copied on write, every other page must not.  Ends the model.
 */
static void check_cow_probe(struct worker **ws, int n)
{
	static struct group all[(MAX_WORKERS + 1) * MAX_PAGES];
	int nr, j, m;
	long i, bad;

	m = with_sentinel(ws, n);
	nr = model_groups(scan_set, m, all);
	for (j = 0; j < n; j++) {
		struct worker *w = ws[j];

		if (worker_call(w, w_cow_probe, 0)) {
			fail("pid %d: COW probe failed", w->pid);
			continue;
		}
		for (i = 0, bad = 0; i < w->shm->npages; i++) {
			unsigned long long key = w->shm->key[i];
			bool ksm;

			if (key == KEY_ABSENT)
				continue;
			g_page_checks++;
			if (key == KEY_ZERO && model.use_zero_pages)
				ksm = w->mergeable;
			else
				ksm = page_counted(w, i) &&
				      group_is_ksm(all, nr, page_group(w, i));
			if (w->shm->where[i] == ksm)
				continue;
			if (bad++ < 3)
				fail("pid %d page %ld key %llx: %s", w->pid, i, key,
				     ksm ? "expected KSM, write did not copy" :
				     "expected no KSM page, write copied it");
		}
	}
	model_forget();
}

static void verify_all(struct worker **ws, int n)
{
	int j;
	long bad;

	for (j = 0; j < n; j++) {
		g_page_checks += ws[j]->shm->npages;
		bad = worker_call(ws[j], w_verify, 0);
		if (bad)
			fail("pid %d: %ld pages with wrong content", ws[j]->pid, bad);
	}
}

/* ---------------------------------------------------------------- set-up */

static void set_keys(struct worker *w, long lo, long hi,
		     unsigned long long (*key)(int wi, long i), int wi)
{
	long i;

	for (i = lo; i < hi; i++)
		w->shm->key[i] = key(wi, i);
}

static bool fill_range(struct worker *w, long lo, long hi)
{
	long r;

	w->shm->arg[0] = lo;
	w->shm->arg[1] = hi;
	r = worker_call(w, w_fill, 0);
	if (r)
		fail("pid %d cannot fill pages: %s", w->pid, strerror(-r));
	return !r;
}

/* Starts a worker with @npages mapped; keys set by the caller later. */
static struct worker *map_worker(long npages)
{
	struct worker *w = worker_start();
	long r;

	if (!w)
		return NULL;
	r = worker_call(w, w_map, npages);
	if (r) {
		fail("pid %d cannot map %ld pages: %s", w->pid, npages,
		     strerror(-r));
		return NULL;
	}
	return w;
}

static bool madvise_worker(struct worker *w, int advice)
{
	long r = worker_call(w, w_madvise, advice);

	if (r) {
		fail("pid %d madvise(%d): %s", w->pid, advice, strerror(-r));
		return false;
	}
	w->mergeable = advice == MADV_MERGEABLE;
	return true;
}

/* One unique mergeable page that keeps ksmd's mm list from going empty. */
static bool start_sentinel(void)
{
	struct worker *w = map_worker(1);

	if (!w)
		return false;
	w->shm->key[0] = 0xfeedULL << 32 | getpid();
	g_sentinel = w;
	return fill_range(w, 0, 1) && madvise_worker(w, MADV_MERGEABLE);
}

/*
 * The layout shared by the merge and COW tests, for worker @w of 4:
 *   [0, 256)    keys common to all workers (one KSM page per key)
 *   [256, 304)  one key repeated everywhere (one KSM page, 192 mappings)
 *   [304, 400)  keys shared by the pair w, w ^ 1
 *   [400, 432)  near twins of common keys, different in every worker
 *   [432, 512)  keys of this worker alone
 */
#define L_COMMON	256
#define L_SAME		304
#define L_PAIR		400
#define L_PAGES		512

static unsigned long long layout_key(int w, long i)
{
	if (i < L_COMMON)
		return 1 + i;
	if (i < L_SAME)
		return 1000;
	if (i < L_PAIR)
		return (2000 + (w / 2) * 1000) + i;
	if (i < L_PAIR + 32)
		return KEY_TWIN(1 + i - L_PAIR, w * 32 + i - L_PAIR);
	return ((unsigned long long)(w + 1) << 32) + i;
}

static bool start_layout_workers(struct worker **ws, int n)
{
	int j;

	for (j = 0; j < n; j++) {
		ws[j] = map_worker(L_PAGES);
		if (!ws[j])
			return false;
		set_keys(ws[j], 0, L_PAGES, layout_key, j);
		if (!fill_range(ws[j], 0, L_PAGES) ||
		    !madvise_worker(ws[j], MADV_MERGEABLE))
			return false;
	}
	return true;
}

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

static bool run_scans(long scans);

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

static void expect_write_err(const char *knob, const char *val, int err)
{
	char before[64], after[64], what[128];

	read_text(knob_path(knob), before, sizeof(before));
	snprintf(what, sizeof(what), "errno writing \"%s\" to %s", val, knob);
	expect_eq(what, knob_put(knob, val), err);
	read_text(knob_path(knob), after, sizeof(after));
	if (err && strcmp(before, after))
		fail("%s changed from %s to %s", knob, before, after);
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

/* Runs ksmd for @scans more full scans with the knobs as they are. */
static bool run_scans(long scans)
{
	long start = knob_val("full_scans"), cur = start;

	if (start < 0 || !knob_set("run", 1))
		return false;
	while (cur >= 0 && cur < start + scans && now() < g_deadline) {
		sleep_ms(10);
		cur = knob_val("full_scans");
	}
	knob_set("run", 0);
	if (cur < start + scans) {
		fail("ksmd did %ld of %ld full scans in time", cur - start, scans);
		return false;
	}
	return true;
}

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

/* ---------------------------------------------------------------- driver */

struct ksm_test {
	const char *name;
	enum result (*fn)(void);
};

static const struct ksm_test tests[] = {
	{ "merge_across_processes", test_merge_across_processes },
	{ "cow_after_merge", test_cow_after_merge },
	{ "remerge_after_cow", test_remerge_after_cow },
	{ "unmerge_paths", test_unmerge_paths },
	{ "prctl_merge", test_prctl_merge },
	{ "fork_exit_scanning", test_fork_exit_scanning },
	{ "zero_pages", test_zero_pages },
	{ "numa", test_numa },
	{ "statistics", test_statistics },
	{ "ksm_stat_flags", test_ksm_stat_flags },
	{ "bad_sysfs_writes", test_bad_sysfs_writes },
	{ "smart_scan", test_smart_scan },
	{ "advisor", test_advisor },
	{ "unsuitable_vmas", test_unsuitable_vmas },
	{ "max_page_sharing", test_max_page_sharing },
	{ "thp_merge", test_thp_merge },
};

#define NR_TESTS ARRAY_SIZE(tests)

static void run_test_child(const struct ksm_test *t)
{
	enum result r;

	setpgid(0, 0);
	g_deadline = now() + g_timeout - 5;
	g_seed = mix64(g_seed ^ (unsigned long long)getpid() << 20 ^ (long)t);
	if (!ksm_reset() || !start_sentinel()) {
		diag("set-up failed");
		_exit(RES_FAIL);
	}
	signal(SIGPIPE, SIG_IGN);
	r = t->fn();
	knob_set("run", 0);
	diag("%d counter checks, %ld page checks", g_checks, g_page_checks);
	if (g_failed)
		r = RES_FAIL;
	_exit(r);
}

/* Kernel log lines that mean the kernel is unhappy. */
static const char * const bad_kmsg[] = {
	"BUG:", "kernel BUG", "WARNING:", "KASAN", "Oops", "general protection",
	"possible circular locking", "possible recursive locking",
	"INFO: task", "UBSAN", "corruption", "Call Trace", "Kernel panic",
};

static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

static bool kmsg_clean(int fd)
{
	char rec[2048];
	bool clean = true;
	ssize_t n;
	size_t i;
	char *msg;

	if (fd < 0)
		return true;
	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = '\0';
		for (i = 0; i < ARRAY_SIZE(bad_kmsg); i++)
			if (strstr(msg, bad_kmsg[i])) {
				out("# kernel: %s", msg);
				clean = false;
				break;
			}
	}
	close(fd);
	return clean;
}

/* Kills and reaps what is left of a test's process group. */
static void reap_group(pid_t pgid)
{
	int i;

	for (i = 0; i < 500; i++) {
		kill(-pgid, SIGKILL);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (kill(-pgid, 0) && errno == ESRCH)
			return;
		sleep_ms(10);
	}
}

static enum result run_test(const struct ksm_test *t, int nr)
{
	double deadline = now() + g_timeout, t0 = now();
	enum result r = RES_FAIL;
	int status, kfd = kmsg_open();
	pid_t pid;

	g_skip_reason[0] = '\0';
	pid = fork();
	if (pid < 0) {
		diag("fork: %s", strerror(errno));
		return RES_FAIL;
	}
	if (!pid)
		run_test_child(t);
	setpgid(pid, pid);
	for (;;) {
		pid_t got = waitpid(pid, &status, WNOHANG);

		if (got == pid) {
			if (WIFEXITED(status) && WEXITSTATUS(status) <= RES_SKIP)
				r = WEXITSTATUS(status);
			else
				diag("test process ended with status %#x", status);
			break;
		}
		if (now() > deadline) {
			diag("%s: timed out after %d s", t->name, g_timeout);
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_ms(20);
	}
	reap_group(pid);
	if (!knobs_restore())
		r = RES_FAIL;
	if (!kmsg_clean(kfd))
		r = RES_FAIL;
	diag("%s took %.1f s", t->name, now() - t0);
	if (r == RES_SKIP)
		out("ok %d %s # SKIP %s", nr, t->name, g_skip_reason);
	else
		out("%sok %d %s", r == RES_PASS ? "" : "not ", nr, t->name);
	return r;
}

/* Re-executed by prctl_merge: merge-any must survive execve(). */
static int merge_any_probe(void)
{
	return prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) == 1 ? 0 : 1;
}

static void print_usage(const char *prog)
{
	size_t i;

	fprintf(stderr, "usage: %s [-t seconds] [-l] [test ...]\ntests:", prog);
	for (i = 0; i < NR_TESTS; i++)
		fprintf(stderr, " %s", tests[i].name);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	bool selected[NR_TESTS] = { false };
	int i, nr = 0, failed = 0, opt;
	double t0 = now();
	size_t k;

	if (argc == 2 && !strcmp(argv[1], "--merge-any-probe"))
		return merge_any_probe();
	while ((opt = getopt(argc, argv, "t:lh")) != -1) {
		switch (opt) {
		case 't':
			g_timeout = atoi(optarg);
			if (g_timeout < 10) {
				print_usage(argv[0]);
				return 2;
			}
			break;
		case 'l':
			for (k = 0; k < NR_TESTS; k++)
				printf("%s\n", tests[k].name);
			return 0;
		default:
			print_usage(argv[0]);
			return 2;
		}
	}
	for (i = optind; i < argc; i++) {
		for (k = 0; k < NR_TESTS; k++)
			if (!strcmp(argv[i], tests[k].name))
				break;
		if (k == NR_TESTS) {
			fprintf(stderr, "unknown test %s\n", argv[i]);
			print_usage(argv[0]);
			return 2;
		}
		selected[k] = true;
	}
	g_named = optind < argc;
	for (k = 0; k < NR_TESTS; k++) {
		if (optind == argc)
			selected[k] = true;
		nr += selected[k];
	}
	page_size = sysconf(_SC_PAGESIZE);
	g_seed = mix64(time(NULL) ^ (unsigned long long)getpid() << 32);
	g_skip_reason = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_skip_reason == MAP_FAILED)
		return 1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	out("1..%d", nr);
	if (access(KSM_SYSFS "run", F_OK) || geteuid() ||
	    access("/proc/kpagecount", R_OK)) {
		const char *why = geteuid() ? "needs root" :
				  access(KSM_SYSFS "run", F_OK) ? "no KSM (CONFIG_KSM)" :
				  "no /proc/kpagecount (CONFIG_PROC_PAGE_MONITOR)";

		for (k = 0, i = 1; k < NR_TESTS; k++)
			if (selected[k])
				out("ok %d %s # SKIP %s", i++, tests[k].name, why);
		return 0;
	}
	knobs_save();
	sysctls_quiet();
	probe_kpf_ksm();
	for (k = 0, i = 1; k < NR_TESTS; k++)
		if (selected[k] && run_test(&tests[k], i++) == RES_FAIL)
			failed++;
	if (!knobs_restore())
		failed++;
	sysctls_restore();
	diag("total %.1f s, %d of %d failed", now() - t0, failed, nr);
	return failed ? 1 : 0;
}
