// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_bench: the KSM workloads of `make bench`, run inside the guest.
 *
 * Usage: ksm_bench [--quick] WORKLOAD...
 *   w1    4 x 64 MiB, every page identical across processes (page i the same
 *         in every process, distinct from page j); pages_to_scan=10000,
 *         sleep_millisecs=0: guest time to full merge and ksmd CPU. Then, on
 *         the converged state: KSM slab bytes per tracked page (meta), W4
 *         (default knobs, smart_scan=1, 2 s to settle, then 30 s: ksmd CPU
 *         percent) and W7 (time of `echo 2 > run`).
 *   w2    8 x 64 MiB, even pages identical across processes, odd pages unique.
 *   w3    2 x 256 MiB, all unique: ksmd CPU per page scanned over two full scans.
 *   w5    one 1 TiB MAP_NORESERVE mergeable VMA with 16 touched pages: guest
 *         time of one full scan (between two advances of full_scans).
 *   w6    2 x 64 MiB, identical across processes, every fourth page rewritten
 *         continuously (each about once a second; ksmd with
 *         pages_to_scan=10000, sleep_millisecs=0) for 30 s: cow_ksm (merges
 *         later broken by a write) per second.
 *   dflt  w1 with the default knobs (pages_to_scan=100, sleep_millisecs=20).
 *   wfh, wft, wfs   2 x 64 MiB of one content family (wfh: zero pages with a
 *         small header; wft: one filler, the last two bytes differ; wfs: one
 *         filler, one word changed at a spread place), twins across the two
 *         processes: time to full merge, and pages_sharing when the first and
 *         the second full scan ended (percent of the full merge).
 *   wscale  ksmd CPU per page scanned with 2^15, 2^17, 2^19 and 2^20 unique
 *         pages tracked (needs a guest of about 7 GiB).
 * w1, w2 and w3 also report metadata per tracked page: the "ksm*" slab
 * caches alone, and all-in (with the XArray nodes and the index tables; see
 * struct meta_snap).
 * --quick divides every size by 16 (for trying the program out).
 * prof samples ksmd (perf cpu-clock, every 200 us of its CPU time) while it
 * works in w1, w2, w3, w4, w6 and dflt, and prints where its time went by kernel
 * function (`PROF <workload> <percent> <samples> <function>`): for analysis
 * only, as the sampling interrupts cost time too.
 *
 * Every byte of every process is verified after each workload (and before
 * it). A workload prints its figures only if every check passed:
 *   BENCH <workload> <metric> <value>
 * otherwise `BENCH-FAIL <workload> <reason>`; the exit code is the number of
 * failed workloads. Lines starting with `#` are progress notes.
 *
 * Times are guest CLOCK_MONOTONIC (QEMU -icount makes them follow executed
 * instructions); ksmd CPU is sum_exec_runtime from /proc/<ksmd>/schedstat (ns),
 * or utime+stime of /proc/<ksmd>/stat when the kernel lacks schedstat.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KSM "/sys/kernel/mm/ksm/"
#define MAXP 16
#define MIB (1024L * 1024)

enum kind {
	K_SAME,		/* every page identical across processes */
	K_HALF,		/* even pages identical across processes, odd unique */
	K_UNIQUE,	/* every page unique */
	K_VOLATILE,	/* identical across processes, pg % 4 == 0 rewritten */
	K_SPARSE,	/* 1 TiB, 16 touched unique pages */
	K_FAMILY,	/* identical across processes, one content family */
};

/*
 * Content families (wfh, wft, wfs): pages that differ from each other in a
 * few bytes only, as real memory does, identical across processes.
 */
enum family {
	FAM_NONE = -1,
	FAM_HEADER,	/* zero but for a 16-byte header with a sequence number */
	FAM_TAIL,	/* one filler, the last two bytes tell pages apart */
	FAM_SPREAD,	/* one filler, one word changed, its place spread */
};
static enum family fill_family = FAM_NONE;

struct kid {
	pid_t pid;
	int cmd;	/* parent -> child */
	int ans;	/* child -> parent */
};

static long page_size;
static int quick;
static struct kid kids[MAXP];
static int nkids;
static volatile int *stop_flag;	/* shared with the children (W6) */
static int ksmd_pid = -1;
static const char *cpu_source = "none";

/* ---------------------------------------------------------------- helpers */

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Read a whole small file into buf; returns length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t size)
{
	ssize_t n, len = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	return n < 0 ? -1 : len;
}

static long ksm_read(const char *name)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), KSM "%s", name);
	if (slurp(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

static int ksm_write(const char *name, long v)
{
	char path[128], buf[32];
	int fd, len, ok;

	snprintf(path, sizeof(path), KSM "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	len = snprintf(buf, sizeof(buf), "%ld", v);
	ok = write(fd, buf, len) == len;
	ok &= close(fd) == 0;
	return ok ? 0 : -1;
}

static int ksm_has(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), KSM "%s", name);
	return access(path, F_OK) == 0;
}

static long vmstat(const char *name)
{
	static char buf[16384];
	size_t len = strlen(name);
	char *p;

	if (slurp("/proc/vmstat", buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ' ')
			return strtol(p + len + 1, NULL, 10);
	return -1;
}

static int find_ksmd(void)
{
	char path[300], buf[64];
	struct dirent *e;
	DIR *d = opendir("/proc");

	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		if (slurp(path, buf, sizeof(buf)) > 0 && !strcmp(buf, "ksmd\n")) {
			ksmd_pid = atoi(e->d_name);
			break;
		}
	}
	if (d)
		closedir(d);
	return ksmd_pid;
}

/* CPU seconds ksmd has used so far, or -1. */
static double ksmd_cpu(void)
{
	char path[64], buf[512], *p;
	unsigned long long ns;
	unsigned long ut, st;

	if (ksmd_pid < 0 && find_ksmd() < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", ksmd_pid);
	if (slurp(path, buf, sizeof(buf)) > 0 && sscanf(buf, "%llu", &ns) == 1) {
		cpu_source = "schedstat";
		return ns / 1e9;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", ksmd_pid);
	if (slurp(path, buf, sizeof(buf)) <= 0)
		return -1;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	cpu_source = "stat";
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* Seconds ksmd has spent runnable but waiting for a CPU (schedstat), or -1. */
static double ksmd_wait(void)
{
	unsigned long long run, wait;
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/%d/schedstat", ksmd_pid);
	if (slurp(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%llu %llu", &run, &wait) != 2)
		return -1;
	return wait / 1e9;
}

/*
 * KSM slab memory: every /proc/slabinfo cache whose name starts with "ksm"
 * (base: ksm_rmap_item, ksm_stable_node, ksm_mm_slot; ours: its own).
 * The guest boots with slab_nomerge so that these caches stand alone.
 * @slab: bytes of the slabs (pages) they hold; @objs: active objects x size.
 */
static int ksm_slab(long *slab, long *objs, char *names, size_t nsize)
{
	static char buf[65536];
	char *line, *save;
	int found = 0;

	*slab = *objs = 0;
	if (names)
		names[0] = 0;
	if (slurp("/proc/slabinfo", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		long active, num, size, perslab, pages, aslabs, nslabs;

		if (strncmp(line, "ksm", 3))
			continue;
		if (sscanf(line, "%63s %ld %ld %ld %ld %ld : tunables %*d %*d %*d : slabdata %ld %ld",
			   name, &active, &num, &size, &perslab, &pages, &aslabs, &nslabs) != 8)
			continue;
		*slab += nslabs * pages * page_size;
		*objs += active * size;
		if (names && strlen(names) + strlen(name) + 2 < nsize) {
			strcat(names, names[0] ? "+" : "");
			strcat(names, name);
		}
		found++;
	}
	return found ? 0 : -1;
}

/*
 * All-in metadata: what KSM's tracking costs in kernel memory, wherever it
 * lives. Our KSM keeps items and nodes in its own "ksm*" caches, each
 * process's items in an XArray (nodes of the shared radix_tree_node cache),
 * its index buckets in kvcalloc() tables (large ones bypass the slab caches:
 * kmalloc_large pages, counted in the Slab line of /proc/meminfo but in no
 * /proc/slabinfo cache, or vmalloc areas) and mapping arrays of more than
 * four entries in kmalloc caches. So a snapshot holds:
 *   @ksm:   bytes of the slabs of the "ksm*" caches (from before the spawn:
 *           madvise() gives each process its slot);
 *   @xa:    bytes of the slabs of radix_tree_node;
 *   @total: every slab byte and large kmalloc (/proc/meminfo Slab, after
 *           /proc/sys/vm/stat_refresh folded the per-CPU counters in);
 *   @vm:    pages of the vmalloc areas that KSM functions allocated
 *           (/proc/vmallocinfo, callers named ksm_*).
 * All-in = growth of @ksm from before the spawn + growth of (@total - @ksm)
 * + growth of @vm, both from after the spawn (the processes exist and are
 * filled; ksmd has not run yet) to the measured state. What is not KSM's in
 * that growth (the bench's own reads of /proc, RCU-deferred frees) is noise
 * of a few KiB; the base kernel's figure shows its size.
 */
struct meta_snap {
	long ksm, xa, total, vm;
	int ok;
};

/* Bytes of the slabs of one cache of /proc/slabinfo, or -1. */
static long slab_cache_bytes(const char *cache)
{
	static char buf[65536];
	char *line, *save;

	if (slurp("/proc/slabinfo", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		long pages, nslabs;

		if (sscanf(line, "%63s %*d %*d %*d %*d %ld : tunables %*d %*d %*d : slabdata %*d %ld",
			   name, &pages, &nslabs) == 3 && !strcmp(name, cache))
			return nslabs * pages * page_size;
	}
	return -1;
}

/* Bytes of every slab and large kmalloc (/proc/meminfo Slab), or -1. */
static long slab_total_bytes(void)
{
	char buf[8192], *p;
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			note("stat_refresh: %s", strerror(errno));
		close(fd);
	}
	if (slurp("/proc/meminfo", buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "\nSlab:");
	return p ? strtol(p + 6, NULL, 10) * 1024 : -1;
}

/* Bytes of the vmalloc areas allocated by functions named ksm_*. */
static long ksm_vmalloc_bytes(void)
{
	char line[512];
	long bytes = 0;
	FILE *f = fopen("/proc/vmallocinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *caller = strchr(line, ' '), *pages = strstr(line, " pages=");

		caller = caller ? strchr(caller + 1, ' ') : NULL;
		if (caller && pages && !strncmp(caller + 1, "ksm_", 4))
			bytes += strtol(pages + 7, NULL, 10) * page_size;
	}
	fclose(f);
	return bytes;
}

static void put(const char *w, const char *metric, const char *fmt, ...);

static void meta_snap(struct meta_snap *m)
{
	long objs;

	m->ok = ksm_slab(&m->ksm, &objs, NULL, 0) == 0;
	m->xa = slab_cache_bytes("radix_tree_node");
	m->vm = ksm_vmalloc_bytes();
	m->total = slab_total_bytes();
	m->ok &= m->xa >= 0 && m->vm >= 0 && m->total >= 0;
}

/*
 * Put the all-in figures of @w: @pre before the spawn, @start after it,
 * @end at the measured state, @pages tracked.
 */
static void meta_put(const char *w, const struct meta_snap *pre, const struct meta_snap *start,
		     const struct meta_snap *end, long pages)
{
	long ksm, other, vm;

	if (!pre->ok || !start->ok || !end->ok) {
		note("%s: no all-in metadata (slabinfo, meminfo or vmallocinfo missing)", w);
		return;
	}
	ksm = end->ksm - pre->ksm;
	other = (end->total - end->ksm) - (start->total - start->ksm);
	vm = end->vm - start->vm;
	note("%s: metadata all-in: ksm* slabs %ld + other slab and large kmalloc %ld "
	     "(of which radix_tree_node %ld) + KSM vmalloc %ld bytes, %ld pages tracked",
	     w, ksm, other, end->xa - start->xa, vm, pages);
	put(w, "meta_allin_bytes_per_page", "%.2f", (double)(ksm + other + vm) / pages);
	put(w, "meta_xa_bytes_per_page", "%.2f", (double)(end->xa - start->xa) / pages);
	put(w, "meta_other_bytes_per_page", "%.2f", (double)(other + vm) / pages);
}

/* ------------------------------------------------------------- profiler */

static int profiling;
static int prof_fd = -1;
static struct perf_event_mmap_page *prof_meta;
static char *prof_data;
static size_t prof_size;
static long prof_samples, prof_lost;
#define PROF_PAGES 256
#define PROF_TAB (1 << 16)
static struct { uint64_t ip; long n; } *prof_tab;

static void prof_start_pid(int pid);

/* Sample ksmd. */
static void prof_start(void)
{
	prof_start_pid(ksmd_pid);
}

/* Sample @pid (0: this process, for work done in its system calls). */
static void prof_start_pid(int pid)
{
	struct perf_event_attr at;
	void *map;

	if (!profiling || pid < 0)
		return;
	memset(&at, 0, sizeof(at));
	at.size = sizeof(at);
	at.type = PERF_TYPE_SOFTWARE;
	at.config = PERF_COUNT_SW_CPU_CLOCK;
	at.sample_period = 200000;	/* ns of ksmd CPU time */
	at.sample_type = PERF_SAMPLE_IP;
	prof_fd = syscall(SYS_perf_event_open, &at, pid, -1, -1, 0);
	if (prof_fd < 0) {
		note("perf_event_open on pid %d: %s", pid, strerror(errno));
		return;
	}
	map = mmap(NULL, (1 + PROF_PAGES) * page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   prof_fd, 0);
	if (map == MAP_FAILED) {
		note("perf mmap: %s", strerror(errno));
		close(prof_fd);
		prof_fd = -1;
		return;
	}
	prof_meta = map;
	prof_data = (char *)map + page_size;
	prof_size = PROF_PAGES * page_size;
	if (!prof_tab)
		prof_tab = calloc(PROF_TAB, sizeof(*prof_tab));
	memset(prof_tab, 0, PROF_TAB * sizeof(*prof_tab));
	prof_samples = prof_lost = 0;
}

static void prof_drain(void)
{
	uint64_t head, tail;

	if (prof_fd < 0)
		return;
	head = prof_meta->data_head;
	__sync_synchronize();
	tail = prof_meta->data_tail;
	while (tail < head) {
		struct perf_event_header h;
		uint64_t rec[4] = { 0 };
		size_t off = tail % prof_size;

		memcpy(&h, prof_data + off, sizeof(h));
		for (size_t i = 0; i < sizeof(rec) && i + sizeof(h) < h.size; i++)
			((char *)rec)[i] = prof_data[(off + sizeof(h) + i) % prof_size];
		if (h.type == PERF_RECORD_SAMPLE) {
			uint64_t ip = rec[0];
			unsigned int k = (unsigned int)((ip * 0x9e3779b97f4a7c15ULL) >> 48);

			while (prof_tab[k].n && prof_tab[k].ip != ip)
				k = (k + 1) % PROF_TAB;
			prof_tab[k].ip = ip;
			prof_tab[k].n++;
			prof_samples++;
		} else if (h.type == PERF_RECORD_LOST) {
			prof_lost += rec[1];
		}
		if (!h.size)
			break;
		tail += h.size;
	}
	__sync_synchronize();
	prof_meta->data_tail = tail;
}

struct ksym { uint64_t addr; char name[48]; long n; };

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int ksym_by_n(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return (y->n > x->n) - (y->n < x->n);
}

static int ksym_by_name(const void *a, const void *b)
{
	return strcmp(((const struct ksym *)a)->name, ((const struct ksym *)b)->name);
}

/* Stop sampling and print the functions ksmd spent its time in. */
static void prof_stop(const char *w)
{
	struct ksym *syms = NULL;
	size_t n = 0, cap = 0;
	char line[256];
	FILE *f;

	if (prof_fd < 0)
		return;
	prof_drain();
	munmap(prof_meta, (1 + PROF_PAGES) * page_size);
	close(prof_fd);
	prof_fd = -1;
	f = fopen("/proc/kallsyms", "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char t, name[48];

		if (sscanf(line, "%llx %c %47s", &a, &t, name) != 3 ||
		    (t != 't' && t != 'T' && t != 'W' && t != 'w'))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			syms = realloc(syms, cap * sizeof(*syms));
			if (!syms)
				break;
		}
		syms[n].addr = a;
		snprintf(syms[n].name, sizeof(syms[n].name), "%s", name);
		syms[n].n = 0;
		n++;
	}
	if (f)
		fclose(f);
	if (!syms || !n) {
		note("%s: no /proc/kallsyms", w);
		return;
	}
	qsort(syms, n, sizeof(*syms), ksym_cmp);
	for (int k = 0; k < PROF_TAB; k++) {
		size_t lo = 0, hi = n;

		if (!prof_tab[k].n)
			continue;
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;

			if (syms[mid].addr <= prof_tab[k].ip)
				lo = mid;
			else
				hi = mid;
		}
		syms[lo].n += prof_tab[k].n;
	}
	/* Static functions of the same name (e.g. inlined copies) count as one. */
	qsort(syms, n, sizeof(*syms), ksym_by_name);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(syms[i].name, syms[i - 1].name)) {
			syms[i].n += syms[i - 1].n;
			syms[i - 1].n = 0;
		}
	qsort(syms, n, sizeof(*syms), ksym_by_n);
	note("%s: ksmd profile: %ld samples (every 200 us of ksmd CPU), %ld lost", w,
	     prof_samples, prof_lost);
	for (size_t i = 0; i < n && i < 30 && syms[i].n; i++)
		printf("PROF %s %.1f %ld %s\n", w, 100.0 * syms[i].n / prof_samples, syms[i].n,
		       syms[i].name);
	fflush(stdout);
	free(syms);
}

/* ------------------------------------------------------------ page contents */

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Seed of a page: distinct (pg, owner, gen) give distinct pages. */
static inline uint64_t seed_of(long pg, int owner, uint32_t gen)
{
	return mix(mix((uint64_t)pg * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)(owner + 2) << 40)) +
		   (uint64_t)gen * 0xbf58476d1ce4e5b9ULL);
}

static void fill_family_page(uint64_t *p, long pg)
{
	long words = page_size / 8;

	switch (fill_family) {
	case FAM_HEADER:
		memset(p, 0, page_size);
		p[0] = 0x48454144;
		p[1] = pg + 1;
		break;
	case FAM_TAIL:
		memset(p, 0xee, page_size);
		((unsigned char *)p)[page_size - 1] = pg;
		((unsigned char *)p)[page_size - 2] = pg >> 8;
		break;
	default:
		for (long w = 0; w < words; w++)
			p[w] = 0x5151515151515151ULL;
		p[(pg * 37) % words] ^= pg + 1;
		break;
	}
}

static void fill_page(uint64_t *p, long pg, int owner, uint32_t gen)
{
	uint64_t s = seed_of(pg, owner, gen);
	long words = page_size / 8;

	if (fill_family != FAM_NONE) {
		fill_family_page(p, pg);
		return;
	}
	for (long w = 0; w < words; w++)
		p[w] = s ^ (w * 0x94d049bb133111ebULL);
}

/* Bytes of the page that differ from what it should hold. */
static long check_page(const uint64_t *p, long pg, int owner, uint32_t gen)
{
	uint64_t s = seed_of(pg, owner, gen);
	long words = page_size / 8, bad = 0;

	if (fill_family != FAM_NONE) {
		static uint64_t want[65536 / 8];

		fill_family_page(want, pg);
		for (long b = 0; b < page_size; b++)
			bad += ((const char *)p)[b] != ((const char *)want)[b];
		return bad;
	}
	for (long w = 0; w < words; w++) {
		uint64_t x = p[w] ^ s ^ (w * 0x94d049bb133111ebULL);

		if (x)
			for (int b = 0; b < 8; b++)
				bad += ((x >> (8 * b)) & 0xff) != 0;
	}
	return bad;
}

/* ----------------------------------------------------------------- children */

struct spec {
	enum kind kind;
	long pages;		/* per process (K_SPARSE: size of the VMA) */
};

#define SPARSE_TOUCHED 16

static int owner_of(const struct spec *s, long pg, int me)
{
	switch (s->kind) {
	case K_SAME:
	case K_VOLATILE:
	case K_FAMILY:
		return -1;
	case K_HALF:
		return (pg & 1) ? me : -1;
	default:
		return me;
	}
}

static long sparse_page(const struct spec *s, int i)
{
	return (s->pages / SPARSE_TOUCHED) * i + 7;
}

/*
 * Every byte of the process's pages. For the sparse VMA, @read_untouched
 * says whether the sample of untouched pages is read (which maps the zero
 * page there and populates page tables) or only checked with mincore() to
 * be unpopulated (before the timed scans: W5 must see 16 touched pages).
 */
static long child_verify(const struct spec *s, char *map, int me, const uint32_t *gens,
			 int read_untouched)
{
	long bad = 0;

	if (s->kind == K_SPARSE) {
		long stride = s->pages / SPARSE_TOUCHED;

		for (int i = 0; i < SPARSE_TOUCHED; i++) {
			long pg = sparse_page(s, i);

			bad += check_page((uint64_t *)(map + pg * page_size), pg, me, 0);
		}
		/* Untouched pages must read as zero: a sample, one per 4 GiB. */
		for (long pg = 3; pg < s->pages; pg += (4L << 30) / page_size) {
			const uint64_t *p = (uint64_t *)(map + pg * page_size);

			unsigned char vec;

			if (pg % stride == 7)
				continue;
			if (!read_untouched) {
				bad += mincore((void *)p, page_size, &vec) || (vec & 1);
				continue;
			}
			for (long w = 0; w < page_size / 8; w++)
				bad += p[w] != 0;
		}
		return bad;
	}
	for (long pg = 0; pg < s->pages; pg++)
		bad += check_page((uint64_t *)(map + pg * page_size), pg, owner_of(s, pg, me),
				  gens ? gens[pg] : 0);
	return bad;
}

/*
 * W6: rewrite every fourth page, pass after pass, until told to stop: one
 * page every 250 us of guest time (a batch of 8 every 2 ms), so each of the
 * 4096 volatile pages of a process changes about once a second, all the time.
 * Paced rather than flat out: under QEMU's round-robin TCG two busy vCPUs
 * starve ksmd (it scanned one page in ~300 us instead of ~25), which would
 * measure QEMU's scheduling, not KSM.
 */
static long child_write(const struct spec *s, char *map, uint32_t *gens)
{
	struct timespec next;
	long passes = 0;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!*stop_flag) {
		for (long pg = 0; pg < s->pages && !*stop_flag; pg += 4) {
			gens[pg]++;
			fill_page((uint64_t *)(map + pg * page_size), pg, -1, gens[pg]);
			if ((pg / 4) % 8 != 7)
				continue;
			next.tv_nsec += 2000000;
			if (next.tv_nsec >= 1000000000) {
				next.tv_nsec -= 1000000000;
				next.tv_sec++;
			}
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
				;
		}
		passes++;
	}
	return passes;
}

static void child_main(const struct spec *s, int me, int cmd, int ans)
{
	long len = s->pages * page_size;
	uint32_t *gens = NULL;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	char *map;
	char c;

	if (s->kind == K_SPARSE)
		flags |= MAP_NORESERVE;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (map == MAP_FAILED)
		_exit(2);
	if (s->kind == K_VOLATILE) {
		gens = calloc(s->pages, sizeof(*gens));
		if (!gens)
			_exit(2);
	}
	if (s->kind == K_SPARSE) {
		for (int i = 0; i < SPARSE_TOUCHED; i++) {
			long pg = sparse_page(s, i);

			fill_page((uint64_t *)(map + pg * page_size), pg, me, 0);
		}
	} else {
		for (long pg = 0; pg < s->pages; pg++)
			fill_page((uint64_t *)(map + pg * page_size), pg, owner_of(s, pg, me), 0);
	}
	if (madvise(map, len, MADV_MERGEABLE))
		_exit(3);
	c = 'r';
	if (write(ans, &c, 1) != 1)
		_exit(4);
	while (read(cmd, &c, 1) == 1) {
		long r = 0;

		if (c == 'v' || c == 't')
			r = child_verify(s, map, me, gens, c == 'v');
		else if (c == 'W' && gens)
			r = child_write(s, map, gens);
		else if (c == 'q')
			break;
		if (write(ans, &r, sizeof(r)) != sizeof(r))
			_exit(5);
	}
	_exit(0);
}

static int spawn(int n, const struct spec *s)
{
	for (int i = 0; i < n; i++) {
		int c[2], a[2];
		char r;

		if (pipe(c) || pipe(a))
			return -1;
		fflush(stdout);
		kids[i].pid = fork();
		if (kids[i].pid < 0)
			return -1;
		if (!kids[i].pid) {
			close(c[1]);
			close(a[0]);
			child_main(s, i, c[0], a[1]);
		}
		close(c[0]);
		close(a[1]);
		kids[i].cmd = c[1];
		kids[i].ans = a[0];
		nkids = i + 1;
		if (read(kids[i].ans, &r, 1) != 1 || r != 'r') {
			note("child %d failed to set up", i);
			return -1;
		}
	}
	return 0;
}

static int send(int i, char c)
{
	return write(kids[i].cmd, &c, 1) == 1 ? 0 : -1;
}

static long answer(int i)
{
	long r;

	return read(kids[i].ans, &r, sizeof(r)) == sizeof(r) ? r : -1;
}

static void reap(void)
{
	for (int i = 0; i < nkids; i++) {
		send(i, 'q');
		close(kids[i].cmd);
		close(kids[i].ans);
		waitpid(kids[i].pid, NULL, 0);
	}
	nkids = 0;
}

/* Every byte of every process; 0 if all are as expected. */
static long verify_cmd(const char *w, const char *when, char cmd)
{
	long bad = 0;

	for (int i = 0; i < nkids; i++)
		if (send(i, cmd))
			return -1;
	for (int i = 0; i < nkids; i++) {
		long b = answer(i);

		bad += b < 0 ? 1 : b;
	}
	note("%s: verified every byte of %d processes %s: %ld bad", w, nkids, when, bad);
	return bad;
}

static long verify_all(const char *w, const char *when)
{
	return verify_cmd(w, when, 'v');
}

/* ------------------------------------------------------------ KSM plumbing */

/* Unmerge everything, stop ksmd and set the scan knobs; 0 on success. */
static void counts_since(const char *w);

static int ksm_prepare(long pages_to_scan, long sleep_ms)
{
	if (ksm_write("run", 2))
		return -1;
	if (ksm_read("pages_shared") || ksm_read("pages_sharing"))
		return -1;
	if (ksm_has("smart_scan") && ksm_write("smart_scan", 1))
		return -1;
	if (ksm_write("pages_to_scan", pages_to_scan) ||
	    ksm_write("sleep_millisecs", sleep_ms))
		return -1;
	if (ksm_write("run", 0))
		return -1;
	counts_since(NULL);
	return 0;
}

/*
 * Poll until pages_shared and pages_sharing reach their final values; return
 * the guest time that took from t0, or -1 after @limit seconds.
 */
/*
 * Content families: pages_sharing when full_scans was first seen past
 * fs0 + 1 and fs0 + 2 (-1: not yet), recorded by wait_merged() and
 * scans_after() when scan_track is set.
 */
static int scan_track;
static long scan_fs0, scan_sharing[2];
/* full_scans when wait_merged() saw the full merge. */
static long merged_fs;

static void scan_note(long sharing)
{
	long f;

	if (!scan_track)
		return;
	f = ksm_read("full_scans");
	for (int k = 0; k < 2; k++)
		if (scan_sharing[k] < 0 && f >= scan_fs0 + k + 1)
			scan_sharing[k] = sharing;
}

static double wait_merged(long shared, long sharing, double t0, double poll, double limit)
{
	double last = 0, t;

	for (;;) {
		long s = ksm_read("pages_shared"), g = ksm_read("pages_sharing");

		scan_note(g);
		t = now();
		if (s == shared && g == sharing) {
			merged_fs = ksm_read("full_scans");
			return t - t0;
		}
		if (t - last >= 5) {
			note("  %6.1fs shared %ld sharing %ld full_scans %ld", t - t0, s, g,
			     ksm_read("full_scans"));
			last = t;
		}
		if (t - t0 > limit)
			return -1;
		prof_drain();
		sleep_s(poll);
	}
}

struct result {
	char w[16];
	char metric[40];
	char value[40];
};

static struct result results[64];
static int nresults;

static void put(const char *w, const char *metric, const char *fmt, ...)
{
	struct result *r = &results[nresults++];
	va_list ap;

	snprintf(r->w, sizeof(r->w), "%s", w);
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	va_start(ap, fmt);
	vsnprintf(r->value, sizeof(r->value), fmt, ap);
	va_end(ap);
}

/* Print the figures gathered for @w, or drop them if it failed. */
/*
 * Our KSM's developer counters (debugfs ksm/counts; the base kernel has
 * none): what each workload cost in looks, gate decisions and compares.
 */
#define KSM_COUNTS "/sys/kernel/debug/ksm/counts"
#define NCOUNTS 8
static char count_name[NCOUNTS][32];
static long count_base[NCOUNTS];

static int read_counts(long *v)
{
	char buf[512], *line, *save = NULL;
	int n = 0;

	if (slurp(KSM_COUNTS, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line && n < NCOUNTS;
	     line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%31s %ld", count_name[n], &v[n]) == 2)
			n++;
	return n;
}

/* Print the counters' growth since the last call (or ksm_prepare()). */
static void counts_since(const char *w)
{
	long v[NCOUNTS];
	int n = read_counts(v);

	for (int i = 0; i < n; i++) {
		if (w)
			printf("BENCH %s dbg_%s %ld\n", w, count_name[i], v[i] - count_base[i]);
		count_base[i] = v[i];
	}
}

static int finish(const char *w, const char *fail)
{
	if (!fail)
		counts_since(w);
	for (int i = 0; i < nresults; i++) {
		if (strcmp(results[i].w, w))
			continue;
		if (!fail)
			printf("BENCH %s %s %s\n", results[i].w, results[i].metric,
			       results[i].value);
		results[i].w[0] = 0;
	}
	if (fail)
		printf("BENCH-FAIL %s %s\n", w, fail);
	fflush(stdout);
	return fail ? 1 : 0;
}

#define FAIL(w, why) do { reap(); ksm_write("run", 2); return finish(w, why); } while (0)

/* ------------------------------------------------------------- workloads */

/* W1 (fast knobs; then meta, W4 and W7) or the default-knob convergence. */
static int run_identical(const char *w, int nprocs, long mib, enum kind kind,
			 long pages_to_scan, long sleep_ms, int tail)
{
	struct spec s = { kind, mib * MIB / page_size };
	long shared = kind == K_HALF ? s.pages / 2 : s.pages;
	long sharing = shared * (nprocs - 1);
	long slab0, objs0, slab1, objs1, fs0;
	struct meta_snap m0, m1, m2;
	char names[256];
	double t0, t, c0, c1;

	note("%s: %d processes x %ld MiB (%s), pages_to_scan=%ld sleep_millisecs=%ld", w,
	     nprocs, mib, kind == K_HALF ? "half identical, half unique" :
	     kind == K_FAMILY ? "one content family, twins across processes" :
	     "all identical", pages_to_scan, sleep_ms);
	if (ksm_prepare(pages_to_scan, sleep_ms))
		FAIL(w, "cannot reset KSM");
	ksm_slab(&slab0, &objs0, NULL, 0);
	meta_snap(&m0);
	if (spawn(nprocs, &s))
		FAIL(w, "cannot start the processes");
	if (verify_all(w, "before merging"))
		FAIL(w, "contents wrong before merging");
	meta_snap(&m1);
	fs0 = ksm_read("full_scans");
	scan_track = kind == K_FAMILY;
	scan_fs0 = fs0;
	scan_sharing[0] = scan_sharing[1] = -1;
	prof_start();
	c0 = ksmd_cpu();
	t0 = now();
	if (ksm_write("run", 1))
		FAIL(w, "cannot start ksmd");
	t = wait_merged(shared, sharing, t0, pages_to_scan >= 1000 ? 0.01 : 0.05,
			pages_to_scan >= 1000 ? 300 : 900);
	c1 = ksmd_cpu();
	prof_stop(w);
	if (t < 0)
		FAIL(w, "did not reach the expected pages_shared/pages_sharing");
	if (scan_track) {
		/* Merged before the first scan ended: see the scans end too. */
		double ts = now();

		while (scan_sharing[1] < 0 && now() - ts < 300) {
			sleep_s(0.01);
			scan_note(ksm_read("pages_sharing"));
		}
		scan_track = 0;
		if (scan_sharing[1] < 0)
			FAIL(w, "two full scans did not end within 300 s of the full merge");
		note("%s: pages_sharing when full_scans advanced: %ld after 1, %ld after 2 (of %ld)",
		     w, scan_sharing[0], scan_sharing[1], sharing);
		put(w, "merged_pct_scan1", "%.2f", 100.0 * scan_sharing[0] / sharing);
		put(w, "merged_pct_scan2", "%.2f", 100.0 * scan_sharing[1] / sharing);
	}
	/* Scans ended when the merge was seen full (ksmd goes on scanning). */
	note("%s: merged in %.3f s: shared %ld sharing %ld, ksmd %.3f s CPU (%s), %ld full scans",
	     w, t, shared, sharing, c1 - c0, cpu_source, merged_fs - fs0);
	put(w, "time_s", "%.4f", t);
	put(w, "ksmd_cpu_s", "%.4f", c1 - c0);
	put(w, "full_scans", "%ld", merged_fs - fs0);
	put(w, "pages", "%ld", s.pages * nprocs);
	if (verify_all(w, "after merging"))
		FAIL(w, "contents wrong after merging");

	/* Metadata at the converged state. */
	meta_snap(&m2);
	meta_put(w, &m0, &m1, &m2, s.pages * nprocs);
	if (ksm_slab(&slab1, &objs1, names, sizeof(names)) == 0) {
		long tracked = s.pages * nprocs;

		note("%s: KSM slab caches %s: %ld bytes of slabs, %ld bytes of objects, %ld pages",
		     w, names, slab1 - slab0, objs1 - objs0, tracked);
		put(w, "meta_slab_bytes_per_page", "%.2f", (double)(slab1 - slab0) / tracked);
		put(w, "meta_obj_bytes_per_page", "%.2f", (double)(objs1 - objs0) / tracked);
	} else {
		note("%s: no KSM caches in /proc/slabinfo", w);
	}
	if (!tail) {
		reap();
		ksm_write("run", 2);
		return finish(w, NULL);
	}
	if (finish(w, NULL))
		return 1;

	/* W4: steady state with the default knobs, nothing changing. */
	{
		int smart = ksm_has("smart_scan");
		double d = quick ? 5 : 30;
		long f0;

		if (ksm_write("pages_to_scan", 100) || ksm_write("sleep_millisecs", 20) ||
		    (smart && ksm_write("smart_scan", 1)))
			FAIL("w4", "cannot set the default knobs");
		/*
		 * ksmd may be inside a batch of 10000 pages from W1: let it finish
		 * and settle on the new knobs before the window opens (it changed
		 * W4 by up to 5% from run to run).
		 */
		sleep_s(2);
		f0 = ksm_read("full_scans");
		prof_start();
		c0 = ksmd_cpu();
		t0 = now();
		while (now() - t0 < d) {
			sleep_s(profiling ? 0.5 : d);
			prof_drain();
		}
		c1 = ksmd_cpu();
		t = now() - t0;
		prof_stop("w4");
		note("w4: %.1f s idle: ksmd %.4f s CPU, %ld full scans, smart_scan %s", t,
		     c1 - c0, ksm_read("full_scans") - f0, smart ? "1" : "absent");
		put("w4", "ksmd_cpu_pct", "%.4f", 100 * (c1 - c0) / t);
		put("w4", "full_scans", "%ld", ksm_read("full_scans") - f0);
		put("w4", "smart_scan", "%d", smart);
		if (ksm_read("pages_shared") != shared || ksm_read("pages_sharing") != sharing)
			FAIL("w4", "pages_shared/pages_sharing changed while nothing changed");
		if (verify_all("w4", "after 30 s of steady state"))
			FAIL("w4", "contents wrong after the steady state");
		finish("w4", NULL);
	}

	/* W7: unmerge everything. */
	prof_start_pid(0);
	t0 = now();
	if (ksm_write("run", 2))
		FAIL("w7", "echo 2 > run failed");
	t = now() - t0;
	prof_stop("w7");
	note("w7: run=2 took %.4f s", t);
	put("w7", "unmerge_s", "%.4f", t);
	if (ksm_read("pages_shared") || ksm_read("pages_sharing"))
		FAIL("w7", "pages_shared/pages_sharing not 0 after run=2");
	if (verify_all("w7", "after unmerging"))
		FAIL("w7", "contents wrong after unmerging");
	reap();
	return finish("w7", NULL);
}

/* W3: nothing to merge; ksmd CPU per page scanned over two full scans. */
static int run_unique(const char *w)
{
	struct spec s = { K_UNIQUE, (quick ? 16 : 256) * MIB / page_size };
	long slab0, objs0, slab1, objs1, fs0, sc0, sc1, scanned;
	struct meta_snap m0, m1, m2;
	double t0, c0, c1, t;

	note("%s: 2 processes x %ld MiB, all unique", w, s.pages * page_size / MIB);
	if (ksm_prepare(10000, 0))
		FAIL(w, "cannot reset KSM");
	ksm_slab(&slab0, &objs0, NULL, 0);
	meta_snap(&m0);
	if (spawn(2, &s))
		FAIL(w, "cannot start the processes");
	if (verify_cmd(w, "before scanning (untouched pages: mincore, not read)", 't'))
		FAIL(w, "contents wrong before scanning");
	meta_snap(&m1);
	fs0 = ksm_read("full_scans");
	if (fs0 < 0)
		FAIL(w, "no full_scans in " KSM);
	sc0 = ksm_read("pages_scanned");
	prof_start();
	c0 = ksmd_cpu();
	t0 = now();
	if (ksm_write("run", 1))
		FAIL(w, "cannot start ksmd");
	while (ksm_read("full_scans") < fs0 + 2) {
		if (now() - t0 > 600)
			FAIL(w, "two full scans did not finish in 600 s");
		prof_drain();
		sleep_s(0.01);
	}
	c1 = ksmd_cpu();
	sc1 = ksm_read("pages_scanned");
	prof_stop(w);
	t = now() - t0;
	ksm_write("run", 0);
	scanned = sc0 >= 0 && sc1 >= 0 ? sc1 - sc0 : 2 * 2 * s.pages;
	note("%s: two full scans in %.3f s: ksmd %.4f s CPU (%s), %ld pages scanned (%s)", w, t,
	     c1 - c0, cpu_source, scanned, sc1 >= 0 ? "pages_scanned" : "2 x pages mapped");
	put(w, "cpu_per_page_us", "%.5f", 1e6 * (c1 - c0) / scanned);
	put(w, "ksmd_cpu_s", "%.4f", c1 - c0);
	put(w, "pages_scanned", "%ld", scanned);
	put(w, "time_s", "%.4f", t);
	if (ksm_read("pages_shared") || ksm_read("pages_sharing"))
		FAIL(w, "unique pages were merged");
	meta_snap(&m2);
	meta_put(w, &m0, &m1, &m2, 2 * s.pages);
	if (ksm_slab(&slab1, &objs1, NULL, 0) == 0) {
		put(w, "meta_slab_bytes_per_page", "%.2f", (double)(slab1 - slab0) / (2 * s.pages));
		put(w, "meta_obj_bytes_per_page", "%.2f", (double)(objs1 - objs0) / (2 * s.pages));
	}
	if (verify_all(w, "after scanning"))
		FAIL(w, "contents wrong after scanning");
	reap();
	ksm_write("run", 2);
	return finish(w, NULL);
}

/*
 * Scaling: ksmd CPU per page scanned with 2^15 to 2^20 unique pages tracked
 * (two processes of half each), measured over the two full scans after the
 * first, when every page has its item and the index holds them all.
 */
static double scale_one(const char *w, long total)
{
	struct spec s = { K_UNIQUE, total / 2 };
	long fs0, sc0, sc1;
	double c0, c1, t0;

	if (ksm_prepare(10000, 0) || spawn(2, &s))
		return -1;
	fs0 = ksm_read("full_scans");
	t0 = now();
	if (ksm_write("run", 1))
		return -1;
	while (ksm_read("full_scans") < fs0 + 1 && now() - t0 < 1200)
		sleep_s(0.01);
	sc0 = ksm_read("pages_scanned");
	c0 = ksmd_cpu();
	while (ksm_read("full_scans") < fs0 + 3 && now() - t0 < 2400)
		sleep_s(0.01);
	c1 = ksmd_cpu();
	sc1 = ksm_read("pages_scanned");
	ksm_write("run", 0);
	if (ksm_read("full_scans") < fs0 + 3 || ksm_read("pages_sharing"))
		return -1;
	if (sc0 < 0 || sc1 < 0)
		sc1 = 2 * total, sc0 = 0;
	note("%s: %ld pages tracked: ksmd %.4f s CPU for %ld pages scanned", w, total,
	     c1 - c0, sc1 - sc0);
	return 1e6 * (c1 - c0) / (sc1 - sc0);
}

static int run_scale(const char *w)
{
	static const int shifts[] = { 15, 17, 19, 20 };
	double us[4];
	char metric[32];

	for (int i = 0; i < 4; i++) {
		long total = 1L << (shifts[i] - (quick ? 4 : 0));

		us[i] = scale_one(w, total);
		if (us[i] < 0)
			FAIL(w, "scan of unique pages failed or merged something");
		if (verify_all(w, "after scanning"))
			FAIL(w, "contents wrong after scanning");
		reap();
		ksm_write("run", 2);
		snprintf(metric, sizeof(metric), "cpu_per_page_us_2e%d", shifts[i]);
		put(w, metric, "%.5f", us[i]);
	}
	put(w, "ratio_2e20_2e15", "%.4f", us[3] / us[0]);
	return finish(w, NULL);
}

/* W5: one 1 TiB mergeable VMA with 16 touched pages: time of a full scan. */
static int run_sparse(const char *w)
{
	struct spec s = { K_SPARSE, (quick ? 16L << 30 : 1L << 40) / page_size };
	double t0, t1, tl, t, poll;
	long f0, f1, fl, f;

	note("%s: one %ld GiB MAP_NORESERVE mergeable VMA, %d touched pages", w,
	     (s.pages * page_size) >> 30, SPARSE_TOUCHED);
	if (ksm_prepare(10000, 0))
		FAIL(w, "cannot reset KSM");
	if (spawn(1, &s))
		FAIL(w, "cannot start the process");
	if (verify_cmd(w, "before scanning (untouched pages: mincore, not read)", 't'))
		FAIL(w, "contents wrong before scanning");
	f0 = ksm_read("full_scans");
	if (f0 < 0)
		FAIL(w, "no full_scans in " KSM);
	prof_start();
	t0 = now();
	if (ksm_write("run", 1))
		FAIL(w, "cannot start ksmd");
	/* First advance of full_scans (the first scan, from wherever the cursor is). */
	for (poll = 0.001; (f1 = ksm_read("full_scans")) == f0; ) {
		t = now();
		if (t - t0 > 600)
			FAIL(w, "no full scan finished in 600 s");
		poll = t - t0 > 2 ? 0.05 : t - t0 > 0.1 ? 0.01 : 0.001;
		sleep_s(poll);
	}
	t1 = now();
	note("%s: first advance of full_scans after %.4f s", w, t1 - t0);
	/*
	 * Then the next advances: one full scan at least, and as many as fit
	 * in 0.5 s (each scan is then timed as their mean).
	 */
	fl = f1;
	tl = t1;
	for (;;) {
		f = ksm_read("full_scans");
		t = now();
		if (f != fl) {
			fl = f;
			tl = t;
		}
		if (fl > f1 && t - t1 >= 0.5)
			break;
		if (t - t1 > 600)
			FAIL(w, "the second full scan did not finish in 600 s");
		poll = t - tl > 2 ? 0.05 : t - tl > 0.1 ? 0.01 : 0.001;
		sleep_s(poll);
	}
	ksm_write("run", 0);
	prof_stop(w);
	note("%s: %ld more full scans in %.4f s", w, fl - f1, tl - t1);
	put(w, "scan_ms", "%.4f", 1000 * (tl - t1) / (fl - f1));
	put(w, "scans_timed", "%ld", fl - f1);
	put(w, "first_scan_ms", "%.4f", 1000 * (t1 - t0));
	if (verify_all(w, "after scanning (the touched pages; untouched ones sampled)"))
		FAIL(w, "contents wrong after scanning");
	reap();
	ksm_write("run", 2);
	return finish(w, NULL);
}

/* W6: pages rewritten continuously: merges followed by COW breaks. */
static int run_volatile(const char *w)
{
	struct spec s = { K_VOLATILE, (quick ? 4 : 64) * MIB / page_size };
	double d = quick ? 5 : 30, t0, t, c0, c1;
	long cow0, cow1, passes = 0, sharing, fs0;

	note("%s: 2 processes x %ld MiB identical, every 4th page rewritten, ~1/s each", w,
	     s.pages * page_size / MIB);
	if (ksm_prepare(10000, 0))
		FAIL(w, "cannot reset KSM");
	*stop_flag = 0;
	if (spawn(2, &s))
		FAIL(w, "cannot start the processes");
	if (verify_all(w, "before writing"))
		FAIL(w, "contents wrong before writing");
	fs0 = ksm_read("full_scans");
	cow0 = vmstat("cow_ksm");
	for (int i = 0; i < nkids; i++)
		send(i, 'W');
	t0 = now();
	if (ksm_write("run", 1))
		FAIL(w, "cannot start ksmd");
	c0 = ksmd_cpu();
	prof_start();
	for (int k = 0; k < 6; k++) {
		for (double tk = now(); now() - tk < d / 6; prof_drain())
			sleep_s(profiling ? 0.5 : d / 6);
		note("  %5.1fs cow_ksm %ld pages_sharing %ld full_scans %ld ksmd %.3f s CPU, %.3f s waiting",
		     now() - t0, vmstat("cow_ksm") - cow0, ksm_read("pages_sharing"),
		     ksm_read("full_scans") - fs0, ksmd_cpu() - c0, ksmd_wait());
	}
	cow1 = vmstat("cow_ksm");
	t = now() - t0;
	c1 = ksmd_cpu();
	prof_stop(w);
	sharing = ksm_read("pages_sharing");
	*stop_flag = 1;
	for (int i = 0; i < nkids; i++)
		passes += answer(i);
	note("%s: %.1f s: cow_ksm %ld -> %ld, pages_sharing %ld, %ld full scans, %ld writer passes",
	     w, t, cow0, cow1, sharing, ksm_read("full_scans") - fs0, passes);
	if (cow0 >= 0 && cow1 >= 0)
		put(w, "cow_ksm_per_s", "%.3f", (cow1 - cow0) / t);
	else
		note("%s: no cow_ksm in /proc/vmstat", w);
	put(w, "pages_sharing", "%ld", sharing);
	put(w, "ksmd_cpu_s", "%.4f", c1 - c0);
	put(w, "writer_passes", "%ld", passes);
	put(w, "full_scans", "%ld", ksm_read("full_scans") - fs0);
	if (verify_all(w, "after writing"))
		FAIL(w, "contents wrong after writing");
	reap();
	ksm_write("run", 2);
	return finish(w, NULL);
}

int main(int argc, char **argv)
{
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	stop_flag = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	if (stop_flag == MAP_FAILED)
		return 100;
	if (ksm_read("run") < 0) {
		printf("BENCH-FAIL all no /sys/kernel/mm/ksm\n");
		return 100;
	}
	/* Automatic NUMA balancing would migrate pages under our feet. */
	{
		int fd = open("/proc/sys/kernel/numa_balancing", O_WRONLY);

		if (fd >= 0) {
			if (write(fd, "0", 1) != 1)
				note("cannot disable NUMA balancing");
			close(fd);
		}
	}
	find_ksmd();
	ksmd_cpu();
	note("ksmd pid %d, CPU time from %s; smart_scan %s; pages_scanned %s; cow_ksm %s",
	     ksmd_pid, cpu_source, ksm_has("smart_scan") ? "present" : "absent",
	     ksm_has("pages_scanned") ? "present" : "absent",
	     vmstat("cow_ksm") >= 0 ? "present" : "absent");
	printf("BENCH info ksmd_cpu_source %s\n", cpu_source);
	/* Options first, wherever they are. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick") || !strcmp(argv[i], "quick"))
			quick = 1;
		else if (!strcmp(argv[i], "prof"))
			profiling = 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		int r;

		if (!strcmp(w, "--quick") || !strcmp(w, "quick") || !strcmp(w, "prof"))
			continue;
		if (!strcmp(w, "w1"))
			r = run_identical("w1", 4, quick ? 4 : 64, K_SAME, 10000, 0, 1);
		else if (!strcmp(w, "w2"))
			r = run_identical("w2", 8, quick ? 4 : 64, K_HALF, 10000, 0, 0);
		else if (!strcmp(w, "dflt"))
			r = run_identical("dflt", 4, quick ? 4 : 64, K_SAME, 100, 20, 0);
		else if (!strcmp(w, "w3"))
			r = run_unique("w3");
		else if (!strcmp(w, "w5"))
			r = run_sparse("w5");
		else if (!strcmp(w, "w6"))
			r = run_volatile("w6");
		else if (!strcmp(w, "wscale"))
			r = run_scale("wscale");
		else if (!strcmp(w, "wfh") || !strcmp(w, "wft") || !strcmp(w, "wfs")) {
			fill_family = w[2] == 'h' ? FAM_HEADER :
				      w[2] == 't' ? FAM_TAIL : FAM_SPREAD;
			r = run_identical(w, 2, quick ? 4 : 64, K_FAMILY, 10000, 0, 0);
			fill_family = FAM_NONE;
		}
		else {
			printf("BENCH-FAIL %s no such workload\n", w);
			r = 1;
		}
		failed += r;
	}
	return failed;
}
