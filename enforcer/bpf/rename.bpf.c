// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * path_rename: rename(2)/renameat2(2) of the container. Path rules name
 * paths, so without this hook a container allowed to write in two
 * directories could move a protected file to an unprotected name and open
 * it there. Judged as a hard link (sabpf_check_link): the old name for read
 * and write, the new name for write.
 *
 * RENAME_EXCHANGE also moves the file at the new name to the old one. The
 * program does not read the hook's flags argument, which 5.10's hook lacks
 * (four arguments there, five on 6.1), so any existing file at the new name
 * is judged for read as well, exchange or not. That denies replacing
 * a file the container may write but not read, which a plain rename over
 * it would otherwise allow.
 *
 * A directory carries every path below it, which this hook does not walk.
 * So no directory moves from or to a path with rules at or below it (a
 * trie node at the path), whichever name it has (sabpf_rules_below).
 * Included by sabpf.bpf.c, not an object of its own.
 */
#include "check_path.h"

SABPF_LSM(path_rename)
int BPF_PROG(sabpf_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	struct sabpf_path_check c = {
		.hook = SABPF_HOOK_FILE_RENAME,
		.section = SABPF_SECTION_FILE,
		.table = SABPF_TABLE_FILE,
		.source_flag = SABPF_CONFIG_HAS_FILE_SOURCES,
	};
	struct sabpf_config *cfg;
	__u32 new_accesses = SABPF_WRITE;
	__u64 cgid;

	/* The container's config. Without one, the attach mode decides. */
	cfg = sabpf_config_current(&cgid);
	if (!cfg)
		return sabpf_no_config();
	if (!(cfg->hooks & SABPF_HOOK_FILE_RENAME))
		return SABPF_ALLOW;

	/* A file at the new name may move to the old one (RENAME_EXCHANGE). */
	if (new_dentry->d_inode)
		new_accesses |= SABPF_READ;

	/* Both names against the container's file trie. */
	c.root = cfg->file_root;
	return sabpf_check_link(cfg, old_dentry, new_dentry, new_dir->mnt, &c, new_accesses, 1);
}
