/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Paths as the container sees them: a dentry walk from a file up to the
 * root of its mount tree, and the lookup of the collected components in a
 * path trie (maps sabpf_nodes and sabpf_long_nodes).
 *
 * The walk ends at the top of the mount tree, not at the task's root
 * directory: a container's runtime pivots its mount namespace onto the
 * image, so the top is the container's "/", and a chroot(2) inside the
 * container cannot give a protected file a shorter, unprotected path.
 *
 * Both loops run their steps with sabpf_loop (loop.h): bpf_loop where the
 * kernel has it, a bounded loop in the legacy object. Loop state is in the
 * per-CPU sabpf_runs entry (see struct sabpf_run for why not the stack).
 *
 * Most of the cost of a check is here. The walk up costs one probe read per
 * component (two per mount crossed). The lookup down costs one string read
 * and one hash lookup per component, until the first component without a
 * node, of a 40-byte key (a 264-byte one for names over 31 bytes).
 */
#ifndef SABPF_PATH_H
#define SABPF_PATH_H

#include "loop.h"

/*
 * Hides var's range from the compiler, so a mask that only the
 * verifier needs (x & (SIZE - 1) after a check that x < SIZE) is kept.
 */
#define sabpf_forget_range(var) asm volatile("" : "+r"(var))

/*
 * Returns x & 1 with the mask kept. Clang may spill a value it proved to be
 * 0 or 1 and reload it unmasked, and the verifier does not track the range
 * of a 32-bit spill, so the reloaded index into a two-entry array would look
 * unbounded to it.
 */
static __always_inline __u32 sabpf_bit(__u32 x)
{
	sabpf_forget_range(x);
	return x & 1;
}

/*
 * Context of the loop steps: pointers into this CPU's scratch maps,
 * looked up once per loop instead of once per iteration. It holds only
 * pointers, because whatever changes between iterations must be in *run.
 */
struct sabpf_loop_ctx {
	struct sabpf_run *run;
	struct sabpf_walk *walk;
	struct sabpf_path_stack *stack;
	struct sabpf_match *match;     /* lookups only */
	struct sabpf_key_scratch *key; /* lookups only */
	struct sabpf_path_text *text;  /* spelling only */
};

static __always_inline struct sabpf_run *sabpf_run_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sabpf_runs, &zero);
}

/* Forgets the walks and matches of the previous run on this CPU. */
static __always_inline void sabpf_run_start(struct sabpf_run *run)
{
	__builtin_memset(run->walk, 0, sizeof(run->walk));
	__builtin_memset(run->match, 0, sizeof(run->match));
	run->source_ready = 0;
}

/* Bytes read from d_parent on: enough for d_parent and d_name after it. */
#define SABPF_DENTRY_WINDOW 32

/* Fields of a dentry that the walk needs. */
struct sabpf_dentry_fields {
	__u64 parent;
	__u64 name;
	__u32 len;
};

/*
 * Reads a dentry's parent, name and name length. d_parent and d_name are
 * adjacent in struct dentry, so one probe read covers all three. The offsets
 * are relocated against the running kernel, and a layout where they do not
 * fit the window falls back to three reads.
 */
static __always_inline int sabpf_read_dentry(__u64 dentry, struct sabpf_dentry_fields *out)
{
	union {
		__u64 q[SABPF_DENTRY_WINDOW / 8];
		__u32 d[SABPF_DENTRY_WINDOW / 4];
	} window;
	__u32 parent_off = bpf_core_field_offset(struct dentry, d_parent);
	__u32 name_off = bpf_core_field_offset(struct dentry, d_name.name);
	__u32 len_off = bpf_core_field_offset(struct dentry, d_name.len);
	struct dentry *d = (struct dentry *)dentry;

	if (name_off >= parent_off && len_off >= parent_off &&
	    name_off - parent_off + 8 <= SABPF_DENTRY_WINDOW &&
	    len_off - parent_off + 4 <= SABPF_DENTRY_WINDOW && !((name_off - parent_off) & 7) &&
	    !((len_off - parent_off) & 3)) {
		if (bpf_probe_read_kernel(&window, sizeof(window), (void *)d + parent_off) < 0)
			return -1;
		out->parent = window.q[0];
		out->name = window.q[(name_off - parent_off) / 8];
		out->len = window.d[(len_off - parent_off) / 4];
		return 0;
	}
	if (bpf_core_read(&out->parent, sizeof(out->parent), &d->d_parent) < 0 ||
	    bpf_core_read(&out->name, sizeof(out->name), &d->d_name.name) < 0 ||
	    bpf_core_read(&out->len, sizeof(out->len), &d->d_name.len) < 0)
		return -1;
	return 0;
}

/*
 * Reads a mount's parent and mount point, which are adjacent in struct
 * mount: one probe read where the relocated offsets allow it.
 */
static __always_inline int sabpf_read_mount(struct mount *m, __u64 *parent, __u64 *mountpoint)
{
	__u32 parent_off = bpf_core_field_offset(struct mount, mnt_parent);
	__u32 point_off = bpf_core_field_offset(struct mount, mnt_mountpoint);
	__u64 pair[2];

	if (point_off == parent_off + 8) {
		if (bpf_probe_read_kernel(pair, sizeof(pair), (void *)m + parent_off) < 0)
			return -1;
		*parent = pair[0];
		*mountpoint = pair[1];
		return 0;
	}
	if (bpf_core_read(parent, sizeof(*parent), &m->mnt_parent) < 0 ||
	    bpf_core_read(mountpoint, sizeof(*mountpoint), &m->mnt_mountpoint) < 0)
		return -1;
	return 0;
}

/*
 * At the root of a mount (or of a disconnected tree): continue from the
 * mount point in the parent mount, or stop at the top of the mount tree.
 */
static __always_inline long sabpf_cross_mount(struct sabpf_run *run, struct sabpf_walk *w)
{
	struct vfsmount *mnt = (struct vfsmount *)run->mnt, *up_mnt;
	struct mount *m = sabpf_container_of(mnt, struct mount, mnt);
	__u64 up, mountpoint;

	if (sabpf_read_mount(m, &up, &mountpoint) < 0 || up == (__u64)m || !up) {
		w->done = 1;
		return 1;
	}
	up_mnt = (struct vfsmount *)(up + bpf_core_field_offset(struct mount, mnt));
	run->dentry = mountpoint;
	run->mnt = (__u64)up_mnt;
	run->mnt_root = (__u64)BPF_CORE_READ(up_mnt, mnt_root);
	return 0;
}

/* One step up: cross a mount (stopping at the top of the tree) or record a name. */
SABPF_STEP sabpf_walk_step(__u32 i, void *data)
{
	struct sabpf_loop_ctx *c = data;
	struct sabpf_run *run = c->run;
	struct sabpf_walk *w = c->walk;
	struct sabpf_dentry_fields f;
	__u32 depth;

	if (run->dentry == run->mnt_root)
		return sabpf_cross_mount(run, w);

	/* An unreadable dentry leaves the path unknown: as unusable as a deep one. */
	if (sabpf_read_dentry(run->dentry, &f) < 0) {
		w->truncated = 1;
		w->done = 1;
		return 1;
	}
	if (f.parent == run->dentry) {
		w->detached = 1;
		return sabpf_cross_mount(run, w);
	}

	/* A component: keep its name, unless the path is deeper than the stack. */
	depth = w->depth;
	if (depth >= SABPF_WALK_MAX_DEPTH) {
		w->truncated = 1;
		w->done = 1;
		return 1;
	}
#ifndef SABPF_LEGACY
	if (!depth)
		w->first_parent = f.parent;
#endif
	c->stack->name[depth & (SABPF_MAX_DEPTH - 1)] = f.name;
	c->stack->len[depth & (SABPF_MAX_DEPTH - 1)] = f.len > 0xffff ? 0xffff : f.len;
	w->depth = depth + 1;
	run->dentry = f.parent;
	return 0;
}
SABPF_STEP_GUARD(sabpf_walk_step)

/*
 * Collects the components of the path {dentry, mnt} into stack (enum
 * sabpf_stack_index), up to the top of its mount tree.
 */
static __noinline int sabpf_walk(struct sabpf_run *run, __u32 stack, struct dentry *dentry,
				 struct vfsmount *mnt)
{
	struct sabpf_loop_ctx ctx = {.run = run};
	__u32 index = sabpf_bit(stack);
	struct sabpf_walk *w;

	if (!run)
		return 0;
	w = &run->walk[sabpf_bit(stack)];
	w->depth = 0;
	w->truncated = 0;
	w->done = 0;
	w->detached = 0;
	w->first_parent = 0;
	w->ready = 1;
	ctx.walk = w;
	ctx.stack = bpf_map_lookup_elem(&sabpf_path_stacks, &index);
	if (!ctx.stack || !dentry || !mnt) {
		w->truncated = 1;
		return 0;
	}
	run->dentry = (__u64)dentry;
	run->mnt = (__u64)mnt;
#ifdef SABPF_LEGACY
	/* mnt may come from a probe read (the executable's path): read it the same way. */
	run->mnt_root = (__u64)BPF_CORE_READ(mnt, mnt_root);
#else
	run->mnt_root = (__u64)mnt->mnt_root;
#endif

	sabpf_loop(SABPF_WALK_STEPS, SABPF_WALK_STEPS, sabpf_walk_step, &ctx);

	/* The loop ran out before reaching a root: as unusable as a deep path. */
	if (!w->done)
		w->truncated = 1;
	return 0;
}

/* Walks the executable of the acting task (none for a kernel thread, which has no mm). */
static __noinline int sabpf_walk_exe(struct sabpf_run *run)
{
	struct task_struct *task = sabpf_current_task();
	struct dentry *dentry;
	struct vfsmount *mnt;
	struct file *exe;

	if (!run)
		return 0;
#ifdef SABPF_LEGACY
	exe = BPF_CORE_READ(task, mm, exe_file);
#else
	exe = task->mm->exe_file;
#endif
	if (!exe) {
		run->walk[SABPF_STACK_EXE].depth = 0;
		run->walk[SABPF_STACK_EXE].truncated = 0;
		run->walk[SABPF_STACK_EXE].ready = 1;
		return 0;
	}
#ifdef SABPF_LEGACY
	dentry = BPF_CORE_READ(exe, f_path.dentry);
	mnt = BPF_CORE_READ(exe, f_path.mnt);
#else
	dentry = exe->f_path.dentry;
	mnt = exe->f_path.mnt;
#endif
	return sabpf_walk(run, SABPF_STACK_EXE, dentry, mnt);
}

static __always_inline void sabpf_or(struct sabpf_verdict *acc, const struct sabpf_verdict *v)
{
	acc->deny |= v->deny;
	acc->audit |= v->audit;
	acc->allow |= v->allow;
}

/*
 * Looks up {slot, parent, name} with name read from kernel memory. len is
 * the name's length as the dentry gave it, which says whether the bytes of
 * a longer previous name must be cleared first.
 */
static __always_inline struct sabpf_node *sabpf_find_component(struct sabpf_key_scratch *k,
								__u32 parent, const char *name,
								__u32 len)
{
	__u32 written = k->name_len;
	long n;

	k->key.parent = parent;
	if (written > len + 1) {
		__builtin_memset(k->key.name, 0, sizeof(k->key.name));
		written = 0;
	}
	n = bpf_probe_read_kernel_str(k->key.name, sizeof(k->key.name), name);

	/* Shorter than its length said: renamed meanwhile. Clear and read again. */
	if (n >= 0 && n < written) {
		__builtin_memset(k->key.name, 0, sizeof(k->key.name));
		n = bpf_probe_read_kernel_str(k->key.name, sizeof(k->key.name), name);
	}
	if (n < 0) {
		__builtin_memset(k->key.name, 0, sizeof(k->key.name));
		k->name_len = 0;
		return 0;
	}
	k->name_len = n;

	/* n counts the NUL: up to SABPF_SHORT_NAME bytes fit the short key at the start of k->key. */
	if (n <= SABPF_SHORT_NAME)
		return bpf_map_lookup_elem(&sabpf_nodes, &k->key);
	return bpf_map_lookup_elem(&sabpf_long_nodes, &k->key);
}

/*
 * The last component of a path, with node its trie node or NULL: "dir/<any>"
 * (the directory's children rules) covers it either way, and a node adds
 * its subtree and exact rules.
 */
static __always_inline void sabpf_match_leaf(struct sabpf_match *m, const struct sabpf_node *node,
					     const struct sabpf_verdict *children)
{
	int a;

	for (a = 0; a < SABPF_ACCESSES; a++)
		sabpf_or(&m->acc[a], &children[a]);
	if (!node)
		return;
	for (a = 0; a < SABPF_ACCESSES; a++) {
		sabpf_or(&m->acc[a], &node->rules[SABPF_SCOPE_SUBTREE][a]);
		sabpf_or(&m->acc[a], &node->rules[SABPF_SCOPE_EXACT][a]);
	}
	m->exact = 1;
	m->source_id = node->source_id;
}

/*
 * Keeps the lookup's state once it has passed the leaf's directory:
 * the masks so far, that directory's children rules and its node (0 when
 * a component above it had no node, which ends the lookup there). The
 * directory cache (dir_cache.h) stores it.
 */
static __always_inline void sabpf_keep_dir(struct sabpf_run *run, const struct sabpf_match *m,
					   __u32 node)
{
#ifdef SABPF_LEGACY
	return; /* no cache there, and the 5.10 verifier is near its limit */
#endif
	if (!run->dir_wanted)
		return;
	__builtin_memcpy(run->dir_acc, m->acc, sizeof(run->dir_acc));
	__builtin_memcpy(run->dir_children, run->children, sizeof(run->dir_children));
	run->dir_node = node;
	run->dir_ready = 1;
}

/* One component, root first: gather its masks or stop at the first miss. */
SABPF_STEP sabpf_lookup_step(__u32 i, void *data)
{
	struct sabpf_loop_ctx *c = data;
	struct sabpf_run *run = c->run;
	struct sabpf_match *m = c->match;
	struct sabpf_node *node;
	__u32 depth = c->walk->depth, index, last;
	int a;

	index = (depth - 1 - i) & (SABPF_MAX_DEPTH - 1);
	last = i + 1 == depth;
	node = sabpf_find_component(c->key, run->lookup_parent, (const char *)c->stack->name[index],
				    c->stack->len[index]);
	if (last) {
		sabpf_match_leaf(m, node, run->children);
		return 1;
	}

	/* A miss above the last component ends the lookup: nothing below has rules. */
	if (!node) {
		sabpf_keep_dir(run, m, 0);
		return 1;
	}

	/* Subtree rules of "dir" cover everything below, the final node included. */
	for (a = 0; a < SABPF_ACCESSES; a++)
		sabpf_or(&m->acc[a], &node->rules[SABPF_SCOPE_SUBTREE][a]);

	/* Descend: this node becomes the directory of the next component. */
	for (a = 0; a < SABPF_ACCESSES; a++)
		run->children[a] = node->rules[SABPF_SCOPE_CHILDREN][a];
	run->lookup_parent = node->id;
	if (i + 2 == depth)
		sabpf_keep_dir(run, m, node->id);
	return 0;
}
SABPF_STEP_GUARD(sabpf_lookup_step)

/*
 * ORs into run->match[match] the masks that the trie rooted at node id root
 * holds for the path in stack. The root's own rules are at {slot, root, ""}.
 */
static __noinline int sabpf_lookup_path(struct sabpf_run *run, __u32 slot, __u32 root,
					__u32 stack, __u32 match)
{
	struct sabpf_loop_ctx ctx = {.run = run};
	__u32 index = sabpf_bit(stack), key_index;
	struct sabpf_key_scratch *root_key;
	struct sabpf_node *node;
	struct sabpf_walk *w;
	struct sabpf_match *m;
	int a;

	if (!run)
		return 0;
	w = &run->walk[sabpf_bit(stack)];
	m = &run->match[sabpf_bit(match)];
	if (!root || w->truncated)
		return 0;
	run->lookup_parent = root;
	__builtin_memset(run->children, 0, sizeof(run->children));

	/* The root directory: its subtree rules cover everything, its children rules the top entries. */
	key_index = SABPF_KEY_ROOT;
	root_key = bpf_map_lookup_elem(&sabpf_key_scratches, &key_index);
	if (!root_key)
		return 0;
	root_key->key.slot = slot;
	root_key->key.parent = root;
	node = bpf_map_lookup_elem(&sabpf_nodes, &root_key->key);
	if (node) {
		for (a = 0; a < SABPF_ACCESSES; a++) {
			sabpf_or(&m->acc[a], &node->rules[SABPF_SCOPE_SUBTREE][a]);
			run->children[a] = node->rules[SABPF_SCOPE_CHILDREN][a];
		}
	}

	/* The path "/" itself. */
	if (w->depth == 0) {
		if (node) {
			for (a = 0; a < SABPF_ACCESSES; a++)
				sabpf_or(&m->acc[a], &node->rules[SABPF_SCOPE_EXACT][a]);
			m->exact = 1;
			m->source_id = node->source_id;
		}
		return 0;
	}

	/* A path of one component lies in the root directory. */
	if (w->depth == 1)
		sabpf_keep_dir(run, m, root);

	key_index = SABPF_KEY_COMPONENT;
	ctx.key = bpf_map_lookup_elem(&sabpf_key_scratches, &key_index);
	ctx.stack = bpf_map_lookup_elem(&sabpf_path_stacks, &index);
	if (!ctx.key || !ctx.stack)
		return 0;
	ctx.key->key.slot = slot;
	ctx.walk = w;
	ctx.match = m;
	sabpf_loop(w->depth, SABPF_WALK_MAX_DEPTH, sabpf_lookup_step, &ctx);
	return 0;
}

/* Appends "/" and one component, root first, to the per-CPU text scratch. */
SABPF_STEP sabpf_spell_step(__u32 i, void *data)
{
	struct sabpf_loop_ctx *c = data;
	struct sabpf_run *run = c->run;
	const char *name;
	__u32 off;
	long n;

	off = run->spell_off;
	if (off >= SABPF_PATH_MAX - 1)
		return 1;
	name = (const char *)c->stack->name[(c->walk->depth - 1 - i) & (SABPF_MAX_DEPTH - 1)];

	sabpf_forget_range(off);
	c->text->text[off & (SABPF_PATH_MAX - 1)] = '/';
	n = bpf_probe_read_kernel_str(&c->text->text[(off + 1) & (SABPF_PATH_MAX - 1)],
				      SABPF_NAME_MAX, name);
	if (n < 1)
		return 1;
	run->spell_off = off + n; /* n counts the NUL: "/" plus the name */
	return 0;
}
SABPF_STEP_GUARD(sabpf_spell_step)

/*
 * Spells the walk in stack root first ("/a/b/c", "/" for the root) into the
 * per-CPU text scratch, NUL terminated, and returns the length (at most
 * PATH_MAX - 1). A walk that is not ready or was truncated spells "".
 */
static __noinline __u32 sabpf_spell_text(struct sabpf_run *run, __u32 stack)
{
	struct sabpf_loop_ctx ctx = {.run = run};
	__u32 zero = 0, index = sabpf_bit(stack), off;
	struct sabpf_walk *w;

	ctx.text = bpf_map_lookup_elem(&sabpf_path_text_scratch, &zero);
	if (!ctx.text)
		return 0;
	ctx.text->text[0] = 0;
	if (!run)
		return 0;
	ctx.stack = bpf_map_lookup_elem(&sabpf_path_stacks, &index);
	if (!ctx.stack)
		return 0;
	w = &run->walk[sabpf_bit(stack)];
	if (w->depth == 0) {
		if (w->truncated || !w->ready)
			return 0;
		ctx.text->text[0] = '/';
		ctx.text->text[1] = 0;
		return 1;
	}
	ctx.walk = w;
	run->spell_off = 0;

	sabpf_loop(w->depth, SABPF_WALK_MAX_DEPTH, sabpf_spell_step, &ctx);

	/* Cut at PATH_MAX - 1 so that a copy of PATH_MAX bytes always carries a NUL. */
	off = run->spell_off;
	if (off > SABPF_PATH_MAX - 1)
		off = SABPF_PATH_MAX - 1;
	sabpf_forget_range(off);
	ctx.text->text[off & (SABPF_PATH_MAX - 1)] = 0;
	return off;
}

/*
 * How the programs call the path functions. The legacy object calls each
 * through a global function with scalar arguments (its own run state comes
 * from the map). The verifier checks a global function once, on its own,
 * and a static one again for every distinct state of each caller. With the
 * loops of loop.h, static calls took path_link past the 5.10 verifier's
 * limit of 1M instructions. The other objects call the static
 * functions directly, which keeps their BTF pointers: the loaders of
 * bpf_loop's kernels check callbacks once anyway.
 */
#ifdef SABPF_LEGACY
/*
 * The address in a kernel pointer as a plain number. A global function
 * takes only scalars, and the verifier keeps a BTF pointer's type through
 * any move or cast, so the value is copied with a probe read.
 */
static __always_inline __u64 sabpf_scalar(const void *p)
{
	__u64 value = 0;

	bpf_probe_read_kernel(&value, sizeof(value), &p);
	return value;
}

__noinline int sabpf_walk_unit(__u32 stack, __u64 dentry, __u64 mnt)
{
	return sabpf_walk(sabpf_run_get(), stack, (struct dentry *)dentry, (struct vfsmount *)mnt);
}

__noinline int sabpf_walk_exe_unit(void)
{
	return sabpf_walk_exe(sabpf_run_get());
}

__noinline int sabpf_lookup_unit(__u32 slot, __u32 root, __u32 stack, __u32 match)
{
	return sabpf_lookup_path(sabpf_run_get(), slot, root, stack, match);
}

__noinline __u32 sabpf_spell_unit(__u32 stack)
{
	return sabpf_spell_text(sabpf_run_get(), stack);
}

#define SABPF_WALK(run, stack, dentry, mnt)                                    \
	sabpf_walk_unit(stack, sabpf_scalar(dentry), sabpf_scalar(mnt))
#define SABPF_WALK_EXE(run) sabpf_walk_exe_unit()
#define SABPF_LOOKUP(run, slot, root, stack, match) sabpf_lookup_unit(slot, root, stack, match)
#define SABPF_SPELL(run, stack) sabpf_spell_unit(stack)
#else
#define SABPF_WALK(run, stack, dentry, mnt) sabpf_walk(run, stack, dentry, mnt)
#define SABPF_WALK_EXE(run) sabpf_walk_exe(run)
#define SABPF_LOOKUP(run, slot, root, stack, match) sabpf_lookup_path(run, slot, root, stack, match)
#define SABPF_SPELL(run, stack) sabpf_spell_text(run, stack)
#endif

/*
 * Spells the walk in stack into dst (PATH_MAX bytes, such as an event's
 * path), NUL terminated, and returns the length.
 */
static __always_inline __u32 sabpf_spell_path(struct sabpf_run *run, __u32 stack, char *dst)
{
	struct sabpf_path_text *text;
	__u32 zero = 0, len;

	len = SABPF_SPELL(run, stack);
	text = bpf_map_lookup_elem(&sabpf_path_text_scratch, &zero);
	if (!text) {
		dst[0] = 0;
		return 0;
	}
	bpf_probe_read_kernel(dst, SABPF_PATH_MAX, text->text);
	return len;
}

#endif /* SABPF_PATH_H */
