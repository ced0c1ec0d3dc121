/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Every map of the sabpf programs. The maps that carry policy, counters and
 * events are pinned by name (libbpf pin_root_path, set by the loader to
 * <pin root>/maps), so an enforcer restart and the cgroup and global objects
 * share one copy. The scratch maps belong to one loaded object.
 */
#ifndef SABPF_MAPS_H
#define SABPF_MAPS_H

#include "common.h"

/*
 * Key: cgroup id (kernfs node id, the inode number of the cgroup directory).
 * Value: the container's config. Written before any program is attached to
 * the cgroup, removed after the last one is detached.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sabpf_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_configs SEC(".maps");

/*
 * Key: {slot, parent node id, one component name of up to 31 bytes, NUL
 * padded}.
 * Value: the node's id and its rule masks per scope and access.
 * The rules of a trie's root directory itself (for "/", its direct entries
 * and its subtree) live at the key {slot, root id, ""}: no real component
 * is empty, so that key never collides with a child. Not preallocated: most
 * slots hold few nodes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct sabpf_node_key);
	__type(value, struct sabpf_node);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_nodes SEC(".maps");

/* The nodes whose component name is 32 to 255 bytes long: key {slot, parent, name}. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 18);
	__type(key, struct sabpf_long_node_key);
	__type(value, struct sabpf_node);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_long_nodes SEC(".maps");

/*
 * Key: {slot, source executable id, table}.
 * Value: __u32 root node id of the trie holding that executable's fromSource
 * rules for that table.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sabpf_source_root_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_source_roots SEC(".maps");

/*
 * Key: {prefixlen, slot, op, proto, IPv6 or IPv4-mapped address}. The first
 * 64 bits (slot, op, proto, pad) are always part of the prefix.
 * Value: the net node id and which port prefix lengths it has in sabpf_ports.
 * LPM tries must not be preallocated.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct sabpf_net_key);
	__type(value, struct sabpf_net_prefix);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_net_prefixes SEC(".maps");

/*
 * Key: {slot, net node id, port prefix length, port >> (16 - length)}.
 * Value: rule masks of the port block.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct sabpf_port_key);
	__type(value, struct sabpf_verdict);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_ports SEC(".maps");

/* Key: enum sabpf_counter. Value: per-CPU count since the map was created. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SABPF_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_counters SEC(".maps");

/*
 * Records of struct sabpf_event (about 8 KiB each): 4 MiB holds about 500
 * before the consumer must catch up. The loader may resize it before load.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_events SEC(".maps");

/*
 * Key: 0. Value: the policy epoch. The enforcer bumps it before it points a
 * container's config at a slot, so state cached for an earlier program that
 * used the same slot number is never taken for the new one (dir_cache.h),
 * and again after every config write and delete, which ends every config
 * memo made before (struct sabpf_config_memo).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sabpf_epoch SEC(".maps");

/*
 * Scratch space, per CPU, for one program run. Programs run with migration
 * disabled, the hooks run in process context, and the trampoline never runs
 * a program nested in itself on one CPU. On a kernel that only preempts at
 * voluntary points (Debian's default), one run therefore owns its CPU's
 * entries from start to finish.
 * NOTE: with full preemption (preempt=full, PREEMPT_RT) a run of one hook's
 * program can be preempted by another task running a different hook's
 * program on the same CPU, which would overwrite these entries. Per-hook
 * entries or task-local storage would be needed there. The config memo in
 * struct sabpf_run would be hit worst. A copy torn between two containers'
 * configs would stay in use until the next epoch bump. A run also keeps a
 * pointer into its memo, which a preempting run may rewrite with another
 * container's config in the middle of the check. So the enforcer does not
 * start under full, lazy or real-time preemption (enforcer/core/preemption.ts).
 */

/* Indexes of sabpf_path_stacks. */
enum sabpf_stack_index {
	SABPF_STACK_TARGET = 0, /* the file or binary being checked */
	SABPF_STACK_EXE = 1,	/* the acting task's executable */
	SABPF_STACKS = 2,
};

/*
 * Key: enum sabpf_stack_index. Value: pointers to the NUL-terminated names
 * (dentry d_name.name) of a path's components and their lengths, leaf first.
 * Valid only during the program run that filled them (the dentries are
 * pinned by the open file or the path being linked).
 */
struct sabpf_path_stack {
	__u64 name[SABPF_MAX_DEPTH];
	__u16 len[SABPF_MAX_DEPTH]; /* d_name.len: lets the key skip zeroing */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SABPF_STACKS);
	__type(key, __u32);
	__type(value, struct sabpf_path_stack);
} sabpf_path_stacks SEC(".maps");

/* A walked path: its components are in sabpf_path_stacks at the same index. */
struct sabpf_walk {
	__u32 depth;	 /* components collected, leaf first */
	__u32 truncated; /* more than SABPF_MAX_DEPTH components: unusable */
	__u32 ready;	 /* depth and stack hold this walk (walks are lazy) */
	__u32 done;	 /* the walk reached a root */
	__u32 detached;	 /* it passed the root of a disconnected tree */
	__u64 first_parent; /* the dentry it stepped to from the leaf (dir_cache.h) */
};

/* Masks that a trie lookup gathered, per access. */
struct sabpf_match {
	struct sabpf_verdict acc[SABPF_ACCESSES] SABPF_ALIGNED8;
	__u32 exact;	 /* the whole path has a node */
	__u32 source_id; /* the final node's source_id, when exact */
};

/* Indexes of sabpf_run.match. */
enum sabpf_match_index {
	SABPF_MATCH_TARGET = 0, /* rules for the target path */
	SABPF_MATCH_SOURCE = 1, /* the acting executable in the source trie */
	SABPF_MATCHES = 2,
};

/* Indexes of sabpf_run.memo. */
enum sabpf_memo_index {
	SABPF_MEMO_TASK = 0,   /* searched from the acting task's cgroup */
	SABPF_MEMO_SOCKET = 1, /* searched from a socket's cgroup (cgroup mode) */
	SABPF_MEMOS = 2,
};

/*
 * The outcome of the last config search on this CPU (decide.h). A hash
 * lookup hashes and compares its key in the kernel's generic code, and the
 * next run on this CPU most likely searches for the same container again.
 * The memo is valid while sabpf_epoch has the value read before the search:
 * the enforcer bumps the epoch after every config write and delete, so a
 * memo never outlives the map entries it was made from.
 */
struct sabpf_config_memo {
	__u64 cgid;  /* the cgroup the search started from */
	__u64 epoch; /* sabpf_epoch, read before the search */
	__u32 valid; /* cgid and epoch describe this memo */
	__u32 found; /* 0: no config (an unconfined task of a global object) */
	struct sabpf_config cfg;
};

/*
 * State of one program run, shared with its bpf_loop callbacks. It lives in
 * a map, not on the BPF stack, for the verifier's sake: kernels before 6.7
 * verify a callback as if it ran once, so loop state kept on the stack looks
 * constant to them (a depth of 0, masks of 0), and the verifier then removes
 * as dead every branch it never saw taken. Map values are unknown to it.
 * Pointers to map values do go on the stack (struct sabpf_loop_ctx): they
 * do not change between iterations, and they spare each iteration its map
 * lookups.
 */
struct sabpf_run {
	struct sabpf_walk walk[SABPF_STACKS];
	struct sabpf_match match[SABPF_MATCHES];
	__u32 source_ready; /* match[SABPF_MATCH_SOURCE] is filled for this run */

	/* Dentry walk: where the walk is, and that mount's root. */
	__u64 dentry, mnt, mnt_root;

	/* Trie lookup: the directory node reached so far. */
	__u32 lookup_parent;
	/* CHILDREN masks of that directory: they apply to its direct entries. */
	struct sabpf_verdict children[SABPF_ACCESSES] SABPF_ALIGNED8;

	/*
	 * The target's directory as the lookup passed it (dir_cache.h): filled
	 * when dir_wanted is set, and complete when dir_ready is.
	 */
	__u32 dir_wanted, dir_ready;
	__u32 dir_node; /* the directory's node id; 0: a component above it had none */
	__u32 file_repeat; /* the directory's entry had looked the target up before */
	__u32 file_hit;	   /* its slot matched the target: the match is the final result */
	__u64 file_hash_len; /* the target's name hash and length, and its inode */
	__u64 file_inode;
	__u64 dir_created; /* the entry's creation time, which names it for sabpf_dir_file_fill */
	struct sabpf_verdict dir_acc[SABPF_ACCESSES] SABPF_ALIGNED8;
	struct sabpf_verdict dir_children[SABPF_ACCESSES] SABPF_ALIGNED8;

	/* Spelling a path for an event: bytes written so far. */
	__u32 spell_off;

	/* Legacy object only (loop.h): the running loop's count, and whether it ended. */
	__u32 loop_n;
	__u32 loop_done;

	/* Kept across runs, unlike the fields above: see struct sabpf_config_memo. */
	struct sabpf_config_memo memo[SABPF_MEMOS];
};

/* Key: 0. Value: the state of the run on this CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sabpf_run);
} sabpf_runs SEC(".maps");

/*
 * A trie key being looked up (too large for the BPF stack), and the length
 * of the name the last lookup wrote. The bytes past name_len are always
 * zero, so the 256-byte name is cleared only before a shorter name. Its
 * first bytes are a struct sabpf_node_key for names of up to 31 bytes.
 */
struct sabpf_key_scratch {
	struct sabpf_long_node_key key;
	__u32 name_len; /* bytes of key.name written last, NUL included */
};

/* Indexes of sabpf_key_scratches. */
enum sabpf_key_index {
	SABPF_KEY_COMPONENT = 0, /* {slot, parent, component name} */
	SABPF_KEY_ROOT = 1,	 /* {slot, root, ""}: its name is never written */
	SABPF_KEYS = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SABPF_KEYS);
	__type(key, __u32);
	__type(value, struct sabpf_key_scratch);
} sabpf_key_scratches SEC(".maps");

/*
 * Key: 0. Value: a path being spelled for an event. Twice PATH_MAX so a
 * component appended at any offset below PATH_MAX stays inside the buffer,
 * which is what lets the verifier accept a variable write offset.
 */
struct sabpf_path_text {
	char text[2 * SABPF_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sabpf_path_text);
} sabpf_path_text_scratch SEC(".maps");

#endif /* SABPF_MAPS_H */
