// SPDX-License-Identifier: GPL-2.0-only
/*
 * The KSM scan cursor and the ksmd thread.
 *
 * ksmd walks the registered address spaces one after the other, in
 * batches of pages_to_scan pages. For each batch it walks the populated
 * page tables of mergeable VMAs from the cursor on, under the mmap lock,
 * and picks up to KSM_SCAN_BATCH present anonymous pages with a reference
 * on each; then it drops the mmap lock and looks at the pages one by one.
 * Items whose pages were not met by the walk (unmapped, swapped out, VMA
 * gone or no longer mergeable) are freed as the cursor passes them.
 *
 * A page met for the first time is looked up in the stable index, then in
 * the unstable index, and inserted there if nothing matched: identical
 * pages merge in the first round that sees them. Only pages marked
 * volatile have to keep the same sample hash through full scans first;
 * how many is the volatility gate's choice (ksm_scan_settled()).
 */

#include <linux/mm.h>
#include <linux/freezer.h>
#include <linux/kthread.h>
#include <linux/oom.h>
#include <linux/pagewalk.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <trace/events/ksm.h>

#include "ksm_internal.h"

#define KSM_SCAN_BATCH		64
/*
 * The volatility gate, in full scans (see ksm_scan_settled()): a page that
 * changed after a merge of it was broken must stay unchanged through
 * KSM_GATE_ROUNDS << (breaks - 1) scans, at most << KSM_GATE_MAX_SHIFT;
 * a page seen merged in every KSM_GATE_FORGIVE_ROUNDS-th scan is forgiven
 * one break.
 */
#define KSM_GATE_ROUNDS		32
#define KSM_GATE_MAX_SHIFT	3
#define KSM_GATE_FORGIVE_ROUNDS	16

/**
 * struct ksm_scan_pick - a page picked up by the page table walk
 * @addr: its address.
 * @page: the page with a reference on its folio, or NULL for a page of a
 *	large folio: that one is looked up again when its turn comes, so
 *	that no extra references stop the folio from being split.
 * @merged: the page is the KSM page its item is merged with: nothing to do
 *	(@page is NULL then).
 * @item: the item of the page, once known (NULL: none yet).
 */
struct ksm_scan_pick {
	unsigned long addr;
	struct page *page;
	bool merged;
	struct ksm_item *item;
};

/**
 * struct ksm_scan_batch - pages picked up by one walk
 * @slot: the mm walked.
 * @block: the block of items last looked at, or NULL for none there.
 * @block_key: the key of @block in the items of @slot (ULONG_MAX: none).
 * @block_gen: ksm_block_gen when @block was looked up.
 * @nr: pages picked.
 * @max: most pages to pick.
 * @next: where the walk stopped; the cursor moves there.
 * @picks: the pages, in address order.
 */
struct ksm_scan_batch {
	struct ksm_mm *slot;
	struct ksm_item_block *block;
	unsigned long block_key;
	unsigned long block_gen;
	unsigned int nr;
	unsigned int max;
	unsigned long next;
	struct ksm_scan_pick picks[KSM_SCAN_BATCH];
};

/**
 * struct ksm_cursor - where ksmd is
 * @slot: the mm being scanned, NULL between rounds. Changed under both
 *	ksm_lock and ksm_mm_lock, so either is enough to read it.
 * @addr: next address to look at in it; under ksm_lock.
 * @behind: items of @slot below @addr; under ksm_lock. With the mm's
 *	item count it tells whether any item lies ahead outside the picks.
 */
struct ksm_cursor {
	struct ksm_mm *slot;
	unsigned long addr;
	unsigned long behind;
};

static struct ksm_cursor ksm_cursor;
static struct ksm_scan_batch ksm_batch;
/* Changes whenever a block of items is made or freed; under ksm_lock. */
static unsigned long ksm_block_gen;
static struct task_struct *ksmd_task;
static u32 ksm_zero_hash;

/**
 * ksm_scan_is_cursor - is ksmd working on this mm?
 * @slot: the mm; ksm_mm_lock is held.
 *
 * Return: true if the cursor is on @slot.
 */
bool ksm_scan_is_cursor(struct ksm_mm *slot)
{
	lockdep_assert_held(&ksm_mm_lock);
	return ksm_cursor.slot == slot;
}

/**
 * ksm_scan_cursor_mm - the mm ksmd is working on
 *
 * Return: the cursor's mm, or NULL between rounds; ksm_mm_lock is held.
 */
struct ksm_mm *ksm_scan_cursor_mm(void)
{
	lockdep_assert_held(&ksm_mm_lock);
	return ksm_cursor.slot;
}

/*
 * ksmd tracks a page only if memory is at hand: a failed allocation skips
 * the page until the next round, so neither a block of items nor its
 * XArray slot may retry reclaim hard, wake the OOM killer or dip into
 * reserves.
 */
#define KSM_ITEM_GFP	(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN)

static_assert((KSM_GATE_ROUNDS << KSM_GATE_MAX_SHIFT) < KSM_ITEM_ROUND_MASK / 2);

static struct kmem_cache *ksm_block_cache;

static unsigned long ksm_block_key(unsigned long vpn)
{
	return vpn / KSM_BLOCK_ITEMS;
}

/* The item of virtual page @vpn in @block (which covers it), if live. */
static struct ksm_item *ksm_block_item(struct ksm_item_block *block,
				       unsigned long vpn)
{
	unsigned int i = vpn - block->first;

	return test_bit(i, block->live) ? &block->items[i] : NULL;
}

/**
 * ksm_items_load - the item of the page at an address
 * @slot: the registered mm.
 * @addr: the address.
 *
 * Items change only under ksm_lock, which the caller holds, or the caller
 * holds the RCU read lock and only looks.
 *
 * Return: the item, or NULL if the page has none.
 */
struct ksm_item *ksm_items_load(struct ksm_mm *slot, unsigned long addr)
{
	unsigned long vpn = addr >> PAGE_SHIFT;
	struct ksm_item_block *block;

	block = xa_load(&slot->items, ksm_block_key(vpn));
	return block ? ksm_block_item(block, vpn) : NULL;
}

/*
 * The first live item at virtual page *@vpn or after it, with *@vpn set
 * to its page; NULL if none.
 */
static struct ksm_item *ksm_items_find(struct ksm_mm *slot, unsigned long *vpn)
{
	unsigned long key = ksm_block_key(*vpn), i;
	struct ksm_item_block *block;

	for (block = xa_find(&slot->items, &key, ULONG_MAX, XA_PRESENT); block;
	     block = xa_find_after(&slot->items, &key, ULONG_MAX, XA_PRESENT)) {
		i = *vpn > block->first ? *vpn - block->first : 0;
		i = find_next_bit(block->live, KSM_BLOCK_ITEMS, i);
		if (i < KSM_BLOCK_ITEMS) {
			*vpn = block->first + i;
			return &block->items[i];
		}
	}
	return NULL;
}

/* Count in a new item of @slot at @addr. */
static void ksm_item_count_in(struct ksm_mm *slot, unsigned long addr)
{
	lockdep_assert_held(&ksm_lock);
	slot->mm->ksm_rmap_items++;
	if (slot == ksm_cursor.slot && addr < ksm_cursor.addr)
		ksm_cursor.behind++;
	ksm_stat_add(items, 1);
}

/* Take the slot of the page at @addr in @block, which covers it. */
static struct ksm_item *ksm_item_claim(struct ksm_mm *slot,
				       struct ksm_item_block *block,
				       unsigned long addr)
{
	unsigned int i = (addr >> PAGE_SHIFT) - block->first;

	VM_WARN_ON_ONCE(test_bit(i, block->live));
	__set_bit(i, block->live);
	memset(&block->items[i], 0, sizeof(block->items[i]));
	ksm_item_count_in(slot, addr);
	return &block->items[i];
}

/**
 * ksm_item_alloc - start tracking the page at an address
 * @slot: the mm.
 * @addr: the address; no item exists for it.
 *
 * Return: the new idle item, or NULL when out of memory.
 */
struct ksm_item *ksm_item_alloc(struct ksm_mm *slot, unsigned long addr)
{
	unsigned long vpn = addr >> PAGE_SHIFT, key = ksm_block_key(vpn);
	struct ksm_item_block *block;

	lockdep_assert_held(&ksm_lock);
	block = xa_load(&slot->items, key);
	if (!block) {
		block = kmem_cache_alloc(ksm_block_cache, KSM_ITEM_GFP);
		if (!block)
			return NULL;
		block->owner = slot;
		block->first = key * KSM_BLOCK_ITEMS;
		bitmap_zero(block->live, KSM_BLOCK_ITEMS);
		if (xa_err(xa_store(&slot->items, key, block, KSM_ITEM_GFP))) {
			kmem_cache_free(ksm_block_cache, block);
			return NULL;
		}
		ksm_block_gen++;
	}
	return ksm_item_claim(slot, block, addr);
}

/* Unlink @item and count it out; its block still holds it. */
static void ksm_item_release(struct ksm_mm *slot, unsigned long addr,
			     struct ksm_item *item)
{
	lockdep_assert_held(&ksm_lock);
	if (ksm_item_state(item) == KSM_ITEM_MERGED)
		ksm_merge_unlink(item, addr);
	else if (ksm_item_state(item) == KSM_ITEM_UNSTABLE)
		ksm_index_unstable_erase(item);
	slot->mm->ksm_rmap_items--;
	if (slot == ksm_cursor.slot && addr < ksm_cursor.addr)
		ksm_cursor.behind--;
	ksm_stat_add(items, -1);
}

static void ksm_block_free(struct ksm_mm *slot, struct ksm_item_block *block)
{
	xa_erase(&slot->items, ksm_block_key(block->first));
	kmem_cache_free(ksm_block_cache, block);
	ksm_block_gen++;
}

/**
 * ksm_item_free - stop tracking the page at an address
 * @slot: the mm.
 * @addr: the address.
 * @item: its item, unlinked from wherever it is first.
 */
void ksm_item_free(struct ksm_mm *slot, unsigned long addr,
		   struct ksm_item *item)
{
	struct ksm_item_block *block = ksm_item_block(item);

	ksm_item_release(slot, addr, item);
	__clear_bit(item - block->items, block->live);
	if (bitmap_empty(block->live, KSM_BLOCK_ITEMS))
		ksm_block_free(slot, block);
}

/**
 * ksm_scan_drop_items - free all items of an mm
 * @slot: the mm.
 *
 * Nobody looks items up without ksm_lock, which is held throughout, so
 * the blocks can be walked while items are released (which may sleep).
 */
void ksm_scan_drop_items(struct ksm_mm *slot)
{
	struct ksm_item_block *block;
	unsigned long key, i;

	lockdep_assert_held(&ksm_lock);
	xa_for_each(&slot->items, key, block) {
		for_each_set_bit(i, block->live, KSM_BLOCK_ITEMS)
			ksm_item_release(slot, (block->first + i) << PAGE_SHIFT,
					 &block->items[i]);
		ksm_block_free(slot, block);
		cond_resched();
	}
	xa_destroy(&slot->items);
}

static int ksm_scan_test_walk(unsigned long start, unsigned long end,
			      struct mm_walk *walk)
{
	struct vm_area_struct *vma = walk->vma;

	return !(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma;
}

static bool ksm_scan_add(struct ksm_scan_batch *batch, unsigned long addr,
			 struct page *page, struct ksm_item *merged)
{
	if (batch->nr == batch->max) {
		batch->next = addr;
		return false;
	}
	batch->picks[batch->nr].addr = addr;
	batch->picks[batch->nr].page = page;
	batch->picks[batch->nr].merged = merged;
	batch->picks[batch->nr].item = merged;
	batch->nr++;
	return true;
}

/*
 * Is @folio, mapped at @addr, the KSM page the item of @addr is merged
 * with? Then the page needs no reference and no second look. ksmd holds
 * ksm_lock, under which items change, and the page table lock keeps the
 * folio mapped.
 */
/*
 * The item of virtual page @vpn, through the block the batch looked at
 * last: pages come in address order, so most share it. Blocks change only
 * under ksm_lock, which ksmd holds, and every change bumps ksm_block_gen.
 */
static struct ksm_item *ksm_scan_item_at(struct ksm_scan_batch *batch,
					 unsigned long vpn)
{
	unsigned long key = ksm_block_key(vpn);

	if (key != batch->block_key || batch->block_gen != ksm_block_gen) {
		batch->block = xa_load(&batch->slot->items, key);
		batch->block_key = key;
		batch->block_gen = ksm_block_gen;
	}
	return batch->block ? ksm_block_item(batch->block, vpn) : NULL;
}

static struct ksm_item *ksm_scan_merged(struct ksm_scan_batch *batch,
					unsigned long addr, struct folio *folio)
{
	unsigned long idx = addr >> PAGE_SHIFT;
	struct ksm_item *item;

	if (!folio_test_ksm(folio))
		return NULL;
	/* The page table map holds the RCU read lock the cursor needs. */
	item = ksm_scan_item_at(batch, idx);
	/* A mapping of a spare KSM page takes the slow path, to be moved. */
	if (item && ksm_item_state(item) == KSM_ITEM_MERGED &&
	    item->node == folio_ksm_node(folio) && !ksm_node_spare(item->node))
		return item;
	return NULL;
}

/*
 * A merged page under migration is still there: its item must not be
 * freed as if the page had gone, which would unlink it from its KSM page
 * until ksmd meets the page again (and, while the migration holds the
 * folio lock, keep ksmd from linking it back, picking the page with a
 * reference every round, which makes the migration fail).
 */
static struct ksm_item *ksm_scan_migrating(struct ksm_scan_batch *batch,
					   unsigned long addr, pte_t pte)
{
	struct ksm_item *item;
	swp_entry_t entry;

	if (pte_present(pte) || pte_none(pte))
		return NULL;
	entry = pte_to_swp_entry(pte);
	if (!is_migration_entry(entry) ||
	    !folio_test_ksm(pfn_swap_entry_folio(entry)))
		return NULL;
	item = ksm_items_load(batch->slot, addr);
	if (item && ksm_item_state(item) == KSM_ITEM_MERGED)
		return item;
	return NULL;
}

/* A huge pmd: pick its subpages, to be looked up one at a time. */
static int ksm_scan_huge_pmd(pmd_t *pmd, unsigned long addr,
			     unsigned long end, struct mm_walk *walk)
{
	spinlock_t *ptl = ksm_pmd_huge_lock(pmd, walk->vma);
	int ret = 0;

	if (!ptl) {
		walk->action = ACTION_AGAIN;
		return 0;
	}
	if (!is_huge_zero_pmd(*pmd) && PageAnon(pmd_page(*pmd))) {
		for (; addr < end; addr += PAGE_SIZE) {
			if (!ksm_scan_add(walk->private, addr, NULL, NULL)) {
				ret = 1;
				break;
			}
		}
	}
	spin_unlock(ptl);
	return ret;
}

static struct page *ksm_scan_pte_page(struct vm_area_struct *vma,
				      unsigned long addr, pte_t pte)
{
	struct page *page;

	if (!pte_present(pte))
		return NULL;
	page = vm_normal_page(vma, addr, pte);
	if (!page || !PageAnon(page))
		return NULL;
	return page;
}

/*
 * The first non-empty pte from @pte on, or @last. Sparse page tables are
 * mostly empty entries: each costs a load, a test and the loop's step.
 * Out of line and tested at the bottom, so that the loop keeps both
 * pointers in registers whatever the caller holds.
 */
static noinline pte_t *ksm_scan_skip_none(pte_t *pte, pte_t *last)
{
	if (pte >= last)
		return last;
	do {
		if (!pte_none(ptep_get(pte)))
			return pte;
	} while (++pte < last);
	return last;
}

/* Pick the page a non-empty pte maps, if any; false if the batch is full. */
static bool ksm_scan_pte(struct mm_walk *walk, unsigned long addr,
			 pte_t pteval)
{
	struct ksm_item *item;
	struct folio *folio;
	struct page *page;

	page = ksm_scan_pte_page(walk->vma, addr, pteval);
	if (!page) {
		item = ksm_scan_migrating(walk->private, addr, pteval);
		return !item || ksm_scan_add(walk->private, addr, NULL, item);
	}
	folio = page_folio(page);
	item = ksm_scan_merged(walk->private, addr, folio);
	if (item)
		return ksm_scan_add(walk->private, addr, NULL, item);
	if (!ksm_scan_add(walk->private, addr,
			  folio_test_large(folio) ? NULL : page, NULL))
		return false;
	if (!folio_test_large(folio))
		folio_get(folio);
	return true;
}

static int ksm_scan_pmd_entry(pmd_t *pmd, unsigned long addr,
			      unsigned long end, struct mm_walk *walk)
{
	pmd_t pmdval = pmdp_get_lockless(pmd);
	pte_t *start, *last, *pte;
	spinlock_t *ptl;	/* of the page table, held while it is read */
	int ret = 0;

	if (pmd_trans_huge(pmdval))
		return ksm_scan_huge_pmd(pmd, addr, end, walk);
	if (pmd_none(pmdval) || !pmd_present(pmdval))
		return 0;
	start = ksm_pte_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start) {
		walk->action = ACTION_AGAIN;
		return 0;
	}
	last = start + ((end - addr) >> PAGE_SHIFT);
	for (pte = start; ; pte++) {
		pte = ksm_scan_skip_none(pte, last);
		if (pte == last)
			break;
		if (!ksm_scan_pte(walk, addr + ((pte - start) << PAGE_SHIFT),
				  ptep_get(pte))) {
			ret = 1;
			break;
		}
	}
	pte_unmap_unlock(start, ptl);
	return ret;
}

static const struct mm_walk_ops ksm_scan_walk_ops = {
	.test_walk	= ksm_scan_test_walk,
	.pmd_entry	= ksm_scan_pmd_entry,
	.walk_lock	= PGWALK_RDLOCK,
};

/* Pick up to @max pages of @slot in [@start, @end). */
static void ksm_scan_collect(struct ksm_mm *slot, struct ksm_scan_batch *batch,
			     unsigned long start, unsigned long end,
			     unsigned int max)
{
	struct mm_struct *mm = slot->mm;
	int ret = 0;

	lockdep_assert_held(&ksm_lock);
	batch->slot = slot;
	batch->block_key = ULONG_MAX;
	batch->nr = 0;
	batch->max = max;
	mmap_read_lock(mm);
	if (!ksm_mm_gone(slot) && start < end)
		ret = walk_page_range(mm, start, end, &ksm_scan_walk_ops, batch);
	if (ret != 1)
		batch->next = end;
	mmap_read_unlock(mm);
}

/*
 * The volatility gate. A page that changes keeps its item volatile, and
 * ->round, unused while the item is idle and volatile, holds the first
 * scan round in which the page may merge, provided its sample hash stays
 * the same until then. A page whose hash changed waits one full scan, as
 * a checksum compared between visits would. So does a page whose merge a
 * write broke (a "break"): if it still holds the content it was merged
 * with (data written over with the same data), it merges again in the
 * next scan.
 *
 * A page whose content changed after a break is the costly case: each
 * merge of it buys one copy-on-write fault. Scans over a small or mostly
 * merged set of pages take milliseconds, so a wait of a scan or two would
 * merge such a page again before almost every write. It waits
 * KSM_GATE_ROUNDS scans instead, twice as many for every further break,
 * until the wait outlasts the time between its writes and it is left
 * alone. Breaks are forgiven one by one, more slowly than they are counted,
 * while the page stays merged (ksm_gate_forgive()).
 */
static u32 ksm_gate_rounds(unsigned int breaks)
{
	if (!breaks)
		return 1;
	return KSM_GATE_ROUNDS << min(breaks - 1, KSM_GATE_MAX_SHIFT);
}

static void ksm_gate_hold(struct ksm_item *item, u32 rounds)
{
	ksm_item_assign(item, KSM_ITEM_VOLATILE, true);
	ksm_item_set_round(item, ksm_index_round() + rounds);
}

/*
 * Is the volatile @item held back in this round? A mark further ahead
 * than the longest hold was not set by the gate, and holds nothing.
 */
static bool ksm_gate_holds(const struct ksm_item *item)
{
	u32 ahead = ksm_item_rounds_ahead(item, ksm_index_round());

	return ahead && ahead <= (KSM_GATE_ROUNDS << KSM_GATE_MAX_SHIFT);
}

/* A merge of @item, unlinked just now, was broken by a write. */
static void ksm_gate_break(struct ksm_item *item)
{
	unsigned int breaks = ksm_item_field(item, KSM_ITEM_BREAKS_MASK);

	ksm_count(breaks);
	ksm_item_set_field(item, KSM_ITEM_BREAKS_MASK, breaks + 1);
	ksm_gate_hold(item, 1);
}

/*
 * @item was seen still merged: its page stayed unchanged through another
 * full scan. Forgiving a break per scan would let a page rewritten every
 * few dozen scans climb back to short waits between its writes; one per
 * KSM_GATE_FORGIVE_ROUNDS scans lets a page that keeps breaking climb to
 * waits longer than its writes are apart, and a page that settled be
 * forgiven all its breaks within 240 scans.
 */
static void ksm_gate_forgive(struct ksm_item *item)
{
	unsigned int breaks = ksm_item_field(item, KSM_ITEM_BREAKS_MASK);

	if (breaks && !(ksm_index_round() % KSM_GATE_FORGIVE_ROUNDS))
		ksm_item_set_field(item, KSM_ITEM_BREAKS_MASK, breaks - 1);
}

/* Did the page settle? Record its hash @hash, and apply the gate. */
static bool ksm_scan_settled(struct ksm_item *item, u32 hash)
{
	unsigned int breaks = ksm_item_field(item, KSM_ITEM_BREAKS_MASK);
	bool changed = ksm_item_test(item, KSM_ITEM_HASHED) &&
		       ksm_item_hash(item) != hash;

	ksm_count(looks);
	ksm_item_set_hash(item, hash);
	ksm_item_assign(item, KSM_ITEM_HASHED, true);
	if (changed) {
		ksm_count(changed);
		ksm_gate_hold(item, ksm_gate_rounds(breaks));
		return false;
	}
	if (!ksm_item_test(item, KSM_ITEM_VOLATILE))
		return true;
	if (ksm_gate_holds(item)) {
		ksm_count(gated);
		return false;
	}
	ksm_item_assign(item, KSM_ITEM_VOLATILE, false);
	return true;
}

/* Unlink @item before a new look; false if it still maps @folio merged. */
static bool ksm_scan_release(struct ksm_item *item, unsigned long addr,
			     struct folio *folio)
{
	switch (ksm_item_state(item)) {
	case KSM_ITEM_MERGED:
		if (folio_ksm_node(folio) == item->node)
			return false;
		/* A write (or an unshare) replaced the KSM page. */
		ksm_merge_unlink(item, addr);
		ksm_gate_break(item);
		break;
	case KSM_ITEM_UNSTABLE:
		ksm_index_unstable_erase(item);
		break;
	case KSM_ITEM_IDLE:
		break;
	case KSM_ITEM_GROUP:
		/* Only collision group heads, which no page owns. */
		VM_WARN_ON_ONCE(1);
		break;
	}
	return true;
}

static bool ksm_scan_try_stable(struct ksm_item *item, unsigned long addr,
				struct page *page, struct ksm_index_key key)
{
	struct ksm_stable_node *node;
	struct folio *kfolio;
	int err;

	/* Until the first KSM page, no page is looked up for nothing. */
	if (ksm_index_stable_vacant())
		return false;
	/*
	 * The only KSM page of this hash is most likely the twin, and the
	 * merge compares the write-protected page with it in full anyway:
	 * a compare before that would say the same thing twice. If they
	 * differ after all, the full lookup follows, which compares first.
	 * Not for a page of a large folio, which the merge would split.
	 */
	node = NULL;
	if (!folio_test_large(page_folio(page)))
		node = ksm_index_stable_guess(key, &kfolio);
	if (node) {
		err = ksm_merge_into_node(item, addr, page, node, kfolio);
		folio_put(kfolio);
		if (err != -EINVAL)
			return true;
		ksm_index_stable_guess_wrong(node);
	}
	node = ksm_index_stable_find(key, page, &kfolio);
	/*
	 * A KSM page on the way was frozen: the page may be its twin, so it
	 * waits for the next round rather than start a second KSM page.
	 */
	if (IS_ERR(node))
		return true;
	if (!node)
		return false;
	/*
	 * Done for this round even if the merge failed: the KSM page may
	 * only have been locked by reclaim for a moment, and pairing the
	 * page with an unstable twin now would make a second KSM page of
	 * the same contents. A page that changed is hashed anew next round.
	 */
	ksm_merge_into_node(item, addr, page, node, kfolio);
	folio_put(kfolio);
	return true;
}

/*
 * Split the large folio of @page, which the caller references once. Two
 * twins within one large folio cannot be merged as they are: each holds a
 * reference on the folio, and a split needs the only extra one.
 */
static void ksm_scan_split(struct ksm_mm *slot, struct page *page)
{
	struct folio *folio = page_folio(page);

	mmap_read_lock(slot->mm);
	if (folio_trylock(folio)) {
		/* Split by someone else before we locked it: nothing to do. */
		if (page_folio(page) == folio && folio_test_large(folio))
			split_huge_page(page);
		/* The lock stays with the folio that holds @page now. */
		folio_unlock(page_folio(page));
	}
	mmap_read_unlock(slot->mm);
}

static void ksm_scan_try_unstable(struct ksm_item *item, unsigned long addr,
				  struct page *page, struct ksm_index_key key)
{
	struct ksm_item *other;
	struct page *opage;

	other = ksm_index_unstable_find(key, item, page, &opage);
	if (!other)
		return;
	if (page_folio(opage) == page_folio(page)) {
		/*
		 * Its twin is in the same large folio: split it, and leave
		 * the twin in the index for the next page to pair with. The
		 * same small folio (a fork child's page not copied yet) is
		 * no twin at all.
		 */
		folio_put(page_folio(opage));
		if (folio_test_large(page_folio(page)))
			ksm_scan_split(ksm_item_owner(item), page);
		return;
	}
	ksm_index_unstable_erase(other);
	ksm_merge_pair(item, addr, page, other, opage);
	folio_put(page_folio(opage));
}

/*
 * Decide what to do with one page and its item. @asked: merge-now, whose
 * caller vouches that the page settled, so the volatility gate is passed.
 */
static void ksm_scan_page(struct ksm_mm *slot, struct ksm_item *item,
			  unsigned long addr, struct page *page, bool asked)
{
	struct folio *folio = page_folio(page);
	struct ksm_index_key key;

	if (!ksm_scan_release(item, addr, folio)) {
		/*
		 * Its KSM page is a spare copy: unshared now, the page merges
		 * into the group's leader at its next look (it is not held
		 * back: nothing wrote to it).
		 */
		if (ksm_node_spare(item->node))
			ksm_merge_unshare(item, addr);
		return;
	}
	if (folio_test_ksm(folio)) {
		ksm_merge_adopt(item, addr, folio);
		return;
	}
	key.hash = ksm_index_page_hash(page);
	if (!ksm_scan_settled(item, key.hash)) {
		if (!asked)
			return;
		ksm_item_assign(item, KSM_ITEM_VOLATILE, false);
	}
	key.domain = ksm_item_domain(item, folio);
	if (READ_ONCE(ksm_tun.use_zero_pages) && key.hash == ksm_zero_hash &&
	    !ksm_merge_zero(item, addr, page)) {
		ksm_item_free(slot, addr, item);
		return;
	}
	if (ksm_scan_try_stable(item, addr, page, key))
		return;
	ksm_scan_try_unstable(item, addr, page, key);
}

/*
 * Smart scan (ksm_advisor.c): leave out this round's look at a page that
 * has not merged for a while, before it costs a hash or a lookup, unless
 * an index holds its last hash: a twin may have come. The item joins this
 * round's unstable index under that hash, so that a twin met later in the
 * round still finds it; a full compare decides, as for any candidate.
 */
static bool ksm_scan_skip(struct ksm_item *item, struct page *page)
{
	bool ksm_page = page && folio_test_ksm(page_folio(page));
	struct ksm_index_key key = { .hash = ksm_item_hash(item) };

	if (!READ_ONCE(ksm_tun.smart_scan) ||
	    !ksm_smart_skip(item, ksm_page, ksm_index_round()) ||
	    ksm_index_hash_known(key.hash))
		return false;
	if (ksm_item_state(item) == KSM_ITEM_UNSTABLE)
		ksm_index_unstable_erase(item);
	ksm_index_unstable_insert(item, key);
	ksm_stat_add(pages_skipped, 1);
	return true;
}

/*
 * Look at one picked page; @item is its item, or NULL if it has none yet.
 * Returns false if smart scan skipped the page: it costs no budget.
 * @asked: for merge-now, which smart scan never skips and which ksmd's
 * pages_scanned does not count.
 */
static bool ksm_scan_pick(struct ksm_mm *slot, struct ksm_scan_pick *pick,
			  struct ksm_item *item, bool asked)
{
	struct page *page = pick->page;

	if (pick->merged) {
		/* Its mm moved to another memory cgroup: see ksm_cgroup.c. */
		if (ksm_cgroup_foreign(slot, pick->item->node))
			ksm_merge_leave_node(pick->item, pick->addr);
		else
			ksm_gate_forgive(pick->item);
		if (!asked)
			ksm_stat_add(pages_scanned, 1);
		return true;
	}
	if (item && !asked && ksm_scan_skip(item, page)) {
		if (page)
			folio_put(page_folio(page));
		return false;
	}
	if (!page && !ksm_merge_get_folio(slot, pick->addr, &page))
		return true;
	if (!item)
		item = ksm_item_alloc(slot, pick->addr);
	if (item)
		ksm_scan_page(slot, item, pick->addr, page, asked);
	folio_put(page_folio(page));
	if (!asked)
		ksm_stat_add(pages_scanned, 1);
	return true;
}

/*
 * Find the items of the picked pages, and give each small page that has
 * none a new one, in address order. Returns how many picks have an item.
 */
static unsigned int ksm_scan_find_items(struct ksm_scan_batch *batch)
{
	struct ksm_scan_pick *pick;
	unsigned int i, with = 0;

	for (i = 0; i < batch->nr; i++) {
		pick = &batch->picks[i];
		if (!pick->merged)
			pick->item = ksm_scan_item_at(batch,
						      pick->addr >> PAGE_SHIFT);
		/* The lookup left the page's block, if it has one, in @batch. */
		if (!pick->item && pick->page)
			pick->item = batch->block ?
				ksm_item_claim(batch->slot, batch->block,
					       pick->addr) :
				ksm_item_alloc(batch->slot, pick->addr);
		with += !!pick->item;
	}
	return with;
}

/*
 * Free the items at page indexes [@from, @to): their pages were not met by
 * the walk. The cursor is already past them. Return the index of the first
 * item at or after @to, ULONG_MAX if none.
 */
static unsigned long ksm_scan_prune(struct ksm_mm *slot, unsigned long from,
				    unsigned long to)
{
	unsigned long vpn = from;
	struct ksm_item *item;

	for (item = ksm_items_find(slot, &vpn); item && vpn < to;
	     item = ksm_items_find(slot, &vpn)) {
		/* Behind the cursor now: ksm_item_release() counts it out. */
		ksm_cursor.behind++;
		ksm_item_free(slot, vpn << PAGE_SHIFT, item);
		vpn++;
	}
	return item ? vpn : ULONG_MAX;
}

/*
 * Look at the picked pages, and free the items between them: their pages
 * were not met by the walk. Searching the gaps for items costs more than
 * anything else in a sparse address space, so it is avoided where it can
 * be: not at all when every item of the mm is behind the cursor or at a
 * pick; otherwise not between adjacent picks, and not before an item that
 * an earlier search found beyond its gap (@known). Returns how many pages
 * were looked at (not skipped by smart scan).
 */
static unsigned int ksm_scan_process(struct ksm_mm *slot,
				     struct ksm_scan_batch *batch)
{
	unsigned long from = ksm_cursor.addr >> PAGE_SHIFT;
	unsigned long to = batch->next >> PAGE_SHIFT;
	unsigned long known = 0, at, with;
	struct ksm_scan_pick *pick;
	bool have_known = false;
	bool search;
	unsigned int i, looked = 0;

	lockdep_assert_held(&ksm_lock);
	with = ksm_scan_find_items(batch);
	VM_WARN_ON_ONCE(ksm_cursor.behind + with > slot->mm->ksm_rmap_items);
	search = ksm_cursor.behind + with != slot->mm->ksm_rmap_items;
	/* The picks and the gaps between them are behind the cursor now. */
	ksm_cursor.behind += with;
	ksm_cursor.addr = batch->next;
	for (i = 0; i < batch->nr; i++) {
		pick = &batch->picks[i];
		at = pick->addr >> PAGE_SHIFT;
		if (search && at > from && (!have_known || known < at)) {
			known = ksm_scan_prune(slot, from, at);
			have_known = true;
		}
		looked += ksm_scan_pick(slot, pick, pick->item, false);
		if (have_known && known <= at)
			have_known = false;
		from = at + 1;
		cond_resched();
	}
	if (search && to > from && (!have_known || known < to))
		ksm_scan_prune(slot, from, to);
	return looked;
}

static bool ksm_scan_start_round(void)
{
	struct ksm_mm *first;

	lockdep_assert_held(&ksm_lock);
	spin_lock(&ksm_mm_lock);
	first = list_first_entry_or_null(&ksm_mm_list, struct ksm_mm, link);
	ksm_cursor.slot = first;
	spin_unlock(&ksm_mm_lock);
	ksm_cursor.addr = 0;
	ksm_cursor.behind = 0;
	if (!first)
		return false;
	/* Pages sitting in per-cpu LRU batches hold references: drain them. */
	lru_add_drain_all();
	trace_ksm_start_scan(ksm_stats.full_scans, ksm_stats.items);
	ksm_advisor_round_start(ksmd_task);
	return true;
}

/*
 * Move the cursor to the next mm, freeing the current one if it is gone.
 * Returns true when that ended the round.
 */
static bool ksm_scan_advance(void)
{
	struct ksm_mm *slot = ksm_cursor.slot;
	bool gone = ksm_mm_gone(slot);

	lockdep_assert_held(&ksm_lock);
	if (gone)
		ksm_scan_drop_items(slot);
	spin_lock(&ksm_mm_lock);
	if (list_is_last(&slot->link, &ksm_mm_list))
		ksm_cursor.slot = NULL;
	else
		ksm_cursor.slot = list_next_entry(slot, link);
	if (gone)
		ksm_mm_unlink(slot);
	spin_unlock(&ksm_mm_lock);
	if (gone)
		ksm_mm_free(slot);
	ksm_cursor.addr = 0;
	ksm_cursor.behind = 0;
	return !ksm_cursor.slot;
}

/*
 * Copy-on-write breaks of KSM pages, logged by the fault path. Without the
 * log, a merged mapping that a write replaced stays counted in
 * pages_sharing and pages_shared until ksmd's next look at its page, which
 * may come in the next round only: a write made after ksmd passed the page
 * would still be counted when the round ends. ksmd takes the logged pages
 * before every batch and before it ends a round, and looks at each as its
 * walk would: when full_scans moves on, the statistics no longer count a
 * mapping whose break completed before ksmd took the logs.
 *
 * One small log a CPU, so that faults on different CPUs do not share a
 * lock; a log that is full drops the break, which the next look at the
 * page finds as it always did. Entries name an mm only by its address:
 * ksmd uses it as a key among the registered mms, nothing more.
 */
#define KSM_BREAK_LOG		16

struct ksm_break {
	struct mm_struct *mm;
	unsigned long addr;
};

/**
 * struct ksm_break_log - copy-on-write breaks logged on one CPU
 * @lock: guards the log, and the CPU's bit in ksm_break_cpus.
 * @nr: breaks logged.
 * @breaks: the breaks.
 */
struct ksm_break_log {
	spinlock_t lock;
	unsigned int nr;
	struct ksm_break breaks[KSM_BREAK_LOG];
};

static DEFINE_PER_CPU(struct ksm_break_log, ksm_break_logs);
/* CPUs whose log is not empty: set and cleared under the log's lock. */
static struct cpumask ksm_break_cpus;

/**
 * __ksm_cow_broken - log a copy-on-write break of a KSM page
 * @mm: the mm of the fault.
 * @addr: the address whose mapping of the KSM page was replaced.
 *
 * Called by the fault path once the private copy is mapped.
 */
void __ksm_cow_broken(struct mm_struct *mm, unsigned long addr)
{
	/* Any CPU's log will do: no need to stay on this one. */
	unsigned int cpu = raw_smp_processor_id();
	struct ksm_break_log *log = per_cpu_ptr(&ksm_break_logs, cpu);

	spin_lock(&log->lock);
	if (log->nr < KSM_BREAK_LOG) {
		log->breaks[log->nr].mm = mm;
		log->breaks[log->nr].addr = addr & PAGE_MASK;
		log->nr++;
		if (!cpumask_test_cpu(cpu, &ksm_break_cpus))
			cpumask_set_cpu(cpu, &ksm_break_cpus);
	}
	spin_unlock(&log->lock);
	/*
	 * A task that reads full_scans after its write must not read it
	 * before the log shows the break (see the end of ksm_scan_breaks()).
	 */
	smp_mb();
}

/*
 * The page of one logged break, if it still has a merged item: ksmd
 * (@look) looks at it as its walk would; a reader of the statistics only
 * counts out a mapping that no longer maps the KSM page.
 */
static void ksm_scan_break(const struct ksm_break *brk, bool look)
{
	struct ksm_item *item;
	struct ksm_mm *slot;
	struct page *page;

	item = ksm_mm_item(brk->mm, brk->addr, &slot);
	if (!item || ksm_item_state(item) != KSM_ITEM_MERGED)
		return;
	/* Unmapped since: the walk frees the item when it passes. */
	if (!ksm_merge_get_folio(slot, brk->addr, &page))
		return;
	if (look)
		ksm_scan_page(slot, item, brk->addr, page, false);
	else
		ksm_scan_release(item, brk->addr, page_folio(page));
	folio_put(page_folio(page));
}

/* Take every CPU's log and go through the pages it names. */
static void ksm_scan_breaks(bool look)
{
	struct ksm_break breaks[KSM_BREAK_LOG];
	struct ksm_break_log *log;
	unsigned int cpu, nr, i;

	lockdep_assert_held(&ksm_lock);
	for_each_cpu(cpu, &ksm_break_cpus) {
		log = per_cpu_ptr(&ksm_break_logs, cpu);
		spin_lock(&log->lock);
		nr = log->nr;
		memcpy(breaks, log->breaks, nr * sizeof(*breaks));
		log->nr = 0;
		cpumask_clear_cpu(cpu, &ksm_break_cpus);
		spin_unlock(&log->lock);
		for (i = 0; i < nr; i++)
			ksm_scan_break(&breaks[i], look);
		cond_resched();
	}
	/*
	 * The logs were read before the caller moves full_scans on; pairs
	 * with the barrier in __ksm_cow_broken().
	 */
	smp_mb();
}

/**
 * ksm_scan_sync_breaks - count out logged breaks before statistics are read
 *
 * Taking the logs and moving full_scans on are not one step for the fault
 * path: a break logged just after ksmd took the logs, and a read of
 * full_scans just before ksmd moved it on, would let a task see the round
 * end with its write still counted. A reader that finds a log not empty
 * therefore waits for ksm_lock and takes the logs itself; ksmd holds the
 * lock from its last look at the logs until full_scans has moved on.
 * Free when no break is logged, as almost always.
 */
void ksm_scan_sync_breaks(void)
{
	/* Pairs with the barrier in __ksm_cow_broken(). */
	smp_mb();
	/* Racy by design: a bit set before the barrier above is seen. */
	if (data_race(cpumask_empty(&ksm_break_cpus)))
		return;
	ksm_lock_other();
	ksm_scan_breaks(false);
	mutex_unlock(&ksm_lock);
}

/* Scan up to @budget pages; stop early at the end of a round. */
static void ksmd_scan(unsigned long budget)
{
	struct ksm_scan_batch *batch = &ksm_batch;
	struct ksm_mm *slot;

	lockdep_assert_held(&ksm_lock);
	ksm_scan_breaks(true);
	while (budget) {
		if (!ksm_cursor.slot && !ksm_scan_start_round())
			return;
		slot = ksm_cursor.slot;
		ksm_scan_collect(slot, batch, ksm_cursor.addr,
				 slot->mm->task_size,
				 min_t(unsigned long, budget, KSM_SCAN_BATCH));
		budget -= min_t(unsigned long, budget,
				ksm_scan_process(slot, batch));
		if (batch->next >= slot->mm->task_size && ksm_scan_advance()) {
			ksm_scan_breaks(true);
			/* What this round counted is seen with its end. */
			smp_wmb();
			ksm_stat_add(full_scans, 1);
			trace_ksm_stop_scan(ksm_stats.full_scans,
					    ksm_stats.items);
			ksm_index_new_round();
			ksm_advisor_round_end(ksmd_task);
			return;
		}
		if (kthread_should_stop() || freezing(current) ||
		    atomic_read(&ksm_lock_waiters))
			return;
		cond_resched();
	}
}

/* Merge-now: look at every picked page of @batch. */
static void ksm_scan_range_batch(struct ksm_mm *slot,
				 struct ksm_scan_batch *batch)
{
	struct ksm_scan_pick *pick;
	unsigned int i;

	for (i = 0; i < batch->nr; i++) {
		pick = &batch->picks[i];
		if (!pick->merged)
			pick->item = ksm_items_load(slot, pick->addr);
		ksm_scan_pick(slot, pick, pick->item, true);
		cond_resched();
	}
}

/**
 * ksm_scan_range - look at every page of a range now, in the caller's context
 * @slot: the registered mm.
 * @start: start of the range.
 * @end: end of the range.
 *
 * Each page of the mergeable VMAs in the range is looked at as ksmd looks
 * at pages: the same indexes, the same write-protect and full compare.
 * Neither smart scan nor the volatility gate holds a page back, since the
 * caller asked for it; ksmd's cursor is left where it is.
 *
 * Return: 0, -EINTR on a fatal signal, or -ENOMEM.
 */
int ksm_scan_range(struct ksm_mm *slot, unsigned long start,
		   unsigned long end)
{
	struct ksm_scan_batch *batch;
	unsigned long addr = start;
	int err = 0;

	lockdep_assert_held(&ksm_lock);
	/* Some 2 KiB of picks: not on the stack. */
	batch = kmalloc(sizeof(*batch), GFP_KERNEL);
	if (!batch)
		return -ENOMEM;
	/* Pages just written sit in per-cpu LRU batches, with references. */
	lru_add_drain_all();
	while (addr < end && !err) {
		ksm_scan_collect(slot, batch, addr, end, KSM_SCAN_BATCH);
		ksm_scan_range_batch(slot, batch);
		addr = batch->next;
		if (fatal_signal_pending(current))
			err = -EINTR;
		cond_resched();
	}
	kfree(batch);
	return err;
}

/**
 * ksm_scan_restart - forget the unstable index and start a new round
 */
void ksm_scan_restart(void)
{
	lockdep_assert_held(&ksm_lock);
	spin_lock(&ksm_mm_lock);
	ksm_cursor.slot = NULL;
	spin_unlock(&ksm_mm_lock);
	ksm_cursor.addr = 0;
	ksm_cursor.behind = 0;
	ksm_index_new_round();
}

static int ksm_scan_unmerge_mm(struct ksm_mm *slot)
{
	VMA_ITERATOR(vmi, slot->mm, 0);
	struct mm_struct *mm = slot->mm;
	struct vm_area_struct *vma;
	int err = 0;

	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		if (ksm_mm_gone(slot))
			break;
		if (!(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma)
			continue;
		err = ksm_merge_break_range(vma, vma->vm_start, vma->vm_end);
		if (err)
			break;
	}
	mmap_read_unlock(mm);
	return err;
}

/**
 * ksm_scan_unmerge_all - unshare every KSM page and drop every item
 *
 * Return: 0, or an error (a signal, say) that stopped the walk half way.
 */
int ksm_scan_unmerge_all(void)
{
	int err = 0;

	lockdep_assert_held(&ksm_lock);
	if (!ksm_scan_start_round())
		goto out;
	do {
		err = ksm_scan_unmerge_mm(ksm_cursor.slot);
		if (err)
			break;
		ksm_scan_drop_items(ksm_cursor.slot);
	} while (!ksm_scan_advance());
out:
	ksm_scan_restart();
	ksm_index_stable_sweep();
	return err;
}

static bool ksmd_should_scan(void)
{
	return READ_ONCE(ksm_tun.run) == KSM_RUN_MERGE &&
	       !list_empty_careful(&ksm_mm_list) && !ksm_memory_offlining();
}

static void ksmd_sleep(void)
{
	unsigned long ms = READ_ONCE(ksm_tun.sleep_millisecs);

	if (!ksmd_should_scan()) {
		wait_event_freezable(ksmd_wait,
				     ksmd_should_scan() || kthread_should_stop());
		return;
	}
	if (!ms) {
		try_to_freeze();
		cond_resched();
		return;
	}
	wait_event_freezable_timeout(ksmd_wait,
				     READ_ONCE(ksm_tun.sleep_millisecs) != ms ||
				     kthread_should_stop(),
				     msecs_to_jiffies(ms));
}

static int ksmd_thread(void *unused)
{
	set_freezable();
	set_user_nice(current, 5);
	while (!kthread_should_stop()) {
		mutex_lock(&ksm_lock);
		if (ksmd_should_scan() && !atomic_read(&ksm_lock_waiters))
			ksmd_scan(READ_ONCE(ksm_tun.pages_to_scan));
		mutex_unlock(&ksm_lock);
		ksmd_sleep();
	}
	return 0;
}

/**
 * ksm_scan_init - set up the item block cache and the zero page hash
 *
 * Return: 0, or -ENOMEM.
 */
int ksm_scan_init(void)
{
	unsigned int cpu;

	/* Aligned to their size: an item finds its block by masking. */
	ksm_block_cache = kmem_cache_create("ksm_item_block", KSM_BLOCK_BYTES,
					    KSM_BLOCK_BYTES, 0, NULL);
	if (!ksm_block_cache)
		return -ENOMEM;
	for_each_possible_cpu(cpu)
		spin_lock_init(&per_cpu_ptr(&ksm_break_logs, cpu)->lock);
	ksm_zero_hash = ksm_index_page_hash(ZERO_PAGE(0));
	return 0;
}

/**
 * ksmd_start - start the ksmd thread
 *
 * Return: 0, or the error of kthread_run().
 */
int ksmd_start(void)
{
	ksmd_task = kthread_run(ksmd_thread, NULL, "ksmd");
	if (IS_ERR(ksmd_task))
		return PTR_ERR(ksmd_task);
	return 0;
}
