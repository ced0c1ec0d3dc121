/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The check shared by the hooks that act on a file path (file_open and
 * bprm_check_security): walk the path, look it up in a trie, add the
 * fromSource rules of the acting executable, decide, record.
 */
#ifndef SABPF_CHECK_PATH_H
#define SABPF_CHECK_PATH_H

#include "event.h"

/*
 * ORs in the rules that fromSource policies hold for the acting executable:
 * the executable's path is looked up in the source trie, and its node names
 * a second trie (per table) in which the target path is looked up.
 */
static __noinline int sabpf_add_source_rules(const struct sabpf_config *cfg, __u32 table,
					     struct sabpf_run *run)
{
	struct sabpf_source_root_key key = {};
	struct sabpf_match *src = &run->match[SABPF_MATCH_SOURCE];
	__u32 *root;

	/* Which source executable is acting, if any has rules. */
	sabpf_walk_exe();
	sabpf_lookup_path(cfg->slot, cfg->source_root, SABPF_STACK_EXE, SABPF_MATCH_SOURCE);
	if (!src->exact || !src->source_id)
		return 0;

	/* Its trie for this table, then the target path in that trie. */
	key.slot = cfg->slot;
	key.source_id = src->source_id;
	key.table = table;
	root = bpf_map_lookup_elem(&sabpf_source_roots, &key);
	if (!root)
		return 0;
	return sabpf_lookup_path(cfg->slot, *root, SABPF_STACK_TARGET, SABPF_MATCH_TARGET);
}

/* Parameters of one path check. */
struct sabpf_path_check {
	__u32 hook;	   /* enum sabpf_hook */
	__u32 section;	   /* enum sabpf_section: whose posture applies */
	__u32 table;	   /* enum sabpf_table, for fromSource roots */
	__u32 root;	   /* root node id of the trie */
	__u32 accesses;	   /* bit (1 << enum sabpf_access) per access asked for */
	__u32 source_flag; /* SABPF_CONFIG_HAS_*_SOURCES that enables fromSource */
};

static __always_inline int sabpf_check_path(const struct sabpf_config *cfg, const struct path *path,
					    const struct sabpf_path_check *c)
{
	struct sabpf_run *run = sabpf_run_get();
	struct sabpf_match *match;
	struct sabpf_outcome o = {}, w;
	struct sabpf_event *e;
	__u32 truncated;

	if (!run)
		return SABPF_ALLOW; /* a one-entry array always has its entry */
	sabpf_run_reset(run);
	match = &run->match[SABPF_MATCH_TARGET];

	/* The path as the task sees it, up to its root directory. */
	sabpf_walk_path(path, SABPF_STACK_TARGET);

	/* Rules for the path in the container's trie. */
	sabpf_lookup_path(cfg->slot, c->root, SABPF_STACK_TARGET, SABPF_MATCH_TARGET);

	/* Rules that apply only when a given executable acts. */
	if (cfg->flags & c->source_flag)
		sabpf_add_source_rules(cfg, c->table, run);

	/* Each requested access: O_RDWR checks both read and write. */
	if (c->accesses & (1 << SABPF_ACCESS_READ))
		o = sabpf_decide(cfg, c->section, &match->acc[SABPF_ACCESS_READ], SABPF_ACCESS_READ);
	if (c->accesses & (1 << SABPF_ACCESS_WRITE)) {
		w = sabpf_decide(cfg, c->section, &match->acc[SABPF_ACCESS_WRITE],
				 SABPF_ACCESS_WRITE);
		o = sabpf_stronger(o, w);
	}

	/* A path too deep to look up was decided by posture alone: say so. */
	truncated = run->walk[SABPF_STACK_TARGET].truncated;
	if (truncated) {
		sabpf_count(SABPF_COUNTER_PATH_TRUNCATED);
		o.flags |= SABPF_EVENT_TRUNCATED;
	}

	/* Record all but plain allows, and every truncated path. */
	if (o.kind != SABPF_OUTCOME_ALLOW || truncated) {
		e = bpf_ringbuf_reserve(&sabpf_events, sizeof(*e), 0);
		if (e) {
			sabpf_event_fill(e, c->hook, &o);
			e->path_len = sabpf_spell_path(SABPF_STACK_TARGET, e->path);
			bpf_ringbuf_submit(e, 0);
		} else {
			sabpf_count(SABPF_COUNTER_EVENTS_DROPPED);
		}
	}

	return sabpf_verdict_of(&o);
}

#endif /* SABPF_CHECK_PATH_H */
