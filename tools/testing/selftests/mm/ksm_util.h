/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the strict KSM selftests (ksm_tests, ksm_stat_tests,
 * ksm_scan_tests) share: ksm_util.c holds output, sysfs and procfs access,
 * page contents, the worker processes and the test driver; ksm_model.c the
 * model of what must merge and the checks of counters and frames.
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
 */
#ifndef KSM_UTIL_H
#define KSM_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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

struct ksm_model {
	bool use_zero_pages;
	bool across_nodes;
	bool noisy;		/* merge-any workers: global counts unknown */
	bool exact_unshared;	/* smart_scan off: pages_unshared is exact */
	struct group ksm[(MAX_WORKERS + 1) * MAX_PAGES];
	int nr_ksm;
};

/* One named test of a program: its function returns RES_*. */
struct ksm_test {
	const char *name;
	enum result (*fn)(void);
};

extern struct ksm_model model;
extern struct worker g_w[MAX_WORKERS];
extern int g_nr_workers;
extern struct worker *g_sentinel;
extern long page_size;
extern unsigned long long g_seed;
extern double g_deadline;
extern int g_failed;
extern int g_checks;
extern long g_page_checks;
extern int g_timeout;
extern char *g_skip_reason;	/* shared with the parent */
extern bool g_named;		/* tests were selected by name */
extern long g_rmap_item_size;

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
/* The layout of start_layout_workers(), see layout_key() */
#define L_COMMON	256
#define L_SAME		304
#define L_PAIR		400
#define L_PAGES		512

extern bool g_kpf_ksm_ok;
extern bool (*g_settle_pred)(struct worker **ws, int n);

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

static inline unsigned long long mix64(unsigned long long x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

void out_line(const char *fmt, ...);
double now(void);
void sleep_ms(long ms);
void skip(const char *reason);
int read_text(const char *path, char *buf, size_t size);
int write_text(const char *path, const char *s);
int read_long(const char *path, long *val);
const char *knob_path(const char *name);
bool knob_exists(const char *name);
long knob_val(const char *name);
int knob_put(const char *name, const char *val);
bool knob_set(const char *name, long val);
void knobs_save(void);
void sysctls_quiet(void);
void sysctls_restore(void);
bool knobs_restore(void);
unsigned long long page_word(unsigned long long key, long i);
void fill_page(unsigned long long *p, unsigned long long key);
long check_page(const unsigned long long *p, unsigned long long key);
int parse_ksm_stat(const char *path, struct mm_ksm_stat *st);
int read_pagemap(pid_t pid, unsigned long addr, long n,
		 unsigned long long *ent);
unsigned long long frame_flags(unsigned long long pfn);
bool pfn_is_ksm(unsigned long long pfn);
bool pfn_is_zero(unsigned long long pfn);
long frame_maps(unsigned long long pfn);
void probe_kpf_ksm(void);
long count_multi(pid_t pid, unsigned long region, long lo, long hi);
int vma_has_flag(pid_t pid, unsigned long addr, const char *flag);
void check_ksm_frames(void);
void rewrite_byte(char *p);
void worker_loop(struct worker *self);
void unshare_inherited(void);
void worker_main(struct worker *self);
struct worker *worker_prepare(void);
void worker_attached(struct worker *w);
struct worker *worker_start(void);
void worker_gone(struct worker *w);
long worker_call(struct worker *w, worker_fn fn, long arg);
long w_map(struct worker *self, long npages);
long w_map_thp(struct worker *self, long npages);
long w_fill(struct worker *self, long unused);
long w_verify(struct worker *self, long unused);
long w_madvise(struct worker *self, long advice);
long w_prctl_set(struct worker *self, long on);
long w_prctl_get(struct worker *self, long unused);
long w_stat(struct worker *self, long unused);
long w_mbind(struct worker *self, long unused);
long w_where(struct worker *self, long unused);
long w_cow_probe(struct worker *self, long unused);
long w_fork_worker(struct worker *self, long idx);
long w_exec_probe(struct worker *self, long unused);
void run_test_child(const struct ksm_test *t);
int kmsg_open(void);
bool kmsg_clean(int fd);
void reap_group(pid_t pgid);
enum result run_test(const struct ksm_test *t, int nr);

int ref_cmp_ull(const void *a, const void *b);
int group_cmp(const void *a, const void *b);
struct group page_group(struct worker *w, long i);
bool page_counted(struct worker *w, long i);
bool group_was_ksm(struct group g);
int model_groups(struct worker **ws, int n, struct group *all);
long group_count(struct group *all, int nr, struct group g);
bool group_is_ksm(struct group *all, int nr, struct group g);
int with_sentinel(struct worker **ws, int n);
void model_expect(struct worker **ws, int n, struct ksm_expect *e);
void model_commit(struct worker **ws, int n);
void model_forget(void);
bool counters_match(struct worker **ws, int n);
int ref_by_group(const void *a, const void *b);
int ref_by_frame(const void *a, const void *b);
long check_frames(struct worker **ws, int n,
		  unsigned long long frame[][MAX_PAGES],
		  struct group *all, int nr, bool quiet);
long check_layout(struct worker **ws, int n, bool quiet);
bool ksm_reset(void);
void show_counters(void);
bool ksm_settle(struct worker **ws, int n, int min_scans);
void check_worker_stats(struct worker **ws, int n, struct ksm_expect *e);
void check_general_profit(struct worker **ws, int n);
void check_state(struct worker **ws, int n);
void check_cow_probe(struct worker **ws, int n);
void verify_all(struct worker **ws, int n);
void set_keys(struct worker *w, long lo, long hi,
	      unsigned long long (*key)(int wi, long i), int wi);
bool fill_range(struct worker *w, long lo, long hi);
struct worker *map_worker(long npages);
bool madvise_worker(struct worker *w, int advice);
bool start_sentinel(void);
unsigned long long layout_key(int w, long i);
bool start_layout_workers(struct worker **ws, int n);
void expect_write_err(const char *knob, const char *val, int err);
bool run_scans(long scans);

int ksm_tests_main(const struct ksm_test *tests, size_t nr, int argc, char **argv);
void ksm_tests_usage(const char *prog, const struct ksm_test *tests, size_t nr);

#endif /* KSM_UTIL_H */
