// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Changes a container makes to a name, to a file's contents or to its mode
 * without opening the file for write. These are creating a file (open with
 * O_CREAT, mknod(2)), a directory or a symlink, removing a name or a
 * directory, truncate(2) and chmod(2). Each is judged as a write
 * at that name, so a path the file rules protect from writes cannot be
 * deleted, truncated, opened up to other writers, or created as another
 * kind of file. Creating a symlink is also denied where rules lie
 * at or below its name: paths below it would lead elsewhere.
 *
 * These programs attach for every task of the node in every build
 * (SABPF_NODE_LSM in common.h), so a task without a config is one the
 * enforcer does not confine, and they return 0 or -EPERM. The hooks need
 * CONFIG_SECURITY_PATH, as path_link does. Included by sabpf.bpf.c, not an
 * object of its own.
 */
#include "check_path.h"

/* Judges a write at {dentry, mnt} for the current task's container. */
static __always_inline int sabpf_path_write(struct dentry *dentry, struct vfsmount *mnt,
					    __u32 hook, __u32 names_tree)
{
	struct sabpf_path_check c = SABPF_FILE_CHECK(hook);
	struct sabpf_config *cfg;
	__u64 cgid;

	/* No config: a task outside every confined container. */
	cfg = sabpf_config_current(&cgid);
	if (!cfg || !(cfg->hooks & hook))
		return SABPF_NODE_ALLOW;

	c.root = cfg->file_root;
	return sabpf_node_verdict(sabpf_check_path(cfg, dentry, mnt, &c, SABPF_WRITE, names_tree));
}

/*
 * Also runs for open(2) with O_CREAT of a name not in the dentry cache,
 * before the kernel has looked the file up.
 * NOTE: when it does exist, the kernel ignores this verdict and opens it
 * (file_open then judges the open), so a denial recorded here blocked
 * nothing. SELinux and AppArmor see the same call.
 */
SABPF_NODE_LSM(path_mknod)
int BPF_PROG(sabpf_path_mknod, const struct path *dir, struct dentry *dentry)
{
	return sabpf_path_write(dentry, dir->mnt, SABPF_HOOK_FILE_CREATE, 0);
}

SABPF_NODE_LSM(path_mkdir)
int BPF_PROG(sabpf_path_mkdir, const struct path *dir, struct dentry *dentry)
{
	return sabpf_path_write(dentry, dir->mnt, SABPF_HOOK_FILE_MKDIR, 0);
}

SABPF_NODE_LSM(path_symlink)
int BPF_PROG(sabpf_path_symlink, const struct path *dir, struct dentry *dentry)
{
	return sabpf_path_write(dentry, dir->mnt, SABPF_HOOK_FILE_SYMLINK, 1);
}

SABPF_NODE_LSM(path_unlink)
int BPF_PROG(sabpf_path_unlink, const struct path *dir, struct dentry *dentry)
{
	return sabpf_path_write(dentry, dir->mnt, SABPF_HOOK_FILE_UNLINK, 0);
}

SABPF_NODE_LSM(path_rmdir)
int BPF_PROG(sabpf_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	return sabpf_path_write(dentry, dir->mnt, SABPF_HOOK_FILE_RMDIR, 0);
}

/*
 * truncate(2). Before 6.2 the kernel also called it for ftruncate(2) and
 * open(2) with O_TRUNC; file_open judges O_TRUNC as a write on any kernel,
 * and ftruncate needs a descriptor opened for write.
 */
SABPF_NODE_LSM(path_truncate)
int BPF_PROG(sabpf_path_truncate, const struct path *path)
{
	return sabpf_path_write(path->dentry, path->mnt, SABPF_HOOK_FILE_TRUNCATE, 0);
}

/*
 * chmod(2) and fchmod(2): a mode that lets others write is a write.
 * NOTE: path_chown is not hooked. Its uid and gid arguments are structs,
 * which trampolines before 6.1 cannot pass, so no object could load it on
 * the kernels the node-wide objects serve.
 */
SABPF_NODE_LSM(path_chmod)
int BPF_PROG(sabpf_path_chmod, const struct path *path)
{
	return sabpf_path_write(path->dentry, path->mnt, SABPF_HOOK_FILE_CHMOD, 0);
}
