/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal interfaces between the parts of Kernel Samepage Merging:
 *
 *   ksm.c        entry points (madvise, prctl, fork/exec/exit), init
 *   ksm_index.c  stable and unstable content indexes, stable nodes
 *   ksm_merge.c  write-protect, compare, replace; breaking sharing
 *   ksm_scan.c   the scan cursor and the ksmd thread
 *   ksm_rmap.c   rmap walks, migration, memory failure, swap-in copies
 *   ksm_sysfs.c  tunables and statistics under /sys/kernel/mm/ksm/
 *   ksm_advisor.c  scan pacing: smart scan and the scan-time advisor
 */
#ifndef __MM_KSM_INTERNAL_H
#define __MM_KSM_INTERNAL_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/hashtable.h>
#include <linux/huge_mm.h>
#include <linux/ksm.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rmap.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>

/**
 * enum ksm_run_mode - what ksmd is asked to do (the "run" knob)
 * @KSM_RUN_STOP: ksmd sleeps; merged pages stay merged.
 * @KSM_RUN_MERGE: ksmd scans and merges.
 * @KSM_RUN_UNMERGE: every merged page was unshared; ksmd sleeps.
 */
enum ksm_run_mode {
	KSM_RUN_STOP = 0,
	KSM_RUN_MERGE = 1,
	KSM_RUN_UNMERGE = 2,
};

/**
 * enum ksm_advisor_mode - who sets pages_to_scan (the "advisor_mode" knob)
 * @KSM_ADVISOR_NONE: the administrator.
 * @KSM_ADVISOR_SCAN_TIME: the scan-time advisor, at the end of every round.
 */
enum ksm_advisor_mode {
	KSM_ADVISOR_NONE = 0,
	KSM_ADVISOR_SCAN_TIME = 1,
};

/* pages_to_scan at boot, and again when the advisor is switched off. */
#define KSM_DEFAULT_PAGES_TO_SCAN	100

/**
 * struct ksm_tunables - values of the writable sysfs knobs
 * @run: an &enum ksm_run_mode.
 * @pages_to_scan: pages ksmd looks at per batch.
 * @sleep_millisecs: pause between two batches.
 * @merge_across_nodes: one index for all NUMA nodes (1) or one per node (0).
 * @merge_across_cgroups: pages of all memory cgroups merge together (1), or
 *	only pages of processes in the same memory cgroup (0).
 * @use_zero_pages: map empty pages to the zero page instead of merging them.
 * @max_page_sharing: most mappings one KSM page may have.
 * @prune_millisecs: least time between two sweeps for stale stable nodes.
 * @smart_scan: look less and less often at pages that keep not merging.
 * @advisor_mode: an &enum ksm_advisor_mode.
 * @advisor_max_cpu: ksmd CPU share, in percent, the advisor stays within.
 * @advisor_min_pages: smallest pages_to_scan the advisor sets.
 * @advisor_max_pages: largest pages_to_scan the advisor sets.
 * @advisor_target_secs: round duration, in seconds, the advisor aims at.
 *
 * Written under ksm_lock by the sysfs code, and @pages_to_scan also by the
 * advisor; read with READ_ONCE() anywhere.
 */
struct ksm_tunables {
	unsigned long run;
	unsigned long pages_to_scan;
	unsigned long sleep_millisecs;
	unsigned long merge_across_nodes;
	unsigned long merge_across_cgroups;
	unsigned long use_zero_pages;
	unsigned long max_page_sharing;
	unsigned long prune_millisecs;
	unsigned long smart_scan;
	unsigned long advisor_mode;
	unsigned long advisor_max_cpu;
	unsigned long advisor_min_pages;
	unsigned long advisor_max_pages;
	unsigned long advisor_target_secs;
};

/**
 * struct ksm_stats - counters shown in sysfs
 * @pages_shared: stable nodes with at least one tracked mapping.
 * @pages_sharing: tracked mappings of KSM pages beyond the first of each.
 * @pages_unshared: items waiting in the unstable index.
 * @items: all tracking items (struct ksm_item) in use.
 * @chains: groups of stable nodes that hold the same content.
 * @dups: stable nodes that belong to such a group.
 * @pages_scanned: pages looked at by ksmd, ever.
 * @full_scans: completed passes over all registered address spaces.
 * @pages_skipped: looks at pages that smart scan left out, ever.
 *
 * Updated only through ksm_stat_add(), under ksm_lock; read with READ_ONCE().
 */
struct ksm_stats {
	unsigned long pages_shared;
	unsigned long pages_sharing;
	unsigned long pages_unshared;
	unsigned long items;
	unsigned long chains;
	unsigned long dups;
	unsigned long pages_scanned;
	unsigned long full_scans;
	unsigned long pages_skipped;
};

/**
 * struct ksm_counts - what ksmd's decisions cost, for developers
 * @looks: pages ksmd hashed to decide what to do with them.
 * @changed: looks that found the page changed since the previous look.
 * @gated: looks that found the page unchanged but still held back by
 *	the volatility gate.
 * @breaks: merged pages found replaced by a private copy (a write).
 * @compares: full compares of two pages.
 * @compare_misses: full compares that found a difference.
 *
 * Shown in debugfs as ksm/counts; updated with ksm_count() only.
 */
struct ksm_counts {
	unsigned long looks;
	unsigned long changed;
	unsigned long gated;
	unsigned long breaks;
	unsigned long compares;
	unsigned long compare_misses;
};

/**
 * struct ksm_mm - one address space registered with KSM
 * @mm: the address space; pinned with mmgrab() while registered.
 * @hnode: link in the mm lookup hash, under ksm_mm_lock.
 * @link: link in the scan list, under ksm_mm_lock.
 * @items: blocks of tracking items of this mm (struct ksm_item_block),
 *	keyed by virtual page number / %KSM_BLOCK_ITEMS; changed only under
 *	ksm_lock.
 * @dead: the mm went away while ksmd could still hold items of it;
 *	ksmd frees everything at its next visit without touching page tables.
 */
struct ksm_mm {
	struct mm_struct *mm;
	struct hlist_node hnode;
	struct list_head link;
	struct xarray items;
	bool dead;
};

/**
 * enum ksm_item_state - where a tracking item is linked
 * @KSM_ITEM_IDLE: nowhere.
 * @KSM_ITEM_UNSTABLE: in an unstable index chain (valid in its round only).
 * @KSM_ITEM_MERGED: its page is mapped from a KSM page; listed in a node.
 * @KSM_ITEM_GROUP: not a page's item but the head of a collision group in
 *	an unstable index chain (struct ksm_index_group).
 */
enum ksm_item_state {
	KSM_ITEM_IDLE = 0,
	KSM_ITEM_UNSTABLE = 1,
	KSM_ITEM_MERGED = 2,
	KSM_ITEM_GROUP = 3,
};

#define KSM_ITEM_STATE_MASK	GENMASK_ULL(1, 0)
/* The page changed since it was last hashed: wait for it to settle. */
#define KSM_ITEM_VOLATILE	BIT_ULL(2)
/* The hash field holds the hash of an earlier look at the page. */
#define KSM_ITEM_HASHED		BIT_ULL(3)
/* Smart scan: how long the page has gone without merging (saturating). */
#define KSM_ITEM_AGE_MASK	GENMASK_ULL(7, 4)
/* Volatility gate: merges of this page broken by writes, not yet forgiven. */
#define KSM_ITEM_BREAKS_MASK	GENMASK_ULL(11, 8)
#define KSM_ITEM_FLAGS_MASK	GENMASK_ULL(11, 2)
/*
 * Above the state and flags: while merged, the linear page index of the
 * mapping (rmap walks need it); otherwise the sample hash and the round.
 */
#define KSM_ITEM_NR_SHIFT	12
#define KSM_ITEM_HASH_MASK	GENMASK_ULL(43, 12)
#define KSM_ITEM_ROUND_SHIFT	44
/*
 * Rounds are kept modulo 2^20 in an item: every item is visited in every
 * round, and no mark is set further ahead than a few hundred rounds, so
 * differences of rounds modulo 2^20 are exact.
 */
#define KSM_ITEM_ROUND_MASK	(U32_MAX >> 12)
/*
 * The largest linear page index a merged item holds: 2^52 - 1 with 64-bit
 * longs, any index on 32-bit (see ksm_merge_trackable()).
 */
#define KSM_ITEM_NR_MAX							\
	((unsigned long)min_t(u64, ULONG_MAX, U64_MAX >> KSM_ITEM_NR_SHIFT))

struct ksm_stable_node;

/**
 * struct ksm_item - tracks one page of a registered address space
 * @chain_next: next item in the same unstable index bucket; while the
 *	item is in a collision group, its twig instead (ksm_index.c).
 * @node: the stable node of the KSM page, while merged.
 * @bits: state and flags in the low bits; above them the linear page
 *	index while merged, else the sample hash of the page when last
 *	looked at and a round (see below). Only read through the
 *	ksm_item_*() accessors.
 *
 * The round is the scan round in which the item joined the unstable
 * index; while idle and volatile, the first round in which its page may
 * merge. The owner and the virtual address of an item follow from where
 * it is in its struct ksm_item_block; the anon_vma of a merged mapping is
 * kept beside the item in the node's mapping array.
 *
 * All fields are changed under ksm_lock. While merged, the node's mapping
 * array holds the item, and changes to it also hold the KSM folio lock.
 */
struct ksm_item {
	union {
		struct ksm_item *chain_next;
		struct ksm_stable_node *node;
	};
	u64 bits;
};

static_assert(sizeof(struct ksm_item) <= 2 * sizeof(u64));

/*
 * Items live in blocks of KSM_BLOCK_BYTES, aligned to their size, each
 * for KSM_BLOCK_ITEMS consecutive virtual pages of one mm: an item costs
 * its 16 bytes (12 on 32-bit) and a share of one XArray slot per block,
 * rather than an XArray slot and an object of its own.
 */
#define KSM_BLOCK_BYTES		1024
#define KSM_BLOCK_ITEMS		(BITS_PER_LONG == 64 ? 62 : 83)

/**
 * struct ksm_item_block - the items of a run of virtual pages of an mm
 * @owner: the mm.
 * @first: virtual page number of @items[0].
 * @live: which items are in use.
 * @items: the items.
 */
struct ksm_item_block {
	struct ksm_mm *owner;
	unsigned long first;
	DECLARE_BITMAP(live, KSM_BLOCK_ITEMS);
	struct ksm_item items[KSM_BLOCK_ITEMS];
};

static_assert(sizeof(struct ksm_item_block) <= KSM_BLOCK_BYTES);

/* The block of @item, which must be a page's item (not a group head). */
static inline struct ksm_item_block *ksm_item_block(const struct ksm_item *item)
{
	return (struct ksm_item_block *)((unsigned long)item &
					 ~(unsigned long)(KSM_BLOCK_BYTES - 1));
}

static inline struct ksm_mm *ksm_item_owner(const struct ksm_item *item)
{
	return ksm_item_block(item)->owner;
}

/* The virtual address of the page @item tracks. */
static inline unsigned long ksm_item_addr(const struct ksm_item *item)
{
	struct ksm_item_block *block = ksm_item_block(item);

	return (block->first + (item - block->items)) << PAGE_SHIFT;
}

static inline enum ksm_item_state ksm_item_state(const struct ksm_item *item)
{
	return item->bits & KSM_ITEM_STATE_MASK;
}

/* The linear page index of a merged item's mapping. */
static inline unsigned long ksm_item_nr(const struct ksm_item *item)
{
	return item->bits >> KSM_ITEM_NR_SHIFT;
}

static inline bool ksm_item_test(const struct ksm_item *item, u64 flag)
{
	return item->bits & flag;
}

static inline void ksm_item_set_state(struct ksm_item *item,
				      enum ksm_item_state state)
{
	item->bits = (item->bits & ~KSM_ITEM_STATE_MASK) | state;
}

/* Set the linear page index of an item that becomes merged. */
static inline void ksm_item_set_nr(struct ksm_item *item, unsigned long nr)
{
	VM_WARN_ON_ONCE(nr > KSM_ITEM_NR_MAX);
	item->bits = ((u64)nr << KSM_ITEM_NR_SHIFT) |
		     (item->bits & (KSM_ITEM_STATE_MASK | KSM_ITEM_FLAGS_MASK));
}

static inline u32 ksm_item_hash(const struct ksm_item *item)
{
	return (item->bits & KSM_ITEM_HASH_MASK) >> KSM_ITEM_NR_SHIFT;
}

static inline void ksm_item_set_hash(struct ksm_item *item, u32 hash)
{
	item->bits = (item->bits & ~KSM_ITEM_HASH_MASK) |
		     ((u64)hash << KSM_ITEM_NR_SHIFT);
}

/* The round of @item, modulo 2^20. */
static inline u32 ksm_item_round(const struct ksm_item *item)
{
	return item->bits >> KSM_ITEM_ROUND_SHIFT;
}

static inline void ksm_item_set_round(struct ksm_item *item, u32 round)
{
	item->bits = (item->bits & ~(U64_MAX << KSM_ITEM_ROUND_SHIFT)) |
		     ((u64)(round & KSM_ITEM_ROUND_MASK) << KSM_ITEM_ROUND_SHIFT);
}

/* Rounds from @now to the item's round, modulo 2^20. */
static inline u32 ksm_item_rounds_ahead(const struct ksm_item *item, u32 now)
{
	return (ksm_item_round(item) - now) & KSM_ITEM_ROUND_MASK;
}

static inline void ksm_item_assign(struct ksm_item *item, u64 flag, bool on)
{
	if (on)
		item->bits |= flag;
	else
		item->bits &= ~flag;
}

/* The value of a multi-bit field (@mask: KSM_ITEM_*_MASK) of @item. */
static inline unsigned int ksm_item_field(const struct ksm_item *item,
					  u64 mask)
{
	return (item->bits & mask) >> __ffs64(mask);
}

/* Set a multi-bit field of @item, saturating at the field's largest value. */
static inline void ksm_item_set_field(struct ksm_item *item, u64 mask,
				      unsigned int val)
{
	u64 max = mask >> __ffs64(mask);

	item->bits = (item->bits & ~mask) |
		     ((min_t(u64, val, max) << __ffs64(mask)) & mask);
}

/**
 * struct ksm_map - one mapping of a KSM page, in its node's array
 * @item: the merged item of the mapping.
 * @anon_vma: the anon_vma the page is mapped through (referenced).
 */
struct ksm_map {
	struct ksm_item *item;
	struct anon_vma *anon_vma;
};

/**
 * struct ksm_stable_node - one KSM page and the mappings tracked of it
 * @rb: link in the content-ordered tree of a stable index bucket; only
 *	the group leader is linked.
 * @group: the other nodes with the same content (dups); empty if alone.
 *	A node that could not be placed in its tree yet (a KSM page on its
 *	path was frozen) waits on the index's pending list through it.
 * @maps: the mappings of this KSM page; @nr_maps used, @max_maps
 *	allocated.
 * @nr_maps: number of entries used in @maps.
 * @max_maps: number of entries allocated in @maps.
 * @kpfn: pfn of the KSM folio; folio_migrate_ksm() moves it.
 * @hash: sample hash of the content.
 * @domain: index domain (see ksm_domain_make()) of the mms that created
 *	the KSM page and may map it.
 * @indexed: linked in the stable index (leader, group member or pending).
 * @pending: waiting on the pending list instead of a tree.
 * @guessed_wrong: merged into without a compare first (ksm_index_stable_guess())
 *	and found to hold other contents: always compared first from then on.
 * @fhash_known: @fhash is set.
 * @fhash: full hash of the KSM page, which orders it among the nodes of
 *	its key (see ksm_stable_cmp()); computed once another node of the
 *	key is met.
 *
 * The KSM folio's ->mapping points here (with PAGE_MAPPING_KSM) for as long
 * as the node lives. Index links are changed under ksm_lock; @maps, @nr_maps
 * and @kpfn also with the KSM folio locked, which is what rmap walks hold.
 */
struct ksm_stable_node {
	struct rb_node rb;
	struct list_head group;
	struct ksm_map *maps;
	unsigned int nr_maps;
	unsigned int max_maps;
	unsigned long kpfn;
	u32 hash;
	int domain;
	bool indexed;
	bool pending;
	bool guessed_wrong;
	bool fhash_known;
	u32 fhash;
};

/**
 * struct ksm_index_key - what locates a page in the indexes
 * @hash: sample hash of the contents.
 * @domain: index domain of the page: any small integer, made by
 *	ksm_domain_make().
 */
struct ksm_index_key {
	u32 hash;
	int domain;
};

/*
 * An index domain is a NUMA part (the page's node when merge_across_nodes
 * is 0, else 0: ksm_index_domain()) and a memory cgroup part (the memcg id
 * of the mm when merge_across_cgroups is 0, else 0: ksm_cgroup_domain()).
 * Both are packed losslessly into one int, cgroup part above the node bits,
 * so that two domains are equal exactly when both parts are, and domains
 * stay a plain integer order for the index.
 */
#define KSM_DOMAIN_NODE_BITS	NODES_SHIFT
#define KSM_DOMAIN_NODE_MASK	(BIT(KSM_DOMAIN_NODE_BITS) - 1)
/* memcg ids are at most MEM_CGROUP_ID_MAX, which fits 16 bits. */
static_assert(KSM_DOMAIN_NODE_BITS + 16 < 31);

static inline int ksm_domain_make(unsigned int cgroup, int node)
{
	VM_WARN_ON_ONCE(cgroup > U16_MAX || node > KSM_DOMAIN_NODE_MASK);
	return (int)((cgroup << KSM_DOMAIN_NODE_BITS) | node);
}

static inline int ksm_domain_node(int domain)
{
	return domain & KSM_DOMAIN_NODE_MASK;
}

static inline unsigned int ksm_domain_cgroup(int domain)
{
	return (unsigned int)domain >> KSM_DOMAIN_NODE_BITS;
}

/*
 * Page table locking, spelled out for sparse: pte_offset_map_lock() names
 * only the page table lock it takes, yet pte_unmap_unlock() also leaves the
 * RCU read side that mapping the page table entered; pmd_trans_huge_lock()
 * names nothing. Pair ksm_pte_map_lock() with pte_unmap_unlock() and
 * ksm_pmd_huge_lock() with spin_unlock().
 */
static inline pte_t *ksm_pte_map_lock(struct mm_struct *mm, pmd_t *pmd,
				      unsigned long addr, spinlock_t **ptlp)
{
	pte_t *pte;

	__cond_lock(RCU, pte = pte_offset_map_lock(mm, pmd, addr, ptlp));
	return pte;
}

static inline spinlock_t *ksm_pmd_huge_lock(pmd_t *pmd,
					    struct vm_area_struct *vma)
{
	spinlock_t *ptl;

	__cond_lock(ptl, ptl = pmd_trans_huge_lock(pmd, vma));
	return ptl;
}

/* ksm.c */
extern struct mutex ksm_lock;
extern atomic_t ksm_lock_waiters;
extern spinlock_t ksm_mm_lock;
extern struct list_head ksm_mm_list;
extern struct ksm_tunables ksm_tun;
extern struct ksm_stats ksm_stats;
extern struct ksm_counts ksm_counts;

/*
 * ksm_lock for anyone but ksmd: a knob store or a merge request should not
 * wait for the whole of a large pages_to_scan batch, so ksmd lets go of the
 * lock at its next chunk of pages while someone is announced here.
 */
static inline void ksm_lock_other(void)
{
	atomic_inc(&ksm_lock_waiters);
	mutex_lock(&ksm_lock);
	atomic_dec(&ksm_lock_waiters);
}

static inline int ksm_lock_other_killable(void)
{
	int err;

	atomic_inc(&ksm_lock_waiters);
	err = mutex_lock_killable(&ksm_lock);
	atomic_dec(&ksm_lock_waiters);
	return err;
}
extern wait_queue_head_t ksmd_wait;

#define ksm_stat_add(field, delta)					\
	do {								\
		lockdep_assert_held(&ksm_lock);				\
		WRITE_ONCE(ksm_stats.field, ksm_stats.field + (delta));	\
	} while (0)

/* Lossy when two updaters race (only KUnit can race ksmd): debug figures. */
#define ksm_count(field)						\
	WRITE_ONCE(ksm_counts.field, READ_ONCE(ksm_counts.field) + 1)

bool ksm_vma_compatible(struct vm_area_struct *vma);
bool ksm_mm_gone(struct ksm_mm *slot);
struct ksm_item *ksm_mm_item(struct mm_struct *mm, unsigned long addr,
			     struct ksm_mm **slotp);
void ksm_mm_unlink(struct ksm_mm *slot);
void ksm_mm_free(struct ksm_mm *slot);

/* ksm_index.c */
struct ksm_stable_node *folio_ksm_node(struct folio *folio);
u32 ksm_index_page_hash(struct page *page);
int ksm_pages_cmp(struct page *page1, struct page *page2);
bool ksm_pages_same(struct page *page1, struct page *page2);
int ksm_index_domain(struct folio *folio);
int ksm_item_domain(const struct ksm_item *item, struct folio *folio);
struct folio *ksm_node_get_folio(struct ksm_stable_node *node);
struct ksm_stable_node *ksm_node_alloc(void);
void ksm_node_free(struct ksm_stable_node *node);
int ksm_node_add_map(struct ksm_stable_node *node, struct ksm_item *item,
		     struct anon_vma *anon_vma);
struct anon_vma *ksm_node_del_map(struct ksm_stable_node *node,
				  struct ksm_item *item);
bool ksm_node_has_room(const struct ksm_stable_node *node);
bool ksm_node_spare(const struct ksm_stable_node *node);
void ksm_node_prepare(const struct ksm_stable_node *node);
int ksm_node_reserve(struct ksm_stable_node *node);
void ksm_node_retire(struct ksm_stable_node *node, struct folio *kfolio);
struct ksm_stable_node *ksm_index_stable_find(struct ksm_index_key key,
					      struct page *page,
					      struct folio **kfolio);
struct ksm_stable_node *ksm_index_stable_guess(struct ksm_index_key key,
					       struct folio **kfolio);
void ksm_index_stable_guess_wrong(struct ksm_stable_node *node);
void ksm_index_stable_insert(struct ksm_stable_node *node,
			     struct folio *kfolio);
void ksm_index_stable_erase(struct ksm_stable_node *node);
bool ksm_index_stable_empty(void);

extern unsigned long ksm_index_live_nodes;

/*
 * No node is in the stable index (with ksm_lock held): a stable lookup
 * cannot find one, and the caller may skip it.
 */
static inline bool ksm_index_stable_vacant(void)
{
	return !ksm_index_live_nodes;
}

void ksm_index_stable_sweep(void);
bool ksm_index_hash_known(u32 hash);
void ksm_index_unstable_insert(struct ksm_item *item, struct ksm_index_key key);
void ksm_index_unstable_erase(struct ksm_item *item);
struct ksm_item *ksm_index_unstable_find(struct ksm_index_key key,
					 struct ksm_item *item,
					 struct page *page,
					 struct page **other);
u32 ksm_index_round(void);
void ksm_index_new_round(void);

/**
 * struct ksm_index_ops - what the index asks of the layers above it
 * @item_page: the page an unstable item tracks, with a reference on its
 *	folio, or NULL if the item no longer qualifies (its page went away
 *	or became a KSM page). Called under the index lock.
 * @item_domain: the index domain of an unstable item whose page is in
 *	@folio (ksm_item_domain() for the live index).
 * @node_moved: a KSM page was found outside the domain of its node.
 */
struct ksm_index_ops {
	struct page *(*item_page)(struct ksm_item *item);
	int (*item_domain)(const struct ksm_item *item, struct folio *folio);
	void (*node_moved)(void);
};

int ksm_index_init(const struct ksm_index_ops *ops);

/* ksm_merge.c */
struct vm_area_struct *ksm_merge_find_vma(struct ksm_mm *slot,
					  unsigned long addr);
struct folio *ksm_merge_get_folio(struct ksm_mm *slot, unsigned long addr,
				  struct page **pagep);
int ksm_merge_into_node(struct ksm_item *item, unsigned long addr,
			struct page *page, struct ksm_stable_node *node,
			struct folio *kfolio);
int ksm_merge_pair(struct ksm_item *item, unsigned long addr,
		   struct page *page, struct ksm_item *other,
		   struct page *opage);
int ksm_merge_adopt(struct ksm_item *item, unsigned long addr,
		    struct folio *kfolio);
int ksm_merge_zero(struct ksm_item *item, unsigned long addr,
		   struct page *page);
void ksm_merge_unlink(struct ksm_item *item, unsigned long addr);
bool ksm_merge_unshare(struct ksm_item *item, unsigned long addr);
int ksm_merge_break_range(struct vm_area_struct *vma, unsigned long start,
			  unsigned long end);

int ksm_merge_leave_node(struct ksm_item *item, unsigned long addr);

/* ksm_cgroup.c */
unsigned int ksm_cgroup_domain(struct ksm_mm *slot);
bool ksm_cgroup_foreign(struct ksm_mm *slot,
			const struct ksm_stable_node *node);

/* ksm_scan.c */
bool ksm_scan_is_cursor(struct ksm_mm *slot);
struct ksm_item *ksm_item_alloc(struct ksm_mm *slot, unsigned long addr);
struct ksm_item *ksm_items_load(struct ksm_mm *slot, unsigned long addr);
void ksm_item_free(struct ksm_mm *slot, unsigned long addr,
		   struct ksm_item *item);
void ksm_scan_drop_items(struct ksm_mm *slot);
int ksm_scan_range(struct ksm_mm *slot, unsigned long start,
		   unsigned long end);
int ksm_scan_unmerge_all(void);
void ksm_scan_restart(void);
void ksm_scan_sync_breaks(void);
int ksm_scan_init(void);
int ksmd_start(void);

/**
 * struct ksm_knob_range - what a knob accepts
 * @min: smallest value.
 * @max: largest value.
 * @type_max: if set, the largest value of the knob's type: parse errors
 *	are passed on as they are and larger values are -ERANGE, as the
 *	6.12 store functions of such knobs did. Otherwise every bad write
 *	is -EINVAL.
 * @boolean: the knob takes kstrtobool() words as well as 0 and 1.
 * @names: if set, the knob takes only these words (NULL-terminated), and
 *	its value is the index of the word; @min and @max are not used.
 */
struct ksm_knob_range {
	unsigned long min;
	unsigned long max;
	unsigned long type_max;
	bool boolean;
	const char * const *names;
};

/* ksm_sysfs.c */
int ksm_knob_parse(const char *buf, const struct ksm_knob_range *range,
		   unsigned long *val);
long ksm_general_profit(unsigned long sharing, unsigned long zero_pages,
			unsigned long items);
int ksm_sysfs_init(void);

/*
 * ksm_memory.c: NUMA moves and memory hot-remove (issue 4), with the
 * helper of ksm_index.c it uses.
 */
void ksm_index_stable_walk(void (*fn)(struct ksm_stable_node *node, void *arg),
			   void *arg);
void ksm_memory_node_moved(void);
unsigned long ksm_memory_rehome(void);
bool ksm_memory_offlining(void);
int ksm_memory_init(void);
/* ksm_scan.c, for __ksm_enter() */
struct ksm_mm *ksm_scan_cursor_mm(void);

/**
 * struct ksm_advisor_limits - what the scan-time advisor aims at
 * @target_secs: round duration, in seconds.
 * @max_cpu: most ksmd CPU time, in percent of the round's duration.
 * @min_pages: smallest pages_to_scan to choose.
 * @max_pages: largest pages_to_scan to choose; wins over @min_pages.
 */
struct ksm_advisor_limits {
	unsigned long target_secs;
	unsigned long max_cpu;
	unsigned long min_pages;
	unsigned long max_pages;
};

/* ksm_advisor.c */
unsigned int ksm_smart_period(unsigned int age);
bool ksm_smart_skip(struct ksm_item *item, bool ksm_page, u32 round);
unsigned int ksm_advisor_cpu_percent(u64 wall_ns, u64 cpu_ns);
unsigned long ksm_advisor_batch(const struct ksm_advisor_limits *lim,
				unsigned long batch, u64 wall_ns, u64 cpu_ns);
void ksm_advisor_round_start(struct task_struct *ksmd);
void ksm_advisor_round_end(struct task_struct *ksmd);
void ksm_advisor_restart(void);
void ksm_advisor_set_mode(unsigned long mode);

#endif /* __MM_KSM_INTERNAL_H */
