/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * A cache of what the trie lookup learned about a directory, so that opening
 * another file in it costs one lookup (the file's name) instead of a walk to
 * the top of the mount tree and one lookup per component, and opening a file
 * of it again costs none (struct sabpf_dir_file).
 *
 * The state is kept in the directory's inode storage, one entry per table
 * (file, exec). An entry is valid only while nothing it depends on can have
 * changed:
 *   - the directory's path: a dentry changes parent or name only under the
 *     kernel's rename_lock, and a mount moves only under mount_lock. Both are
 *     seqlocks whose counters every such writer bumps. As in d_path(), the
 *     counters are read before the target's parent and again after the
 *     walk. An entry is stored only when they did not move and the walk
 *     went through the directory it is stored under, because otherwise a
 *     file renamed during the check would store its new directory's state
 *     under its old one.
 *   - local dentries: a filesystem that revalidates dentries (NFS, FUSE,
 *     9p, kernfs) can drop a directory's dentry and make a new one at
 *     another path without a rename, so its directories are never cached.
 *   - which dentry and mount: the entry names the directory's dentry and
 *     the mount it was walked on, and the storage dies with the inode. A
 *     directory's dentry may be freed and made again (even at the same
 *     address) while its inode lives, but only at the same path unless a
 *     rename, which the counters catch, moved it.
 *   - the container's program: slot and trie root, and the policy epoch
 *     (sabpf_epoch), which the enforcer bumps before every config write.
 *   - age: at most SABPF_DIR_CACHE_TTL_JIFFIES, so that the 32-bit counters
 *     cannot wrap back to a stored value while an entry lives.
 *
 * Entries are updated in place under the state's spin lock, which orders
 * the writers. Readers do not take it. Each entry has a sequence counter,
 * odd while a writer changes the entry, as in the kernel's seqcount_t. A
 * reader keeps what it copied only when the counter was even before the
 * copy and unchanged after it. The lock pair cost more than the copy.
 * (A first version replaced the whole storage instead, and its allocation
 * made a refill cost three times a plain walk.)
 *
 * The legacy object (5.8 to 5.16) has no cache: it walks every path.
 */
#ifndef SABPF_DIR_CACHE_H
#define SABPF_DIR_CACHE_H

#include "decide.h"
#include "path.h"

#ifndef SABPF_LEGACY
#define SABPF_DIR_CACHE 1

/*
 * Renames take rename_lock one at a time, node-wide, and each adds 2 to its
 * counter: wrapping it takes 2^31 renames, minutes even at millions per
 * second. Mounts are slower still. 2,500 jiffies are 10 s at HZ=250
 * (Debian's), and 2.5 s to 25 s for HZ from 1000 to 100, all far from that.
 * Age is counted in jiffies, a memory read: bpf_ktime_get_ns() reads the
 * clock source, which on a VM without a stable TSC is an emulated HPET.
 */
#define SABPF_DIR_CACHE_TTL_JIFFIES 2500

/* include/linux/dcache.h: the dentry has d_op->d_revalidate. */
#define SABPF_DCACHE_OP_REVALIDATE 0x4

/*
 * Keeps the compiler from moving memory reads across this point.
 * NOTE: this is no CPU barrier. The order counters, parent, counters, and
 * the entry sequence around an entry's reads and writes, rely on x86
 * keeping loads in order and stores in order. A weakly ordered CPU such as
 * arm64 would need read and write barriers here.
 */
#define sabpf_barrier() asm volatile("" ::: "memory")

/*
 * Files of the directory looked up more than once: the masks of the whole
 * path, so that a hit skips the lookup of the file's name. A slot is
 * chosen by the name's hash and keeps the dentry, the inode and the name's
 * hash and length. Another name in the directory (a hard link among them)
 * has another dentry or hash. A file unlinked and another created in its
 * place would need the same dentry and inode addresses and a colliding
 * 32-bit hash, salted with a kernel address, to take its slot. A slot lives
 * and dies with its entry, which a rename empties.
 */
#define SABPF_DIR_FILES 4

struct sabpf_dir_file {
	__u64 dentry;
	__u64 inode;
	__u64 name_hash_len;
	struct sabpf_verdict acc[SABPF_ACCESSES] SABPF_ALIGNED8;
};

/* The state of one directory for one table. */
struct sabpf_dir_entry {
	__u64 dentry;	  /* the directory's dentry */
	__u64 mnt;	  /* the mount its path was walked on */
	__u64 epoch;	  /* sabpf_epoch when the entry was created */
	__u64 created;	  /* bpf_jiffies64() when the entry was created */
	__u32 rename_seq; /* rename_lock and mount_lock counters before the walk */
	__u32 mount_seq;
	__u32 slot;	  /* the container's program, and the root of the trie used */
	__u32 root;
	__u32 node;	  /* see sabpf_keep_dir in path.h */
	__u32 valid;
	__u32 seq;	  /* odd while a writer changes the entry */
	__u64 seen;	  /* files looked up from this entry, one bit per name hash */
	struct sabpf_verdict acc[SABPF_ACCESSES] SABPF_ALIGNED8;
	struct sabpf_verdict children[SABPF_ACCESSES] SABPF_ALIGNED8;
	struct sabpf_dir_file files[SABPF_DIR_FILES];
};

/*
 * Value of sabpf_dir_cache: one entry per enum sabpf_table. Writers take
 * the lock and move the entry's seq, and readers check seq (sabpf_dir_take).
 */
struct sabpf_dir_state {
	struct bpf_spin_lock lock;
	struct sabpf_dir_entry table[2];
};

/* Not pinned: the state belongs to the object that made it. */
struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sabpf_dir_state);
} sabpf_dir_cache SEC(".maps");

/*
 * Their addresses come from /proc/kallsyms. Weak: a kernel that does not
 * list them (or hides addresses) runs without the cache.
 */
extern const void rename_lock __ksym __weak;
extern const void mount_lock __ksym __weak;

/* State of the target's directory, read by a path check before its walk. */
struct sabpf_dir_probe {
	struct inode *inode; /* the directory's inode; NULL: do not cache */
	__u64 dentry;
	__u64 epoch;
	__u64 now; /* bpf_jiffies64() */
	__u32 rename_seq;
	__u32 mount_seq;
	__u64 file_dentry; /* the target */
};

/*
 * Reads both counters. Fails while a writer holds either lock (its counter
 * is odd).
 */
static __always_inline int sabpf_path_seqs(__u32 *rename_seq, __u32 *mount_seq)
{
	const seqlock_t *rename = (const seqlock_t *)&rename_lock;
	const seqlock_t *mount = (const seqlock_t *)&mount_lock;

	/*
	 * One branch per address, kept apart by the empty asm. The verifier
	 * tracks the constant address that libbpf wrote and removes a branch
	 * that is never taken. Clang would otherwise fold both tests into
	 * arithmetic that the program then runs on every check.
	 */
	sabpf_forget_range(rename);
	if (!rename)
		return -1;
	sabpf_forget_range(mount);
	if (!mount)
		return -1;
	*rename_seq = BPF_CORE_READ(rename, seqcount.seqcount.sequence);
	*mount_seq = BPF_CORE_READ(mount, seqcount.seqcount.sequence);
	return (*rename_seq | *mount_seq) & 1 ? -1 : 0;
}

/*
 * Prepares a check of {dentry, mnt}: p->inode is set when the target's
 * directory may be cached. Not for a mount root or a disconnected dentry,
 * whose parent is not the directory the path goes through, nor on a
 * filesystem that revalidates dentries.
 */
static __always_inline void sabpf_dir_probe(struct dentry *dentry, struct vfsmount *mnt,
					    struct sabpf_dir_probe *p)
{
	struct dentry *parent;
	__u32 zero = 0;
	__u64 *epoch;

	p->inode = 0;
	if (!dentry || !mnt)
		return;
	epoch = bpf_map_lookup_elem(&sabpf_epoch, &zero);
	if (!epoch || sabpf_path_seqs(&p->rename_seq, &p->mount_seq) < 0)
		return;
	p->now = bpf_jiffies64();

	/* The parent only after the counters (read_seqbegin): a later rename moves them. */
	sabpf_barrier();
	parent = dentry->d_parent;
	if (!parent || parent == dentry || dentry == mnt->mnt_root)
		return;
	if (parent->d_flags & SABPF_DCACHE_OP_REVALIDATE)
		return;
	if (sabpf_epoch_read(epoch, &p->epoch) < 0)
		return;
	p->dentry = (__u64)parent;
	p->inode = parent->d_inode;
	p->file_dentry = (__u64)dentry;
}

/*
 * True when entry e was stored for this directory, mount, program and
 * epoch, and no rename or mount has happened since the probe read the
 * counters. The caller adds the age or identity check it needs.
 */
static __always_inline int sabpf_dir_entry_matches(const struct sabpf_dir_entry *e, __u32 slot,
						   __u32 root, struct vfsmount *mnt,
						   const struct sabpf_dir_probe *p)
{
	return e->valid && e->dentry == p->dentry && e->mnt == (__u64)mnt &&
	       e->epoch == p->epoch && e->rename_seq == p->rename_seq &&
	       e->mount_seq == p->mount_seq && e->slot == slot && e->root == root;
}

/* Returns the index in sabpf_dir_entry.files of a name with this hash and length. */
static __always_inline __u32 sabpf_dir_file_index(__u64 hash_len)
{
	return (hash_len >> 6) & (SABPF_DIR_FILES - 1);
}

/*
 * Returns the entry of table in state. Every caller passes a constant, which
 * picks a constant offset and spares a register (sabpf_bit would hide it).
 */
static __always_inline struct sabpf_dir_entry *sabpf_dir_entry_of(struct sabpf_dir_state *state,
								   __u32 table)
{
	return table & 1 ? &state->table[1] : &state->table[0];
}

/* Reads an entry's sequence counter exactly where the caller does, in one load. */
static __always_inline __u32 sabpf_dir_seq(const struct sabpf_dir_entry *e)
{
	return *(volatile const __u32 *)&e->seq;
}

/*
 * Brackets a writer's changes to entry e, under the state's lock: readers
 * that saw the counter odd, or saw it move, drop what they read.
 */
static __always_inline void sabpf_dir_write_begin(struct sabpf_dir_entry *e)
{
	*(volatile __u32 *)&e->seq = e->seq + 1;
	sabpf_barrier();
}

static __always_inline void sabpf_dir_write_end(struct sabpf_dir_entry *e)
{
	sabpf_barrier();
	*(volatile __u32 *)&e->seq = e->seq + 1;
}

/*
 * Copies a valid entry for this check without its lock and returns 1, or
 * returns 0 with m->acc zeroed, as the caller passes it. On a slot hit (run->file_hit), m receives the
 * file's masks, the final result. Otherwise m receives the directory's
 * masks, and the run its node and its children's masks for the name lookup.
 */
static __always_inline int sabpf_dir_take(struct sabpf_run *run, struct sabpf_dir_entry *e,
					  __u32 slot, __u32 root, struct dentry *dentry,
					  struct vfsmount *mnt, const struct sabpf_dir_probe *p,
					  struct sabpf_match *m)
{
	struct sabpf_dir_file *f;
	__u64 hash_len = 0, bit = 0, seen = 0;
	__u32 seq;

	/* read_seqcount_begin: a writer is busy while the counter is odd. */
	seq = sabpf_dir_seq(e);
	if (seq & 1)
		return 0;
	sabpf_barrier();

	if (!sabpf_dir_entry_matches(e, slot, root, mnt, p) ||
	    p->now - e->created > SABPF_DIR_CACHE_TTL_JIFFIES)
		return 0;
	run->dir_created = e->created;
	run->dir_node = e->node;
	run->file_hit = 0;
	run->file_repeat = 0;

	/*
	 * Below a directory without a node, the directory's masks are already
	 * the result, so a slot would save nothing. The slot and the seen bit
	 * come from the dcache's name hash, because a pointer may not be hashed.
	 * The verifier rejects an 8-byte load of hash_len across its union, so
	 * hash and length are loaded apart.
	 */
	if (e->node) {
		hash_len = ((__u64)dentry->d_name.len << 32) | dentry->d_name.hash;
		run->file_hash_len = hash_len;
		run->file_inode = (__u64)dentry->d_inode;
		f = &e->files[sabpf_dir_file_index(hash_len)];
		run->file_hit = f->dentry == p->file_dentry && f->inode == run->file_inode &&
				f->name_hash_len == hash_len;

		/* A bit already set: this name (or one sharing its bit) was looked up before. */
		bit = 1ULL << (hash_len & 63);
		seen = e->seen;
		run->file_repeat = (seen & bit) != 0;
	}
	if (run->file_hit) {
		__builtin_memcpy(m->acc, f->acc, sizeof(m->acc));
	} else {
		__builtin_memcpy(m->acc, e->acc, sizeof(m->acc));
		__builtin_memcpy(run->dir_children, e->children, sizeof(run->dir_children));
	}

	/* read_seqcount_retry: a write since the first read may have torn what was copied. */
	sabpf_barrier();
	if (sabpf_dir_seq(e) != seq) {
		__builtin_memset(m->acc, 0, sizeof(m->acc));
		return 0;
	}

	/*
	 * Set without the lock, so a bit can be lost to a concurrent store of
	 * the entry, or survive into the new entry. Either changes only when a
	 * slot is filled, and sabpf_dir_file_fill checks the entry itself.
	 */
	if (bit && !(seen & bit))
		e->seen = seen | bit;
	return 1;
}

/*
 * Stores the masks m of the probed file in its slot of entry e, if e is
 * still the entry this check read. Another CPU may have stored e again
 * meanwhile, for a path that has changed since.
 */
static __always_inline void sabpf_dir_file_fill(const struct sabpf_run *run,
						struct sabpf_dir_state *state,
						struct sabpf_dir_entry *e, __u32 slot, __u32 root,
						struct vfsmount *mnt,
						const struct sabpf_dir_probe *p,
						const struct sabpf_match *m)
{
	struct sabpf_dir_file *f;

	bpf_spin_lock(&state->lock);
	if (sabpf_dir_entry_matches(e, slot, root, mnt, p) && e->created == run->dir_created) {
		f = &e->files[sabpf_dir_file_index(run->file_hash_len)];
		sabpf_dir_write_begin(e);
		f->dentry = p->file_dentry;
		f->inode = run->file_inode;
		f->name_hash_len = run->file_hash_len;
		__builtin_memcpy(f->acc, m->acc, sizeof(f->acc));
		sabpf_dir_write_end(e);
	}
	bpf_spin_unlock(&state->lock);
}

/*
 * Fills the target match from the directory's cached state and returns 1,
 * or returns 0 (match as the caller passed it) when the state is missing or stale. slot
 * must be read before the probe (see sabpf_epoch).
 */
static __always_inline int sabpf_dir_lookup(struct sabpf_run *run, __u32 slot,
					    __u32 table, __u32 root, struct dentry *dentry,
					    struct vfsmount *mnt, const struct sabpf_dir_probe *p)
{
	struct sabpf_match *m = &run->match[SABPF_MATCH_TARGET];
	__u32 key_index = SABPF_KEY_COMPONENT;
	struct sabpf_key_scratch *k;
	struct sabpf_dir_state *state;
	struct sabpf_dir_entry *e;
	struct sabpf_node *node;

	if (!p->inode)
		return 0;
	state = bpf_inode_storage_get(&sabpf_dir_cache, p->inode, 0, 0);
	if (!state)
		return 0;
	e = sabpf_dir_entry_of(state, table);
	if (!sabpf_dir_take(run, e, slot, root, dentry, mnt, p, m))
		return 0;

	/* The file's own masks, stored when it was looked up before. */
	if (run->file_hit) {
		sabpf_count(SABPF_COUNTER_FILE_CACHE_HITS);
		return 1;
	}

	/* m has the masks down to the directory; a lookup that ended above it is complete. */
	if (run->dir_node) {
		k = bpf_map_lookup_elem(&sabpf_key_scratches, &key_index);
		if (!k) {
			__builtin_memset(m->acc, 0, sizeof(m->acc));
			return 0;
		}
		k->key.slot = slot;
		node = sabpf_find_component(k, run->dir_node, (const char *)dentry->d_name.name,
					    dentry->d_name.len);
		sabpf_match_leaf(m, node, run->dir_children);
		/* Only a file looked up below a node has a lookup to save. */
		if (run->file_repeat)
			sabpf_dir_file_fill(run, state, e, slot, root, mnt, p, m);
	}
	sabpf_count(SABPF_COUNTER_DIR_CACHE_HITS);
	return 1;
}

/*
 * Stores the directory state that the walk and lookup just computed, when
 * the walk was whole (not truncated, not through a disconnected tree), went
 * through the probed directory, and raced no rename or mount.
 */
static __always_inline void sabpf_dir_fill(struct sabpf_run *run, __u32 slot,
					   __u32 table, __u32 root, struct vfsmount *mnt,
					   const struct sabpf_dir_probe *p)
{
	struct sabpf_walk *w = &run->walk[SABPF_STACK_TARGET];
	__u32 rename_seq, mount_seq;
	struct sabpf_dir_state *state;
	struct sabpf_dir_entry *e;

	if (!p->inode || !run->dir_ready || !w->done || w->truncated || w->detached || !w->depth)
		return;
	if (w->first_parent != p->dentry)
		return;

	/* read_seqretry: a rename or mount during the walk leaves nothing to store. */
	sabpf_barrier();
	if (sabpf_path_seqs(&rename_seq, &mount_seq) < 0 || rename_seq != p->rename_seq ||
	    mount_seq != p->mount_seq)
		return;

	/* Created zeroed (not valid) on the directory's first fill, updated in place after. */
	state = bpf_inode_storage_get(&sabpf_dir_cache, p->inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!state)
		return;
	e = sabpf_dir_entry_of(state, table);
	bpf_spin_lock(&state->lock);
	sabpf_dir_write_begin(e);
	e->dentry = p->dentry;
	e->mnt = (__u64)mnt;
	e->epoch = p->epoch;
	e->created = p->now;
	e->rename_seq = p->rename_seq;
	e->mount_seq = p->mount_seq;
	e->slot = slot;
	e->root = root;
	e->node = run->dir_node;
	e->valid = 1;
	e->seen = 0;
	__builtin_memset(e->files, 0, sizeof(e->files));
	__builtin_memcpy(e->acc, run->dir_acc, sizeof(e->acc));
	__builtin_memcpy(e->children, run->dir_children, sizeof(e->children));
	sabpf_dir_write_end(e);
	bpf_spin_unlock(&state->lock);
	sabpf_count(SABPF_COUNTER_DIR_CACHE_FILLS);
}
#else
#define SABPF_DIR_CACHE 0
#endif /* SABPF_LEGACY */

#endif /* SABPF_DIR_CACHE_H */
