/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Paths as the container sees them: a dentry walk from a file up to the
 * acting task's root directory, and the lookup of the collected components
 * in a path trie (map sabpf_nodes).
 *
 * Both loops use bpf_loop (kernel 5.17+): a path may have SABPF_MAX_DEPTH
 * components, too many for the verifier to unroll. Loop state is in the
 * per-CPU sabpf_runs entry (see struct sabpf_run for why not the stack).
 */
#ifndef SABPF_PATH_H
#define SABPF_PATH_H

#include "maps.h"

/*
 * Hides var's range from the compiler, so a mask that only the
 * verifier needs (x & (SIZE - 1) after a check that x < SIZE) is kept.
 */
#define sabpf_forget_range(var) asm volatile("" : "+r"(var))

/* Mount crossings allowed on top of the components: one per mount level. */
#define SABPF_MAX_MOUNT_CROSSINGS 64

static __always_inline struct sabpf_run *sabpf_run_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sabpf_runs, &zero);
}

/* Forgets the walks and matches of the previous run on this CPU. */
static __always_inline void sabpf_run_reset(struct sabpf_run *run)
{
	__builtin_memset(run->walk, 0, sizeof(run->walk));
	__builtin_memset(run->match, 0, sizeof(run->match));
}

/* One step up: cross a mount, stop at the task's root, or record a name. */
static long sabpf_walk_step(__u32 i, void *data)
{
	struct sabpf_run *run = sabpf_run_get();
	struct dentry *dentry, *parent, *mnt_root;
	struct sabpf_path_stack *stack;
	struct vfsmount *mnt;
	struct sabpf_walk *w;
	struct mount *m, *up;
	__u32 key;

	if (!run)
		return 1;
	key = run->walk_stack & 1;
	w = &run->walk[key];
	dentry = (struct dentry *)run->dentry;
	mnt = (struct vfsmount *)run->mnt;

	/* The task's root ("/" inside the container) ends the path. */
	if (run->dentry == run->root_dentry && run->mnt == run->root_mnt) {
		w->done = 1;
		return 1;
	}

	/* At the root of a mount, continue from its mount point in the parent. */
	mnt_root = BPF_CORE_READ(mnt, mnt_root);
	parent = BPF_CORE_READ(dentry, d_parent);
	if (dentry == mnt_root || dentry == parent) {
		m = sabpf_container_of(mnt, struct mount, mnt);
		up = BPF_CORE_READ(m, mnt_parent);
		if (up == m || !up) {
			/* Top of the mount tree: the file is outside the task's root. */
			w->done = 1;
			return 1;
		}
		run->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		run->mnt = (__u64)((void *)up + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}

	/* A component: keep its name, unless the path is deeper than the stack. */
	if (w->depth >= SABPF_MAX_DEPTH) {
		w->truncated = 1;
		w->done = 1;
		return 1;
	}
	stack = bpf_map_lookup_elem(&sabpf_path_stacks, &key);
	if (!stack)
		return 1;
	stack->name[w->depth & (SABPF_MAX_DEPTH - 1)] = (__u64)BPF_CORE_READ(dentry, d_name.name);
	w->depth++;
	run->dentry = (__u64)parent;
	return 0;
}

/*
 * Collects the components of path (a kernel struct path) into stack (enum
 * sabpf_stack_index), up to the root of the current task.
 */
static __noinline int sabpf_walk_path(const struct path *path, __u32 stack)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sabpf_run *run = sabpf_run_get();
	struct sabpf_walk *w;

	if (!run)
		return 0;
	w = &run->walk[stack & 1];
	w->depth = 0;
	w->truncated = 0;
	w->done = 0;
	w->ready = 1;
	run->walk_stack = stack;
	run->dentry = (__u64)BPF_CORE_READ(path, dentry);
	run->mnt = (__u64)BPF_CORE_READ(path, mnt);
	run->root_dentry = (__u64)BPF_CORE_READ(task, fs, root.dentry);
	run->root_mnt = (__u64)BPF_CORE_READ(task, fs, root.mnt);
	if (!run->dentry || !run->mnt)
		return 0;

	bpf_loop(SABPF_MAX_DEPTH + SABPF_MAX_MOUNT_CROSSINGS + 1, sabpf_walk_step, 0, 0);

	/* The loop ran out before reaching a root: as unusable as a deep path. */
	if (!w->done)
		w->truncated = 1;
	return 0;
}

/* Walks the executable of the acting task (none for a kernel thread, which has no mm). */
static __noinline int sabpf_walk_exe(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct sabpf_run *run = sabpf_run_get();

	if (!run)
		return 0;
	if (!exe) {
		run->walk[SABPF_STACK_EXE].depth = 0;
		run->walk[SABPF_STACK_EXE].truncated = 0;
		run->walk[SABPF_STACK_EXE].ready = 1;
		return 0;
	}
	return sabpf_walk_path(&exe->f_path, SABPF_STACK_EXE);
}

static __always_inline void sabpf_or(struct sabpf_verdict *acc, const struct sabpf_verdict *v)
{
	acc->deny |= v->deny;
	acc->audit |= v->audit;
	acc->allow |= v->allow;
}

/* Looks up {slot, parent, name} with name read from kernel memory. */
static __always_inline struct sabpf_node *sabpf_find_node(__u32 slot, __u32 parent,
							   const char *name)
{
	struct sabpf_node_key *key;
	__u32 zero = 0;

	key = bpf_map_lookup_elem(&sabpf_node_key_scratch, &zero);
	if (!key)
		return 0;
	__builtin_memset(key->name, 0, sizeof(key->name));
	key->slot = slot;
	key->parent = parent;
	if (name && bpf_probe_read_kernel_str(key->name, sizeof(key->name), name) < 0)
		return 0;
	return bpf_map_lookup_elem(&sabpf_nodes, key);
}

/* One component, root first: gather its masks or stop at the first miss. */
static long sabpf_lookup_step(__u32 i, void *data)
{
	struct sabpf_run *run = sabpf_run_get();
	struct sabpf_path_stack *stack;
	struct sabpf_match *m;
	struct sabpf_node *node;
	struct sabpf_walk *w;
	const char *name;
	__u32 key, last;
	int a;

	if (!run)
		return 1;
	key = run->lookup_stack & 1;
	w = &run->walk[key];
	m = &run->match[run->lookup_match & 1];
	stack = bpf_map_lookup_elem(&sabpf_path_stacks, &key);
	if (!stack)
		return 1;
	last = i + 1 == w->depth;
	name = (const char *)stack->name[(w->depth - 1 - i) & (SABPF_MAX_DEPTH - 1)];
	node = sabpf_find_node(run->lookup_slot, run->lookup_parent, name);

	/* A miss ends the walk, but "dir/*" still covers a last component with no node. */
	if (!node) {
		if (last)
			for (a = 0; a < SABPF_ACCESSES; a++)
				sabpf_or(&m->acc[a], &run->children[a]);
		return 1;
	}

	/* "dir/**" rules cover everything below, the final node included. */
	for (a = 0; a < SABPF_ACCESSES; a++)
		sabpf_or(&m->acc[a], &node->rules[SABPF_SCOPE_SUBTREE][a]);

	/* The final node: its exact rules and its directory's children rules. */
	if (last) {
		for (a = 0; a < SABPF_ACCESSES; a++) {
			sabpf_or(&m->acc[a], &node->rules[SABPF_SCOPE_EXACT][a]);
			sabpf_or(&m->acc[a], &run->children[a]);
		}
		m->exact = 1;
		m->source_id = node->source_id;
		return 1;
	}

	/* Descend: this node becomes the directory of the next component. */
	for (a = 0; a < SABPF_ACCESSES; a++)
		run->children[a] = node->rules[SABPF_SCOPE_CHILDREN][a];
	run->lookup_parent = node->id;
	return 0;
}

/*
 * ORs into run->match[match] the masks that the trie rooted at node id root
 * holds for the path in stack. The root's own rules are at {slot, root, ""}.
 */
static __noinline int sabpf_lookup_path(__u32 slot, __u32 root, __u32 stack, __u32 match)
{
	struct sabpf_run *run = sabpf_run_get();
	struct sabpf_node *node;
	struct sabpf_walk *w;
	struct sabpf_match *m;
	int a;

	if (!run)
		return 0;
	w = &run->walk[stack & 1];
	m = &run->match[match & 1];
	if (!root || w->truncated)
		return 0;
	run->lookup_stack = stack;
	run->lookup_match = match;
	run->lookup_slot = slot;
	run->lookup_parent = root;
	__builtin_memset(run->children, 0, sizeof(run->children));

	/* The root directory: "/**" covers everything, "/*" the top entries. */
	node = sabpf_find_node(slot, root, 0);
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

	bpf_loop(w->depth, sabpf_lookup_step, 0, 0);
	return 0;
}

/* Appends "/" and one component, root first, to the per-CPU text scratch. */
static long sabpf_spell_step(__u32 i, void *data)
{
	struct sabpf_run *run = sabpf_run_get();
	struct sabpf_path_stack *stack;
	struct sabpf_path_text *out;
	struct sabpf_walk *w;
	const char *name;
	__u32 key, zero = 0, off;
	long n;

	if (!run)
		return 1;
	off = run->spell_off;
	if (off >= SABPF_PATH_MAX - 1)
		return 1;
	key = run->spell_stack & 1;
	w = &run->walk[key];
	stack = bpf_map_lookup_elem(&sabpf_path_stacks, &key);
	out = bpf_map_lookup_elem(&sabpf_path_text_scratch, &zero);
	if (!stack || !out)
		return 1;
	name = (const char *)stack->name[(w->depth - 1 - i) & (SABPF_MAX_DEPTH - 1)];

	sabpf_forget_range(off);
	out->text[off & (SABPF_PATH_MAX - 1)] = '/';
	n = bpf_probe_read_kernel_str(&out->text[(off + 1) & (SABPF_PATH_MAX - 1)],
				      SABPF_NAME_MAX, name);
	if (n < 1)
		return 1;
	run->spell_off = off + n; /* n counts the NUL: "/" plus the name */
	return 0;
}

/*
 * Spells the walk in stack root first ("/a/b/c", "/" for the root) into dst
 * (PATH_MAX bytes), NUL terminated, and returns the length (at most PATH_MAX - 1).
 */
static __noinline __u32 sabpf_spell_path(__u32 stack, char *dst)
{
	struct sabpf_run *run = sabpf_run_get();
	struct sabpf_path_text *out;
	struct sabpf_walk *w;
	__u32 zero = 0, off;

	dst[0] = 0;
	out = bpf_map_lookup_elem(&sabpf_path_text_scratch, &zero);
	if (!run || !out)
		return 0;
	w = &run->walk[stack & 1];
	if (w->depth == 0) {
		if (w->truncated || !w->ready)
			return 0;
		dst[0] = '/';
		dst[1] = 0;
		return 1;
	}
	run->spell_stack = stack;
	run->spell_off = 0;

	bpf_loop(w->depth, sabpf_spell_step, 0, 0);

	/* Cut at PATH_MAX - 1 so the copy below always carries a NUL. */
	off = run->spell_off;
	if (off > SABPF_PATH_MAX - 1)
		off = SABPF_PATH_MAX - 1;
	sabpf_forget_range(off);
	out->text[off & (SABPF_PATH_MAX - 1)] = 0;
	bpf_probe_read_kernel(dst, SABPF_PATH_MAX, out->text);
	return off;
}

#endif /* SABPF_PATH_H */
