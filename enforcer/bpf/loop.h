/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Kernel differences between the objects: how a path loop runs, and how
 * the current task is reached.
 *
 * sabpf.bpf.o and sabpf-global.bpf.o run each loop step as a bpf_loop
 * callback (5.17+), verified once whatever the count, so a path may have
 * SABPF_MAX_DEPTH components. sabpf-legacy.bpf.o (-DSABPF_LEGACY, global
 * attach, kernels 5.8 to 5.16) has no bpf_loop: it runs the same steps in a
 * bounded loop that the verifier walks one iteration at a time, which caps
 * paths at SABPF_LEGACY_MAX_DEPTH components. A deeper path is truncated,
 * decided by posture and counted, as in the other objects.
 */
#ifndef SABPF_LOOP_H
#define SABPF_LOOP_H

#include "maps.h"

/*
 * The walk's budget: components plus mount crossings, counted together in
 * SABPF_WALK_STEPS, so a path with fewer components may cross more mounts.
 */
#ifdef SABPF_LEGACY
#define SABPF_LEGACY_MAX_DEPTH 64
#define SABPF_WALK_MAX_DEPTH SABPF_LEGACY_MAX_DEPTH
#define SABPF_MAX_MOUNT_CROSSINGS 16
#else
#define SABPF_WALK_MAX_DEPTH SABPF_MAX_DEPTH
#define SABPF_MAX_MOUNT_CROSSINGS 64
#endif

/* Iterations of the walk up: every component and crossing, and the root. */
#define SABPF_WALK_STEPS (SABPF_WALK_MAX_DEPTH + SABPF_MAX_MOUNT_CROSSINGS + 1)

#ifdef SABPF_LEGACY
/*
 * Each step runs through a guard, a BPF-to-BPF call from a loop of at most
 * max iterations. The guard marks the loop done (run->loop_done) when the
 * step returns non-zero or i reaches n (run->loop_n), which is how bpf_loop
 * stops, and the loop then breaks. Both values live in the run map,
 * unknown to the verifier, so an iteration leaves one state behind.
 *
 * The loops run inside global functions (SABPF_WALK in path.h), which the
 * verifier checks once each. As static functions, checked again for every
 * state of every caller, they took path_link past the verifier's limit of
 * 1M instructions with 16-component paths.
 *
 * With the step a call, clang closes the loop with a jump. The verifier
 * rejects a loop closed by falling through into its head ("back-edge from
 * insn"), which clang produced with the step inlined.
 */
#define SABPF_STEP static __always_inline long
#define SABPF_STEP_GUARD(step)                                                 \
	static __noinline long step##_guarded(__u32 i, struct sabpf_loop_ctx *c) \
	{                                                                      \
		struct sabpf_run *run = c->run;                                \
									       \
		if (run->loop_done)                                            \
			return 0;                                              \
		if (i >= run->loop_n || step(i, c))                            \
			run->loop_done = 1;                                    \
		return 0;                                                      \
	}
#define sabpf_loop(n, max, step, ctx)                                          \
	do {                                                                   \
		__u32 __i;                                                     \
									       \
		(ctx)->run->loop_n = (n);                                      \
		(ctx)->run->loop_done = 0;                                     \
		for (__i = 0; __i < (max); __i++) {                            \
			step##_guarded(__i, ctx);                              \
			if ((ctx)->run->loop_done)                             \
				break;                                         \
		}                                                              \
	} while (0)
#else
#define SABPF_STEP static long
#define SABPF_STEP_GUARD(step)
#define sabpf_loop(n, max, step, ctx) bpf_loop(n, step, ctx, 0)
#endif

/*
 * The current task. bpf_get_current_task_btf (5.11+) returns a pointer that
 * the program may read directly. The legacy object reads its fields with
 * probe reads (BPF_CORE_READ) instead.
 */
#ifdef SABPF_LEGACY
#define sabpf_current_task() ((struct task_struct *)bpf_get_current_task())
#else
#define sabpf_current_task() bpf_get_current_task_btf()
#endif

#endif /* SABPF_LOOP_H */
