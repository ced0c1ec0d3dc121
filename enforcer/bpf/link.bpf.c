// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * path_link: link(2)/linkat(2) of the container. Path rules name paths, so
 * without this hook a container could give a protected file a second,
 * unprotected name and open it through that. sabpf_check_link states the
 * rule, which is the one AppArmor applies to links. Hard links made before
 * the container existed, or by other processes, never reach this hook.
 * Included by sabpf.bpf.c, not an object of its own.
 */
#include "check_path.h"

SABPF_LSM(path_link)
int BPF_PROG(sabpf_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	struct sabpf_path_check c = SABPF_FILE_CHECK(SABPF_HOOK_FILE_LINK);
	struct sabpf_config *cfg;
	__u64 cgid;

	/* The container's config. Without one, the attach mode decides. */
	cfg = sabpf_config_current(&cgid);
	if (!cfg)
		return sabpf_no_config();
	if (!(cfg->hooks & SABPF_HOOK_FILE_LINK))
		return SABPF_ALLOW;

	/* Both names against the container's file trie. */
	c.root = cfg->file_root;
	return sabpf_check_link(cfg, old_dentry, new_dentry, new_dir->mnt, &c, SABPF_WRITE, 0);
}
