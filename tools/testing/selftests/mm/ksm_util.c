// SPDX-License-Identifier: GPL-2.0
/*
 * Output, sysfs and procfs access, page contents, worker
 * processes and the test driver of the strict KSM selftests (ksm_util.h).
 */
#include "ksm_util.h"

struct ksm_model model;
struct worker g_w[MAX_WORKERS];
int g_nr_workers;
struct worker *g_sentinel;
long page_size;
unsigned long long g_seed;
double g_deadline;
int g_failed;
int g_checks;
long g_page_checks;
int g_timeout = DEFAULT_TIMEOUT;
char *g_skip_reason;	/* shared with the parent */
bool g_named;		/* tests were selected by name */
long g_rmap_item_size;

/* ---------------------------------------------------------------- output */

/* One line, one write(): lines of concurrent processes never mix. */
void out_line(const char *fmt, ...)
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

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void skip(const char *reason)
{
	snprintf(g_skip_reason, 256, "%s", reason);
}

/* ---------------------------------------------------------------- files */

int read_text(const char *path, char *buf, size_t size)
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
int write_text(const char *path, const char *s)
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

int read_long(const char *path, long *val)
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

const char *knob_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), KSM_SYSFS "%s", name);
	return path;
}

bool knob_exists(const char *name)
{
	return !access(knob_path(name), F_OK);
}

long knob_val(const char *name)
{
	long v;
	int err = read_long(knob_path(name), &v);

	if (err) {
		fail("cannot read %s: %s", name, strerror(-err));
		return -1;
	}
	return v;
}

int knob_put(const char *name, const char *val)
{
	return write_text(knob_path(name), val);
}

bool knob_set(const char *name, long val)
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

void knobs_save(void)
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

void sysctls_quiet(void)
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

void sysctls_restore(void)
{
	size_t i;

	for (i = 0; i < NR_QUIET; i++)
		if (quiet_sysctls[i].saved[0])
			write_text(quiet_sysctls[i].path, quiet_sysctls[i].saved);
}

/* Returns false if a knob could not be put back. */
bool knobs_restore(void)
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

/* Word @i of the content named by @key. */
unsigned long long page_word(unsigned long long key, long i)
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

void fill_page(unsigned long long *p, unsigned long long key)
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
long check_page(const unsigned long long *p, unsigned long long key)
{
	long i, words = page_size / sizeof(*p);

	for (i = 0; i < words; i++)
		if (p[i] != page_word(key, i))
			return i;
	return -1;
}

/* ---------------------------------------------------------------- procfs */

/* Parses /proc/<pid>/ksm_stat; fields the kernel lacks stay -1. */
int parse_ksm_stat(const char *path, struct mm_ksm_stat *st)
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
int read_pagemap(pid_t pid, unsigned long addr, long n,
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

unsigned long long frame_flags(unsigned long long pfn)
{
	static int fd = -1;
	unsigned long long f = 0;

	if (fd < 0)
		fd = open("/proc/kpageflags", O_RDONLY);
	if (pread(fd, &f, sizeof(f), pfn * sizeof(f)) != sizeof(f))
		return 0;
	return f;
}

bool pfn_is_ksm(unsigned long long pfn)
{
	return frame_flags(pfn) & (1ULL << KPF_BIT_KSM);
}

bool pfn_is_zero(unsigned long long pfn)
{
	return frame_flags(pfn) & (1ULL << KPF_BIT_ZERO);
}

long frame_maps(unsigned long long pfn)
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
bool g_kpf_ksm_ok;

void probe_kpf_ksm(void)
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
long count_multi(pid_t pid, unsigned long region, long lo, long hi)
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
int vma_has_flag(pid_t pid, unsigned long addr, const char *flag)
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
void check_ksm_frames(void)
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
void rewrite_byte(char *p)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

void worker_loop(struct worker *self)
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
void unshare_inherited(void)
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

void worker_main(struct worker *self)
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
struct worker *worker_prepare(void)
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

void worker_attached(struct worker *w)
{
	w->pending = false;
	close(w->cmd_rd);
	close(w->rep_wr);
	w->cmd_rd = -1;
	w->rep_wr = -1;
}

struct worker *worker_start(void)
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
void worker_gone(struct worker *w)
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

long worker_call(struct worker *w, worker_fn fn, long arg)
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
long w_map(struct worker *self, long npages)
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
long w_map_thp(struct worker *self, long npages)
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
long w_fill(struct worker *self, long unused)
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
long w_verify(struct worker *self, long unused)
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

long w_madvise(struct worker *self, long advice)
{
	struct worker_shm *s = self->shm;

	if (madvise((void *)s->region, s->npages * page_size, advice))
		return -errno;
	return 0;
}

long w_prctl_set(struct worker *self, long on)
{
	(void)self;
	if (prctl(PR_SET_MEMORY_MERGE, on, 0, 0, 0))
		return -errno;
	return 0;
}

long w_prctl_get(struct worker *self, long unused)
{
	long r = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);

	(void)self;
	(void)unused;
	return r < 0 ? -errno : r;
}

long w_stat(struct worker *self, long unused)
{
	int err = parse_ksm_stat("/proc/self/ksm_stat", &self->shm->st);

	(void)unused;
	if (err)
		return err;
	return read_long("/proc/self/ksm_merging_pages",
			 &self->shm->st.merging_file);
}

/* Worker side: bind pages [arg[0], arg[1]) to node arg[2]. */
long w_mbind(struct worker *self, long unused)
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
long w_where(struct worker *self, long unused)
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
long w_cow_probe(struct worker *self, long unused)
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
long w_fork_worker(struct worker *self, long idx)
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
long w_exec_probe(struct worker *self, long unused)
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

/* ---------------------------------------------------------------- driver */

void run_test_child(const struct ksm_test *t)
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

int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

bool kmsg_clean(int fd)
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
void reap_group(pid_t pgid)
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

enum result run_test(const struct ksm_test *t, int nr)
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

void ksm_tests_usage(const char *prog, const struct ksm_test *tests, size_t nr)
{
	size_t i;

	fprintf(stderr, "usage: %s [-l seconds] [-L] [test ...]\n"
		"  -l  time limit of each test (default %d)\n"
		"  -L  list the tests\ntests:", prog, DEFAULT_TIMEOUT);
	for (i = 0; i < nr; i++)
		fprintf(stderr, " %s", tests[i].name);
	fprintf(stderr, "\n");
}

/* Marks the tests named on the command line; returns how many run. */
static int select_tests(const struct ksm_test *tests, size_t nr, bool *selected,
			int argc, char **argv)
{
	int i, count = 0;
	size_t k;

	for (i = optind; i < argc; i++) {
		for (k = 0; k < nr; k++)
			if (!strcmp(argv[i], tests[k].name))
				break;
		if (k == nr) {
			fprintf(stderr, "unknown test %s\n", argv[i]);
			ksm_tests_usage(argv[0], tests, nr);
			return -1;
		}
		selected[k] = true;
	}
	g_named = optind < argc;
	for (k = 0; k < nr; k++) {
		if (!g_named)
			selected[k] = true;
		count += selected[k];
	}
	return count;
}

/* Why none of the tests can run here, or NULL. */
static const char *cannot_run(void)
{
	if (geteuid())
		return "needs root";
	if (access(KSM_SYSFS "run", F_OK))
		return "no KSM (CONFIG_KSM)";
	if (access("/proc/kpagecount", R_OK))
		return "no /proc/kpagecount (CONFIG_PROC_PAGE_MONITOR)";
	return NULL;
}

/**
 * ksm_tests_main() - run the named tests of a program as TAP
 * @tests: the program's tests
 * @nr: how many
 * @argc: the command line (options -l seconds, -L; then test names)
 * @argv: the command line
 *
 * Return: the exit code: 0 if no test failed, 1 if one did, 2 on a usage
 * error.
 */
int ksm_tests_main(const struct ksm_test *tests, size_t nr, int argc, char **argv)
{
	bool *selected = calloc(nr, sizeof(*selected));
	int i, count, failed = 0, opt;
	double t0 = now();
	const char *why;
	size_t k;

	if (!selected)
		return 1;
	while ((opt = getopt(argc, argv, "l:Lh")) != -1) {
		switch (opt) {
		case 'l':
			g_timeout = atoi(optarg);
			if (g_timeout < 10) {
				ksm_tests_usage(argv[0], tests, nr);
				return 2;
			}
			break;
		case 'L':
			for (k = 0; k < nr; k++)
				printf("%s\n", tests[k].name);
			return 0;
		default:
			ksm_tests_usage(argv[0], tests, nr);
			return 2;
		}
	}
	count = select_tests(tests, nr, selected, argc, argv);
	if (count < 0)
		return 2;
	page_size = sysconf(_SC_PAGESIZE);
	g_seed = mix64(time(NULL) ^ (unsigned long long)getpid() << 32);
	g_skip_reason = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_skip_reason == MAP_FAILED)
		return 1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	out("1..%d", count);
	why = cannot_run();
	if (why) {
		for (k = 0, i = 1; k < nr; k++)
			if (selected[k])
				out("ok %d %s # SKIP %s", i++, tests[k].name, why);
		return 0;
	}
	knobs_save();
	sysctls_quiet();
	probe_kpf_ksm();
	for (k = 0, i = 1; k < nr; k++)
		if (selected[k] && run_test(&tests[k], i++) == RES_FAIL)
			failed++;
	if (!knobs_restore())
		failed++;
	sysctls_restore();
	diag("total %.1f s, %d of %d failed", now() - t0, failed, count);
	return failed ? 1 : 0;
}
