/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The checks shared by the hooks that act on file paths (file_open,
 * bprm_check_security, path_link, path_rename and those of
 * path_write.bpf.c): walk a path, look it up in a trie, add the fromSource
 * rules of the acting executable, decide, record.
 */
#ifndef SABPF_CHECK_PATH_H
#define SABPF_CHECK_PATH_H

#include "event.h"
#include "dir_cache.h"

/*
 * ORs in the rules that fromSource policies give the acting executable. The
 * executable's path is looked up in the source trie, once per run. Its node
 * names a second trie per table, in which the target path is looked up.
 */
static __noinline int sabpf_add_source_rules(struct sabpf_run *run, __u32 slot,
					     __u32 source_root, __u32 table)
{
	struct sabpf_source_root_key key = {};
	struct sabpf_match *src;
	__u32 *root;

	if (!run)
		return 0;
	src = &run->match[SABPF_MATCH_SOURCE];

	/* Which source executable is acting, if any has rules. */
	if (!run->source_ready) {
		if (!run->walk[SABPF_STACK_EXE].ready)
			sabpf_walk_exe(run);
		sabpf_lookup_path(run, slot, source_root, SABPF_STACK_EXE, SABPF_MATCH_SOURCE);
		run->source_ready = 1;
	}
	if (!src->exact || !src->source_id)
		return 0;

	/* Its trie for this table, then the target path in that trie. */
	key.slot = slot;
	key.source_id = src->source_id;
	key.table = table;
	root = bpf_map_lookup_elem(&sabpf_source_roots, &key);
	if (!root)
		return 0;
	return sabpf_lookup_path(run, slot, *root, SABPF_STACK_TARGET, SABPF_MATCH_TARGET);
}

/* The legacy object calls it as a global function (see SABPF_WALK in path.h). */
#ifdef SABPF_LEGACY
__noinline int sabpf_source_rules_unit(__u32 slot, __u32 source_root, __u32 table)
{
	return sabpf_add_source_rules(sabpf_run_get(), slot, source_root, table);
}
#define SABPF_SOURCE_RULES(run, slot, source_root, table)                      \
	sabpf_source_rules_unit(slot, source_root, table)
#else
#define SABPF_SOURCE_RULES(run, slot, source_root, table)                      \
	sabpf_add_source_rules(run, slot, source_root, table)
#endif

/* Parameters of one path check. */
struct sabpf_path_check {
	__u32 hook;	   /* enum sabpf_hook */
	__u32 section;	   /* enum sabpf_section: whose posture applies */
	__u32 table;	   /* enum sabpf_table, for fromSource roots */
	__u32 root;	   /* root node id of the trie */
	__u32 source_flag; /* SABPF_CONFIG_HAS_*_SOURCES that enables fromSource */
	__u32 cacheable;   /* the target's directory state may be cached (dir_cache.h) */
};

/* A check against the file rules: the file trie, posture and fromSource rules. */
#define SABPF_FILE_CHECK(hook_bit)                                             \
	{                                                                      \
		.hook = (hook_bit), .section = SABPF_SECTION_FILE,             \
		.table = SABPF_TABLE_FILE,                                     \
		.source_flag = SABPF_CONFIG_HAS_FILE_SOURCES,                  \
	}

#define SABPF_READ (1 << SABPF_ACCESS_READ)
#define SABPF_WRITE (1 << SABPF_ACCESS_WRITE)

/*
 * True when no path can change the decision: the section has no trie, no
 * fromSource rules and an allow posture everywhere, so every access is a
 * plain allow. The walk is skipped, which also means that a too-deep path
 * is not recorded then (there is nothing its depth could have hidden).
 */
static __always_inline int sabpf_nothing_to_decide(const struct sabpf_config *cfg,
						   const struct sabpf_path_check *c)
{
	__u32 s = c->section < SABPF_SECTIONS ? c->section : 0;

	return !c->root && !(cfg->flags & c->source_flag) && !cfg->posture_deny[s] &&
	       !cfg->posture_audit[s];
}

/*
 * Gathers the rules for {dentry, mnt} into the target match: from its
 * directory's cached state, or by walking the path into the target stack
 * and looking it up (caching the directory's state on the way). After a
 * cache hit the target stack is not filled (run->walk[...].ready is 0).
 */
static __always_inline void sabpf_target_rules(const struct sabpf_config *cfg,
					       struct sabpf_run *run, struct dentry *dentry,
					       struct vfsmount *mnt, const struct sabpf_path_check *c)
{
	/*
	 * The slot, read once: the config element can be rewritten in place
	 * during the check (a preallocated hash map reuses elements), and the
	 * lookup and a cached entry must name the same program. It is read
	 * before the probe reads the epoch, which the enforcer bumps first.
	 */
	__u32 slot = *(volatile __u32 *)&cfg->slot;
#if SABPF_DIR_CACHE
	struct sabpf_dir_probe probe = {};

	/*
	 * The probe lives on the stack, not in registers: the miss path reads
	 * it after the walk, and in registers Clang moved its fields into place
	 * before every early return of the cache read.
	 */
	asm volatile("" : : "r"(&probe));
	sabpf_barrier();

	/* fromSource rules need the walked path itself. */
	if (c->cacheable && c->root && !(cfg->flags & c->source_flag))
		sabpf_dir_probe(dentry, mnt, &probe);
	if (sabpf_dir_lookup(run, slot, c->table, c->root, dentry, mnt, &probe))
		return;
	run->dir_wanted = probe.inode != 0;
	run->dir_ready = 0;
#endif

	/* The path in the task's mount namespace, up to the top of its mount tree. */
	SABPF_WALK(run, SABPF_STACK_TARGET, dentry, mnt);
	SABPF_LOOKUP(run, slot, c->root, SABPF_STACK_TARGET, SABPF_MATCH_TARGET);

#if SABPF_DIR_CACHE
	run->dir_wanted = 0;
	sabpf_dir_fill(run, slot, c->table, c->root, mnt, &probe);
#endif
}

/*
 * Gathers the rules for {dentry, mnt} into the target match (with the
 * fromSource rules of the acting executable), and decides the accesses asked for (SABPF_READ,
 * SABPF_WRITE): the stronger decision wins, read first on a tie.
 */
static __always_inline struct sabpf_outcome sabpf_decide_path(const struct sabpf_config *cfg,
							       struct sabpf_run *run,
							       struct dentry *dentry,
							       struct vfsmount *mnt,
							       const struct sabpf_path_check *c,
							       __u32 accesses)
{
	struct sabpf_match *match = &run->match[SABPF_MATCH_TARGET];
	struct sabpf_outcome o = {}, w;

	/* A second path of one run (a link's) starts from no rules again. */
	__builtin_memset(match, 0, sizeof(*match));

	/* Rules for the path in the container's trie. */
	sabpf_target_rules(cfg, run, dentry, mnt, c);

	/* Rules that apply only when a given executable acts. */
	if (cfg->flags & c->source_flag)
		SABPF_SOURCE_RULES(run, cfg->slot, cfg->source_root, c->table);

	/* Each requested access: O_RDWR checks both read and write. */
	if (accesses & SABPF_READ)
		o = sabpf_decide(cfg, c->section, &match->acc[SABPF_ACCESS_READ], SABPF_ACCESS_READ);
	if (accesses & SABPF_WRITE) {
		w = sabpf_decide(cfg, c->section, &match->acc[SABPF_ACCESS_WRITE],
				 SABPF_ACCESS_WRITE);
		o = sabpf_stronger(o, w);
	}
	return o;
}

/* Records an outcome with the path now in the target stack. */
static __always_inline void sabpf_path_event(struct sabpf_run *run, __u32 hook,
					     const struct sabpf_outcome *o)
{
	struct sabpf_event *e = bpf_ringbuf_reserve(&sabpf_events, sizeof(*e), 0);

	if (!e) {
		sabpf_count(SABPF_COUNTER_EVENTS_DROPPED);
		return;
	}
	sabpf_event_fill(e, hook, o, run);
	e->path_len = sabpf_spell_path(run, SABPF_STACK_TARGET, e->path);
	bpf_ringbuf_submit(e, 0);
}

/* Counts a path too deep to look up, and says so in the outcome. */
static __always_inline void sabpf_mark_truncated(struct sabpf_run *run, struct sabpf_outcome *o)
{
	if (run->walk[SABPF_STACK_TARGET].truncated) {
		sabpf_count(SABPF_COUNTER_PATH_TRUNCATED);
		o->flags |= SABPF_EVENT_TRUNCATED;
	}
}

/*
 * Judges an operation that moves, creates or removes a directory or a
 * symlink at a path with a trie node, so rules at or below it: the paths
 * below change with it. The trie does not say whose rules lie below, so it
 * is denied for the config's enforcing policies, or recorded for its first
 * policy when none enforces.
 */
static __always_inline struct sabpf_outcome sabpf_rules_below(const struct sabpf_config *cfg)
{
	struct sabpf_outcome o = {.access = SABPF_ACCESS_WRITE, .flags = SABPF_EVENT_RULES_BELOW};

	if (cfg->enforce) {
		o.kind = SABPF_OUTCOME_ENFORCED;
		o.flags |= SABPF_EVENT_ENFORCED;
		o.policy = sabpf_lowest_bit(cfg->enforce);
	} else {
		o.kind = SABPF_OUTCOME_DENY;
	}
	return o;
}

/* True for a dentry of a directory or a symlink: paths below its name lead through it. */
static __always_inline int sabpf_names_tree(struct dentry *dentry)
{
	struct inode *inode = dentry->d_inode;
	__u32 type;

	if (!inode)
		return 0;
	type = inode->i_mode & S_IFMT;
	return type == S_IFDIR || type == S_IFLNK;
}

/*
 * Decides accesses to one path, records all but plain allows, and returns
 * the verdict. names_tree: the operation puts a symlink at the path, so it is also
 * denied when rules lie at or below the path (sabpf_rules_below), since
 * the symlink would lead those paths elsewhere.
 */
static __always_inline int sabpf_check_path(const struct sabpf_config *cfg, struct dentry *dentry,
					    struct vfsmount *mnt, const struct sabpf_path_check *c,
					    __u32 accesses, __u32 names_tree)
{
	struct sabpf_run *run;
	struct sabpf_outcome o;

	if (sabpf_nothing_to_decide(cfg, c))
		return SABPF_ALLOW;
	run = sabpf_run_get();
	if (!run)
		return SABPF_ALLOW; /* a one-entry array always has its entry */
	sabpf_run_start(run);

	o = sabpf_decide_path(cfg, run, dentry, mnt, c, accesses);
	if (names_tree && run->match[SABPF_MATCH_TARGET].exact)
		o = sabpf_stronger(o, sabpf_rules_below(cfg));

	/* A path too deep to look up was decided by posture alone: record it too. */
	sabpf_mark_truncated(run, &o);
	if (o.kind != SABPF_OUTCOME_ALLOW || (o.flags & SABPF_EVENT_TRUNCATED)) {
		/* A cache hit decided without the path: walk it for the record. */
		if (!run->walk[SABPF_STACK_TARGET].ready)
			SABPF_WALK(run, SABPF_STACK_TARGET, dentry, mnt);
		sabpf_path_event(run, c->hook, &o);
	}
	return sabpf_verdict_of(&o);
}

/*
 * A hard link gives the existing file a second name, which the path rules
 * would judge on its own: linking a protected file into an open directory
 * would open the file to every access the new name allows. So a link is
 * denied when opening the existing file for read or for write would be,
 * and when writing at the new name would be (a link into a protected tree
 * is a write there). A rename is judged the same way, since it gives the
 * file the new name, and the caller adds read at the new name when a file
 * there could move to the old name (new_accesses).
 *
 * A directory or a symlink leads the paths below its name. So giving one
 * a name with rules below it is denied (sabpf_rules_below): a link of a
 * symlink (the kernel links the symlink itself), or a rename to that name.
 * A rename (renames) also takes the old name away, so rules below the old
 * name count too, and with RENAME_EXCHANGE the one already at the new name
 * moves to the old one.
 *
 * NOTE: path_rename and path_link are the largest programs for the
 * verifier, about 785,000 of its 1,000,000 processed instructions on 6.1
 * (enforcer/bpf/README.md, Known limits). The hook tests fail past 900,000.
 *
 * Both names are on one mount, because the kernel rejects links and
 * renames across mounts before these hooks. The event names the path that
 * decided: the existing file, unless only the new name is protected (or
 * only it has rules below).
 */
static __always_inline int sabpf_check_link(const struct sabpf_config *cfg,
					    struct dentry *old_dentry, struct dentry *new_dentry,
					    struct vfsmount *mnt, const struct sabpf_path_check *c,
					    __u32 new_accesses, __u32 renames)
{
	struct sabpf_outcome o, at_new;
	__u32 new_truncated, new_decides, below_new, below_old, walk_new;
	struct sabpf_run *run;

	if (sabpf_nothing_to_decide(cfg, c))
		return SABPF_ALLOW;
	run = sabpf_run_get();
	if (!run)
		return SABPF_ALLOW;
	sabpf_run_start(run);

	/* The new name first, so that the stack holds the existing file afterwards. */
	at_new = sabpf_decide_path(cfg, run, new_dentry, mnt, c, new_accesses);
	sabpf_mark_truncated(run, &at_new);
	new_truncated = run->walk[SABPF_STACK_TARGET].truncated;
	below_new = run->match[SABPF_MATCH_TARGET].exact;

	o = sabpf_decide_path(cfg, run, old_dentry, mnt, c, SABPF_READ | SABPF_WRITE);
	sabpf_mark_truncated(run, &o);
	below_old = run->match[SABPF_MATCH_TARGET].exact & renames;
	if ((below_old | below_new) && (sabpf_names_tree(old_dentry) || sabpf_names_tree(new_dentry)))
		o = sabpf_stronger(o, sabpf_rules_below(cfg));

	/* The existing file decides unless the new name is strictly stronger. */
	new_decides = at_new.kind > o.kind ||
		      (at_new.kind == o.kind && new_truncated && !(o.flags & SABPF_EVENT_TRUNCATED));
	if (new_decides)
		o = at_new;

	/*
	 * A rules-below denial is recorded at the name the rules lie below: the
	 * new one when only it has them. Computed without branches: a version
	 * that branched here made the 6.1 verifier process over 1,000,000
	 * instructions for the cgroup object's path_rename, and reject it.
	 */
	walk_new = new_decides | ((o.flags / SABPF_EVENT_RULES_BELOW) & 1 & (below_old ^ 1));

	if (o.kind != SABPF_OUTCOME_ALLOW || (o.flags & SABPF_EVENT_TRUNCATED)) {
		if (walk_new)
			SABPF_WALK(run, SABPF_STACK_TARGET, new_dentry, mnt);
		sabpf_path_event(run, c->hook, &o);
	}
	return sabpf_verdict_of(&o);
}

#endif /* SABPF_CHECK_PATH_H */
