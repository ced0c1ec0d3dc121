// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * A rename race against the directory cache (enforcer/bpf/dir_cache.h). A
 * file renamed from one directory to another while a check of it walks
 * must not leave the new directory's state cached under the old one. An
 * earlier version of the cache did: it read the target's d_parent before
 * the rename_lock counter, so a rename between the two reads stored
 * OTHER_DIR's rules under VICTIM_DIR, for every later check there.
 *
 * Openers check a file again and again through an O_PATH descriptor, which
 * follows the file wherever it is renamed, while the main thread moves the
 * file into VICTIM_DIR and out to OTHER_DIR. After each move out it checks
 * VICTIM, a file in VICTIM_DIR that is never renamed. With no rename since,
 * only an entry of VICTIM_DIR that contains OTHER_DIR's rules can change
 * the result of checking VICTIM. The loop stops at the first change, so
 * that such an entry outlives the helper (until the next rename or mount,
 * or its time to live).
 *
 *   sabpf-race [-x] [-r] -c CGROUP_DIR VICTIM_DIR OTHER_DIR VICTIM ITERATIONS OPENERS [UID]
 *
 * -x: the exec table. Checks are execveat() of a file that has no binary
 *     format: the hook runs, then the kernel returns ENOEXEC (allowed) or
 *     EPERM (denied), and the caller's process stays, so no fork is needed.
 * -r: VICTIM starts allowed, and a change is a denial (an allowed access
 *     made to fail). Without -r, VICTIM starts denied and a change is an
 *     allowed open or exec.
 * UID: drop root after joining the cgroup. In a sticky VICTIM_DIR (mode
 *     1777) with a VICTIM owned by another user, the helper can then move
 *     only its own file, never VICTIM: it checks that first, so a success
 *     cannot come from moving VICTIM out (renames are not checked).
 *
 * The moving file is OTHER_DIR/f at the start.
 * Output: one line "iterations=N checks=N changed=0|1 at=N".
 * Exit 0 when VICTIM's result never changed, 3 when it did, 2 on setup errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup_join.h"

static atomic_int stop;
static atomic_long checks;
static int exec_table;
static int path_fd;
static char proc_path[64];

static char *const no_args[] = {"sabpf-race-target", NULL};
static char *const no_env[] = {NULL};

static void join_cgroup(const char *dir)
{
	if (sabpf_join_cgroup(dir) < 0) {
		fprintf(stderr, "sabpf-race: failed to join cgroup %s: %s\n", dir, strerror(errno));
		exit(2);
	}
}

/*
 * Checks the moving file once: 0 allowed, EPERM denied, another errno for
 * anything else. An exec of a file without a binary format fails with
 * ENOEXEC after the hook allowed it, before the point of no return.
 */
static int check_moving(void)
{
	int fd;

	if (exec_table) {
		syscall(SYS_execveat, path_fd, "", no_args, no_env, AT_EMPTY_PATH);
		return errno == ENOEXEC ? 0 : errno;
	}
	fd = open(proc_path, O_RDONLY);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* Checks a path the same way. */
static int check_path(const char *path)
{
	int fd;

	if (exec_table) {
		execve(path, no_args, no_env);
		return errno == ENOEXEC ? 0 : errno;
	}
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* Each check of the moving file is one run of the hook that may fill an entry. */
static void *checker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		check_moving();
		atomic_fetch_add(&checks, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char in_victim_dir[4096], in_other_dir[4096];
	int reverse = 0, n_checkers, start_result, result, i, opt;
	long iterations, done, at = -1;
	const char *cgroup = NULL;
	pthread_t threads[8];

	while ((opt = getopt(argc, argv, "+xrc:")) != -1) {
		if (opt == 'x')
			exec_table = 1;
		else if (opt == 'r')
			reverse = 1;
		else if (opt == 'c')
			cgroup = optarg;
		else
			cgroup = NULL, optind = argc + 1;
	}
	if (!cgroup || (argc - optind != 5 && argc - optind != 6)) {
		fprintf(stderr, "usage: sabpf-race [-x] [-r] -c CGROUP_DIR VICTIM_DIR OTHER_DIR VICTIM ITERATIONS OPENERS [UID]\n");
		return 2;
	}
	argv += optind;
	argc -= optind;
	iterations = atol(argv[3]);
	n_checkers = atoi(argv[4]);
	if (n_checkers < 1 || n_checkers > 8) {
		fprintf(stderr, "sabpf-race: failed to parse OPENERS %s: expected 1 to 8\n", argv[4]);
		return 2;
	}
	snprintf(in_victim_dir, sizeof(in_victim_dir), "%s/f", argv[0]);
	snprintf(in_other_dir, sizeof(in_other_dir), "%s/f", argv[1]);
	join_cgroup(cgroup);

	if (argc == 6) {
		char moved[4096];
		uid_t uid = (uid_t)atoi(argv[5]);

		if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0) {
			fprintf(stderr, "sabpf-race: failed to drop to uid %u: %s\n", uid, strerror(errno));
			return 2;
		}

		/* The sticky directory must stop this user from moving the victim. */
		snprintf(moved, sizeof(moved), "%s/victim-moved", argv[1]);
		if (rename(argv[2], moved) == 0) {
			fprintf(stderr, "sabpf-race: failed to see the victim %s pinned: this user could move it to %s\n",
				argv[2], moved);
			return 2;
		}
		fprintf(stderr, "sabpf-race: uid %u cannot move the victim: %s\n", uid, strerror(errno));
	}

	/* O_PATH opens skip file_open: the descriptor only names the file. */
	path_fd = open(in_other_dir, O_PATH);
	if (path_fd < 0) {
		fprintf(stderr, "sabpf-race: failed to open %s with O_PATH: %s\n", in_other_dir, strerror(errno));
		return 2;
	}
	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", path_fd);

	/* The victim's result before the race: without the expected one, a change would mean nothing. */
	start_result = check_path(argv[2]);
	if (start_result != (reverse ? 0 : EPERM)) {
		fprintf(stderr, "sabpf-race: failed to see %s %s before the race: the check gave %s\n",
			argv[2], reverse ? "allowed" : "denied", start_result ? strerror(start_result) : "allowed");
		return 2;
	}

	for (i = 0; i < n_checkers; i++)
		pthread_create(&threads[i], NULL, checker, NULL);

	for (done = 0; done < iterations; done++) {
		if (rename(in_other_dir, in_victim_dir) < 0 || rename(in_victim_dir, in_other_dir) < 0) {
			fprintf(stderr, "sabpf-race: failed to rename %s: %s\n", in_other_dir, strerror(errno));
			break;
		}
		result = check_path(argv[2]);
		if (result != start_result) {
			at = done;
			break; /* keep the entry: no rename after this */
		}
	}

	atomic_store(&stop, 1);
	for (i = 0; i < n_checkers; i++)
		pthread_join(threads[i], NULL);
	printf("iterations=%ld checks=%ld changed=%d at=%ld\n", done, atomic_load(&checks), at >= 0, at);
	return at >= 0 ? 3 : 0;
}
