// SPDX-License-Identifier: GPL-2.0
/*
 * The model of what must be merged, built from the seeds
 * and the pages' frames, the wait for ksmd to settle, and the swap
 * helpers of the selftests of KSM against the rest of mm (ksm_mm_util.h).
 */
#include "ksm_mm_util.h"

/* ---------------------------------------------------------------- model */

struct mpage g_mp[MAX_SLOTS * MAX_PAGES];
int g_nmp;
unsigned long long g_pm[MAX_SLOTS][MAX_PAGES];

unsigned long long page_pfn(int k, long i)
{
	if (slot_pagemap(g_slot[k].shm, g_pm[k]) || !(g_pm[k][i] & PM_PRESENT))
		return 0;
	return g_pm[k][i] & PM_PFN_MASK;
}

struct model_opts g_opt;

int mp_by_content(const void *a, const void *b)
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

int mp_by_pfn(const void *a, const void *b)
{
	const struct mpage *x = a, *y = b;

	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return mp_by_content(a, b);
}

bool mp_lone(const struct mpage *m)
{
	return g_slot[m->slot].shm->flags[m->idx] & PF_LONE;
}

/* Nodes of the pages of slot @k (-1 where move_pages() says none). */
int slot_nodes(int k, int *node)
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
bool model_collect(struct expect *e)
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
void model_by_content(struct expect *e)
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
bool model_by_frame(struct expect *e)
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

bool model_build(struct expect *e, bool *merged)
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

bool read_got(struct got *g)
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
bool counters_match(const struct expect *e, const struct got *g, bool say)
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

bool ksmd_go(void)
{
	return ksm_set("pages_to_scan", SCAN_PAGES) && ksm_set("sleep_millisecs", 0) &&
	       ksm_set("run", 1);
}

/*
 * For a frame mapped more often than the model says: every process that
 * maps it, where, and in which mapping (every VMA of every process up to
 * 1 GiB is read through /proc/PID/pagemap), and the model's own pages.
 */
static void diag_frame_mappers(unsigned long long pfn, int a, int b)
{
	unsigned long long ent, start, end, addr;
	char path[64], line[512], comm[64], stat[512], who[96], state;
	int j, fd, pid, ppid, pgrp;
	struct dirent *d;
	DIR *dir;
	FILE *maps;

	for (j = a; j < b; j++)
		diag("  model: worker %d page %d (pid %d)", g_mp[j].slot, g_mp[j].idx,
		     g_slot[g_mp[j].slot].shm->pid);
	dir = opendir("/proc");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		pid = atoi(d->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if (read_text(path, comm, sizeof(comm)) <= 0)
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		/* which worker slot it is, or its parent, group and state */
		snprintf(who, sizeof(who), ", no worker");
		for (j = 0; j < g_nr_slots; j++)
			if (slot_live(j) && g_slot[j].shm->pid == pid)
				snprintf(who, sizeof(who), ", worker %d%s", j,
					 g_slot[j].in_model ? "" : " not in the model");
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_text(path, stat, sizeof(stat)) > 0 && strrchr(stat, ')') &&
		    sscanf(strrchr(stat, ')') + 2, "%c %d %d", &state, &ppid, &pgrp) == 3)
			snprintf(who + strlen(who), sizeof(who) - strlen(who),
				 ", state %c ppid %d pgrp %d", state, ppid, pgrp);
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		maps = fopen(path, "r");
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
		fd = open(path, O_RDONLY);
		while (maps && fd >= 0 && fgets(line, sizeof(line), maps)) {
			if (sscanf(line, "%llx-%llx", &start, &end) != 2 ||
			    end - start > (1ULL << 30))
				continue;
			for (addr = start; addr < end; addr += page_size) {
				if (pread(fd, &ent, sizeof(ent),
					  addr / page_size * sizeof(ent)) != sizeof(ent))
					break;
				if (!(ent & PM_PRESENT) || (ent & PM_PFN_MASK) != pfn)
					continue;
				diag("  mapped by pid %d (%s%s) at %#llx in %.*s", pid,
				     comm, who, addr, (int)strcspn(line, "\n"), line);
			}
		}
		if (fd >= 0)
			close(fd);
		if (maps)
			fclose(maps);
	}
	closedir(dir);
}

/*
 * After a settle that failed: the frames of the model's pages that are KSM
 * pages mapped more often than the model's pages of their content, or at
 * all where the content has one page here, with every mapper (bit 21 of
 * /proc/kpageflags is KPF_KSM).
 */
static void diag_extra_mappings(void)
{
	int a, b, j, shown = 0;
	long cnt;

	qsort(g_mp, g_nmp, sizeof(g_mp[0]), mp_by_content);
	for (a = 0; a < g_nmp && shown < 5; a = b) {
		for (b = a + 1; b < g_nmp && g_mp[b].seed == g_mp[a].seed &&
		     g_mp[b].node == g_mp[a].node; b++)
			;
		for (j = a; j < b && shown < 5; j++) {
			if (!(pfn_flags(g_mp[j].pfn) & (1ULL << 21)))
				continue;
			cnt = pfn_count(g_mp[j].pfn);
			/* A content of one page here has no twin to share with. */
			if (cnt <= b - a && b - a > 1)
				continue;
			diag("content %#llx: KSM frame %#llx mapped %ld times, by %d pages here",
			     g_mp[j].seed, g_mp[j].pfn, cnt, b - a);
			diag_frame_mappers(g_mp[j].pfn, a, b);
			shown++;
			break;
		}
	}
}

/* Frames of the settled state: one per content, mapped once per page. */
void check_frames(void)
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
		if (!g_opt.loose_frames && !g_opt.relaxed && cnt != b - a && bad++ < 5) {
			fail("content %#llx: frame %#llx mapped %ld times, by %d pages here",
			     g_mp[a].seed, g_mp[a].pfn, cnt, b - a);
			diag_frame_mappers(g_mp[a].pfn, a, b);
		}
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
void check_self_stats(const struct got *g)
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
void show_ksm_state(void)
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
bool settle(const char *what)
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
		diag_extra_mappings();
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
bool ksm_reset(void)
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
bool ksm_unmerge_all(void)
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

/* ---------------------------------------------------------------- swap */

bool have_swap(void)
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

int swapped_cmp(const void *a, const void *b)
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
long check_swap_entries(long *slots, long *per)
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
bool cg_reclaim(void)
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
long ksm_swapped(int k)
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
bool swap_out_all(int nw, const char *what, struct vmev *before)
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
bool pageout_all(int k, long lo, long hi, const char *what)
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
bool lone_pageout(int nw, long lo, long hi)
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

long corrupted_kb(void)
{
	return read_key("/proc/meminfo", "HardwareCorrupted");
}
