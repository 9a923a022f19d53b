// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM merging and unmerging: the page table side.
 *
 * Merging a page takes, in this order, the mmap lock of its mm (read), the
 * lock of its folio (trylock), then the lock of the KSM folio (trylock) and
 * the page table lock. The pte is cleared and flushed before it comes back
 * write-protected, so that neither a writer nor GUP-fast can slip in; only
 * then are the whole contents compared with the KSM page, and only if they
 * are identical is the pte pointed at the KSM page.
 *
 * Unmerging is a FAULT_FLAG_UNSHARE fault on every pte that maps a KSM page
 * or a zero page placed by ksmd: the fault path gives the mm a private copy,
 * which is then marked dirty. Unmerging is exact: it succeeds only once no
 * KSM page is mapped in the range.
 */

#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pagewalk.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <trace/events/ksm.h>

#include "internal.h"
#include "ksm_internal.h"

/*
 * Unshare faults in a row that may leave the present pte of one address
 * exactly as it was before unmerging reports -EAGAIN.
 */
#define KSM_BREAK_STUCK		16
/* Addresses one page table walk collects for unshare faults. */
#define KSM_BREAK_BATCH		32

/**
 * ksm_merge_find_vma - the mergeable VMA of an address
 * @slot: the registered mm, whose mmap lock is held.
 * @addr: the address.
 *
 * Return: the VMA, or NULL if the mm is exiting or @addr is not in a
 * mergeable VMA with an anon_vma.
 */
struct vm_area_struct *ksm_merge_find_vma(struct ksm_mm *slot,
					  unsigned long addr)
{
	struct vm_area_struct *vma;

	mmap_assert_locked(slot->mm);
	if (ksm_mm_gone(slot))
		return NULL;
	vma = vma_lookup(slot->mm, addr);
	if (!vma || !(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma)
		return NULL;
	return vma;
}

/*
 * Can an item record the page offset of @addr? A merged item keeps the
 * linear page index, which a private mapping of /dev/zero takes from its
 * file offset: mremap() can grow such a mapping past what the item holds
 * (KSM_ITEM_NR_MAX). Rmap walks would miss the mapping of a page merged
 * there, so it is not merged.
 */
static bool ksm_merge_trackable(struct vm_area_struct *vma, unsigned long addr)
{
	return linear_page_index(vma, addr) <= KSM_ITEM_NR_MAX;
}

/* The pmd of @addr if it holds a page table (no huge page). */
static pmd_t *ksm_merge_pte_pmd(struct mm_struct *mm, unsigned long addr)
{
	pmd_t *pmd = mm_find_pmd(mm, addr);
	pmd_t pmdval;

	if (!pmd)
		return NULL;
	/* A huge pmd cannot map a page we are about to merge. */
	pmdval = pmdp_get_lockless(pmd);
	if (!pmd_present(pmdval) || pmd_trans_huge(pmdval))
		return NULL;
	return pmd;
}

/* Reference the anonymous page a huge pmd maps at @addr. */
static struct folio *ksm_merge_huge_folio(struct vm_area_struct *vma,
					  pmd_t *pmd, unsigned long addr,
					  struct page **pagep)
{
	struct folio *folio = NULL;
	spinlock_t *ptl;
	pmd_t pmdval;

	ptl = ksm_pmd_huge_lock(pmd, vma);
	if (!ptl)
		return NULL;
	pmdval = *pmd;
	if (pmd_trans_huge(pmdval) && !is_huge_zero_pmd(pmdval) &&
	    PageAnon(pmd_page(pmdval))) {
		*pagep = pmd_page(pmdval) +
			 ((addr & ~HPAGE_PMD_MASK) >> PAGE_SHIFT);
		folio = page_folio(*pagep);
		folio_get(folio);
	}
	spin_unlock(ptl);
	return folio;
}

/* Reference the anonymous page a page table maps at @addr. */
static struct folio *ksm_merge_pte_folio(struct vm_area_struct *vma,
					 pmd_t *pmd, unsigned long addr,
					 struct page **pagep)
{
	struct folio *folio = NULL;
	struct page *page = NULL;
	spinlock_t *ptl;
	pte_t *ptep;
	pte_t pte;

	ptep = ksm_pte_map_lock(vma->vm_mm, pmd, addr, &ptl);
	if (!ptep)
		return NULL;
	pte = ptep_get(ptep);
	if (pte_present(pte))
		page = vm_normal_page(vma, addr, pte);
	if (page && PageAnon(page)) {
		folio = page_folio(page);
		folio_get(folio);
		*pagep = page;
	}
	pte_unmap_unlock(ptep, ptl);
	return folio;
}

/**
 * ksm_merge_get_folio - the anonymous page mapped at an address
 * @slot: the registered mm; its mmap lock is taken and released here.
 * @addr: the address.
 * @pagep: set to the exact page mapped at @addr.
 *
 * Return: the folio of the page with a reference held, or NULL.
 */
struct folio *ksm_merge_get_folio(struct ksm_mm *slot, unsigned long addr,
				  struct page **pagep)
{
	struct vm_area_struct *vma;
	struct folio *folio = NULL;
	pmd_t *pmd = NULL;

	mmap_read_lock(slot->mm);
	vma = ksm_merge_find_vma(slot, addr);
	if (vma)
		pmd = mm_find_pmd(slot->mm, addr);
	if (pmd && pmd_trans_huge(pmdp_get_lockless(pmd)))
		folio = ksm_merge_huge_folio(vma, pmd, addr, pagep);
	else if (pmd && ksm_merge_pte_pmd(slot->mm, addr))
		folio = ksm_merge_pte_folio(vma, pmd, addr, pagep);
	mmap_read_unlock(slot->mm);
	return folio;
}

/*
 * With the pte cleared and flushed nobody can take a new reference through
 * it, so any reference beyond the mappings, the swap cache and ours is a
 * pin that may write to the page: put the pte back and give up then.
 */
static int ksm_merge_seal_pte(struct vm_area_struct *vma, struct page *page,
			      unsigned long addr, pte_t *ptep, pte_t *entry)
{
	struct folio *folio = page_folio(page);
	bool exclusive = PageAnonExclusive(page);
	int expected;
	pte_t old;

	flush_cache_page(vma, addr, page_to_pfn(page));
	old = ptep_clear_flush(vma, addr, ptep);
	expected = folio_mapcount(folio) + 1 + folio_test_swapcache(folio);
	if (folio_ref_count(folio) != expected ||
	    (exclusive && folio_try_share_anon_rmap_pte(folio, page))) {
		set_pte_at(vma->vm_mm, addr, ptep, old);
		return -EBUSY;
	}
	if (pte_dirty(old))
		folio_mark_dirty(folio);
	old = pte_mkclean(pte_wrprotect(old));
	set_pte_at(vma->vm_mm, addr, ptep, old);
	*entry = old;
	return 0;
}

static int ksm_merge_wrprotect_pte(struct vm_area_struct *vma,
				   struct page *page, pmd_t *pmd,
				   unsigned long addr, pte_t *orig)
{
	spinlock_t *ptl;
	pte_t *ptep, entry;
	int err = -EFAULT;

	ptep = ksm_pte_map_lock(vma->vm_mm, pmd, addr, &ptl);
	if (!ptep)
		return -EFAULT;
	entry = ptep_get(ptep);
	if (pte_present(entry) && pte_pfn(entry) == page_to_pfn(page)) {
		err = 0;
		if (pte_write(entry) || pte_dirty(entry) ||
		    PageAnonExclusive(page))
			err = ksm_merge_seal_pte(vma, page, addr, ptep, &entry);
		*orig = entry;
	}
	pte_unmap_unlock(ptep, ptl);
	return err;
}

/* Make the pte of @page at @addr read-only and clean; report its value. */
static int ksm_merge_wrprotect(struct vm_area_struct *vma, struct page *page,
			       unsigned long addr, pte_t *orig)
{
	struct mmu_notifier_range range;
	int err = -EFAULT;
	pmd_t *pmd;

	VM_WARN_ON_ONCE(!folio_test_locked(page_folio(page)));
	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, vma->vm_mm, addr,
				addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	pmd = ksm_merge_pte_pmd(vma->vm_mm, addr);
	if (pmd)
		err = ksm_merge_wrprotect_pte(vma, page, pmd, addr, orig);
	mmu_notifier_invalidate_range_end(&range);
	return err;
}

/* The pte that maps @kpage (a KSM page or the zero page) at @addr. */
static pte_t ksm_merge_new_pte(struct vm_area_struct *vma, struct page *kpage,
			       unsigned long addr, pte_t orig)
{
	struct folio *kfolio = page_folio(kpage);
	pte_t pte;

	if (is_zero_pfn(page_to_pfn(kpage))) {
		/* Dirty marks it as ours: see is_ksm_zero_pte(). */
		pte = pte_mkdirty(pte_mkspecial(pfn_pte(page_to_pfn(kpage),
							vma->vm_page_prot)));
		ksm_map_zero_page(vma->vm_mm);
		/* The zero page is not an anonymous page of this mm. */
		dec_mm_counter(vma->vm_mm, MM_ANONPAGES);
	} else {
		folio_get(kfolio);
		folio_add_anon_rmap_pte(kfolio, kpage, vma, addr, RMAP_NONE);
		/*
		 * The KSM page holds this mapping's data now. If its owner had
		 * MADV_FREE'd it, it is clean and reclaim would drop it: a
		 * dirty one is kept, and made swap-backed again, instead.
		 */
		folio_mark_dirty(kfolio);
		pte = mk_pte(kpage, vma->vm_page_prot);
	}
	if (pte_uffd_wp(orig))
		pte = pte_mkuffd_wp(pte);
	return pte;
}

static int ksm_merge_replace_pte(struct vm_area_struct *vma,
				 struct page *page, struct page *kpage,
				 pmd_t *pmd, unsigned long addr, pte_t orig)
{
	struct folio *folio = page_folio(page);
	struct mm_struct *mm = vma->vm_mm;
	spinlock_t *ptl;
	pte_t *ptep;
	int err = -EFAULT;

	ptep = ksm_pte_map_lock(mm, pmd, addr, &ptl);
	if (!ptep)
		return -EFAULT;
	if (pte_same(ptep_get(ptep), orig)) {
		VM_WARN_ON_ONCE(PageAnonExclusive(page));
		flush_cache_page(vma, addr, pte_pfn(orig));
		/* Both pages are read-only with the same contents. */
		ptep_clear_flush(vma, addr, ptep);
		set_pte_at(mm, addr, ptep,
			   ksm_merge_new_pte(vma, kpage, addr, orig));
		folio_remove_rmap_pte(folio, page, vma);
		if (!folio_mapped(folio))
			folio_free_swap(folio);
		folio_put(folio);
		err = 0;
	}
	pte_unmap_unlock(ptep, ptl);
	return err;
}

/* Point the write-protected pte of @page at @kpage if it did not change. */
static int ksm_merge_replace(struct vm_area_struct *vma, struct page *page,
			     struct page *kpage, unsigned long addr, pte_t orig)
{
	struct mmu_notifier_range range;
	int err = -EFAULT;
	pmd_t *pmd;

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, vma->vm_mm, addr,
				addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	pmd = ksm_merge_pte_pmd(vma->vm_mm, addr);
	if (pmd)
		err = ksm_merge_replace_pte(vma, page, kpage, pmd, addr, orig);
	mmu_notifier_invalidate_range_end(&range);
	return err;
}

/*
 * Take the mmap lock and the folio lock of @page, mapped at @addr in the
 * mm of @slot; split a large folio (KSM pages are small) and write-protect
 * the pte. On success both locks stay held: see ksm_merge_finish(). A page
 * that will be mapped from a KSM page (@track) must be trackable.
 */
static int ksm_merge_prepare(struct ksm_mm *slot, unsigned long addr,
			     struct page *page, bool track,
			     struct vm_area_struct **vmap, pte_t *orig)
{
	struct vm_area_struct *vma;
	struct folio *folio;
	int err = -EFAULT;

	mmap_read_lock(slot->mm);
	vma = ksm_merge_find_vma(slot, addr);
	if (!vma)
		goto unlock_mm;
	err = -EOVERFLOW;
	if (track && !ksm_merge_trackable(vma, addr))
		goto unlock_mm;
	folio = page_folio(page);
	err = -EAGAIN;
	if (!folio_test_anon(folio) || folio_test_ksm(folio) ||
	    !folio_trylock(folio))
		goto unlock_mm;
	err = 0;
	/* The lock and our reference stay with the folio of @page. */
	if (folio_test_large(folio))
		err = split_huge_page(page);
	if (!err)
		err = ksm_merge_wrprotect(vma, page, addr, orig);
	if (!err) {
		*vmap = vma;
		return 0;
	}
	folio_unlock(page_folio(page));
unlock_mm:
	mmap_read_unlock(slot->mm);
	return err;
}

static void ksm_merge_finish(struct ksm_mm *slot, struct page *page)
{
	folio_unlock(page_folio(page));
	mmap_read_unlock(slot->mm);
}

/*
 * Record that @item now maps the KSM page of @node; room is reserved. The
 * mapping array is the node's, which rmap walks read under the KSM folio
 * lock: the caller holds it, with ksm_lock and the mmap lock.
 */
static void ksm_merge_link(struct ksm_item *item, struct vm_area_struct *vma,
			   unsigned long addr, struct ksm_stable_node *node)
{
	lockdep_assert_held(&ksm_lock);
	mmap_assert_locked(vma->vm_mm);
	VM_WARN_ON_ONCE(!folio_test_locked(pfn_folio(node->kpfn)));
	get_anon_vma(vma->anon_vma);
	item->node = node;
	ksm_item_set_nr(item, linear_page_index(vma, addr));
	ksm_item_set_state(item, KSM_ITEM_MERGED);
	ksm_item_assign(item, KSM_ITEM_VOLATILE | KSM_ITEM_HASHED, false);
	WARN_ON_ONCE(ksm_node_add_map(node, item, vma->anon_vma));
	vma->vm_mm->ksm_merging_pages++;
}

/* Compare under both folio locks and replace; @kfolio is locked. */
static int ksm_merge_replace_checked(struct vm_area_struct *vma,
				     struct page *page, struct folio *kfolio,
				     struct ksm_stable_node *node,
				     unsigned long addr, pte_t orig)
{
	struct page *kpage = folio_page(kfolio, 0);

	if (folio_ksm_node(kfolio) != node || !ksm_node_has_room(node))
		return -EAGAIN;
	if (!ksm_pages_same(page, kpage))
		return -EINVAL;
	return ksm_merge_replace(vma, page, kpage, addr, orig);
}

/**
 * ksm_merge_into_node - map the KSM page of a node in place of a page
 * @item: the item of the page; idle.
 * @addr: where the page is mapped.
 * @page: the page, with a reference on its folio.
 * @node: the stable node.
 * @kfolio: the KSM folio of @node, with a reference held.
 *
 * Return: 0 if @item now maps the KSM page; -EINVAL if the two pages
 * differ; another error if the merge could not be tried.
 */
int ksm_merge_into_node(struct ksm_item *item, unsigned long addr,
			struct page *page, struct ksm_stable_node *node,
			struct folio *kfolio)
{
	struct ksm_mm *slot = ksm_item_owner(item);
	struct vm_area_struct *vma;
	pte_t orig;
	int err;

	lockdep_assert_held(&ksm_lock);
	ksm_node_prepare(node);
	err = ksm_merge_prepare(slot, addr, page, true, &vma, &orig);
	if (err)
		goto out;
	err = -EAGAIN;
	if (folio_trylock(kfolio)) {
		/* Rmap walks read the mapping array under the folio lock. */
		err = ksm_node_reserve(node);
		if (!err)
			err = ksm_merge_replace_checked(vma, page, kfolio,
							node, addr, orig);
		if (!err)
			ksm_merge_link(item, vma, addr, node);
		folio_unlock(kfolio);
	}
	ksm_merge_finish(slot, page);
out:
	/* As in 6.12, the event names the KSM page's pfn. */
	trace_ksm_merge_with_ksm_page(kfolio, folio_pfn(kfolio), item,
				      slot->mm, err);
	return err;
}

/*
 * Is @folio, locked and write-protected, mapped by the scanned pte alone?
 * Only then may it become a KSM page where it is. Another mapping of it (a
 * fork child's pte, or a child's swap entry that would find it in the swap
 * cache) would map the KSM page without an item listing it, even in a
 * range its owner has made unmergeable since.
 */
static bool ksm_merge_exclusive(struct folio *folio)
{
	if (folio_mapcount(folio) != 1)
		return false;
	return !folio_test_swapcache(folio) || folio_free_swap(folio);
}

/*
 * Fill @copy, a new folio on the NUMA node of @page, with the contents of
 * @page (locked and write-protected) and map it at @addr as the KSM page
 * of @node. On success @copy stays locked, as a folio made KSM in place.
 */
static int ksm_merge_fill_copy(struct vm_area_struct *vma, struct page *page,
			       unsigned long addr, pte_t orig,
			       struct ksm_stable_node *node, struct folio *copy)
{
	int err;

	/* With arm64 MTE the tags go along, as memcmp_pages() compared them. */
	copy_highpage(folio_page(copy, 0), page);
	__folio_set_locked(copy);
	__folio_set_swapbacked(copy);
	__folio_mark_uptodate(copy);
	copy->index = linear_page_index(vma, addr);
	WRITE_ONCE(copy->mapping,
		   (void *)((unsigned long)node | PAGE_MAPPING_KSM));
	node->kpfn = folio_pfn(copy);
	err = ksm_merge_replace(vma, page, folio_page(copy, 0), addr, orig);
	if (err) {
		WRITE_ONCE(copy->mapping, NULL);
		folio_unlock(copy);
		return err;
	}
	folio_add_lru_vma(copy, vma);
	return 0;
}

/*
 * Make the KSM page of @node out of @page: @page itself if nothing else
 * maps its folio, else (-EBUSY) only if the caller gave a @copy to fill.
 */
static int ksm_merge_make_ksm(struct ksm_item *item, unsigned long addr,
			      struct page *page, struct ksm_stable_node *node,
			      struct folio *copy)
{
	struct ksm_mm *slot = ksm_item_owner(item);
	struct vm_area_struct *vma;
	struct folio *folio;
	pte_t orig;
	int err;

	lockdep_assert_held(&ksm_lock);
	err = ksm_merge_prepare(slot, addr, page, true, &vma, &orig);
	if (err)
		goto out;
	folio = page_folio(page);
	if (copy) {
		err = ksm_merge_fill_copy(vma, page, addr, orig, node, copy);
		folio = copy;
	} else if (ksm_merge_exclusive(folio)) {
		node->kpfn = folio_pfn(folio);
		/* Read-only and locked: from now on a KSM folio. */
		WRITE_ONCE(folio->mapping,
			   (void *)((unsigned long)node | PAGE_MAPPING_KSM));
	} else {
		err = -EBUSY;
	}
	if (!err) {
		ksm_merge_link(item, vma, addr, node);
		if (copy)
			folio_unlock(copy);
	}
	ksm_merge_finish(slot, page);
out:
	trace_ksm_merge_one_page(page_to_pfn(page), item, slot->mm, err);
	return err;
}

/*
 * A new folio for the KSM page of a pair whose pages are both mapped
 * elsewhere too, on the NUMA node of @page (the index it goes into is that
 * node's), charged to the mm of @slot. ksmd holds no folio lock here; it
 * neither retries hard nor calls the OOM killer for a page it can do
 * without: the pair is tried again next round.
 */
static struct folio *ksm_merge_alloc_copy(struct ksm_mm *slot,
					  struct page *page)
{
	const gfp_t gfp = GFP_HIGHUSER_MOVABLE | __GFP_THISNODE |
			  __GFP_NORETRY | __GFP_NOWARN;
	struct folio *copy;

	copy = __folio_alloc_node(gfp, 0, folio_nid(page_folio(page)));
	if (copy && mem_cgroup_charge(copy, slot->mm, gfp)) {
		folio_put(copy);
		copy = NULL;
	}
	return copy;
}

/**
 * ksm_merge_unshare - give a merged mapping its own copy of the page
 * @item: a merged item.
 * @addr: its virtual address.
 *
 * For the first half of a pair whose second half failed, and for the
 * mappings of a spare KSM page (ksm_node_spare()). Called without folio
 * locks.
 *
 * Return: true if @item is idle now; false if the unshare failed, and the
 * item stays merged, so that rmap walks still find the mapping of what
 * stays a KSM page.
 */
bool ksm_merge_unshare(struct ksm_item *item, unsigned long addr)
{
	struct ksm_mm *slot = ksm_item_owner(item);
	struct vm_area_struct *vma;
	int err = 0;

	mmap_read_lock(slot->mm);
	vma = ksm_merge_find_vma(slot, addr);
	if (vma)
		err = ksm_merge_break_range(vma, addr, addr + PAGE_SIZE);
	mmap_read_unlock(slot->mm);
	if (err)
		return false;
	ksm_merge_unlink(item, addr);
	return true;
}

/* May @other, an unstable item, be mapped from a KSM page where it is? */
static bool ksm_merge_item_trackable(struct ksm_item *other)
{
	struct ksm_mm *slot = ksm_item_owner(other);
	unsigned long addr = ksm_item_addr(other);
	struct vm_area_struct *vma;
	bool ok;

	mmap_read_lock(slot->mm);
	vma = ksm_merge_find_vma(slot, addr);
	ok = !vma || ksm_merge_trackable(vma, addr);
	mmap_read_unlock(slot->mm);
	return ok;
}

/**
 * ksm_merge_pair - merge two identical pages into a new KSM page
 * @item: the item of @page; idle, hashed.
 * @addr: where @page is mapped.
 * @page: the page being scanned, with a reference on its folio.
 * @other: the item of @opage, taken out of the unstable index.
 * @opage: the identical page, with a reference on its folio.
 *
 * One of the two becomes the KSM page, if its folio is mapped nowhere
 * else, or else a copy of @page does; then the other page, or both, are
 * merged into it. The stable node enters the stable index only once both
 * share it.
 *
 * Return: 0 on success, else an error and nothing is merged.
 */
int ksm_merge_pair(struct ksm_item *item, unsigned long addr,
		   struct page *page, struct ksm_item *other,
		   struct page *opage)
{
	unsigned long oaddr = ksm_item_addr(other);
	struct ksm_stable_node *node;
	struct folio *copy = NULL;
	int err;

	lockdep_assert_held(&ksm_lock);
	/* Not a KSM page made for nothing, and undone, in every round. */
	if (!ksm_merge_item_trackable(other))
		return -EOVERFLOW;
	node = ksm_node_alloc();
	if (!node)
		return -ENOMEM;
	node->hash = ksm_item_hash(item);
	node->domain = ksm_item_domain(item, page_folio(page));
	err = ksm_merge_make_ksm(item, addr, page, node, NULL);
	if (err == -EBUSY) {
		/* @page is shared: @opage becomes the KSM page if it is not. */
		err = ksm_merge_make_ksm(other, oaddr, opage, node, NULL);
		if (!err) {
			swap(item, other);
			swap(addr, oaddr);
			swap(page, opage);
		}
	}
	if (err == -EBUSY) {
		/* Both are: a copy of @page, which both are merged into. */
		copy = ksm_merge_alloc_copy(ksm_item_owner(item), page);
		err = copy ? ksm_merge_make_ksm(item, addr, page, node, copy) :
			     -ENOMEM;
	}
	if (err) {
		if (copy)
			folio_put(copy);
		ksm_node_free(node);
		return err;
	}
	err = ksm_merge_into_node(other, oaddr, opage, node,
				  pfn_folio(node->kpfn));
	if (!err || !ksm_merge_unshare(item, addr))
		ksm_index_stable_insert(node, pfn_folio(node->kpfn));
	if (copy)
		folio_put(copy);
	return err;
}

/**
 * ksm_merge_zero - map the zero page in place of an empty page
 * @item: the item of the page; the caller frees it on success.
 * @addr: where the page is mapped.
 * @page: the page, with a reference on its folio.
 *
 * Return: 0 if the zero page is now mapped at @addr, else an error.
 */
int ksm_merge_zero(struct ksm_item *item, unsigned long addr,
		   struct page *page)
{
	struct ksm_mm *slot = ksm_item_owner(item);
	struct page *zero = ZERO_PAGE(addr);
	struct vm_area_struct *vma;
	pte_t orig;
	int err;

	lockdep_assert_held(&ksm_lock);
	err = ksm_merge_prepare(slot, addr, page, false, &vma, &orig);
	if (!err) {
		err = -EINVAL;
		if (ksm_pages_same(page, zero))
			err = ksm_merge_replace(vma, page, zero, addr, orig);
		ksm_merge_finish(slot, page);
	}
	/* As in 6.12, a zero-page merge names the zero page. */
	trace_ksm_merge_one_page(page_to_pfn(zero), item, slot->mm, err);
	return err;
}

/**
 * ksm_merge_adopt - track a mapping of a KSM page that ksmd did not make
 * @item: the idle item of the mapping (a fork child's, say).
 * @addr: where @kfolio is mapped.
 * @kfolio: the KSM folio, with a reference held.
 *
 * Return: 0 if @item now lists the mapping, else an error.
 */
int ksm_merge_adopt(struct ksm_item *item, unsigned long addr,
		    struct folio *kfolio)
{
	struct ksm_mm *slot = ksm_item_owner(item);
	struct ksm_stable_node *node;
	struct vm_area_struct *vma;
	int err = -EFAULT;

	lockdep_assert_held(&ksm_lock);
	/* Our reference keeps @kfolio, and ksm_lock its node. */
	node = folio_ksm_node(kfolio);
	if (node)
		ksm_node_prepare(node);
	mmap_read_lock(slot->mm);
	vma = ksm_merge_find_vma(slot, addr);
	if (vma && !ksm_merge_trackable(vma, addr)) {
		err = -EOVERFLOW;
	} else if (vma && folio_trylock(kfolio)) {
		node = folio_ksm_node(kfolio);
		err = node ? ksm_node_reserve(node) : -EAGAIN;
		/* A fork child's, say, that was then moved to another cgroup. */
		if (!err && ksm_cgroup_foreign(slot, node))
			err = -EXDEV;
		if (!err)
			ksm_merge_link(item, vma, addr, node);
		folio_unlock(kfolio);
	}
	if (err == -EXDEV)
		ksm_merge_break_range(vma, addr, addr + PAGE_SIZE);
	mmap_read_unlock(slot->mm);
	return err;
}

/**
 * ksm_merge_leave_node - unshare a merged page whose mm changed cgroup
 * @item: a merged item whose mm is no longer in the domain of its node.
 * @addr: where the KSM page is mapped.
 *
 * The mm gets a private copy, charged to its new cgroup, and the item
 * becomes idle: the copy merges again, within the new domain.
 *
 * Return: 0, or the error of the unshare fault; the item stays merged then
 * and is tried again at the next visit.
 */
int ksm_merge_leave_node(struct ksm_item *item, unsigned long addr)
{
	struct ksm_mm *slot = ksm_item_owner(item);
	struct vm_area_struct *vma;
	int err = -EFAULT;

	lockdep_assert_held(&ksm_lock);
	mmap_read_lock(slot->mm);
	vma = ksm_merge_find_vma(slot, addr);
	if (vma)
		err = ksm_merge_break_range(vma, addr, addr + PAGE_SIZE);
	mmap_read_unlock(slot->mm);
	if (!err)
		ksm_merge_unlink(item, addr);
	return err;
}

/* Lock the KSM folio of @node, following migrations; NULL if stale. */
static struct folio *ksm_merge_lock_node(struct ksm_stable_node *node)
{
	struct folio *kfolio;

	for (;;) {
		kfolio = ksm_node_get_folio(node);
		if (!kfolio)
			return NULL;
		if (IS_ERR(kfolio)) {
			schedule_timeout_uninterruptible(1);
			continue;
		}
		folio_lock(kfolio);
		if (folio_ksm_node(kfolio) == node)
			return kfolio;
		folio_unlock(kfolio);
		folio_put(kfolio);
	}
}

/**
 * ksm_merge_unlink - forget that an item maps a KSM page
 * @item: a merged item.
 * @addr: its virtual address.
 *
 * The item becomes idle and volatile: its page was merged and is not any
 * more, so it must look stable again before it is merged again. A stable
 * node left without mappings is retired.
 */
void ksm_merge_unlink(struct ksm_item *item, unsigned long addr)
{
	struct ksm_stable_node *node = item->node;
	struct mm_struct *mm = ksm_item_owner(item)->mm;
	struct anon_vma *anon_vma;
	struct folio *kfolio;

	lockdep_assert_held(&ksm_lock);
	kfolio = ksm_merge_lock_node(node);
	anon_vma = ksm_node_del_map(node, item);
	mm->ksm_merging_pages--;
	trace_ksm_remove_rmap_item(node->kpfn, item, mm);
	item->chain_next = NULL;
	/* The page index goes: these bits hold a hash and a round again. */
	ksm_item_set_nr(item, 0);
	ksm_item_set_hash(item, node->hash);
	/* Not held back: the volatility gate (ksm_scan_settled()) decides. */
	ksm_item_set_round(item, ksm_index_round());
	ksm_item_set_state(item, KSM_ITEM_IDLE);
	ksm_item_assign(item, KSM_ITEM_VOLATILE | KSM_ITEM_HASHED, true);
	if (!node->nr_maps)
		ksm_node_retire(node, kfolio);
	if (kfolio) {
		folio_unlock(kfolio);
		folio_put(kfolio);
	}
	if (anon_vma)
		put_anon_vma(anon_vma);
}

static bool ksm_merge_pte_shared(struct vm_area_struct *vma,
				 unsigned long addr, pte_t pte)
{
	struct page *page;
	swp_entry_t entry;

	if (pte_present(pte)) {
		if (is_ksm_zero_pte(pte))
			return true;
		page = vm_normal_page(vma, addr, pte);
		return page && folio_test_ksm(page_folio(page));
	}
	if (pte_none(pte))
		return false;
	/* The fault waits for a migration to end, then unshares. */
	entry = pte_to_swp_entry(pte);
	return is_migration_entry(entry) &&
	       folio_test_ksm(pfn_swap_entry_folio(entry));
}

/**
 * struct ksm_break_batch - shared mappings found by one page table walk
 * @nr: addresses found.
 * @addrs: the addresses, in order.
 */
struct ksm_break_batch {
	unsigned int nr;
	unsigned long addrs[KSM_BREAK_BATCH];
};

static int ksm_merge_break_pmd(pmd_t *pmd, unsigned long addr,
			       unsigned long end, struct mm_walk *walk)
{
	struct ksm_break_batch *batch = walk->private;
	pmd_t pmdval = pmdp_get_lockless(pmd);
	pte_t *start, *pte;
	spinlock_t *ptl;
	int ret = 0;

	/* KSM pages are never mapped by a huge pmd. */
	if (pmd_none(pmdval) || !pmd_present(pmdval) || pmd_trans_huge(pmdval))
		return 0;
	start = ksm_pte_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start) {
		walk->action = ACTION_AGAIN;
		return 0;
	}
	for (pte = start; addr < end; addr += PAGE_SIZE, pte++) {
		if (!ksm_merge_pte_shared(walk->vma, addr, ptep_get(pte)))
			continue;
		batch->addrs[batch->nr++] = addr;
		if (batch->nr == KSM_BREAK_BATCH) {
			ret = 1;
			break;
		}
	}
	pte_unmap_unlock(start, ptl);
	return ret;
}

static const struct mm_walk_ops ksm_merge_break_ops = {
	.pmd_entry	= ksm_merge_break_pmd,
	.walk_lock	= PGWALK_RDLOCK,
};

/*
 * After an unshare fault at @addr: is a KSM page (or a KSM zero page) still
 * mapped there? @seen gets the pte. A private page found there instead, the
 * fault's copy normally, is marked dirty: its contents are nowhere else now,
 * but the pte the fault made is clean, and a fork child's MADV_FREE would
 * let reclaim drop a clean folio from under this mm too.
 */
static bool ksm_merge_still_shared(struct vm_area_struct *vma,
				   unsigned long addr, pte_t *seen)
{
	struct page *page;
	spinlock_t *ptl;
	pte_t *ptep, pte;
	bool shared;
	pmd_t *pmd;

	*seen = __pte(0);
	pmd = ksm_merge_pte_pmd(vma->vm_mm, addr);
	if (!pmd)
		return false;
	ptep = ksm_pte_map_lock(vma->vm_mm, pmd, addr, &ptl);
	if (!ptep)
		return true;	/* the page table changed: look again */
	pte = ptep_get(ptep);
	shared = ksm_merge_pte_shared(vma, addr, pte);
	if (!shared && pte_present(pte)) {
		page = vm_normal_page(vma, addr, pte);
		if (page && PageAnon(page))
			folio_mark_dirty(page_folio(page));
	}
	pte_unmap_unlock(ptep, ptl);
	*seen = pte;
	return shared;
}

/* A signal stops unmerging; a fatal one for good. */
static int ksm_merge_break_interrupted(void)
{
	if (fatal_signal_pending(current))
		return -EINTR;
	return signal_pending(current) ? -ERESTARTSYS : 0;
}

static int ksm_merge_fault_errno(vm_fault_t ret)
{
	if (ret & VM_FAULT_OOM)
		return -ENOMEM;
	if (ret & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE))
		return -EHWPOISON;
	return -EFAULT;
}

/*
 * Fault with FAULT_FLAG_UNSHARE at @addr until no KSM page is mapped there.
 * A fault that meets a migration entry waits for the migration to end and
 * returns without a copy; the next fault copies, unless another migration
 * began meanwhile, and then it waits again. Only a present pte that stays
 * the same fault after fault means that faults achieve nothing.
 */
static int ksm_merge_break_one(struct vm_area_struct *vma, unsigned long addr)
{
	pte_t before = __pte(0), now;
	unsigned int stuck = 0;
	vm_fault_t ret;

	for (;;) {
		ret = handle_mm_fault(vma, addr, FAULT_FLAG_UNSHARE |
				      FAULT_FLAG_REMOTE, NULL);
		if (ret & VM_FAULT_ERROR)
			return ksm_merge_fault_errno(ret);
		if (!ksm_merge_still_shared(vma, addr, &now))
			return 0;
		if (pte_present(now) && pte_same(now, before))
			stuck++;
		else
			stuck = 0;
		if (stuck >= KSM_BREAK_STUCK)
			return -EAGAIN;
		before = now;
		/* Other signals wait until the page is done or given up. */
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
}

/**
 * ksm_merge_break_range - give a range private copies of its KSM pages
 * @vma: the VMA; its mmap lock is held.
 * @start: start of the range, in @vma.
 * @end: end of the range, in @vma.
 *
 * Walks only the populated page tables, collecting up to KSM_BREAK_BATCH
 * addresses where a KSM page or a KSM zero page is mapped, and unshares
 * each of them before the walk goes on after the last. Nothing can map a
 * KSM page again behind the walk: merging and fork wait for ksm_lock or the
 * mmap lock that callers hold, and a swap-in copies while everything is
 * unmerged. A caller that holds the mmap lock for write must also keep
 * page faults under VMA locks out (vma_start_write()), since a swap-in
 * fault would map a KSM page again.
 *
 * Return: 0 once no KSM page is mapped in the range; -EINTR on a fatal
 * signal, -ERESTARTSYS on another (seen between batches, so that each
 * call unshares some pages); -ENOMEM, -EHWPOISON or -EFAULT when an
 * unshare fault failed, -EAGAIN when faults stopped changing anything.
 * Pages unshared before an error stay unshared.
 */
int ksm_merge_break_range(struct vm_area_struct *vma, unsigned long start,
			  unsigned long end)
{
	struct ksm_break_batch batch;
	unsigned long addr = start;
	unsigned int i;
	int err;

	mmap_assert_locked(vma->vm_mm);
	while (addr < end) {
		batch.nr = 0;
		err = walk_page_range_vma(vma, addr, end, &ksm_merge_break_ops,
					  &batch);
		if (err < 0)
			return err;
		if (!batch.nr)
			return 0;
		for (i = 0; i < batch.nr; i++) {
			err = ksm_merge_break_one(vma, batch.addrs[i]);
			if (err)
				return err;
		}
		addr = batch.addrs[batch.nr - 1] + PAGE_SIZE;
		/* After a batch: signals every few faults cannot stall it. */
		err = ksm_merge_break_interrupted();
		if (err)
			return err;
		cond_resched();
	}
	return 0;
}
