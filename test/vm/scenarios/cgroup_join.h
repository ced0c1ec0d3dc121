/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Moves the calling process into a cgroup2 directory, for the static test
 * and benchmark helpers (probe.c, dir-race.c, bench/kernel/loop.c). Each is
 * built alone with gcc, so this is a header.
 */
#ifndef SABPF_CGROUP_JOIN_H
#define SABPF_CGROUP_JOIN_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* Writes this process's pid to DIR/cgroup.procs. Returns 0, or -1 with errno set. */
static int sabpf_join_cgroup(const char *dir)
{
	char path[4096], pid[32];
	int fd, n, err;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	n = snprintf(pid, sizeof(pid), "%d\n", getpid());
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	errno = 0;
	if (write(fd, pid, n) == n) {
		close(fd);
		return 0;
	}

	/* A short write sets no errno; close must not replace a real one. */
	err = errno ? errno : EIO;
	close(fd);
	errno = err;
	return -1;
}

#endif /* SABPF_CGROUP_JOIN_H */
