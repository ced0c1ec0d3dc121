/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Definitions every sabpf program needs: kernel types (CO-RE, vmlinux.h),
 * libbpf helpers, the contract in sabpf.h, and what "allow" and "deny" mean
 * for the attach mode this object is built for.
 */
#ifndef SABPF_COMMON_H
#define SABPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sabpf.h"

/*
 * Attach modes. The default object attaches each program to a container's
 * cgroup (BPF_LSM_CGROUP, kernel 6.0+): the kernel runs it only for tasks and
 * sockets of that cgroup, and turns a return of 0 into EPERM. Built with
 * -DSABPF_GLOBAL, the same programs attach to the hook for every task of the
 * node (BPF_LSM_MAC) and must return 0 or a negative errno themselves.
 * -DSABPF_LEGACY adds to that the changes for kernels without bpf_loop
 * (loop.h).
 */
#if defined(SABPF_LEGACY) && !defined(SABPF_GLOBAL)
#error "SABPF_LEGACY needs SABPF_GLOBAL: kernels before 5.17 have no BPF_LSM_CGROUP either"
#endif
#ifdef SABPF_GLOBAL
#define SABPF_LSM(hook) SEC("lsm/" #hook)
#define SABPF_ALLOW 0
#define SABPF_DENY (-1) /* -EPERM */
#else
#define SABPF_LSM(hook) SEC("lsm_cgroup/" #hook)
#define SABPF_ALLOW 1
#define SABPF_DENY 0
#endif

/*
 * Node-wide programs of every build (path_write.bpf.c). The kernel runs at
 * most 10 distinct lsm_cgroup hooks on a node (CGROUP_LSM_NUM in 6.1), and
 * the cgroup build uses 8. So the hooks that change names and contents
 * without an open attach for all tasks, as in the global builds. They find
 * the container by cgroup id and return 0 or -EPERM in every build.
 */
#define SABPF_NODE_LSM(hook) SEC("lsm/" #hook)
#define SABPF_NODE_ALLOW 0
#define sabpf_node_verdict(verdict) ((verdict) == SABPF_ALLOW ? 0 : -1)

/*
 * On verdict arrays copied on the hot path: struct sabpf_verdict is three
 * __u32, so without it Clang copies 24 bytes in six 4-byte moves, not three
 * 8-byte ones.
 */
#define SABPF_ALIGNED8 __attribute__((aligned(8)))

/* Builds of sabpf.bpf.c, as the value of the sabpf_variant variable. */
enum sabpf_variant {
	SABPF_VARIANT_CGROUP = 1, /* sabpf.bpf.o */
	SABPF_VARIANT_GLOBAL = 2, /* sabpf-global.bpf.o */
	SABPF_VARIANT_LEGACY = 3, /* sabpf-legacy.bpf.o */
};

/* UAPI macros that vmlinux.h does not carry (it only has types and enums). */
#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define S_IFMT 00170000
#define S_IFDIR 0040000
#define S_IFLNK 0120000
#define RENAME_EXCHANGE (1 << 1)
#define O_TRUNC 01000
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17

/*
 * container_of whose member offset is relocated against the running kernel,
 * so a struct mount that changed layout still resolves.
 */
#define sabpf_container_of(ptr, type, member)                                  \
	((type *)((void *)(ptr) - bpf_core_field_offset(type, member)))

#endif /* SABPF_COMMON_H */
