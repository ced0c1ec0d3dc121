/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Filling struct sabpf_event records. Reserving and submitting stay in the
 * programs themselves: the verifier tracks a ring-buffer reservation most
 * simply when one function both takes and releases it.
 */
#ifndef SABPF_EVENT_H
#define SABPF_EVENT_H

#include "path.h"
#include "decide.h"

/*
 * Fields every hook records: who acted, when, and what was decided. The
 * hook-specific fields (path, address) are cleared for the caller to fill.
 * The executable is walked here unless this run already walked it.
 */
static __noinline int sabpf_event_fill(struct sabpf_event *e, __u32 hook,
				       const struct sabpf_outcome *o, struct sabpf_run *run)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	/* Who, where and when. */
	e->time_boot_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* What was decided. */
	e->hook = hook;
	e->access = o->access;
	e->decision = o->kind >= SABPF_OUTCOME_DENY ? SABPF_DECISION_DENY : SABPF_DECISION_ALLOW;
	e->flags = o->flags;
	e->policy = o->policy;

	/* Hook-specific fields start empty. */
	e->net_op = 0;
	e->port = 0;
	e->proto = 0;
	e->family = 0;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	e->pad = 0;
	e->path_len = 0;
	e->path[0] = 0;

	/* The acting task's executable. */
	if (run && !run->walk[SABPF_STACK_EXE].ready)
		SABPF_WALK_EXE(run);
	e->exe_len = sabpf_spell_path(run, SABPF_STACK_EXE, e->exe);
	return 0;
}

#endif /* SABPF_EVENT_H */
