// SPDX-License-Identifier: GPL-2.0
/*
 * The model of which pages must be merged, ksmd control and
 * the checks of counters, frames and contents against the model, shared by
 * the strict KSM selftests (ksm_util.h).
 */
#include "ksm_util.h"

/* ---------------------------------------------------------------- model */

int ref_cmp_ull(const void *a, const void *b)
{
	const unsigned long long *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

int group_cmp(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->node - y->node;
}

struct group page_group(struct worker *w, long i)
{
	struct group g = { w->shm->key[i], 0 };

	if (!model.across_nodes)
		g.node = w->shm->node[i];
	return g;
}

/* Does the content of this page take part in normal merging? */
bool page_counted(struct worker *w, long i)
{
	unsigned long long k = w->shm->key[i];

	if (!w->mergeable || k == KEY_ABSENT)
		return false;
	return !(k == KEY_ZERO && model.use_zero_pages);
}

bool group_was_ksm(struct group g)
{
	return bsearch(&g, model.ksm, model.nr_ksm, sizeof(g), group_cmp);
}

/*
 * The scan set: all workers the test gave plus the sentinel.  Content groups
 * mapped twice or more are KSM pages; a group that was KSM and is left with
 * one mapping stays a KSM page (nobody breaks it).
 */
int model_groups(struct worker **ws, int n, struct group *all)
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

long group_count(struct group *all, int nr, struct group g)
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

bool group_is_ksm(struct group *all, int nr, struct group g)
{
	long c = group_count(all, nr, g);

	return c >= 2 || (c == 1 && group_was_ksm(g));
}

static struct worker *scan_set[MAX_WORKERS + 1];

int with_sentinel(struct worker **ws, int n)
{
	int i;

	for (i = 0; i < n; i++)
		scan_set[i] = ws[i];
	if (g_sentinel)
		scan_set[n++] = g_sentinel;
	return n;
}

void model_expect(struct worker **ws, int n, struct ksm_expect *e)
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
void model_commit(struct worker **ws, int n)
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

void model_forget(void)
{
	model.nr_ksm = 0;
}

bool counters_match(struct worker **ws, int n)
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

int ref_by_group(const void *a, const void *b)
{
	const struct frame_ref *x = a, *y = b;
	int c = group_cmp(&x->g, &y->g);

	if (c)
		return c;
	return x->frame < y->frame ? -1 : x->frame > y->frame;
}

int ref_by_frame(const void *a, const void *b)
{
	const struct frame_ref *x = a, *y = b;

	if (x->frame != y->frame)
		return x->frame < y->frame ? -1 : 1;
	return group_cmp(&x->g, &y->g);
}

/* One frame per KSM group, one KSM group per frame. */
long check_frames(struct worker **ws, int n,
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
long check_layout(struct worker **ws, int n, bool quiet)
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

bool ksm_reset(void)
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

void show_counters(void)
{
	diag("full_scans %ld pages_shared %ld pages_sharing %ld",
	     knob_val("full_scans"), knob_val("pages_shared"),
	     knob_val("pages_sharing"));
	diag("pages_unshared %ld pages_volatile %ld ksm_zero_pages %ld",
	     knob_val("pages_unshared"), knob_val("pages_volatile"),
	     knob_exists("ksm_zero_pages") ? knob_val("ksm_zero_pages") : -1);
}

/* When set, replaces the model as the condition ksm_settle() waits for. */
bool (*g_settle_pred)(struct worker **ws, int n);

/*
 * Runs ksmd until the model holds after at least @min_scans full scans,
 * then for one more complete scan (to catch anything merged too much),
 * and stops it.  Fails when the test deadline comes first.
 */
bool ksm_settle(struct worker **ws, int n, int min_scans)
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
void check_worker_stats(struct worker **ws, int n, struct ksm_expect *e)
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
void check_general_profit(struct worker **ws, int n)
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
void check_state(struct worker **ws, int n)
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
void check_cow_probe(struct worker **ws, int n)
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

void verify_all(struct worker **ws, int n)
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

void set_keys(struct worker *w, long lo, long hi,
	      unsigned long long (*key)(int wi, long i), int wi)
{
	long i;

	for (i = lo; i < hi; i++)
		w->shm->key[i] = key(wi, i);
}

bool fill_range(struct worker *w, long lo, long hi)
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
struct worker *map_worker(long npages)
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

bool madvise_worker(struct worker *w, int advice)
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
bool start_sentinel(void)
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

unsigned long long layout_key(int w, long i)
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

bool start_layout_workers(struct worker **ws, int n)
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

void expect_write_err(const char *knob, const char *val, int err)
{
	char before[64], after[64], what[128];

	read_text(knob_path(knob), before, sizeof(before));
	snprintf(what, sizeof(what), "errno writing \"%s\" to %s", val, knob);
	expect_eq(what, knob_put(knob, val), err);
	read_text(knob_path(knob), after, sizeof(after));
	if (err && strcmp(before, after))
		fail("%s changed from %s to %s", knob, before, after);
}

/* Runs ksmd for @scans more full scans with the knobs as they are. */
bool run_scans(long scans)
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
