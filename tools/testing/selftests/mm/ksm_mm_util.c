// SPDX-License-Identifier: GPL-2.0
/*
 * Output, files, knobs, page contents, procfs, the slots
 * of the worker processes, clean-up and the test driver of the selftests
 * of KSM against the rest of mm (ksm_mm_util.h).
 */
#include "ksm_mm_util.h"

struct slot g_slot[MAX_SLOTS];
int g_nr_slots;
long page_size;
unsigned long long g_seed;
unsigned long long g_fresh;	/* fresh seeds of the test process */
double g_deadline;
int g_failed;
long g_checks;
int g_timeout = DEFAULT_TIMEOUT;
int g_duration = DEFAULT_DURATION;
int g_repeat = 1;		/* -r */
bool g_skip_code;		/* -k: exit 4 if every test skipped */
char *g_skip_reason;		/* shared with the driver */
struct slot_shm *g_self;		/* worker side: own slot */
int g_self_slot = -1;
bool g_have_vmstat;		/* /proc/vmstat has event counters */
unsigned long long g_zero_pfn;

const char * const stress_names[NR_ST_OPS] = {
	"write", "verify", "merge", "unmerge", "fork", "exit", "mremap",
	"pageout", "migrate", "dontneed", "remap", "cold", "mprotect",
};

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

bool expect_eq(const char *what, long got, long want)
{
	g_checks++;
	if (got != want)
		fail("%s: got %ld, expected %ld", what, got, want);
	return got == want;
}

bool expect_true(const char *what, bool cond)
{
	g_checks++;
	if (!cond)
		fail("%s", what);
	return cond;
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

void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_skip_reason, 256, fmt, ap);
	va_end(ap);
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

/* Returns 0 or the errno the open or the write failed with. */
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

/*
 * Value of @key in a file of "key value" or "key: value kB" lines
 * (/proc/vmstat, memory.stat, /proc/meminfo, /proc/<pid>/status),
 * or -1 when the file or the key is missing.
 */
long read_key(const char *path, const char *key)
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

long vm_event(const char *key)
{
	return read_key("/proc/vmstat", key);
}

/* ---------------------------------------------------------------- knobs */

const char *ksm_path(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	return path;
}

long ksm_get(const char *name)
{
	long v;
	int err = read_long(ksm_path(name), &v);

	if (err) {
		fail("cannot read %s: %s", name, strerror(-err));
		return -1;
	}
	return v;
}

bool ksm_has(const char *name)
{
	return !access(ksm_path(name), F_OK);
}

bool ksm_set(const char *name, long val)
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
void bracketed(char *s)
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

void settings_save(void)
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
bool settings_restore(void)
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

bool sysctl_set(const char *path, const char *val)
{
	int err = write_text(path, val);

	if (err)
		diag("cannot write %s to %s: %s", val, path, strerror(err));
	return !err;
}

/* ---------------------------------------------------------------- content */

/* A seed no other caller gets: @tag and @n name it. */
unsigned long long make_seed(unsigned long long tag, unsigned long long n)
{
	unsigned long long s = mix64(g_seed ^ mix64(tag << 40 ^ n));

	return s == SEED_NONE || s == SEED_ZEROS ? 1 : s;
}

unsigned long long fresh_seed(void)
{
	return make_seed(0xf00, ++g_fresh);
}

void fill_page(unsigned long long *p, unsigned long long seed)
{
	long i, words = page_size / sizeof(*p);

	for (i = 0; i < words; i++)
		p[i] = page_word(seed, i);
}

/* Returns the index of the first wrong word, or -1. */
long check_page(const unsigned long long *p, unsigned long long seed)
{
	long i, words = page_size / sizeof(*p);

	for (i = 0; i < words; i++)
		if (p[i] != page_word(seed, i))
			return i;
	return -1;
}

/* ---------------------------------------------------------------- procfs */

int pagemap_fd(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	return open(path, O_RDONLY);
}

/* Pagemap entries of the pages of @s (0 for unmapped pages), in runs. */
int slot_pagemap(struct slot_shm *s, unsigned long long *ent)
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

long pfn_count(unsigned long long pfn)
{
	static int fd = -1;
	unsigned long long c = 0;

	if (fd < 0)
		fd = open("/proc/kpagecount", O_RDONLY);
	if (pread(fd, &c, sizeof(c), pfn * sizeof(c)) != sizeof(c))
		return -1;
	return c;
}

unsigned long long pfn_flags(unsigned long long pfn)
{
	static int fd = -1;
	unsigned long long f = 0;

	if (fd < 0)
		fd = open("/proc/kpageflags", O_RDONLY);
	if (pread(fd, &f, sizeof(f), pfn * sizeof(f)) != sizeof(f))
		return 0;
	return f;
}

int read_pstat(const char *dir, struct pstat *ps)
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

int read_pid_stat(pid_t pid, struct pstat *ps)
{
	char dir[32];

	snprintf(dir, sizeof(dir), "/proc/%d", pid);
	return read_pstat(dir, ps);
}

int nr_memory_nodes(void)
{
	char buf[64];
	int a, b;

	if (read_text("/sys/devices/system/node/has_memory", buf, sizeof(buf)) < 0)
		return 1;
	if (sscanf(buf, "%d-%d", &a, &b) == 2)
		return b - a + 1;
	return strchr(buf, ',') ? 2 : 1;
}

long sys_move_pages(pid_t pid, unsigned long n, void **pages,
		    const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, pid, n, pages, nodes, status, flags);
}

long sys_mbind(void *addr, unsigned long len, int mode,
	       const unsigned long *mask, unsigned long maxnode)
{
	return syscall(SYS_mbind, addr, len, mode, mask, maxnode, 0);
}

long sys_migrate_pages(pid_t pid, unsigned long maxnode,
		       const unsigned long *from, const unsigned long *to)
{
	return syscall(SYS_migrate_pages, pid, maxnode, from, to);
}

/*
 * lru_add_drain_all() from userspace: migrate_pages() drains every CPU's
 * LRU batches before it looks for pages to move (none, from == to here).
 */
void lru_drain_all(void)
{
	unsigned long mask = 1;

	sys_migrate_pages(getpid(), 8 * sizeof(mask), &mask, &mask);
}

/* The frame of the shared zero page, as pagemap reports it. */
void find_zero_pfn(void)
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

/* ---------------------------------------------------------------- slots */

bool slots_create(int n)
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
bool workers_start(int nw, int spare)
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

bool wsend(int k, int op, long a0, long a1, long a2, long a3)
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
bool worker_gone(struct slot *sl)
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
long wrecv(int k, double limit)
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

long wcall(int k, int op, long a0, long a1, long a2, long a3)
{
	if (!wsend(k, op, a0, a1, a2, a3))
		return -EPIPE;
	return wrecv(k, now() + OP_TIMEOUT);
}

/* A call that must return 0. */
bool wdo(int k, int op, long a0, long a1, long a2, long a3, const char *what)
{
	long r = wcall(k, op, a0, a1, a2, a3);

	if (r)
		fail("worker %d: %s: %s", k, what, r < 0 ? strerror(-r) : "failed");
	return !r;
}

bool slot_live(int k)
{
	return g_slot[k].used && !g_slot[k].dead;
}

/* Every byte of every page of every worker. */
bool verify_all(const char *when)
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

long slot_npages(int k)
{
	return g_slot[k].shm->npages;
}

/* ---------------------------------------------------------------- cleanup */

/* What the driver must undo if a test ends early (shared memory). */
struct cleanup *g_clean;

void block_path(char *buf, size_t len, int blk, const char *file)
{
	snprintf(buf, len, MEM_DIR "memory%d/%s", blk, file);
}

/*
 * Writes @state to a memory block's state file in a child that a timer
 * interrupts: offlining retries migration until a signal arrives.
 * Returns 0, -errno of the write, or -ETIMEDOUT.
 */
int block_set(int blk, const char *state, int secs)
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

bool block_online(int blk)
{
	char path[128], buf[32];

	block_path(path, sizeof(path), blk, "state");
	return read_text(path, buf, sizeof(buf)) > 0 && !strncmp(buf, "online", 6);
}

void cg_path(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", g_clean->cg, file);
}

int cg_write(const char *file, const char *val)
{
	char path[256];

	cg_path(path, sizeof(path), file);
	return write_text(path, val);
}

long cg_key(const char *file, const char *key)
{
	char path[256];

	cg_path(path, sizeof(path), file);
	return read_key(path, key);
}

long cg_long(const char *file)
{
	char path[256];
	long v;

	cg_path(path, sizeof(path), file);
	return read_long(path, &v) ? -1 : v;
}

/* Creates our memory cgroup; false (and a skip reason) if there is none. */
bool cg_create(void)
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
bool cg_join(int k)
{
	cg_path(g_slot[k].shm->path, sizeof(g_slot[k].shm->path), "cgroup.procs");
	return wdo(k, OP_CGROUP, 0, 0, 0, 0, "joining the cgroup");
}

/* Driver side: kill what is left in the cgroup, remove it. */
void cg_cleanup(void)
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
void block_cleanup(void)
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
void std_seeds(int k, long base, long n, long common, long dups)
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

/* Starts the workers, maps, fills, verifies, advises and waits for merging. */
bool std_start(const struct std_opts *o)
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
long count_pm(int k, long lo, long hi, unsigned long long bit)
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
bool rewrite(int k, long lo, long hi)
{
	long i;

	for (i = lo; i < hi; i++)
		g_slot[k].shm->seed[i] = fresh_seed();
	return wdo(k, OP_FILL, lo, hi, 0, 0, "writing new content");
}

/* Marks pages [lo, hi) of worker @k as possibly lone KSM pages. */
void mark_lone(int k, long lo, long hi)
{
	long i;

	for (i = lo; i < hi; i++)
		g_slot[k].shm->flags[i] |= PF_LONE;
}

void vmev_read(struct vmev *v)
{
	v->pswpin = vm_event("pswpin");
	v->pswpout = vm_event("pswpout");
	v->cow_ksm = vm_event("cow_ksm");
	v->swpin_copy = vm_event("ksm_swpin_copy");
}

/* ---------------------------------------------------------------- driver */

int test_limit(const struct ksm_test *t)
{
	return g_timeout + (t->timed ? g_duration : 0);
}

void run_test_child(const struct ksm_test *t)
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

int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

bool kmsg_clean(int fd)
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

void reap_group(pid_t pgid)
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

enum result run_test(const struct ksm_test *t, int nr)
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

const char *why_not(void)
{
	if (geteuid())
		return "needs root";
	if (access(KSM_DIR "run", F_OK))
		return "no KSM (CONFIG_KSM)";
	if (access("/proc/kpagecount", R_OK))
		return "no /proc/kpagecount (CONFIG_PROC_PAGE_MONITOR)";
	return NULL;
}

void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void print_usage(const char *prog, const struct ksm_test *tests, size_t nr)
{
	size_t i;

	fprintf(stderr, "usage: %s [-t seconds] [-d seconds] [-k] [-l] [test ...]\n"
		"  -t  time limit of each test (default %d)\n"
		"  -d  duration of the stress test's random phase (default %d)\n"
		"  -k  exit with 4 when every test skipped\n"
		"  -r  run the selected tests this many times (default 1)\n"
		"tests:", prog, DEFAULT_TIMEOUT, DEFAULT_DURATION);
	for (i = 0; i < nr; i++)
		fprintf(stderr, " %s", tests[i].name);
	fprintf(stderr, "\n");
}

static int parse_args(const struct ksm_test *tests, size_t nr, int argc, char **argv,
		      bool *selected)
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
			for (k = 0; k < nr; k++)
				printf("%s\n", tests[k].name);
			exit(0);
		default:
			print_usage(argv[0], tests, nr);
			return -1;
		}
	}
	if (g_timeout < 20 || g_duration < 1 || g_repeat < 1) {
		print_usage(argv[0], tests, nr);
		return -1;
	}
	for (i = optind; i < argc; i++) {
		for (k = 0; k < nr; k++)
			if (!strcmp(argv[i], tests[k].name))
				break;
		if (k == nr) {
			fprintf(stderr, "unknown test %s\n", argv[i]);
			print_usage(argv[0], tests, nr);
			return -1;
		}
		selected[k] = true;
	}
	for (k = 0, i = 0; k < nr; k++) {
		if (optind == argc)
			selected[k] = true;
		i += selected[k];
	}
	return i * g_repeat;
}

/**
 * mm_tests_main() - run the named tests of a program as TAP
 * @tests: the program's tests
 * @nr: how many
 * @argc: the command line (see print_usage())
 * @argv: the command line
 *
 * Return: the exit code: 0 if no test failed, 1 if one did, 4 with -k when
 * every test skipped, 2 on a usage error.
 */
int mm_tests_main(const struct ksm_test *tests, size_t nr, int argc, char **argv)
{
	bool *selected = calloc(nr, sizeof(*selected));
	int i, count, rep, failed = 0, skipped = 0;
	enum result r;
	const char *why;
	double t0 = now();
	size_t k;

	page_size = sysconf(_SC_PAGESIZE);
	if (argc == 7 && !strcmp(argv[1], "--worker"))
		return exec_worker_main(argv);
	if (!selected)
		return 1;
	count = parse_args(tests, nr, argc, argv, selected);
	if (count < 0)
		return 2;
	g_seed = mix64(time(NULL) ^ (unsigned long long)getpid() << 32);
	g_skip_reason = shared_alloc(256);
	g_clean = shared_alloc(sizeof(*g_clean));
	if (!g_skip_reason || !g_clean)
		return 1;
	g_clean->block = -1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	out("1..%d", count);
	why = why_not();
	if (why) {
		for (k = 0, i = 1; k < nr; k++)
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
		for (k = 0; k < nr; k++) {
			if (!selected[k])
				continue;
			r = run_test(&tests[k], i++);
			failed += r == RES_FAIL;
			skipped += r == RES_SKIP;
		}
	}
	if (!settings_restore())
		failed++;
	diag("total %.1f s, %d of %d failed, %d skipped", now() - t0, failed, count, skipped);
	/* -k: exit code 4 (kselftest's skip) when nothing ran */
	return failed ? 1 : g_skip_code && skipped == count ? 4 : 0;
}
