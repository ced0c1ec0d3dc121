// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * path_rename: rename(2)/renameat2(2) of the container. Path rules name
 * paths, so without this hook a container allowed to write in two
 * directories could move a protected file to an unprotected name and open
 * it there. Judged as a hard link (sabpf_check_link): the old name for read
 * and write, the new name for write.
 *
 * RENAME_EXCHANGE also moves the file at the new name to the old one, so
 * an exchange judges the new name for read as well. The hook has had a
 * flags argument since 5.19, when it stopped being called twice for an
 * exchange. The per-container object needs 6.0 and reads the flags. The
 * node-wide objects also load on 5.17 and 5.18 (global) and from 5.8
 * (legacy), whose hook has four arguments, so they judge any existing file
 * at the new name for read, exchange or not. Under them, replacing a file
 * the container may write but not read is denied.
 *
 * A directory carries every path below it, which this hook does not walk.
 * So no directory moves from or to a path with rules at or below it (a
 * trie node at the path), whichever name it has (sabpf_rules_below).
 * Included by sabpf.bpf.c, not an object of its own.
 */
#include "check_path.h"

static __always_inline int sabpf_rename(struct dentry *old_dentry, const struct path *new_dir,
					struct dentry *new_dentry, bool may_exchange)
{
	struct sabpf_path_check c = SABPF_FILE_CHECK(SABPF_HOOK_FILE_RENAME);
	struct sabpf_config *cfg;
	__u32 new_accesses = SABPF_WRITE;
	__u64 cgid;

	/* The container's config. Without one, the attach mode decides. */
	cfg = sabpf_config_current(&cgid);
	if (!cfg)
		return sabpf_no_config();
	if (!(cfg->hooks & SABPF_HOOK_FILE_RENAME))
		return SABPF_ALLOW;

	/* A file at the new name that moves to the old one is read there. */
	if (may_exchange && new_dentry->d_inode)
		new_accesses |= SABPF_READ;

	/* Both names against the container's file trie. */
	c.root = cfg->file_root;
	return sabpf_check_link(cfg, old_dentry, new_dentry, new_dir->mnt, &c, new_accesses, 1);
}

#ifdef SABPF_GLOBAL
SABPF_LSM(path_rename)
int BPF_PROG(sabpf_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	return sabpf_rename(old_dentry, new_dir, new_dentry, true);
}
#else
SABPF_LSM(path_rename)
int BPF_PROG(sabpf_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags)
{
	return sabpf_rename(old_dentry, new_dir, new_dentry, flags & RENAME_EXCHANGE);
}
#endif
