// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM content indexes.
 *
 * Pages are located by a cheap hash of a sample of their words. The hash
 * only picks a bucket and orders entries; the contents always decide, so
 * pages whose samples agree and whose other words differ (mostly-zero
 * pages with a small header, pages of one filler and a counter) are told
 * apart by their contents, never given up on.
 *
 * The stable index holds one stable node per KSM page, in a hash table of
 * red-black trees ordered by (hash, domain, full hash, contents). The full
 * hash, of every word, tells apart the pages a sample hash cannot (a
 * family of one sample hash) without reading them; it is only computed
 * where two nodes share a key. Nodes with the same
 * content form a group (the leader is in the tree, the others hang off
 * it), which happens once a KSM page reached max_page_sharing.
 *
 * The unstable index holds candidate pages seen in the current scan round,
 * chained through their tracking items in a hash table that is emptied at
 * the end of every round, and doubled within the round, a few buckets
 * moved per lookup, when it holds more than one entry per bucket. A chain
 * holds at most one item per hash value:
 * a second page with the same hash (and other contents) turns that entry
 * into a collision group, a red-black tree ordered by (full hash,
 * contents).
 *
 * Both bounds hold for any contents: a lookup compares a page with at most
 * one page per level of one tree, O(log n) full compares, and with a
 * single page in the usual case. Among pages of one sample hash the full
 * hash leaves about one compare per lookup; pages made to collide on it
 * too fall back to their contents, still one compare per level.
 *
 * Both indexes are partitioned by a domain: the NUMA node of the page when
 * merge_across_nodes is 0, combined with the memory cgroup of its mm when
 * merge_across_cgroups is 0, a single domain otherwise. Two pages only
 * ever match within one domain.
 */

#include <linux/hash.h>
#include <linux/highmem.h>
#include <linux/log2.h>
#include <linux/memory_hotplug.h>
#include <linux/random.h>
#include <linux/rbtree.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <trace/events/ksm.h>

#include "ksm_internal.h"

/* Words of a page that feed the sample hash. */
#define KSM_SAMPLE_WORDS	32
/*
 * Entries per unstable bucket at which the table doubles: a bucket is a
 * pointer, so the table costs 4 to 8 bytes per candidate page, and a
 * lookup that finds nothing walks one or two entries of its hash's chain.
 */
#define KSM_UNSTABLE_LOAD	2UL
/* Smallest table; tables grow and shrink with their entries. */
#define KSM_INDEX_MIN_BITS	8
/* Largest unstable table: its size, 1U << bits, is an unsigned int. */
#define KSM_INDEX_MAX_BITS	31
/* Old unstable buckets moved to the new table per lookup while it grows. */
#define KSM_UNSTABLE_MOVE_BUCKETS	4
/* Entries of the mapping array a new stable node gets. */
#define KSM_NODE_FIRST_MAPS	4
/* Stable buckets a sweep looks at per call (it resumes where it stopped). */
#define KSM_SWEEP_BUCKETS	256
/* Buckets of the unstable index filled this round, remembered while few. */
#define KSM_INDEX_FEW_BUCKETS	64

/**
 * struct ksm_index_group - unstable items that share a hash value
 * @head: stands for the group in the bucket chain: state %KSM_ITEM_GROUP,
 *	with the hash, round and ->chain_next of a chain entry.
 * @tree: &struct ksm_index_twig entries ordered by (full hash, contents,
 *	domain).
 * @link: in the index's list of this round's groups, freed at its end.
 */
struct ksm_index_group {
	struct ksm_item head;
	struct rb_root tree;
	struct list_head link;
};

/**
 * struct ksm_index_twig - an unstable item in a collision group
 * @rb: link in the group's tree.
 * @item: the item; its ->chain_next points back here, tagged.
 * @fhash: full hash of the item's page when it joined the group.
 */
struct ksm_index_twig {
	struct rb_node rb;
	struct ksm_item *item;
	u32 fhash;
};

/* Tags ->chain_next of an item in a group: it points to the item's twig. */
#define KSM_CHAIN_TWIG	1UL

/**
 * struct ksm_index - the stable and unstable indexes of one KSM instance
 * @ops: callbacks into the layers above.
 * @lock: the lock that serialises every change (ksm_lock when live).
 * @live: the index ksmd uses: it updates the global statistics.
 * @stable: stable buckets, each a tree of group leaders.
 * @stable_bits: log2 of the number of stable buckets.
 * @nr_leaders: nodes linked in the trees.
 * @pending: nodes waiting to be linked in a tree.
 * @sweep_next: the stable bucket the next sweep slice starts at.
 * @unstable: unstable buckets, chains of items and group heads.
 * @unstable_bits: log2 of the number of unstable buckets.
 * @unstable_old: while the unstable table grows, the table before, whose
 *	buckets from @unstable_moved on still hold their entries; NULL else.
 * @unstable_old_bits: log2 of the number of buckets of @unstable_old.
 * @unstable_moved: buckets of @unstable_old already moved to @unstable.
 * @nr_chained: entries (items and group heads) in the chains this round.
 * @grow_at: @nr_chained at which the unstable table grows next.
 * @nr_unstable: items inserted in this round, which sizes the next one.
 * @groups: this round's collision groups.
 * @round: the current round; starts at 1 so that a zeroed item never
 *	belongs to it.
 * @filled: the buckets filled this round, while there are few of them.
 * @nr_filled: how many buckets were filled this round, counted up to
 *	one beyond %KSM_INDEX_FEW_BUCKETS.
 * @compares: full compares the index made, for its tests.
 * @bucket_key: odd multiplier, random per index, that picks buckets.
 * @fhash_seed: random per index, starts the full hash.
 *
 * Everything is changed with @lock held.
 */
struct ksm_index {
	const struct ksm_index_ops *ops;
	struct mutex *lock;	/* serialises every change */
	bool live;
	struct rb_root *stable;
	unsigned int stable_bits;
	unsigned long nr_leaders;
	struct list_head pending;
	unsigned int sweep_next;
	struct ksm_item **unstable;
	unsigned int unstable_bits;
	struct ksm_item **unstable_old;
	unsigned int unstable_old_bits;
	unsigned int unstable_moved;
	unsigned long nr_chained;
	unsigned long grow_at;
	unsigned long nr_unstable;
	struct list_head groups;
	u32 round;
	unsigned int filled[KSM_INDEX_FEW_BUCKETS];
	unsigned int nr_filled;
	unsigned long compares;
	u32 bucket_key;
	u64 fhash_seed;
};

static struct kmem_cache *ksm_node_cache;
/* Mapping arrays of KSM_NODE_FIRST_MAPS entries, the size every node starts with. */
static struct kmem_cache *ksm_maps_cache;
static struct kmem_cache *ksm_group_cache;
static struct kmem_cache *ksm_twig_cache;
static struct ksm_index ksm_live_index;
static unsigned long ksm_nr_nodes;
static unsigned long ksm_last_sweep;

/*
 * Group and twig allocations may fail quietly: the index then chains the
 * item like any other, which costs compares, never a merge. They never
 * dip into reserves nor wake the OOM killer for an optimisation.
 */
#define KSM_INDEX_GFP	(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN)

static void ksm_index_assert_held(struct ksm_index *idx)
{
	lockdep_assert_held(idx->lock);
}

/*
 * Nodes in the live stable index (in a tree, a group or pending), so that
 * ksmd skips the stable lookup of every page until the first KSM page.
 */
unsigned long ksm_index_live_nodes;

static void ksm_stable_count(struct ksm_index *idx, long delta)
{
	if (idx->live)
		ksm_index_live_nodes += delta;
}

static void ksm_index_count_unshared(struct ksm_index *idx, long delta)
{
	if (idx->live)
		ksm_stat_add(pages_unshared, delta);
}

/* Words of the page between two sampled words. */
#define KSM_SAMPLE_STRIDE	(PAGE_SIZE / sizeof(u64) / KSM_SAMPLE_WORDS)
/* Odd multipliers (MurmurHash3's finaliser's); any odd one is a bijection. */
#define KSM_HASH_MUL		0xff51afd7ed558ccdULL
#define KSM_HASH_FOLD_MUL	0xc4ceb9fe1a85ec53ULL
/* ksm_index_page_hash() takes the sample in four blocks of eight. */
static_assert(KSM_SAMPLE_WORDS == 32);

/* Sample @i: a word of the @i-th block, at a place that varies by block. */
static __always_inline unsigned int ksm_sample_at(unsigned int i)
{
	return i * KSM_SAMPLE_STRIDE + i * 7 % KSM_SAMPLE_STRIDE;
}

static inline u64 ksm_hash_mix(u64 acc, u64 word)
{
	return (acc ^ word) * KSM_HASH_MUL;
}

/* Mix samples @i to @i + 7, @i a constant: unrolled, fixed offsets. */
static __always_inline u64 ksm_hash_eight(u64 acc, const u64 *words,
					  unsigned int i)
{
	acc = ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i)]));
	acc = ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i + 1)]));
	acc = ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i + 2)]));
	acc = ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i + 3)]));
	acc = ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i + 4)]));
	acc = ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i + 5)]));
	acc = ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i + 6)]));
	return ksm_hash_mix(acc, READ_ONCE(words[ksm_sample_at(i + 7)]));
}

/**
 * ksm_index_page_hash - hash a sample of the words of a page
 * @page: the page, which may change under us.
 *
 * The sample is spread over the whole page and always includes its first
 * word, where small changes are common. It detects changes and spreads
 * pages over buckets; it never decides that two pages are the same.
 *
 * ksmd hashes every page it looks at, so each word costs one load, one
 * xor and one multiply, unrolled. Every step is a bijection of the
 * accumulator for a given word, so a change in any one sampled word
 * always changes the 64 bits; the multiplications carry each bit only
 * upwards, and the final fold brings the high half, where every word
 * counts, down again before the top 32 bits are taken.
 *
 * Return: the sample hash.
 */
u32 ksm_index_page_hash(struct page *page)
{
	const u64 *words = kmap_local_page(page);
	u64 acc = 0x9e3779b97f4a7c15ULL;

	acc = ksm_hash_eight(acc, words, 0);
	acc = ksm_hash_eight(acc, words, 8);
	acc = ksm_hash_eight(acc, words, 16);
	acc = ksm_hash_eight(acc, words, 24);
	acc ^= acc >> 32;
	kunmap_local(words);
	return (u32)((acc * KSM_HASH_FOLD_MUL) >> 32);
}

/*
 * Hash every word of @page, in four lanes that take every fourth word so
 * that their multiplies overlap. As in the sample hash, each step is a
 * bijection of its lane for a given word, so two pages that differ in one
 * word always differ in the 64-bit result; the top 32 bits are kept. The
 * random seed makes collisions a matter of chance, and a collision costs
 * only a compare: the contents still order the entries that share it.
 */
static u32 ksm_page_full_hash(const struct ksm_index *idx, struct page *page)
{
	const u64 *words = kmap_local_page(page);
	u64 a = idx->fhash_seed, b = ~a, c = a * KSM_HASH_MUL, d = ~c;
	unsigned int i;

	for (i = 0; i < PAGE_SIZE / sizeof(u64); i += 4) {
		a = ksm_hash_mix(a, READ_ONCE(words[i]));
		b = ksm_hash_mix(b, READ_ONCE(words[i + 1]));
		c = ksm_hash_mix(c, READ_ONCE(words[i + 2]));
		d = ksm_hash_mix(d, READ_ONCE(words[i + 3]));
	}
	kunmap_local(words);
	a ^= rol64(b, 16) ^ rol64(c, 32) ^ rol64(d, 48);
	a ^= a >> 32;
	return (u32)((a * KSM_HASH_FOLD_MUL) >> 32);
}

/*
 * The full hash of the page a lookup or a link is about: computed the
 * first time an entry of its key is ordered by full hash, then reused.
 * @force: a link, which gives a node the full hash of every node of its
 * key that it meets (see ksm_stable_cmp()).
 */
struct ksm_fhash {
	u32 val;
	bool known;
	bool force;
};

static u32 ksm_fhash_of(const struct ksm_index *idx, struct ksm_fhash *fh,
			struct page *page)
{
	if (!fh->known) {
		fh->val = ksm_page_full_hash(idx, page);
		fh->known = true;
	}
	return fh->val;
}

/* The bits in which 8 words at @a and 8 at @b differ, or 0. */
static __always_inline u64 ksm_words_diff8(const u64 *a, const u64 *b)
{
	return (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) |
	       (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5]) |
	       (a[6] ^ b[6]) | (a[7] ^ b[7]);
}

/*
 * Index of the first block of 32 words that differs, or PAGE_SIZE / 8.
 * Identical pages are the costly case (every merge compares twice), and
 * blocks of 32 words spend the least on the loop around them.
 */
static unsigned int ksm_pages_first_diff(const u64 *a, const u64 *b)
{
	unsigned int i;

	for (i = 0; i < PAGE_SIZE / sizeof(u64); i += 32)
		if (ksm_words_diff8(a + i, b + i) |
		    ksm_words_diff8(a + i + 8, b + i + 8) |
		    ksm_words_diff8(a + i + 16, b + i + 16) |
		    ksm_words_diff8(a + i + 24, b + i + 24))
			break;
	return i;
}

/**
 * ksm_pages_cmp - order two pages by their contents
 * @page1: one page.
 * @page2: the other.
 *
 * Compares four cache lines of words per step (the generic memcmp() goes
 * byte by byte, and compares are most of the time of a merge). The order
 * is by native words: any total order serves the index.
 *
 * Return: 0 if every byte is the same, else -1 or 1.
 */
int ksm_pages_cmp(struct page *page1, struct page *page2)
{
	const u64 *a = kmap_local_page(page1);
	const u64 *b = kmap_local_page(page2);
	unsigned int i = ksm_pages_first_diff(a, b);
	int ret = 0;

	for (; i < PAGE_SIZE / sizeof(u64); i++) {
		if (a[i] != b[i]) {
			ret = a[i] < b[i] ? -1 : 1;
			break;
		}
	}
	kunmap_local(b);
	kunmap_local(a);
	ksm_count(compares);
	if (ret)
		ksm_count(compare_misses);
	return ret;
}

/**
 * ksm_pages_same - may two pages be merged: are their contents the same?
 * @page1: one page.
 * @page2: the other.
 *
 * Architectures that keep more than the bytes of a page (arm64 memory
 * tags) say so through their memcmp_pages(), which then has the last word.
 *
 * Return: true if every byte is the same and the architecture agrees.
 */
bool ksm_pages_same(struct page *page1, struct page *page2)
{
	if (ksm_pages_cmp(page1, page2))
		return false;
	if (IS_ENABLED(CONFIG_ARCH_HAS_MEMCMP_PAGES))
		return !memcmp_pages(page1, page2);
	return true;
}

/**
 * ksm_index_domain - the index domain a folio belongs to
 * @folio: the folio.
 *
 * Return: its NUMA node if merge_across_nodes is 0, else 0.
 */
int ksm_index_domain(struct folio *folio)
{
	if (READ_ONCE(ksm_tun.merge_across_nodes))
		return 0;
	return folio_nid(folio);
}

/**
 * ksm_item_domain - the index domain of the page an item tracks
 * @item: the item; its owner decides the memory cgroup part.
 * @folio: the folio of its page, which decides the NUMA part.
 *
 * Return: the domain, made by ksm_domain_make().
 */
int ksm_item_domain(const struct ksm_item *item, struct folio *folio)
{
	return ksm_domain_make(ksm_cgroup_domain(ksm_item_owner(item)),
			       ksm_index_domain(folio));
}

/**
 * folio_ksm_node - the stable node of a KSM folio
 * @folio: any folio.
 *
 * Return: the stable node, or NULL if @folio is not a KSM folio.
 */
struct ksm_stable_node *folio_ksm_node(struct folio *folio)
{
	unsigned long mapping = (unsigned long)READ_ONCE(folio->mapping);

	if ((mapping & PAGE_MAPPING_FLAGS) != PAGE_MAPPING_KSM)
		return NULL;
	return (struct ksm_stable_node *)(mapping & ~PAGE_MAPPING_FLAGS);
}

static void *ksm_node_mapping(struct ksm_stable_node *node)
{
	return (void *)((unsigned long)node | PAGE_MAPPING_KSM);
}

/**
 * ksm_node_get_folio - take a reference on the KSM folio of a node
 * @node: the stable node.
 *
 * The folio may have been freed (the node is then stale) or be in the
 * middle of a migration, which moves @node->kpfn under us.
 *
 * Return: the folio with a reference held, NULL if the node is stale, or
 * ERR_PTR(-EBUSY) if the folio cannot be pinned right now.
 */
struct folio *ksm_node_get_folio(struct ksm_stable_node *node)
{
	void *expected = ksm_node_mapping(node);
	struct folio *folio;
	unsigned long kpfn;
	struct page *page;

	for (;;) {
		kpfn = READ_ONCE(node->kpfn);
		page = pfn_to_online_page(kpfn);
		if (page) {
			folio = page_folio(page);
			if (READ_ONCE(folio->mapping) == expected) {
				if (!folio_try_get(folio))
					return ERR_PTR(-EBUSY);
				if (page_folio(page) == folio &&
				    READ_ONCE(folio->mapping) == expected)
					return folio;
				folio_put(folio);
			}
		}
		/* Pairs with the barrier in folio_migrate_ksm(). */
		smp_rmb();
		if (READ_ONCE(node->kpfn) == kpfn)
			return NULL;
	}
}

static void ksm_node_free_maps(struct ksm_map *maps, unsigned int max)
{
	if (max == KSM_NODE_FIRST_MAPS)
		kmem_cache_free(ksm_maps_cache, maps);
	else
		kvfree(maps);
}

/**
 * ksm_node_alloc - allocate an empty stable node
 *
 * ksmd calls it with no folio locked. A failure only postpones a merge,
 * so it neither retries hard nor warns, and leaves reserves alone.
 *
 * Return: the node, or NULL when out of memory.
 */
struct ksm_stable_node *ksm_node_alloc(void)
{
	struct ksm_stable_node *node;

	lockdep_assert_held(&ksm_lock);
	node = kmem_cache_zalloc(ksm_node_cache, KSM_INDEX_GFP);
	if (!node)
		return NULL;
	INIT_LIST_HEAD(&node->group);
	RB_CLEAR_NODE(&node->rb);
	node->max_maps = KSM_NODE_FIRST_MAPS;
	node->maps = kmem_cache_alloc(ksm_maps_cache, KSM_INDEX_GFP);
	if (!node->maps) {
		kmem_cache_free(ksm_node_cache, node);
		return NULL;
	}
	ksm_nr_nodes++;
	return node;
}

/**
 * ksm_node_free - free a stable node that is out of the index and unused
 * @node: the node.
 */
void ksm_node_free(struct ksm_stable_node *node)
{
	lockdep_assert_held(&ksm_lock);
	VM_WARN_ON_ONCE(node->indexed || node->nr_maps);
	trace_ksm_remove_ksm_page(node->kpfn);
	ksm_nr_nodes--;
	ksm_node_free_maps(node->maps, node->max_maps);
	kmem_cache_free(ksm_node_cache, node);
}

/**
 * ksm_node_has_room - may one more mapping be merged into this node?
 * @node: the node.
 *
 * Return: true if it has fewer than max_page_sharing mappings.
 */
bool ksm_node_has_room(const struct ksm_stable_node *node)
{
	return node->nr_maps < READ_ONCE(ksm_tun.max_page_sharing);
}

/*
 * One spare mapping array, allocated by ksm_node_prepare() before any folio
 * is locked and consumed by ksm_node_reserve() under the KSM folio lock, so
 * that growing a node's array never waits for reclaim with a folio locked
 * (reclaim and migration would then wait on us). ksm_lock guards both.
 */
static struct ksm_map *ksm_spare_maps;
static unsigned int ksm_spare_max;

/**
 * ksm_node_prepare - allocate what ksm_node_reserve() will need
 * @node: the node one more mapping may be added to.
 *
 * Called with no folio locked. Failing is harmless: ksm_node_reserve() then
 * tries an allocation that does not sleep, and the merge waits otherwise.
 */
void ksm_node_prepare(const struct ksm_stable_node *node)
{
	unsigned int want;

	lockdep_assert_held(&ksm_lock);
	if (node->nr_maps < node->max_maps)
		return;
	want = node->max_maps * 2;
	if (ksm_spare_max == want)
		return;
	kvfree(ksm_spare_maps);
	ksm_spare_maps = kvmalloc_array(want, sizeof(*ksm_spare_maps),
					KSM_INDEX_GFP);
	ksm_spare_max = ksm_spare_maps ? want : 0;
}

/**
 * ksm_node_reserve - make room in the mapping array for one more item
 * @node: the node.
 *
 * Callers may hold the KSM folio lock: the new array is the one
 * ksm_node_prepare() set aside, or one allocated without sleeping; the
 * merge that needed it is tried again later if there is neither.
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_node_reserve(struct ksm_stable_node *node)
{
	struct ksm_map *maps;
	unsigned int max;

	lockdep_assert_held(&ksm_lock);
	if (node->nr_maps < node->max_maps)
		return 0;
	max = node->max_maps * 2;
	if (ksm_spare_max == max) {
		maps = ksm_spare_maps;
		ksm_spare_maps = NULL;
		ksm_spare_max = 0;
	} else {
		maps = kmalloc_array(max, sizeof(*maps),
				     GFP_NOWAIT | __GFP_NOWARN);
		if (!maps)
			return -ENOMEM;
	}
	memcpy(maps, node->maps, node->nr_maps * sizeof(*maps));
	ksm_node_free_maps(node->maps, node->max_maps);
	node->maps = maps;
	node->max_maps = max;
	return 0;
}

/**
 * ksm_node_add_map - list one more mapping of the KSM page of a node
 * @node: the node; its KSM folio is locked by the caller.
 * @item: the item of the mapping.
 * @anon_vma: the anon_vma of the mapping; the node keeps the caller's
 *	reference on success.
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_node_add_map(struct ksm_stable_node *node, struct ksm_item *item,
		     struct anon_vma *anon_vma)
{
	int err;

	lockdep_assert_held(&ksm_lock);
	err = ksm_node_reserve(node);
	if (err)
		return err;
	node->maps[node->nr_maps].item = item;
	node->maps[node->nr_maps++].anon_vma = anon_vma;
	if (node->nr_maps == 1)
		ksm_stat_add(pages_shared, 1);
	else
		ksm_stat_add(pages_sharing, 1);
	return 0;
}

/**
 * ksm_node_del_map - forget one mapping of the KSM page of a node
 * @node: the node; its KSM folio, if still there, is locked by the caller.
 * @item: the item of the mapping.
 *
 * Return: the anon_vma of the mapping, whose reference passes to the
 * caller; NULL if @item was not listed.
 */
struct anon_vma *ksm_node_del_map(struct ksm_stable_node *node,
				  struct ksm_item *item)
{
	struct anon_vma *anon_vma;
	unsigned int i;

	lockdep_assert_held(&ksm_lock);
	for (i = 0; i < node->nr_maps; i++) {
		if (node->maps[i].item != item)
			continue;
		anon_vma = node->maps[i].anon_vma;
		node->maps[i] = node->maps[--node->nr_maps];
		if (node->nr_maps)
			ksm_stat_add(pages_sharing, -1);
		else
			ksm_stat_add(pages_shared, -1);
		return anon_vma;
	}
	VM_WARN_ON_ONCE(1);
	return NULL;
}

/*
 * Bucket @hash goes to in a table of 1 << @bits buckets: the top @bits of
 * its product with the index's random odd key (multiply-shift). The sample
 * hash is public, anyone can make pages of chosen hash values, but without
 * the key no set of distinct hash values can be chosen to share a bucket:
 * two of them do with probability at most 2 / 2^@bits. Equal hash values
 * share a bucket whatever the key; their contents order them in a tree.
 * Doubling the table adds one bit of the same product, so bucket i splits
 * into buckets 2i and 2i + 1.
 */
static inline unsigned int ksm_bucket_nr(const struct ksm_index *idx,
					 u32 hash, unsigned int bits)
{
	return (u32)(hash * idx->bucket_key) >> (32 - bits);
}

/* ---- The stable index ---- */

static struct rb_root *ksm_stable_bucket(struct ksm_index *idx, u32 hash)
{
	return &idx->stable[ksm_bucket_nr(idx, hash, idx->stable_bits)];
}

/* Order of a key against a node, by hash, then domain. */
static int ksm_stable_key_cmp(struct ksm_index_key key,
			      const struct ksm_stable_node *node)
{
	if (key.hash != node->hash)
		return key.hash < node->hash ? -1 : 1;
	if (key.domain != node->domain)
		return key.domain < node->domain ? -1 : 1;
	return 0;
}

static unsigned int ksm_group_size(struct ksm_stable_node *node)
{
	return list_count_nodes(&node->group) + 1;
}

static void ksm_group_add(struct ksm_stable_node *leader,
			  struct ksm_stable_node *node)
{
	unsigned int size = ksm_group_size(leader);

	list_add_tail(&node->group, &leader->group);
	if (size == 1) {
		ksm_stat_add(chains, 1);
		ksm_stat_add(dups, 2);
	} else {
		ksm_stat_add(dups, 1);
	}
}

static void ksm_group_del(struct ksm_stable_node *node, unsigned int size)
{
	list_del_init(&node->group);
	if (size == 2) {
		ksm_stat_add(chains, -1);
		ksm_stat_add(dups, -2);
	} else if (size > 2) {
		ksm_stat_add(dups, -1);
	}
}

/* Take a node out of its tree; the first member of its group leads. */
static void ksm_stable_unlink(struct ksm_index *idx,
			      struct ksm_stable_node *node)
{
	struct rb_root *root = ksm_stable_bucket(idx, node->hash);
	unsigned int size = ksm_group_size(node);
	struct ksm_stable_node *next;

	if (size == 1) {
		rb_erase(&node->rb, root);
		idx->nr_leaders--;
	} else {
		next = list_first_entry(&node->group, struct ksm_stable_node,
					group);
		/*
		 * Same contents, same full hash: a member joined without one
		 * (ksm_stable_link() stops at the leader), and a leader among
		 * nodes of its key must have it (see ksm_stable_cmp()).
		 */
		next->fhash = node->fhash;
		next->fhash_known = node->fhash_known;
		rb_replace_node(&node->rb, &next->rb, root);
	}
	RB_CLEAR_NODE(&node->rb);
	ksm_group_del(node, size);
}

static void ksm_stable_erase(struct ksm_index *idx,
			     struct ksm_stable_node *node)
{
	ksm_index_assert_held(idx);
	if (!node->indexed)
		return;
	if (node->pending)
		list_del_init(&node->group);
	else if (!RB_EMPTY_NODE(&node->rb))
		ksm_stable_unlink(idx, node);
	else
		ksm_group_del(node, ksm_group_size(node));
	node->pending = false;
	node->indexed = false;
	ksm_stable_count(idx, -1);
}

/**
 * ksm_index_stable_erase - take a node out of the stable index
 * @node: an indexed node. If it leads a group, the next member leads.
 */
void ksm_index_stable_erase(struct ksm_stable_node *node)
{
	ksm_stable_erase(&ksm_live_index, node);
}

/* Erase a node whose KSM page is gone, and free it if nothing maps it. */
static void ksm_stable_drop_stale(struct ksm_index *idx,
				  struct ksm_stable_node *node)
{
	ksm_stable_erase(idx, node);
	if (!node->nr_maps)
		ksm_node_free(node);
}

/*
 * Order @page against the KSM page of @node, which has the key of @page:
 * by full hash first where @node has one or @fh does, then by contents.
 * Returns the order, with *@kfolio set to the folio (referenced) when they
 * are the same, or -EBUSY / -ESTALE / -EXDEV in *@err when the node cannot
 * be compared: frozen, stale, or out of its domain (the page moved; it is
 * reported and never matched).
 *
 * The order of a tree is (key, full hash, contents), a function of the
 * contents alone, whether or not a node keeps its full hash yet: a node
 * gets it when a link with @fh->force meets it, so of two nodes of one
 * key, both have it. A node without one is the only node of its key, and
 * comparing its contents alone finds it or proves it absent.
 */
static int ksm_stable_cmp(struct ksm_index *idx, struct ksm_stable_node *node,
			  struct page *page, struct ksm_fhash *fh,
			  struct folio **kfolio, int *err)
{
	struct folio *folio;
	u32 val;
	int ret;

	*kfolio = NULL;
	*err = 0;
	/* Told apart without its page: frozen or not, nothing to read. */
	if (node->fhash_known) {
		val = ksm_fhash_of(idx, fh, page);
		if (val != node->fhash)
			return val < node->fhash ? -1 : 1;
	}
	folio = ksm_node_get_folio(node);
	if (IS_ERR(folio)) {
		*err = -EBUSY;
		return 0;
	}
	if (!folio) {
		*err = -ESTALE;
		return 0;
	}
	if (!node->fhash_known && (fh->known || fh->force)) {
		node->fhash = ksm_page_full_hash(idx, folio_page(folio, 0));
		node->fhash_known = true;
		val = ksm_fhash_of(idx, fh, page);
		if (val != node->fhash) {
			folio_put(folio);
			return val < node->fhash ? -1 : 1;
		}
	}
	idx->compares++;
	ret = ksm_pages_cmp(page, folio_page(folio, 0));
	if (!ret && ksm_index_domain(folio) != ksm_domain_node(node->domain)) {
		idx->ops->node_moved();
		*err = -EXDEV;
	} else if (!ret && IS_ENABLED(CONFIG_ARCH_HAS_MEMCMP_PAGES) &&
		   memcmp_pages(page, folio_page(folio, 0))) {
		/* The same bytes, yet not mergeable: order it after. */
		ret = 1;
	}
	if (!ret && !*err)
		*kfolio = folio;
	else
		folio_put(folio);
	return ret;
}

/* Double the stable buckets: each splits in two, its order kept. */
static void ksm_stable_grow(struct ksm_index *idx)
{
	unsigned int bits = idx->stable_bits + 1, i;
	struct rb_root *table, *root;
	struct ksm_stable_node *node;
	struct rb_node *rb, **link;

	table = kvcalloc(1U << bits, sizeof(*table), KSM_INDEX_GFP);
	if (!table)
		return;
	for (i = 0; i < (1U << idx->stable_bits); i++) {
		while ((rb = rb_first(&idx->stable[i]))) {
			rb_erase(rb, &idx->stable[i]);
			node = rb_entry(rb, struct ksm_stable_node, rb);
			root = &table[ksm_bucket_nr(idx, node->hash, bits)];
			/* In order: every node goes after the ones before. */
			link = &root->rb_node;
			rb = NULL;
			while (*link) {
				rb = *link;
				link = &rb->rb_right;
			}
			rb_link_node(&node->rb, rb, link);
			rb_insert_color(&node->rb, root);
		}
		cond_resched();
	}
	kvfree(idx->stable);
	idx->stable = table;
	idx->stable_bits = bits;
}

/* How far ksm_node_spare() looks along a group for its leader. */
#define KSM_GROUP_LEADER_STEPS	8

/**
 * ksm_node_spare - is a node a spare copy of its group's content?
 * @node: the node of a merged mapping.
 *
 * A group needs more than one KSM page only while its leader is full. A
 * member whose leader has room is a spare: a KSM page made when the leader
 * was full, or could not be compared for a moment, and that nobody needs
 * any more. Its mappings are better unshared, to merge into the leader at
 * their next look. The leader is looked for a few steps along the group
 * only: a group that long has a full leader.
 *
 * Return: true if @node is a member, not the leader, of a group whose
 * leader has room.
 */
bool ksm_node_spare(const struct ksm_stable_node *node)
{
	unsigned int steps = KSM_GROUP_LEADER_STEPS;
	const struct ksm_stable_node *other;

	lockdep_assert_held(&ksm_lock);
	if (!READ_ONCE(ksm_stats.chains) || !node->indexed || node->pending ||
	    list_empty(&node->group) || !RB_EMPTY_NODE(&node->rb))
		return false;
	list_for_each_entry(other, &node->group, group) {
		if (!RB_EMPTY_NODE(&other->rb))
			return ksm_node_has_room(other);
		if (!--steps)
			break;
	}
	return false;
}

/* Within a group of identical pages, find a node that has room. */
static struct ksm_stable_node *ksm_group_pick(struct ksm_index *idx,
					      struct ksm_stable_node *leader,
					      struct folio **kfolio)
{
	struct ksm_stable_node *node, *tmp;
	struct folio *folio;
	bool busy = false;

	if (ksm_node_has_room(leader))
		return leader;
	list_for_each_entry_safe(node, tmp, &leader->group, group) {
		if (!ksm_node_has_room(node))
			continue;
		folio = ksm_node_get_folio(node);
		if (IS_ERR(folio)) {
			busy = true;
			continue;
		}
		if (!folio) {
			ksm_stable_drop_stale(idx, node);
			continue;
		}
		folio_put(*kfolio);
		*kfolio = folio;
		return node;
	}
	folio_put(*kfolio);
	*kfolio = NULL;
	/* One with room could not be pinned: no new KSM page meanwhile. */
	return busy ? ERR_PTR(-EBUSY) : NULL;
}

/* Look for an identical node among the few that wait for their tree. */
static struct ksm_stable_node *
ksm_stable_find_pending(struct ksm_index *idx, struct ksm_index_key key,
			struct page *page, struct folio **kfolio)
{
	struct ksm_stable_node *node, *tmp;
	struct ksm_fhash fh = {};
	bool busy = false;
	int err;

	list_for_each_entry_safe(node, tmp, &idx->pending, group) {
		if (ksm_stable_key_cmp(key, node))
			continue;
		if (ksm_stable_cmp(idx, node, page, &fh, kfolio, &err) ||
		    err) {
			if (err == -ESTALE)
				ksm_stable_drop_stale(idx, node);
			busy |= err == -EBUSY;
			continue;
		}
		if (ksm_node_has_room(node))
			return node;
		folio_put(*kfolio);
	}
	*kfolio = NULL;
	/* As in the trees: a frozen twin means no new KSM page for now. */
	return busy ? ERR_PTR(-EBUSY) : NULL;
}

static struct ksm_stable_node *ksm_stable_find(struct ksm_index *idx,
					       struct ksm_index_key key,
					       struct page *page,
					       struct folio **kfolio)
{
	struct ksm_stable_node *node;
	struct ksm_fhash fh = {};
	struct rb_node *rb;
	int ret, err;

	ksm_index_assert_held(idx);
	/* Until the first KSM page, every page is looked up for nothing. */
	if (!idx->nr_leaders && list_empty(&idx->pending)) {
		*kfolio = NULL;
		return NULL;
	}
	/* Grown here, where no folio lock is held, rather than on insert. */
	if (idx->nr_leaders >= (2UL << idx->stable_bits))
		ksm_stable_grow(idx);
restart:
	rb = ksm_stable_bucket(idx, key.hash)->rb_node;
	while (rb) {
		node = rb_entry(rb, struct ksm_stable_node, rb);
		ret = ksm_stable_key_cmp(key, node);
		if (!ret) {
			ret = ksm_stable_cmp(idx, node, page, &fh, kfolio,
					     &err);
			if (err == -ESTALE) {
				ksm_stable_drop_stale(idx, node);
				goto restart;
			}
			/* Without its contents the path is lost: come back. */
			if (err == -EBUSY)
				return ERR_PTR(-EBUSY);
			if (err == -EXDEV)
				break;
			if (!ret)
				return ksm_group_pick(idx, node, kfolio);
		}
		rb = ret < 0 ? rb->rb_left : rb->rb_right;
	}
	if (list_empty(&idx->pending)) {
		*kfolio = NULL;
		return NULL;
	}
	return ksm_stable_find_pending(idx, key, page, kfolio);
}

/**
 * ksm_index_stable_find - find a KSM page with the contents of a page
 * @key: hash and domain of @page.
 * @page: the page to look for.
 * @kfolio: set to the KSM folio found, with a reference held.
 *
 * Return: the node of a KSM page identical to @page that can take one
 * more mapping; NULL if there is none; ERR_PTR(-EBUSY) if a KSM page on
 * the way could not be pinned (migration or reclaim froze it), when the
 * caller should look again later rather than make a second KSM page.
 */
struct ksm_stable_node *ksm_index_stable_find(struct ksm_index_key key,
					      struct page *page,
					      struct folio **kfolio)
{
	return ksm_stable_find(&ksm_live_index, key, page, kfolio);
}

/* Is @rb the tree link of a node with @key? */
static bool ksm_stable_has_key(struct ksm_index_key key, struct rb_node *rb)
{
	return rb && !ksm_stable_key_cmp(key, rb_entry(rb,
						       struct ksm_stable_node,
						       rb));
}

/*
 * The node a lookup of @key most likely ends at, found by its key alone:
 * the only node with @key in its tree, with no group, with room, and never
 * guessed wrong. NULL if there is none or its folio cannot be had now.
 */
static struct ksm_stable_node *ksm_stable_guess(struct ksm_index *idx,
						struct ksm_index_key key,
						struct folio **kfolio)
{
	struct ksm_stable_node *node = NULL;
	struct folio *folio;
	struct rb_node *rb;
	int ret;

	ksm_index_assert_held(idx);
	*kfolio = NULL;
	if (!idx->nr_leaders)
		return NULL;
	rb = ksm_stable_bucket(idx, key.hash)->rb_node;
	while (rb) {
		node = rb_entry(rb, struct ksm_stable_node, rb);
		ret = ksm_stable_key_cmp(key, node);
		if (!ret)
			break;
		rb = ret < 0 ? rb->rb_left : rb->rb_right;
	}
	if (!rb || node->guessed_wrong || !list_empty(&node->group) ||
	    !ksm_node_has_room(node))
		return NULL;
	/* Nodes with the same key are next to each other in the order. */
	if (ksm_stable_has_key(key, rb_prev(rb)) ||
	    ksm_stable_has_key(key, rb_next(rb)))
		return NULL;
	folio = ksm_node_get_folio(node);
	if (IS_ERR_OR_NULL(folio))
		return NULL;
	/* A page that moved out of its domain is for the full lookup. */
	if (ksm_index_domain(folio) != ksm_domain_node(node->domain)) {
		folio_put(folio);
		return NULL;
	}
	*kfolio = folio;
	return node;
}

/**
 * ksm_index_stable_guess - a KSM page a page is likely identical to
 * @key: hash and domain of the page.
 * @kfolio: set to the KSM folio of the node returned, referenced.
 *
 * When exactly one KSM page has the page's sample hash in its domain, the
 * page is most likely its twin; nothing has been compared. The caller
 * merges into it only after comparing the write-protected page with it in
 * full, as every merge does, and on a difference calls
 * ksm_index_stable_guess_wrong() and does the full lookup: a guess saves
 * a compare and never stands in for one.
 *
 * Return: the node, or NULL (then only the full lookup can tell).
 */
struct ksm_stable_node *ksm_index_stable_guess(struct ksm_index_key key,
					       struct folio **kfolio)
{
	return ksm_stable_guess(&ksm_live_index, key, kfolio);
}

/**
 * ksm_index_stable_guess_wrong - a guessed node held other contents
 * @node: the node ksm_index_stable_guess() returned.
 *
 * Pages of its hash with other contents exist: lookups compare before
 * merging into it from now on, so they do not write-protect in vain.
 */
void ksm_index_stable_guess_wrong(struct ksm_stable_node *node)
{
	ksm_index_assert_held(&ksm_live_index);
	node->guessed_wrong = true;
}

/*
 * Link @node in its tree, or into the group of an identical node. Returns
 * false if a node on the way could not be compared: @node then waits.
 */
static bool ksm_stable_link(struct ksm_index *idx,
			    struct ksm_stable_node *node, struct page *kpage)
{
	struct ksm_index_key key = { .hash = node->hash, .domain = node->domain };
	struct ksm_fhash fh = { .force = true };
	struct rb_node **link, *parent;
	struct ksm_stable_node *other;
	struct rb_root *root;
	struct folio *folio;
	int ret, err;

restart:
	root = ksm_stable_bucket(idx, key.hash);
	link = &root->rb_node;
	parent = NULL;
	while (*link) {
		parent = *link;
		other = rb_entry(parent, struct ksm_stable_node, rb);
		ret = ksm_stable_key_cmp(key, other);
		if (!ret) {
			ret = ksm_stable_cmp(idx, other, kpage, &fh, &folio,
					     &err);
			if (err == -ESTALE) {
				ksm_stable_drop_stale(idx, other);
				goto restart;
			}
			if (err == -EBUSY || err == -EXDEV)
				return false;
			if (!ret) {
				folio_put(folio);
				ksm_group_add(other, node);
				return true;
			}
		}
		link = ret < 0 ? &parent->rb_left : &parent->rb_right;
	}
	/* Met a node of its key: both are ordered by full hash now. */
	if (fh.known) {
		node->fhash = fh.val;
		node->fhash_known = true;
	}
	rb_link_node(&node->rb, parent, link);
	rb_insert_color(&node->rb, root);
	idx->nr_leaders++;
	return true;
}

static void ksm_stable_insert(struct ksm_index *idx,
			      struct ksm_stable_node *node, struct folio *kfolio)
{
	ksm_index_assert_held(idx);
	if (node->indexed)
		return;
	node->indexed = true;
	ksm_stable_count(idx, 1);
	if (ksm_stable_link(idx, node, folio_page(kfolio, 0)))
		return;
	node->pending = true;
	list_add_tail(&node->group, &idx->pending);
}

/**
 * ksm_index_stable_insert - add a node to the stable index
 * @node: a node not in the index, with hash and domain set.
 * @kfolio: its KSM folio, referenced by the caller.
 *
 * A node identical to an indexed one joins that one's group. A node whose
 * place cannot be found now waits on a short list that lookups also see,
 * and takes its place at a later sweep.
 */
void ksm_index_stable_insert(struct ksm_stable_node *node,
			     struct folio *kfolio)
{
	ksm_stable_insert(&ksm_live_index, node, kfolio);
}

/* Try again to place the nodes that wait. */
static void ksm_stable_place_pending(struct ksm_index *idx)
{
	struct ksm_stable_node *node, *tmp;
	struct folio *kfolio;

	list_for_each_entry_safe(node, tmp, &idx->pending, group) {
		kfolio = ksm_node_get_folio(node);
		if (IS_ERR(kfolio))
			continue;
		list_del_init(&node->group);
		node->pending = false;
		node->indexed = false;
		ksm_stable_count(idx, -1);
		if (!kfolio) {
			if (!node->nr_maps)
				ksm_node_free(node);
			continue;
		}
		ksm_stable_insert(idx, node, kfolio);
		folio_put(kfolio);
	}
}

/* Call @fn on the nodes of one stable bucket: leaders after their groups. */
static void ksm_stable_walk_bucket(struct ksm_index *idx, unsigned int nr,
				   void (*fn)(struct ksm_stable_node *node,
					      void *arg),
				   void *arg)
{
	struct ksm_stable_node *leader, *node, *tmp;
	struct rb_node *rb, *next;

	for (rb = rb_first(&idx->stable[nr]); rb; rb = next) {
		next = rb_next(rb);
		leader = rb_entry(rb, struct ksm_stable_node, rb);
		list_for_each_entry_safe(node, tmp, &leader->group, group)
			fn(node, arg);
		fn(leader, arg);
	}
}

/**
 * ksm_index_stable_walk - call a function on every indexed stable node
 * @fn: called under ksm_lock; it may erase the node it is given from the
 *	index (and free it), or erase it and insert it again, but touch no
 *	other node.
 * @arg: passed to @fn.
 */
void ksm_index_stable_walk(void (*fn)(struct ksm_stable_node *node, void *arg),
			   void *arg)
{
	struct ksm_index *idx = &ksm_live_index;
	unsigned int i;

	ksm_index_assert_held(idx);
	ksm_stable_place_pending(idx);
	for (i = 0; i < (1U << idx->stable_bits); i++) {
		ksm_stable_walk_bucket(idx, i, fn, arg);
		cond_resched();
	}
}

/**
 * ksm_node_retire - free a node that lost its last tracked mapping
 * @node: the node, with no mapping listed.
 * @kfolio: its KSM folio, locked, or NULL if the node is stale.
 *
 * A folio still mapped (by a fork child nobody tracks yet) keeps its node;
 * otherwise the folio stops being a KSM folio and the node goes away.
 */
void ksm_node_retire(struct ksm_stable_node *node, struct folio *kfolio)
{
	lockdep_assert_held(&ksm_lock);
	if (node->nr_maps)
		return;
	if (kfolio) {
		VM_WARN_ON_ONCE(!folio_test_locked(kfolio));
		if (folio_mapped(kfolio)) {
			if (!node->indexed)
				ksm_index_stable_insert(node, kfolio);
			return;
		}
		/* It stays an anon folio, with no node: swap-in copies it. */
		WRITE_ONCE(kfolio->mapping, (void *)PAGE_MAPPING_KSM);
	}
	ksm_index_stable_erase(node);
	ksm_node_free(node);
}

/* Drop a stale or unused node met by the sweep. */
static void ksm_index_sweep_node(struct ksm_stable_node *node, void *unused)
{
	struct folio *kfolio;

	kfolio = ksm_node_get_folio(node);
	if (IS_ERR(kfolio))
		return;
	if (!kfolio) {
		ksm_stable_drop_stale(&ksm_live_index, node);
		return;
	}
	if (!node->nr_maps && folio_trylock(kfolio)) {
		if (folio_ksm_node(kfolio) == node)
			ksm_node_retire(node, kfolio);
		folio_unlock(kfolio);
	}
	folio_put(kfolio);
}

/*
 * Sweep @nr stable buckets from where the last slice stopped: the cost of
 * one slice is bounded whatever the size of the index, and a KSM folio is
 * referenced only for the moment its node is looked at.
 */
static void ksm_index_sweep_slice(unsigned int nr)
{
	struct ksm_index *idx = &ksm_live_index;
	unsigned int size = 1U << idx->stable_bits;

	ksm_stable_place_pending(idx);
	nr = min(nr, size);
	while (nr--) {
		idx->sweep_next &= size - 1;
		ksm_stable_walk_bucket(idx, idx->sweep_next++,
				       ksm_index_sweep_node, NULL);
	}
}

/**
 * ksm_index_stable_sweep - drop every stale and unused node from the index
 *
 * A whole pass, for the callers that need every node looked at (a full
 * unmerge, a change of merge_across_nodes, memory going offline); ksmd
 * itself sweeps in bounded slices.
 */
void ksm_index_stable_sweep(void)
{
	ksm_index_stable_walk(ksm_index_sweep_node, NULL);
	ksm_last_sweep = jiffies;
}

/**
 * ksm_index_stable_empty - are there no stable nodes left at all?
 *
 * Stale and unused nodes are swept first.
 *
 * Return: true if no stable node exists.
 */
bool ksm_index_stable_empty(void)
{
	ksm_index_stable_sweep();
	return !ksm_nr_nodes;
}

/* Is there a leader with @hash in its bucket? Hash compares only. */
static bool ksm_stable_hash_known(struct ksm_index *idx, u32 hash)
{
	struct rb_node *rb = ksm_stable_bucket(idx, hash)->rb_node;
	struct ksm_stable_node *node;

	while (rb) {
		node = rb_entry(rb, struct ksm_stable_node, rb);
		if (node->hash == hash)
			return true;
		rb = hash < node->hash ? rb->rb_left : rb->rb_right;
	}
	return false;
}

/* ---- The unstable index ---- */

/*
 * The bucket that holds the entries of @hash. While the table grows, an
 * old bucket keeps its entries until it is moved as a whole, and a hash
 * is in the old table exactly when its old bucket was not moved yet: each
 * entry is in one place, which every lookup, insert and erase finds.
 */
static inline struct ksm_item **ksm_unstable_bucket(struct ksm_index *idx,
						    u32 hash)
{
	unsigned int nr;

	if (idx->unstable_old) {
		nr = ksm_bucket_nr(idx, hash, idx->unstable_old_bits);
		if (nr >= idx->unstable_moved)
			return &idx->unstable_old[nr];
	}
	return &idx->unstable[ksm_bucket_nr(idx, hash, idx->unstable_bits)];
}

/*
 * Move the entries of the next old bucket to the new table. The table
 * grows by one bit and ksm_bucket_nr() keeps the top bits of one product,
 * so old bucket i splits into new buckets 2i and 2i + 1, which nothing filled
 * before (their hashes went to bucket i until now); each chain keeps its
 * order.
 */
static void ksm_unstable_move_bucket(struct ksm_index *idx)
{
	struct ksm_item *entry = idx->unstable_old[idx->unstable_moved];
	struct ksm_item **tails[2], *next;
	unsigned int nr;

	VM_WARN_ON_ONCE(idx->unstable_bits != idx->unstable_old_bits + 1);
	tails[0] = &idx->unstable[idx->unstable_moved * 2];
	tails[1] = tails[0] + 1;
	for (; entry; entry = next) {
		next = entry->chain_next;
		nr = ksm_bucket_nr(idx, ksm_item_hash(entry), idx->unstable_bits) & 1;
		*tails[nr] = entry;
		tails[nr] = &entry->chain_next;
	}
	*tails[0] = NULL;
	*tails[1] = NULL;
	idx->unstable_moved++;
}

/* Move up to @nr old buckets; free the old table once all have moved. */
static void ksm_unstable_move(struct ksm_index *idx, unsigned int nr)
{
	unsigned int size = 1U << idx->unstable_old_bits;

	while (nr-- && idx->unstable_moved < size)
		ksm_unstable_move_bucket(idx);
	if (idx->unstable_moved < size)
		return;
	kvfree(idx->unstable_old);
	idx->unstable_old = NULL;
	idx->unstable_moved = 0;
}

/*
 * Start doubling the unstable table. The entries move a few buckets per
 * lookup (ksm_unstable_grow_step()), so no lookup waits for a whole pass.
 * Without memory the old table goes on serving, longer chains for a
 * while, and growing is tried again once the entries doubled.
 */
static void ksm_unstable_grow(struct ksm_index *idx)
{
	unsigned int bits = idx->unstable_bits + 1;
	struct ksm_item **table;

	if (bits > KSM_INDEX_MAX_BITS)
		return;
	table = kvcalloc(1U << bits, sizeof(*table), KSM_INDEX_GFP);
	if (!table) {
		idx->grow_at = idx->nr_chained * 2;
		return;
	}
	idx->unstable_old = idx->unstable;
	idx->unstable_old_bits = idx->unstable_bits;
	idx->unstable_moved = 0;
	idx->unstable = table;
	idx->unstable_bits = bits;
	idx->grow_at = KSM_UNSTABLE_LOAD << bits;
	/* The filled buckets are past counting: the round's end clears all. */
	idx->nr_filled = KSM_INDEX_FEW_BUCKETS + 1;
}

/*
 * Called once per lookup or insert, before any chain is walked: keeps at
 * most KSM_UNSTABLE_LOAD entries per bucket on average within a round,
 * whatever the round before held. A table that doubles at two entries per
 * bucket has moved all of its old buckets, a few per call, long before it
 * holds four. Inline: ksmd
 * calls it for every page, and almost always finds nothing to do.
 */
static inline void ksm_unstable_grow_step(struct ksm_index *idx)
{
	if (likely(!idx->unstable_old && idx->nr_chained <= idx->grow_at))
		return;
	if (idx->unstable_old)
		ksm_unstable_move(idx, KSM_UNSTABLE_MOVE_BUCKETS);
	else
		ksm_unstable_grow(idx);
}

static bool ksm_item_in_group(const struct ksm_item *item)
{
	return (unsigned long)item->chain_next & KSM_CHAIN_TWIG;
}

static struct ksm_index_twig *ksm_item_twig(const struct ksm_item *item)
{
	return (void *)((unsigned long)item->chain_next & ~KSM_CHAIN_TWIG);
}

static struct ksm_index_group *ksm_head_group(struct ksm_item *head)
{
	return container_of(head, struct ksm_index_group, head);
}

/*
 * Remember which buckets of the table this round filled while they are
 * few, so that the round's end clears just those. A table that grows
 * holds many: its end clears the whole table.
 */
static void ksm_unstable_note_filled(struct ksm_index *idx,
				     struct ksm_item **bucket)
{
	if (*bucket || idx->nr_filled > KSM_INDEX_FEW_BUCKETS)
		return;
	if (idx->nr_filled < KSM_INDEX_FEW_BUCKETS)
		idx->filled[idx->nr_filled] = bucket - idx->unstable;
	idx->nr_filled++;
}

/* Put @entry (an item or a group head) at the front of its bucket. */
static void ksm_unstable_push(struct ksm_index *idx, struct ksm_item *entry)
{
	struct ksm_item **bucket = ksm_unstable_bucket(idx, ksm_item_hash(entry));

	ksm_unstable_note_filled(idx, bucket);
	ksm_item_set_round(entry, idx->round);
	entry->chain_next = *bucket;
	*bucket = entry;
	idx->nr_chained++;
}

/* Take @entry out of its bucket chain. */
static void ksm_unstable_unchain(struct ksm_index *idx, struct ksm_item *entry)
{
	struct ksm_item **link = ksm_unstable_bucket(idx, ksm_item_hash(entry));

	while (*link && *link != entry)
		link = &(*link)->chain_next;
	if (WARN_ON_ONCE(!*link))
		return;
	*link = entry->chain_next;
	idx->nr_chained--;
}

/* The group an item of this round's collision groups is in. */
static struct ksm_index_group *ksm_unstable_group_of(struct ksm_index *idx,
						     struct ksm_item *item)
{
	struct ksm_item *entry = *ksm_unstable_bucket(idx, ksm_item_hash(item));

	for (; entry; entry = entry->chain_next)
		if (ksm_item_state(entry) == KSM_ITEM_GROUP &&
		    ksm_item_hash(entry) == ksm_item_hash(item))
			return ksm_head_group(entry);
	return NULL;
}

static void ksm_twig_erase(struct ksm_index_group *group,
			   struct ksm_index_twig *twig)
{
	rb_erase(&twig->rb, &group->tree);
	kmem_cache_free(ksm_twig_cache, twig);
}

static void ksm_unstable_erase(struct ksm_index *idx, struct ksm_item *item)
{
	struct ksm_index_group *group;

	ksm_index_assert_held(idx);
	VM_WARN_ON_ONCE(ksm_item_state(item) != KSM_ITEM_UNSTABLE);
	/* Links of older rounds point into emptied buckets and freed twigs. */
	if (ksm_item_round(item) == (idx->round & KSM_ITEM_ROUND_MASK)) {
		if (!ksm_item_in_group(item)) {
			ksm_unstable_unchain(idx, item);
		} else {
			group = ksm_unstable_group_of(idx, item);
			if (!WARN_ON_ONCE(!group))
				ksm_twig_erase(group, ksm_item_twig(item));
		}
	}
	item->chain_next = NULL;
	ksm_item_set_state(item, KSM_ITEM_IDLE);
	ksm_index_count_unshared(idx, -1);
}

/**
 * ksm_index_unstable_erase - make an unstable item idle
 * @item: an item in %KSM_ITEM_UNSTABLE state, of this round or older.
 */
void ksm_index_unstable_erase(struct ksm_item *item)
{
	ksm_unstable_erase(&ksm_live_index, item);
}

static void ksm_unstable_chain(struct ksm_index *idx, struct ksm_item *item,
			       u32 hash)
{
	ksm_item_set_hash(item, hash);
	ksm_unstable_push(idx, item);
	ksm_item_set_state(item, KSM_ITEM_UNSTABLE);
	ksm_index_count_unshared(idx, 1);
}

/*
 * Hang @item, whose page has full hash @fhash, in @group at @link under
 * @parent; false if out of memory.
 */
static bool ksm_twig_add(struct ksm_index *idx, struct ksm_index_group *group,
			 struct ksm_item *item, u32 fhash,
			 struct rb_node *parent, struct rb_node **link)
{
	struct ksm_index_twig *twig;

	twig = kmem_cache_alloc(ksm_twig_cache, KSM_INDEX_GFP);
	if (!twig)
		return false;
	twig->item = item;
	twig->fhash = fhash;
	rb_link_node(&twig->rb, parent, link);
	rb_insert_color(&twig->rb, &group->tree);
	ksm_item_set_hash(item, ksm_item_hash(&group->head));
	ksm_item_set_round(item, idx->round);
	item->chain_next = (void *)((unsigned long)twig | KSM_CHAIN_TWIG);
	ksm_item_set_state(item, KSM_ITEM_UNSTABLE);
	ksm_index_count_unshared(idx, 1);
	return true;
}

/* A new, empty collision group for @hash, at the front of its chain. */
static struct ksm_index_group *ksm_unstable_new_group(struct ksm_index *idx,
						      u32 hash)
{
	struct ksm_index_group *group;

	group = kmem_cache_zalloc(ksm_group_cache, KSM_INDEX_GFP);
	if (!group)
		return NULL;
	group->tree = RB_ROOT;
	ksm_item_set_hash(&group->head, hash);
	ksm_item_set_state(&group->head, KSM_ITEM_GROUP);
	list_add(&group->link, &idx->groups);
	ksm_unstable_push(idx, &group->head);
	return group;
}

/*
 * Order @page (of domain @domain) against the page of @cand. Returns the
 * order, with *@other set to the page of @cand (referenced) when they are
 * the same, or -ESTALE in *@err if @cand no longer qualifies.
 */
static int ksm_unstable_cmp(struct ksm_index *idx, struct ksm_item *cand,
			    struct page *page, int domain,
			    struct page **other, int *err)
{
	struct page *opage = idx->ops->item_page(cand);
	int ret, odomain;

	*err = 0;
	if (!opage) {
		*err = -ESTALE;
		return 0;
	}
	idx->compares++;
	ret = ksm_pages_cmp(page, opage);
	odomain = idx->ops->item_domain(cand, page_folio(opage));
	if (!ret && domain != odomain)
		ret = domain < odomain ? -1 : 1;
	if (!ret && IS_ENABLED(CONFIG_ARCH_HAS_MEMCMP_PAGES) &&
	    memcmp_pages(page, opage))
		ret = 1;
	if (ret)
		folio_put(page_folio(opage));
	else
		*other = opage;
	return ret;
}

/*
 * Search a collision group for @page; if it is not there, add @item at
 * the place the search ended. Twigs are ordered by the full hash their
 * pages had when they joined, so only a twig of the same full hash is
 * compared. A page that changed since it joined may leave the tree out
 * of order for the rest of the round: a lookup may then miss its twin,
 * which the next round, with a new index, finds.
 */
static struct ksm_item *ksm_group_match(struct ksm_index *idx,
					struct ksm_index_group *group,
					struct ksm_index_key key,
					struct ksm_item *item,
					struct page *page, struct page **other)
{
	u32 fhash = ksm_page_full_hash(idx, page);
	struct ksm_index_twig *twig;
	struct rb_node **link, *parent;
	int ret, err;

restart:
	link = &group->tree.rb_node;
	parent = NULL;
	while (*link) {
		parent = *link;
		twig = rb_entry(parent, struct ksm_index_twig, rb);
		if (fhash != twig->fhash) {
			ret = fhash < twig->fhash ? -1 : 1;
		} else {
			ret = ksm_unstable_cmp(idx, twig->item, page,
					       key.domain, other, &err);
			if (err) {
				ksm_unstable_erase(idx, twig->item);
				goto restart;
			}
			if (!ret)
				return twig->item;
		}
		link = ret < 0 ? &parent->rb_left : &parent->rb_right;
	}
	if (!ksm_twig_add(idx, group, item, fhash, parent, link))
		ksm_unstable_chain(idx, item, key.hash);
	return NULL;
}

/*
 * Move the chained items with @key's hash into @group, so that the chain
 * holds one entry per hash again: each costs one descent, once. An item
 * identical to one of the group stays chained (it will merge with it).
 */
static void ksm_group_absorb(struct ksm_index *idx,
			     struct ksm_index_group *group,
			     struct ksm_index_key key)
{
	struct ksm_item *entry, *next, *twin;
	struct page *page, *other;

	entry = *ksm_unstable_bucket(idx, key.hash);
	for (; entry; entry = next) {
		next = entry->chain_next;
		if (ksm_item_hash(entry) != key.hash ||
		    ksm_item_state(entry) == KSM_ITEM_GROUP)
			continue;
		page = idx->ops->item_page(entry);
		ksm_unstable_erase(idx, entry);
		if (!page)
			continue;
		key.domain = idx->ops->item_domain(entry, page_folio(page));
		twin = ksm_group_match(idx, group, key, entry, page, &other);
		if (twin) {
			folio_put(page_folio(other));
			ksm_unstable_chain(idx, entry, key.hash);
		}
		folio_put(page_folio(page));
	}
}

static struct ksm_item *ksm_unstable_match(struct ksm_index *idx,
					   struct ksm_index_key key,
					   struct ksm_item *item,
					   struct page *page,
					   struct page **other)
{
	struct ksm_index_group *group = NULL;
	struct ksm_item *entry, *next;
	unsigned int nr_chained = 0;
	int ret, err;

	ksm_index_assert_held(idx);
	VM_WARN_ON_ONCE(ksm_item_state(item) != KSM_ITEM_IDLE);
	ksm_unstable_grow_step(idx);
	entry = *ksm_unstable_bucket(idx, key.hash);
	for (; entry; entry = next) {
		next = entry->chain_next;
		if (ksm_item_hash(entry) != key.hash || entry == item)
			continue;
		if (ksm_item_state(entry) == KSM_ITEM_GROUP) {
			group = ksm_head_group(entry);
			continue;
		}
		ret = ksm_unstable_cmp(idx, entry, page, key.domain, other,
				       &err);
		if (err) {
			ksm_unstable_erase(idx, entry);
			continue;
		}
		if (!ret)
			return entry;
		nr_chained++;
	}
	if (!group && nr_chained)
		group = ksm_unstable_new_group(idx, key.hash);
	if (!group) {
		ksm_unstable_chain(idx, item, key.hash);
		return NULL;
	}
	if (nr_chained)
		ksm_group_absorb(idx, group, key);
	return ksm_group_match(idx, group, key, item, page, other);
}

/**
 * ksm_index_unstable_find - find an unstable page identical to a page,
 *	or add the page to the unstable index
 * @key: hash and domain of @page.
 * @item: the idle item of @page.
 * @page: the page to look for.
 * @other: set to the page found, with a reference on its folio.
 *
 * Items met whose pages vanished or became KSM pages leave the index.
 *
 * Return: the item of the identical page, still in the index; or NULL,
 * and @item is in the index now.
 */
struct ksm_item *ksm_index_unstable_find(struct ksm_index_key key,
					 struct ksm_item *item,
					 struct page *page,
					 struct page **other)
{
	struct ksm_index *idx = &ksm_live_index;

	idx->nr_unstable++;
	return ksm_unstable_match(idx, key, item, page, other);
}

/**
 * ksm_index_unstable_insert - add an idle item to the unstable index
 *	without looking at its page
 * @item: the item.
 * @key: hash and domain of its page.
 *
 * For smart scan, which keeps skipped pages findable; the item joins the
 * chain even where a group holds its hash, and lookups compare with it.
 */
void ksm_index_unstable_insert(struct ksm_item *item, struct ksm_index_key key)
{
	struct ksm_index *idx = &ksm_live_index;

	ksm_index_assert_held(idx);
	VM_WARN_ON_ONCE(ksm_item_state(item) != KSM_ITEM_IDLE);
	idx->nr_unstable++;
	ksm_unstable_grow_step(idx);
	ksm_unstable_chain(idx, item, key.hash);
}

static bool ksm_unstable_hash_known(struct ksm_index *idx, u32 hash)
{
	struct ksm_item *entry = *ksm_unstable_bucket(idx, hash);

	for (; entry; entry = entry->chain_next)
		if (ksm_item_hash(entry) == hash)
			return true;
	return false;
}

/**
 * ksm_index_hash_known - does an index hold a page with this sample hash?
 * @hash: the sample hash a page had when it was last looked at.
 *
 * For smart scan, which looks at a page out of turn when it may have a
 * twin. Hashes only: no compare, any domain.
 *
 * Return: true if a stable node or an item of this round's unstable index
 * has @hash.
 */
bool ksm_index_hash_known(u32 hash)
{
	struct ksm_index *idx = &ksm_live_index;

	ksm_index_assert_held(idx);
	return ksm_stable_hash_known(idx, hash) ||
	       ksm_unstable_hash_known(idx, hash);
}

/**
 * ksm_index_round - the current scan round
 *
 * Return: the round number, which items in the unstable index carry.
 */
u32 ksm_index_round(void)
{
	return ksm_live_index.round;
}

static void ksm_unstable_free_groups(struct ksm_index *idx)
{
	struct ksm_index_group *group, *tmp;
	struct ksm_index_twig *twig, *next;

	list_for_each_entry_safe(group, tmp, &idx->groups, link) {
		rbtree_postorder_for_each_entry_safe(twig, next, &group->tree,
						     rb)
			kmem_cache_free(ksm_twig_cache, twig);
		list_del(&group->link);
		kmem_cache_free(ksm_group_cache, group);
	}
}

/*
 * Size the unstable buckets for the round to come from the items of the
 * round that ended: one to KSM_UNSTABLE_LOAD per bucket. Keeps the old
 * table if a new one cannot be had; the round grows it if it must.
 */
static void ksm_unstable_resize(struct ksm_index *idx)
{
	unsigned long want = DIV_ROUND_UP(idx->nr_unstable, KSM_UNSTABLE_LOAD);
	unsigned int bits = clamp_t(unsigned int, order_base_2(want),
				    KSM_INDEX_MIN_BITS, KSM_INDEX_MAX_BITS);
	struct ksm_item **table;

	/* Shrink lazily, so that a round of fewer items costs no churn. */
	if (bits == idx->unstable_bits ||
	    (bits < idx->unstable_bits && bits + 2 > idx->unstable_bits))
		return;
	table = kvcalloc(1U << bits, sizeof(*table), KSM_INDEX_GFP);
	if (!table)
		return;
	kvfree(idx->unstable);
	idx->unstable = table;
	idx->unstable_bits = bits;
	idx->nr_filled = 0;
}

static void ksm_unstable_empty(struct ksm_index *idx)
{
	unsigned int nr;

	ksm_unstable_free_groups(idx);
	/* Its entries belong to the round that ends: nothing to move. */
	kvfree(idx->unstable_old);
	idx->unstable_old = NULL;
	idx->unstable_moved = 0;
	if (idx->nr_filled <= KSM_INDEX_FEW_BUCKETS) {
		while (idx->nr_filled) {
			nr = idx->filled[--idx->nr_filled];
			idx->unstable[nr] = NULL;
		}
	} else {
		memset(idx->unstable, 0,
		       sizeof(*idx->unstable) << idx->unstable_bits);
		idx->nr_filled = 0;
	}
	ksm_unstable_resize(idx);
	idx->nr_unstable = 0;
	idx->nr_chained = 0;
	idx->grow_at = KSM_UNSTABLE_LOAD << idx->unstable_bits;
	idx->round++;
}

/**
 * ksm_index_new_round - start a scan round with an empty unstable index
 *
 * A slice of the stable index is swept as well when
 * stable_node_chains_prune_millisecs passed since the last slice.
 */
void ksm_index_new_round(void)
{
	unsigned long prune = READ_ONCE(ksm_tun.prune_millisecs);
	struct ksm_index *idx = &ksm_live_index;

	ksm_index_assert_held(idx);
	ksm_unstable_empty(idx);
	if (time_after_eq(jiffies, ksm_last_sweep + msecs_to_jiffies(prune))) {
		ksm_index_sweep_slice(KSM_SWEEP_BUCKETS);
		ksm_last_sweep = jiffies;
	} else if (!list_empty(&idx->pending)) {
		ksm_stable_place_pending(idx);
	}
}

static int ksm_index_setup(struct ksm_index *idx,
			   const struct ksm_index_ops *ops, struct mutex *lock,
			   bool live)
{
	idx->ops = ops;
	idx->lock = lock;
	idx->live = live;
	idx->round = 1;
	idx->bucket_key = get_random_u32() | 1;
	idx->fhash_seed = get_random_u64();
	idx->stable_bits = KSM_INDEX_MIN_BITS;
	idx->unstable_bits = KSM_INDEX_MIN_BITS;
	idx->grow_at = KSM_UNSTABLE_LOAD << idx->unstable_bits;
	INIT_LIST_HEAD(&idx->pending);
	INIT_LIST_HEAD(&idx->groups);
	idx->stable = kvcalloc(1U << idx->stable_bits, sizeof(*idx->stable),
			       GFP_KERNEL);
	idx->unstable = kvcalloc(1U << idx->unstable_bits,
				 sizeof(*idx->unstable), GFP_KERNEL);
	if (!idx->stable || !idx->unstable) {
		kvfree(idx->stable);
		kvfree(idx->unstable);
		return -ENOMEM;
	}
	return 0;
}

/**
 * ksm_index_init - create the caches and the live index
 * @ops: what the index calls back into.
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_index_init(const struct ksm_index_ops *ops)
{
	ksm_node_cache = KMEM_CACHE(ksm_stable_node, 0);
	ksm_maps_cache = kmem_cache_create("ksm_node_maps",
					   KSM_NODE_FIRST_MAPS *
					   sizeof(struct ksm_map), 0, 0,
					   NULL);
	ksm_group_cache = KMEM_CACHE(ksm_index_group, 0);
	ksm_twig_cache = KMEM_CACHE(ksm_index_twig, 0);
	if (!ksm_node_cache || !ksm_maps_cache || !ksm_group_cache ||
	    !ksm_twig_cache ||
	    ksm_index_setup(&ksm_live_index, ops, &ksm_lock, true)) {
		kmem_cache_destroy(ksm_twig_cache);
		kmem_cache_destroy(ksm_group_cache);
		kmem_cache_destroy(ksm_maps_cache);
		kmem_cache_destroy(ksm_node_cache);
		return -ENOMEM;
	}
	return 0;
}

#include "tests/ksm-kunit.h"
