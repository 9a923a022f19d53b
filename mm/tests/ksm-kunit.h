/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for KSM: the parts that need no page tables.
 *
 * Included at the end of mm/ksm_index.c, so the tests reach its static
 * helpers. They take ksm_lock like ksmd does, so ksmd waits meanwhile.
 */
#ifndef _KSM_KUNIT_H
#define _KSM_KUNIT_H

#if IS_ENABLED(CONFIG_KSM_KUNIT_TEST)

#include <kunit/test.h>

static void ksm_test_item_bits(struct kunit *test)
{
	struct ksm_item item = {};

	KUNIT_EXPECT_LE(test, sizeof(struct ksm_item), 32);
	ksm_item_set_nr(&item, 0x7ffffffffULL);
	ksm_item_set_state(&item, KSM_ITEM_UNSTABLE);
	ksm_item_assign(&item, KSM_ITEM_VOLATILE, true);
	KUNIT_EXPECT_EQ(test, ksm_item_nr(&item), 0x7ffffffffUL);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&item), KSM_ITEM_UNSTABLE);
	KUNIT_EXPECT_TRUE(test, ksm_item_test(&item, KSM_ITEM_VOLATILE));
	KUNIT_EXPECT_FALSE(test, ksm_item_test(&item, KSM_ITEM_HASHED));

	ksm_item_set_nr(&item, 42);
	ksm_item_set_state(&item, KSM_ITEM_MERGED);
	ksm_item_assign(&item, KSM_ITEM_VOLATILE, false);
	KUNIT_EXPECT_EQ(test, ksm_item_nr(&item), 42UL);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&item), KSM_ITEM_MERGED);
	KUNIT_EXPECT_FALSE(test, ksm_item_test(&item, KSM_ITEM_VOLATILE));

	/* Multi-bit fields saturate and leave their neighbours alone. */
	ksm_item_set_field(&item, KSM_ITEM_AGE_MASK, 3);
	ksm_item_set_field(&item, KSM_ITEM_BREAKS_MASK, 1000);
	KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_AGE_MASK), 3U);
	KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_BREAKS_MASK),
			(unsigned int)(KSM_ITEM_BREAKS_MASK >>
				       __ffs(KSM_ITEM_BREAKS_MASK)));
	KUNIT_EXPECT_EQ(test, ksm_item_nr(&item), 42UL);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&item), KSM_ITEM_MERGED);
	ksm_item_set_field(&item, KSM_ITEM_AGE_MASK, 0);
	KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_AGE_MASK), 0U);
	KUNIT_EXPECT_NE(test, ksm_item_field(&item, KSM_ITEM_BREAKS_MASK), 0U);
}

static void ksm_test_knob_parse(struct kunit *test)
{
	const struct ksm_knob_range run = { .max = 2 };
	const struct ksm_knob_range sharing = {
		.min = 2, .max = INT_MAX, .type_max = INT_MAX,
	};
	const struct ksm_knob_range flag = { .max = 1, .boolean = true };
	static const char * const words[] = { "none", "scan-time", NULL };
	const struct ksm_knob_range word = { .names = words };
	const struct ksm_knob_range secs = { .min = 1, .max = ULONG_MAX };
	unsigned long v = 7;

	KUNIT_EXPECT_EQ(test, ksm_knob_parse("1\n", &run, &v), 0);
	KUNIT_EXPECT_EQ(test, v, 1UL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("2", &run, &v), 0);
	KUNIT_EXPECT_EQ(test, v, 2UL);
	/* Rejected writes leave the value alone. */
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("3", &run, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("abc", &run, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("-1", &run, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("", &run, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("1x", &run, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("99999999999999999999999", &run,
					     &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("y", &run, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, v, 2UL);

	/* Knobs of an int type report overflows as the 6.12 ones did. */
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("1", &sharing, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("99999999999", &sharing, &v),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("99999999999999999999999",
					     &sharing, &v), -ERANGE);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("256", &sharing, &v), 0);
	KUNIT_EXPECT_EQ(test, v, 256UL);

	/* Boolean knobs take kstrtobool() words. */
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("y", &flag, &v), 0);
	KUNIT_EXPECT_EQ(test, v, 1UL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("off", &flag, &v), 0);
	KUNIT_EXPECT_EQ(test, v, 0UL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("2", &flag, &v), -EINVAL);

	/* Word knobs take their words only, with or without a newline. */
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("scan-time\n", &word, &v), 0);
	KUNIT_EXPECT_EQ(test, v, 1UL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("none", &word, &v), 0);
	KUNIT_EXPECT_EQ(test, v, 0UL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("1", &word, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("scan", &word, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("[none]", &word, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("", &word, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, v, 0UL);

	/* The whole unsigned long range, 0 excluded. */
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("0", &secs, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("18446744073709551615", &secs,
					     &v), 0);
	KUNIT_EXPECT_EQ(test, v, ULONG_MAX);
	KUNIT_EXPECT_EQ(test, ksm_knob_parse("18446744073709551616", &secs,
					     &v), -EINVAL);
}

static void ksm_test_profit(struct kunit *test)
{
	long item = sizeof(struct ksm_item);

	KUNIT_EXPECT_EQ(test, ksm_general_profit(0, 0, 0), 0L);
	KUNIT_EXPECT_EQ(test, ksm_general_profit(9, 0, 10),
			9 * (long)PAGE_SIZE - 10 * item);
	KUNIT_EXPECT_EQ(test, ksm_general_profit(0, 512, 0),
			512L * (long)PAGE_SIZE);
	/* Tracking without sharing costs memory. */
	KUNIT_EXPECT_EQ(test, ksm_general_profit(0, 0, 100), -100 * item);
}

static void ksm_test_unstable_round(struct kunit *test)
{
	struct ksm_index_key key = { .hash = 0x1234, .domain = 0 };
	struct ksm_item a = {}, b = {};
	unsigned long unshared;
	unsigned int bucket;

	mutex_lock(&ksm_lock);
	unshared = ksm_stats.pages_unshared;
	bucket = ksm_index_bucket(key.hash);
	ksm_index_unstable_insert(&a, key);
	ksm_index_unstable_insert(&b, key);
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_table[bucket], &b);
	KUNIT_EXPECT_PTR_EQ(test, b.chain_next, &a);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_unshared, unshared + 2);
	KUNIT_EXPECT_EQ(test, a.round, ksm_index_round());
	KUNIT_EXPECT_TRUE(test, ksm_index_hash_known(key.hash));
	KUNIT_EXPECT_FALSE(test, ksm_index_hash_known(key.hash + 1));

	/* Erasing the tail keeps the head. */
	ksm_index_unstable_erase(&a);
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_table[bucket], &b);
	KUNIT_EXPECT_PTR_EQ(test, b.chain_next, NULL);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&a), KSM_ITEM_IDLE);

	/* A new round empties the index; old links are never followed. */
	ksm_index_new_round();
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_table[bucket], NULL);
	KUNIT_EXPECT_FALSE(test, ksm_index_hash_known(key.hash));
	KUNIT_EXPECT_NE(test, b.round, ksm_index_round());
	b.chain_next = (struct ksm_item *)0x10;
	ksm_index_unstable_erase(&b);
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_table[bucket], NULL);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_unshared, unshared);
	mutex_unlock(&ksm_lock);
}

/* A KSM-looking folio filled with @fill, owned by a fresh node. */
static struct ksm_stable_node *ksm_test_node(struct kunit *test, int fill,
					     struct folio **folio)
{
	struct ksm_stable_node *node;

	*folio = folio_alloc(GFP_KERNEL, 0);
	KUNIT_ASSERT_NOT_NULL(test, *folio);
	memset(folio_address(*folio), fill, PAGE_SIZE);
	node = ksm_node_alloc();
	KUNIT_ASSERT_NOT_NULL(test, node);
	node->kpfn = folio_pfn(*folio);
	node->hash = ksm_index_page_hash(folio_page(*folio, 0));
	(*folio)->mapping = ksm_node_mapping(node);
	return node;
}

static void ksm_test_node_put(struct ksm_stable_node *node,
			      struct folio *folio)
{
	ksm_index_stable_erase(node);
	folio->mapping = NULL;
	ksm_node_free(node);
	folio_put(folio);
}

static void ksm_test_stable_find(struct kunit *test)
{
	struct ksm_stable_node *node, *found;
	struct folio *kfolio, *other, *got;
	struct ksm_index_key key;

	mutex_lock(&ksm_lock);
	node = ksm_test_node(test, 0x5a, &kfolio);
	ksm_index_stable_insert(node, kfolio);
	KUNIT_EXPECT_TRUE(test, node->indexed);
	KUNIT_EXPECT_PTR_EQ(test, folio_ksm_node(kfolio), node);

	other = folio_alloc(GFP_KERNEL, 0);
	KUNIT_ASSERT_NOT_NULL(test, other);
	memset(folio_address(other), 0x5a, PAGE_SIZE);
	key.hash = ksm_index_page_hash(folio_page(other, 0));
	key.domain = 0;
	KUNIT_EXPECT_EQ(test, key.hash, node->hash);
	found = ksm_index_stable_find(key, folio_page(other, 0), &got);
	KUNIT_EXPECT_PTR_EQ(test, found, node);
	KUNIT_EXPECT_PTR_EQ(test, got, kfolio);
	if (got)
		folio_put(got);

	/* Same sample, different contents: the full compare says no. */
	/* Word 1 is not part of the sample. */
	((char *)folio_address(other))[9] = 1;
	KUNIT_EXPECT_EQ(test, ksm_index_page_hash(folio_page(other, 0)),
			key.hash);
	found = ksm_index_stable_find(key, folio_page(other, 0), &got);
	KUNIT_EXPECT_PTR_EQ(test, found, NULL);

	/* A node whose folio went away is stale and leaves the index. */
	kfolio->mapping = NULL;
	memset(folio_address(other), 0x5a, PAGE_SIZE);
	found = ksm_index_stable_find(key, folio_page(other, 0), &got);
	KUNIT_EXPECT_PTR_EQ(test, found, NULL);
	folio_put(other);
	folio_put(kfolio);
	mutex_unlock(&ksm_lock);
}

static void ksm_test_chain(struct kunit *test)
{
	struct ksm_stable_node *a, *b, *found;
	struct ksm_item ia = {}, ib = {};
	struct folio *fa, *fb, *got;
	unsigned long chains, dups, max;
	struct ksm_index_key key;

	mutex_lock(&ksm_lock);
	max = ksm_tun.max_page_sharing;
	chains = ksm_stats.chains;
	dups = ksm_stats.dups;
	WRITE_ONCE(ksm_tun.max_page_sharing, 1);
	a = ksm_test_node(test, 0x33, &fa);
	b = ksm_test_node(test, 0x33, &fb);
	ksm_index_stable_insert(a, fa);
	KUNIT_EXPECT_EQ(test, ksm_node_add_map(a, &ia), 0);
	key.hash = a->hash;
	key.domain = 0;

	/* A full node is skipped; the content group has nothing else. */
	found = ksm_index_stable_find(key, folio_page(fb, 0), &got);
	KUNIT_EXPECT_PTR_EQ(test, found, NULL);

	/* A second node with the same contents makes a chain of two dups. */
	ksm_index_stable_insert(b, fb);
	KUNIT_EXPECT_EQ(test, ksm_stats.chains, chains + 1);
	KUNIT_EXPECT_EQ(test, ksm_stats.dups, dups + 2);
	found = ksm_index_stable_find(key, folio_page(fa, 0), &got);
	KUNIT_EXPECT_PTR_EQ(test, found, b);
	if (got)
		folio_put(got);
	KUNIT_EXPECT_EQ(test, ksm_node_add_map(b, &ib), 0);
	found = ksm_index_stable_find(key, folio_page(fa, 0), &got);
	KUNIT_EXPECT_PTR_EQ(test, found, NULL);

	/* The leader leaves: the dup leads alone, the chain is gone. */
	ksm_node_del_map(a, &ia);
	ksm_test_node_put(a, fa);
	KUNIT_EXPECT_EQ(test, ksm_stats.chains, chains);
	KUNIT_EXPECT_EQ(test, ksm_stats.dups, dups);
	KUNIT_EXPECT_TRUE(test, b->indexed);
	KUNIT_EXPECT_FALSE(test, hlist_unhashed(&b->hnode));
	ksm_node_del_map(b, &ib);
	ksm_test_node_put(b, fb);
	WRITE_ONCE(ksm_tun.max_page_sharing, max);
	mutex_unlock(&ksm_lock);
}

static void ksm_test_node_maps(struct kunit *test)
{
	struct ksm_item items[9] = {};
	struct ksm_stable_node *node;
	unsigned long shared, sharing;
	struct folio *folio;
	int i;

	mutex_lock(&ksm_lock);
	shared = ksm_stats.pages_shared;
	sharing = ksm_stats.pages_sharing;
	node = ksm_test_node(test, 0x77, &folio);
	for (i = 0; i < ARRAY_SIZE(items); i++)
		KUNIT_EXPECT_EQ(test, ksm_node_add_map(node, &items[i]), 0);
	KUNIT_EXPECT_EQ(test, node->nr_maps, 9U);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_shared, shared + 1);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_sharing, sharing + 8);
	for (i = 0; i < ARRAY_SIZE(items); i++)
		ksm_node_del_map(node, &items[i]);
	KUNIT_EXPECT_EQ(test, node->nr_maps, 0U);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_shared, shared);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_sharing, sharing);
	ksm_test_node_put(node, folio);
	mutex_unlock(&ksm_lock);
}

/* Every byte counts: a difference anywhere makes two pages differ. */
static void ksm_test_pages_same(struct kunit *test)
{
	static const unsigned int spots[] = {
		0, 1, 7, 8, 63, 64, PAGE_SIZE / 2 + 5, PAGE_SIZE - 9,
		PAGE_SIZE - 1,
	};
	struct page *p1 = alloc_page(GFP_KERNEL);
	struct page *p2 = alloc_page(GFP_KERNEL);
	u8 *a, *b;
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, p1);
	KUNIT_ASSERT_NOT_NULL(test, p2);
	a = page_address(p1);
	b = page_address(p2);
	for (i = 0; i < PAGE_SIZE; i++)
		a[i] = b[i] = (u8)(i * 31 + 7);
	KUNIT_EXPECT_TRUE(test, ksm_pages_same(p1, p2));
	for (i = 0; i < ARRAY_SIZE(spots); i++) {
		b[spots[i]] ^= 0x10;
		KUNIT_EXPECT_FALSE_MSG(test, ksm_pages_same(p1, p2),
				       "byte %u differs", spots[i]);
		KUNIT_EXPECT_FALSE(test, ksm_pages_same(p2, p1));
		b[spots[i]] ^= 0x10;
	}
	KUNIT_EXPECT_TRUE(test, ksm_pages_same(p1, p2));
	memset(a, 0, PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, ksm_pages_same(p1, ZERO_PAGE(0)));
	a[PAGE_SIZE - 1] = 1;
	KUNIT_EXPECT_FALSE(test, ksm_pages_same(p1, ZERO_PAGE(0)));
	__free_page(p1);
	__free_page(p2);
}

static struct kunit_case ksm_test_cases[] = {
	KUNIT_CASE(ksm_test_pages_same),
	KUNIT_CASE(ksm_test_item_bits),
	KUNIT_CASE(ksm_test_knob_parse),
	KUNIT_CASE(ksm_test_profit),
	KUNIT_CASE(ksm_test_unstable_round),
	KUNIT_CASE(ksm_test_stable_find),
	KUNIT_CASE(ksm_test_chain),
	KUNIT_CASE(ksm_test_node_maps),
	{},
};

static struct kunit_suite ksm_test_suite = {
	.name = "ksm",
	.test_cases = ksm_test_cases,
};

kunit_test_suite(ksm_test_suite);

#endif /* IS_ENABLED(CONFIG_KSM_KUNIT_TEST) */
#endif /* _KSM_KUNIT_H */
