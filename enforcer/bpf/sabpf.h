/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Structs that cross the kernel-user boundary: map keys and values written by
 * the compiler (compiler/layout.ts mirrors this file byte for byte, and a unit
 * test checks the two agree) and ring-buffer events read by the enforcer.
 *
 * Decision model, shared by the BPF programs and compiler/decide.ts:
 * every policy that selects a container owns one bit (0..31) in the masks
 * below, ordered by namespace/name. For one operation, each policy decides on
 * its own: deny if one of its deny rules matches, else audit if an audit rule
 * matches, else allow if an allow rule matches, else the section's posture.
 * The container's decision is the most restrictive policy decision
 * (deny > audit > allow). A deny from a policy in audit mode is recorded and
 * not enforced.
 *
 * Every key starts with a slot: the enforcer gives each loaded program its own
 * slot, so a policy is replaced by writing a new slot and then switching the
 * container's config to it in one map update. The compiler writes slot 0.
 */
#ifndef SABPF_H
#define SABPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SABPF_MAX_POLICIES 32  /* bits in a policy mask */
#define SABPF_NAME_MAX 256     /* NAME_MAX (255) plus the NUL byte */
#define SABPF_SHORT_NAME 32    /* components of up to 31 bytes key sabpf_nodes */
#define SABPF_PATH_MAX 4096    /* PATH_MAX, including the NUL byte */
#define SABPF_MAX_DEPTH 2048   /* deepest path PATH_MAX can spell: "/a" repeated */
#define SABPF_MAX_CGROUP_LEVELS 16 /* cgroup ancestors searched for a config */

/* Hooks, as bits of sabpf_config.hooks and values of sabpf_event.hook. */
enum sabpf_hook {
	SABPF_HOOK_FILE_OPEN = 1 << 0,
	SABPF_HOOK_EXEC = 1 << 1,	    /* bprm_check_security */
	SABPF_HOOK_SOCKET_CONNECT = 1 << 2,
	SABPF_HOOK_SOCKET_BIND = 1 << 3,
	SABPF_HOOK_SOCKET_CREATE = 1 << 4, /* raw and packet sockets */
	SABPF_HOOK_FILE_LINK = 1 << 5,	    /* path_link: hard links, judged by the file rules */
	SABPF_HOOK_SOCKET_SENDMSG = 1 << 6, /* addressed sends, judged by the connect rules */
	SABPF_HOOK_FILE_RENAME = 1 << 7,    /* path_rename: moves, judged by the file rules */
	/* Node-wide in every build (path_write.bpf.c), judged as writes by the file rules. */
	SABPF_HOOK_FILE_CREATE = 1 << 8,   /* path_mknod: new files, fifos, sockets, devices */
	SABPF_HOOK_FILE_MKDIR = 1 << 9,    /* path_mkdir */
	SABPF_HOOK_FILE_SYMLINK = 1 << 10, /* path_symlink */
	SABPF_HOOK_FILE_UNLINK = 1 << 11,  /* path_unlink */
	SABPF_HOOK_FILE_RMDIR = 1 << 12,   /* path_rmdir */
	SABPF_HOOK_FILE_TRUNCATE = 1 << 13, /* path_truncate */
	SABPF_HOOK_FILE_CHMOD = 1 << 14,   /* path_chmod */
};

/* Sections of a policy; each has its own posture. */
enum sabpf_section {
	SABPF_SECTION_FILE = 0,
	SABPF_SECTION_EXEC = 1,
	SABPF_SECTION_NETWORK = 2,
	SABPF_SECTIONS = 3,
};

/* How a trie node's rule applies to the path being looked up. */
enum sabpf_scope {
	SABPF_SCOPE_EXACT = 0,	  /* the node's own path, such as /etc/shadow */
	SABPF_SCOPE_CHILDREN = 1, /* direct entries of the node: the files in /etc */
	SABPF_SCOPE_SUBTREE = 2,  /* the node and everything below: the subtree of /etc */
	SABPF_SCOPES = 3,
};

/* Access kinds. Exec tries use SABPF_ACCESS_READ only. */
enum sabpf_access {
	SABPF_ACCESS_READ = 0,
	SABPF_ACCESS_WRITE = 1,
	SABPF_ACCESSES = 2,
};

/* Tables, as sabpf_source_root_key.table. */
enum sabpf_table {
	SABPF_TABLE_FILE = 0,
	SABPF_TABLE_EXEC = 1,
};

enum sabpf_net_op {
	SABPF_NET_CONNECT = 0,
	SABPF_NET_BIND = 1,
};

/* Policy masks: bit i set means policy i has a rule with that action here. */
struct sabpf_verdict {
	__u32 deny;
	__u32 audit;
	__u32 allow;
};

/*
 * Config of one confined container, in map sabpf_configs keyed by cgroup id
 * (__u64). Written before a program is attached and removed after it is
 * detached, so an attached program always finds one.
 */
struct sabpf_config {
	__u32 slot;
	__u32 hooks;	    /* enum sabpf_hook bits the container needs */
	__u32 enforce;	    /* policies in enforce mode; the others audit */
	__u32 policy_count; /* policies selecting the container, <= 32 */
	__u32 file_root;    /* trie node id of "/" in the file table, 0 = none */
	__u32 exec_root;    /* trie node id of "/" in the exec table, 0 = none */
	__u32 source_root;  /* trie node id of "/" in the fromSource table */
	__u32 flags;	    /* SABPF_CONFIG_* */
	/* Postures: policies whose section posture is deny, or audit. */
	__u32 posture_deny[SABPF_SECTIONS];
	__u32 posture_audit[SABPF_SECTIONS];
	struct sabpf_verdict raw_socket;    /* socket(AF_INET*, SOCK_RAW) */
	struct sabpf_verdict packet_socket; /* socket(AF_PACKET) */
};

#define SABPF_CONFIG_HAS_FILE_SOURCES (1 << 0) /* file rules use fromSource */
#define SABPF_CONFIG_HAS_EXEC_SOURCES (1 << 1) /* exec rules use fromSource */

/*
 * Path trie, in maps sabpf_nodes and sabpf_long_nodes. A path is looked up
 * one component at a time from the root node: key {slot, parent node id,
 * component name}. A name of up to 31 bytes keys sabpf_nodes with a short
 * key, a longer one sabpf_long_nodes, because the kernel hashes and
 * compares the whole key on every lookup and most names are short. The long
 * key starts with the short key's layout, so one buffer serves both maps.
 * The root node itself (the rules of "/", of its direct entries and of its
 * subtree) is the entry {slot, root id, ""} of sabpf_nodes: an empty name
 * never collides with a real component. Per-event cost grows with path
 * depth, never with the number of rules.
 */
struct sabpf_node_key {
	__u32 slot;
	__u32 parent;			  /* node id of the parent directory */
	char name[SABPF_SHORT_NAME]; /* one path component, NUL padded */
};

struct sabpf_long_node_key {
	__u32 slot;
	__u32 parent;		    /* node id of the parent directory */
	char name[SABPF_NAME_MAX]; /* one path component, NUL padded */
};

struct sabpf_node {
	__u32 id;	 /* this node's id: children use it as their parent */
	__u32 source_id; /* fromSource table only: the executable's id, 0 = none */
	struct sabpf_verdict rules[SABPF_SCOPES][SABPF_ACCESSES];
};

/*
 * Roots of the tries that hold fromSource rules: one trie per table and
 * source executable, in map sabpf_source_roots.
 */
struct sabpf_source_root_key {
	__u32 slot;
	__u32 source_id;
	__u32 table; /* enum sabpf_table */
};

/*
 * Network rules, in LPM trie sabpf_net_prefixes. Addresses are IPv6; IPv4
 * is stored and looked up in its IPv4-mapped form (::ffff:a.b.c.d), so an
 * AF_INET6 connect to a mapped address meets the IPv4 rules.
 * prefixlen = 64 + CIDR bits (IPv6) or 64 + 96 + CIDR bits (IPv4). The
 * compiler folds the rules of every enclosing CIDR into each prefix, so the
 * longest match alone carries all rules that apply.
 */
struct sabpf_net_key {
	__u32 prefixlen;
	__u32 slot;
	__u8 op;    /* enum sabpf_net_op */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[2];
	__u8 addr[16]; /* network byte order */
};

struct sabpf_net_prefix {
	__u32 id;	      /* net node id, used in sabpf_port_key */
	__u32 port_plen_mask; /* bit n set: entries with port prefix length n exist */
};

/*
 * Port rules of one net node, in map sabpf_ports. A port range is stored as
 * aligned blocks: the top plen bits of the port (0 <= plen <= 16), so a port
 * is looked up at most 17 times whatever the number of rules.
 */
struct sabpf_port_key {
	__u32 slot;
	__u32 net_id;
	__u32 plen;	   /* significant high bits of the port, 0..16 */
	__u32 port_prefix; /* port >> (16 - plen) */
};

/* Indexes of the per-CPU counters in map sabpf_counters. */
enum sabpf_counter {
	SABPF_COUNTER_EVENTS_DROPPED = 0, /* ring buffer full: record lost */
	SABPF_COUNTER_PATH_TRUNCATED = 1, /* path deeper than SABPF_MAX_DEPTH */
	SABPF_COUNTER_NO_CONFIG = 2,	  /* attached, but no config: denied */
	SABPF_COUNTER_DENIED = 3,
	SABPF_COUNTER_AUDITED = 4,
	SABPF_COUNTER_DIR_CACHE_HITS = 5,  /* path checks decided from a directory's cached state */
	SABPF_COUNTER_DIR_CACHE_FILLS = 6, /* directory states cached after a full walk */
	SABPF_COUNTER_FILE_CACHE_HITS = 7, /* path checks decided from the file's own cached masks */
	SABPF_COUNTERS = 8,
};

enum sabpf_decision {
	SABPF_DECISION_ALLOW = 0,
	SABPF_DECISION_DENY = 1,
};

#define SABPF_EVENT_ENFORCED (1 << 0)  /* the denial was enforced (EPERM) */
#define SABPF_EVENT_AUDIT (1 << 1)     /* recorded because of an audit action */
#define SABPF_EVENT_POSTURE (1 << 2)   /* no rule matched: the posture decided */
#define SABPF_EVENT_TRUNCATED (1 << 3) /* path too deep: decided by posture */
#define SABPF_EVENT_V6ONLY (1 << 4)    /* a bind to :: that IPV6_V6ONLY keeps off 0.0.0.0 */
#define SABPF_EVENT_RULES_BELOW (1 << 5) /* a directory or symlink given a name with rules below it */

/*
 * One recorded decision, sent over ring buffer sabpf_events. Fixed size;
 * path and exe are NUL terminated and path_len/exe_len exclude the NUL.
 */
struct sabpf_event {
	__u64 time_boot_ns; /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id;
	__u32 pid;  /* thread group id */
	__u32 ppid; /* parent's thread group id */
	__u32 uid;
	__u32 hook;	 /* enum sabpf_hook */
	__u32 access;	 /* enum sabpf_access (file), 0 otherwise */
	__u32 decision;	 /* enum sabpf_decision the policies reached */
	__u32 flags;	 /* SABPF_EVENT_* */
	__u32 policy;	 /* bit index of the deciding policy */
	__u32 net_op;	 /* enum sabpf_net_op */
	__u16 port;	 /* host byte order */
	__u8 proto;	 /* IPPROTO_*, or socket type for socket_create */
	__u8 family;	 /* AF_INET, AF_INET6, AF_PACKET */
	__u8 addr[16];	 /* IPv6 or IPv4-mapped, network byte order */
	char comm[16];
	__u16 path_len;
	__u16 exe_len;
	__u32 pad;
	char path[SABPF_PATH_MAX]; /* file or binary path as the container sees it */
	char exe[SABPF_PATH_MAX];  /* executable of the acting task */
};

#endif /* SABPF_H */
