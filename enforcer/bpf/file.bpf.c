// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * file_open: every open(2)/openat(2) of the container (O_PATH opens never
 * reach this hook). Included by sabpf.bpf.c, not an object of its own.
 */
#include "check_path.h"

SABPF_LSM(file_open)
int BPF_PROG(sabpf_file_open, struct file *file)
{
	struct sabpf_path_check c = {
		.hook = SABPF_HOOK_FILE_OPEN,
		.section = SABPF_SECTION_FILE,
		.table = SABPF_TABLE_FILE,
		.source_flag = SABPF_CONFIG_HAS_FILE_SOURCES,
		.cacheable = 1,
	};
	struct sabpf_config *cfg;
	__u32 accesses = 0;
	unsigned int mode;
	__u64 cgid;

	/* The container's config. Without one, the attach mode decides. */
	cfg = sabpf_config_current(&cgid);
	if (!cfg)
		return sabpf_no_config();
	if (!(cfg->hooks & SABPF_HOOK_FILE_OPEN))
		return SABPF_ALLOW;

	/*
	 * Read and write are separate accesses. Opening a binary to exec it
	 * reads it. O_TRUNC empties the file whatever the mode, so it is a
	 * write: from 6.2 on, the kernel no longer calls path_truncate for it.
	 * The flag is cleared only after this hook.
	 */
	mode = file->f_mode;
	if (file->f_flags & O_TRUNC)
		mode |= FMODE_WRITE;
	if (mode & FMODE_READ)
		accesses |= SABPF_READ;
	if (mode & FMODE_WRITE)
		accesses |= SABPF_WRITE;
	if (!accesses)
		return SABPF_ALLOW;

	/* Look the path up in the container's file trie and decide. */
	c.root = cfg->file_root;
	return sabpf_check_path(cfg, file->f_path.dentry, file->f_path.mnt, &c, accesses, 0);
}
