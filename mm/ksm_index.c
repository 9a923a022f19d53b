// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM content indexes.
 *
 * Pages are located by a cheap hash of a sample of their words, never by
 * a full checksum: the hash only picks a bucket and filters candidates,
 * and a full compare of the contents always decides.
 *
 * The stable index holds one stable node per KSM page. Nodes with the
 * same content form a group (the leader is in a bucket, the others hang
 * off it), which happens once a KSM page reached max_page_sharing.
 *
 * The unstable index holds candidate pages seen in the current scan
 * round, chained through their tracking items. It is emptied at the end
 * of every round by clearing the bucket array: an item remembers the
 * round it was inserted in, and links of older rounds are never followed.
 *
 * Both indexes are partitioned by a domain, the NUMA node of the page
 * when merge_across_nodes is 0 and a single domain otherwise: two pages
 * only ever match within one domain.
 */

#include <linux/hash.h>
#include <linux/highmem.h>
#include <linux/memory_hotplug.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <trace/events/ksm.h>

#include "ksm_internal.h"

/* Words of a page that feed the sample hash. */
#define KSM_SAMPLE_WORDS	32
/* Full compares one lookup may spend before it gives up. */
#define KSM_INDEX_MAX_COMPARES	16
#define KSM_INDEX_MIN_BITS	10
#define KSM_INDEX_MAX_BITS	18
/* Entries of the mapping array a new stable node gets. */
#define KSM_NODE_FIRST_MAPS	4

static struct kmem_cache *ksm_node_cache;
/* Mapping arrays of KSM_NODE_FIRST_MAPS entries, the size every node starts with. */
static struct kmem_cache *ksm_maps_cache;
static struct hlist_head *ksm_stable_table;
static struct ksm_item **ksm_unstable_table;
static unsigned int ksm_index_bits;
/* Starts at 1 so that a zeroed item never belongs to the current round. */
static u32 ksm_round = 1;
static unsigned long ksm_nr_nodes;
static unsigned long ksm_last_sweep;

/*
 * Buckets of the unstable index filled this round, remembered while they
 * are few, so that a small round empties just those instead of the table.
 */
#define KSM_INDEX_FEW_BUCKETS	64
static unsigned int ksm_unstable_filled[KSM_INDEX_FEW_BUCKETS];
static unsigned int ksm_unstable_nr_filled;

static unsigned int ksm_index_bucket(u32 hash)
{
	return hash_32(hash, ksm_index_bits);
}

/**
 * ksm_index_page_hash - hash a sample of the words of a page
 * @page: the page, which may change under us.
 *
 * The sample is spread over the whole page and always includes its first
 * word, where small changes are common.
 *
 * Return: the sample hash.
 */
u32 ksm_index_page_hash(struct page *page)
{
	const unsigned int stride = PAGE_SIZE / sizeof(u64) / KSM_SAMPLE_WORDS;
	const u64 *words = kmap_local_page(page);
	u64 acc = 0x9e3779b97f4a7c15ULL;
	unsigned int i;

	for (i = 0; i < KSM_SAMPLE_WORDS; i++) {
		acc ^= READ_ONCE(words[i * stride + (i * 7) % stride]);
		acc *= 0xff51afd7ed558ccdULL;
		acc ^= acc >> 29;
	}
	kunmap_local(words);
	return (u32)(acc ^ (acc >> 32));
}

/**
 * ksm_pages_same - compare the whole contents of two pages
 * @page1: one page.
 * @page2: the other.
 *
 * Compares a cache line of words per step: the generic memcmp() goes byte
 * by byte, and the compares are most of the time of a merge.
 *
 * Return: true if every byte is the same.
 */
bool ksm_pages_same(struct page *page1, struct page *page2)
{
	const u64 *a = kmap_local_page(page1);
	const u64 *b = kmap_local_page(page2);
	unsigned int i;
	u64 diff = 0;

	for (i = 0; i < PAGE_SIZE / sizeof(u64) && !diff; i += 8)
		diff = (a[i] ^ b[i]) | (a[i + 1] ^ b[i + 1]) |
		       (a[i + 2] ^ b[i + 2]) | (a[i + 3] ^ b[i + 3]) |
		       (a[i + 4] ^ b[i + 4]) | (a[i + 5] ^ b[i + 5]) |
		       (a[i + 6] ^ b[i + 6]) | (a[i + 7] ^ b[i + 7]);
	kunmap_local(b);
	kunmap_local(a);
	ksm_count(compares);
	if (diff)
		ksm_count(compare_misses);
	return !diff;
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

static void ksm_node_free_maps(struct ksm_item **maps, unsigned int max)
{
	if (max == KSM_NODE_FIRST_MAPS)
		kmem_cache_free(ksm_maps_cache, maps);
	else
		kvfree(maps);
}

/**
 * ksm_node_alloc - allocate an empty stable node
 *
 * Return: the node, or NULL when out of memory.
 */
struct ksm_stable_node *ksm_node_alloc(void)
{
	struct ksm_stable_node *node;

	node = kmem_cache_zalloc(ksm_node_cache, GFP_KERNEL);
	if (!node)
		return NULL;
	INIT_LIST_HEAD(&node->group);
	INIT_HLIST_NODE(&node->hnode);
	node->max_maps = KSM_NODE_FIRST_MAPS;
	node->maps = kmem_cache_alloc(ksm_maps_cache, GFP_KERNEL);
	if (!node->maps) {
		kmem_cache_free(ksm_node_cache, node);
		return NULL;
	}
	lockdep_assert_held(&ksm_lock);
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

/**
 * ksm_node_reserve - make room in the mapping array for one more item
 * @node: the node.
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_node_reserve(struct ksm_stable_node *node)
{
	struct ksm_item **maps;
	unsigned int max;

	if (node->nr_maps < node->max_maps)
		return 0;
	max = node->max_maps * 2;
	maps = kvmalloc_array(max, sizeof(*maps), GFP_KERNEL);
	if (!maps)
		return -ENOMEM;
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
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_node_add_map(struct ksm_stable_node *node, struct ksm_item *item)
{
	int err;

	lockdep_assert_held(&ksm_lock);
	err = ksm_node_reserve(node);
	if (err)
		return err;
	node->maps[node->nr_maps++] = item;
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
 */
void ksm_node_del_map(struct ksm_stable_node *node, struct ksm_item *item)
{
	unsigned int i;

	lockdep_assert_held(&ksm_lock);
	for (i = 0; i < node->nr_maps; i++) {
		if (node->maps[i] != item)
			continue;
		node->maps[i] = node->maps[--node->nr_maps];
		if (node->nr_maps)
			ksm_stat_add(pages_sharing, -1);
		else
			ksm_stat_add(pages_shared, -1);
		return;
	}
	VM_WARN_ON_ONCE(1);
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
	if (node->indexed)
		ksm_index_stable_erase(node);
	ksm_node_free(node);
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

/**
 * ksm_index_stable_erase - take a node out of the stable index
 * @node: an indexed node. If it leads a group, the next member leads.
 */
void ksm_index_stable_erase(struct ksm_stable_node *node)
{
	struct ksm_stable_node *next = NULL;
	unsigned int size = ksm_group_size(node);

	lockdep_assert_held(&ksm_lock);
	if (!node->indexed)
		return;
	if (size > 1)
		next = list_first_entry(&node->group, struct ksm_stable_node,
					group);
	if (!hlist_unhashed(&node->hnode)) {
		if (next)
			hlist_add_before(&next->hnode, &node->hnode);
		hlist_del_init(&node->hnode);
	}
	list_del_init(&node->group);
	node->indexed = false;
	if (size == 2) {
		ksm_stat_add(chains, -1);
		ksm_stat_add(dups, -2);
	} else if (size > 2) {
		ksm_stat_add(dups, -1);
	}
}

/*
 * Compare a page with the KSM page of a node. Returns the folio with a
 * reference if they are identical; erases the node if it went stale.
 */
static struct folio *ksm_index_stable_cmp(struct ksm_stable_node *node,
					  struct page *page)
{
	struct folio *kfolio = ksm_node_get_folio(node);

	if (IS_ERR(kfolio))
		return NULL;
	if (!kfolio) {
		ksm_index_stable_erase(node);
		if (!node->nr_maps)
			ksm_node_free(node);
		return NULL;
	}
	/* Never across nodes: a page that moved waits to be re-homed. */
	if (ksm_index_domain(kfolio) != node->domain)
		ksm_memory_node_moved();
	else if (ksm_pages_same(page, folio_page(kfolio, 0)))
		return kfolio;
	folio_put(kfolio);
	return NULL;
}

/* Within a group of identical pages, find a node that has room. */
static struct ksm_stable_node *ksm_group_pick(struct ksm_stable_node *leader,
					      struct folio **kfolio)
{
	struct ksm_stable_node *node, *tmp;
	struct folio *folio;

	if (ksm_node_has_room(leader))
		return leader;
	list_for_each_entry_safe(node, tmp, &leader->group, group) {
		if (!ksm_node_has_room(node))
			continue;
		folio = ksm_node_get_folio(node);
		if (IS_ERR(folio))
			continue;
		if (!folio) {
			ksm_index_stable_erase(node);
			if (!node->nr_maps)
				ksm_node_free(node);
			continue;
		}
		folio_put(*kfolio);
		*kfolio = folio;
		return node;
	}
	folio_put(*kfolio);
	*kfolio = NULL;
	return NULL;
}

/**
 * ksm_index_stable_find - find a KSM page with the contents of a page
 * @key: hash and domain of @page.
 * @page: the page to look for.
 * @kfolio: set to the KSM folio found, with a reference held.
 *
 * Return: the node of a KSM page identical to @page that can take one
 * more mapping, or NULL.
 */
struct ksm_stable_node *ksm_index_stable_find(struct ksm_index_key key,
					      struct page *page,
					      struct folio **kfolio)
{
	struct hlist_head *bucket = &ksm_stable_table[ksm_index_bucket(key.hash)];
	struct ksm_stable_node *leader;
	struct hlist_node *tmp;
	unsigned int budget = KSM_INDEX_MAX_COMPARES;

	lockdep_assert_held(&ksm_lock);
	hlist_for_each_entry_safe(leader, tmp, bucket, hnode) {
		if (leader->hash != key.hash || leader->domain != key.domain)
			continue;
		if (!budget--)
			break;
		*kfolio = ksm_index_stable_cmp(leader, page);
		if (*kfolio)
			return ksm_group_pick(leader, kfolio);
	}
	*kfolio = NULL;
	return NULL;
}

/**
 * ksm_index_stable_insert - add a node to the stable index
 * @node: a node not in the index, with hash and domain set.
 * @kfolio: its KSM folio, referenced by the caller.
 *
 * A node identical to an indexed one joins that one's group.
 */
void ksm_index_stable_insert(struct ksm_stable_node *node,
			     struct folio *kfolio)
{
	struct hlist_head *bucket = &ksm_stable_table[ksm_index_bucket(node->hash)];
	struct page *page = folio_page(kfolio, 0);
	struct ksm_stable_node *leader;
	struct hlist_node *tmp;
	struct folio *folio;

	lockdep_assert_held(&ksm_lock);
	if (node->indexed)
		return;
	node->indexed = true;
	hlist_for_each_entry_safe(leader, tmp, bucket, hnode) {
		if (leader->hash != node->hash || leader->domain != node->domain)
			continue;
		folio = ksm_index_stable_cmp(leader, page);
		if (!folio)
			continue;
		folio_put(folio);
		ksm_group_add(leader, node);
		return;
	}
	hlist_add_head(&node->hnode, bucket);
}

/**
 * ksm_index_stable_walk - call a function on every indexed stable node
 * @fn: called under ksm_lock; it may erase the node it is given from the
 *	index (and free it), but no other node.
 * @arg: passed to @fn.
 */
void ksm_index_stable_walk(void (*fn)(struct ksm_stable_node *node, void *arg),
			   void *arg)
{
	struct ksm_stable_node *leader, *node, *tmp;
	struct hlist_node *htmp;
	unsigned int i;

	lockdep_assert_held(&ksm_lock);
	for (i = 0; i < (1U << ksm_index_bits); i++) {
		hlist_for_each_entry_safe(leader, htmp, &ksm_stable_table[i],
					  hnode) {
			list_for_each_entry_safe(node, tmp, &leader->group, group)
				fn(node, arg);
			fn(leader, arg);
		}
		cond_resched();
	}
}

/* Drop a stale or unused node met by the sweep. */
static void ksm_index_sweep_node(struct ksm_stable_node *node, void *unused)
{
	struct folio *kfolio;

	kfolio = ksm_node_get_folio(node);
	if (IS_ERR(kfolio))
		return;
	if (!kfolio) {
		ksm_index_stable_erase(node);
		if (!node->nr_maps)
			ksm_node_free(node);
		return;
	}
	if (!node->nr_maps && folio_trylock(kfolio)) {
		if (folio_ksm_node(kfolio) == node)
			ksm_node_retire(node, kfolio);
		folio_unlock(kfolio);
	}
	folio_put(kfolio);
}

/**
 * ksm_index_stable_sweep - drop stale and unused nodes from the index
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

/**
 * ksm_index_round - the current scan round
 *
 * Return: the round number, which items in the unstable index carry.
 */
u32 ksm_index_round(void)
{
	return ksm_round;
}

/**
 * ksm_index_new_round - start a scan round with an empty unstable index
 *
 * Stable nodes are swept as well when stable_node_chains_prune_millisecs
 * passed since the last sweep.
 */
void ksm_index_new_round(void)
{
	unsigned long prune = READ_ONCE(ksm_tun.prune_millisecs);
	unsigned int nr;

	lockdep_assert_held(&ksm_lock);
	ksm_round++;
	if (ksm_unstable_nr_filled <= KSM_INDEX_FEW_BUCKETS) {
		while (ksm_unstable_nr_filled) {
			nr = ksm_unstable_filled[--ksm_unstable_nr_filled];
			ksm_unstable_table[nr] = NULL;
		}
	} else {
		memset(ksm_unstable_table, 0,
		       sizeof(*ksm_unstable_table) << ksm_index_bits);
		ksm_unstable_nr_filled = 0;
	}
	if (time_after_eq(jiffies, ksm_last_sweep + msecs_to_jiffies(prune)))
		ksm_index_stable_sweep();
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
	unsigned int nr = ksm_index_bucket(hash);
	struct ksm_stable_node *leader;
	struct ksm_item *item;

	lockdep_assert_held(&ksm_lock);
	hlist_for_each_entry(leader, &ksm_stable_table[nr], hnode)
		if (leader->hash == hash)
			return true;
	for (item = ksm_unstable_table[nr]; item; item = item->chain_next)
		if (item->hash == hash)
			return true;
	return false;
}

/**
 * ksm_index_unstable_insert - add an idle item to the unstable index
 * @item: the item.
 * @key: hash and domain of its page.
 */
void ksm_index_unstable_insert(struct ksm_item *item, struct ksm_index_key key)
{
	unsigned int nr = ksm_index_bucket(key.hash);
	struct ksm_item **bucket = &ksm_unstable_table[nr];

	lockdep_assert_held(&ksm_lock);
	VM_WARN_ON_ONCE(ksm_item_state(item) != KSM_ITEM_IDLE);
	if (!*bucket && ksm_unstable_nr_filled <= KSM_INDEX_FEW_BUCKETS) {
		if (ksm_unstable_nr_filled < KSM_INDEX_FEW_BUCKETS)
			ksm_unstable_filled[ksm_unstable_nr_filled] = nr;
		ksm_unstable_nr_filled++;
	}
	item->hash = key.hash;
	item->round = ksm_round;
	item->chain_next = *bucket;
	*bucket = item;
	ksm_item_set_state(item, KSM_ITEM_UNSTABLE);
	ksm_stat_add(pages_unshared, 1);
}

/**
 * ksm_index_unstable_erase - make an unstable item idle
 * @item: an item in %KSM_ITEM_UNSTABLE state, of this round or older.
 */
void ksm_index_unstable_erase(struct ksm_item *item)
{
	struct ksm_item **link;

	lockdep_assert_held(&ksm_lock);
	VM_WARN_ON_ONCE(ksm_item_state(item) != KSM_ITEM_UNSTABLE);
	if (item->round == ksm_round) {
		link = &ksm_unstable_table[ksm_index_bucket(item->hash)];
		while (*link && *link != item)
			link = &(*link)->chain_next;
		if (!WARN_ON_ONCE(!*link))
			*link = item->chain_next;
	}
	item->chain_next = NULL;
	ksm_item_set_state(item, KSM_ITEM_IDLE);
	ksm_stat_add(pages_unshared, -1);
}

/*
 * Fetch the page of an unstable item and see if it still qualifies.
 * Returns it with a folio reference, or NULL if the item should leave.
 */
static struct page *ksm_index_unstable_page(struct ksm_item *cand)
{
	unsigned long addr = ksm_item_nr(cand) << PAGE_SHIFT;
	struct folio *folio;
	struct page *page;

	folio = ksm_merge_get_folio(cand->owner, addr, &page);
	if (!folio)
		return NULL;
	if (folio_test_ksm(folio)) {
		folio_put(folio);
		return NULL;
	}
	return page;
}

/**
 * ksm_index_unstable_find - find an unstable page identical to a page
 * @key: hash and domain of @page.
 * @item: the item of @page, which is not in the unstable index.
 * @page: the page to look for.
 * @other: set to the page found, with a reference on its folio.
 *
 * Items met whose pages vanished or became KSM pages leave the index.
 *
 * Return: the item of the identical page, still in the index, or NULL.
 */
struct ksm_item *ksm_index_unstable_find(struct ksm_index_key key,
					 struct ksm_item *item,
					 struct page *page,
					 struct page **other)
{
	struct ksm_item **link = &ksm_unstable_table[ksm_index_bucket(key.hash)];
	unsigned int budget = KSM_INDEX_MAX_COMPARES;
	struct ksm_item *cand;
	struct page *opage;

	lockdep_assert_held(&ksm_lock);
	while ((cand = *link) && budget) {
		if (cand->hash != key.hash || cand == item ||
		    WARN_ON_ONCE(cand->round != ksm_round)) {
			link = &cand->chain_next;
			continue;
		}
		budget--;
		opage = ksm_index_unstable_page(cand);
		if (!opage) {
			ksm_index_unstable_erase(cand);
			continue;
		}
		/* Pages of other domains share the buckets: pass them by. */
		if (ksm_index_domain(page_folio(opage)) == key.domain &&
		    ksm_pages_same(page, opage)) {
			*other = opage;
			return cand;
		}
		folio_put(page_folio(opage));
		link = &cand->chain_next;
	}
	return NULL;
}

/**
 * ksm_index_init - allocate the index tables
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_index_init(void)
{
	int bits = ilog2(totalram_pages() | 1) - 4;

	ksm_index_bits = clamp_t(int, bits, KSM_INDEX_MIN_BITS,
				 KSM_INDEX_MAX_BITS);
	ksm_node_cache = KMEM_CACHE(ksm_stable_node, 0);
	ksm_maps_cache = kmem_cache_create("ksm_node_maps",
					   KSM_NODE_FIRST_MAPS *
					   sizeof(struct ksm_item *), 0, 0,
					   NULL);
	ksm_stable_table = kvcalloc(1U << ksm_index_bits,
				    sizeof(*ksm_stable_table), GFP_KERNEL);
	ksm_unstable_table = kvcalloc(1U << ksm_index_bits,
				      sizeof(*ksm_unstable_table), GFP_KERNEL);
	if (!ksm_node_cache || !ksm_maps_cache || !ksm_stable_table ||
	    !ksm_unstable_table) {
		kvfree(ksm_unstable_table);
		kvfree(ksm_stable_table);
		kmem_cache_destroy(ksm_maps_cache);
		kmem_cache_destroy(ksm_node_cache);
		return -ENOMEM;
	}
	return 0;
}

#include "tests/ksm-kunit.h"
