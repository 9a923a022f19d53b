/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for KSM: the parts that need no page tables.
 *
 * Included at the end of mm/ksm_index.c, so the tests reach its static
 * helpers. Index tests build private indexes; they take ksm_lock because
 * stable nodes assert it, so ksmd waits meanwhile.
 */
#ifndef _KSM_KUNIT_H
#define _KSM_KUNIT_H

#if IS_ENABLED(CONFIG_KSM_KUNIT_TEST)

#include <kunit/test.h>

static void ksm_test_item_bits(struct kunit *test)
{
	struct ksm_item item = {};

	KUNIT_EXPECT_LE(test, sizeof(struct ksm_item), 16);
	/* The largest page number an item holds, on 32- and 64-bit. */
	ksm_item_set_nr(&item, KSM_ITEM_NR_MAX);
	ksm_item_set_state(&item, KSM_ITEM_UNSTABLE);
	ksm_item_assign(&item, KSM_ITEM_VOLATILE, true);
	KUNIT_EXPECT_EQ(test, ksm_item_nr(&item), KSM_ITEM_NR_MAX);
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
				       __ffs64(KSM_ITEM_BREAKS_MASK)));
	KUNIT_EXPECT_EQ(test, ksm_item_nr(&item), 42UL);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&item), KSM_ITEM_MERGED);
	ksm_item_set_field(&item, KSM_ITEM_AGE_MASK, 0);
	KUNIT_EXPECT_EQ(test, ksm_item_field(&item, KSM_ITEM_AGE_MASK), 0U);
	KUNIT_EXPECT_NE(test, ksm_item_field(&item, KSM_ITEM_BREAKS_MASK), 0U);

	/* Unmerged, the same bits hold a hash and a round modulo 2^20. */
	ksm_item_set_state(&item, KSM_ITEM_UNSTABLE);
	ksm_item_set_hash(&item, 0xdeadbeef);
	ksm_item_set_round(&item, KSM_ITEM_ROUND_MASK + 5);
	KUNIT_EXPECT_EQ(test, ksm_item_hash(&item), 0xdeadbeefU);
	KUNIT_EXPECT_EQ(test, ksm_item_round(&item), 4U);
	ksm_item_set_hash(&item, 1);
	KUNIT_EXPECT_EQ(test, ksm_item_round(&item), 4U);
	KUNIT_EXPECT_EQ(test, ksm_item_hash(&item), 1U);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&item), KSM_ITEM_UNSTABLE);
	KUNIT_EXPECT_NE(test, ksm_item_field(&item, KSM_ITEM_BREAKS_MASK), 0U);
	KUNIT_EXPECT_EQ(test, ksm_item_rounds_ahead(&item, 2), 2U);
	KUNIT_EXPECT_EQ(test, ksm_item_rounds_ahead(&item, KSM_ITEM_ROUND_MASK), 5U);
}

/* An item's owner and address follow from its place in its block. */
static void ksm_test_item_block(struct kunit *test)
{
	struct ksm_mm *owner = (struct ksm_mm *)0x1000;
	struct ksm_item_block *block;
	int i;

	KUNIT_EXPECT_LE(test, sizeof(struct ksm_item_block), KSM_BLOCK_BYTES);
	KUNIT_EXPECT_GT(test, sizeof(struct ksm_item_block) +
			sizeof(struct ksm_item), KSM_BLOCK_BYTES);
	/* kmalloc() aligns a power-of-two size to itself, as the cache does. */
	block = kunit_kzalloc(test, KSM_BLOCK_BYTES, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, block);
	KUNIT_ASSERT_EQ(test, (unsigned long)block % KSM_BLOCK_BYTES, 0UL);
	block->owner = owner;
	block->first = 7 * KSM_BLOCK_ITEMS;
	for (i = 0; i < KSM_BLOCK_ITEMS; i++) {
		KUNIT_EXPECT_PTR_EQ(test, ksm_item_block(&block->items[i]), block);
		KUNIT_EXPECT_PTR_EQ(test, ksm_item_owner(&block->items[i]), owner);
		KUNIT_EXPECT_EQ(test, ksm_item_addr(&block->items[i]),
				(7UL * KSM_BLOCK_ITEMS + i) << PAGE_SHIFT);
	}
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

/*
 * Private fixtures: an index of the test's own, whose unstable items are
 * struct ksm_test_item and whose pages come from alloc_page(). Nothing of
 * the live index is touched; ksm_lock is taken only because stable nodes
 * and their statistics assert it.
 */
struct ksm_test_item {
	struct ksm_item item;
	struct page *page;
};

static struct page *ksm_test_item_page(struct ksm_item *item)
{
	struct ksm_test_item *ti = container_of(item, struct ksm_test_item,
						item);

	if (!ti->page)
		return NULL;
	get_page(ti->page);
	return ti->page;
}

static unsigned int ksm_test_moved;

static void ksm_test_node_moved(void)
{
	ksm_test_moved++;
}

/* Fixture items have no owner: the memory cgroup part is 0. */
static int ksm_test_item_domain(const struct ksm_item *item,
				struct folio *folio)
{
	return ksm_domain_make(0, ksm_index_domain(folio));
}

static const struct ksm_index_ops ksm_test_ops = {
	.item_page = ksm_test_item_page,
	.item_domain = ksm_test_item_domain,
	.node_moved = ksm_test_node_moved,
};

static struct ksm_index *ksm_test_index(struct kunit *test)
{
	struct ksm_index *idx = kunit_kzalloc(test, sizeof(*idx), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, idx);
	KUNIT_ASSERT_EQ(test, ksm_index_setup(idx, &ksm_test_ops, &ksm_lock,
					      false), 0);
	/* A fixed bucket key: every run lays the entries out alike. */
	idx->bucket_key = 0x2545f491;
	return idx;
}

static void ksm_test_index_free(struct ksm_index *idx)
{
	ksm_unstable_free_groups(idx);
	kvfree(idx->stable);
	kvfree(idx->unstable);
	kvfree(idx->unstable_old);
}

/* Pseudo-random numbers of a fixed seed: every run tests the same pages. */
static u32 ksm_test_rand(u32 *state)
{
	*state = *state * 1664525 + 1013904223;
	return *state;
}

/* The worst a red-black tree of @n entries makes a lookup compare. */
static unsigned int ksm_test_bound(unsigned int n)
{
	return 2 * (ilog2(n + 1) + 1) + 1;
}

enum ksm_test_family {
	/* Zero pages with a one-word header outside the sample. */
	KSM_FAMILY_HEADER,
	/* Pages that differ in their last word only. */
	KSM_FAMILY_TAIL,
	/* One filler, one word changed at a position spread over the page. */
	KSM_FAMILY_SPREAD,
	/* Random pages with a few random bytes changed, forced to one hash. */
	KSM_FAMILY_SPARSE,
};

/* Fill @page as member @i of @family; @base is a random page. */
static void ksm_test_fill(struct page *page, enum ksm_test_family family,
			  unsigned int i, const u64 *base, u32 *seed)
{
	u64 *w = page_address(page);
	unsigned int n;

	switch (family) {
	case KSM_FAMILY_HEADER:
		memset(w, 0, PAGE_SIZE);
		w[1] = i + 1;
		break;
	case KSM_FAMILY_TAIL:
		memset(w, 0xa5, PAGE_SIZE);
		w[PAGE_SIZE / sizeof(u64) - 1] = i;
		break;
	case KSM_FAMILY_SPREAD:
		memset(w, 0x3c, PAGE_SIZE);
		/*
		 * Block b of 16 words has its sampled word at 7 b % 16: the
		 * word after it never is. i tells which block and what.
		 */
		n = i % (PAGE_SIZE / sizeof(u64) / 16);
		w[n * 16 + (7 * n + 1) % 16] = i + 1;
		break;
	case KSM_FAMILY_SPARSE:
		memcpy(w, base, PAGE_SIZE);
		for (n = 0; n < 1 + i % 3; n++)
			((u8 *)w)[ksm_test_rand(seed) % PAGE_SIZE] ^=
				1 + ksm_test_rand(seed) % 255;
		/* Two members may draw the same change: make each unique. */
		w[2] ^= (u64)i << 32;
		break;
	}
}

#define KSM_TEST_PAGES	128

/*
 * Insert a family of pages that agree on every sampled word (or are given
 * one hash on purpose) into the unstable index, then look up a twin of
 * each: every twin is found, with at most a tree's height of compares,
 * and the full hash leaves about one compare per lookup (a chance
 * collision of two 32-bit full hashes costs one more).
 */
static void ksm_test_unstable_family(struct kunit *test,
				     enum ksm_test_family family)
{
	struct ksm_test_item *items, *twins;
	struct ksm_index *idx = ksm_test_index(test);
	struct ksm_index_key key;
	struct page *other;
	struct ksm_item *found;
	unsigned long before, worst = 0, total = 0;
	u32 seed = 12345 + family, hash = 0;
	u64 *base;
	int i;

	items = kunit_kcalloc(test, KSM_TEST_PAGES, sizeof(*items), GFP_KERNEL);
	twins = kunit_kcalloc(test, KSM_TEST_PAGES, sizeof(*twins), GFP_KERNEL);
	base = kunit_kmalloc(test, PAGE_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, items);
	KUNIT_ASSERT_NOT_NULL(test, twins);
	KUNIT_ASSERT_NOT_NULL(test, base);
	for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		base[i] = ((u64)ksm_test_rand(&seed) << 32) ^ ksm_test_rand(&seed);

	mutex_lock(&ksm_lock);
	for (i = 0; i < KSM_TEST_PAGES; i++) {
		items[i].page = alloc_page(GFP_KERNEL);
		twins[i].page = alloc_page(GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, items[i].page);
		KUNIT_ASSERT_NOT_NULL(test, twins[i].page);
		ksm_test_fill(items[i].page, family, i, base, &seed);
		memcpy(page_address(twins[i].page),
		       page_address(items[i].page), PAGE_SIZE);
		key.hash = ksm_index_page_hash(items[i].page);
		if (family == KSM_FAMILY_SPARSE)
			key.hash = 0xdead;
		else if (i)
			/* The family collides on the sample by design. */
			KUNIT_EXPECT_EQ(test, key.hash, hash);
		hash = key.hash;
		key.domain = ksm_index_domain(page_folio(items[i].page));
		found = ksm_unstable_match(idx, key, &items[i].item,
					   items[i].page, &other);
		KUNIT_EXPECT_PTR_EQ(test, found, NULL);
		KUNIT_EXPECT_EQ(test, ksm_item_state(&items[i].item),
				KSM_ITEM_UNSTABLE);
	}
	for (i = 0; i < KSM_TEST_PAGES; i++) {
		key.hash = family == KSM_FAMILY_SPARSE ? 0xdead :
			   ksm_index_page_hash(twins[i].page);
		key.domain = ksm_index_domain(page_folio(twins[i].page));
		before = idx->compares;
		found = ksm_unstable_match(idx, key, &twins[i].item,
					   twins[i].page, &other);
		worst = max(worst, idx->compares - before);
		total += idx->compares - before;
		KUNIT_EXPECT_PTR_EQ_MSG(test, found, &items[i].item,
					"family %d page %d", family, i);
		if (found) {
			KUNIT_EXPECT_PTR_EQ(test, other, items[i].page);
			put_page(other);
		} else {
			ksm_unstable_erase(idx, &twins[i].item);
		}
	}
	KUNIT_EXPECT_LE_MSG(test, worst, ksm_test_bound(KSM_TEST_PAGES),
			    "family %d", family);
	KUNIT_EXPECT_LE_MSG(test, total, 2UL * KSM_TEST_PAGES,
			    "family %d", family);
	for (i = 0; i < KSM_TEST_PAGES; i++) {
		if (ksm_item_state(&items[i].item) == KSM_ITEM_UNSTABLE)
			ksm_unstable_erase(idx, &items[i].item);
		__free_page(items[i].page);
		__free_page(twins[i].page);
	}
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
}

static void ksm_test_unstable_header(struct kunit *test)
{
	ksm_test_unstable_family(test, KSM_FAMILY_HEADER);
}

static void ksm_test_unstable_tail(struct kunit *test)
{
	ksm_test_unstable_family(test, KSM_FAMILY_TAIL);
}

static void ksm_test_unstable_spread(struct kunit *test)
{
	ksm_test_unstable_family(test, KSM_FAMILY_SPREAD);
}

static void ksm_test_unstable_sparse(struct kunit *test)
{
	ksm_test_unstable_family(test, KSM_FAMILY_SPARSE);
}

/*
 * Items whose pages went away leave on the way, a new round starts empty
 * and old links are never followed, and the buckets follow the items.
 */
static void ksm_test_unstable_round(struct kunit *test)
{
	struct ksm_index *idx = ksm_test_index(test);
	struct ksm_test_item a = {}, b = {}, c = {};
	struct ksm_index_key key = { .hash = 0x1234 };
	struct ksm_item *found, *many;
	struct page *other;
	unsigned int i, bits;

	mutex_lock(&ksm_lock);
	a.page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	b.page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	c.page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	KUNIT_ASSERT_NOT_NULL(test, a.page);
	KUNIT_ASSERT_NOT_NULL(test, b.page);
	KUNIT_ASSERT_NOT_NULL(test, c.page);
	((u64 *)page_address(b.page))[5] = 1;
	key.domain = ksm_index_domain(page_folio(a.page));
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_match(idx, key, &a.item, a.page,
						     &other), NULL);
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_match(idx, key, &b.item, b.page,
						     &other), NULL);
	/* Two contents under one hash: a group holds both. */
	KUNIT_EXPECT_FALSE(test, list_empty(&idx->groups));
	KUNIT_EXPECT_TRUE(test, ksm_item_in_group(&a.item));
	KUNIT_EXPECT_TRUE(test, ksm_unstable_hash_known(idx, key.hash));
	KUNIT_EXPECT_FALSE(test, ksm_unstable_hash_known(idx, key.hash + 1));

	/* a's page goes away: the lookup drops it and finds nothing. */
	__free_page(a.page);
	a.page = NULL;
	found = ksm_unstable_match(idx, key, &c.item, c.page, &other);
	KUNIT_EXPECT_PTR_EQ(test, found, NULL);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&a.item), KSM_ITEM_IDLE);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&c.item), KSM_ITEM_UNSTABLE);

	/* A new round empties the index; old links are never followed. */
	ksm_unstable_empty(idx);
	KUNIT_EXPECT_TRUE(test, list_empty(&idx->groups));
	KUNIT_EXPECT_FALSE(test, ksm_unstable_hash_known(idx, key.hash));
	ksm_unstable_erase(idx, &b.item);
	ksm_unstable_erase(idx, &c.item);
	KUNIT_EXPECT_EQ(test, ksm_item_state(&b.item), KSM_ITEM_IDLE);

	/* 4096 items in a round give the next round more buckets. */
	many = kunit_kcalloc(test, 4096, sizeof(*many), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, many);
	bits = idx->unstable_bits;
	for (i = 0; i < 4096; i++) {
		idx->nr_unstable++;
		ksm_unstable_chain(idx, &many[i], i * 2654435761U);
	}
	ksm_unstable_empty(idx);
	KUNIT_EXPECT_GT(test, idx->unstable_bits, bits);
	for (i = 0; i < 4096; i++)
		ksm_unstable_erase(idx, &many[i]);
	__free_page(b.page);
	__free_page(c.page);
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
}

#define KSM_TEST_GROW_ITEMS	8192

/* The hash item @i is inserted with: items 16 k and 16 k + 1 share one. */
static u32 ksm_test_grow_hash(unsigned int i)
{
	if (i % 16 == 1)
		i--;
	return (i * 2654435761U) ^ 0x5bd1e995;
}

static unsigned int ksm_test_chain_len(struct ksm_item *entry)
{
	unsigned int len = 0;

	for (; entry; entry = entry->chain_next)
		len++;
	return len;
}

/* The longest chain in the buckets of either table that hold entries. */
static unsigned int ksm_test_longest_chain(struct ksm_index *idx)
{
	unsigned int i, longest = 0;

	for (i = 0; i < (1U << idx->unstable_bits); i++)
		longest = max(longest, ksm_test_chain_len(idx->unstable[i]));
	if (!idx->unstable_old)
		return longest;
	for (i = idx->unstable_moved; i < (1U << idx->unstable_old_bits); i++)
		longest = max(longest,
			      ksm_test_chain_len(idx->unstable_old[i]));
	return longest;
}

/*
 * Look up a twin of item @j, inserted before: it must be found, wherever
 * its entry is while the table grows. Returns the compares it took.
 */
static unsigned long ksm_test_grow_twin(struct kunit *test,
					struct ksm_index *idx,
					struct ksm_test_item *items,
					struct page **twins, unsigned int j,
					int domain)
{
	struct ksm_index_key key = { .hash = ksm_test_grow_hash(j),
				     .domain = domain };
	struct ksm_test_item twin = { .page = twins[j % 16 == 1] };
	unsigned long before = idx->compares;
	struct ksm_item *found;
	struct page *other;

	found = ksm_unstable_match(idx, key, &twin.item, twin.page, &other);
	KUNIT_EXPECT_PTR_EQ_MSG(test, found, &items[j].item,
				"twin of item %u, %lu entries", j,
				idx->nr_chained);
	if (found)
		put_page(other);
	else
		ksm_unstable_erase(idx, &twin.item);
	return idx->compares - before;
}

/*
 * Many items in one round: the unstable table grows within the round, a
 * few buckets per lookup, so its chains stay short; and every identical
 * pair is found throughout, in whichever table its entry is. The round's
 * end drops a table that was still being moved.
 */
static void ksm_test_unstable_grow(struct kunit *test)
{
	struct ksm_index *idx = ksm_test_index(test);
	unsigned int i, j, bits = idx->unstable_bits, moving = 0;
	unsigned long worst = 0, before;
	struct page *pages[2], *twins[2], *other;
	struct ksm_test_item *items;
	struct ksm_index_key key;
	u32 round = idx->round, seed = 99;

	items = vcalloc(KSM_TEST_GROW_ITEMS, sizeof(*items));
	KUNIT_ASSERT_NOT_NULL(test, items);
	for (j = 0; j < 2; j++) {
		pages[j] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		twins[j] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		KUNIT_ASSERT_NOT_NULL(test, pages[j]);
		KUNIT_ASSERT_NOT_NULL(test, twins[j]);
		((u64 *)page_address(pages[j]))[9] = j + 1;
		((u64 *)page_address(twins[j]))[9] = j + 1;
	}
	key.domain = ksm_index_domain(page_folio(pages[0]));
	mutex_lock(&ksm_lock);
	for (i = 0; i < KSM_TEST_GROW_ITEMS; i++) {
		items[i].page = pages[i % 16 == 1];
		key.hash = ksm_test_grow_hash(i);
		before = idx->compares;
		KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_match(idx, key,
							     &items[i].item,
							     items[i].page,
							     &other), NULL);
		worst = max(worst, idx->compares - before);
		/*
		 * Never more than two entries per bucket on average, but for
		 * the one whose insertion starts the doubling.
		 */
		KUNIT_EXPECT_LE(test, idx->nr_chained,
				(2UL << idx->unstable_bits) + 1);
		moving += !!idx->unstable_old;
		j = ksm_test_rand(&seed) % (i + 1);
		worst = max(worst, ksm_test_grow_twin(test, idx, items, twins,
						      j, key.domain));
	}
	KUNIT_EXPECT_EQ(test, idx->round, round);
	KUNIT_EXPECT_GT(test, moving, 0U);
	KUNIT_EXPECT_GE(test, idx->unstable_bits, bits + 4);
	KUNIT_EXPECT_LE(test, ksm_test_longest_chain(idx), 16U);
	/* One compare per entry of a hash, two entries per hash at most. */
	KUNIT_EXPECT_LE(test, worst, 2UL);
	for (i = 0; i < KSM_TEST_GROW_ITEMS; i += 97)
		ksm_test_grow_twin(test, idx, items, twins, i, key.domain);

	/* A round ending while the table grows leaves no entry behind. */
	if (!idx->unstable_old)
		ksm_unstable_grow(idx);
	KUNIT_EXPECT_NOT_NULL(test, idx->unstable_old);
	ksm_unstable_empty(idx);
	KUNIT_EXPECT_NULL(test, idx->unstable_old);
	KUNIT_EXPECT_EQ(test, idx->nr_chained, 0UL);
	KUNIT_EXPECT_EQ(test, ksm_test_longest_chain(idx), 0U);
	for (i = 0; i < KSM_TEST_GROW_ITEMS; i++) {
		ksm_unstable_erase(idx, &items[i].item);
		KUNIT_EXPECT_EQ(test, ksm_item_state(&items[i].item),
				KSM_ITEM_IDLE);
	}
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
	for (j = 0; j < 2; j++) {
		__free_page(pages[j]);
		__free_page(twins[j]);
	}
	vfree(items);
}

#define KSM_TEST_CRAFTED_ITEMS	4096

/* The inverse of odd @a modulo 2^32: each Newton step doubles the bits. */
static u32 ksm_test_inverse(u32 a)
{
	u32 x = a;	/* a * a == 1 modulo 8 for any odd a */
	int i;

	for (i = 0; i < 4; i++)
		x *= 2 - a * x;
	return x;
}

/*
 * Insert pages of distinct hash values that someone chose to share one
 * bucket under the multiplier hash_32() uses: i * inverse(multiplier)
 * times the multiplier is i, whose top bits are 0 for any table of up to
 * 2^20 buckets. Returns the longest chain with @bucket_key as the key.
 */
static unsigned int ksm_test_crafted_chain(struct kunit *test, u32 bucket_key)
{
	struct ksm_index *idx = ksm_test_index(test);
	u32 inv = ksm_test_inverse(GOLDEN_RATIO_32);
	struct ksm_test_item *items;
	struct ksm_index_key key;
	struct page *page, *other;
	unsigned int i, longest;

	KUNIT_EXPECT_EQ(test, inv * GOLDEN_RATIO_32, 1U);
	items = vcalloc(KSM_TEST_CRAFTED_ITEMS, sizeof(*items));
	KUNIT_ASSERT_NOT_NULL(test, items);
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	KUNIT_ASSERT_NOT_NULL(test, page);
	idx->bucket_key = bucket_key;
	key.domain = ksm_index_domain(page_folio(page));
	mutex_lock(&ksm_lock);
	for (i = 0; i < KSM_TEST_CRAFTED_ITEMS; i++) {
		items[i].page = page;
		key.hash = i * inv;
		KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_match(idx, key,
							     &items[i].item,
							     page, &other),
				    NULL);
	}
	longest = ksm_test_longest_chain(idx);
	ksm_unstable_empty(idx);
	for (i = 0; i < KSM_TEST_CRAFTED_ITEMS; i++)
		ksm_unstable_erase(idx, &items[i].item);
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
	__free_page(page);
	vfree(items);
	return longest;
}

/*
 * The sample hash is public, so anyone can make pages of chosen hash
 * values. Chosen against a known bucket function they all share one
 * chain; the index's buckets depend on a key nobody outside knows, and
 * under any other key the same values spread like random ones.
 */
static void ksm_test_unstable_crafted(struct kunit *test)
{
	u32 seed = 7;
	int i;

	/* The test can fail: under the multiplier aimed at, one chain. */
	KUNIT_EXPECT_EQ(test, ksm_test_crafted_chain(test, GOLDEN_RATIO_32),
			KSM_TEST_CRAFTED_ITEMS);
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_LE(test,
				ksm_test_crafted_chain(test,
						       ksm_test_rand(&seed) | 1),
				16U);
}

/* A KSM-looking folio filled like @src, owned by a fresh node. */
static struct ksm_stable_node *ksm_test_node(struct kunit *test,
					     struct page *src,
					     struct folio **folio)
{
	struct ksm_stable_node *node;

	*folio = folio_alloc(GFP_KERNEL, 0);
	KUNIT_ASSERT_NOT_NULL(test, *folio);
	memcpy(folio_address(*folio), page_address(src), PAGE_SIZE);
	node = ksm_node_alloc();
	KUNIT_ASSERT_NOT_NULL(test, node);
	node->kpfn = folio_pfn(*folio);
	node->hash = ksm_index_page_hash(folio_page(*folio, 0));
	node->domain = ksm_index_domain(*folio);
	(*folio)->mapping = ksm_node_mapping(node);
	return node;
}

static void ksm_test_node_put(struct ksm_index *idx,
			      struct ksm_stable_node *node,
			      struct folio *folio)
{
	ksm_stable_erase(idx, node);
	folio->mapping = NULL;
	ksm_node_free(node);
	folio_put(folio);
}

static struct ksm_stable_node *ksm_test_find(struct ksm_index *idx,
					     struct page *page,
					     struct folio **got)
{
	struct ksm_index_key key = {
		.hash = ksm_index_page_hash(page),
		.domain = ksm_index_domain(page_folio(page)),
	};

	return ksm_stable_find(idx, key, page, got);
}

/* ksm_stable_guess() for @page's key; drops the reference it takes. */
static struct ksm_stable_node *ksm_test_guess(struct ksm_index *idx,
					      struct page *page)
{
	struct ksm_index_key key = {
		.hash = ksm_index_page_hash(page),
		.domain = ksm_index_domain(page_folio(page)),
	};
	struct ksm_stable_node *node;
	struct folio *got;

	node = ksm_stable_guess(idx, key, &got);
	if (node)
		folio_put(got);
	return node;
}

/*
 * A guess (a node found by its key alone, merged into only after the
 * merge's own compare) is offered only where one node has the key: never
 * inside a family of one hash, never again for a node guessed wrong.
 */
static void ksm_test_stable_guess(struct kunit *test)
{
	struct ksm_index *idx = ksm_test_index(test);
	struct page *src = alloc_page(GFP_KERNEL);
	struct ksm_stable_node *nodes[3];
	struct folio *folios[3];
	u32 seed = 3;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, src);
	mutex_lock(&ksm_lock);
	/* Empty index: nothing to guess. */
	ksm_test_fill(src, KSM_FAMILY_TAIL, 0, NULL, &seed);
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_guess(idx, src), NULL);

	/* One node of the tail family: its key alone names it. */
	nodes[0] = ksm_test_node(test, src, &folios[0]);
	ksm_stable_insert(idx, nodes[0], folios[0]);
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_guess(idx, src), nodes[0]);
	/* A sibling with other contents and the same key gets that guess. */
	ksm_test_fill(src, KSM_FAMILY_TAIL, 1, NULL, &seed);
	KUNIT_EXPECT_EQ(test, ksm_index_page_hash(src), nodes[0]->hash);
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_guess(idx, src), nodes[0]);
	/* It is wrong; once marked so, the node is never guessed again. */
	nodes[0]->guessed_wrong = true;
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_guess(idx, src), NULL);

	/* Two nodes of one key: no guess for either, each found exactly. */
	for (i = 1; i < 3; i++) {
		ksm_test_fill(src, KSM_FAMILY_HEADER, i, NULL, &seed);
		nodes[i] = ksm_test_node(test, src, &folios[i]);
		ksm_stable_insert(idx, nodes[i], folios[i]);
	}
	KUNIT_EXPECT_EQ(test, nodes[1]->hash, nodes[2]->hash);
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_guess(idx, src), NULL);

	/* A frozen KSM page: no guess (the exact lookup waits instead). */
	ksm_test_node_put(idx, nodes[2], folios[2]);
	ksm_test_fill(src, KSM_FAMILY_HEADER, 1, NULL, &seed);
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_guess(idx, src), nodes[1]);
	KUNIT_ASSERT_TRUE(test, folio_ref_freeze(folios[1], 1));
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_guess(idx, src), NULL);
	folio_ref_unfreeze(folios[1], 1);

	for (i = 0; i < 2; i++)
		ksm_test_node_put(idx, nodes[i], folios[i]);
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
	__free_page(src);
}

/*
 * A family of KSM pages that agree on every sampled word: each twin finds
 * its own, within a tree's height of compares and about one compare per
 * lookup (the full hash tells the others apart); a frozen KSM page stops
 * the lookup (it could be the twin) instead of missing it; a stale node
 * leaves.
 */
static void ksm_test_stable_family(struct kunit *test)
{
	struct ksm_index *idx = ksm_test_index(test);
	struct page *twin = alloc_page(GFP_KERNEL);
	unsigned long before, worst = 0, total = 0;
	struct ksm_stable_node **nodes, *found;
	struct folio **folios, *got;
	u32 seed = 1;
	int i;

	nodes = kunit_kcalloc(test, KSM_TEST_PAGES, sizeof(*nodes), GFP_KERNEL);
	folios = kunit_kcalloc(test, KSM_TEST_PAGES, sizeof(*folios),
			       GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, nodes);
	KUNIT_ASSERT_NOT_NULL(test, folios);
	KUNIT_ASSERT_NOT_NULL(test, twin);
	mutex_lock(&ksm_lock);
	for (i = 0; i < KSM_TEST_PAGES; i++) {
		ksm_test_fill(twin, KSM_FAMILY_HEADER, i, NULL, &seed);
		nodes[i] = ksm_test_node(test, twin, &folios[i]);
		ksm_stable_insert(idx, nodes[i], folios[i]);
		KUNIT_EXPECT_TRUE(test, nodes[i]->indexed);
		KUNIT_EXPECT_FALSE(test, nodes[i]->pending);
	}
	KUNIT_EXPECT_TRUE(test, ksm_stable_hash_known(idx, nodes[0]->hash));
	for (i = 0; i < KSM_TEST_PAGES; i++) {
		ksm_test_fill(twin, KSM_FAMILY_HEADER, i, NULL, &seed);
		before = idx->compares;
		found = ksm_test_find(idx, twin, &got);
		worst = max(worst, idx->compares - before);
		total += idx->compares - before;
		KUNIT_EXPECT_PTR_EQ(test, found, nodes[i]);
		if (!IS_ERR_OR_NULL(found))
			folio_put(got);
	}
	KUNIT_EXPECT_LE(test, worst, ksm_test_bound(KSM_TEST_PAGES));
	KUNIT_EXPECT_LE(test, total, 2UL * KSM_TEST_PAGES);
	/* Two nodes of one key met: each holds its full hash now. */
	for (i = 0; i < KSM_TEST_PAGES; i++)
		KUNIT_EXPECT_TRUE(test, nodes[i]->fhash_known);

	/* Not in the index: nothing, and no KSM page is mistaken for it. */
	ksm_test_fill(twin, KSM_FAMILY_HEADER, KSM_TEST_PAGES, NULL, &seed);
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_find(idx, twin, &got), NULL);

	/* Every KSM page on the way is frozen: look again later. */
	ksm_test_fill(twin, KSM_FAMILY_HEADER, 5, NULL, &seed);
	for (i = 0; i < KSM_TEST_PAGES; i++)
		KUNIT_ASSERT_TRUE(test, folio_ref_freeze(folios[i], 1));
	found = ksm_test_find(idx, twin, &got);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(found), -EBUSY);
	for (i = 0; i < KSM_TEST_PAGES; i++)
		folio_ref_unfreeze(folios[i], 1);

	/* Node 5's page went away: it leaves (freed), its twin is not found. */
	folios[5]->mapping = NULL;
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_find(idx, twin, &got), NULL);
	KUNIT_EXPECT_EQ(test, idx->nr_leaders, KSM_TEST_PAGES - 1UL);
	folio_put(folios[5]);
	for (i = 0; i < KSM_TEST_PAGES; i++)
		if (i != 5)
			ksm_test_node_put(idx, nodes[i], folios[i]);
	KUNIT_EXPECT_EQ(test, idx->nr_leaders, 0UL);
	__free_page(twin);
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
}

/* The stable buckets double as nodes come, and every node stays found. */
static void ksm_test_stable_grow(struct kunit *test)
{
	struct ksm_index *idx = ksm_test_index(test);
	struct ksm_stable_node **nodes, *found;
	struct folio **folios, *got;
	struct page *page = alloc_page(GFP_KERNEL);
	unsigned int bits = idx->stable_bits, n = 4U << bits;
	u32 seed = 7;
	int i;

	nodes = kunit_kcalloc(test, n, sizeof(*nodes), GFP_KERNEL);
	folios = kunit_kcalloc(test, n, sizeof(*folios), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, nodes);
	KUNIT_ASSERT_NOT_NULL(test, folios);
	KUNIT_ASSERT_NOT_NULL(test, page);
	mutex_lock(&ksm_lock);
	for (i = 0; i < n; i++) {
		ksm_test_fill(page, KSM_FAMILY_TAIL, ksm_test_rand(&seed), NULL,
			      &seed);
		nodes[i] = ksm_test_node(test, page, &folios[i]);
		ksm_stable_insert(idx, nodes[i], folios[i]);
	}
	/* Lookups grow the table (insertions may hold a folio lock). */
	for (i = 0; i < n; i++) {
		found = ksm_test_find(idx, folio_page(folios[i], 0), &got);
		KUNIT_EXPECT_PTR_EQ(test, found, nodes[i]);
		if (!IS_ERR_OR_NULL(found))
			folio_put(got);
	}
	KUNIT_EXPECT_GT(test, idx->stable_bits, bits);
	for (i = 0; i < n; i++)
		ksm_test_node_put(idx, nodes[i], folios[i]);
	__free_page(page);
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
}

static void ksm_test_chain(struct kunit *test)
{
	struct ksm_index *idx = ksm_test_index(test);
	struct ksm_stable_node *a, *b, *found;
	struct ksm_item ia = {}, ib = {};
	struct folio *fa, *fb, *got;
	unsigned long chains, dups, max;
	struct page *src = alloc_page(GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, src);
	memset(page_address(src), 0x33, PAGE_SIZE);
	mutex_lock(&ksm_lock);
	max = ksm_tun.max_page_sharing;
	chains = ksm_stats.chains;
	dups = ksm_stats.dups;
	WRITE_ONCE(ksm_tun.max_page_sharing, 1);
	a = ksm_test_node(test, src, &fa);
	b = ksm_test_node(test, src, &fb);
	ksm_stable_insert(idx, a, fa);
	KUNIT_EXPECT_EQ(test, ksm_node_add_map(a, &ia, NULL), 0);

	/* A full node is skipped; the content group has nothing else. */
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_find(idx, src, &got), NULL);

	/* A second node with the same contents makes a chain of two dups. */
	ksm_stable_insert(idx, b, fb);
	KUNIT_EXPECT_EQ(test, ksm_stats.chains, chains + 1);
	KUNIT_EXPECT_EQ(test, ksm_stats.dups, dups + 2);
	found = ksm_test_find(idx, src, &got);
	KUNIT_EXPECT_PTR_EQ(test, found, b);
	if (!IS_ERR_OR_NULL(found))
		folio_put(got);
	KUNIT_EXPECT_EQ(test, ksm_node_add_map(b, &ib, NULL), 0);
	KUNIT_EXPECT_PTR_EQ(test, ksm_test_find(idx, src, &got), NULL);

	/* The member is a spare only while the leader has room. */
	KUNIT_EXPECT_FALSE(test, ksm_node_spare(a));
	KUNIT_EXPECT_FALSE(test, ksm_node_spare(b));
	WRITE_ONCE(ksm_tun.max_page_sharing, 2);
	KUNIT_EXPECT_TRUE(test, ksm_node_spare(b));
	KUNIT_EXPECT_FALSE(test, ksm_node_spare(a));
	WRITE_ONCE(ksm_tun.max_page_sharing, 1);

	/* The leader leaves: the dup leads alone, the chain is gone. */
	ksm_node_del_map(a, &ia);
	ksm_test_node_put(idx, a, fa);
	KUNIT_EXPECT_EQ(test, ksm_stats.chains, chains);
	KUNIT_EXPECT_EQ(test, ksm_stats.dups, dups);
	KUNIT_EXPECT_TRUE(test, b->indexed);
	KUNIT_EXPECT_FALSE(test, RB_EMPTY_NODE(&b->rb));
	ksm_node_del_map(b, &ib);
	ksm_test_node_put(idx, b, fb);
	WRITE_ONCE(ksm_tun.max_page_sharing, max);
	__free_page(src);
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
}

/* The domains of some memory cgroup ids and NUMA nodes, in key order. */
static void ksm_test_domain_pack(struct kunit *test)
{
	static const unsigned int cgs[] = { 0, 1, 2, 4095, 65534, U16_MAX };
	const int nodes[] = { 0, MAX_NUMNODES / 2, MAX_NUMNODES - 1 };
	int d, prev = -1;
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(cgs); i++) {
		for (j = 0; j < ARRAY_SIZE(nodes); j++) {
			if (j && nodes[j] <= nodes[j - 1])
				continue;	/* few nodes */
			d = ksm_domain_make(cgs[i], nodes[j]);
			KUNIT_EXPECT_GE(test, d, 0);
			KUNIT_EXPECT_EQ(test, ksm_domain_cgroup(d), cgs[i]);
			KUNIT_EXPECT_EQ(test, ksm_domain_node(d), nodes[j]);
			/* Distinct pairs, distinct and ordered domains. */
			if (i || j)
				KUNIT_EXPECT_GT(test, d, prev);
			prev = d;
		}
	}
}

/*
 * Twins of different memory cgroups never match: not in the unstable
 * index, where an item's domain comes from its owner (none here: cgroup
 * part 0), nor in the stable index, where the node's domain is in the key.
 */
static void ksm_test_domain_apart(struct kunit *test)
{
	struct ksm_index *idx = ksm_test_index(test);
	struct ksm_test_item a = {}, b = {};
	struct ksm_stable_node *node, *found;
	struct folio *folio, *got = NULL;
	struct ksm_index_key key;
	struct page *other;
	int nid;

	mutex_lock(&ksm_lock);
	a.page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	b.page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	KUNIT_ASSERT_NOT_NULL(test, a.page);
	KUNIT_ASSERT_NOT_NULL(test, b.page);
	((u64 *)page_address(a.page))[3] = 7;
	((u64 *)page_address(b.page))[3] = 7;
	nid = ksm_index_domain(page_folio(a.page));
	key.hash = ksm_index_page_hash(a.page);
	key.domain = ksm_domain_make(0, nid);
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_match(idx, key, &a.item, a.page,
						     &other), NULL);
	key.domain = ksm_domain_make(1, ksm_index_domain(page_folio(b.page)));
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_match(idx, key, &b.item, b.page,
						     &other), NULL);
	ksm_unstable_erase(idx, &a.item);
	ksm_unstable_erase(idx, &b.item);

	node = ksm_test_node(test, a.page, &folio);
	node->domain = ksm_domain_make(1, ksm_index_domain(folio));
	ksm_stable_insert(idx, node, folio);
	key.domain = ksm_domain_make(0, ksm_index_domain(folio));
	found = ksm_stable_find(idx, key, b.page, &got);
	KUNIT_EXPECT_PTR_EQ(test, found, NULL);
	if (!IS_ERR_OR_NULL(found))
		folio_put(got);
	key.domain = node->domain;
	found = ksm_stable_find(idx, key, b.page, &got);
	KUNIT_EXPECT_PTR_EQ(test, found, node);
	if (!IS_ERR_OR_NULL(found))
		folio_put(got);
	ksm_test_node_put(idx, node, folio);
	__free_page(a.page);
	__free_page(b.page);
	ksm_test_index_free(idx);
	mutex_unlock(&ksm_lock);
}

static void ksm_test_node_maps(struct kunit *test)
{
	struct ksm_item items[9] = {};
	struct ksm_stable_node *node;
	unsigned long shared, sharing;
	struct folio *folio;
	struct page *src = alloc_page(GFP_KERNEL | __GFP_ZERO);
	int i;

	KUNIT_ASSERT_NOT_NULL(test, src);

	mutex_lock(&ksm_lock);
	shared = ksm_stats.pages_shared;
	sharing = ksm_stats.pages_sharing;
	node = ksm_test_node(test, src, &folio);
	/* Grown from the array set aside with no folio locked, in order. */
	for (i = 0; i < ARRAY_SIZE(items); i++) {
		struct ksm_map *want = node->maps;

		ksm_node_prepare(node);
		if (node->nr_maps == node->max_maps)
			want = ksm_spare_maps;
		KUNIT_EXPECT_NOT_NULL(test, want);
		KUNIT_EXPECT_EQ(test, ksm_node_add_map(node, &items[i], NULL),
				0);
		KUNIT_EXPECT_PTR_EQ(test, node->maps, want);
	}
	for (i = 0; i < ARRAY_SIZE(items); i++)
		KUNIT_EXPECT_PTR_EQ(test, node->maps[i].item, &items[i]);
	for (i = 0; i < ARRAY_SIZE(items); i++)
		ksm_node_del_map(node, &items[i]);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_shared, shared);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_sharing, sharing);
	ksm_node_free_maps(node->maps, node->max_maps);
	node->maps = kmem_cache_alloc(ksm_maps_cache,
				      GFP_KERNEL | __GFP_NOFAIL);
	node->max_maps = KSM_NODE_FIRST_MAPS;
	/* And without it: the allocation that does not sleep. */
	for (i = 0; i < ARRAY_SIZE(items); i++)
		KUNIT_EXPECT_EQ(test, ksm_node_add_map(node, &items[i], NULL),
				0);
	KUNIT_EXPECT_EQ(test, node->nr_maps, 9U);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_shared, shared + 1);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_sharing, sharing + 8);
	for (i = 0; i < ARRAY_SIZE(items); i++)
		ksm_node_del_map(node, &items[i]);
	KUNIT_EXPECT_EQ(test, node->nr_maps, 0U);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_shared, shared);
	KUNIT_EXPECT_EQ(test, ksm_stats.pages_sharing, sharing);
	folio->mapping = NULL;
	ksm_node_free(node);
	folio_put(folio);
	__free_page(src);
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
		/* An order: each way round gives the opposite answer. */
		KUNIT_EXPECT_EQ(test, ksm_pages_cmp(p1, p2),
				-ksm_pages_cmp(p2, p1));
		KUNIT_EXPECT_NE(test, ksm_pages_cmp(p1, p2), 0);
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

/*
 * The sample hash sees each sampled word, down to its top bit, and no
 * other word: its changes are the ones the volatility gate may notice.
 */
static void ksm_test_page_hash(struct kunit *test)
{
	struct page *page = alloc_page(GFP_KERNEL);
	unsigned int i, bit, at;
	u64 *w;
	u32 hash;

	KUNIT_ASSERT_NOT_NULL(test, page);
	w = page_address(page);
	for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		w[i] = i * 0x9e3779b97f4a7c15ULL;
	hash = ksm_index_page_hash(page);
	for (i = 0; i < KSM_SAMPLE_WORDS; i++) {
		at = ksm_sample_at(i);
		for (bit = 0; bit < 64; bit += 21) {
			w[at] ^= 1ULL << bit;
			KUNIT_EXPECT_NE_MSG(test, ksm_index_page_hash(page), hash,
					    "sample %u bit %u", i, bit);
			w[at] ^= 1ULL << bit;
		}
		w[at] ^= 1ULL << 63;
		KUNIT_EXPECT_NE(test, ksm_index_page_hash(page), hash);
		w[at] ^= 1ULL << 63;
		/* The word after a sampled one never is one. */
		w[at + 1] ^= ~0ULL;
		KUNIT_EXPECT_EQ(test, ksm_index_page_hash(page), hash);
		w[at + 1] ^= ~0ULL;
	}
	__free_page(page);
}

static struct kunit_case ksm_test_cases[] = {
	KUNIT_CASE(ksm_test_pages_same),
	KUNIT_CASE(ksm_test_page_hash),
	KUNIT_CASE(ksm_test_item_bits),
	KUNIT_CASE(ksm_test_item_block),
	KUNIT_CASE(ksm_test_knob_parse),
	KUNIT_CASE(ksm_test_profit),
	KUNIT_CASE(ksm_test_unstable_round),
	KUNIT_CASE(ksm_test_unstable_grow),
	KUNIT_CASE(ksm_test_unstable_crafted),
	KUNIT_CASE(ksm_test_unstable_header),
	KUNIT_CASE(ksm_test_unstable_tail),
	KUNIT_CASE(ksm_test_unstable_spread),
	KUNIT_CASE(ksm_test_unstable_sparse),
	KUNIT_CASE(ksm_test_stable_family),
	KUNIT_CASE(ksm_test_stable_guess),
	KUNIT_CASE(ksm_test_stable_grow),
	KUNIT_CASE(ksm_test_chain),
	KUNIT_CASE(ksm_test_node_maps),
	KUNIT_CASE(ksm_test_domain_pack),
	KUNIT_CASE(ksm_test_domain_apart),
	{},
};

static struct kunit_suite ksm_test_suite = {
	.name = "ksm",
	.test_cases = ksm_test_cases,
};

kunit_test_suite(ksm_test_suite);

#endif /* IS_ENABLED(CONFIG_KSM_KUNIT_TEST) */
#endif /* _KSM_KUNIT_H */
