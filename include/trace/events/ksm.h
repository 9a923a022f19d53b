/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of Kernel Samepage Merging.
 *
 * perf, trace-cmd, bpftrace and home-grown scripts find these events in
 * tracefs by name and decode them through each event's "format" file;
 * BPF programs may also name the record structs that BTF describes.  The
 * event names, the record fields (name, type and order), the print formats
 * and the two event class names are therefore an interface to user space:
 * they stay exactly as earlier kernels had them, whatever the code behind
 * them looks like.  Information that does not fit belongs in a new event,
 * not in a changed one.
 *
 * Several fields carry kernel pointers (an mm, a per-page item, a KSM
 * folio).  They serve only to match up events about one object; the output
 * prints them with %p, so they are hashed unless the kernel was booted with
 * no_hash_pointers.  A field named rmap_item holds the address of KSM's
 * per-page tracking item, whatever that item is called in the code today.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM ksm

#if !defined(_TRACE_KSM_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_KSM_H

#include <linux/tracepoint.h>

/*
 * A scan round is one pass of ksmd over every registered address space.
 * @seq is the number of the round and @rmap_entries the count of per-page
 * items that exist when the event fires.  The output prints that unsigned
 * count with %d, as it always has.
 */
DECLARE_EVENT_CLASS(ksm_scan_template,
	TP_PROTO(int seq, u32 rmap_entries),
	TP_ARGS(seq, rmap_entries),
	TP_STRUCT__entry(__field(int, seq)
			 __field(u32, rmap_entries)),
	TP_fast_assign(__entry->seq = seq;
		       __entry->rmap_entries = rmap_entries;),
	TP_printk("seq %d rmap size %d", __entry->seq, __entry->rmap_entries)
);

/* ksmd is about to visit the first address space of round @seq. */
DEFINE_EVENT(ksm_scan_template, ksm_start_scan,
	TP_PROTO(int seq, u32 rmap_entries),
	TP_ARGS(seq, rmap_entries));

/* ksmd has visited the last address space of round @seq. */
DEFINE_EVENT(ksm_scan_template, ksm_stop_scan,
	TP_PROTO(int seq, u32 rmap_entries),
	TP_ARGS(seq, rmap_entries));

/*
 * An address space joins or leaves KSM.  @mm only identifies it: by the
 * time a consumer reads the record, the mm may be gone.
 */
DECLARE_EVENT_CLASS(ksm_enter_exit_template,
	TP_PROTO(void *mm),
	TP_ARGS(mm),
	TP_STRUCT__entry(__field(void *, mm)),
	TP_fast_assign(__entry->mm = mm;),
	TP_printk("mm %p", __entry->mm)
);

/* @mm got its KSM slot: ksmd scans it from now on. */
DEFINE_EVENT(ksm_enter_exit_template, ksm_enter,
	TP_PROTO(void *mm),
	TP_ARGS(mm));

/* @mm gave up its KSM slot: the address space is going away. */
DEFINE_EVENT(ksm_enter_exit_template, ksm_exit,
	TP_PROTO(void *mm),
	TP_ARGS(mm));

/*
 * One attempt to merge a page of @mm without an existing KSM page to join:
 * to turn the page itself into a new KSM page, or to replace it with the
 * shared zero page.  @pfn is the page frame the attempt is about and
 * @rmap_item the per-page item of the mapping; @err is 0 on success and a
 * negative errno otherwise.
 */
TRACE_EVENT(ksm_merge_one_page,
	TP_PROTO(unsigned long pfn, void *rmap_item, void *mm, int err),
	TP_ARGS(pfn, rmap_item, mm, err),
	TP_STRUCT__entry(__field(unsigned long, pfn)
			 __field(void *, rmap_item)
			 __field(void *, mm)
			 __field(int, err)),
	TP_fast_assign(__entry->pfn = pfn;
		       __entry->rmap_item = rmap_item;
		       __entry->mm = mm;
		       __entry->err = err;),
	TP_printk("ksm pfn %lu rmap_item %p mm %p error %d",
		  __entry->pfn, __entry->rmap_item, __entry->mm, __entry->err)
);

/*
 * One attempt to map a scanned page of @mm onto the KSM page @ksm_page.
 * @pfn is the pfn of @ksm_page, or of the scanned page when @ksm_page is
 * NULL, in which case the output drops its "ksm " prefix.  @rmap_item is
 * the per-page item of the mapping; @err is 0 on success and a negative
 * errno otherwise.
 */
TRACE_EVENT(ksm_merge_with_ksm_page,
	TP_PROTO(void *ksm_page, unsigned long pfn, void *rmap_item,
		 void *mm, int err),
	TP_ARGS(ksm_page, pfn, rmap_item, mm, err),
	TP_STRUCT__entry(__field(void *, ksm_page)
			 __field(unsigned long, pfn)
			 __field(void *, rmap_item)
			 __field(void *, mm)
			 __field(int, err)),
	TP_fast_assign(__entry->ksm_page = ksm_page;
		       __entry->pfn = pfn;
		       __entry->rmap_item = rmap_item;
		       __entry->mm = mm;
		       __entry->err = err;),
	TP_printk("%spfn %lu rmap_item %p mm %p error %d",
		  (__entry->ksm_page ? "ksm " : ""), __entry->pfn,
		  __entry->rmap_item, __entry->mm, __entry->err)
);

/*
 * KSM stopped tracking the KSM page at @pfn: its stable node is freed,
 * because its last mapping went away or the page itself is gone.
 */
TRACE_EVENT(ksm_remove_ksm_page,
	TP_PROTO(unsigned long pfn),
	TP_ARGS(pfn),
	TP_STRUCT__entry(__field(unsigned long, pfn)),
	TP_fast_assign(__entry->pfn = pfn;),
	TP_printk("pfn %lu", __entry->pfn)
);

/*
 * The mapping that @rmap_item tracks in @mm no longer shares the KSM folio
 * at @pfn (unmap, copy on write, unmerge, or the folio leaving the index).
 */
TRACE_EVENT(ksm_remove_rmap_item,
	TP_PROTO(unsigned long pfn, void *rmap_item, void *mm),
	TP_ARGS(pfn, rmap_item, mm),
	TP_STRUCT__entry(__field(unsigned long, pfn)
			 __field(void *, rmap_item)
			 __field(void *, mm)),
	TP_fast_assign(__entry->pfn = pfn;
		       __entry->rmap_item = rmap_item;
		       __entry->mm = mm;),
	TP_printk("pfn %lu rmap_item %p mm %p",
		  __entry->pfn, __entry->rmap_item, __entry->mm)
);

/*
 * The scan-time advisor has sized the coming round.  The round that just
 * ended took @round_secs seconds of wall time and kept ksmd busy for
 * @cpu_pct percent of it; from now on ksmd scans @batch pages per wakeup.
 * The record keeps the field names that tools already know.
 */
TRACE_EVENT(ksm_advisor,
	TP_PROTO(s64 round_secs, unsigned long batch, unsigned int cpu_pct),
	TP_ARGS(round_secs, batch, cpu_pct),
	TP_STRUCT__entry(__field(s64, scan_time)
			 __field(unsigned long, pages_to_scan)
			 __field(unsigned int, cpu_percent)),
	TP_fast_assign(__entry->scan_time = round_secs;
		       __entry->pages_to_scan = batch;
		       __entry->cpu_percent = cpu_pct;),
	TP_printk("ksm scan time %lld pages_to_scan %lu cpu percent %u",
		  __entry->scan_time, __entry->pages_to_scan,
		  __entry->cpu_percent)
);

#endif /* _TRACE_KSM_H */

/* Outside the include guard: define_trace.h reads this file again. */
#include <trace/define_trace.h>
