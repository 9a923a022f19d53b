// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM scan pacing: how often ksmd looks at a page, and how fast it goes.
 *
 * Smart scan: a page that went through several looks without merging is
 * probably unique, and each further look costs a hash and two index
 * lookups for nothing. Its item ages by one at every look, and the older
 * it is, the fewer rounds it is due in: one in ksm_smart_period(age).
 * Which rounds is decided by the round number plus the page's sample hash,
 * so that the looks at old pages spread evenly over the rounds, and pages
 * with the same content are due in the same rounds (the periods are
 * nested powers of two). ksm_scan.c looks at a page that is not due anyway
 * when an index holds its last hash, and keeps a skipped page findable in
 * the unstable index, so that a new twin merges at once. A page that
 * changed, merged or is a KSM page starts over at age 0.
 *
 * The scan-time advisor sets pages_to_scan at the end of every round, so
 * that a round takes advisor_target_scan_time seconds without ksmd using
 * more than advisor_max_cpu percent of a CPU. See ksm_advisor_batch().
 */

#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/sched/cputime.h>
#include <trace/events/ksm.h>

#include "ksm_internal.h"

/* Looks at a page before smart scan starts to leave rounds out. */
#define KSM_SMART_YOUNG		3
/* Longest period, in rounds, between two looks at a page. */
#define KSM_SMART_MAX_PERIOD	8
/* Most the advisor changes pages_to_scan by in one round: this factor. */
#define KSM_ADVISOR_MAX_STEP	2

static_assert(!(KSM_SMART_MAX_PERIOD & (KSM_SMART_MAX_PERIOD - 1)));
static_assert(KSM_SMART_YOUNG + 2 * ilog2(KSM_SMART_MAX_PERIOD) <=
	      (KSM_ITEM_AGE_MASK >> __builtin_ctzl(KSM_ITEM_AGE_MASK)));

/**
 * struct ksm_advisor_round - the round the advisor is timing
 * @timed: @start_ns and @start_cpu_ns were taken when the round started,
 *	with the advisor on, and nothing has stopped ksmd since.
 * @start_ns: monotonic time at the start of the round.
 * @start_cpu_ns: ksmd's CPU time at the start of the round.
 *
 * Under ksm_lock, which ksmd holds at the start and the end of a round
 * and sysfs writers hold while they change a knob.
 */
struct ksm_advisor_round {
	bool timed;
	u64 start_ns;
	u64 start_cpu_ns;
};

static struct ksm_advisor_round ksm_advisor_round;

/**
 * ksm_smart_period - how often smart scan looks at a page of some age
 * @age: looks at the page since it last changed or merged.
 *
 * Return: the page is looked at in one round of this many, a power of two.
 */
unsigned int ksm_smart_period(unsigned int age)
{
	unsigned int order;

	if (age < KSM_SMART_YOUNG)
		return 1;
	/* Two looks at each period before it doubles. */
	order = (age - KSM_SMART_YOUNG) / 2 + 1;
	return 1U << min_t(unsigned int, order, ilog2(KSM_SMART_MAX_PERIOD));
}

/**
 * ksm_smart_skip - should this round leave out its look at a page?
 * @item: the page's item; its age is updated.
 * @ksm_page: the page is a KSM page.
 * @round: the current scan round.
 *
 * KSM pages, merged items, pages that changed at the previous look and
 * pages never looked at are never left out, and their age starts over.
 * ksm_lock is held.
 *
 * Return: true if the page should not be looked at in this round.
 */
bool ksm_smart_skip(struct ksm_item *item, bool ksm_page, u32 round)
{
	unsigned int age = ksm_item_field(item, KSM_ITEM_AGE_MASK);

	if (ksm_page || ksm_item_state(item) == KSM_ITEM_MERGED ||
	    ksm_item_test(item, KSM_ITEM_VOLATILE) ||
	    !ksm_item_test(item, KSM_ITEM_HASHED)) {
		ksm_item_set_field(item, KSM_ITEM_AGE_MASK, 0);
		return false;
	}
	if ((round + ksm_item_hash(item)) & (ksm_smart_period(age) - 1))
		return true;
	ksm_item_set_field(item, KSM_ITEM_AGE_MASK, age + 1);
	return false;
}

/*
 * @a * @b / @c, for a result known to be small, without overflowing 64
 * bits: the larger factor and @c lose low bits until the product fits.
 * Not mul_u64_u64_div_u64(): the x86 version of 6.12 lets the compiler
 * put @c in the register that holds @a and that the multiplication
 * overwrites, when it can tell that the two are equal (a KUnit case here
 * got 1 instead of 100 from it).
 */
static u64 ksm_advisor_scale(u64 a, u64 b, u64 c)
{
	while (a && b && a > U64_MAX / b) {
		if (a > b)
			a >>= 1;
		else
			b >>= 1;
		c >>= 1;
	}
	return c ? div64_u64(a * b, c) : U64_MAX;
}

/**
 * ksm_advisor_cpu_percent - ksmd's CPU share of a round
 * @wall_ns: duration of the round.
 * @cpu_ns: ksmd's CPU time in it.
 *
 * Return: @cpu_ns in percent of @wall_ns, at most 100.
 */
unsigned int ksm_advisor_cpu_percent(u64 wall_ns, u64 cpu_ns)
{
	if (!wall_ns)
		return 0;
	return ksm_advisor_scale(min(cpu_ns, wall_ns), 100, wall_ns);
}

/*
 * The round duration to aim at: the target, or longer if ksmd's CPU time
 * would be more than max_cpu percent of the target. U64_MAX for "as long
 * as it takes".
 */
static u64 ksm_advisor_aim_ns(const struct ksm_advisor_limits *lim, u64 cpu_ns)
{
	u64 target_ns = U64_MAX, cap_ns = U64_MAX;

	if (lim->target_secs <= U64_MAX / NSEC_PER_SEC)
		target_ns = (u64)lim->target_secs * NSEC_PER_SEC;
	if (lim->max_cpu)
		cap_ns = ksm_advisor_scale(cpu_ns, 100, lim->max_cpu);
	return max(target_ns, cap_ns);
}

/**
 * ksm_advisor_batch - pages_to_scan for the next round
 * @lim: the advisor_* knobs.
 * @batch: pages_to_scan during the round that ended.
 * @wall_ns: duration of that round.
 * @cpu_ns: ksmd's CPU time in it.
 *
 * The model: a round is ksmd's CPU time, which the same pages cost
 * whatever the batch size, plus the idle time between batches (the sleeps,
 * and waits for the CPU and for locks), which scales with the number of
 * batches, that is with 1 / @batch. The next batch size is the one that
 * makes the idle time fit into the aimed duration minus the CPU time:
 *
 *	next = batch * idle / (aim - cpu)
 *
 * where aim is the target duration, or longer if the CPU time would then
 * exceed max_cpu percent of it. To ride over noise in the measurements,
 * one round changes the batch size by a factor of %KSM_ADVISOR_MAX_STEP at
 * most. The result lies within [min_pages, max_pages] (max_pages wins if
 * they cross), is at least 1, so that ksmd never stalls, and fits the
 * range of pages_to_scan.
 *
 * Return: the new pages_to_scan.
 */
unsigned long ksm_advisor_batch(const struct ksm_advisor_limits *lim,
				unsigned long batch, u64 wall_ns, u64 cpu_ns)
{
	u64 idle_ns, aim_ns, spare_ns, next;

	cpu_ns = min(cpu_ns, wall_ns);
	idle_ns = wall_ns - cpu_ns;
	aim_ns = ksm_advisor_aim_ns(lim, cpu_ns);
	spare_ns = aim_ns > cpu_ns ? aim_ns - cpu_ns : 0;
	/* Compare first: the quotient must fit in 64 bits. */
	if (!idle_ns)
		next = 0;
	else if (idle_ns / KSM_ADVISOR_MAX_STEP >= spare_ns)
		next = (u64)batch * KSM_ADVISOR_MAX_STEP;
	else
		next = ksm_advisor_scale(batch, idle_ns, spare_ns);
	next = max_t(u64, next, batch / KSM_ADVISOR_MAX_STEP);
	next = max_t(u64, next, lim->min_pages);
	next = min_t(u64, next, lim->max_pages);
	return clamp_t(u64, next, 1, UINT_MAX);
}

/**
 * ksm_advisor_restart - stop timing the current round
 *
 * For when ksmd stops or the advisor changes: the round would not tell
 * what pages_to_scan costs. The advisor starts again with the next round.
 */
void ksm_advisor_restart(void)
{
	lockdep_assert_held(&ksm_lock);
	ksm_advisor_round.timed = false;
}

/**
 * ksm_advisor_round_start - a scan round starts
 * @ksmd: the ksmd thread, whose CPU time is measured.
 */
void ksm_advisor_round_start(struct task_struct *ksmd)
{
	lockdep_assert_held(&ksm_lock);
	ksm_advisor_round.timed = READ_ONCE(ksm_tun.advisor_mode) ==
				  KSM_ADVISOR_SCAN_TIME;
	if (!ksm_advisor_round.timed)
		return;
	ksm_advisor_round.start_ns = ktime_get_ns();
	ksm_advisor_round.start_cpu_ns = task_sched_runtime(ksmd);
}

/**
 * ksm_advisor_round_end - a scan round ended: size the next one
 * @ksmd: the ksmd thread.
 *
 * With the scan-time advisor on and the round timed from its start, sets
 * pages_to_scan from what the round cost, and emits ksm_advisor.
 */
void ksm_advisor_round_end(struct task_struct *ksmd)
{
	struct ksm_advisor_limits lim = {
		.target_secs = READ_ONCE(ksm_tun.advisor_target_secs),
		.max_cpu = READ_ONCE(ksm_tun.advisor_max_cpu),
		.min_pages = READ_ONCE(ksm_tun.advisor_min_pages),
		.max_pages = READ_ONCE(ksm_tun.advisor_max_pages),
	};
	u64 wall_ns, cpu_ns;
	unsigned long batch;

	lockdep_assert_held(&ksm_lock);
	if (!ksm_advisor_round.timed ||
	    READ_ONCE(ksm_tun.advisor_mode) != KSM_ADVISOR_SCAN_TIME)
		return;
	ksm_advisor_round.timed = false;
	wall_ns = ktime_get_ns() - ksm_advisor_round.start_ns;
	cpu_ns = task_sched_runtime(ksmd) - ksm_advisor_round.start_cpu_ns;
	batch = ksm_advisor_batch(&lim, READ_ONCE(ksm_tun.pages_to_scan),
				  wall_ns, cpu_ns);
	WRITE_ONCE(ksm_tun.pages_to_scan, batch);
	trace_ksm_advisor(div_u64(wall_ns, NSEC_PER_SEC), batch,
			  ksm_advisor_cpu_percent(wall_ns, cpu_ns));
}

/**
 * ksm_advisor_set_mode - switch the advisor on or off
 * @mode: an &enum ksm_advisor_mode other than the current one.
 *
 * pages_to_scan starts over: at advisor_min_pages_to_scan for the
 * scan-time advisor, at its boot default without an advisor.
 */
void ksm_advisor_set_mode(unsigned long mode)
{
	unsigned long batch = KSM_DEFAULT_PAGES_TO_SCAN;

	lockdep_assert_held(&ksm_lock);
	if (mode == KSM_ADVISOR_SCAN_TIME)
		batch = clamp_t(unsigned long,
				READ_ONCE(ksm_tun.advisor_min_pages), 1,
				UINT_MAX);
	WRITE_ONCE(ksm_tun.advisor_mode, mode);
	WRITE_ONCE(ksm_tun.pages_to_scan, batch);
	ksm_advisor_restart();
}

#include "tests/ksm-advisor-kunit.h"
