// SPDX-License-Identifier: GPL-2.0
/*
 * The worker processes of the selftests of KSM against
 * the rest of mm: what they do to their memory on the test's command,
 * including the userfaultfd and stress workloads (ksm_mm_util.h).
 */
#include "ksm_mm_util.h"

/* ---------------------------------------------------------------- worker */

static sigjmp_buf g_jb;
static int g_jb_armed;
static unsigned long g_bus_addr;
static int g_bus_code;
static int g_cmd_rd = -1, g_rep_wr = -1;

/* Records the worker's first complaint for the test process to print. */
void werr(const char *fmt, ...)
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

void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	g_bus_addr = (unsigned long)si->si_addr;
	g_bus_code = si->si_code;
	if (__atomic_load_n(&g_jb_armed, __ATOMIC_RELAXED)) {
		__atomic_store_n(&g_jb_armed, 0, __ATOMIC_RELAXED);
		siglongjmp(g_jb, 1);
	}
	_exit(70);
}

void arm(void)
{
	__atomic_store_n(&g_jb_armed, 1, __ATOMIC_RELAXED);
}

void disarm(void)
{
	__atomic_store_n(&g_jb_armed, 0, __ATOMIC_RELAXED);
}

/* A SIGBUS on page @i: expected only on a hwpoisoned page, at its address. */
bool sigbus_ok(struct slot_shm *s, long i)
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
bool verify_one(struct slot_shm *s, long i)
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

bool fill_one(struct slot_shm *s, long i)
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

long w_fill(struct slot_shm *s, long lo, long hi)
{
	long i, bad = 0;

	for (i = lo; i < hi; i++)
		bad += !fill_one(s, i);
	return bad;
}

long w_verify(struct slot_shm *s, long lo, long hi)
{
	long i, bad = 0;

	for (i = lo; i < hi; i++)
		bad += !verify_one(s, i);
	return bad;
}

/* Maps @n pages at the end of the worker's page list; returns the index. */
long w_map(struct slot_shm *s, long n, long thp, long node, long mode)
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
int for_runs(struct slot_shm *s, long lo, long hi,
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

int run_madvise(struct slot_shm *s, long lo, long hi, long advice)
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

int run_munmap(struct slot_shm *s, long lo, long hi, long unused)
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

int run_mprotect(struct slot_shm *s, long lo, long hi, long prot)
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

int run_mlock(struct slot_shm *s, long lo, long hi, long on)
{
	void *p = (void *)s->addr[lo];
	size_t len = (hi - lo) * page_size;

	if (on ? mlock(p, len) : munlock(p, len))
		return -errno;
	return 0;
}

bool contiguous(struct slot_shm *s, long lo, long hi)
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
long w_mremap(struct slot_shm *s, long lo, long hi, long grow)
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

long w_stat(struct slot_shm *s)
{
	struct pstat ps;

	if (read_pstat("/proc/self", &ps))
		return -errno;
	s->res[0] = ps.merging;
	s->res[1] = ps.stat_merging;
	s->res[2] = ps.zero;
	return 0;
}

/*
 * move_pages() on [lo, hi) to @node (or only ask where, @node < 0).
 * Returns the number of pages not moved, or -errno; status[] holds each
 * page's result (STATUS_UNSET where the kernel did not get to it).
 */
long w_move(struct slot_shm *s, long lo, long hi, long node, long flags)
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
long w_inject(struct slot_shm *s, long i, long advice)
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

/* In a forked child: become the worker of spare slot @k. */
void become_slot(int k)
{
	struct slot_shm *to = g_slot[k].shm;

	to->pid = getpid();
	g_self = to;
	g_self_slot = k;
	g_cmd_rd = g_slot[k].cmd_rd;
	g_rep_wr = g_slot[k].rep_wr;
	worker_loop();
}

long w_fork(struct slot_shm *s, long k)
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
long w_fork_exec(struct slot_shm *s, long k, long scans)
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
long w_reap(struct slot_shm *s, long ms)
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

long w_cgroup(struct slot_shm *s)
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

int uffd_protect(unsigned long start, unsigned long len, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = start, .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(g_uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

long w_uffd_reg(struct slot_shm *s, long lo, long hi)
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

long w_uffd_wp(struct slot_shm *s, long lo, long hi, long on)
{
	if (!contiguous(s, lo, hi))
		return -EINVAL;
	return uffd_protect(s->addr[lo], (hi - lo) * page_size, on);
}

/* Resolves write-protect faults: counts them and unprotects the page. */
void *uffd_handler(void *unused)
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
long w_uffd_write(struct slot_shm *s, long lo, long hi)
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

unsigned long long rnd(void)
{
	g_rnd ^= g_rnd >> 12;
	g_rnd ^= g_rnd << 25;
	g_rnd ^= g_rnd >> 27;
	return g_rnd * 0x2545f4914f6cdd1dULL;
}

long rnd_below(long n)
{
	return n > 0 ? (long)(rnd() % n) : 0;
}

static struct slot_shm *g_shared;	/* the slot's shared page (stress) */
static bool g_is_kid;
static int g_kids;

unsigned long long stress_seed(struct slot_shm *s)
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
void pick_run(long max, long *lo, long *hi)
{
	long c = rnd_below(ST_CHUNKS), len = 1 + rnd_below(max);
	long off = rnd_below(ST_CHUNK - len + 1);

	*lo = c * ST_CHUNK + off;
	*hi = *lo + len;
}

long stress_write(struct slot_shm *s)
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

long stress_migrate(struct slot_shm *s, int nodes)
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

long stress_remap(struct slot_shm *s)
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

long stress_mprotect(struct slot_shm *s)
{
	long lo, hi, bad;

	pick_run(16, &lo, &hi);
	if (for_runs(s, lo, hi, run_mprotect, PROT_READ))
		return 0;
	bad = w_verify(s, lo, hi);
	for_runs(s, lo, hi, run_mprotect, PROT_READ | PROT_WRITE);
	return bad;
}

/*
 * A short-lived child: checks and writes its private copy of the shadow
 * (taken by the parent before the fork), then exits.
 */
void stress_kid(struct slot_shm *copy)
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

long stress_fork(struct slot_shm *s)
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
long stress_handover(struct slot_shm *s)
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

long stress_step(struct slot_shm *s, int nodes)
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
long w_stress(struct slot_shm *s, long end_ms, long nodes)
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
long w_churn(struct slot_shm *s, long end_ms)
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
long w_readvise(struct slot_shm *s)
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

long dispatch(struct slot_shm *s, const struct msg *m)
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

void worker_loop(void)
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

void worker_signals(void)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void worker_main(int k)
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
int exec_worker_main(char **argv)
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
