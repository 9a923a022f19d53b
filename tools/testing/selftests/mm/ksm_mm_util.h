/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the selftests of KSM against the rest of mm share
 * (ksm_swap_tests, ksm_numa_tests, ksm_phys_tests, ksm_vma_tests,
 * ksm_unmerge_tests): ksm_mm_util.c holds output, files, knobs, page
 * contents, procfs, the slots of the worker processes, clean-up and the
 * test driver; ksm_mm_worker.c the worker side; ksm_mm_model.c the model
 * of what must be merged, settling, and swap helpers.
 *
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
 */
#ifndef KSM_MM_UTIL_H
#define KSM_MM_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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

/* Counters of /proc/<pid>/ksm_stat and ksm_merging_pages. */
struct pstat {
	long merging;		/* ksm_merging_pages file */
	long stat_merging;	/* ksm_merging_pages line of ksm_stat */
	long zero;		/* ksm_zero_pages line of ksm_stat, or -1 */
};

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

/* vmstat event counters, when the kernel has them. */
struct vmev {
	long pswpin, pswpout, cow_ksm, swpin_copy;
};

struct got {
	long shared, sharing, zero, scans;
	struct pstat ps[MAX_SLOTS];
};

/* One page the model counts: mergeable, present, with content. */
struct mpage {
	unsigned long long seed;
	unsigned long long pfn;
	int node;
	int slot;
	int idx;
};

struct model_opts {
	bool mac0;		/* merge_across_nodes=0: contents merge per node */
	bool relaxed;		/* several KSM pages per content are fine */
	bool zero_pages;	/* use_zero_pages=1 */
	bool loose_frames;	/* processes outside the model map our frames */
	long extra_sharing;	/* their share of pages_sharing */
};

struct cleanup {
	char cg[128];
	bool subtree_added;
	int block;		/* memory block taken offline/online, or -1 */
	bool block_was_movable;
	bool block_was_offline;	/* a hot-plugged block we onlined */
};

/* One named test; timed ones run -d seconds on top of the time limit. */
struct ksm_test {
	const char *name;
	enum result (*fn)(void);
	bool timed;
};

extern const char * const stress_names[NR_ST_OPS];
extern struct model_opts g_opt;
extern struct cleanup *g_clean;
extern struct slot g_slot[MAX_SLOTS];
extern int g_nr_slots;
extern long page_size;
extern unsigned long long g_seed;
extern unsigned long long g_fresh;	/* fresh seeds of the test process */
extern double g_deadline;
extern int g_failed;
extern long g_checks;
extern int g_timeout;
extern int g_duration;
extern int g_repeat;		/* -r */
extern bool g_skip_code;		/* -k: exit 4 if every test skipped */
extern char *g_skip_reason;		/* shared with the driver */
extern struct slot_shm *g_self;		/* worker side: own slot */
extern int g_self_slot;
extern bool g_have_vmstat;		/* /proc/vmstat has event counters */
extern unsigned long long g_zero_pfn;
extern struct mpage g_mp[MAX_SLOTS * MAX_PAGES];
extern int g_nmp;
extern unsigned long long g_pm[MAX_SLOTS][MAX_PAGES];

/* move_pages() status of a page the kernel did not get to */
#define STATUS_UNSET	INT_MIN

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

static inline unsigned long long mix64(unsigned long long x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static inline unsigned long long page_word(unsigned long long seed, long i)
{
	if (seed == SEED_NONE || seed == SEED_ZEROS)
		return 0;
	return mix64(seed + (unsigned long long)i * 0x9e3779b97f4a7c15ULL);
}

void out_line(const char *fmt, ...);
bool expect_eq(const char *what, long got, long want);
bool expect_true(const char *what, bool cond);
double now(void);
void sleep_ms(long ms);
void skip(const char *fmt, ...);
int read_text(const char *path, char *buf, size_t size);
int write_text(const char *path, const char *s);
int read_long(const char *path, long *val);
long read_key(const char *path, const char *key);
long vm_event(const char *key);
const char *ksm_path(const char *name);
long ksm_get(const char *name);
bool ksm_has(const char *name);
bool ksm_set(const char *name, long val);
void bracketed(char *s);
void settings_save(void);
bool settings_restore(void);
bool sysctl_set(const char *path, const char *val);
unsigned long long make_seed(unsigned long long tag, unsigned long long n);
unsigned long long fresh_seed(void);
void fill_page(unsigned long long *p, unsigned long long seed);
long check_page(const unsigned long long *p, unsigned long long seed);
int pagemap_fd(pid_t pid);
int slot_pagemap(struct slot_shm *s, unsigned long long *ent);
long pfn_count(unsigned long long pfn);
unsigned long long pfn_flags(unsigned long long pfn);
int read_pstat(const char *dir, struct pstat *ps);
int read_pid_stat(pid_t pid, struct pstat *ps);
int nr_memory_nodes(void);
long sys_move_pages(pid_t pid, unsigned long n, void **pages,
		    const int *nodes, int *status, int flags);
long sys_mbind(void *addr, unsigned long len, int mode,
	       const unsigned long *mask, unsigned long maxnode);
long sys_migrate_pages(pid_t pid, unsigned long maxnode,
		       const unsigned long *from, const unsigned long *to);
void lru_drain_all(void);
void find_zero_pfn(void);
bool slots_create(int n);
bool workers_start(int nw, int spare);
bool wsend(int k, int op, long a0, long a1, long a2, long a3);
bool worker_gone(struct slot *sl);
long wrecv(int k, double limit);
long wcall(int k, int op, long a0, long a1, long a2, long a3);
bool wdo(int k, int op, long a0, long a1, long a2, long a3, const char *what);
bool slot_live(int k);
bool verify_all(const char *when);
long slot_npages(int k);
void block_path(char *buf, size_t len, int blk, const char *file);
int block_set(int blk, const char *state, int secs);
bool block_online(int blk);
void cg_path(char *buf, size_t len, const char *file);
int cg_write(const char *file, const char *val);
long cg_key(const char *file, const char *key);
long cg_long(const char *file);
bool cg_create(void);
bool cg_join(int k);
void cg_cleanup(void);
void block_cleanup(void);
void std_seeds(int k, long base, long n, long common, long dups);
bool std_start(const struct std_opts *o);
long count_pm(int k, long lo, long hi, unsigned long long bit);
bool rewrite(int k, long lo, long hi);
void mark_lone(int k, long lo, long hi);
void vmev_read(struct vmev *v);

void werr(const char *fmt, ...);
void on_sigbus(int sig, siginfo_t *si, void *uc);
void arm(void);
void disarm(void);
bool sigbus_ok(struct slot_shm *s, long i);
bool verify_one(struct slot_shm *s, long i);
bool fill_one(struct slot_shm *s, long i);
long w_fill(struct slot_shm *s, long lo, long hi);
long w_verify(struct slot_shm *s, long lo, long hi);
long w_map(struct slot_shm *s, long n, long thp, long node, long mode);
int for_runs(struct slot_shm *s, long lo, long hi,
	     int (*fn)(struct slot_shm *s, long lo, long hi, long arg),
	     long arg);
int run_madvise(struct slot_shm *s, long lo, long hi, long advice);
int run_munmap(struct slot_shm *s, long lo, long hi, long unused);
int run_mprotect(struct slot_shm *s, long lo, long hi, long prot);
int run_mlock(struct slot_shm *s, long lo, long hi, long on);
bool contiguous(struct slot_shm *s, long lo, long hi);
long w_mremap(struct slot_shm *s, long lo, long hi, long grow);
long w_stat(struct slot_shm *s);
long w_move(struct slot_shm *s, long lo, long hi, long node, long flags);
long w_inject(struct slot_shm *s, long i, long advice);
void become_slot(int k);
long w_fork(struct slot_shm *s, long k);
long w_fork_exec(struct slot_shm *s, long k, long scans);
long w_reap(struct slot_shm *s, long ms);
long w_cgroup(struct slot_shm *s);
int uffd_protect(unsigned long start, unsigned long len, bool on);
long w_uffd_reg(struct slot_shm *s, long lo, long hi);
long w_uffd_wp(struct slot_shm *s, long lo, long hi, long on);
void *uffd_handler(void *unused);
long w_uffd_write(struct slot_shm *s, long lo, long hi);
unsigned long long rnd(void);
long rnd_below(long n);
unsigned long long stress_seed(struct slot_shm *s);
void pick_run(long max, long *lo, long *hi);
long stress_write(struct slot_shm *s);
long stress_migrate(struct slot_shm *s, int nodes);
long stress_remap(struct slot_shm *s);
long stress_mprotect(struct slot_shm *s);
void stress_kid(struct slot_shm *copy);
long stress_fork(struct slot_shm *s);
long stress_handover(struct slot_shm *s);
long stress_step(struct slot_shm *s, int nodes);
long w_stress(struct slot_shm *s, long end_ms, long nodes);
long w_churn(struct slot_shm *s, long end_ms);
long w_readvise(struct slot_shm *s);
long dispatch(struct slot_shm *s, const struct msg *m);
void worker_loop(void);
void worker_signals(void);
void worker_main(int k);
int exec_worker_main(char **argv);

unsigned long long page_pfn(int k, long i);
int mp_by_content(const void *a, const void *b);
int mp_by_pfn(const void *a, const void *b);
bool mp_lone(const struct mpage *m);
int slot_nodes(int k, int *node);
bool model_collect(struct expect *e);
void model_by_content(struct expect *e);
bool model_by_frame(struct expect *e);
bool model_build(struct expect *e, bool *merged);
bool read_got(struct got *g);
bool counters_match(const struct expect *e, const struct got *g, bool say);
bool ksmd_go(void);
void check_frames(void);
void check_self_stats(const struct got *g);
void show_ksm_state(void);
bool settle(const char *what);
bool ksm_reset(void);
bool ksm_unmerge_all(void);
bool have_swap(void);
int swapped_cmp(const void *a, const void *b);
long check_swap_entries(long *slots, long *per);
bool cg_reclaim(void);
long ksm_swapped(int k);
bool swap_out_all(int nw, const char *what, struct vmev *before);
bool pageout_all(int k, long lo, long hi, const char *what);
bool lone_pageout(int nw, long lo, long hi);
long corrupted_kb(void);

int mm_tests_main(const struct ksm_test *tests, size_t nr, int argc, char **argv);

#endif /* KSM_MM_UTIL_H */
