// SPDX-License-Identifier: GPL-2.0-only
/*
 * KSM knobs and counters under /sys/kernel/mm/ksm/.
 *
 * Every writable knob is a row of ksm_knobs[]: one parser checks the
 * bounds of all of them, and a knob that needs more than a store has an
 * apply hook, called under ksm_lock. A rejected write changes nothing.
 */

#include <linux/kobject.h>
#include <linux/kstrtox.h>
#include <linux/oom.h>
#include <linux/sysfs.h>

#include "ksm_internal.h"

/**
 * struct ksm_knob - one writable knob
 * @attr: its sysfs attribute.
 * @value: where its value lives.
 * @range: the values it accepts.
 * @apply: called under ksm_lock instead of a plain store, or NULL.
 */
struct ksm_knob {
	struct kobj_attribute attr;
	unsigned long *value;
	struct ksm_knob_range range;
	int (*apply)(unsigned long *value, unsigned long new);
};

/* A knob that takes words: the index of the word written. */
static int ksm_knob_parse_word(const char *buf, const char * const *names,
			       unsigned long *val)
{
	unsigned long i;

	for (i = 0; names[i]; i++) {
		if (sysfs_streq(buf, names[i])) {
			*val = i;
			return 0;
		}
	}
	return -EINVAL;
}

/**
 * ksm_knob_parse - parse a knob value and check its bounds
 * @buf: what was written; a trailing newline is fine.
 * @range: what the knob accepts.
 * @val: set to the value; left alone on error.
 *
 * Return: 0, -EINVAL for a word that is not a number or out of range, or,
 * for knobs with a @range->type_max, -ERANGE for an overflow.
 */
int ksm_knob_parse(const char *buf, const struct ksm_knob_range *range,
		   unsigned long *val)
{
	unsigned long v;
	bool b;
	int err;

	if (range->names)
		return ksm_knob_parse_word(buf, range->names, val);
	if (range->boolean && !kstrtobool(buf, &b)) {
		*val = b;
		return 0;
	}
	err = kstrtoul(buf, 10, &v);
	if (err)
		return range->type_max ? err : -EINVAL;
	if (range->type_max && v > range->type_max)
		return -ERANGE;
	if (v < range->min || v > range->max)
		return -EINVAL;
	*val = v;
	return 0;
}

static int ksm_apply_run(unsigned long *value, unsigned long new)
{
	int err = 0;

	if (*value == new)
		return 0;
	WRITE_ONCE(*value, new);
	/* A round that ksmd stopped in says nothing about its speed. */
	ksm_advisor_restart();
	if (new == KSM_RUN_UNMERGE) {
		set_current_oom_origin();
		err = ksm_scan_unmerge_all();
		clear_current_oom_origin();
		if (err)
			WRITE_ONCE(*value, KSM_RUN_STOP);
	}
	return err;
}

/* Knobs that shape the stable index may only change while it is empty. */
static int ksm_apply_index_shape(unsigned long *value, unsigned long new)
{
	if (*value == new)
		return 0;
	if (!ksm_index_stable_empty())
		return -EBUSY;
	WRITE_ONCE(*value, new);
	ksm_scan_restart();
	return 0;
}

/* While the advisor is on, it alone sets pages_to_scan. */
static int ksm_apply_pages_to_scan(unsigned long *value, unsigned long new)
{
	if (READ_ONCE(ksm_tun.advisor_mode) != KSM_ADVISOR_NONE)
		return -EINVAL;
	WRITE_ONCE(*value, new);
	return 0;
}

static int ksm_apply_advisor_mode(unsigned long *value, unsigned long new)
{
	if (*value != new)
		ksm_advisor_set_mode(new);
	return 0;
}

static const char * const ksm_advisor_names[] = {
	[KSM_ADVISOR_NONE] = "none",
	[KSM_ADVISOR_SCAN_TIME] = "scan-time",
	NULL,
};

#define KSM_KNOB(_name, _field, _apply, ...)				\
	{								\
		.attr = __ATTR(_name, 0644, ksm_knob_show, ksm_knob_store), \
		.value = &ksm_tun._field,				\
		.range = { __VA_ARGS__ },				\
		.apply = (_apply),					\
	}

/* All the words of a word knob, the current one in brackets. */
static ssize_t ksm_knob_show_words(const char * const *names,
				   unsigned long val, char *buf)
{
	unsigned long i;
	int len = 0;

	for (i = 0; names[i]; i++)
		len += sysfs_emit_at(buf, len, i == val ? "%s[%s]" : "%s%s",
				     i ? " " : "", names[i]);
	return len + sysfs_emit_at(buf, len, "\n");
}

static ssize_t ksm_knob_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	struct ksm_knob *knob = container_of(attr, struct ksm_knob, attr);
	unsigned long val = READ_ONCE(*knob->value);

	if (knob->range.names)
		return ksm_knob_show_words(knob->range.names, val, buf);
	return sysfs_emit(buf, "%lu\n", val);
}

static ssize_t ksm_knob_store(struct kobject *kobj, struct kobj_attribute *attr,
			      const char *buf, size_t count)
{
	struct ksm_knob *knob = container_of(attr, struct ksm_knob, attr);
	unsigned long val;
	int err;

	err = ksm_knob_parse(buf, &knob->range, &val);
	if (err)
		return err;
	ksm_lock_other();
	if (knob->apply)
		err = knob->apply(knob->value, val);
	else
		WRITE_ONCE(*knob->value, val);
	mutex_unlock(&ksm_lock);
	wake_up_interruptible(&ksmd_wait);
	return err ? err : count;
}

static struct ksm_knob ksm_knobs[] = {
	KSM_KNOB(run, run, ksm_apply_run,
		 .min = KSM_RUN_STOP, .max = KSM_RUN_UNMERGE),
	KSM_KNOB(pages_to_scan, pages_to_scan, ksm_apply_pages_to_scan,
		 .max = UINT_MAX),
	KSM_KNOB(sleep_millisecs, sleep_millisecs, NULL, .max = UINT_MAX),
#ifdef CONFIG_NUMA
	KSM_KNOB(merge_across_nodes, merge_across_nodes, ksm_apply_index_shape,
		 .max = 1, .type_max = ULONG_MAX),
#endif
#ifdef CONFIG_MEMCG
	/* A knob of this tree only: every bad write is -EINVAL. */
	KSM_KNOB(merge_across_cgroups, merge_across_cgroups,
		 ksm_apply_index_shape, .max = 1),
#endif
	KSM_KNOB(use_zero_pages, use_zero_pages, NULL,
		 .max = 1, .boolean = true),
	KSM_KNOB(max_page_sharing, max_page_sharing, ksm_apply_index_shape,
		 .min = 2, .max = INT_MAX, .type_max = INT_MAX),
	KSM_KNOB(stable_node_chains_prune_millisecs, prune_millisecs, NULL,
		 .max = UINT_MAX),
	KSM_KNOB(smart_scan, smart_scan, NULL, .max = 1, .boolean = true),
	KSM_KNOB(advisor_mode, advisor_mode, ksm_apply_advisor_mode,
		 .names = ksm_advisor_names),
	KSM_KNOB(advisor_max_cpu, advisor_max_cpu, NULL, .max = UINT_MAX),
	KSM_KNOB(advisor_min_pages_to_scan, advisor_min_pages, NULL,
		 .max = ULONG_MAX),
	KSM_KNOB(advisor_max_pages_to_scan, advisor_max_pages, NULL,
		 .max = ULONG_MAX),
	KSM_KNOB(advisor_target_scan_time, advisor_target_secs, NULL,
		 .min = 1, .max = ULONG_MAX),
};

static long ksm_stat_pages_volatile(void)
{
	long v = READ_ONCE(ksm_stats.items) - READ_ONCE(ksm_stats.pages_shared) -
		 READ_ONCE(ksm_stats.pages_sharing) -
		 READ_ONCE(ksm_stats.pages_unshared);

	/* The counters are read one by one while ksmd changes them. */
	return max(v, 0L);
}

/**
 * ksm_general_profit - bytes saved by all merging, minus tracking cost
 * @sharing: mappings beyond the first of every KSM page.
 * @zero_pages: zero pages mapped by ksmd.
 * @items: tracking items in use.
 *
 * Return: the profit in bytes; negative when tracking costs more.
 */
long ksm_general_profit(unsigned long sharing, unsigned long zero_pages,
			unsigned long items)
{
	return (long)(sharing + zero_pages) * PAGE_SIZE -
	       (long)(items * sizeof(struct ksm_item));
}

static long ksm_stat_value(const char *name)
{
	if (!strcmp(name, "pages_shared"))
		return READ_ONCE(ksm_stats.pages_shared);
	if (!strcmp(name, "pages_sharing"))
		return READ_ONCE(ksm_stats.pages_sharing);
	if (!strcmp(name, "pages_unshared"))
		return READ_ONCE(ksm_stats.pages_unshared);
	if (!strcmp(name, "pages_volatile"))
		return ksm_stat_pages_volatile();
	if (!strcmp(name, "pages_scanned"))
		return READ_ONCE(ksm_stats.pages_scanned);
	if (!strcmp(name, "full_scans")) {
		/* Pairs with the smp_wmb() before ksmd moves it on. */
		return smp_load_acquire(&ksm_stats.full_scans);
	}
	if (!strcmp(name, "pages_skipped"))
		return READ_ONCE(ksm_stats.pages_skipped);
	if (!strcmp(name, "stable_node_chains"))
		return READ_ONCE(ksm_stats.chains);
	if (!strcmp(name, "stable_node_dups"))
		return READ_ONCE(ksm_stats.dups);
	if (!strcmp(name, "ksm_zero_pages"))
		return atomic_long_read(&ksm_zero_pages);
	return ksm_general_profit(READ_ONCE(ksm_stats.pages_sharing),
				  atomic_long_read(&ksm_zero_pages),
				  READ_ONCE(ksm_stats.items));
}

static ssize_t ksm_stat_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	ksm_scan_sync_breaks();
	return sysfs_emit(buf, "%ld\n", ksm_stat_value(attr->attr.name));
}

#define KSM_STAT(_name)	__ATTR(_name, 0444, ksm_stat_show, NULL)

static struct kobj_attribute ksm_stat_attrs[] = {
	KSM_STAT(pages_shared),
	KSM_STAT(pages_sharing),
	KSM_STAT(pages_unshared),
	KSM_STAT(pages_volatile),
	KSM_STAT(pages_scanned),
	KSM_STAT(full_scans),
	KSM_STAT(pages_skipped),
	KSM_STAT(stable_node_chains),
	KSM_STAT(stable_node_dups),
	KSM_STAT(ksm_zero_pages),
	KSM_STAT(general_profit),
};

static struct attribute *ksm_attrs[ARRAY_SIZE(ksm_knobs) +
				   ARRAY_SIZE(ksm_stat_attrs) + 1];

static const struct attribute_group ksm_attr_group = {
	.attrs = ksm_attrs,
	.name = "ksm",
};

/**
 * ksm_sysfs_init - create /sys/kernel/mm/ksm/
 *
 * Return: 0, or the error of sysfs_create_group().
 */
int ksm_sysfs_init(void)
{
	unsigned int i, n = 0;

	if (!IS_ENABLED(CONFIG_SYSFS))
		return 0;
	for (i = 0; i < ARRAY_SIZE(ksm_knobs); i++)
		ksm_attrs[n++] = &ksm_knobs[i].attr.attr;
	for (i = 0; i < ARRAY_SIZE(ksm_stat_attrs); i++)
		ksm_attrs[n++] = &ksm_stat_attrs[i].attr;
	return sysfs_create_group(mm_kobj, &ksm_attr_group);
}
