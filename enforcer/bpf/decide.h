/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Config lookup for an operation, and the policies' decision on it. The
 * decision is the one stated in sabpf.h. compiler/decide.ts computes the same
 * thing in user space, so the two must stay in step.
 */
#ifndef SABPF_DECIDE_H
#define SABPF_DECIDE_H

#include "maps.h"

static __always_inline void sabpf_count(__u32 counter)
{
	__u64 *n = bpf_map_lookup_elem(&sabpf_counters, &counter);

	/* A per-CPU slot sees one run at a time, so no atomic is needed. */
	if (n)
		*n += 1;
}

#ifdef SABPF_LEGACY
/*
 * struct cgroup before and after 6.0, for CO-RE: ids of the ancestors by
 * level (5.x), or pointers to them (6.0+). Index 0 is the root, index
 * level is the cgroup itself.
 */
struct cgroup___ancestor_ids {
	int level;
	__u64 ancestor_ids[];
} __attribute__((preserve_access_index));

struct cgroup___ancestors {
	int level;
	struct cgroup *ancestors[];
} __attribute__((preserve_access_index));

/* Returns the id of the ancestor of cg at level (0 is the root), or 0 when unreadable. */
static __always_inline __u64 sabpf_ancestor_id(struct cgroup *cg, int level)
{
	struct cgroup *ancestor = 0;
	__u64 id = 0;
	__u32 off;

	if (bpf_core_field_exists(struct cgroup___ancestor_ids, ancestor_ids)) {
		off = bpf_core_field_offset(struct cgroup___ancestor_ids, ancestor_ids);
		bpf_probe_read_kernel(&id, sizeof(id), (void *)cg + off + level * sizeof(__u64));
		return id;
	}
	off = bpf_core_field_offset(struct cgroup___ancestors, ancestors);
	bpf_probe_read_kernel(&ancestor, sizeof(ancestor), (void *)cg + off + level * sizeof(void *));
	return ancestor ? BPF_CORE_READ(ancestor, kn, id) : 0;
}
#endif

/*
 * Reads the policy epoch into *epoch, or returns -1 when the read caught the
 * enforcer's write half done. The enforcer writes the counter into both
 * 32-bit halves, so a value copied byte by byte shows unequal halves until
 * the copy ends (nextEpoch in enforcer/kernel/programs.ts).
 */
static __always_inline int sabpf_epoch_read(const __u64 *e, __u64 *epoch)
{
	__u64 v = *(volatile const __u64 *)e;

	*epoch = v;
	return (__u32)v == (__u32)(v >> 32) ? 0 : -1;
}

/*
 * The run's memo of the config searched for from cgroup cgid, or 0 when it
 * has none (or the epoch could not be read whole). *epoch receives the policy epoch, read before anything else,
 * so that a search made after this call is ended by the next bump.
 * NOTE: that order is the compiler's and x86's (loads are not reordered
 * with other loads). A weakly ordered CPU would need a read barrier here.
 */
static __always_inline struct sabpf_config_memo *sabpf_memo_find(__u32 index, __u64 cgid,
								  __u64 *epoch, int *hit)
{
	struct sabpf_config_memo *m;
	struct sabpf_run *run;
	__u32 zero = 0;
	__u64 *e;

	*hit = 0;
	e = bpf_map_lookup_elem(&sabpf_epoch, &zero);
	run = bpf_map_lookup_elem(&sabpf_runs, &zero);
	if (!e || !run || sabpf_epoch_read(e, epoch) < 0)
		return 0;
	asm volatile("" ::: "memory");
	m = &run->memo[index & 1];
	*hit = m->valid && m->cgid == cgid && m->epoch == *epoch;
	return m;
}

/* Keeps the outcome of a search made after sabpf_memo_find read epoch. */
static __always_inline void sabpf_memo_keep(struct sabpf_config_memo *m, __u64 cgid, __u64 epoch,
					    const struct sabpf_config *cfg)
{
	m->valid = 0;
	m->cgid = cgid;
	m->epoch = epoch;
	m->found = cfg != 0;
	if (cfg)
		__builtin_memcpy(&m->cfg, cfg, sizeof(m->cfg));
	m->valid = 1;
}

/*
 * The config of the current task's cgroup, or of its nearest ancestor that
 * has one (a container's processes may sit in child cgroups of the cgroup
 * the enforcer configured), without the memo.
 */
static __always_inline struct sabpf_config *sabpf_config_search(__u64 cgid)
{
	struct sabpf_config *cfg;
	__u64 id;
	int level;
#ifdef SABPF_LEGACY
	struct task_struct *task;
	struct cgroup *cg;
	int own;
#endif

	cfg = bpf_map_lookup_elem(&sabpf_configs, &cgid);
	if (cfg)
		return cfg;

	/*
	 * Deepest ancestor first, counted from the root, so that a task nested
	 * any number of levels below its container's cgroup still finds it.
	 * Counting up from the task instead would let a container that may
	 * create cgroups nest its tasks out of reach.
	 */
#ifdef SABPF_LEGACY
	/*
	 * The 5.10 verifier rejects bpf_get_current_ancestor_cgroup_id in LSM
	 * programs ("unknown func"), so read the ancestors of the task's
	 * cgroup2 cgroup with probe reads instead.
	 */
	task = (struct task_struct *)bpf_get_current_task();
	cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	if (!cg)
		return 0;
	own = BPF_CORE_READ(cg, level);
#pragma unroll
	for (level = SABPF_MAX_CGROUP_LEVELS - 1; level >= 0; level--) {
		if (level >= own)
			continue;
		id = sabpf_ancestor_id(cg, level);
		if (!id)
			continue;
		cfg = bpf_map_lookup_elem(&sabpf_configs, &id);
		if (cfg)
			return cfg;
	}
#else
	/* Levels below the task's own return 0. */
	for (level = SABPF_MAX_CGROUP_LEVELS - 1; level >= 0; level--) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id || id == cgid)
			continue;
		cfg = bpf_map_lookup_elem(&sabpf_configs, &id);
		if (cfg)
			return cfg;
	}
#endif
	return 0;
}

/*
 * The config that applies to the current task (sabpf_config_search), from
 * this CPU's memo when the last search started from the same cgroup under
 * the same epoch. *cgid receives the task's own cgroup id.
 */
static __always_inline struct sabpf_config *sabpf_config_current(__u64 *cgid)
{
	struct sabpf_config_memo *m;
	struct sabpf_config *cfg;
	__u64 epoch = 0;
	int hit;

	*cgid = bpf_get_current_cgroup_id();
	m = sabpf_memo_find(SABPF_MEMO_TASK, *cgid, &epoch, &hit);
	if (m && hit)
		return m->found ? &m->cfg : 0;
	cfg = sabpf_config_search(*cgid);
	if (m)
		sabpf_memo_keep(m, *cgid, epoch, cfg);
	return cfg;
}

#ifndef SABPF_GLOBAL
/*
 * The config of a socket's cgroup or its nearest configured ancestor. In
 * cgroup mode the kernel runs a socket hook's programs by the cgroup the
 * socket was created in, not by the acting task's, so the config must come
 * from the same place. Needs the 5.15+ layout of sock_cgroup_data, which
 * every kernel with BPF_LSM_CGROUP has.
 */
static __always_inline struct sabpf_config *sabpf_config_socket_search(struct cgroup *cg)
{
	struct sabpf_config *cfg;
	struct cgroup_subsys_state *css;
	__u64 id;
	int i;

	/* Direct loads of BTF pointers: the verifier makes each fault-safe, with no helper call. */
	for (i = 0; i < SABPF_MAX_CGROUP_LEVELS && cg; i++) {
		id = cg->kn->id;
		cfg = bpf_map_lookup_elem(&sabpf_configs, &id);
		if (cfg)
			return cfg;
		css = cg->self.parent;
		cg = css ? css->cgroup : 0;
	}
	return 0;
}

/* sabpf_config_socket_search through this CPU's memo, as sabpf_config_current. */
static __always_inline struct sabpf_config *sabpf_config_socket(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct sabpf_config_memo *m;
	struct sabpf_config *cfg;
	struct cgroup *cg;
	__u64 cgid, epoch = 0;
	int hit;

	/* Never NULL here (see sabpf_check_addr), but the 6.12 verifier types it so. */
	if (!sk)
		return 0;
	cg = sk->sk_cgrp_data.cgroup;
	if (!cg)
		return 0;
	cgid = cg->kn->id;
	m = sabpf_memo_find(SABPF_MEMO_SOCKET, cgid, &epoch, &hit);
	if (m && hit)
		return m->found ? &m->cfg : 0;
	cfg = sabpf_config_socket_search(cg);
	if (m)
		sabpf_memo_keep(m, cgid, epoch, cfg);
	return cfg;
}
#endif

/*
 * What a program returns when it finds no config. Attached to a cgroup it
 * fails closed: the enforcer writes the config before attaching, so a miss
 * means the map was tampered with or cleared. Globally attached, no config
 * means a task the enforcer does not confine.
 */
static __always_inline int sabpf_no_config(void)
{
#ifdef SABPF_GLOBAL
	return SABPF_ALLOW;
#else
	sabpf_count(SABPF_COUNTER_NO_CONFIG);
	return SABPF_DENY;
#endif
}

/* Strength of a decision against an operation: larger is stronger. */
enum sabpf_outcome_kind {
	SABPF_OUTCOME_ALLOW = 0,    /* allowed, nothing to record */
	SABPF_OUTCOME_AUDIT = 1,    /* allowed, recorded for an audit action */
	SABPF_OUTCOME_DENY = 2,	    /* denied by a policy in audit mode: allowed */
	SABPF_OUTCOME_ENFORCED = 3, /* denied: EPERM */
};

struct sabpf_outcome {
	__u32 kind;   /* enum sabpf_outcome_kind */
	__u32 policy; /* bit index of the deciding policy */
	__u32 flags;  /* SABPF_EVENT_* */
	__u32 access; /* enum sabpf_access that decided */
};

/*
 * Index of the lowest set bit of a non-zero mask: the number of bits below
 * it, counted without branches. Branches here would multiply the paths the
 * verifier walks for every decision of a program.
 */
static __always_inline __u32 sabpf_lowest_bit(__u32 mask)
{
	__u32 x = (mask & -mask) - 1;

	x = x - ((x >> 1) & 0x55555555);
	x = (x & 0x33333333) + ((x >> 2) & 0x33333333);
	x = (x + (x >> 4)) & 0x0f0f0f0f;
	return ((x * 0x01010101) >> 24) & 31;
}

/*
 * Decides one access from the OR'ed rule masks v and the section postures:
 *   pol_deny  = D | (PD & ~(A|L))
 *   pol_audit = (A & ~D) | (PA & ~(D|A|L))
 */
static __always_inline struct sabpf_outcome sabpf_decide(const struct sabpf_config *cfg,
							  __u32 section,
							  const struct sabpf_verdict *v,
							  __u32 access)
{
	struct sabpf_outcome o = {.access = access};
	__u32 pd = 0, pa = 0, pol_deny, pol_audit, mask, bit;

	if (section < SABPF_SECTIONS) {
		pd = cfg->posture_deny[section];
		pa = cfg->posture_audit[section];
	}
	pol_deny = v->deny | (pd & ~(v->audit | v->allow));
	pol_audit = (v->audit & ~v->deny) | (pa & ~(v->deny | v->audit | v->allow));

	/* Deny wins, and an enforcing policy's denial is the one that decides. */
	if (pol_deny) {
		mask = pol_deny & cfg->enforce;
		o.kind = mask ? SABPF_OUTCOME_ENFORCED : SABPF_OUTCOME_DENY;
		o.flags = mask ? SABPF_EVENT_ENFORCED : 0;
		if (!mask)
			mask = pol_deny;
		bit = sabpf_lowest_bit(mask);
		o.policy = bit;
		if (!(v->deny & (1u << bit)))
			o.flags |= SABPF_EVENT_POSTURE;
		return o;
	}

	if (pol_audit) {
		bit = sabpf_lowest_bit(pol_audit);
		o.kind = SABPF_OUTCOME_AUDIT;
		o.policy = bit;
		o.flags = SABPF_EVENT_AUDIT;
		if (!(v->audit & ~v->deny & (1u << bit)))
			o.flags |= SABPF_EVENT_POSTURE;
	}
	return o;
}

/* Returns the stronger of two outcomes (the first one on a tie). */
static __always_inline struct sabpf_outcome sabpf_stronger(struct sabpf_outcome a,
							    struct sabpf_outcome b)
{
	return b.kind > a.kind ? b : a;
}

/* Counts the outcome and turns it into the program's return value. */
static __always_inline int sabpf_verdict_of(const struct sabpf_outcome *o)
{
	if (o->kind >= SABPF_OUTCOME_DENY)
		sabpf_count(SABPF_COUNTER_DENIED);
	else if (o->kind == SABPF_OUTCOME_AUDIT)
		sabpf_count(SABPF_COUNTER_AUDITED);
	return o->kind == SABPF_OUTCOME_ENFORCED ? SABPF_DENY : SABPF_ALLOW;
}

#endif /* SABPF_DECIDE_H */
