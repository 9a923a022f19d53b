// SPDX-License-Identifier: GPL-2.0
/*
 * Seeded random operations against KSM, checked byte for byte.
 *
 * "random" (the default): workers map a window of VMAs of several kinds
 * (private anonymous, mlocked, private and shared memfd, shared anonymous,
 * a hugetlb or shared block at the window's start, holes between them) and
 * run random system calls over it: writes and single-word pokes, madvise
 * MERGEABLE/UNMERGEABLE over ranges that cross VMAs and holes,
 * PR_SET_MEMORY_MERGE, fork with children that work and exit, mremap,
 * mprotect, munmap, mmap, MADV_DONTNEED/FREE/COLD/PAGEOUT/COLLAPSE,
 * move_pages between nodes, madvise over [vvar] and [vdso].  Each worker
 * keeps a model of every page it maps: the page's contents are a function
 * of a key (the seed, the page, the write that made it), an optional
 * inverted word, and for MADV_FREE'd pages "these contents or zeroes".
 * The expected errno of every call follows the rules of Linux 6.12 (a hole
 * gives ENOMEM after the rest is done, an mlocked or non-anonymous VMA
 * stops MADV_FREE with EINVAL, ...).  Meanwhile the main process writes
 * valid values and garbage to every knob of /sys/kernel/mm/ksm: a valid
 * value must be accepted (EBUSY only where 6.12 gives it) and read back,
 * garbage must fail with 6.12's errno and leave every knob as it was.
 * At the end every counter must be back to 0 once the workers are gone.
 *
 * "memcg": ksmd at full speed while a process with mergeable memory sits at
 * its memory cgroup's memory.max and the machine is near OOM (the rest of
 * memory mlocked by a hog).  ksmd must not cause an OOM kill (memory.events
 * and /proc/vmstat oom_kill unchanged), no byte may change, and once the
 * limit is lifted pages_shared and pages_sharing must reach their exact
 * expected values.
 *
 * Usage: ksm_random_tests [-s seed] [-d seconds] [-w workers] [-n] [random|memcg]
 *   -n: the workers only, no knob or hugetlb pool writes (checks the model)
 * Output is TAP.  Needs root and CONFIG_KSM; parts the machine lacks
 * (hugetlb, a second node, swap, memcg) are left out with a diagnostic.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE		12
#define MADV_UNMERGEABLE	13
#endif
#ifndef MADV_COLD
#define MADV_COLD		20
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE	67
#define PR_GET_MEMORY_MERGE	68
#endif
#define MPOL_MF_MOVE		2	/* <linux/mempolicy.h> */
#define MPOL_MF_MOVE_ALL	4

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define MAX(a, b)		((a) > (b) ? (a) : (b))
#define PS			4096UL
#define WORDS			(PS / 8)
#define HUGE_PAGES		512		/* small pages in 2 MiB */
#define NP			(3 * HUGE_PAGES)	/* pages in a worker's window */
#define LO			HUGE_PAGES	/* first page of the changing part */
#define MAX_WORKERS		16
#define MAX_REPORTS		16
#define KSM_DIR			"/sys/kernel/mm/ksm/"
#define CG_DIR			"/sys/fs/cgroup/ksm_random_memcg"

/* ------------------------------------------------------------------ TAP */

static int g_ntest, g_nfail;

/* One line to stdout with a single write(), so processes never interleave. */
static void say(const char *fmt, ...)
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
	if (write(1, buf, n) < 0)
		_exit(3);
}

static void result(bool ok, const char *what)
{
	say("%sok %d - %s", ok ? "" : "not ", ++g_ntest, what);
	if (!ok)
		g_nfail++;
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

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------- random */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t g_rng;

static uint64_t rnd(void)
{
	g_rng = mix64(g_rng);
	return g_rng;
}

static unsigned long rnd_below(unsigned long n)
{
	return n ? rnd() % n : 0;
}

/* ------------------------------------------------------------- sysfs */

static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = 0, r;

	if (fd < 0)
		return -errno;
	/* seq_file hands out a page or so per read() */
	while ((size_t)n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += r;
	close(fd);
	if (r < 0 && !n)
		return -errno;
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return n;
}

/* 0, or the errno of open() or write(). */
static int write_text(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, s, strlen(s)) < 0)
		err = errno;
	close(fd);
	return err;
}

static long ksm_get(const char *name)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	if (read_text(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtol(buf, NULL, 10);
}

static double g_slowest_write;
static char g_slowest_what[96];

/* Writes a knob; remembers the slowest write (ksmd may hold its lock). */
static int ksm_set(const char *name, const char *val)
{
	double t = now();
	char path[128];
	int err;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	err = write_text(path, val);
	t = now() - t;
	if (t > g_slowest_write) {
		g_slowest_write = t;
		snprintf(g_slowest_what, sizeof(g_slowest_what), "%s=%s", name, val);
	}
	return err;
}

/* The value of @key in a "key value" file such as /proc/vmstat; -1 if none. */
static long file_key(const char *path, const char *key)
{
	static char buf[65536];
	size_t kl = strlen(key);
	char *p;

	if (read_text(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && (p[kl] == ' ' || p[kl] == ':'))
			return strtol(p + kl + 1, NULL, 10);
	return -1;
}

/* --------------------------------------------------------- the model */

enum pg_type { T_HOLE, T_ANON, T_LOCKED, T_FILEP, T_SHARED, T_HUGE, NR_TYPES };

static const char * const type_names[NR_TYPES] = {
	"hole", "anon", "mlocked", "file-private", "shared", "hugetlb",
};

/*
 * What a page of the window must hold: @key's words (0: zeroes), word
 * @tw - 1 inverted if @tw, or zeroes as well if @maybe_zero (MADV_FREE).
 * @fkey is what a private file mapping reads where it was never written.
 */
struct pg {
	uint64_t key;
	uint64_t fkey;
	uint16_t tw;
	uint8_t type;
	uint8_t prot;
	bool maybe_zero;
	bool unknown;		/* a fork child's view of a shared page */
};

enum op {
	OP_WRITE, OP_POKE, OP_VERIFY, OP_MERGE, OP_UNMERGE, OP_PRCTL, OP_FORK,
	OP_MREMAP, OP_MPROTECT, OP_MUNMAP, OP_MMAP, OP_DONTNEED, OP_FREE,
	OP_COLD, OP_PAGEOUT, OP_COLLAPSE, OP_MOVE, OP_SPECIAL, OP_BADARGS,
	NR_OPS
};

static const char * const op_names[NR_OPS] = {
	"write", "poke", "verify", "mergeable", "unmergeable", "prctl", "fork",
	"mremap", "mprotect", "munmap", "mmap", "dontneed", "free", "cold",
	"pageout", "collapse", "move_pages", "vvar_vdso", "bad_args",
};

/* Weights of the operations in a worker (a fork child does not fork). */
static const int op_weight[NR_OPS] = {
	[OP_WRITE] = 30, [OP_POKE] = 12, [OP_VERIFY] = 2, [OP_MERGE] = 12,
	[OP_UNMERGE] = 5, [OP_PRCTL] = 3, [OP_FORK] = 2, [OP_MREMAP] = 4,
	[OP_MPROTECT] = 5, [OP_MUNMAP] = 3, [OP_MMAP] = 4, [OP_DONTNEED] = 3,
	[OP_FREE] = 3, [OP_COLD] = 2, [OP_PAGEOUT] = 3, [OP_COLLAPSE] = 1,
	[OP_MOVE] = 3, [OP_SPECIAL] = 1, [OP_BADARGS] = 1,
};

/* Shared with the main process: one per worker; fork children add to it. */
struct wstats {
	long ops[NR_OPS];
	long wrong_bytes;
	long wrong_pages;
	long faults;
	long errno_bad;
	long verified;
	long children;
	long child_bad;
	long unmerge_eagain;
	long moved, not_moved;
	long collapse_ok, collapse_err;
	long reports;
	bool done;
};

static struct wstats *g_stats;	/* array of MAX_WORKERS, MAP_SHARED */
static struct wstats *g_st;	/* this worker's */
static struct pg g_pg[NP];
static char *g_win;
static int g_id;
static bool g_child, g_merge_any, g_hugetlb;
static int g_live;		/* fork children not reaped yet */
static int g_nodes = 1;
static uint64_t g_seed, g_wseed, g_keyno;
static int g_memfd = -1;	/* /proc/self/mem */
static sigjmp_buf g_jmp;
/* Lock-free, so the fault handler may read it. */
static atomic_int g_jmp_armed;

static void add(long *ctr, long v)
{
	__atomic_add_fetch(ctr, v, __ATOMIC_RELAXED);
}

/* A failure line, at most MAX_REPORTS per worker and its children. */
static void report(const char *fmt, ...)
{
	char buf[700];
	va_list ap;

	if (__atomic_fetch_add(&g_st->reports, 1, __ATOMIC_RELAXED) >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("# worker %d%s: %s", g_id, g_child ? " (child)" : "", buf);
}

/* Word @i of a page of @key is word_at(key_base(key), i). */
static inline uint64_t key_base(uint64_t key)
{
	return key ? mix64(key) : 0;
}

static inline uint64_t word_at(uint64_t base, unsigned int i)
{
	return base ? base + i * 0x9e3779b97f4a7c15ULL : 0;
}

static uint64_t word_of(uint64_t key, unsigned int i)
{
	return word_at(key_base(key), i);
}

static uint64_t expected_word(const struct pg *p, unsigned int i)
{
	uint64_t w = word_of(p->key, i);

	return p->tw == i + 1 ? ~w : w;
}

static void fill_words(uint64_t *w, uint64_t key)
{
	uint64_t base = key_base(key);
	unsigned int k;

	for (k = 0; k < WORDS; k++)
		w[k] = word_at(base, k);
}

static char *page_addr(long i)
{
	return g_win + i * PS;
}

static void on_fault(int sig)
{
	if (g_jmp_armed)
		siglongjmp(g_jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Bytes of @got that differ from what @p must hold (0: as modelled). */
static long page_wrong(const struct pg *p, const uint64_t *got)
{
	uint64_t base = key_base(p->key);
	long bad = 0, zero = 1;
	unsigned int i, b;

	for (i = 0; i < WORDS; i++) {
		uint64_t x = got[i] ^ word_at(base, i) ^ (p->tw == i + 1 ? ~0ULL : 0);

		if (got[i])
			zero = 0;
		for (b = 0; x && b < 8; b++, x >>= 8)
			bad += (x & 0xff) != 0;
	}
	return bad && p->maybe_zero && zero ? 0 : bad;
}

/* Reads page @i into @buf: directly, or through /proc/self/mem if PROT_NONE. */
static bool page_read(long i, uint64_t *buf)
{
	if (g_pg[i].prot & PROT_READ) {
		memcpy(buf, page_addr(i), PS);
		return true;
	}
	return pread(g_memfd, buf, PS, (off_t)(uintptr_t)page_addr(i)) == (ssize_t)PS;
}

/*
 * Checks page @i against its model. A fault while reading it jumps back
 * here; nothing this function keeps in locals changes after sigsetjmp(),
 * so none of them needs to survive siglongjmp().
 */
static void verify_page(long i, const char *after)
{
	static uint64_t buf[WORDS];
	struct pg *p = &g_pg[i];
	long bad;
	int sig;

	if (p->type == T_HOLE || p->unknown)
		return;
	g_jmp_armed = 1;
	/* SA_NODEFER: nothing to unblock, so no mask to save per page */
	sig = sigsetjmp(g_jmp, 0);
	if (sig) {
		g_jmp_armed = 0;
		add(&g_st->faults, 1);
		report("signal %d reading page %ld (%s, prot %d) after %s",
		       sig, i, type_names[p->type], p->prot, after);
		return;
	}
	if (!page_read(i, buf)) {
		g_jmp_armed = 0;
		add(&g_st->faults, 1);
		report("cannot read page %ld (%s) after %s: %s", i,
		       type_names[p->type], after, strerror(errno));
		return;
	}
	g_jmp_armed = 0;
	add(&g_st->verified, 1);
	bad = page_wrong(p, buf);
	if (!bad)
		return;
	add(&g_st->wrong_bytes, bad);
	add(&g_st->wrong_pages, 1);
	report(
	       "page %ld (%s, prot %d, key %llx, word %u inverted, maybe zero %d) after %s: %ld bytes wrong, word 0 %llx expected %llx",
	       i, type_names[p->type], p->prot, (unsigned long long)p->key,
	       p->tw ? p->tw - 1 : 0, p->maybe_zero, after, bad,
	       (unsigned long long)buf[0],
	       (unsigned long long)expected_word(p, 0));
}

static void verify_range(long a, long b, const char *after)
{
	long i;

	for (i = a < 0 ? 0 : a; i < b && i < NP; i++)
		verify_page(i, after);
}

static void errno_check(const char *what, long a, long b, int got, int want)
{
	if (got == want)
		return;
	add(&g_st->errno_bad, 1);
	report("%s of pages %ld..%ld: errno %d (%s), 6.12 gives %d (%s)", what,
	       a, b - 1, got, strerror(got), want, strerror(want));
}

/* ------------------------------------------------------ window layout */

/* Contents for a new write: shared by all workers, zero, or unique. */
static uint64_t new_key(void)
{
	unsigned long r = rnd_below(100);

	if (r < 45)
		return mix64(g_seed ^ (0x100 + rnd_below(48))) | 1;
	if (r < 55)
		return 0;
	return mix64(g_wseed ^ ++g_keyno) | 1;
}

static void fill_page(long i, uint64_t key)
{
	fill_words((uint64_t *)page_addr(i), key);
}

/* A memfd of @n pages whose page k holds keys[k]. */
static int memfd_filled(long n, const uint64_t *keys)
{
	static uint64_t buf[WORDS];
	int fd = memfd_create("ksm_random", 0);
	long i;

	if (fd < 0 || ftruncate(fd, n * PS))
		return -1;
	for (i = 0; i < n; i++) {
		fill_words(buf, keys[i]);
		if (pwrite(fd, buf, PS, i * PS) != (ssize_t)PS) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Maps pages [a, a + n) of the window (a hole) as @type; false on failure. */
static bool map_region(long a, long n, enum pg_type type)
{
	static uint64_t keys[NP];
	int flags = MAP_FIXED_NOREPLACE, fd = -1;
	bool file = false;
	void *p;
	long i;

	switch (type) {
	case T_LOCKED:
		flags |= MAP_LOCKED | MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case T_ANON:
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case T_FILEP:
		flags |= MAP_PRIVATE;
		file = true;
		break;
	default:
		flags |= MAP_SHARED;
		file = rnd_below(2);
		if (!file)
			flags |= MAP_ANONYMOUS;
		break;
	}
	for (i = 0; i < n; i++)
		keys[i] = file ? new_key() : 0;
	if (file) {
		fd = memfd_filled(n, keys);
		if (fd < 0)
			return false;
	}
	p = mmap(page_addr(a), n * PS, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (fd >= 0)
		close(fd);
	if (p != page_addr(a)) {
		report("mmap of %ld %s pages at page %ld: %s", n, type_names[type],
		       a, p == MAP_FAILED ? strerror(errno) : "wrong address");
		if (p != MAP_FAILED)
			munmap(p, n * PS);
		return false;
	}
	for (i = 0; i < n; i++)
		g_pg[a + i] = (struct pg) { .key = keys[i], .fkey = keys[i],
			.type = type, .prot = PROT_READ | PROT_WRITE };
	return true;
}

static enum pg_type rnd_type(void)
{
	static const enum pg_type t[] = { T_ANON, T_ANON, T_ANON, T_ANON,
		T_ANON, T_LOCKED, T_FILEP, T_FILEP, T_SHARED };

	return t[rnd_below(ARRAY_SIZE(t))];
}

/* The first page of a hole of @n pages in [LO, NP), or -1. */
static long find_hole(long n)
{
	long start = LO + rnd_below(NP - LO), i, run = 0, k;

	for (k = 0; k < 2 * (NP - LO); k++) {
		i = LO + (start - LO + k) % (NP - LO);
		if (i == LO)
			run = 0;
		run = g_pg[i].type == T_HOLE ? run + 1 : 0;
		if (run == n)
			return i - n + 1;
	}
	return -1;
}

/* The fixed first 2 MiB: a shared hugetlb page if there is one. */
static bool map_fixed_block(void)
{
	int flags = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
	void *p = MAP_FAILED;
	long i;

	if (g_hugetlb)
		p = mmap(g_win, HUGE_PAGES * PS, PROT_READ | PROT_WRITE,
			 flags | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED) {
		g_hugetlb = false;
		p = mmap(g_win, HUGE_PAGES * PS, PROT_READ | PROT_WRITE, flags, -1, 0);
	}
	if (p != g_win)
		return false;
	for (i = 0; i < HUGE_PAGES; i++)
		g_pg[i] = (struct pg) { .type = g_hugetlb ? T_HUGE : T_SHARED,
			.prot = PROT_READ | PROT_WRITE };
	return true;
}

static bool window_create(void)
{
	size_t len = NP * PS + HUGE_PAGES * PS;
	char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long a, n;

	if (p == MAP_FAILED)
		return false;
	g_win = (char *)(((uintptr_t)p + HUGE_PAGES * PS - 1) & ~(HUGE_PAGES * PS - 1));
	munmap(p, len);
	if (!map_fixed_block())
		return false;
	for (a = LO; a < NP; a += n) {
		a += rnd_below(4) ? 0 : 1 + rnd_below(8);
		n = 8 + rnd_below(120);
		if (a + n > NP)
			n = NP - a;
		if (n > 0 && !map_region(a, n, rnd_type()))
			return false;
	}
	return true;
}

/* Window pages [a, b) per /proc/self/maps: true where mapped. */
static bool maps_read(bool *mapped)
{
	static char buf[1 << 19];
	unsigned long s, e, w0 = (uintptr_t)g_win, w1 = w0 + NP * PS;
	char *line;
	int n = read_text("/proc/self/maps", buf, sizeof(buf));

	if (n < 0)
		return false;
	memset(mapped, 0, NP);
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (sscanf(line, "%lx-%lx", &s, &e) != 2 || e <= w0 || s >= w1)
			continue;
		for (s = s < w0 ? w0 : s; s < e && s < w1; s += PS)
			mapped[(s - w0) / PS] = true;
	}
	return true;
}

/* The holes of the model must be exactly the holes of /proc/self/maps. */
static void maps_check(const char *after)
{
	static bool mapped[NP];
	long i;

	if (!maps_read(mapped))
		return;
	for (i = 0; i < NP; i++) {
		if (mapped[i] == !!g_pg[i].type)
			continue;
		add(&g_st->errno_bad, 1);
		report("after %s page %ld is %s but the model says %s", after, i,
		       mapped[i] ? "mapped" : "not mapped", type_names[g_pg[i].type]);
		return;
	}
}

/* The VMA around a random mapped page of [LO, NP): its pages [*a, *b). */
static bool vma_pick(long *a, long *b)
{
	static char buf[1 << 19];
	unsigned long s, e, w0 = (uintptr_t)g_win + LO * PS, w1 = (uintptr_t)g_win + NP * PS;
	unsigned long want = w0 + rnd_below(NP - LO) * PS;
	char *line;

	if (read_text("/proc/self/maps", buf, sizeof(buf)) < 0)
		return false;
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (sscanf(line, "%lx-%lx", &s, &e) != 2 || e <= want || s > want)
			continue;
		if (s < w0 || e > w1)
			return false;
		*a = (s - (uintptr_t)g_win) / PS;
		*b = (e - (uintptr_t)g_win) / PS;
		return true;
	}
	return false;
}

/* ----------------------------------------------------------- operations */

static bool writable(const struct pg *p)
{
	if (p->type == T_HOLE || p->unknown || !(p->prot & PROT_WRITE))
		return false;
	return !(g_child && (p->type == T_SHARED || p->type == T_HUGE));
}

static void rnd_range(long lo, long maxlen, long *a, long *b)
{
	*a = lo + rnd_below(NP - lo);
	*b = *a + 1 + rnd_below(maxlen);
	if (*b > NP)
		*b = NP;
}

static void op_write(void)
{
	long a, b, i;

	rnd_range(0, 16, &a, &b);
	for (i = a; i < b; i++) {
		if (!writable(&g_pg[i]))
			continue;
		g_pg[i].key = new_key();
		g_pg[i].tw = 0;
		g_pg[i].maybe_zero = false;
		fill_page(i, g_pg[i].key);
	}
	verify_range(a, b, "write");
}

/* Rewrites one word of merged-or-not pages: a COW that must copy the rest. */
static void op_poke(void)
{
	long a, b, i;
	unsigned int w;

	rnd_range(0, 8, &a, &b);
	for (i = a; i < b; i++) {
		struct pg *p = &g_pg[i];
		uint64_t *page = (uint64_t *)page_addr(i);

		if (!writable(p) || p->maybe_zero)
			continue;
		if (p->tw)
			page[p->tw - 1] = word_of(p->key, p->tw - 1);
		w = rnd_below(WORDS);
		page[w] = ~word_of(p->key, w);
		p->tw = w + 1;
	}
	verify_range(a, b, "poke");
}

/*
 * What madvise(@advice) does to a page of @type in 6.12: 0 (done) or the
 * errno that stops the walk (EINVAL: this VMA refuses the advice).
 */
static int madv_refuses(int advice, enum pg_type type)
{
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_COLD:
	case MADV_PAGEOUT:
		return type == T_LOCKED || type == T_HUGE ? EINVAL : 0;
	case MADV_FREE:
		return type == T_ANON ? 0 : EINVAL;
	default:
		return 0;
	}
}

static void madv_apply(int advice, struct pg *p)
{
	if (advice == MADV_DONTNEED && p->type == T_ANON)
		*p = (struct pg) { .type = T_ANON, .prot = p->prot };
	else if (advice == MADV_DONTNEED && p->type == T_FILEP)
		*p = (struct pg) { .key = p->fkey, .fkey = p->fkey,
			.type = T_FILEP, .prot = p->prot };
	else if (advice == MADV_FREE && (p->key || p->tw))
		p->maybe_zero = true;
}

static void op_madvise(int advice, const char *name)
{
	long a, b, i, stop;
	int want = 0, got;
	bool merge = advice == MADV_MERGEABLE || advice == MADV_UNMERGEABLE;

	rnd_range(merge ? 0 : LO, merge ? 400 : 64, &a, &b);
	for (stop = a; stop < b; stop++) {
		if (g_pg[stop].type == T_HOLE) {
			want = ENOMEM;
			continue;
		}
		if (madv_refuses(advice, g_pg[stop].type)) {
			want = EINVAL;
			break;
		}
	}
	got = madvise(page_addr(a), (b - a) * PS, advice) ? errno : 0;
	if (advice == MADV_UNMERGEABLE && got == EAGAIN && !want) {
		add(&g_st->unmerge_eagain, 1);
		got = 0;
	}
	errno_check(name, a, b, got, want);
	for (i = a; i < stop; i++)
		if (g_pg[i].type != T_HOLE)
			madv_apply(advice, &g_pg[i]);
	verify_range(a, b, name);
}

/*
 * A fresh private anonymous 2 MiB at @a, some of its pages written: a range
 * MADV_COLLAPSE can make a THP of (random ranges seldom are one).
 */
static void collapse_prepare(long a)
{
	long i;

	if (munmap(page_addr(a), HUGE_PAGES * PS)) {
		add(&g_st->errno_bad, 1);
		report("munmap of 2 MiB at page %ld: %s", a, strerror(errno));
		return;
	}
	for (i = a; i < a + HUGE_PAGES; i++)
		g_pg[i] = (struct pg) { .type = T_HOLE };
	if (!map_region(a, HUGE_PAGES, T_ANON))
		return;
	for (i = 0; i < 64; i++) {
		struct pg *p = &g_pg[a + rnd_below(HUGE_PAGES)];

		p->key = new_key();
		fill_page(p - g_pg, p->key);
	}
}

static void op_collapse(void)
{
	long a = LO + rnd_below(2) * HUGE_PAGES, b = a + HUGE_PAGES;
	int got;

	if (rnd_below(4) == 0)
		collapse_prepare(a);
	else if (rnd_below(2))
		rnd_range(LO, 64, &a, &b);
	got = madvise(page_addr(a), (b - a) * PS, MADV_COLLAPSE) ? errno : 0;
	if (!got) {
		add(&g_st->collapse_ok, 1);
	} else if (got == EINVAL || got == EAGAIN || got == ENOMEM) {
		add(&g_st->collapse_err, 1);
	} else {
		add(&g_st->errno_bad, 1);
		report("MADV_COLLAPSE of pages %ld..%ld: unexpected errno %d (%s)",
		       a, b - 1, got, strerror(got));
	}
	verify_range(a, b, "collapse");
}

static void op_prctl(void)
{
	unsigned long r = rnd_below(8);
	long ret;
	int got;

	if (r < 3) {
		bool on = r;

		got = prctl(PR_SET_MEMORY_MERGE, on, 0, 0, 0) ? errno : 0;
		if (!on && got == EAGAIN) {
			add(&g_st->unmerge_eagain, 1);
			got = 0;
		}
		errno_check(on ? "PR_SET_MEMORY_MERGE 1" : "PR_SET_MEMORY_MERGE 0",
			    0, NP, got, 0);
		if (!got)
			g_merge_any = on;
	} else if (r < 5) {
		got = prctl(PR_SET_MEMORY_MERGE, !g_merge_any, 1, 0, 0) ? errno : 0;
		errno_check("PR_SET_MEMORY_MERGE with arg3 1", 0, NP, got, EINVAL);
		got = prctl(PR_GET_MEMORY_MERGE, 1, 0, 0, 0) ? errno : 0;
		errno_check("PR_GET_MEMORY_MERGE with arg2 1", 0, NP, got, EINVAL);
	}
	ret = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
	if (ret != g_merge_any) {
		add(&g_st->errno_bad, 1);
		report("PR_GET_MEMORY_MERGE gives %ld (%s), the model %d", ret,
		       ret < 0 ? strerror(errno) : "", g_merge_any);
	}
	verify_range(0, NP, "prctl");
}

static void op_mprotect(void)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE };
	int prot = prots[rnd_below(3)], want = 0, got;
	long a, b, i;

	rnd_range(LO, 64, &a, &b);
	for (i = a; i < b; i++) {
		if (g_pg[i].type == T_HOLE) {
			want = ENOMEM;
			break;
		}
	}
	got = mprotect(page_addr(a), (b - a) * PS, prot) ? errno : 0;
	errno_check("mprotect", a, b, got, want);
	/* 6.12 changes the VMAs before the first hole, none if it starts in one */
	for (b = i, i = a; i < b; i++)
		g_pg[i].prot = prot;
	verify_range(a, b, "mprotect");
}

static void op_munmap(void)
{
	long a, b, i;
	int got;

	rnd_range(LO, 32, &a, &b);
	got = munmap(page_addr(a), (b - a) * PS) ? errno : 0;
	errno_check("munmap", a, b, got, 0);
	for (i = a; i < b; i++)
		g_pg[i] = (struct pg) { .type = T_HOLE };
	maps_check("munmap");
}

static void op_mmap(void)
{
	long n = 1 + rnd_below(64), a = find_hole(n);

	if (a < 0)
		return;
	if (!map_region(a, n, rnd_type()))
		add(&g_st->errno_bad, 1);
	maps_check("mmap");
	verify_range(a, a + n, "mmap");
}

/* Moves part of a VMA to a hole, shrinks it, or asks for more than a VMA. */
static void op_mremap(void)
{
	long a, b, n, dst, i;
	void *p;

	if (!vma_pick(&a, &b))
		return;
	n = 1 + rnd_below(b - a);
	a += rnd_below(b - a - n + 1);
	if (rnd_below(8) == 0 && a + n == b && b < NP) {
		/* past the end of the VMA: EFAULT, nothing changes */
		dst = find_hole(n + 1);
		/* overlapping ranges get EINVAL before the VMA is looked at */
		if (dst < 0 || (dst < b + 1 && dst + n + 1 > a))
			return;
		p = mremap(page_addr(a), (n + 1) * PS, (n + 1) * PS,
			   MREMAP_MAYMOVE | MREMAP_FIXED, page_addr(dst));
		errno_check("mremap across a VMA's end", a, b + 1,
			    p == MAP_FAILED ? errno : 0, EFAULT);
	} else if (rnd_below(4) == 0 && n > 1) {
		p = mremap(page_addr(a), n * PS, (n / 2) * PS, 0);
		errno_check("mremap shrink", a, a + n, p == MAP_FAILED ? errno : 0, 0);
		if (p != MAP_FAILED)
			for (i = a + n / 2; i < a + n; i++)
				g_pg[i] = (struct pg) { .type = T_HOLE };
	} else {
		dst = find_hole(n);
		if (dst < 0)
			return;
		p = mremap(page_addr(a), n * PS, n * PS, MREMAP_MAYMOVE | MREMAP_FIXED,
			   page_addr(dst));
		errno_check("mremap move", a, a + n, p == MAP_FAILED ? errno : 0, 0);
		if (p != MAP_FAILED) {
			for (i = 0; i < n; i++) {
				g_pg[dst + i] = g_pg[a + i];
				g_pg[a + i] = (struct pg) { .type = T_HOLE };
			}
			verify_range(dst, dst + n, "mremap");
		}
	}
	maps_check("mremap");
	verify_range(a, a + n + 1, "mremap");
}

static bool status_ok(int s)
{
	return (s >= 0 && s < g_nodes) || s == -ENOENT || s == -EFAULT ||
	       s == -EACCES || s == -EBUSY || s == -ENOMEM || s == -EAGAIN;
}

static void op_move(void)
{
	void *pages[16];
	int nodes[16], status[16], k, n = 1 + rnd_below(16);
	int flags = rnd_below(2) ? MPOL_MF_MOVE : MPOL_MF_MOVE_ALL;
	long idx[16], ret;

	if (g_nodes < 2)
		return;
	for (k = 0; k < n; k++) {
		idx[k] = LO + rnd_below(NP - LO);
		pages[k] = page_addr(idx[k]);
		nodes[k] = rnd_below(g_nodes);
		status[k] = 12345;
	}
	ret = syscall(__NR_move_pages, 0, n, pages, nodes, status, flags);
	if (ret < 0 && errno != ENOMEM && errno != EBUSY) {
		add(&g_st->errno_bad, 1);
		report("move_pages: %s", strerror(errno));
	}
	/* > 0: that many pages failed to move, and 6.12 stops there */
	if (ret > 0)
		add(&g_st->not_moved, ret);
	for (k = 0; ret == 0 && k < n; k++) {
		bool hole = g_pg[idx[k]].type == T_HOLE;

		if (status[k] >= 0)
			add(&g_st->moved, 1);
		else
			add(&g_st->not_moved, 1);
		if (hole ? status[k] == -EFAULT : status_ok(status[k]))
			continue;
		add(&g_st->errno_bad, 1);
		report("move_pages of page %ld (%s): status %d", idx[k],
		       type_names[g_pg[idx[k]].type], status[k]);
	}
	for (k = 0; k < n; k++)
		verify_range(idx[k], idx[k] + 1, "move_pages");
}

/* madvise over the special mappings [vvar] and [vdso]: 6.12 ignores them. */
static void op_special(void)
{
	static char buf[1 << 19];
	unsigned long s, e, lo = 0, hi = 0, vs = 0;
	struct timespec ts;
	char *line;
	int got, want = 0;

	if (read_text("/proc/self/maps", buf, sizeof(buf)) < 0)
		return;
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		if (strstr(line, "[vvar]") || strstr(line, "[vdso]")) {
			if (hi && s != hi)
				want = ENOMEM;
			if (!lo)
				lo = s;
			hi = e;
			if (strstr(line, "[vvar]"))
				vs = s;
		}
	}
	if (!lo)
		return;
	got = madvise((void *)lo, hi - lo, rnd_below(2) ? MADV_MERGEABLE : MADV_UNMERGEABLE) ?
	      errno : 0;
	errno_check("madvise over [vvar] and [vdso]", 0, (hi - lo) / PS, got, want);
	if (clock_gettime(CLOCK_MONOTONIC, &ts) || ts.tv_sec < 0) {
		add(&g_st->errno_bad, 1);
		report("clock_gettime failed after madvise of [vvar] at %lx", vs);
	}
}

static void op_badargs(void)
{
	long a = rnd_below(NP);
	int got;

	got = madvise(page_addr(a) + 1 + rnd_below(PS - 1), PS, MADV_MERGEABLE) ? errno : 0;
	errno_check("MADV_MERGEABLE at an unaligned address", a, a + 1, got, EINVAL);
	got = madvise(page_addr(a), PS, 12345) ? errno : 0;
	errno_check("madvise advice 12345", a, a + 1, got, EINVAL);
}

static void worker_loop(double end, long max_ops);

static void reap_children(bool block)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0) {
		g_live--;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			add(&g_st->child_bad, 1);
			report("child %d ended with status %#x", pid, status);
		}
	}
}

static void op_fork(double end)
{
	pid_t pid;
	long i;

	if (g_child)
		return;
	reap_children(false);
	if (g_live >= 3)
		return;
	pid = fork();
	if (pid < 0) {
		report("fork: %s", strerror(errno));
		return;
	}
	if (pid > 0) {
		add(&g_st->children, 1);
		g_live++;
		return;
	}
	/* the child: its own copy of the model; shared pages are the parent's */
	g_child = true;
	g_rng ^= getpid();
	/* the parent's /proc/self/mem reads the parent's memory */
	close(g_memfd);
	g_memfd = open("/proc/self/mem", O_RDONLY);
	for (i = 0; i < NP; i++) {
		if (g_pg[i].type == T_SHARED || g_pg[i].type == T_HUGE)
			g_pg[i].unknown = true;
		/* mlock is not inherited */
		if (g_pg[i].type == T_LOCKED)
			g_pg[i].type = T_ANON;
	}
	if (prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) != g_merge_any) {
		add(&g_st->errno_bad, 1);
		report("the child's PR_GET_MEMORY_MERGE differs from its parent's");
	}
	verify_range(0, NP, "fork (child)");
	worker_loop(end < now() + 2 ? end : now() + 2, 20 + rnd_below(300));
	verify_range(0, NP, "the child's last operation");
	_exit(0);
}

static void op_verify(void)
{
	verify_range(0, NP, "verify");
}

static void op_merge(void)
{
	op_madvise(MADV_MERGEABLE, "MADV_MERGEABLE");
}

static void op_unmerge(void)
{
	op_madvise(MADV_UNMERGEABLE, "MADV_UNMERGEABLE");
}

static void op_dontneed(void)
{
	op_madvise(MADV_DONTNEED, "MADV_DONTNEED");
}

static void op_free(void)
{
	op_madvise(MADV_FREE, "MADV_FREE");
}

static void op_cold(void)
{
	op_madvise(MADV_COLD, "MADV_COLD");
}

static void op_pageout(void)
{
	op_madvise(MADV_PAGEOUT, "MADV_PAGEOUT");
}

static void (* const op_fns[NR_OPS])(void) = {
	[OP_WRITE] = op_write, [OP_POKE] = op_poke, [OP_VERIFY] = op_verify,
	[OP_MERGE] = op_merge, [OP_UNMERGE] = op_unmerge, [OP_PRCTL] = op_prctl,
	[OP_MREMAP] = op_mremap, [OP_MPROTECT] = op_mprotect,
	[OP_MUNMAP] = op_munmap, [OP_MMAP] = op_mmap,
	[OP_DONTNEED] = op_dontneed, [OP_FREE] = op_free, [OP_COLD] = op_cold,
	[OP_PAGEOUT] = op_pageout, [OP_COLLAPSE] = op_collapse,
	[OP_MOVE] = op_move, [OP_SPECIAL] = op_special,
	[OP_BADARGS] = op_badargs,
};

static void op_run(int op, double end)
{
	if (op == OP_FORK)
		op_fork(end);
	else
		op_fns[op]();
}

static void worker_loop(double end, long max_ops)
{
	int total = 0, k, op;
	long n;

	for (k = 0; k < NR_OPS; k++)
		total += op_weight[k];
	for (n = 0; n < max_ops && now() < end; n++) {
		int r = rnd_below(total);

		for (op = 0; r >= op_weight[op]; op++)
			r -= op_weight[op];
		add(&g_st->ops[op], 1);
		op_run(op, end);
		if (!g_child && n % 64 == 63) {
			reap_children(false);
			verify_range(0, NP, "64 operations");
		}
	}
}

static void worker_main(int id, double end)
{
	struct sigaction sa = { .sa_handler = on_fault, .sa_flags = SA_NODEFER };

	g_id = id;
	g_st = &g_stats[id];
	g_wseed = mix64(g_seed ^ (0x1000 + id));
	g_rng = g_wseed;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	g_memfd = open("/proc/self/mem", O_RDONLY);
	if (g_memfd < 0 || !window_create()) {
		report("setting up the window failed: %s", strerror(errno));
		add(&g_st->errno_bad, 1);
		_exit(1);
	}
	maps_check("setting up");
	verify_range(0, NP, "setting up");
	if (madvise(g_win, NP * PS, MADV_MERGEABLE) && errno != ENOMEM)
		report("MADV_MERGEABLE of the window: %s", strerror(errno));
	worker_loop(end, LONG_MAX);
	reap_children(true);
	verify_range(0, NP, "the last operation");
	maps_check("the last operation");
	g_st->done = true;
	_exit(0);
}

/* ------------------------------------------------------------- knobs */

/* A write that must fail: the value and 6.12's errno. */
struct bad {
	const char *val;
	int err;
};

/* Garbage every number knob refuses with EINVAL. */
static const struct bad bad_num[] = {
	{ "abc", EINVAL }, { "-1", EINVAL }, { "1.5", EINVAL },
	{ "0x10", EINVAL }, { "5 5", EINVAL }, { " 7", EINVAL }, { NULL, 0 },
};

/* Garbage every kstrtobool() knob refuses ("1.5" would read as 1). */
static const struct bad bad_bool[] = {
	{ "abc", EINVAL }, { "-1", EINVAL }, { "2", EINVAL }, { "x", EINVAL },
	{ "5 5", EINVAL }, { "99999999999999999999999", EINVAL }, { NULL, 0 },
};

struct knob {
	const char *name;
	const char *good[7];	/* [0]: the value the run mostly keeps */
	const struct bad *common;	/* bad_num, bad_bool or NULL */
	struct bad bad[6];	/* this knob's own garbage */
	bool busy_ok;		/* EBUSY while KSM pages exist (6.12) */
};

static const struct knob knobs[] = {
	{ "run", { "1", "0", "2" }, bad_num,
	  { { "3", EINVAL }, { "4", EINVAL }, { "4294967296", EINVAL } }, false },
	{ "pages_to_scan", { "2000", "100", "10000", "1", "0", "4294967295" }, bad_num,
	  { { "4294967296", EINVAL } }, false },
	{ "sleep_millisecs", { "0", "1", "10", "50", "4294967295" }, bad_num,
	  { { "4294967296", EINVAL } }, false },
	{ "merge_across_nodes", { "1", "0" }, bad_num,
	  { { "2", EINVAL }, { "99999999999999999999999", ERANGE } }, true },
	{ "use_zero_pages", { "0", "1", "y", "n", "on", "off" }, bad_bool, { }, false },
	{ "max_page_sharing", { "256", "2", "3", "16", "65536" }, bad_num,
	  { { "1", EINVAL }, { "0", EINVAL }, { "2147483648", ERANGE },
	    { "99999999999999999999999", ERANGE } }, true },
	{ "stable_node_chains_prune_millisecs", { "2000", "0", "10", "100000" }, bad_num,
	  { { "4294967296", EINVAL } }, false },
	{ "smart_scan", { "1", "0" }, bad_bool, { }, false },
	{ "advisor_mode", { "none", "scan-time" }, NULL,
	  { { "scan", EINVAL }, { "None", EINVAL }, { "scan-time2", EINVAL },
	    { "1", EINVAL }, { "none scan-time", EINVAL } }, false },
	{ "advisor_max_cpu", { "70", "1", "100", "0" }, bad_num, { }, false },
	{ "advisor_min_pages_to_scan", { "500", "1", "5000" }, bad_num, { }, false },
	{ "advisor_max_pages_to_scan", { "30000", "1000", "100000" }, bad_num, { }, false },
	{ "advisor_target_scan_time", { "200", "1", "10" }, bad_num,
	  { { "0", EINVAL } }, false },
};

static const char * const ro_files[] = {
	"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
	"pages_scanned", "full_scans", "pages_skipped", "stable_node_chains",
	"stable_node_dups", "ksm_zero_pages", "general_profit",
};

#define NR_KNOBS	ARRAY_SIZE(knobs)

static char g_saved[NR_KNOBS][64];
static bool g_have[NR_KNOBS];

struct ctl_stats {
	long good, good_busy, good_bad, bad, bad_bad, changed, ro, ro_bad;
	long run2_err;
	long max_sharing;
};

static struct ctl_stats g_ctl;

static void snapshot(char (*v)[64])
{
	char path[128];
	unsigned int k;

	for (k = 0; k < NR_KNOBS; k++) {
		snprintf(path, sizeof(path), KSM_DIR "%s", knobs[k].name);
		if (!g_have[k] || read_text(path, v[k], 64) < 0)
			v[k][0] = '\0';
	}
}

static bool advisor_on(void)
{
	char buf[64];

	return read_text(KSM_DIR "advisor_mode", buf, sizeof(buf)) > 0 &&
	       strstr(buf, "[scan-time]");
}

/* What reading knob @k must give after @val was written. */
static void canonical(const struct knob *k, const char *val, char *out)
{
	if (!strcmp(k->name, "advisor_mode"))
		val = strcmp(val, "none") ? "none [scan-time]" : "[none] scan-time";
	else if (!strcmp(val, "y") || !strcmp(val, "on"))
		val = "1";
	else if (!strcmp(val, "n") || !strcmp(val, "off"))
		val = "0";
	snprintf(out, 64, "%s", val);
}

static void ctl_fail(long *ctr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if ((*ctr)++ >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("# knobs: %s", buf);
}

static void knob_good(unsigned int ki, const char *val)
{
	const struct knob *k = &knobs[ki];
	char want[64], got[64], path[128];
	bool adv = advisor_on();
	int err = ksm_set(k->name, val);

	snprintf(path, sizeof(path), KSM_DIR "%s", k->name);
	read_text(path, got, sizeof(got));
	g_ctl.good++;
	if (!strcmp(k->name, "pages_to_scan") && adv) {
		if (err != EINVAL)
			ctl_fail(&g_ctl.good_bad,
				 "pages_to_scan=%s under the advisor: errno %d, 6.12 gives EINVAL",
				 val, err);
		return;
	}
	if (err == EBUSY && k->busy_ok) {
		g_ctl.good_busy++;
		return;
	}
	if (!strcmp(k->name, "run") && !strcmp(val, "2") && err) {
		/* an unmerge that fails leaves ksmd stopped */
		g_ctl.run2_err++;
		say("# knobs: run=2 failed: %s; reads %s", strerror(err), got);
		if (strcmp(got, "0"))
			ctl_fail(&g_ctl.good_bad, "run=2 failed but run reads %s", got);
		return;
	}
	canonical(k, val, want);
	if (err || strcmp(got, want))
		ctl_fail(&g_ctl.good_bad, "%s=%s: errno %d (%s), reads back '%s'",
			 k->name, val, err, err ? strerror(err) : "none", got);
}

static void knob_bad(unsigned int ki, const struct bad *b)
{
	static char before[NR_KNOBS][64], after[NR_KNOBS][64];
	const struct knob *k = &knobs[ki];
	bool adv = advisor_on();
	unsigned int j;
	int err;

	snapshot(before);
	err = ksm_set(k->name, b->val);
	snapshot(after);
	g_ctl.bad++;
	if (err != b->err)
		ctl_fail(&g_ctl.bad_bad, "%s='%s': errno %d (%s), 6.12 gives %d (%s)",
			 k->name, b->val, err, strerror(err), b->err, strerror(b->err));
	for (j = 0; j < NR_KNOBS; j++) {
		/* the advisor sets pages_to_scan by itself */
		if (adv && !strcmp(knobs[j].name, "pages_to_scan"))
			continue;
		if (strcmp(before[j], after[j]))
			ctl_fail(&g_ctl.changed, "%s='%s' changed %s from '%s' to '%s'",
				 k->name, b->val, knobs[j].name, before[j], after[j]);
	}
}

static void knob_ro(void)
{
	const char *name = ro_files[rnd_below(ARRAY_SIZE(ro_files))];
	int err = ksm_set(name, "0");

	g_ctl.ro++;
	if (err != EACCES)
		ctl_fail(&g_ctl.ro_bad, "writing read-only %s: errno %d (%s), expected EACCES",
			 name, err, strerror(err));
}

/* Back to merging: run=1, quick scans, no advisor. */
static void knobs_baseline(void)
{
	knob_good(8, "none");
	knob_good(0, "1");
	knob_good(2, rnd_below(2) ? "0" : "1");
	knob_good(1, "2000");
}

static void controller_step(long step)
{
	unsigned int ki = rnd_below(NR_KNOBS), n;
	const struct knob *k = &knobs[ki];

	if (!g_have[ki])
		return;
	if (step % 8 == 0) {
		knobs_baseline();
		return;
	}
	if (step % 13 == 0) {
		knob_ro();
		return;
	}
	if (rnd_below(10) < 6) {
		for (n = 0; n < ARRAY_SIZE(k->good) && k->good[n]; n++)
			;
		/* run=2 unmerges everything: seldom */
		if (ki == 0 && rnd_below(4))
			n = 2;
		knob_good(ki, k->good[rnd_below(n)]);
	} else {
		unsigned int own, common = 0;

		for (own = 0; own < ARRAY_SIZE(k->bad) && k->bad[own].val; own++)
			;
		while (k->common && k->common[common].val)
			common++;
		n = rnd_below(own + common);
		knob_bad(ki, n < own ? &k->bad[n] : &k->common[n - own]);
	}
}

static void knobs_save(void)
{
	char path[128];
	unsigned int k;

	for (k = 0; k < NR_KNOBS; k++) {
		snprintf(path, sizeof(path), KSM_DIR "%s", knobs[k].name);
		g_have[k] = read_text(path, g_saved[k], sizeof(g_saved[k])) >= 0;
		if (!g_have[k])
			say("# no %s on this kernel", knobs[k].name);
	}
}

static void knobs_restore(void)
{
	unsigned int k;

	ksm_set("advisor_mode", strstr(g_saved[8], "[scan-time]") ? "scan-time" : "none");
	ksm_set("run", "2");
	for (k = 1; k < NR_KNOBS; k++) {
		if (k == 8 || !g_have[k])
			continue;
		if (k == 1 && strstr(g_saved[8], "[scan-time]"))
			continue;
		if (ksm_set(knobs[k].name, g_saved[k]))
			say("# could not restore %s=%s", knobs[k].name, g_saved[k]);
	}
	ksm_set("run", g_saved[0]);
}

/* ------------------------------------------------------- random: driver */

static const char *const counters[] = {
	"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
	"ksm_zero_pages", "general_profit", "stable_node_chains", "stable_node_dups",
};

static bool counters_zero(bool print)
{
	bool zero = true;
	unsigned int k;
	long v;

	for (k = 0; k < ARRAY_SIZE(counters); k++) {
		v = ksm_get(counters[k]);
		if (v)
			zero = false;
		if (print && v)
			say("# %s %ld", counters[k], v);
	}
	return zero;
}

static void progress(double t0)
{
	long sharing = ksm_get("pages_sharing");

	if (sharing > g_ctl.max_sharing)
		g_ctl.max_sharing = sharing;
	say(
	    "# %4.0f s: full_scans %ld pages_shared %ld pages_sharing %ld ksm_zero_pages %ld run %ld",
	    now() - t0, ksm_get("full_scans"), ksm_get("pages_shared"), sharing,
	    ksm_get("ksm_zero_pages"), ksm_get("run"));
}

static void set_hugetlb(int workers, char *saved)
{
	char buf[32];

	saved[0] = '\0';
	if (read_text("/proc/sys/vm/nr_hugepages", saved, 32) < 0)
		return;
	snprintf(buf, sizeof(buf), "%d", workers);
	write_text("/proc/sys/vm/nr_hugepages", buf);
	g_hugetlb = read_text("/proc/sys/vm/nr_hugepages", buf, sizeof(buf)) > 0 &&
		    atoi(buf) >= workers;
}

static int count_nodes(void)
{
	struct stat st;

	return stat("/sys/devices/system/node/node1", &st) ? 1 : 2;
}

static void random_report(int workers)
{
	struct wstats sum = { 0 };
	char line[900];
	int k, j, n = 0;
	long total = 0;

	for (k = 0; k < workers; k++) {
		struct wstats *s = &g_stats[k];

		for (j = 0; j < NR_OPS; j++)
			sum.ops[j] += s->ops[j];
		sum.wrong_bytes += s->wrong_bytes;
		sum.wrong_pages += s->wrong_pages;
		sum.faults += s->faults;
		sum.errno_bad += s->errno_bad;
		sum.verified += s->verified;
		sum.children += s->children;
		sum.child_bad += s->child_bad;
		sum.unmerge_eagain += s->unmerge_eagain;
		sum.moved += s->moved;
		sum.not_moved += s->not_moved;
		sum.collapse_ok += s->collapse_ok;
		sum.collapse_err += s->collapse_err;
		if (!s->done)
			sum.child_bad++, say("# worker %d did not finish", k);
	}
	for (j = 0; j < NR_OPS; j++) {
		n += snprintf(line + n, sizeof(line) - n, " %s %ld", op_names[j], sum.ops[j]);
		total += sum.ops[j];
	}
	say("# operations %ld:%s", total, line);
	say(
	    "# pages verified %ld, children %ld, move_pages moved %ld not %ld, collapse ok %ld refused %ld, unmerge EAGAIN %ld",
	    sum.verified, sum.children, sum.moved, sum.not_moved, sum.collapse_ok,
	    sum.collapse_err, sum.unmerge_eagain);
	say("# wrong bytes %ld (in %ld pages), faults %ld, errno mismatches %ld",
	    sum.wrong_bytes, sum.wrong_pages, sum.faults, sum.errno_bad);
	say(
	    "# knobs: %ld valid writes (%ld EBUSY, %ld wrong), %ld garbage writes (%ld wrong errno, %ld changed a knob), %ld read-only writes (%ld wrong), run=2 errors %ld",
	    g_ctl.good, g_ctl.good_busy, g_ctl.good_bad, g_ctl.bad, g_ctl.bad_bad,
	    g_ctl.changed, g_ctl.ro, g_ctl.ro_bad, g_ctl.run2_err);
	say("# slowest knob write: %s, %.2f s", g_slowest_what, g_slowest_write);
	result(sum.wrong_bytes == 0 && sum.faults == 0,
	       "every byte of every page as modelled (wrong bytes 0)");
	result(sum.errno_bad == 0, "every call returned what 6.12 returns");
	result(sum.child_bad == 0 && sum.children > 0,
	       "workers and fork children finished cleanly");
	result(g_ctl.good_bad == 0 && g_ctl.good > 0, "valid knob values accepted and read back");
	result(g_ctl.bad_bad == 0 && g_ctl.changed == 0 && g_ctl.ro_bad == 0 && g_ctl.bad > 0,
	       "garbage refused with 6.12's errno, nothing changed");
	result(g_ctl.max_sharing > 0, "ksmd merged pages during the run");
}

/* -n: workers only, no knob or hugetlb pool writes (a check of the model) */
static bool g_dry;

static int test_random(int workers, double secs)
{
	char hp_saved[32];
	pid_t pids[MAX_WORKERS];
	double t0 = now(), end = t0 + secs, next = t0 + 10;
	long step = 0;
	int k;

	say("1..7");
	g_nodes = count_nodes();
	hp_saved[0] = '\0';
	if (!g_dry) {
		knobs_save();
		set_hugetlb(workers, hp_saved);
	}
	say(
	    "# seed %llu: %d workers for %.0f s, %d nodes, hugetlb %s (rerun: ksm_random_tests -s %llu -d %.0f)",
	    (unsigned long long)g_seed, workers, secs, g_nodes, g_hugetlb ? "yes" : "no",
	    (unsigned long long)g_seed, secs);
	g_stats = mmap(NULL, sizeof(*g_stats) * MAX_WORKERS, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_stats == MAP_FAILED)
		return 1;
	memset(g_stats, 0, sizeof(*g_stats) * MAX_WORKERS);
	if (!g_dry)
		knobs_baseline();
	for (k = 0; k < workers; k++) {
		pids[k] = fork();
		if (!pids[k])
			worker_main(k, end);
	}
	g_rng = mix64(g_seed ^ 0xc0);
	while (now() < end) {
		if (!g_dry)
			controller_step(step++);
		sleep_ms(10 + rnd_below(50));
		g_ctl.max_sharing = MAX(g_ctl.max_sharing, ksm_get("pages_sharing"));
		if (now() > next) {
			progress(t0);
			next += 10;
		}
	}
	if (g_dry) {
		for (k = 0; k < workers; k++)
			waitpid(pids[k], NULL, 0);
		random_report(workers);
		return g_nfail ? 1 : 0;
	}
	knobs_baseline();
	for (k = 0; k < workers; k++) {
		int status;

		if (waitpid(pids[k], &status, 0) != pids[k] || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			say("# worker %d: status %#x", k, status);
	}
	progress(t0);
	random_report(workers);
	ksm_set("sleep_millisecs", "0");
	for (k = 0; k < 600 && !counters_zero(false); k++)
		sleep_ms(100);
	result(counters_zero(true), "every KSM counter back to 0 once the processes are gone");
	knobs_restore();
	if (hp_saved[0])
		write_text("/proc/sys/vm/nr_hugepages", hp_saved);
	return g_nfail ? 1 : 0;
}

/* ---------------------------------------------------------------- memcg */

#define MC_PAGES	8192		/* 32 MiB, twice the limit */
#define MC_TWINS	2048		/* contents held by two pages each */
#define MC_LIMIT	"16M"
#define MC_MARGIN_MB	24		/* MemAvailable left by the hog */

static uint64_t mc_key(long i)
{
	return mix64(g_seed ^ (i < 2 * MC_TWINS ? i % MC_TWINS : 0x10000 + i)) | 1;
}

/*
 * Checks every page of @buf; with @poke, also writes one word of every
 * @poke-th page and writes it back (a COW charged to the cgroup).
 */
static long mc_pass(char *buf, int poke)
{
	struct pg p = { 0 };
	long i, bad = 0;

	for (i = 0; i < MC_PAGES; i++) {
		uint64_t *w = (uint64_t *)(buf + i * PS), v;

		p.key = mc_key(i);
		bad += page_wrong(&p, w);
		if (poke && i % poke == 0) {
			/* Atomic accesses: the compiler keeps both stores. */
			v = __atomic_load_n(&w[7], __ATOMIC_RELAXED);
			__atomic_store_n(&w[7], ~v, __ATOMIC_RELAXED);
			__atomic_store_n(&w[7], v, __ATOMIC_RELAXED);
		}
	}
	add(&g_stats[0].verified, MC_PAGES);
	return bad;
}

static int cg_write(const char *file, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), CG_DIR "/%s", file);
	return write_text(path, val);
}

static long cg_key(const char *file, const char *key)
{
	char path[256], buf[64];

	snprintf(path, sizeof(path), CG_DIR "/%s", file);
	if (!*key)
		return read_text(path, buf, sizeof(buf)) > 0 ? strtol(buf, NULL, 10) : -1;
	return file_key(path, key);
}

/* Lock-free, so the signal handler may count. */
static atomic_int g_phase;

static void on_usr1(int sig)
{
	(void)sig;
	g_phase++;
}

/*
 * The process in the cgroup.  Phase 0: checks and rewrites its pages until
 * SIGUSR1; then checks them once and reports "1".  Each further SIGUSR1:
 * checks them once (the first of these swaps everything back in) and
 * reports the phase; at phase 3 it exits.  Wrong bytes go to g_stats[0].
 */
static void mc_child(int ready)
{
	char *buf = mmap(NULL, MC_PAGES * PS, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int seen = 0;
	char c;
	long i;

	signal(SIGUSR1, on_usr1);
	if (buf == MAP_FAILED || madvise(buf, MC_PAGES * PS, MADV_MERGEABLE))
		_exit(2);
	for (i = 0; i < MC_PAGES; i++)
		fill_words((uint64_t *)(buf + i * PS), mc_key(i));
	if (write(ready, "0", 1) != 1)
		_exit(2);
	while (!g_phase)
		add(&g_stats[0].wrong_bytes, mc_pass(buf, 3));
	for (;;) {
		while (seen == g_phase)
			pause();
		seen = g_phase;
		add(&g_stats[0].wrong_bytes, mc_pass(buf, 0));
		c = '0' + seen;
		if (write(ready, &c, 1) != 1 || seen >= 3)
			_exit(0);
	}
}

/* Sends SIGUSR1 to @pid and waits for its answer; false if none. */
static bool mc_next(pid_t pid, int fd)
{
	char c;

	kill(pid, SIGUSR1);
	return read(fd, &c, 1) == 1;
}

/* Mlocks memory until MemAvailable is about MC_MARGIN_MB; returns MiB held. */
static long mc_hog(void)
{
	long avail, held = 0;
	void *p;

	for (;;) {
		avail = file_key("/proc/meminfo", "MemAvailable") / 1024;
		if (avail < 0 || avail <= MC_MARGIN_MB + 8)
			break;
		p = mmap(NULL, 8UL << 20, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
		if (p == MAP_FAILED)
			break;
		held += 8;
	}
	return held;
}

static bool cg_setup(void)
{
	char buf[256];

	if (read_text("/sys/fs/cgroup/cgroup.controllers", buf, sizeof(buf)) < 0 ||
	    !strstr(buf, "memory"))
		return false;
	write_text("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	if (mkdir(CG_DIR, 0755) && errno != EEXIST)
		return false;
	return cg_write("memory.max", MC_LIMIT) == 0;
}

static bool mc_wait_merge(double secs, long *shared, long *sharing)
{
	double until = now() + secs;

	do {
		*shared = ksm_get("pages_shared");
		*sharing = ksm_get("pages_sharing");
		if (*shared == MC_TWINS && *sharing == MC_TWINS)
			return true;
		sleep_ms(200);
	} while (now() < until);
	return false;
}

/* Starts the process in the cgroup; 0 if it did not get ready. */
static pid_t mc_start(int *fd)
{
	int pipefd[2];
	char c, pid[32];
	pid_t child;

	if (pipe(pipefd))
		return 0;
	child = fork();
	if (!child) {
		snprintf(pid, sizeof(pid), "%d", getpid());
		if (cg_write("cgroup.procs", pid))
			_exit(3);
		mc_child(pipefd[1]);
	}
	*fd = pipefd[0];
	return read(*fd, &c, 1) == 1 ? child : 0;
}

/* Forks the hog; its size in MiB through *@mb. */
static pid_t mc_hog_start(long *mb)
{
	int pipefd[2];
	pid_t hog;

	if (pipe(pipefd))
		return 0;
	hog = fork();
	if (!hog) {
		write_text("/proc/self/oom_score_adj", "1000");
		*mb = mc_hog();
		if (write(pipefd[1], mb, sizeof(*mb)) != sizeof(*mb))
			_exit(2);
		pause();
		_exit(0);
	}
	if (read(pipefd[0], mb, sizeof(*mb)) != sizeof(*mb))
		*mb = -1;
	return hog;
}

static void mc_knobs(void)
{
	ksm_set("run", "2");
	ksm_set("advisor_mode", "none");
	ksm_set("max_page_sharing", "256");
	ksm_set("sleep_millisecs", "0");
	ksm_set("pages_to_scan", "100000");
	ksm_set("run", "1");
}

static int test_memcg(double secs)
{
	long oom0, oom1, cgoom, hogmb, shared, sharing, max_events, scans;
	pid_t child, hog;
	bool merged;
	int fd, status, k;

	g_stats = mmap(NULL, sizeof(*g_stats), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_stats == MAP_FAILED)
		return 1;
	if (file_key("/proc/meminfo", "SwapTotal") <= 0 || !cg_setup()) {
		say("1..0 # SKIP needs swap and a cgroup v2 memory controller");
		return 4;
	}
	say("1..5");
	memset(g_stats, 0, sizeof(*g_stats));
	knobs_save();
	mc_knobs();
	oom0 = file_key("/proc/vmstat", "oom_kill");
	child = mc_start(&fd);
	if (!child) {
		result(false, "the process in the cgroup started");
		return 1;
	}
	say("# %d pages (%d contents twice, the rest unique) in a cgroup with memory.max %s",
	    MC_PAGES, MC_TWINS, MC_LIMIT);
	hog = mc_hog_start(&hogmb);
	say("# hog mlocked %ld MiB; MemAvailable %ld kB, MemFree %ld kB", hogmb,
	    file_key("/proc/meminfo", "MemAvailable"), file_key("/proc/meminfo", "MemFree"));
	scans = ksm_get("full_scans");
	sleep_ms((long)(secs * 1000));
	scans = ksm_get("full_scans") - scans;
	max_events = cg_key("memory.events", "max");
	say(
	    "# %.0f s at the limit: ksmd full scans %ld, memory.current %ld, memory.events max %ld, memory.swap.current %ld, pages_sharing %ld",
	    secs, scans, cg_key("memory.current", ""), max_events,
	    cg_key("memory.swap.current", ""), ksm_get("pages_sharing"));
	if (!mc_next(child, fd))
		say("# the process in the cgroup died");
	oom1 = file_key("/proc/vmstat", "oom_kill");
	cgoom = cg_key("memory.events", "oom_kill");
	say(
	    "# oom_kill: /proc/vmstat %ld -> %ld, the cgroup's memory.events %ld",
	    oom0, oom1, cgoom);
	result(cgoom == 0 && oom1 == oom0 && kill(hog, 0) == 0,
	       "no OOM kill while ksmd ran at full speed against the limit");
	result(max_events > 0 && scans > 0, "the cgroup sat at its limit while ksmd scanned");
	kill(hog, SIGKILL);
	waitpid(hog, NULL, 0);
	cg_write("memory.max", "max");
	if (!mc_next(child, fd))
		say("# the process in the cgroup died");
	merged = mc_wait_merge(180, &shared, &sharing);
	say(
	    "# after the limit was lifted: pages_shared %ld (expected %d), pages_sharing %ld (expected %d)",
	    shared, MC_TWINS, sharing, MC_TWINS);
	result(merged, "merging resumed to the expected counts once the limit was lifted");
	mc_next(child, fd);
	waitpid(child, &status, 0);
	say("# pages verified %ld, wrong bytes %ld", g_stats[0].verified, g_stats[0].wrong_bytes);
	result(WIFEXITED(status) && !WEXITSTATUS(status) && g_stats[0].wrong_bytes == 0 &&
	       g_stats[0].verified > 0, "every byte intact (wrong bytes 0)");
	for (k = 0; k < 300 && !counters_zero(false); k++)
		sleep_ms(100);
	result(counters_zero(true), "every KSM counter back to 0 after the process exited");
	rmdir(CG_DIR);
	knobs_restore();
	return g_nfail ? 1 : 0;
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	double secs = 60;
	int workers = 6, opt;
	bool seeded = false;

	while ((opt = getopt(argc, argv, "s:d:w:n")) != -1) {
		switch (opt) {
		case 'n':
			g_dry = true;
			break;
		case 's':
			g_seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 'w':
			workers = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s seed] [-d secs] [-w workers] [random|memcg]\n",
				argv[0]);
			return 2;
		}
	}
	if (workers < 1 || workers > MAX_WORKERS)
		workers = 6;
	if (!seeded)
		g_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!g_dry && access(KSM_DIR "run", W_OK)) {
		say("1..0 # SKIP no writable " KSM_DIR "run (root and CONFIG_KSM needed)");
		return 4;
	}
	if (optind < argc && !strcmp(argv[optind], "memcg"))
		return test_memcg(secs);
	return test_random(workers, secs);
}
