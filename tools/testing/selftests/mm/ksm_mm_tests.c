// SPDX-License-Identifier: GPL-2.0
/*
 * Selftests of Kernel Samepage Merging against the rest of mm.
 *
 * Each test starts helper processes ("workers") that map anonymous memory,
 * fill it with identical and unique pages, mark it MADV_MERGEABLE and let
 * ksmd (unthrottled: sleep_millisecs=0, a large pages_to_scan) merge it;
 * then it drives one part of mm over the merged pages: reclaim and swap,
 * mremap, NUMA migration and compaction, THP splitting, memory failure,
 * memory hot-remove, the address-space system calls, and a randomised
 * stress run that mixes all of them.
 *
 * How the checks work.  Every page a worker maps has a seed in memory
 * shared with the test process; the page's bytes are a function of the
 * seed, so pages of equal seed are identical.  Every byte of every page is
 * verified in the process that maps it, before and after each operation.
 * A model built from the seeds, the pages' presence (/proc/<pid>/pagemap)
 * and, without merge_across_nodes, their nodes, predicts pages_shared,
 * pages_sharing, ksm_zero_pages and each process's ksm_merging_pages; the
 * test waits (bounded) until the counters equal the model and stay equal
 * for two more full scans.  The page frames are cross-checked too: pages of
 * one content share one frame, mapped exactly that many times
 * (/proc/kpagecount), and no other page shares a frame.  /proc/vmstat
 * event counters (pswpin, pswpout, cow_ksm, ksm_swpin_copy) are checked
 * when the kernel has them (CONFIG_VM_EVENT_COUNTERS); memcg's memory.stat
 * and pagemap's swap entries are used for swap either way.
 *
 * A KSM page whose other mappings went away stays a KSM page (a "lone" KSM
 * page) until it is written, unmapped or swapped: where a test creates such
 * pages, the model accepts them being counted or not, but pages_shared and
 * the owner's ksm_merging_pages must then agree page for page.
 *
 * Output is TAP; diagnostics are "# " lines.  Every test runs in its own
 * process group with a time limit; KSM knobs, THP modes, sysctls, cgroups
 * and memory blocks the tests change are restored after each test.
 *
 * Usage: ksm_mm_tests [-t seconds] [-d seconds] [-r times] [-k] [-l] [test ...]
 *   -t  time limit of each test (default 180; stress gets -d on top)
 *   -d  duration of the stress test's random phase (default 60)
 *   -k  exit with 4 (kselftest's "skipped") when every test skipped
 *   -r  run the selected tests this many times (hunting flaky failures)
 *   -l  list the tests
 * Needs root, CONFIG_KSM and CONFIG_PROC_PAGE_MONITOR; tests skip (with the
 * reason) what the kernel or the machine lacks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/mempolicy.h>
#include <linux/userfaultfd.h>

#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE		12
#define MADV_UNMERGEABLE	13
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE		14
#define MADV_NOHUGEPAGE		15
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE	101
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON		100
#endif
#ifndef MADV_FREE
#define MADV_FREE		8
#endif
#ifndef MADV_COLD
#define MADV_COLD		20
#define MADV_PAGEOUT		21
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED		2
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE	67
#endif
#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR		4
#endif

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define BIT_ULL(n)		(1ULL << (n))
#define HPAGE_SIZE		(2UL << 20)

#define KSM_DIR			"/sys/kernel/mm/ksm/"
#define THP_DIR			"/sys/kernel/mm/transparent_hugepage/"
#define MEM_DIR			"/sys/devices/system/memory/"
#define CG_ROOT			"/sys/fs/cgroup"

#define MAX_SLOTS		12
#define MAX_PAGES		3072
#define SCAN_PAGES		10000
#define DEFAULT_TIMEOUT		180
#define DEFAULT_DURATION	60
#define OP_TIMEOUT		120

/* pagemap bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PM_PRESENT		BIT_ULL(63)
#define PM_SWAP			BIT_ULL(62)
#define PM_PFN_MASK		(BIT_ULL(55) - 1)

/* Seeds: the content of a page.  SEED_NONE: never written, reads as 0. */
#define SEED_NONE		0ULL
#define SEED_ZEROS		(~0ULL)		/* written with zeroes */

/* Per-page state the test process and the worker share. */
#define PF_MERGEABLE		0x01	/* in a VM_MERGEABLE vma */
#define PF_POISON		0x02	/* hwpoisoned: access raises SIGBUS */
#define PF_NOACCESS		0x04	/* PROT_NONE: not readable */
#define PF_MAYZERO		0x08	/* MADV_FREE'd: content or zeroes */
#define PF_LONE			0x10	/* may be a KSM page mapped only here */
#define PF_THPZERO		0x20	/* zeroes in a THP: a split maps the zero page */

enum result { RES_PASS, RES_FAIL, RES_SKIP };

/* Worker commands. */
enum op {
	OP_MAP = 1, OP_FILL, OP_VERIFY, OP_MADVISE, OP_MUNMAP, OP_MREMAP,
	OP_MPROTECT, OP_MLOCK, OP_STAT, OP_MOVE, OP_NODES, OP_INJECT,
	OP_FORK, OP_FORK_EXEC, OP_REAP, OP_EXIT, OP_CGROUP,
	OP_UFFD_REG, OP_UFFD_WP, OP_UFFD_WRITE, OP_STRESS, OP_READVISE, OP_CHURN,
};

struct stress_stats {
	long ops[16];
	long children;
	long child_fail;
	long moved;
	long move_err;
	long handovers;
};

enum stress_op {
	ST_WRITE, ST_VERIFY, ST_MERGE, ST_UNMERGE, ST_FORK, ST_EXIT,
	ST_MREMAP, ST_PAGEOUT, ST_MIGRATE, ST_DONTNEED, ST_REMAP, ST_COLD,
	ST_MPROTECT, NR_ST_OPS
};

static const char * const stress_names[NR_ST_OPS] = {
	"write", "verify", "merge", "unmerge", "fork", "exit", "mremap",
	"pageout", "migrate", "dontneed", "remap", "cold", "mprotect",
};

/* Memory shared by the test process and the worker of one slot. */
struct slot_shm {
	pid_t pid;
	long npages;
	long arg[8];
	long res[8];
	long verified;		/* pages verified so far */
	long sigbus;		/* expected SIGBUSes seen */
	char err[256];		/* the worker's first complaint */
	char path[256];		/* a string argument */
	struct stress_stats st;
	unsigned long addr[MAX_PAGES];	/* 0: not mapped */
	unsigned long long seed[MAX_PAGES];
	unsigned char flags[MAX_PAGES];
	int status[MAX_PAGES];		/* move_pages() results */
};

struct slot {
	int cmd_rd, cmd_wr;	/* commands: test -> worker */
	int rep_rd, rep_wr;	/* replies: worker -> test */
	int shm_fd;
	struct slot_shm *shm;
	bool used;		/* a worker runs in it */
	bool in_model;		/* counted by the model */
	bool dead;
};

struct msg {
	int op;
	long a[4];
};

/* What the counters must read, built from the seeds. */
struct expect {
	long shared;
	long sharing;
	long zero;
	long merging[MAX_SLOTS];
	long lone[MAX_SLOTS];
	long wzero[MAX_SLOTS];
	long zero_tol[MAX_SLOTS];	/* zero pages KSM may not have made */
};

static struct slot g_slot[MAX_SLOTS];
static int g_nr_slots;
static long page_size;
static unsigned long long g_seed;
static unsigned long long g_fresh;	/* fresh seeds of the test process */
static double g_deadline;
static int g_failed;
static long g_checks;
static int g_timeout = DEFAULT_TIMEOUT;
static int g_duration = DEFAULT_DURATION;
static int g_repeat = 1;		/* -r */
static bool g_skip_code;		/* -k: exit 4 if every test skipped */
static char *g_skip_reason;		/* shared with the driver */
static struct slot_shm *g_self;		/* worker side: own slot */
static int g_self_slot = -1;
static bool g_have_vmstat;		/* /proc/vmstat has event counters */
static unsigned long long g_zero_pfn;

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

static bool expect_eq(const char *what, long got, long want)
{
	g_checks++;
	if (got != want)
		fail("%s: got %ld, expected %ld", what, got, want);
	return got == want;
}

static bool expect_true(const char *what, bool cond)
{
	g_checks++;
	if (!cond)
		fail("%s", what);
	return cond;
}

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

static void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_skip_reason, 256, fmt, ap);
	va_end(ap);
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

/* Returns 0 or the errno the open or the write failed with. */
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

/*
 * Value of @key in a file of "key value" or "key: value kB" lines
 * (/proc/vmstat, memory.stat, /proc/meminfo, /proc/<pid>/status),
 * or -1 when the file or the key is missing.
 */
static long read_key(const char *path, const char *key)
{
	static char buf[16384];
	size_t klen = strlen(key);
	char *p;

	if (read_text(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) || (p[klen] != ' ' && p[klen] != ':'))
			continue;
		p += klen;
		p += strspn(p, ": \t");
		return strtol(p, NULL, 10);
	}
	return -1;
}

static long vm_event(const char *key)
{
	return read_key("/proc/vmstat", key);
}

/* ---------------------------------------------------------------- knobs */

static const char *ksm_path(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	return path;
}

static long ksm_get(const char *name)
{
	long v;
	int err = read_long(ksm_path(name), &v);

	if (err) {
		fail("cannot read %s: %s", name, strerror(-err));
		return -1;
	}
	return v;
}

static bool ksm_has(const char *name)
{
	return !access(ksm_path(name), F_OK);
}

static bool ksm_set(const char *name, long val)
{
	char buf[32];
	int err;

	snprintf(buf, sizeof(buf), "%ld", val);
	err = write_text(ksm_path(name), buf);
	if (err)
		fail("writing %s to %s: %s", buf, name, strerror(err));
	return !err;
}

/*
 * Everything the tests may change, saved once by the driver and written
 * back after each test.  The KSM knobs come last, "run" at the very end.
 */
static struct setting {
	const char *path;
	char val[64];
	bool saved;
} g_settings[] = {
	{ .path = "/proc/sys/kernel/numa_balancing" },
	{ .path = "/proc/sys/vm/compaction_proactiveness" },
	{ .path = "/proc/sys/vm/memory_failure_early_kill" },
	{ .path = THP_DIR "enabled" },
	{ .path = THP_DIR "defrag" },
	{ .path = KSM_DIR "advisor_mode" },
	{ .path = KSM_DIR "max_page_sharing" },
	{ .path = KSM_DIR "merge_across_nodes" },
	{ .path = KSM_DIR "use_zero_pages" },
	{ .path = KSM_DIR "smart_scan" },
	{ .path = KSM_DIR "pages_to_scan" },
	{ .path = KSM_DIR "sleep_millisecs" },
	{ .path = KSM_DIR "stable_node_chains_prune_millisecs" },
	{ .path = KSM_DIR "run" },
};

/* "always [madvise] never" reads back as "madvise". */
static void bracketed(char *s)
{
	char *b = strchr(s, '['), *e;

	if (b) {
		e = strchr(b, ']');
		if (e)
			*e = '\0';
		memmove(s, b + 1, strlen(b + 1) + 1);
	}
	s[strcspn(s, "\n")] = '\0';
}

static void settings_save(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(g_settings); i++) {
		struct setting *s = &g_settings[i];

		s->saved = read_text(s->path, s->val, sizeof(s->val)) > 0;
		if (s->saved)
			bracketed(s->val);
	}
}

/* Returns false if something could not be put back. */
static bool settings_restore(void)
{
	char cur[64];
	bool ok = true;
	size_t i;
	int err;

	for (i = 0; i < ARRAY_SIZE(g_settings); i++) {
		struct setting *s = &g_settings[i];

		if (!s->saved)
			continue;
		if (read_text(s->path, cur, sizeof(cur)) > 0) {
			bracketed(cur);
			if (!strcmp(cur, s->val))
				continue;
		}
		err = write_text(s->path, s->val);
		if (err == EBUSY) {
			/* KSM pages left: unmerge them and try again */
			write_text(KSM_DIR "run", "2");
			err = write_text(s->path, s->val);
		}
		if (err) {
			out("# cannot restore %s to %s: %s", s->path, s->val,
			    strerror(err));
			ok = false;
		}
	}
	return ok;
}

static bool sysctl_set(const char *path, const char *val)
{
	int err = write_text(path, val);

	if (err)
		diag("cannot write %s to %s: %s", val, path, strerror(err));
	return !err;
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

/* A seed no other caller gets: @tag and @n name it. */
static unsigned long long make_seed(unsigned long long tag, unsigned long long n)
{
	unsigned long long s = mix64(g_seed ^ mix64(tag << 40 ^ n));

	return s == SEED_NONE || s == SEED_ZEROS ? 1 : s;
}

static unsigned long long fresh_seed(void)
{
	return make_seed(0xf00, ++g_fresh);
}

static inline unsigned long long page_word(unsigned long long seed, long i)
{
	if (seed == SEED_NONE || seed == SEED_ZEROS)
		return 0;
	return mix64(seed + (unsigned long long)i * 0x9e3779b97f4a7c15ULL);
}

static void fill_page(unsigned long long *p, unsigned long long seed)
{
	long i, words = page_size / sizeof(*p);

	for (i = 0; i < words; i++)
		p[i] = page_word(seed, i);
}

/* Returns the index of the first wrong word, or -1. */
static long check_page(const unsigned long long *p, unsigned long long seed)
{
	long i, words = page_size / sizeof(*p);

	for (i = 0; i < words; i++)
		if (p[i] != page_word(seed, i))
			return i;
	return -1;
}

/* ---------------------------------------------------------------- procfs */

static int pagemap_fd(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	return open(path, O_RDONLY);
}

/* Pagemap entries of the pages of @s (0 for unmapped pages), in runs. */
static int slot_pagemap(struct slot_shm *s, unsigned long long *ent)
{
	long i = 0, j, n = s->npages;
	int fd = pagemap_fd(s->pid);
	ssize_t want;

	if (fd < 0)
		return -errno;
	while (i < n) {
		if (!s->addr[i]) {
			ent[i++] = 0;
			continue;
		}
		for (j = i + 1; j < n && s->addr[j] == s->addr[j - 1] + page_size; j++)
			;
		want = (j - i) * sizeof(*ent);
		if (pread(fd, ent + i, want, s->addr[i] / page_size * 8) != want) {
			close(fd);
			return -EIO;
		}
		i = j;
	}
	close(fd);
	return 0;
}

static long pfn_count(unsigned long long pfn)
{
	static int fd = -1;
	unsigned long long c = 0;

	if (fd < 0)
		fd = open("/proc/kpagecount", O_RDONLY);
	if (pread(fd, &c, sizeof(c), pfn * sizeof(c)) != sizeof(c))
		return -1;
	return c;
}

static unsigned long long pfn_flags(unsigned long long pfn)
{
	static int fd = -1;
	unsigned long long f = 0;

	if (fd < 0)
		fd = open("/proc/kpageflags", O_RDONLY);
	if (pread(fd, &f, sizeof(f), pfn * sizeof(f)) != sizeof(f))
		return 0;
	return f;
}

/* Counters of /proc/<pid>/ksm_stat and ksm_merging_pages. */
struct pstat {
	long merging;		/* ksm_merging_pages file */
	long stat_merging;	/* ksm_merging_pages line of ksm_stat */
	long zero;		/* ksm_zero_pages line of ksm_stat, or -1 */
};

static int read_pstat(const char *dir, struct pstat *ps)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/ksm_merging_pages", dir);
	if (read_long(path, &ps->merging))
		return -1;
	snprintf(path, sizeof(path), "%s/ksm_stat", dir);
	ps->stat_merging = read_key(path, "ksm_merging_pages");
	ps->zero = read_key(path, "ksm_zero_pages");
	return 0;
}

static int read_pid_stat(pid_t pid, struct pstat *ps)
{
	char dir[32];

	snprintf(dir, sizeof(dir), "/proc/%d", pid);
	return read_pstat(dir, ps);
}

static int nr_memory_nodes(void)
{
	char buf[64];
	int a, b;

	if (read_text("/sys/devices/system/node/has_memory", buf, sizeof(buf)) < 0)
		return 1;
	if (sscanf(buf, "%d-%d", &a, &b) == 2)
		return b - a + 1;
	return strchr(buf, ',') ? 2 : 1;
}

static long sys_move_pages(pid_t pid, unsigned long n, void **pages,
			   const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, pid, n, pages, nodes, status, flags);
}

static long sys_mbind(void *addr, unsigned long len, int mode,
		      const unsigned long *mask, unsigned long maxnode)
{
	return syscall(SYS_mbind, addr, len, mode, mask, maxnode, 0);
}

static long sys_migrate_pages(pid_t pid, unsigned long maxnode,
			      const unsigned long *from, const unsigned long *to)
{
	return syscall(SYS_migrate_pages, pid, maxnode, from, to);
}

/*
 * lru_add_drain_all() from userspace: migrate_pages() drains every CPU's
 * LRU batches before it looks for pages to move (none, from == to here).
 */
static void lru_drain_all(void)
{
	unsigned long mask = 1;

	sys_migrate_pages(getpid(), 8 * sizeof(mask), &mask, &mask);
}

/* The frame of the shared zero page, as pagemap reports it. */
static void find_zero_pfn(void)
{
	unsigned long long ent = 0;
	char *p;
	int fd;

	p = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	(void)__atomic_load_n(p, __ATOMIC_RELAXED);
	fd = pagemap_fd(getpid());
	if (fd >= 0 && pread(fd, &ent, 8, (unsigned long)p / page_size * 8) == 8 &&
	    (ent & PM_PRESENT))
		g_zero_pfn = ent & PM_PFN_MASK;
	if (fd >= 0)
		close(fd);
	munmap(p, page_size);
}

/* ---------------------------------------------------------------- worker */

static sigjmp_buf g_jb;
static int g_jb_armed;
static unsigned long g_bus_addr;
static int g_bus_code;
static int g_cmd_rd = -1, g_rep_wr = -1;

/* Records the worker's first complaint for the test process to print. */
static void werr(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out("# worker %d (pid %d): %s", g_self_slot, getpid(), buf);
	if (!g_self->err[0])
		snprintf(g_self->err, sizeof(g_self->err), "%s", buf);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	g_bus_addr = (unsigned long)si->si_addr;
	g_bus_code = si->si_code;
	if (__atomic_load_n(&g_jb_armed, __ATOMIC_RELAXED)) {
		__atomic_store_n(&g_jb_armed, 0, __ATOMIC_RELAXED);
		siglongjmp(g_jb, 1);
	}
	_exit(70);
}

static void arm(void)
{
	__atomic_store_n(&g_jb_armed, 1, __ATOMIC_RELAXED);
}

static void disarm(void)
{
	__atomic_store_n(&g_jb_armed, 0, __ATOMIC_RELAXED);
}

/* A SIGBUS on page @i: expected only on a hwpoisoned page, at its address. */
static bool sigbus_ok(struct slot_shm *s, long i)
{
	if (!(s->flags[i] & PF_POISON)) {
		werr("page %ld at %#lx: SIGBUS (code %d, address %#lx)", i,
		     s->addr[i], g_bus_code, g_bus_addr);
		return false;
	}
	if ((g_bus_addr & ~(page_size - 1)) != s->addr[i] ||
	    g_bus_code != BUS_MCEERR_AR) {
		werr("page %ld at %#lx: SIGBUS code %d at %#lx, expected code %d here",
		     i, s->addr[i], g_bus_code, g_bus_addr, BUS_MCEERR_AR);
		return false;
	}
	s->sigbus++;
	s->verified++;
	return true;
}

/*
 * Reads every byte of page @i and compares it with its seed.  A poisoned
 * page must raise SIGBUS instead; a MADV_FREE'd one may read as zeroes.
 */
static bool verify_one(struct slot_shm *s, long i)
{
	const unsigned long long *p = (void *)s->addr[i];
	long bad;

	if (!s->addr[i] || (s->flags[i] & PF_NOACCESS))
		return true;
	arm();
	if (sigsetjmp(g_jb, 1))
		return sigbus_ok(s, i);
	bad = check_page(p, s->seed[i]);
	disarm();
	if (s->flags[i] & PF_POISON) {
		werr("page %ld at %#lx: hwpoisoned but readable", i, s->addr[i]);
		return false;
	}
	if (bad >= 0 && (s->flags[i] & PF_MAYZERO) && check_page(p, SEED_NONE) < 0) {
		s->seed[i] = SEED_NONE;
		bad = -1;
	}
	s->flags[i] &= ~PF_MAYZERO;
	if (bad >= 0) {
		werr("page %ld at %#lx (seed %#llx): word %ld is %#llx, expected %#llx",
		     i, s->addr[i], s->seed[i], bad, p[bad],
		     page_word(s->seed[i], bad));
		return false;
	}
	s->verified++;
	return true;
}

static bool fill_one(struct slot_shm *s, long i)
{
	if (!s->addr[i])
		return true;
	arm();
	if (sigsetjmp(g_jb, 1)) {
		werr("page %ld at %#lx: SIGBUS on write (code %d)", i, s->addr[i],
		     g_bus_code);
		return false;
	}
	fill_page((void *)s->addr[i], s->seed[i]);
	disarm();
	s->flags[i] &= ~(PF_POISON | PF_MAYZERO | PF_LONE | PF_THPZERO);
	return true;
}

static long w_fill(struct slot_shm *s, long lo, long hi)
{
	long i, bad = 0;

	for (i = lo; i < hi; i++)
		bad += !fill_one(s, i);
	return bad;
}

static long w_verify(struct slot_shm *s, long lo, long hi)
{
	long i, bad = 0;

	for (i = lo; i < hi; i++)
		bad += !verify_one(s, i);
	return bad;
}

/* Maps @n pages at the end of the worker's page list; returns the index. */
static long w_map(struct slot_shm *s, long n, long thp, long node, long mode)
{
	unsigned long len = n * page_size, extra = thp ? HPAGE_SIZE : 0;
	unsigned long mask = 1UL << (node < 0 ? 0 : node);
	char *p, *start;
	long i, first = s->npages;

	if (first + n > MAX_PAGES)
		return -E2BIG;
	p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	start = p;
	if (thp) {
		start = (char *)(((unsigned long)p + HPAGE_SIZE - 1) & ~(HPAGE_SIZE - 1));
		if (start > p)
			munmap(p, start - p);
		if (p + len + extra > start + len)
			munmap(start + len, p + len + extra - (start + len));
	}
	if (node >= 0 && sys_mbind(start, len, mode, &mask, 8 * sizeof(mask)))
		return -errno;
	madvise(start, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (i = 0; i < n; i++) {
		s->addr[first + i] = (unsigned long)start + i * page_size;
		s->seed[first + i] = SEED_NONE;
		s->flags[first + i] = 0;
	}
	s->npages = first + n;
	return first;
}

/* Calls @fn on each run of contiguous mapped pages in [lo, hi). */
static int for_runs(struct slot_shm *s, long lo, long hi,
		    int (*fn)(struct slot_shm *s, long lo, long hi, long arg),
		    long arg)
{
	long i = lo, j;
	int err;

	while (i < hi) {
		if (!s->addr[i]) {
			i++;
			continue;
		}
		for (j = i + 1; j < hi && s->addr[j] == s->addr[j - 1] + page_size; j++)
			;
		err = fn(s, i, j, arg);
		if (err)
			return err;
		i = j;
	}
	return 0;
}

static int run_madvise(struct slot_shm *s, long lo, long hi, long advice)
{
	long i;

	if (madvise((void *)s->addr[lo], (hi - lo) * page_size, advice))
		return -errno;
	for (i = lo; i < hi; i++) {
		switch (advice) {
		case MADV_MERGEABLE:
			s->flags[i] |= PF_MERGEABLE;
			break;
		case MADV_UNMERGEABLE:
			s->flags[i] &= ~(PF_MERGEABLE | PF_LONE);
			break;
		case MADV_DONTNEED:
			s->seed[i] = SEED_NONE;
			s->flags[i] &= ~(PF_POISON | PF_MAYZERO | PF_LONE);
			break;
		case MADV_FREE:
			if (s->seed[i] != SEED_NONE)
				s->flags[i] |= PF_MAYZERO;
			break;
		}
	}
	return 0;
}

static int run_munmap(struct slot_shm *s, long lo, long hi, long unused)
{
	long i;

	if (munmap((void *)s->addr[lo], (hi - lo) * page_size))
		return -errno;
	for (i = lo; i < hi; i++) {
		s->addr[i] = 0;
		s->seed[i] = SEED_NONE;
		s->flags[i] = 0;
	}
	return 0;
}

static int run_mprotect(struct slot_shm *s, long lo, long hi, long prot)
{
	long i;

	if (mprotect((void *)s->addr[lo], (hi - lo) * page_size, prot))
		return -errno;
	for (i = lo; i < hi; i++) {
		if (prot == PROT_NONE)
			s->flags[i] |= PF_NOACCESS;
		else
			s->flags[i] &= ~PF_NOACCESS;
	}
	return 0;
}

static int run_mlock(struct slot_shm *s, long lo, long hi, long on)
{
	void *p = (void *)s->addr[lo];
	size_t len = (hi - lo) * page_size;

	if (on ? mlock(p, len) : munlock(p, len))
		return -errno;
	return 0;
}

static bool contiguous(struct slot_shm *s, long lo, long hi)
{
	long i;

	for (i = lo; i < hi; i++)
		if (!s->addr[i] || (i > lo && s->addr[i] != s->addr[i - 1] + page_size))
			return false;
	return hi > lo;
}

/*
 * Moves pages [lo, hi) elsewhere with MREMAP_MAYMOVE | MREMAP_FIXED, or
 * with @grow > 0 makes them @grow pages longer (MREMAP_MAYMOVE): the new
 * pages go to the end of the page list.  Returns 0 or -errno.
 */
static long w_mremap(struct slot_shm *s, long lo, long hi, long grow)
{
	size_t len = (hi - lo) * page_size, nlen = len + grow * page_size;
	void *old, *to, *r;
	long i;

	if (!contiguous(s, lo, hi) || s->npages + grow > MAX_PAGES)
		return -EINVAL;
	old = (void *)s->addr[lo];
	if (grow) {
		r = mremap(old, len, nlen, MREMAP_MAYMOVE);
	} else {
		to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			  MAP_NORESERVE, -1, 0);
		if (to == MAP_FAILED)
			return -errno;
		r = mremap(old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (r == MAP_FAILED) {
			int err = errno;

			munmap(to, len);
			return -err;
		}
	}
	if (r == MAP_FAILED)
		return -errno;
	for (i = lo; i < hi; i++) {
		s->addr[i] = (unsigned long)r + (i - lo) * page_size;
		s->flags[i] &= ~PF_LONE;
	}
	for (i = 0; i < grow; i++) {
		s->addr[s->npages] = (unsigned long)r + len + i * page_size;
		s->seed[s->npages] = SEED_NONE;
		s->flags[s->npages] = s->flags[hi - 1] & PF_MERGEABLE;
		s->npages++;
	}
	s->res[0] = (long)r;
	return 0;
}

static long w_stat(struct slot_shm *s)
{
	struct pstat ps;

	if (read_pstat("/proc/self", &ps))
		return -errno;
	s->res[0] = ps.merging;
	s->res[1] = ps.stat_merging;
	s->res[2] = ps.zero;
	return 0;
}

#define STATUS_UNSET	INT_MIN

/*
 * move_pages() on [lo, hi) to @node (or only ask where, @node < 0).
 * Returns the number of pages not moved, or -errno; status[] holds each
 * page's result (STATUS_UNSET where the kernel did not get to it).
 */
static long w_move(struct slot_shm *s, long lo, long hi, long node, long flags)
{
	static void *pages[MAX_PAGES];
	static int nodes[MAX_PAGES];
	long i, n = 0;

	long ret;

	for (i = lo; i < hi; i++) {
		s->status[i] = STATUS_UNSET;
		if (!s->addr[i])
			continue;
		pages[n] = (void *)s->addr[i];
		nodes[n++] = node;
	}
	ret = sys_move_pages(0, n, pages, node < 0 ? NULL : nodes, s->status + lo, flags);
	if (ret < 0)
		return -errno;
	/* status[] is packed: spread it back over the unmapped holes */
	for (i = hi - 1; i >= lo; i--)
		s->status[i] = s->addr[i] ? s->status[lo + --n] : -ENOENT;
	return ret;	/* pages that could not be moved */
}

/* madvise(MADV_HWPOISON or MADV_SOFT_OFFLINE) on page @i, SIGBUS-guarded. */
static long w_inject(struct slot_shm *s, long i, long advice)
{
	int ret;

	s->res[1] = 0;
	s->res[2] = 0;
	arm();
	if (sigsetjmp(g_jb, 1)) {
		s->res[1] = 1;
		s->res[2] = g_bus_code;
		s->res[3] = g_bus_addr;
		return 0;
	}
	ret = madvise((void *)s->addr[i], page_size, advice);
	disarm();
	return ret ? -errno : 0;
}

static void worker_loop(void);

/* In a forked child: become the worker of spare slot @k. */
static void become_slot(int k)
{
	struct slot_shm *to = g_slot[k].shm;

	to->pid = getpid();
	g_self = to;
	g_self_slot = k;
	g_cmd_rd = g_slot[k].cmd_rd;
	g_rep_wr = g_slot[k].rep_wr;
	worker_loop();
}

static long w_fork(struct slot_shm *s, long k)
{
	struct slot_shm *to = g_slot[k].shm;
	pid_t pid;

	/* the child's shadow, complete before it runs */
	to->npages = s->npages;
	memcpy(to->addr, s->addr, sizeof(to->addr));
	memcpy(to->seed, s->seed, sizeof(to->seed));
	memcpy(to->flags, s->flags, sizeof(to->flags));
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid)
		become_slot(k);
	to->pid = pid;
	return pid;
}

/*
 * Forks a child that lets ksmd scan it for @scans full scans (so that it
 * has rmap_items of its own) and then execs this program as the worker of
 * spare slot @k.
 */
static long w_fork_exec(struct slot_shm *s, long k, long scans)
{
	char a[5][32], *argv[8];
	long start, v;
	double until;
	pid_t pid;
	int i;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid)
		return pid;
	until = now() + 60;
	if (!read_long(ksm_path("full_scans"), &start))
		while (!read_long(ksm_path("full_scans"), &v) && v < start + scans &&
		       now() < until)
			sleep_ms(20);
	snprintf(a[0], sizeof(a[0]), "%ld", k);
	snprintf(a[1], sizeof(a[1]), "%d", g_slot[k].cmd_rd);
	snprintf(a[2], sizeof(a[2]), "%d", g_slot[k].rep_wr);
	snprintf(a[3], sizeof(a[3]), "%d", g_slot[k].shm_fd);
	snprintf(a[4], sizeof(a[4]), "%llx", g_seed);
	argv[0] = "ksm_mm_tests";
	argv[1] = "--worker";
	for (i = 0; i < 5; i++)
		argv[2 + i] = a[i];
	argv[7] = NULL;
	execv("/proc/self/exe", argv);
	werr("execv: %s", strerror(errno));
	_exit(1);
}

/* Reaps one child within @ms milliseconds; res[0] is its pid. */
static long w_reap(struct slot_shm *s, long ms)
{
	double until = now() + ms / 1000.0;
	int status;
	pid_t pid;

	do {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			s->res[0] = pid;
			return status;
		}
		if (pid < 0)
			return -errno;
		sleep_ms(10);
	} while (now() < until);
	return -ETIMEDOUT;
}

static long w_cgroup(struct slot_shm *s)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", getpid());
	return -write_text(s->path, pid);
}

/* ------------------------------------------------ worker: userfaultfd */

static int g_uffd = -1;
static long g_uffd_events, g_uffd_in_range;
static unsigned long g_uffd_lo, g_uffd_hi;
static int g_uffd_stop;

static int uffd_protect(unsigned long start, unsigned long len, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = start, .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(g_uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

static long w_uffd_reg(struct slot_shm *s, long lo, long hi)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };

	if (!contiguous(s, lo, hi))
		return -EINVAL;
	if (g_uffd < 0) {
		g_uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (g_uffd < 0)
			return -EOPNOTSUPP;	/* not built, or not allowed */
		if (ioctl(g_uffd, UFFDIO_API, &api))
			return -errno;
		s->res[0] = api.features;
		if (!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
			return -EOPNOTSUPP;
	}
	reg.range.start = s->addr[lo];
	reg.range.len = (hi - lo) * page_size;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(g_uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT)))
		return -EOPNOTSUPP;
	return 0;
}

static long w_uffd_wp(struct slot_shm *s, long lo, long hi, long on)
{
	if (!contiguous(s, lo, hi))
		return -EINVAL;
	return uffd_protect(s->addr[lo], (hi - lo) * page_size, on);
}

/* Resolves write-protect faults: counts them and unprotects the page. */
static void *uffd_handler(void *unused)
{
	struct pollfd pfd = { .fd = g_uffd, .events = POLLIN };
	struct uffd_msg m;
	unsigned long a;

	while (!__atomic_load_n(&g_uffd_stop, __ATOMIC_ACQUIRE)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (read(g_uffd, &m, sizeof(m)) != sizeof(m))
			continue;
		if (m.event != UFFD_EVENT_PAGEFAULT ||
		    !(m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
			continue;
		a = m.arg.pagefault.address & ~(page_size - 1);
		__atomic_add_fetch(&g_uffd_events, 1, __ATOMIC_RELAXED);
		if (a >= g_uffd_lo && a < g_uffd_hi)
			__atomic_add_fetch(&g_uffd_in_range, 1, __ATOMIC_RELAXED);
		uffd_protect(a, page_size, false);
	}
	return NULL;
}

/*
 * Writes pages [lo, hi) (their seeds were changed by the test process)
 * while a thread resolves the write-protect faults.  res[0] counts the
 * faults, res[1] those on pages of [lo, hi).
 */
static long w_uffd_write(struct slot_shm *s, long lo, long hi)
{
	pthread_t t;
	long bad;

	if (!contiguous(s, lo, hi))
		return -EINVAL;
	g_uffd_events = 0;
	g_uffd_in_range = 0;
	g_uffd_lo = s->addr[lo];
	g_uffd_hi = s->addr[hi - 1] + page_size;
	g_uffd_stop = 0;
	if (pthread_create(&t, NULL, uffd_handler, NULL))
		return -EAGAIN;
	bad = w_fill(s, lo, hi);
	__atomic_store_n(&g_uffd_stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	s->res[0] = g_uffd_events;
	s->res[1] = g_uffd_in_range;
	return bad;
}

/* ------------------------------------------------ worker: stress */

#define ST_CHUNKS	8
#define ST_CHUNK	48
#define ST_POOL		96
#define ST_LOCAL	8
#define ST_MAX_KIDS	2

static unsigned long long g_rnd;

static unsigned long long rnd(void)
{
	g_rnd ^= g_rnd >> 12;
	g_rnd ^= g_rnd << 25;
	g_rnd ^= g_rnd >> 27;
	return g_rnd * 0x2545f4914f6cdd1dULL;
}

static long rnd_below(long n)
{
	return n > 0 ? (long)(rnd() % n) : 0;
}

static struct slot_shm *g_shared;	/* the slot's shared page (stress) */
static bool g_is_kid;
static int g_kids;

static unsigned long long stress_seed(struct slot_shm *s)
{
	long r = rnd_below(100);

	if (r < 45)
		return make_seed(0x50, rnd_below(ST_POOL));
	if (r < 55)
		return make_seed(0x51, g_self_slot * 16 + rnd_below(ST_LOCAL));
	if (g_is_kid)
		return make_seed(0x53, (unsigned long long)getpid() << 24 | rnd_below(1 << 24));
	return make_seed(0x52, (unsigned long long)g_self_slot << 40 | ++s->arg[7]);
}

/* A random run of 1..@max pages inside one chunk. */
static void pick_run(long max, long *lo, long *hi)
{
	long c = rnd_below(ST_CHUNKS), len = 1 + rnd_below(max);
	long off = rnd_below(ST_CHUNK - len + 1);

	*lo = c * ST_CHUNK + off;
	*hi = *lo + len;
}

static long stress_write(struct slot_shm *s)
{
	long lo, hi, i, bad = 0;

	pick_run(8, &lo, &hi);
	for (i = lo; i < hi; i++) {
		if (s->flags[i] & PF_NOACCESS)
			continue;
		s->seed[i] = stress_seed(s);
		bad += !fill_one(s, i);
	}
	return bad;
}

static long stress_migrate(struct slot_shm *s, int nodes)
{
	long lo, hi, i, err;
	int node = rnd_below(nodes);

	pick_run(16, &lo, &hi);
	err = w_move(s, lo, hi, node, MPOL_MF_MOVE_ALL);
	if (err)
		return 0;
	for (i = lo; i < hi; i++) {
		if (s->status[i] == node)
			__atomic_add_fetch(&g_shared->st.moved, 1, __ATOMIC_RELAXED);
		else if (s->status[i] < 0)
			__atomic_add_fetch(&g_shared->st.move_err, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

static long stress_remap(struct slot_shm *s)
{
	long c = rnd_below(ST_CHUNKS), lo = c * ST_CHUNK, i;
	char *p;

	if (for_runs(s, lo, lo + ST_CHUNK, run_munmap, 0))
		return 1;
	p = mmap(NULL, ST_CHUNK * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		werr("mmap: %s", strerror(errno));
		return 1;
	}
	madvise(p, ST_CHUNK * page_size, MADV_NOHUGEPAGE);
	for (i = 0; i < ST_CHUNK; i++)
		s->addr[lo + i] = (unsigned long)p + i * page_size;
	return 0;
}

static long stress_mprotect(struct slot_shm *s)
{
	long lo, hi, bad;

	pick_run(16, &lo, &hi);
	if (for_runs(s, lo, hi, run_mprotect, PROT_READ))
		return 0;
	bad = w_verify(s, lo, hi);
	for_runs(s, lo, hi, run_mprotect, PROT_READ | PROT_WRITE);
	return bad;
}

static long stress_step(struct slot_shm *s, int nodes);

/*
 * A short-lived child: checks and writes its private copy of the shadow
 * (taken by the parent before the fork), then exits.
 */
static void stress_kid(struct slot_shm *copy)
{
	long bad = 0, i, steps = 4 + rnd_below(16), verified0 = copy->verified;

	g_self = copy;
	g_is_kid = true;
	g_kids = 0;
	g_rnd ^= mix64(getpid());
	bad += w_verify(copy, 0, copy->npages);
	for (i = 0; i < steps; i++)
		bad += stress_step(copy, 1);
	bad += w_verify(copy, 0, copy->npages);
	__atomic_add_fetch(&g_shared->verified, copy->verified - verified0, __ATOMIC_RELAXED);
	if (bad)
		__atomic_add_fetch(&g_shared->st.child_fail, 1, __ATOMIC_RELAXED);
	_exit(bad ? 1 : 0);
}

static long stress_fork(struct slot_shm *s)
{
	struct slot_shm *copy;
	pid_t pid;

	while (g_kids && waitpid(-1, NULL, WNOHANG) > 0)
		g_kids--;
	if (g_is_kid || g_kids >= ST_MAX_KIDS)
		return 0;
	/* the shadow is shared memory the parent goes on changing: copy it */
	copy = malloc(sizeof(*copy));
	if (!copy)
		return 0;
	memcpy(copy, s, sizeof(*copy));
	pid = fork();
	if (!pid)
		stress_kid(copy);
	free(copy);
	if (pid < 0)
		return 0;
	g_kids++;
	__atomic_add_fetch(&g_shared->st.children, 1, __ATOMIC_RELAXED);
	return 0;
}

/*
 * The worker process exits and a child carries on in its place with the
 * same pipes and memory: the old mm goes away with its KSM state while the
 * child's copy (COW and KSM pages shared with it) lives on.
 */
static long stress_handover(struct slot_shm *s)
{
	long bad;
	pid_t pid;

	if (g_is_kid)
		return 0;
	bad = w_verify(s, 0, s->npages);
	pid = fork();
	if (pid < 0)
		return bad;
	if (pid) {
		s->pid = pid;
		_exit(0);
	}
	g_kids = 0;
	s->st.handovers++;
	return bad;
}

static long stress_step(struct slot_shm *s, int nodes)
{
	static const unsigned char weight[NR_ST_OPS] = {
		[ST_WRITE] = 30, [ST_VERIFY] = 8, [ST_MERGE] = 8,
		[ST_UNMERGE] = 1, [ST_FORK] = 3, [ST_EXIT] = 1,
		[ST_MREMAP] = 6, [ST_PAGEOUT] = 8, [ST_MIGRATE] = 8,
		[ST_DONTNEED] = 3, [ST_REMAP] = 2, [ST_COLD] = 2,
		[ST_MPROTECT] = 2,
	};
	long r = rnd_below(82), lo, hi, c;
	int op = 0;

	while (r >= weight[op])
		r -= weight[op++];
	if (!g_is_kid)
		s->st.ops[op]++;
	switch (op) {
	case ST_WRITE:
		return stress_write(s);
	case ST_VERIFY:
		c = rnd_below(ST_CHUNKS);
		return w_verify(s, c * ST_CHUNK, (c + 1) * ST_CHUNK);
	case ST_MERGE:
	case ST_UNMERGE:
	case ST_PAGEOUT:
	case ST_DONTNEED:
	case ST_COLD:
		pick_run(ST_CHUNK, &lo, &hi);
		for_runs(s, lo, hi, run_madvise,
			 op == ST_MERGE ? MADV_MERGEABLE :
			 op == ST_UNMERGE ? MADV_UNMERGEABLE :
			 op == ST_PAGEOUT ? MADV_PAGEOUT :
			 op == ST_DONTNEED ? MADV_DONTNEED : MADV_COLD);
		return 0;
	case ST_FORK:
		return stress_fork(s);
	case ST_EXIT:
		return stress_handover(s);
	case ST_MREMAP:
		pick_run(ST_CHUNK, &lo, &hi);
		w_mremap(s, lo, hi, 0);
		return 0;
	case ST_MIGRATE:
		return stress_migrate(s, nodes);
	case ST_REMAP:
		return stress_remap(s);
	default:
		return stress_mprotect(s);
	}
}

/* Maps the chunks, then random steps until CLOCK_MONOTONIC reaches @end_ms. */
static long w_stress(struct slot_shm *s, long end_ms, long nodes)
{
	long bad = 0, c, i;

	g_shared = s;
	g_rnd = mix64(g_seed ^ getpid()) | 1;
	if (!s->npages) {
		for (c = 0; c < ST_CHUNKS; c++)
			if (w_map(s, ST_CHUNK, 0, -1, 0) < 0)
				return -ENOMEM;
		for (i = 0; i < s->npages; i++)
			s->seed[i] = stress_seed(s);
		bad += w_fill(s, 0, s->npages);
		for_runs(s, 0, s->npages, run_madvise, MADV_MERGEABLE);
	}
	while (now() * 1000 < end_ms)
		bad += stress_step(s, nodes);
	for (c = 0; c < 500 && g_kids; c++) {
		if (waitpid(-1, NULL, WNOHANG) > 0)
			g_kids--;
		else
			sleep_ms(20);
	}
	bad += w_verify(s, 0, s->npages);
	return bad;
}

/*
 * Until CLOCK_MONOTONIC reaches @end_ms, keeps two children alive, each
 * checking a few pages of its copy and exiting after a moment: a steady
 * stream of new mms that ksmd must scan.  Returns the children's failures.
 */
static long w_churn(struct slot_shm *s, long end_ms)
{
	int kids = 0, status;
	long bad = 0, i, forks = 0;
	pid_t pid;

	g_rnd = mix64(g_seed ^ getpid()) | 1;
	while (now() * 1000 < end_ms || kids) {
		while (kids && (pid = waitpid(-1, &status, WNOHANG)) > 0) {
			kids--;
			bad += !WIFEXITED(status) || WEXITSTATUS(status);
		}
		if (kids < 2 && now() * 1000 < end_ms) {
			pid = fork();
			if (!pid) {
				for (i = 0; i < 8; i++)
					if (!verify_one(s, rnd_below(s->npages)))
						_exit(1);
				sleep_ms(100 + rnd_below(200));
				_exit(0);
			}
			kids += pid > 0;
			forks += pid > 0;
		}
		sleep_ms(10);
	}
	s->res[0] = forks;
	return bad;
}

/* ------------------------------------------------ worker: main loop */

/* MADV_MERGEABLE again on the pages that are mergeable (after run=2). */
static long w_readvise(struct slot_shm *s)
{
	long i = 0, j;

	while (i < s->npages) {
		if (!s->addr[i] || !(s->flags[i] & PF_MERGEABLE)) {
			i++;
			continue;
		}
		for (j = i + 1; j < s->npages && (s->flags[j] & PF_MERGEABLE) &&
		     s->addr[j] == s->addr[j - 1] + page_size; j++)
			;
		if (madvise((void *)s->addr[i], (j - i) * page_size, MADV_MERGEABLE))
			return -errno;
		i = j;
	}
	return 0;
}

static long dispatch(struct slot_shm *s, const struct msg *m)
{
	const long *a = m->a;

	switch (m->op) {
	case OP_MAP:
		return w_map(s, a[0], a[1], a[2], a[3]);
	case OP_FILL:
		return w_fill(s, a[0], a[1]);
	case OP_VERIFY:
		return w_verify(s, a[0], a[1]);
	case OP_MADVISE:
		return for_runs(s, a[0], a[1], run_madvise, a[2]);
	case OP_MUNMAP:
		return for_runs(s, a[0], a[1], run_munmap, 0);
	case OP_MREMAP:
		return w_mremap(s, a[0], a[1], a[2]);
	case OP_MPROTECT:
		return for_runs(s, a[0], a[1], run_mprotect, a[2]);
	case OP_MLOCK:
		return for_runs(s, a[0], a[1], run_mlock, a[2]);
	case OP_STAT:
		return w_stat(s);
	case OP_MOVE:
		return w_move(s, a[0], a[1], a[2], a[3]);
	case OP_NODES:
		return w_move(s, a[0], a[1], -1, 0);
	case OP_INJECT:
		return w_inject(s, a[0], a[1]);
	case OP_FORK:
		return w_fork(s, a[0]);
	case OP_FORK_EXEC:
		return w_fork_exec(s, a[0], a[1]);
	case OP_REAP:
		return w_reap(s, a[0]);
	case OP_CGROUP:
		return w_cgroup(s);
	case OP_UFFD_REG:
		return w_uffd_reg(s, a[0], a[1]);
	case OP_UFFD_WP:
		return w_uffd_wp(s, a[0], a[1], a[2]);
	case OP_UFFD_WRITE:
		return w_uffd_write(s, a[0], a[1]);
	case OP_STRESS:
		return w_stress(s, a[0], a[1]);
	case OP_READVISE:
		return w_readvise(s);
	case OP_CHURN:
		return w_churn(s, a[0]);
	}
	return -EINVAL;
}

static void worker_loop(void)
{
	struct msg m;
	long r;

	while (read(g_cmd_rd, &m, sizeof(m)) == sizeof(m)) {
		if (m.op == OP_EXIT) {
			r = 0;
			if (write(g_rep_wr, &r, sizeof(r)) != sizeof(r))
				break;
			break;
		}
		r = dispatch(g_self, &m);
		if (write(g_rep_wr, &r, sizeof(r)) != sizeof(r))
			break;
	}
	_exit(0);
}

static void worker_signals(void)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void worker_main(int k)
{
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < g_nr_slots; i++) {
		close(g_slot[i].cmd_wr);
		close(g_slot[i].rep_rd);
	}
	g_self = g_slot[k].shm;
	g_self_slot = k;
	g_self->pid = getpid();
	g_cmd_rd = g_slot[k].cmd_rd;
	g_rep_wr = g_slot[k].rep_wr;
	worker_signals();
	worker_loop();
}

/* Entry of a worker started by execve(): --worker slot cmd rep shm seed */
static int exec_worker_main(char **argv)
{
	int k = atoi(argv[2]);

	g_cmd_rd = atoi(argv[3]);
	g_rep_wr = atoi(argv[4]);
	g_seed = strtoull(argv[6], NULL, 16);
	g_self = mmap(NULL, sizeof(*g_self), PROT_READ | PROT_WRITE, MAP_SHARED,
		      atoi(argv[5]), 0);
	if (g_self == MAP_FAILED)
		return 1;
	g_self_slot = k;
	g_self->npages = 0;
	g_self->pid = getpid();
	worker_signals();
	worker_loop();
	return 0;
}

/* ---------------------------------------------------------------- slots */

static bool slots_create(int n)
{
	int i, c[2], r[2], fd;
	void *p;

	for (i = 0; i < n; i++) {
		fd = memfd_create("ksm_mm_slot", 0);
		if (fd < 0 || ftruncate(fd, sizeof(struct slot_shm)) || pipe(c) || pipe(r)) {
			fail("cannot create worker slot %d: %s", i, strerror(errno));
			return false;
		}
		p = mmap(NULL, sizeof(struct slot_shm), PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			fail("mmap: %s", strerror(errno));
			return false;
		}
		g_slot[i] = (struct slot) {
			.cmd_rd = c[0], .cmd_wr = c[1], .rep_rd = r[0],
			.rep_wr = r[1], .shm_fd = fd, .shm = p,
		};
	}
	g_nr_slots = n;
	return true;
}

/*
 * Creates @nw + @spare slots and forks a worker into each of the first
 * @nw.  Spare slots get their worker later, from OP_FORK or OP_FORK_EXEC.
 */
static bool workers_start(int nw, int spare)
{
	int i;
	pid_t pid;

	if (!slots_create(nw + spare))
		return false;
	for (i = 0; i < nw; i++) {
		pid = fork();
		if (pid < 0) {
			fail("fork: %s", strerror(errno));
			return false;
		}
		if (!pid)
			worker_main(i);
		g_slot[i].shm->pid = pid;
		g_slot[i].used = true;
		g_slot[i].in_model = true;
	}
	return true;
}

static bool wsend(int k, int op, long a0, long a1, long a2, long a3)
{
	struct slot *sl = &g_slot[k];
	struct msg m = { op, { a0, a1, a2, a3 } };

	if (sl->dead)
		return false;
	if (write(sl->cmd_wr, &m, sizeof(m)) == sizeof(m))
		return true;
	sl->dead = true;
	fail("worker %d (pid %d): cannot send op %d", k, sl->shm->pid, op);
	return false;
}

/*
 * Has the worker of @sl died?  The test process holds the worker's end of
 * the reply pipe too, so that a fork child can take it over: no EOF.
 */
static bool worker_gone(struct slot *sl)
{
	pid_t pid = sl->shm->pid;
	int status = -1;
	bool reaped;

	reaped = waitpid(pid, &status, WNOHANG) == pid;
	if (!reaped && !(kill(pid, 0) && errno == ESRCH))
		return false;
	if (sl->shm->pid != pid)
		return false;	/* handed over to a child (stress) */
	if (reaped && WIFSIGNALED(status))
		diag("worker pid %d killed by signal %d", pid, WTERMSIG(status));
	else if (reaped)
		diag("worker pid %d exited with %d", pid, WEXITSTATUS(status));
	return true;
}

/* The answer of worker @k, waiting until @limit at most. */
static long wrecv(int k, double limit)
{
	struct slot *sl = &g_slot[k];
	struct pollfd pfd = { .fd = sl->rep_rd, .events = POLLIN };
	long r = -EPIPE;
	int ms;

	if (sl->dead)
		return -EPIPE;
	if (limit > g_deadline)
		limit = g_deadline;
	for (;;) {
		ms = (limit - now()) * 1000;
		if (ms <= 0)
			goto dead;
		if (poll(&pfd, 1, ms > 1000 ? 1000 : ms) > 0)
			break;
		if (worker_gone(sl))
			goto dead;
	}
	if (read(sl->rep_rd, &r, sizeof(r)) != sizeof(r))
		goto dead;
	if (sl->shm->err[0]) {
		g_failed = 1;
		sl->shm->err[0] = '\0';
	}
	return r;
dead:
	sl->dead = true;
	fail("worker %d (pid %d) does not answer", k, sl->shm->pid);
	return -EPIPE;
}

static long wcall(int k, int op, long a0, long a1, long a2, long a3)
{
	if (!wsend(k, op, a0, a1, a2, a3))
		return -EPIPE;
	return wrecv(k, now() + OP_TIMEOUT);
}

/* A call that must return 0. */
static bool wdo(int k, int op, long a0, long a1, long a2, long a3, const char *what)
{
	long r = wcall(k, op, a0, a1, a2, a3);

	if (r)
		fail("worker %d: %s: %s", k, what, r < 0 ? strerror(-r) : "failed");
	return !r;
}

static bool slot_live(int k)
{
	return g_slot[k].used && !g_slot[k].dead;
}

/* Every byte of every page of every worker. */
static bool verify_all(const char *when)
{
	long bad = 0, pages = 0, before, r;
	int k;

	for (k = 0; k < g_nr_slots; k++) {
		if (!slot_live(k))
			continue;
		before = g_slot[k].shm->verified;
		r = wcall(k, OP_VERIFY, 0, g_slot[k].shm->npages, 0, 0);
		bad += r ? (r < 0 ? 1 : r) : 0;
		pages += g_slot[k].shm->verified - before;
	}
	g_checks++;
	if (bad)
		fail("%s: %ld pages wrong", when, bad);
	else
		diag("%s: %ld pages verified", when, pages);
	return !bad;
}

static long slot_npages(int k)
{
	return g_slot[k].shm->npages;
}

/* ---------------------------------------------------------------- model */

/* One page the model counts: mergeable, present, with content. */
struct mpage {
	unsigned long long seed;
	unsigned long long pfn;
	int node;
	int slot;
	int idx;
};

static struct mpage g_mp[MAX_SLOTS * MAX_PAGES];
static int g_nmp;
static unsigned long long g_pm[MAX_SLOTS][MAX_PAGES];

static unsigned long long page_pfn(int k, long i)
{
	if (slot_pagemap(g_slot[k].shm, g_pm[k]) || !(g_pm[k][i] & PM_PRESENT))
		return 0;
	return g_pm[k][i] & PM_PFN_MASK;
}

static struct {
	bool mac0;		/* merge_across_nodes=0: contents merge per node */
	bool relaxed;		/* several KSM pages per content are fine */
	bool zero_pages;	/* use_zero_pages=1 */
	bool loose_frames;	/* processes outside the model map our frames */
	long extra_sharing;	/* their share of pages_sharing */
} g_opt;

static int mp_by_content(const void *a, const void *b)
{
	const struct mpage *x = a, *y = b;

	if (x->seed != y->seed)
		return x->seed < y->seed ? -1 : 1;
	if (x->node != y->node)
		return x->node - y->node;
	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return 0;
}

static int mp_by_pfn(const void *a, const void *b)
{
	const struct mpage *x = a, *y = b;

	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return mp_by_content(a, b);
}

static bool mp_lone(const struct mpage *m)
{
	return g_slot[m->slot].shm->flags[m->idx] & PF_LONE;
}

/* Nodes of the pages of slot @k (-1 where move_pages() says none). */
static int slot_nodes(int k, int *node)
{
	static void *pages[MAX_PAGES];
	static int status[MAX_PAGES];
	struct slot_shm *s = g_slot[k].shm;
	long i, n = 0;

	for (i = 0; i < s->npages; i++)
		if (s->addr[i])
			pages[n++] = (void *)s->addr[i];
	if (n && sys_move_pages(s->pid, n, pages, NULL, status, 0) < 0)
		return -errno;
	for (i = s->npages - 1; i >= 0; i--)
		node[i] = s->addr[i] && status[--n] >= 0 ? status[n] : -1;
	return 0;
}

/* Collects the pages the model counts into g_mp[]; zero pages into @e. */
static bool model_collect(struct expect *e)
{
	static int node[MAX_PAGES];
	struct slot_shm *s;
	unsigned long long ent;
	int k;
	long i;

	g_nmp = 0;
	for (k = 0; k < g_nr_slots; k++) {
		if (!slot_live(k) || !g_slot[k].in_model)
			continue;
		s = g_slot[k].shm;
		if (slot_pagemap(s, g_pm[k]) || (g_opt.mac0 && slot_nodes(k, node)))
			return false;
		for (i = 0; i < s->npages; i++) {
			ent = g_pm[k][i];
			if (!s->addr[i] || s->seed[i] == SEED_NONE ||
			    !(s->flags[i] & PF_MERGEABLE) || (s->flags[i] & PF_POISON) ||
			    !(ent & PM_PRESENT))
				continue;
			if (s->seed[i] == SEED_ZEROS && g_opt.zero_pages) {
				if (s->flags[i] & PF_THPZERO) {
					e->zero_tol[k]++;
					continue;
				}
				e->zero++;
				e->wzero[k]++;
				continue;
			}
			g_mp[g_nmp++] = (struct mpage) {
				.seed = s->seed[i], .pfn = ent & PM_PFN_MASK,
				.node = g_opt.mac0 ? node[i] : 0, .slot = k, .idx = i,
			};
		}
	}
	return true;
}

/* Expected counters from the contents: one KSM page per content (and node). */
static void model_by_content(struct expect *e)
{
	int a, b, j;

	qsort(g_mp, g_nmp, sizeof(g_mp[0]), mp_by_content);
	for (a = 0; a < g_nmp; a = b) {
		for (b = a + 1; b < g_nmp && g_mp[b].seed == g_mp[a].seed &&
		     g_mp[b].node == g_mp[a].node; b++)
			;
		if (b - a == 1) {
			e->lone[g_mp[a].slot] += mp_lone(&g_mp[a]);
			continue;
		}
		e->shared++;
		e->sharing += b - a - 1;
		for (j = a; j < b; j++)
			e->merging[g_mp[j].slot]++;
	}
}

/*
 * Expected counters from the frames: one KSM page per frame mapped twice
 * or more.  False while pages of one content (and node) are unmerged.
 */
static bool model_by_frame(struct expect *e)
{
	int a, b, j;
	bool merged = true;

	qsort(g_mp, g_nmp, sizeof(g_mp[0]), mp_by_pfn);
	for (a = 0; a < g_nmp; a = b) {
		for (b = a + 1; b < g_nmp && g_mp[b].pfn == g_mp[a].pfn; b++)
			;
		if (b - a == 1) {
			e->lone[g_mp[a].slot] += mp_lone(&g_mp[a]);
			continue;
		}
		e->shared++;
		e->sharing += b - a - 1;
		for (j = a; j < b; j++)
			e->merging[g_mp[j].slot]++;
	}
	/* a content (on a node) mapped twice or more must be on shared frames */
	qsort(g_mp, g_nmp, sizeof(g_mp[0]), mp_by_content);
	for (a = 0; a < g_nmp; a = b) {
		for (b = a + 1; b < g_nmp && g_mp[b].seed == g_mp[a].seed &&
		     g_mp[b].node == g_mp[a].node; b++)
			;
		for (j = a; j < b && b - a > 1; j++)
			if ((j == a || g_mp[j].pfn != g_mp[j - 1].pfn) &&
			    (j + 1 == b || g_mp[j + 1].pfn != g_mp[j].pfn))
				merged = false;
	}
	return merged;
}

static bool model_build(struct expect *e, bool *merged)
{
	memset(e, 0, sizeof(*e));
	*merged = true;
	if (!model_collect(e))
		return false;
	if (g_opt.relaxed)
		*merged = model_by_frame(e);
	else
		model_by_content(e);
	e->sharing += g_opt.extra_sharing;
	return true;
}

struct got {
	long shared, sharing, zero, scans;
	struct pstat ps[MAX_SLOTS];
};

static bool read_got(struct got *g)
{
	int k;

	g->scans = ksm_get("full_scans");
	g->shared = ksm_get("pages_shared");
	g->sharing = ksm_get("pages_sharing");
	g->zero = ksm_has("ksm_zero_pages") ? ksm_get("ksm_zero_pages") : 0;
	for (k = 0; k < g_nr_slots; k++) {
		if (!slot_live(k) || !g_slot[k].in_model)
			continue;
		if (read_pid_stat(g_slot[k].shm->pid, &g->ps[k]))
			return false;
	}
	return g->shared >= 0 && g->sharing >= 0;
}

/*
 * Exact, except for lone KSM pages: each may be counted or not, but then
 * in pages_shared and its process's ksm_merging_pages alike.
 */
static bool counters_match(const struct expect *e, const struct got *g, bool say)
{
	long extra = 0, zextra = 0, d, dz;
	bool ok = true;
	int k;

	if (g->sharing != e->sharing)
		ok = false;
	for (k = 0; k < g_nr_slots; k++) {
		if (!slot_live(k) || !g_slot[k].in_model)
			continue;
		d = g->ps[k].merging - e->merging[k];
		dz = g->ps[k].zero >= 0 ? g->ps[k].zero - e->wzero[k] : 0;
		if (d >= 0 && d <= e->lone[k] && dz >= 0 && dz <= e->zero_tol[k] &&
		    (g->ps[k].stat_merging < 0 || g->ps[k].stat_merging == g->ps[k].merging)) {
			extra += d;
			zextra += dz;
			continue;
		}
		ok = false;
		if (say)
			diag("  worker %d: merging %ld/%ld want %ld+%ld, zero %ld want %ld+%ld",
			     k, g->ps[k].merging, g->ps[k].stat_merging, e->merging[k],
			     e->lone[k], g->ps[k].zero, e->wzero[k], e->zero_tol[k]);
		extra += d;
		zextra += dz;
	}
	if (g->shared != e->shared + extra || g->zero != e->zero + zextra)
		ok = false;
	if (say)
		diag("  pages_shared %ld/%ld + %ld lone, pages_sharing %ld/%ld, zero pages %ld/%ld",
		     g->shared, e->shared, extra, g->sharing, e->sharing, g->zero, e->zero);
	return ok;
}

static bool ksmd_go(void)
{
	return ksm_set("pages_to_scan", SCAN_PAGES) && ksm_set("sleep_millisecs", 0) &&
	       ksm_set("run", 1);
}

/* Frames of the settled state: one per content, mapped once per page. */
static void check_frames(void)
{
	int a, b, j, bad = 0;
	long cnt;

	qsort(g_mp, g_nmp, sizeof(g_mp[0]), mp_by_content);
	for (a = 0; a < g_nmp; a = b) {
		for (b = a + 1; b < g_nmp && g_mp[b].seed == g_mp[a].seed &&
		     g_mp[b].node == g_mp[a].node; b++)
			;
		for (j = a + 1; j < b && !g_opt.relaxed; j++)
			if (g_mp[j].pfn != g_mp[a].pfn && bad++ < 5)
				fail("content %#llx: %d pages on several frames (%#llx, %#llx)",
				     g_mp[a].seed, b - a, g_mp[a].pfn, g_mp[j].pfn);
		cnt = pfn_count(g_mp[a].pfn);
		if (!g_opt.loose_frames && !g_opt.relaxed && cnt != b - a && bad++ < 5)
			fail("content %#llx: frame %#llx mapped %ld times, by %d pages here",
			     g_mp[a].seed, g_mp[a].pfn, cnt, b - a);
	}
	qsort(g_mp, g_nmp, sizeof(g_mp[0]), mp_by_pfn);
	for (j = 1; j < g_nmp; j++)
		if (g_mp[j].pfn == g_mp[j - 1].pfn && mp_by_content(&g_mp[j], &g_mp[j - 1]) &&
		    bad++ < 5)
			fail("frame %#llx holds contents %#llx and %#llx", g_mp[j].pfn,
			     g_mp[j].seed, g_mp[j - 1].seed);
	g_checks++;
}

/* Each worker reads its own /proc/self counters: they agree with ours. */
static void check_self_stats(const struct got *g)
{
	struct slot_shm *s;
	long total = 0;
	bool all = !g_opt.extra_sharing;
	int k;

	for (k = 0; k < g_nr_slots; k++) {
		if (!slot_live(k))
			continue;
		if (!g_slot[k].in_model) {
			all = false;
			continue;
		}
		s = g_slot[k].shm;
		if (!wdo(k, OP_STAT, 0, 0, 0, 0, "reading /proc/self/ksm_stat"))
			continue;
		expect_eq("/proc/self/ksm_merging_pages", s->res[0], g->ps[k].merging);
		total += s->res[0];
	}
	if (all)
		expect_eq("sum of ksm_merging_pages vs pages_shared + pages_sharing",
			  total, g->shared + g->sharing);
}

/* What ksmd says about itself and the workers, for a failure report. */
static void show_ksm_state(void)
{
	static const char * const knobs[] = {
		"full_scans", "pages_unshared", "pages_volatile", "pages_skipped",
		"stable_node_chains", "stable_node_dups", "use_zero_pages", "smart_scan",
	};
	char path[64], buf[512], line[256];
	size_t i;
	int k, n = 0;

	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		if (ksm_has(knobs[i]))
			n += snprintf(line + n, sizeof(line) - n, " %s %ld", knobs[i],
				      ksm_get(knobs[i]));
	diag(" %s", line);
	for (k = 0; k < g_nr_slots; k++) {
		if (!slot_live(k))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ksm_stat", g_slot[k].shm->pid);
		if (read_text(path, buf, sizeof(buf)) <= 0)
			continue;
		for (i = 0; buf[i]; i++)
			if (buf[i] == '\n')
				buf[i] = ' ';
		diag("  worker %d ksm_stat: %s", k, buf);
	}
}

#define SETTLE_MAX	150
#define SETTLE_STUCK	45

/*
 * Lets ksmd run until the counters equal the model and stay so for two
 * more full scans (and at least two full scans after the caller's change),
 * then checks frames and the workers' own view.
 */
static bool settle(const char *what)
{
	double t0 = now(), limit = t0 + SETTLE_MAX, changed = t0;
	long start, matched = -1, sig, last_sig = LONG_MIN;
	struct expect e;
	struct got g;
	bool merged, ok = false;

	if (limit > g_deadline - 3)
		limit = g_deadline - 3;
	if (!ksmd_go())
		return false;
	start = ksm_get("full_scans");
	for (;;) {
		if (!model_build(&e, &merged) || !read_got(&g)) {
			fail("%s: cannot read the state of the workers", what);
			return false;
		}
		if (merged && counters_match(&e, &g, false)) {
			if (matched < 0)
				matched = g.scans;
			if (g.scans >= matched + 2 && g.scans >= start + 2) {
				ok = true;
				break;
			}
		} else {
			matched = -1;
		}
		sig = g.shared * 1000003 + g.sharing * 1009 + g.zero;
		if (sig != last_sig) {
			last_sig = sig;
			changed = now();
		}
		if (now() > limit || (now() - changed > SETTLE_STUCK && g.scans > start + 50))
			break;
		sleep_ms(30);
	}
	if (!ok) {
		fail("%s: KSM did not reach the expected state (%ld full scans, %.0f s%s)",
		     what, g.scans - start, now() - t0,
		     merged ? "" : ", identical pages left unmerged");
		counters_match(&e, &g, true);
		show_ksm_state();
		return false;
	}
	g_checks++;
	diag("%s: pages_shared %ld pages_sharing %ld ksm_zero_pages %ld (%ld full scans, %.1f s)",
	     what, g.shared, g.sharing, g.zero, g.scans - start, now() - t0);
	check_frames();
	check_self_stats(&g);
	return true;
}

/* KSM back to a known state at the start of a test. */
static bool ksm_reset(void)
{
	bool ok = ksm_set("run", 2);

	if (ksm_has("merge_across_nodes") && ksm_get("merge_across_nodes") != 1)
		ok &= ksm_set("merge_across_nodes", 1);
	if (ksm_get("max_page_sharing") != 256)
		ok &= ksm_set("max_page_sharing", 256);
	ok &= ksm_set("use_zero_pages", 0);
	ok &= ksm_set("pages_to_scan", SCAN_PAGES);
	ok &= ksm_set("sleep_millisecs", 0);
	ok &= expect_eq("pages_shared after run=2", ksm_get("pages_shared"), 0);
	ok &= expect_eq("pages_sharing after run=2", ksm_get("pages_sharing"), 0);
	memset(&g_opt, 0, sizeof(g_opt));
	return ok;
}

/* run=2, then register the workers again: run=2 forgets every mm. */
static bool ksm_unmerge_all(void)
{
	int k;

	if (!ksm_set("run", 2))
		return false;
	expect_eq("pages_shared after run=2", ksm_get("pages_shared"), 0);
	expect_eq("pages_sharing after run=2", ksm_get("pages_sharing"), 0);
	if (ksm_has("ksm_zero_pages"))
		expect_eq("ksm_zero_pages after run=2", ksm_get("ksm_zero_pages"), 0);
	for (k = 0; k < g_nr_slots; k++)
		if (slot_live(k))
			wdo(k, OP_READVISE, 0, 0, 0, 0, "MADV_MERGEABLE again");
	return true;
}

/* ---------------------------------------------------------------- cleanup */

/* What the driver must undo if a test ends early (shared memory). */
static struct cleanup {
	char cg[128];
	bool subtree_added;
	int block;		/* memory block taken offline/online, or -1 */
	bool block_was_movable;
	bool block_was_offline;	/* a hot-plugged block we onlined */
} *g_clean;

static void block_path(char *buf, size_t len, int blk, const char *file)
{
	snprintf(buf, len, MEM_DIR "memory%d/%s", blk, file);
}

/*
 * Writes @state to a memory block's state file in a child that a timer
 * interrupts: offlining retries migration until a signal arrives.
 * Returns 0, -errno of the write, or -ETIMEDOUT.
 */
static int block_set(int blk, const char *state, int secs)
{
	char path[128];
	int status;
	pid_t pid;

	block_path(path, sizeof(path), blk, "state");
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		alarm(secs);
		_exit(write_text(path, state));
	}
	if (waitpid(pid, &status, 0) != pid)
		return -ECHILD;
	if (WIFSIGNALED(status))
		return -ETIMEDOUT;
	return -WEXITSTATUS(status);
}

static bool block_online(int blk)
{
	char path[128], buf[32];

	block_path(path, sizeof(path), blk, "state");
	return read_text(path, buf, sizeof(buf)) > 0 && !strncmp(buf, "online", 6);
}

static void cg_path(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", g_clean->cg, file);
}

static int cg_write(const char *file, const char *val)
{
	char path[256];

	cg_path(path, sizeof(path), file);
	return write_text(path, val);
}

static long cg_key(const char *file, const char *key)
{
	char path[256];

	cg_path(path, sizeof(path), file);
	return read_key(path, key);
}

static long cg_long(const char *file)
{
	char path[256];
	long v;

	cg_path(path, sizeof(path), file);
	return read_long(path, &v) ? -1 : v;
}

/* Creates our memory cgroup; false (and a skip reason) if there is none. */
static bool cg_create(void)
{
	char buf[256];

	if (read_text(CG_ROOT "/cgroup.controllers", buf, sizeof(buf)) < 0 ||
	    !strstr(buf, "memory")) {
		skip("no cgroup v2 memory controller at " CG_ROOT);
		return false;
	}
	if (read_text(CG_ROOT "/cgroup.subtree_control", buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	if (!strstr(buf, "memory")) {
		if (write_text(CG_ROOT "/cgroup.subtree_control", "+memory")) {
			skip("cannot enable the memory controller");
			return false;
		}
		g_clean->subtree_added = true;
	}
	snprintf(g_clean->cg, sizeof(g_clean->cg), CG_ROOT "/ksm_mm_tests.%d", getpid());
	if (mkdir(g_clean->cg, 0755)) {
		fail("mkdir %s: %s", g_clean->cg, strerror(errno));
		g_clean->cg[0] = '\0';
		return false;
	}
	if (cg_long("memory.current") < 0) {
		skip("no memory.current in %s", g_clean->cg);
		return false;
	}
	return true;
}

/* Moves worker @k into our cgroup (before it maps anything). */
static bool cg_join(int k)
{
	cg_path(g_slot[k].shm->path, sizeof(g_slot[k].shm->path), "cgroup.procs");
	return wdo(k, OP_CGROUP, 0, 0, 0, 0, "joining the cgroup");
}

/* Driver side: kill what is left in the cgroup, remove it. */
static void cg_cleanup(void)
{
	char path[256], buf[256];
	int i;

	if (!g_clean->cg[0])
		return;
	cg_write("cgroup.kill", "1");
	for (i = 0; i < 500; i++) {
		cg_path(path, sizeof(path), "cgroup.procs");
		if (read_text(path, buf, sizeof(buf)) <= 0)
			break;
		sleep_ms(10);
	}
	if (rmdir(g_clean->cg))
		out("# cannot remove %s: %s", g_clean->cg, strerror(errno));
	g_clean->cg[0] = '\0';
	if (g_clean->subtree_added)
		write_text(CG_ROOT "/cgroup.subtree_control", "-memory");
	g_clean->subtree_added = false;
}

/* Driver side: the memory block back online, in the zone it came from. */
static void block_cleanup(void)
{
	int blk = g_clean->block;

	if (blk < 0)
		return;
	if (g_clean->block_was_offline) {
		if (block_online(blk) && block_set(blk, "offline", 60))
			out("# cannot offline hot-plugged memory block %d again", blk);
		g_clean->block = -1;
		return;
	}
	if (block_online(blk) && !g_clean->block_was_movable)
		block_set(blk, "offline", 30);
	if (!block_online(blk) &&
	    block_set(blk, g_clean->block_was_movable ? "online_movable" : "online_kernel", 30) &&
	    block_set(blk, "online", 30))
		out("# cannot online memory block %d again", blk);
	g_clean->block = -1;
}

/* ---------------------------------------------------------------- layout */

/*
 * The standard layout of worker @k: @common pages alike in every worker,
 * @dups pages that repeat four contents of this worker only, and the rest
 * unique.  Seeds only; fill with OP_FILL.
 */
static void std_seeds(int k, long base, long n, long common, long dups)
{
	struct slot_shm *s = g_slot[k].shm;
	long i;

	for (i = 0; i < n; i++) {
		if (i < common)
			s->seed[base + i] = make_seed(1, i);
		else if (i < common + dups)
			s->seed[base + i] = make_seed(2, k * 16 + i % 4);
		else
			s->seed[base + i] = make_seed(3, (unsigned long long)k << 24 | i);
	}
}

struct std_opts {
	int workers;
	int spare;
	long pages;
	long common;
	long dups;
	bool cgroup;
	int node_mode;		/* mbind mode, 0: none */
	int node;		/* the node for node_mode */
	bool node_by_worker;	/* worker k's memory on node k % 2 instead */
};

/* Starts the workers, maps, fills, verifies, advises and waits for merging. */
static bool std_start(const struct std_opts *o)
{
	int k;

	if (!workers_start(o->workers, o->spare))
		return false;
	for (k = 0; k < o->workers; k++) {
		if (o->cgroup && !cg_join(k))
			return false;
		if (wcall(k, OP_MAP, o->pages, 0, !o->node_mode ? -1 :
			  o->node_by_worker ? k % 2 : o->node, o->node_mode) != 0) {
			fail("worker %d: cannot map %ld pages", k, o->pages);
			return false;
		}
		std_seeds(k, 0, o->pages, o->common, o->dups);
		if (!wdo(k, OP_FILL, 0, o->pages, 0, 0, "fill"))
			return false;
	}
	if (!verify_all("after filling"))
		return false;
	for (k = 0; k < o->workers; k++)
		if (!wdo(k, OP_MADVISE, 0, o->pages, MADV_MERGEABLE, 0, "MADV_MERGEABLE"))
			return false;
	return settle("merged");
}

/* Pages of slot @k in [lo, hi) whose pagemap entry has @bit set. */
static long count_pm(int k, long lo, long hi, unsigned long long bit)
{
	long i, n = 0;

	if (slot_pagemap(g_slot[k].shm, g_pm[k]))
		return -1;
	for (i = lo; i < hi; i++)
		if (g_slot[k].shm->addr[i] && (g_pm[k][i] & bit))
			n++;
	return n;
}

/* New content for pages [lo, hi) of worker @k: fresh seeds, written. */
static bool rewrite(int k, long lo, long hi)
{
	long i;

	for (i = lo; i < hi; i++)
		g_slot[k].shm->seed[i] = fresh_seed();
	return wdo(k, OP_FILL, lo, hi, 0, 0, "writing new content");
}

/* Marks pages [lo, hi) of worker @k as possibly lone KSM pages. */
static void mark_lone(int k, long lo, long hi)
{
	long i;

	for (i = lo; i < hi; i++)
		g_slot[k].shm->flags[i] |= PF_LONE;
}

/* vmstat event counters, when the kernel has them. */
struct vmev {
	long pswpin, pswpout, cow_ksm, swpin_copy;
};

static void vmev_read(struct vmev *v)
{
	v->pswpin = vm_event("pswpin");
	v->pswpout = vm_event("pswpout");
	v->cow_ksm = vm_event("cow_ksm");
	v->swpin_copy = vm_event("ksm_swpin_copy");
}

/* ---------------------------------------------------------------- swap */

static bool have_swap(void)
{
	if (read_key("/proc/meminfo", "SwapTotal") > 0)
		return true;
	skip("no swap space (swapon a device first)");
	return false;
}

struct swapped {
	unsigned long long slot;
	unsigned long long seed;
};

static int swapped_cmp(const void *a, const void *b)
{
	const struct swapped *x = a, *y = b;

	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	if (x->seed != y->seed)
		return x->seed < y->seed ? -1 : 1;
	return 0;
}

/*
 * Swap entries of the workers' mergeable pages: a swapped KSM page leaves
 * one swap slot behind, in every pte that mapped it, so pages share a slot
 * exactly when they have one content.  Returns the number of swapped pages
 * (in @slots the number of distinct slots); per worker in @per.
 */
static long check_swap_entries(long *slots, long *per)
{
	static struct swapped sw[MAX_SLOTS * MAX_PAGES];
	long n = 0, i, bad = 0;
	struct slot_shm *s;
	int k;

	*slots = 0;
	for (k = 0; k < g_nr_slots; k++) {
		per[k] = 0;
		if (!slot_live(k) || !g_slot[k].in_model)
			continue;
		s = g_slot[k].shm;
		if (slot_pagemap(s, g_pm[k]))
			return -1;
		for (i = 0; i < s->npages; i++) {
			if (!s->addr[i] || !(g_pm[k][i] & PM_SWAP) ||
			    !(s->flags[i] & PF_MERGEABLE))
				continue;
			sw[n].slot = g_pm[k][i] & PM_PFN_MASK;
			sw[n++].seed = s->seed[i];
			per[k]++;
		}
	}
	qsort(sw, n, sizeof(sw[0]), swapped_cmp);
	for (i = 0; i < n; i++) {
		if (i && sw[i].slot == sw[i - 1].slot) {
			if (sw[i].seed != sw[i - 1].seed && bad++ < 5)
				fail("swap entry %#llx holds contents %#llx and %#llx",
				     sw[i].slot, sw[i].seed, sw[i - 1].seed);
			continue;
		}
		++*slots;
	}
	g_checks++;
	return n;
}

/* memory.reclaim as much as possible; EAGAIN (not all of it) is fine. */
static bool cg_reclaim(void)
{
	int err = cg_write("memory.reclaim", "1G");

	if (err && err != EAGAIN) {
		fail("memory.reclaim: %s", strerror(err));
		return false;
	}
	return true;
}

/*
 * Swapped pages of worker @k that share their swap slot with another page:
 * KSM pages (check_swap_entries() filled g_pm[]).
 */
static long ksm_swapped(int k)
{
	struct slot_shm *s = g_slot[k].shm;
	unsigned long long slot;
	long i, j, n = 0;
	int w;

	for (i = 0; i < s->npages; i++) {
		if (!s->addr[i] || !(g_pm[k][i] & PM_SWAP))
			continue;
		slot = g_pm[k][i] & PM_PFN_MASK;
		for (w = 0; w < g_nr_slots; w++) {
			for (j = 0; slot_live(w) && j < g_slot[w].shm->npages; j++)
				if ((w != k || j != i) && (g_pm[w][j] & PM_SWAP) &&
				    (g_pm[w][j] & PM_PFN_MASK) == slot)
					break;
			if (slot_live(w) && j < g_slot[w].shm->npages)
				break;
		}
		n += w < g_nr_slots;
	}
	return n;
}

/*
 * Reclaims the cgroup into swap until every worker has KSM pages there:
 * pages referenced recently are activated by the first passes, so a few
 * rounds of memory.reclaim may be needed.
 */
static bool swap_out_all(int nw, const char *what, struct vmev *before)
{
	long per[MAX_SLOTS], ksm[MAX_SLOTS], n = 0, slots = 0, slots0, cached0, swapcur;
	int k, round, short_of;
	struct vmev v;

	/*
	 * Slots that exist already need no write: those of swap entries, and
	 * those of pages swapped in by a read, which keep their slot in the
	 * swap cache while they stay clean.
	 */
	check_swap_entries(&slots0, per);
	cached0 = read_key("/proc/meminfo", "SwapCached") * 1024 / page_size;
	for (round = 1; round <= 8; round++) {
		lru_drain_all();
		if (!cg_reclaim())
			return false;
		diag("  round %d: anon %ld (active %ld) pgscan %ld pgsteal %ld pgactivate %ld",
		     round, cg_key("memory.stat", "anon"), cg_key("memory.stat", "active_anon"),
		     cg_key("memory.stat", "pgscan"), cg_key("memory.stat", "pgsteal"),
		     cg_key("memory.stat", "pgactivate"));
		n = check_swap_entries(&slots, per);
		for (k = 0, short_of = 0; k < nw; k++) {
			ksm[k] = ksm_swapped(k);
			short_of += !ksm[k];
		}
		if (!short_of)
			break;
	}
	swapcur = cg_long("memory.swap.current");
	diag("%s: %ld pages in %ld swap slots after %d memory.reclaim; memory.swap.current %ld",
	     what, n, slots, round, swapcur);
	for (k = 0; k < nw; k++) {
		char status[32];

		snprintf(status, sizeof(status), "/proc/%d/status", g_slot[k].shm->pid);
		diag("  worker %d: %ld swapped, %ld of them KSM pages; VmSwap %ld kB", k, per[k],
		     ksm[k], read_key(status, "VmSwap"));
		expect_true("every worker has KSM pages in swap", ksm[k] > 0);
	}
	expect_true("memory.swap.current > 0", swapcur > 0);
	vmev_read(&v);
	if (before->pswpout >= 0) {
		diag(
		     "pswpout +%ld for %ld slots (%ld in swap entries and %ld swap cache pages before)",
		     v.pswpout - before->pswpout, slots, slots0, cached0);
		expect_true("pswpout grew by at least the slots that are new",
			    v.pswpout - before->pswpout >= slots - slots0 - cached0);
	}
	return n > 0;
}

/*
 * Pages out [lo, hi) of worker @k with MADV_PAGEOUT: every mapped page
 * there must end in swap (a few tries, with the LRU batches drained).
 */
static bool pageout_all(int k, long lo, long hi, const char *what)
{
	long want = 0, got = -1, i;
	int tries;

	for (i = lo; i < hi; i++)
		want += !!g_slot[k].shm->addr[i];
	for (tries = 0; tries < 5 && got != want; tries++) {
		lru_drain_all();
		if (!wdo(k, OP_MADVISE, lo, hi, MADV_PAGEOUT, 0, "MADV_PAGEOUT"))
			return false;
		got = count_pm(k, lo, hi, PM_SWAP);
	}
	diag("%s: %ld of %ld pages swapped out after %d MADV_PAGEOUT", what, got, want,
	     tries);
	return expect_eq(what, got, want);
}

/*
 * The other workers drop pages [lo, hi): worker 0's KSM pages there are
 * mapped once now.  MADV_PAGEOUT must swap them out (a KSM page is
 * reclaimed through its rmap), and they come back with their content.
 */
static bool lone_pageout(int nw, long lo, long hi)
{
	struct vmev a, b;
	int k;

	for (k = 1; k < nw; k++)
		if (!wdo(k, OP_MADVISE, lo, hi, MADV_DONTNEED, 0, "MADV_DONTNEED"))
			return false;
	mark_lone(0, lo, hi);
	if (!settle("KSM pages mapped once") ||
	    !pageout_all(0, lo, hi, "lone KSM pages paged out"))
		return false;
	if (!settle("lone KSM pages in swap") || !verify_all("lone KSM pages swapped in"))
		return false;
	mark_lone(0, lo, hi);
	if (!settle("lone KSM pages back"))
		return false;
	vmev_read(&a);
	if (!rewrite(0, lo, hi))
		return false;
	vmev_read(&b);
	if (a.cow_ksm >= 0)
		diag("writing them: cow_ksm +%ld (those still KSM pages)", b.cow_ksm - a.cow_ksm);
	/* the others get their (common) content back */
	for (k = 1; k < nw; k++) {
		long i;

		for (i = lo; i < hi; i++)
			g_slot[k].shm->seed[i] = make_seed(1, i);
		if (!wdo(k, OP_FILL, lo, hi, 0, 0, "fill"))
			return false;
	}
	return settle("lone pages rewritten");
}

#define RS_WORKERS	4
#define RS_PAGES	512
#define RS_COMMON	256
#define RS_DUPS		32
#define RS_LONE		16

/* Memcg reclaim swaps KSM pages out; swap-in under the limit, re-merge. */
static bool reclaim_under_memcg(struct vmev *v0)
{
	long maj0 = cg_key("memory.stat", "pgmajfault"), maj;
	struct vmev v1;

	if (!swap_out_all(RS_WORKERS, "memory.reclaim", v0) ||
	    !settle("KSM pages swapped out"))
		return false;
	/* every byte again, with memory.high far below the working set */
	if (cg_write("memory.high", "2M"))
		fail("cannot set memory.high");
	if (!verify_all("swapped in under memory.high=2M"))
		return false;
	cg_write("memory.high", "max");
	maj = cg_key("memory.stat", "pgmajfault");
	diag("memcg: pgmajfault +%ld, memory.events high %ld oom_kill %ld", maj - maj0,
	     cg_key("memory.events", "high"), cg_key("memory.events", "oom_kill"));
	if (maj0 >= 0)
		expect_true("swap-in faults in the cgroup", maj > maj0);
	expect_eq("oom kills in the cgroup", cg_key("memory.events", "oom_kill"), 0);
	vmev_read(&v1);
	if (v0->pswpin >= 0)
		diag("vmstat: pswpout +%ld pswpin +%ld ksm_swpin_copy +%ld",
		     v1.pswpout - v0->pswpout, v1.pswpin - v0->pswpin,
		     v1.swpin_copy - v0->swpin_copy);
	else
		diag("/proc/vmstat has no event counters (CONFIG_VM_EVENT_COUNTERS off)");
	if (v0->pswpin >= 0)
		expect_true("pswpin grew", v1.pswpin > v0->pswpin);
	return verify_all("after swap-in") && settle("re-merged after swap-in");
}

static enum result test_reclaim_swap(void)
{
	struct std_opts o = {
		.workers = RS_WORKERS, .pages = RS_PAGES, .common = RS_COMMON,
		.dups = RS_DUPS, .cgroup = true,
	};
	long shared;
	struct vmev v0;
	int k;

	if (!have_swap() || !cg_create())
		return RES_SKIP;
	vmev_read(&v0);
	if (!std_start(&o) || !reclaim_under_memcg(&v0))
		return RES_FAIL;

	/* MADV_PAGEOUT leaves pages mapped more than once (all KSM here) */
	for (k = 0; k < RS_WORKERS; k++) {
		lru_drain_all();
		if (!wdo(k, OP_MADVISE, 0, RS_PAGES, MADV_PAGEOUT, 0, "MADV_PAGEOUT"))
			return RES_FAIL;
		expect_eq("KSM pages swapped by MADV_PAGEOUT",
			  count_pm(k, 0, RS_COMMON + RS_DUPS, PM_SWAP), 0);
		pageout_all(k, RS_COMMON + RS_DUPS, RS_PAGES, "unique pages paged out");
	}
	shared = ksm_get("pages_shared");
	if (!settle("after MADV_PAGEOUT") || !verify_all("after MADV_PAGEOUT"))
		return RES_FAIL;
	expect_eq("pages_shared after MADV_PAGEOUT", ksm_get("pages_shared"), shared);
	if (!lone_pageout(RS_WORKERS, 0, RS_LONE) || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

static long corrupted_kb(void);

#define SC_PAGES	128
#define SC_POISON	5	/* page worker 0 poisons after its swap-in */

/*
 * Swap-in of a page that another process brought in first.  Two workers
 * share SC_PAGES KSM pages; everything goes to swap, and the swap cache is
 * emptied, so the KSM folios are gone.  Worker 0 reads its pages back: new
 * folios, in the swap cache, now anonymous pages of worker 0.  When worker
 * 1 reads the same swap entries, it finds those folios under an anon_vma it
 * cannot use: ksm_might_need_to_copy() must give it copies, counted in
 * ksm_swpin_copy, one per page that did not share worker 0's frame.  One
 * of worker 0's swapped-in pages is hardware-poisoned before worker 1's
 * reads: both must still read the right contents.
 */
static enum result test_swpin_copy(void)
{
	struct std_opts o = {
		.workers = 2, .pages = SC_PAGES, .common = SC_PAGES, .cgroup = true,
	};
	long cached = -1, last, copied = 0, i, kb0, sig0, r;
	struct vmev v0, v1;
	int round;

	if (!have_swap() || !cg_create())
		return RES_SKIP;
	if (!std_start(&o))
		return RES_FAIL;
	ksm_set("run", 0);
	/* reclaim writes the pages out, a later pass frees their swap cache */
	for (round = 1; round <= 10; round++) {
		lru_drain_all();
		if (!cg_reclaim())
			return RES_FAIL;
		last = cached;
		cached = read_key("/proc/meminfo", "SwapCached");
		diag("  round %d: memory.current %ld anon %ld active_anon %ld swap.current %ld",
		     round, cg_long("memory.current"), cg_key("memory.stat", "anon"),
		     cg_key("memory.stat", "active_anon"), cg_long("memory.swap.current"));
		if (count_pm(0, 0, SC_PAGES, PM_SWAP) == SC_PAGES &&
		    count_pm(1, 0, SC_PAGES, PM_SWAP) == SC_PAGES &&
		    (cached == 0 || cached == last))
			break;
		sleep_ms(100);
	}
	diag("after %d memory.reclaim: %ld and %ld pages in swap, SwapCached %ld kB", round,
	     count_pm(0, 0, SC_PAGES, PM_SWAP), count_pm(1, 0, SC_PAGES, PM_SWAP), cached);
	if (!expect_eq("worker 0's pages in swap", count_pm(0, 0, SC_PAGES, PM_SWAP), SC_PAGES) ||
	    !expect_eq("worker 1's pages in swap", count_pm(1, 0, SC_PAGES, PM_SWAP), SC_PAGES))
		return RES_FAIL;
	vmev_read(&v0);
	if (!wdo(0, OP_VERIFY, 0, SC_PAGES, 0, 0, "worker 0's swap-in"))
		return RES_FAIL;
	/*
	 * Poison one of them: memory failure unmaps a swap cache page to its
	 * swap entry (no poison marker) and drops it from the swap cache, so
	 * both workers read the page from swap again, intact, without SIGBUS.
	 */
	kb0 = corrupted_kb();
	sig0 = g_slot[0].shm->sigbus + g_slot[1].shm->sigbus;
	r = wcall(0, OP_INJECT, SC_POISON, MADV_HWPOISON, 0, 0);
	if (r)
		diag("MADV_HWPOISON: %s: the poison step skipped", strerror(-r));
	else
		expect_eq("worker 0's poisoned page back in swap",
			  count_pm(0, SC_POISON, SC_POISON + 1, PM_SWAP), 1);
	if (!wdo(0, OP_VERIFY, 0, SC_PAGES, 0, 0, "worker 0 after the poison") ||
	    !wdo(1, OP_VERIFY, 0, SC_PAGES, 0, 0, "worker 1's swap-in"))
		return RES_FAIL;
	vmev_read(&v1);
	if (!r && kb0 >= 0)
		expect_eq("HardwareCorrupted (kB)", corrupted_kb() - kb0, page_size / 1024);
	expect_eq("SIGBUS", g_slot[0].shm->sigbus + g_slot[1].shm->sigbus - sig0, 0);
	if (slot_pagemap(g_slot[0].shm, g_pm[0]) || slot_pagemap(g_slot[1].shm, g_pm[1]))
		return RES_FAIL;
	for (i = 0; i < SC_PAGES; i++)
		copied += (g_pm[0][i] & PM_PRESENT) &&
			  (g_pm[1][i] & PM_PFN_MASK) != (g_pm[0][i] & PM_PFN_MASK);
	diag("worker 1: %ld of %d pages on a frame of its own; ksm_swpin_copy +%ld", copied,
	     SC_PAGES, v0.swpin_copy >= 0 ? v1.swpin_copy - v0.swpin_copy : -1);
	expect_true("worker 1 got copies", copied > 0);
	if (v0.swpin_copy >= 0)
		expect_eq("ksm_swpin_copy counts worker 1's copies", v1.swpin_copy - v0.swpin_copy,
			  copied);
	if (!verify_all("after both swap-ins") || !settle("merged again after the copies"))
		return RES_FAIL;
	return RES_PASS;
}

#define MR_WORKERS	3
#define MR_PAGES	384
#define MR_COMMON	192
#define MR_DUPS		32

/* Moves pages [lo, hi) of every worker with MREMAP_MAYMOVE|MREMAP_FIXED. */
static bool move_all(int nw, long lo, long hi, const char *what)
{
	long kept = 0, i;
	int k;

	for (k = 0; k < nw; k++) {
		if (!wdo(k, OP_MREMAP, lo, hi, 0, 0, "mremap"))
			return false;
		if (slot_pagemap(g_slot[k].shm, g_pm[k]))
			return false;
		for (i = lo; i < hi; i++)
			kept += pfn_count(g_pm[k][i] & PM_PFN_MASK) > 1;
	}
	diag("%s: %ld of %ld moved pages still on a shared frame right after mremap",
	     what, kept, nw * (hi - lo));
	return verify_all(what);
}

static enum result test_mremap_swap(void)
{
	struct std_opts o = {
		.workers = MR_WORKERS, .pages = MR_PAGES, .common = MR_COMMON,
		.dups = MR_DUPS, .cgroup = true,
	};
	struct vmev v0, v1;

	if (!have_swap() || !cg_create())
		return RES_SKIP;
	if (!std_start(&o))
		return RES_FAIL;

	/* moved while merged (ksmd stopped, so the move itself is seen) */
	vmev_read(&v0);
	ksm_set("run", 0);
	if (!move_all(MR_WORKERS, 0, MR_COMMON, "moved merged pages"))
		return RES_FAIL;
	vmev_read(&v1);
	if (v0.cow_ksm >= 0)
		diag("mremap: cow_ksm +%ld", v1.cow_ksm - v0.cow_ksm);
	if (!settle("merged again at the new address"))
		return RES_FAIL;
	vmev_read(&v0);
	if (!swap_out_all(MR_WORKERS, "swapped out at the new address", &v0) ||
	    !settle("moved KSM pages in swap") || !verify_all("swapped in") ||
	    !settle("merged again after swap-in"))
		return RES_FAIL;
	if (!lone_pageout(MR_WORKERS, 0, 16))
		return RES_FAIL;

	/* moved while in swap: the swap entries move, rmap must follow */
	vmev_read(&v0);
	if (!swap_out_all(MR_WORKERS, "swapped out before moving", &v0) ||
	    !move_all(MR_WORKERS, 0, MR_COMMON, "moved swapped pages") ||
	    !move_all(MR_WORKERS, MR_COMMON, MR_COMMON + MR_DUPS, "moved swapped pages") ||
	    !settle("swapped-in after the move, merged"))
		return RES_FAIL;
	vmev_read(&v0);
	if (!swap_out_all(MR_WORKERS, "swapped out again after the move", &v0) ||
	    !verify_all("swapped in again") || !settle("merged again"))
		return RES_FAIL;
	if (!lone_pageout(MR_WORKERS, 16, 32) || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

/* ---------------------------------------------------------------- NUMA */

#define MG_WORKERS	4
#define MG_PAGES	256
#define MG_COMMON	128
#define MG_DUPS		32

/* Nodes of the pages of worker @k into @node[] (status of move_pages()). */
static bool worker_nodes(int k, int *node)
{
	struct slot_shm *s = g_slot[k].shm;

	if (!wdo(k, OP_NODES, 0, s->npages, 0, 0, "move_pages(query)"))
		return false;
	memcpy(node, s->status, s->npages * sizeof(int));
	return true;
}

static long mapped_in(int k, long lo, long hi)
{
	long i, n = 0;

	for (i = lo; i < hi; i++)
		n += !!g_slot[k].shm->addr[i];
	return n;
}

/* Pages of worker @k in [lo, hi) on @node. */
static long pages_on(int k, long lo, long hi, int node)
{
	static int where[MAX_PAGES];
	long i, n = 0;

	if (!worker_nodes(k, where))
		return -1;
	for (i = lo; i < hi; i++)
		n += g_slot[k].shm->addr[i] && where[i] == node;
	return n;
}

/*
 * ksmd keeps the KSM pages near the root of its stable tree referenced
 * nearly all the time when it searches the tree for many pages back to
 * back (sleep_millisecs=0): their migration fails with -EAGAIN.  Moves are
 * made with ksmd stopped, unless this is set (migrate_busy).
 */
static bool g_ksmd_busy;

/* Has a page of worker @k in [lo, i) the content of page @i? */
static bool seen_before(struct slot_shm *s, long lo, long i)
{
	long j;

	for (j = lo; j < i; j++)
		if (s->addr[j] && s->seed[j] == s->seed[i])
			return true;
	return false;
}

/*
 * move_pages(MPOL_MF_MOVE_ALL) of [lo, hi) of worker @k: every page must
 * get there.  A page whose KSM page was already queued by an earlier page
 * of the same call reports -EBUSY (it cannot be isolated twice).
 *
 * A migration fails for the moment (move_pages() then returns how many
 * pages it did not move) while anyone else holds a reference on the
 * page: ksmd does on the pages it is looking at.  With ksmd stopped five
 * calls are plenty; with ksmd scanning flat out (migrate_busy) up to
 * MB_CALLS calls are made, and how many were needed is reported.
 */
#define MB_CALLS	20

static bool move_all_to(int k, long lo, long hi, int node, const char *what)
{
	struct slot_shm *s = g_slot[k].shm;
	long i, bad = 0, busy = 0, left = -1;
	int tries, calls = g_ksmd_busy ? MB_CALLS : 5;

	/* a page that fails to migrate says so in the return value: again */
	if (!g_ksmd_busy)
		ksm_set("run", 0);
	for (tries = 0; tries < calls && left; tries++) {
		left = wcall(k, OP_MOVE, lo, hi, node, MPOL_MF_MOVE_ALL);
		if (left < 0) {
			fail("%s: move_pages: %s", what, strerror(-left));
			return false;
		}
	}
	if (!g_ksmd_busy)
		ksm_set("run", 1);
	if (tries > 1 || left)
		diag("%s: move_pages left %ld pages behind, %d calls", what, left, tries);
	for (i = lo; left && i < hi && bad < 8; i++) {
		long r = wcall(k, OP_MOVE, i, i + 1, node, MPOL_MF_MOVE_ALL);
		unsigned long long pfn = page_pfn(k, i);

		if (!r && s->status[i] == node)
			continue;
		bad++;
		diag("  page %ld (%#llx): move_pages %ld, status %d; pfn %#llx %ld maps, %#llx",
		     i, s->seed[i], r, s->status[i], pfn, pfn_count(pfn), pfn_flags(pfn));
	}
	bad = 0;
	expect_eq("pages move_pages could not move", left, 0);
	for (i = lo; i < hi; i++) {
		if (!s->addr[i] || s->status[i] == node)
			continue;
		if (s->status[i] == -EBUSY && seen_before(s, lo, i)) {
			busy++;
			continue;
		}
		if (bad++ < 3)
			fail("%s: page %ld: status %d", what, i, s->status[i]);
	}
	g_checks++;
	if (busy)
		diag("%s: %ld pages -EBUSY, their KSM page queued by another page", what, busy);
	return !bad && expect_eq("pages on the target node", pages_on(k, lo, hi, node),
				 mapped_in(k, lo, hi));
}

/*
 * move_pages(MPOL_MF_MOVE) moves only pages mapped once: a KSM page mapped
 * more than once reports -EACCES and stays; with MPOL_MF_MOVE_ALL it moves,
 * for every process that maps it.
 */
static bool check_move_pages(int nw, long merged, int to)
{
	static int before[MAX_PAGES];
	struct slot_shm *s = g_slot[0].shm;
	long i, bad = 0;
	int k;

	if (!worker_nodes(0, before) ||
	    wcall(0, OP_MOVE, 0, MG_PAGES, to, MPOL_MF_MOVE) < 0)
		return false;
	for (i = 0; i < MG_PAGES; i++) {
		int want = i >= merged || before[i] == to ? to : -EACCES;

		if (s->status[i] != want && bad++ < 3)
			fail("MPOL_MF_MOVE: page %ld (%s, on node %d): status %d, expected %d",
			     i, i < merged ? "merged" : "unique", before[i], s->status[i], want);
	}
	g_checks++;
	if (!verify_all("after MPOL_MF_MOVE") || !settle("after MPOL_MF_MOVE"))
		return false;
	if (!move_all_to(0, 0, merged, to, "MPOL_MF_MOVE_ALL"))
		return false;
	for (k = 1; k < nw; k++)
		expect_eq("common pages of the other workers on the new node",
			  pages_on(k, 0, MG_COMMON, to), MG_COMMON);
	if (!verify_all("after MPOL_MF_MOVE_ALL") || !settle("KSM pages moved"))
		return false;
	if (!move_all_to(0, 0, merged, !to, "MPOL_MF_MOVE_ALL back") ||
	    !verify_all("moved back") || !settle("KSM pages moved back"))
		return false;
	return true;
}

/* Pages of worker @k still on @node: which, and what they are. */
static void show_left_on(int k, int node)
{
	static int where[MAX_PAGES];
	struct slot_shm *s = g_slot[k].shm;
	unsigned long long pfn;
	long i, n = 0;

	if (!worker_nodes(k, where))
		return;
	for (i = 0; i < s->npages && n < 8; i++) {
		if (!s->addr[i] || where[i] != node)
			continue;
		pfn = page_pfn(k, i);
		diag("  page %ld (seed %#llx) on node %d: pfn %#llx count %ld flags %#llx",
		     i, s->seed[i], node, pfn, pfn_count(pfn), pfn_flags(pfn));
		n++;
	}
}

/*
 * migrate_pages(2) of all of worker @k's memory from node @from to @to.
 * It returns how many pages it could not move (ksmd holding a KSM page
 * for a moment is enough): call it again a few times.
 */
static bool check_migrate_pages(int k, int from, int to)
{
	unsigned long f = 1UL << from, t = 1UL << to;
	long r = -1, left = -1;
	int tries;

	if (!g_ksmd_busy)
		ksm_set("run", 0);
	for (tries = 0; tries < 5 && left; tries++) {
		r = sys_migrate_pages(g_slot[k].shm->pid, 8 * sizeof(f), &f, &t);
		if (r < 0) {
			fail("migrate_pages: %s", strerror(errno));
			return false;
		}
		left = pages_on(k, 0, slot_npages(k), from);
	}
	if (!g_ksmd_busy)
		ksm_set("run", 1);
	diag("migrate_pages(worker %d, %d -> %d): %d calls, last %ld; %ld pages on node %d",
	     k, from, to, tries, r, left, from);
	if (!expect_eq("pages left on the source node", left, 0))
		show_left_on(k, from);
	return verify_all("after migrate_pages") && settle("after migrate_pages");
}

/* Whole-system compaction; counts the workers' pages that changed frame. */
static bool check_compaction(int nw)
{
	static unsigned long long before[MAX_SLOTS][MAX_PAGES];
	long moved = 0, i;
	int k, err;

	for (k = 0; k < nw; k++)
		if (slot_pagemap(g_slot[k].shm, before[k]))
			return false;
	err = write_text("/proc/sys/vm/compact_memory", "1");
	if (err)
		diag("compact_memory: %s", strerror(err));
	for (k = 0; k < nw; k++) {
		if (slot_pagemap(g_slot[k].shm, g_pm[k]))
			return false;
		for (i = 0; i < slot_npages(k); i++)
			moved += (g_pm[k][i] & PM_PFN_MASK) != (before[k][i] & PM_PFN_MASK);
	}
	diag("compaction moved %ld of the workers' pages", moved);
	return verify_all("after compaction") && settle("after compaction");
}

static void show_chains(const char *when)
{
	if (ksm_has("stable_node_chains"))
		diag("%s: stable_node_chains %ld stable_node_dups %ld", when,
		     ksm_get("stable_node_chains"), ksm_get("stable_node_dups"));
}

/* merge_across_nodes=0: one KSM page per content and node. */
static bool migrate_per_node(int nw)
{
	int k;

	if (!ksm_unmerge_all() || !ksm_set("merge_across_nodes", 0))
		return false;
	g_opt.mac0 = true;
	for (k = 0; k < nw; k++)
		if (!move_all_to(k, 0, MG_PAGES, k % 2, "to the home node"))
			return false;
	if (!settle("merged per node (merge_across_nodes=0)"))
		return false;
	/*
	 * A KSM page moved to a node that has one of the same content: KSM
	 * may keep both (a chain of duplicates) or fold them; either way,
	 * every page stays merged and the counters agree with the frames.
	 */
	g_opt.relaxed = true;
	if (!move_all_to(0, 0, MG_COMMON, 1, "node-0 KSM pages to node 1") ||
	    !verify_all("after moving across nodes") ||
	    !settle("after moving KSM pages across nodes"))
		return false;
	show_chains("moved across nodes");
	if (!check_migrate_pages(3, 1, 0) || !check_compaction(nw))
		return false;
	show_chains("at the end");
	return true;
}

static enum result test_migrate(void)
{
	struct std_opts o = {
		.workers = MG_WORKERS, .pages = MG_PAGES, .common = MG_COMMON,
		.dups = MG_DUPS, .node_mode = MPOL_PREFERRED, .node_by_worker = true,
	};

	if (nr_memory_nodes() < 2) {
		skip("needs two NUMA nodes with memory");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	if (!std_start(&o))
		return RES_FAIL;
	diag("worker 0: %ld pages on node 0, worker 1: %ld pages on node 1",
	     pages_on(0, 0, MG_PAGES, 0), pages_on(1, 0, MG_PAGES, 1));
	if (!check_move_pages(MG_WORKERS, MG_COMMON + MG_DUPS, 1) ||
	    !check_migrate_pages(3, 1, 0) || !check_compaction(MG_WORKERS) ||
	    !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

/* The same with merge_across_nodes=0, switched to after a first merge. */
static enum result test_migrate_pernode(void)
{
	struct std_opts o = {
		.workers = MG_WORKERS, .pages = MG_PAGES, .common = MG_COMMON,
		.dups = MG_DUPS, .node_mode = MPOL_PREFERRED, .node_by_worker = true,
	};

	if (nr_memory_nodes() < 2 || !ksm_has("merge_across_nodes")) {
		skip("needs two NUMA nodes with memory and merge_across_nodes");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	if (!std_start(&o) || !migrate_per_node(MG_WORKERS) || !verify_all("at the end"))
		return RES_FAIL;
	return RES_PASS;
}

#define MB_ROUNDS	6

/*
 * KSM pages migrate while ksmd scans flat out (sleep_millisecs=0) and
 * looks up its unmerged pages in the stable tree: move_pages(MPOL_MF_MOVE_ALL)
 * must get all of them there (MB_CALLS calls allowed per round), back and
 * forth between the nodes.
 */
static enum result test_migrate_busy(void)
{
	struct std_opts o = {
		.workers = MG_WORKERS, .pages = MG_PAGES, .common = MG_COMMON,
		.dups = MG_DUPS, .node_mode = MPOL_PREFERRED, .node_by_worker = true,
	};
	int r;

	if (nr_memory_nodes() < 2) {
		skip("needs two NUMA nodes with memory");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	g_ksmd_busy = true;
	if (!std_start(&o))
		return RES_FAIL;
	for (r = 0; r < MB_ROUNDS; r++) {
		if (!move_all_to(0, 0, MG_COMMON + MG_DUPS, r % 2 ? 0 : 1,
				 "KSM pages, ksmd busy") ||
		    !verify_all("moved with ksmd busy") || !settle("moved with ksmd busy"))
			return RES_FAIL;
	}
	return RES_PASS;
}

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

static long corrupted_kb(void)
{
	return read_key("/proc/meminfo", "HardwareCorrupted");
}

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

/* Lock-free, so the signal handler may count in it. */
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

/* ---------------------------------------------------------------- rmap */

#define RM_VMAS		20000	/* VMAs that share one anon_vma */
#define RM_TARGETS	8	/* merged pages among them */
#define RM_KIDS		9	/* fork children in the fork-heavy case */
#define RM_ROUNDS	6	/* migrations there and back again */
#define RM_WHOLE_ROUNDS	2	/* the same, walking whole anon_vmas */
#define RM_DEBUGFS	"/sys/kernel/debug/ksm/"

/*
 * What the kernel says about the anon_vma lock holds of KSM rmap walks
 * (our KSM's debugfs; absent elsewhere): holds, the most VMAs one hold
 * looked at, the longest hold in ns.
 */
struct rmap_stats {
	long holds;
	long vmas_max;
	long hold_max_ns;
};

static bool rmap_stats_have(void)
{
	return !access(RM_DEBUGFS "rmap_holds", R_OK);
}

/* The figures are kept only while rmap_timing is 1 (a static key). */
static bool rmap_stats_start(bool whole)
{
	return !write_text(RM_DEBUGFS "rmap_timing", "1") &&
	       !write_text(RM_DEBUGFS "rmap_hold_max_ns", "0") &&
	       !write_text(RM_DEBUGFS "rmap_vmas_max", "0") &&
	       !write_text(RM_DEBUGFS "rmap_whole_anon_vma", whole ? "1" : "0");
}

static bool rmap_stats_read(struct rmap_stats *st, long holds_before)
{
	if (read_long(RM_DEBUGFS "rmap_holds", &st->holds) ||
	    read_long(RM_DEBUGFS "rmap_vmas_max", &st->vmas_max) ||
	    read_long(RM_DEBUGFS "rmap_hold_max_ns", &st->hold_max_ns))
		return false;
	st->holds -= holds_before;
	return !write_text(RM_DEBUGFS "rmap_whole_anon_vma", "0") &&
	       !write_text(RM_DEBUGFS "rmap_timing", "0");
}

/*
 * A range of @nvmas one-page VMAs that share one anon_vma (every other
 * page read-only: mprotect() splits a VMA that already has an anon_vma),
 * and a twin range of RM_TARGETS pages with the same contents as the
 * target pages among them. Both are fenced by PROT_NONE pages so that no
 * neighbour can lend them its anon_vma.
 */
struct rmap_area {
	char *range;
	char *twin;
	long nvmas;
	char *tgt[RM_TARGETS];
	unsigned long long seed[RM_TARGETS];
};

static bool rmap_area_map(struct rmap_area *a, long nvmas)
{
	long twin_pages = RM_TARGETS, i, len;
	char *base;

	len = (twin_pages + nvmas + 3) * page_size;
	base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (base == MAP_FAILED) {
		fail("mmap of %ld pages: %s", len / page_size, strerror(errno));
		return false;
	}
	a->nvmas = nvmas;
	a->twin = base + page_size;
	a->range = a->twin + (twin_pages + 1) * page_size;
	if (mprotect(a->twin, twin_pages * page_size, PROT_READ | PROT_WRITE) ||
	    mprotect(a->range, nvmas * page_size, PROT_READ | PROT_WRITE)) {
		fail("mprotect: %s", strerror(errno));
		return false;
	}
	a->range[0] = 1;	/* the anon_vma, before the splits */
	for (i = 1; i < nvmas; i += 2) {
		if (mprotect(a->range + i * page_size, page_size, PROT_READ)) {
			fail("mprotect to split VMA %ld: %s", i, strerror(errno));
			return false;
		}
	}
	for (i = 0; i < RM_TARGETS; i++) {
		/* even pages stay writable; spread over the whole range */
		a->tgt[i] = a->range + 2 * ((i + 1) * (nvmas / 2) / (RM_TARGETS + 1)) * page_size;
		a->seed[i] = fresh_seed();
		fill_page((unsigned long long *)a->tgt[i], a->seed[i]);
		fill_page((unsigned long long *)(a->twin + i * page_size), a->seed[i]);
	}
	if (madvise(a->twin, twin_pages * page_size, MADV_MERGEABLE) ||
	    madvise(a->range, nvmas * page_size, MADV_MERGEABLE)) {
		fail("MADV_MERGEABLE: %s", strerror(errno));
		return false;
	}
	return true;
}

static long rmap_area_verify(const struct rmap_area *a)
{
	long i, bad = 0;

	for (i = 0; i < RM_TARGETS; i++) {
		bad += check_page((unsigned long long *)a->tgt[i], a->seed[i]) >= 0;
		bad += check_page((unsigned long long *)(a->twin + i * page_size),
				  a->seed[i]) >= 0;
	}
	return bad;
}

/* Waits (bounded) until pages_shared and pages_sharing read as given. */
static bool rmap_wait_counts(long shared, long sharing, const char *what)
{
	double limit = now() + 120;
	long s = -1, g = -1;

	if (limit > g_deadline - 10)
		limit = g_deadline - 10;
	while (now() < limit) {
		s = ksm_get("pages_shared");
		g = ksm_get("pages_sharing");
		if (s == shared && g == sharing)
			break;
		sleep_ms(50);
	}
	diag("%s: pages_shared %ld pages_sharing %ld", what, s, g);
	return expect_eq("pages_shared", s, shared) && expect_eq("pages_sharing", g, sharing);
}

/* Nodes of the target pages (and their twins) as mapped in process @pid. */
static bool rmap_nodes(pid_t pid, const struct rmap_area *a, int *node)
{
	void *pages[2 * RM_TARGETS];
	long i;

	for (i = 0; i < RM_TARGETS; i++) {
		pages[i] = a->tgt[i];
		pages[RM_TARGETS + i] = a->twin + i * page_size;
	}
	if (sys_move_pages(pid, 2 * RM_TARGETS, pages, NULL, node, 0)) {
		fail("move_pages(query): %s", strerror(errno));
		return false;
	}
	return true;
}

/* Which pages did not move, and their frames. */
static void rmap_show_stuck(const struct rmap_area *a, const int *status, long r)
{
	unsigned long long ent = 0, pfn;
	int fd = pagemap_fd(getpid());
	long i;

	for (i = 0; i < RM_TARGETS; i++) {
		ent = 0;
		if (fd >= 0 && pread(fd, &ent, 8, (unsigned long)a->tgt[i] / page_size * 8) != 8)
			ent = 0;
		pfn = ent & PM_PFN_MASK;
		diag(
		     "  page %ld: status %d (move_pages returned %ld), pfn %#llx mapped %ld, flags %#llx",
		     i, status[i], r, pfn, pfn_count(pfn), pfn_flags(pfn));
	}
	if (fd >= 0)
		close(fd);
}

/*
 * Moves the target pages to @to with MPOL_MF_MOVE_ALL: each migration
 * walks the rmap of the KSM page twice (unmap, then remap). It only
 * succeeds if the walk found every mapping, the twins' and the fork
 * children's included, which then all read from @to.
 */
static bool rmap_migrate(const struct rmap_area *a, int to, const pid_t *kids, int nkids)
{
	int node[2 * RM_TARGETS], status[RM_TARGETS], nodes[RM_TARGETS];
	void *pages[RM_TARGETS];
	long r, i, left = RM_TARGETS;
	int tries, k;

	for (i = 0; i < RM_TARGETS; i++) {
		pages[i] = a->tgt[i];
		nodes[i] = to;
	}
	for (tries = 0; tries < MB_CALLS && left; tries++) {
		for (i = 0; i < RM_TARGETS; i++)
			status[i] = STATUS_UNSET;
		r = sys_move_pages(0, RM_TARGETS, pages, nodes, status, MPOL_MF_MOVE_ALL);
		if (r < 0) {
			fail("move_pages: %s", strerror(errno));
			return false;
		}
		for (i = 0, left = 0; i < RM_TARGETS; i++)
			left += status[i] != to;
	}
	if (!expect_eq("target pages that did not reach the node", left, 0)) {
		rmap_show_stuck(a, status, r);
		return false;
	}
	if (tries > 1)
		diag("to node %d: %d move_pages calls", to, tries);
	for (k = -1; k < nkids; k++) {
		if (!rmap_nodes(k < 0 ? 0 : kids[k], a, node))
			return false;
		for (i = 0, left = 0; i < 2 * RM_TARGETS; i++)
			left += node[i] != to;
		if (!expect_eq(k < 0 ? "mappings left behind here" :
			       "mappings left behind in a fork child", left, 0))
			return false;
	}
	return expect_eq("wrong pages after migration", rmap_area_verify(a), 0);
}

/*
 * Migrations there and back, with walks narrowed or of the whole anon_vma,
 * while ksmd scans flat out (a migration fails for the moment while ksmd
 * holds a reference on the page: rmap_migrate() calls again).
 */
static bool rmap_rounds(const struct rmap_area *a, bool whole, const pid_t *kids,
			int nkids, struct rmap_stats *st)
{
	int r, rounds = whole ? RM_WHOLE_ROUNDS : RM_ROUNDS;
	long before = 0;

	if (st) {
		if (!rmap_stats_start(whole) || read_long(RM_DEBUGFS "rmap_holds", &before)) {
			fail("cannot reset " RM_DEBUGFS);
			return false;
		}
	}
	for (r = 0; r < rounds; r++)
		if (!rmap_migrate(a, (r + 1) % 2, kids, nkids))
			return false;
	if (st && !rmap_stats_read(st, before)) {
		fail("cannot read " RM_DEBUGFS);
		return false;
	}
	return true;
}

/*
 * rmap_timing is off unless asked for: rmap walks then neither count nor
 * time their lock holds (nor read the clock).
 */
static bool rmap_timing_off(const struct rmap_area *a, const pid_t *kids, int nkids)
{
	long timing = -1, before = -1, after = -1;

	if (read_long(RM_DEBUGFS "rmap_timing", &timing) ||
	    read_long(RM_DEBUGFS "rmap_holds", &before)) {
		fail("cannot read " RM_DEBUGFS "rmap_timing and rmap_holds");
		return false;
	}
	expect_eq(RM_DEBUGFS "rmap_timing (off by default)", timing, 0);
	if (!rmap_migrate(a, 1, kids, nkids) || !rmap_migrate(a, 0, kids, nkids))
		return false;
	read_long(RM_DEBUGFS "rmap_holds", &after);
	return expect_eq("lock holds counted while rmap_timing is 0", after - before, 0);
}

/* Both kinds of walk on the same pages; the figures are reported, not judged. */
static bool rmap_measure(const char *setup, const struct rmap_area *a, const pid_t *kids,
			 int nkids, long vmas_in_anon_vma)
{
	struct rmap_stats narrow, whole;
	bool have = rmap_stats_have();

	if (have && !rmap_timing_off(a, kids, nkids))
		return false;
	if (!rmap_rounds(a, false, kids, nkids, have ? &narrow : NULL))
		return false;
	if (!have) {
		/* our KSM has ksm/counts there too: its rmap stats must not go */
		if (!access(RM_DEBUGFS "counts", F_OK)) {
			fail("%s: " RM_DEBUGFS "rmap_holds is missing", setup);
			return false;
		}
		diag("%s: no " RM_DEBUGFS " in this kernel: lock holds not measured", setup);
		return true;
	}
	if (!rmap_rounds(a, true, kids, nkids, &whole))
		return false;
	diag("%s: anon_vma lock holds in rmap_walk_ksm (%d KSM pages migrated):", setup,
	     RM_TARGETS);
	diag(
	     "  narrowed to the page offset, %d migrations each: %ld holds, at most %ld VMAs and %ld ns per hold",
	     RM_ROUNDS, narrow.holds, narrow.vmas_max, narrow.hold_max_ns);
	diag(
	     "  whole anon_vma (for comparison), %d migrations each: %ld holds, at most %ld VMAs and %ld ns per hold",
	     RM_WHOLE_ROUNDS, whole.holds, whole.vmas_max, whole.hold_max_ns);
	expect_true("rmap walks took anon_vma locks", narrow.holds > 0 && whole.holds > 0);
	/* one VMA per process covers the offset; the anon_vma has them all */
	expect_eq("most VMAs one narrowed hold looked at", narrow.vmas_max, nkids + 1);
	expect_eq("most VMAs one whole-anon_vma hold looked at", whole.vmas_max,
		  vmas_in_anon_vma);
	return true;
}

/*
 * Fork child @n, which maps the area: it verifies it on request ('v') and
 * exits on anything else. It closes the pipe ends of the children before
 * it, which it inherited, so that each child sees its own pipe's end.
 */
static pid_t rmap_kid(const struct rmap_area *a, int n, int *cmd_wr, int *rep_rd)
{
	int cmd[2], rep[2], k;
	char c, r;
	pid_t pid;

	if (pipe(cmd) || pipe(rep))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		for (k = 0; k < n; k++) {
			close(cmd_wr[k]);
			close(rep_rd[k]);
		}
		close(cmd[1]);
		close(rep[0]);
		while (read(cmd[0], &c, 1) == 1 && c == 'v') {
			r = rmap_area_verify(a) ? 'x' : 'k';
			if (write(rep[1], &r, 1) != 1)
				break;
		}
		_exit(0);
	}
	close(cmd[0]);
	close(rep[1]);
	cmd_wr[n] = cmd[1];
	rep_rd[n] = rep[0];
	return pid;
}

static long rmap_kids_verify(const int *cmd_wr, const int *rep_rd, int n)
{
	long bad = 0;
	char c;
	int k;

	for (k = 0; k < n; k++) {
		c = 'v';
		if (write(cmd_wr[k], &c, 1) != 1 || read(rep_rd[k], &c, 1) != 1 || c != 'k')
			bad++;
	}
	return bad;
}

/* 20,000 VMAs from splits of one range, in one process. */
static bool rmap_splits(void)
{
	struct rmap_area a;

	if (!rmap_area_map(&a, RM_VMAS) || !ksmd_go() ||
	    !rmap_wait_counts(RM_TARGETS, RM_TARGETS, "split range merged with its twin") ||
	    !expect_eq("wrong pages after merging", rmap_area_verify(&a), 0))
		return false;
	if (!rmap_measure("20000 split VMAs, one process", &a, NULL, 0, RM_VMAS) ||
	    !rmap_wait_counts(RM_TARGETS, RM_TARGETS, "after the migrations"))
		return false;
	return !munmap(a.twin - page_size, (RM_TARGETS + RM_VMAS + 3) * page_size);
}

/* 2,000 split VMAs, mapped by 10 processes: 20,000 VMAs in one anon_vma. */
static bool rmap_forks(void)
{
	int cmd_wr[RM_KIDS], rep_rd[RM_KIDS], n = 0, k;
	long nvmas = RM_VMAS / (RM_KIDS + 1), sharing;
	pid_t kids[RM_KIDS];
	struct rmap_area a;
	bool ok = false;

	if (!rmap_area_map(&a, nvmas) || !ksmd_go() ||
	    !rmap_wait_counts(RM_TARGETS, RM_TARGETS, "parent's range merged with its twin"))
		return false;
	for (n = 0; n < RM_KIDS; n++) {
		kids[n] = rmap_kid(&a, n, cmd_wr, rep_rd);
		if (kids[n] < 0) {
			fail("fork: %s", strerror(errno));
			goto out;
		}
	}
	/* once ksmd has scanned the children, it counts their mappings too */
	sharing = RM_TARGETS * (2 * (RM_KIDS + 1)) - RM_TARGETS;
	if (!rmap_wait_counts(RM_TARGETS, sharing, "children scanned") ||
	    !expect_eq("children that read wrong pages", rmap_kids_verify(cmd_wr, rep_rd, n), 0))
		goto out;
	if (!rmap_measure("2000 split VMAs x 10 processes (fork)", &a, kids, n,
			  nvmas * (RM_KIDS + 1)))
		goto out;
	ok = expect_eq("children that read wrong pages after the migrations",
		       rmap_kids_verify(cmd_wr, rep_rd, n), 0) &&
	     rmap_wait_counts(RM_TARGETS, sharing, "after the migrations");
out:
	for (k = 0; k < n; k++) {
		if (write(cmd_wr[k], "q", 1) != 1)
			diag("child %d: %s", k, strerror(errno));
		close(cmd_wr[k]);
		close(rep_rd[k]);
		waitpid(kids[k], NULL, 0);
	}
	return ok && rmap_wait_counts(RM_TARGETS, RM_TARGETS, "children gone");
}

/*
 * rmap walks of KSM pages mapped from a VMA whose anon_vma has 20,000 VMAs:
 * every migration must find all mappings (and only look at the VMAs that
 * cover the page offset, where the kernel can tell us).
 */
static enum result test_rmap(void)
{
	if (nr_memory_nodes() < 2) {
		skip("needs two NUMA nodes with memory");
		return RES_SKIP;
	}
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	if (!rmap_splits() || !ksm_set("run", 2) || !rmap_forks())
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

/* ---------------------------------------------------------------- driver */

struct ksm_test {
	const char *name;
	enum result (*fn)(void);
	bool timed;		/* runs -d seconds on top of the time limit */
};

static const struct ksm_test tests[] = {
	{ "reclaim_swap", test_reclaim_swap, false },
	{ "mremap_swap", test_mremap_swap, false },
	{ "swpin_copy", test_swpin_copy, false },
	{ "migrate", test_migrate, false },
	{ "migrate_pernode", test_migrate_pernode, false },
	{ "migrate_busy", test_migrate_busy, false },
	{ "thp", test_thp, false },
	{ "memory_failure", test_memory_failure, false },
	{ "hot_remove", test_hot_remove, false },
	{ "address_space", test_address_space, false },
	{ "uffd_wp_merge", test_uffd_wp_merge, false },
	{ "lazyfree_merge", test_lazyfree_merge, false },
	{ "fork_churn", test_fork_churn, false },
	{ "rmap", test_rmap, false },
	{ "dup_regroup", test_dup_regroup, false },
	{ "unmerge_dirty", test_unmerge_dirty, false },
	{ "fork_counters", test_fork_counters, false },
	{ "unmerge_exact", test_unmerge_exact, false },
	{ "merge_offset", test_merge_offset, false },
	{ "stress", test_stress, true },
};

#define NR_TESTS ARRAY_SIZE(tests)

static int test_limit(const struct ksm_test *t)
{
	return g_timeout + (t->timed ? g_duration : 0);
}

static void run_test_child(const struct ksm_test *t)
{
	enum result r;

	setpgid(0, 0);
	g_deadline = now() + test_limit(t) - 5;
	g_seed = mix64(g_seed ^ (unsigned long long)getpid() << 20 ^ (long)t);
	signal(SIGPIPE, SIG_IGN);
	sysctl_set("/proc/sys/kernel/numa_balancing", "0");
	sysctl_set("/proc/sys/vm/compaction_proactiveness", "0");
	if (!ksm_reset()) {
		diag("set-up failed");
		_exit(RES_FAIL);
	}
	r = t->fn();
	ksm_set("run", 0);
	diag("%ld checks", g_checks);
	if (g_failed)
		r = RES_FAIL;
	_exit(r);
}

/* Kernel log lines that mean the kernel is unhappy. */
static const char * const bad_kmsg[] = {
	"BUG:", "kernel BUG", "WARNING:", "KASAN", "Oops", "general protection",
	"circular locking", "recursive locking", "inconsistent lock state",
	"INFO: task", "UBSAN", "list_add corruption", "list_del corruption",
	"Call Trace", "Kernel panic", "soft lockup", "self-detected stall",
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
	char rec[2048], *msg;
	bool clean = true;
	ssize_t n;
	size_t i;

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
		for (i = 0; i < ARRAY_SIZE(bad_kmsg); i++) {
			if (strstr(msg, bad_kmsg[i])) {
				out("# kernel: %s", msg);
				clean = false;
				break;
			}
		}
	}
	close(fd);
	return clean;
}

static void reap_group(pid_t pgid)
{
	int i;

	for (i = 0; i < 500; i++) {
		kill(-pgid, SIGKILL);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (kill(-pgid, 0) && errno == ESRCH)
			break;
		sleep_ms(10);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static enum result run_test(const struct ksm_test *t, int nr)
{
	double t0 = now(), deadline = t0 + test_limit(t);
	enum result r = RES_FAIL;
	int status, kfd = kmsg_open();
	pid_t pid, got;

	g_skip_reason[0] = '\0';
	g_clean->block = -1;
	pid = fork();
	if (pid < 0) {
		diag("fork: %s", strerror(errno));
		return RES_FAIL;
	}
	if (!pid)
		run_test_child(t);
	setpgid(pid, pid);
	for (;;) {
		/* reap orphans too (we are their subreaper); stop at ours */
		while ((got = waitpid(-1, &status, WNOHANG)) > 0 && got != pid)
			;
		if (got == pid) {
			if (WIFEXITED(status) && WEXITSTATUS(status) <= RES_SKIP)
				r = WEXITSTATUS(status);
			else
				diag("test process ended with status %#x", status);
			break;
		}
		if (now() > deadline) {
			diag("%s: timed out after %d s", t->name, test_limit(t));
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_ms(20);
	}
	reap_group(pid);
	cg_cleanup();
	block_cleanup();
	if (!settings_restore())
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

static void print_usage(const char *prog)
{
	size_t i;

	fprintf(stderr, "usage: %s [-t seconds] [-d seconds] [-k] [-l] [test ...]\n"
		"  -t  time limit of each test (default %d)\n"
		"  -d  duration of the stress test's random phase (default %d)\n"
		"  -k  exit with 4 when every test skipped\n"
		"  -r  run the selected tests this many times (default 1)\n"
		"tests:", prog, DEFAULT_TIMEOUT, DEFAULT_DURATION);
	for (i = 0; i < NR_TESTS; i++)
		fprintf(stderr, " %s", tests[i].name);
	fprintf(stderr, "\n");
}

static const char *why_not(void)
{
	if (geteuid())
		return "needs root";
	if (access(KSM_DIR "run", F_OK))
		return "no KSM (CONFIG_KSM)";
	if (access("/proc/kpagecount", R_OK))
		return "no /proc/kpagecount (CONFIG_PROC_PAGE_MONITOR)";
	return NULL;
}

static void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int parse_args(int argc, char **argv, bool *selected)
{
	int opt, i;
	size_t k;

	while ((opt = getopt(argc, argv, "t:d:r:klh")) != -1) {
		switch (opt) {
		case 'r':
			g_repeat = atoi(optarg);
			break;
		case 'k':
			g_skip_code = true;
			break;
		case 't':
			g_timeout = atoi(optarg);
			break;
		case 'd':
			g_duration = atoi(optarg);
			break;
		case 'l':
			for (k = 0; k < NR_TESTS; k++)
				printf("%s\n", tests[k].name);
			exit(0);
		default:
			print_usage(argv[0]);
			return -1;
		}
	}
	if (g_timeout < 20 || g_duration < 1 || g_repeat < 1) {
		print_usage(argv[0]);
		return -1;
	}
	for (i = optind; i < argc; i++) {
		for (k = 0; k < NR_TESTS; k++)
			if (!strcmp(argv[i], tests[k].name))
				break;
		if (k == NR_TESTS) {
			fprintf(stderr, "unknown test %s\n", argv[i]);
			print_usage(argv[0]);
			return -1;
		}
		selected[k] = true;
	}
	for (k = 0, i = 0; k < NR_TESTS; k++) {
		if (optind == argc)
			selected[k] = true;
		i += selected[k];
	}
	return i * g_repeat;
}

int main(int argc, char **argv)
{
	bool selected[NR_TESTS] = { false };
	int i, nr, rep, failed = 0, skipped = 0;
	enum result r;
	const char *why;
	double t0 = now();
	size_t k;

	page_size = sysconf(_SC_PAGESIZE);
	if (argc == 7 && !strcmp(argv[1], "--worker"))
		return exec_worker_main(argv);
	nr = parse_args(argc, argv, selected);
	if (nr < 0)
		return 2;
	g_seed = mix64(time(NULL) ^ (unsigned long long)getpid() << 32);
	g_skip_reason = shared_alloc(256);
	g_clean = shared_alloc(sizeof(*g_clean));
	if (!g_skip_reason || !g_clean)
		return 1;
	g_clean->block = -1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	out("1..%d", nr);
	why = why_not();
	if (why) {
		for (k = 0, i = 1; k < NR_TESTS; k++)
			if (selected[k])
				out("ok %d %s # SKIP %s", i++, tests[k].name, why);
		return g_skip_code ? 4 : 0;
	}
	settings_save();
	find_zero_pfn();
	g_have_vmstat = vm_event("pswpout") >= 0;
	if (!g_have_vmstat)
		diag("no vm event counters (CONFIG_VM_EVENT_COUNTERS): pswp*, cow_ksm unchecked");
	for (rep = 0, i = 1; rep < g_repeat; rep++) {
		for (k = 0; k < NR_TESTS; k++) {
			if (!selected[k])
				continue;
			r = run_test(&tests[k], i++);
			failed += r == RES_FAIL;
			skipped += r == RES_SKIP;
		}
	}
	if (!settings_restore())
		failed++;
	diag("total %.1f s, %d of %d failed, %d skipped", now() - t0, failed, nr, skipped);
	/* -k: exit code 4 (kselftest's skip) when nothing ran */
	return failed ? 1 : g_skip_code && skipped == nr ? 4 : 0;
}
