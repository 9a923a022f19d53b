/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for KSM scan pacing: smart scan's skip decisions and the
 * scan-time advisor's maths, with times passed in as arguments.
 *
 * Included at the end of mm/ksm_advisor.c.
 */
#ifndef _KSM_ADVISOR_KUNIT_H
#define _KSM_ADVISOR_KUNIT_H

#if IS_ENABLED(CONFIG_KSM_KUNIT_TEST)

#include <kunit/test.h>

#define KSM_TEST_AGE_MAX	(KSM_ITEM_AGE_MASK >> __ffs(KSM_ITEM_AGE_MASK))

/* An item that was looked at before, with this hash and age. */
static void ksm_test_aged_item(struct ksm_item *item, u32 hash,
			       unsigned int age)
{
	memset(item, 0, sizeof(*item));
	ksm_item_set_hash(item, hash);
	ksm_item_assign(item, KSM_ITEM_HASHED, true);
	ksm_item_set_field(item, KSM_ITEM_AGE_MASK, age);
}

static void ksm_test_smart_period(struct kunit *test)
{
	unsigned int age, prev = 1;

	KUNIT_EXPECT_EQ(test, ksm_smart_period(0), 1U);
	KUNIT_EXPECT_EQ(test, ksm_smart_period(KSM_SMART_YOUNG - 1), 1U);
	KUNIT_EXPECT_EQ(test, ksm_smart_period(KSM_SMART_YOUNG), 2U);
	KUNIT_EXPECT_EQ(test, ksm_smart_period(KSM_TEST_AGE_MAX),
			(unsigned int)KSM_SMART_MAX_PERIOD);
	KUNIT_EXPECT_EQ(test, ksm_smart_period(UINT_MAX),
			(unsigned int)KSM_SMART_MAX_PERIOD);
	/* Powers of two that never shrink with age: see ksm_smart_skip(). */
	for (age = 0; age <= KSM_TEST_AGE_MAX; age++) {
		unsigned int p = ksm_smart_period(age);

		KUNIT_EXPECT_TRUE(test, is_power_of_2(p));
		KUNIT_EXPECT_GE(test, p, prev);
		prev = p;
	}
}

/* A page that never merges: looked at less and less, then 1 in 8 rounds. */
static void ksm_test_smart_ageing(struct kunit *test)
{
	unsigned int looks = 0, last = 0, gap = 0, age;
	struct ksm_item item;
	u32 round;

	ksm_test_aged_item(&item, 0x9e3779b9, 0);
	for (round = 1000; round < 1200; round++) {
		age = ksm_item_field(&item, KSM_ITEM_AGE_MASK);
		if (ksm_smart_skip(&item, false, round)) {
			KUNIT_EXPECT_EQ(test,
					ksm_item_field(&item, KSM_ITEM_AGE_MASK),
					age);
			continue;
		}
		/* A look ages the item by one, up to the field's maximum. */
		KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_AGE_MASK),
				min(age + 1, KSM_TEST_AGE_MAX));
		if (looks)
			gap = round - last;
		last = round;
		looks++;
		if (looks <= KSM_SMART_YOUNG)
			KUNIT_EXPECT_EQ(test, round, 1000U + looks - 1);
	}
	/* Once old, exactly one look in every KSM_SMART_MAX_PERIOD rounds. */
	KUNIT_EXPECT_EQ(test, gap, (unsigned int)KSM_SMART_MAX_PERIOD);
	KUNIT_EXPECT_LT(test, looks, 200U / 4);
	KUNIT_EXPECT_GT(test, looks, 200U / KSM_SMART_MAX_PERIOD);
	/* The flags and the volatility gate's field are left alone. */
	KUNIT_EXPECT_TRUE(test, ksm_item_test(&item, KSM_ITEM_HASHED));
	KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_BREAKS_MASK), 0U);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&item), KSM_ITEM_IDLE);
}

/* KSM pages, merged, changed and new pages are looked at and start over. */
static void ksm_test_smart_never(struct kunit *test)
{
	struct ksm_item item;
	u32 round;

	for (round = 0; round < KSM_SMART_MAX_PERIOD; round++) {
		ksm_test_aged_item(&item, 1, KSM_TEST_AGE_MAX);
		KUNIT_EXPECT_FALSE(test, ksm_smart_skip(&item, true, round));
		KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_AGE_MASK),
				0U);

		ksm_test_aged_item(&item, 1, KSM_TEST_AGE_MAX);
		ksm_item_set_state(&item, KSM_ITEM_MERGED);
		KUNIT_EXPECT_FALSE(test, ksm_smart_skip(&item, false, round));
		KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_AGE_MASK),
				0U);

		ksm_test_aged_item(&item, 1, KSM_TEST_AGE_MAX);
		ksm_item_assign(&item, KSM_ITEM_VOLATILE, true);
		KUNIT_EXPECT_FALSE(test, ksm_smart_skip(&item, false, round));
		KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_AGE_MASK),
				0U);

		ksm_test_aged_item(&item, 1, KSM_TEST_AGE_MAX);
		ksm_item_assign(&item, KSM_ITEM_HASHED, false);
		KUNIT_EXPECT_FALSE(test, ksm_smart_skip(&item, false, round));
	}
	/* An old unstable item is skipped like an idle one. */
	ksm_test_aged_item(&item, 1, KSM_TEST_AGE_MAX);
	ksm_item_set_state(&item, KSM_ITEM_UNSTABLE);
	for (round = 0; round < KSM_SMART_MAX_PERIOD; round++)
		if (!ksm_smart_skip(&item, false, round))
			break;
	KUNIT_EXPECT_EQ(test, round, (u32)(KSM_SMART_MAX_PERIOD - 1));
}

/*
 * Two pages with the same content and any ages: whenever the older one is
 * looked at, so is the younger one, so they meet in the unstable index.
 * Pages with other hashes are spread over the rounds.
 */
static void ksm_test_smart_meet(struct kunit *test)
{
	unsigned int per_round[KSM_SMART_MAX_PERIOD] = {};
	unsigned int a_age, b_age, i;
	struct ksm_item a, b;
	bool a_looks, b_looks;
	u32 round;

	for (a_age = 0; a_age <= KSM_TEST_AGE_MAX; a_age++) {
		for (b_age = a_age; b_age <= KSM_TEST_AGE_MAX; b_age++) {
			for (round = 0; round < 2 * KSM_SMART_MAX_PERIOD;
			     round++) {
				ksm_test_aged_item(&a, 0xabcdef, a_age);
				ksm_test_aged_item(&b, 0xabcdef, b_age);
				a_looks = !ksm_smart_skip(&a, false, round);
				b_looks = !ksm_smart_skip(&b, false, round);
				if (b_looks)
					KUNIT_EXPECT_TRUE(test, a_looks);
			}
		}
	}
	for (i = 0; i < 64 * KSM_SMART_MAX_PERIOD; i++) {
		ksm_test_aged_item(&a, i * 0x9e3779b9, KSM_TEST_AGE_MAX);
		for (round = 0; round < KSM_SMART_MAX_PERIOD; round++)
			if (!ksm_smart_skip(&a, false, round))
				per_round[round]++;
	}
	for (round = 0; round < KSM_SMART_MAX_PERIOD; round++)
		KUNIT_EXPECT_EQ(test, per_round[round], 64U);
}

static const struct ksm_advisor_limits ksm_test_lim = {
	.target_secs = 200, .max_cpu = 70, .min_pages = 500,
	.max_pages = 30000,
};

static void ksm_test_advisor_cpu(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_percent(0, 0), 0U);
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_percent(0, 5), 0U);
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_percent(1000, 250), 25U);
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_percent(1000, 999), 99U);
	/* CPU time beyond the wall time (clock granularity) is 100%. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_percent(1000, 5000), 100U);
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_percent(U64_MAX, U64_MAX / 2),
			49U);
}

static void ksm_test_advisor_model(struct kunit *test)
{
	u64 s = NSEC_PER_SEC;

	/* 300 s with 20 s of CPU: 280 s idle must fit into 200 - 20 s. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 1000,
						300 * s, 20 * s),
			1000UL * 280 / 180);
	/* On target: no change. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 1000,
						200 * s, 20 * s), 1000UL);
	/* 150 s: batches may be smaller, 130 s idle into 180 s. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 1000,
						150 * s, 20 * s),
			1000UL * 130 / 180);
	/* The same CPU share at a larger scale gives the same ratio. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 10000,
						300 * s, 20 * s),
			10000UL * 280 / 180);
}

static void ksm_test_advisor_steps(struct kunit *test)
{
	u64 s = NSEC_PER_SEC;

	/* Far too slow: at most twice as many pages per batch. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 1000,
						10000 * s, s), 2000UL);
	/* Far too fast: at most half as many, ... */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 4000, s, 0),
			2000UL);
	/* ... and never fewer than advisor_min_pages_to_scan. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 600, s, 0),
			500UL);
	/* Never more than advisor_max_pages_to_scan. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 20000,
						10000 * s, s), 30000UL);
	/* No time at all (a coarse clock): shrink, no division by zero. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 4000, 0, 0),
			2000UL);
	/* All CPU and no idle time: batch size does not matter, shrink. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&ksm_test_lim, 4000,
						10 * s, 10 * s), 2000UL);
}

static void ksm_test_advisor_cpu_cap(struct kunit *test)
{
	struct ksm_advisor_limits lim = ksm_test_lim;
	u64 s = NSEC_PER_SEC;
	u64 aim;

	/*
	 * 100 s with 60 s of CPU, target 50 s: the target cannot be met.
	 * At 70% CPU the round must last 60 / 0.7 s; 40 s idle go into
	 * the 25.7 s left beside the CPU time.
	 */
	lim.target_secs = 50;
	aim = div64_u64(60 * s * 100, 70);
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, 100 * s, 60 * s),
			(unsigned long)div64_u64(1000 * 40 * s, aim - 60 * s));
	/* With the whole CPU allowed, go as fast as one step allows. */
	lim.max_cpu = 100;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, 100 * s, 60 * s),
			2000UL);
	/* 0% allowed: as slow as one step and the minimum allow. */
	lim.max_cpu = 0;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, 100 * s, 60 * s),
			500UL);
	/* A cap that the target already keeps does not matter. */
	lim = ksm_test_lim;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, 300 * s, 20 * s),
			1000UL * 280 / 180);
}

static void ksm_test_advisor_bounds(struct kunit *test)
{
	static const u64 ns[] = { 0, 1, U64_MAX / 100 + 1, U64_MAX / 2,
				  U64_MAX - 1, U64_MAX };
	struct ksm_advisor_limits lim = ksm_test_lim;
	unsigned long next;
	unsigned int i, j;

	/* max_pages wins when the limits cross. */
	lim.min_pages = 5000;
	lim.max_pages = 3000;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, 1, 0), 3000UL);
	/* Never 0, which would stop ksmd and the advisor with it. */
	lim.min_pages = 0;
	lim.max_pages = 0;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, 1, 0), 1UL);
	lim.max_pages = ULONG_MAX;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1, 1, 0), 1UL);
	/* Huge inputs neither overflow nor leave pages_to_scan's range. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, UINT_MAX, U64_MAX, 0),
			(unsigned long)UINT_MAX);
	for (i = 0; i < ARRAY_SIZE(ns); i++) {
		for (j = 0; j < ARRAY_SIZE(ns); j++) {
			next = ksm_advisor_batch(&lim, UINT_MAX, ns[i], ns[j]);
			KUNIT_EXPECT_GE(test, next, 1UL);
			KUNIT_EXPECT_LE(test, next, (unsigned long)UINT_MAX);
			next = ksm_advisor_batch(&ksm_test_lim, 1, ns[i], ns[j]);
			KUNIT_EXPECT_EQ(test, next, 500UL);
		}
	}
	lim.target_secs = ULONG_MAX;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, U64_MAX / 2, 0),
			500UL);
	lim.target_secs = 1;
	lim.max_cpu = UINT_MAX;
	KUNIT_EXPECT_EQ(test, ksm_advisor_batch(&lim, 1000, U64_MAX, U64_MAX),
			500UL);
}

/* Switching the advisor sets pages_to_scan as 6.8 did. */
static void ksm_test_advisor_mode(struct kunit *test)
{
	struct ksm_tunables saved;

	mutex_lock(&ksm_lock);
	saved = ksm_tun;
	WRITE_ONCE(ksm_tun.advisor_min_pages, 1234);
	ksm_advisor_set_mode(KSM_ADVISOR_SCAN_TIME);
	KUNIT_EXPECT_EQ(test, ksm_tun.pages_to_scan, 1234UL);
	KUNIT_EXPECT_FALSE(test, ksm_advisor_round.timed);
	ksm_advisor_round_start(current);
	KUNIT_EXPECT_TRUE(test, ksm_advisor_round.timed);
	ksm_advisor_set_mode(KSM_ADVISOR_NONE);
	KUNIT_EXPECT_EQ(test, ksm_tun.pages_to_scan,
			(unsigned long)KSM_DEFAULT_PAGES_TO_SCAN);
	KUNIT_EXPECT_FALSE(test, ksm_advisor_round.timed);
	/* Without the advisor, a round end leaves pages_to_scan alone. */
	ksm_advisor_round_start(current);
	WRITE_ONCE(ksm_tun.pages_to_scan, 77);
	ksm_advisor_round_end(current);
	KUNIT_EXPECT_EQ(test, ksm_tun.pages_to_scan, 77UL);
	ksm_tun = saved;
	ksm_advisor_restart();
	mutex_unlock(&ksm_lock);
}

static struct kunit_case ksm_advisor_test_cases[] = {
	KUNIT_CASE(ksm_test_smart_period),
	KUNIT_CASE(ksm_test_smart_ageing),
	KUNIT_CASE(ksm_test_smart_never),
	KUNIT_CASE(ksm_test_smart_meet),
	KUNIT_CASE(ksm_test_advisor_cpu),
	KUNIT_CASE(ksm_test_advisor_model),
	KUNIT_CASE(ksm_test_advisor_steps),
	KUNIT_CASE(ksm_test_advisor_cpu_cap),
	KUNIT_CASE(ksm_test_advisor_bounds),
	KUNIT_CASE(ksm_test_advisor_mode),
	{},
};

static struct kunit_suite ksm_advisor_test_suite = {
	.name = "ksm_pacing",
	.test_cases = ksm_advisor_test_cases,
};

kunit_test_suite(ksm_advisor_test_suite);

#endif /* IS_ENABLED(CONFIG_KSM_KUNIT_TEST) */
#endif /* _KSM_ADVISOR_KUNIT_H */
