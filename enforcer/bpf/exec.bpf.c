// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * bprm_check_security: runs once per binary handler of an execve, after the
 * file is opened. A "#!/bin/sh" script runs it for the script and again for
 * /bin/sh, so a denied interpreter cannot be reached through a script, and
 * bprm->file is the resolved file, so a symlink to a denied binary is denied.
 * The acting task is still the caller of execve: current->mm is the old mm,
 * so fromSource and the event's exe name the program that asked for the exec.
 * Included by sabpf.bpf.c, not an object of its own.
 */
#include "check_path.h"

SABPF_LSM(bprm_check_security)
int BPF_PROG(sabpf_bprm_check_security, struct linux_binprm *bprm)
{
	struct sabpf_path_check c = {
		.hook = SABPF_HOOK_EXEC,
		.section = SABPF_SECTION_EXEC,
		.table = SABPF_TABLE_EXEC,
		.source_flag = SABPF_CONFIG_HAS_EXEC_SOURCES,
		.cacheable = 1,
	};
	struct sabpf_config *cfg;
	struct file *file;
	__u64 cgid;

	/* The container's config. Without one, the attach mode decides. */
	cfg = sabpf_config_current(&cgid);
	if (!cfg)
		return sabpf_no_config();
	if (!(cfg->hooks & SABPF_HOOK_EXEC))
		return SABPF_ALLOW;

	/* Look the binary up in the container's exec trie and decide. */
	file = bprm->file;
	if (!file)
		return SABPF_ALLOW;
	c.root = cfg->exec_root;
	return sabpf_check_path(cfg, file->f_path.dentry, file->f_path.mnt, &c, SABPF_READ, 0);
}
