// SPDX-License-Identifier: Apache-2.0
/*
 * sabpf-bench-loop: repeats one hooked operation for a fixed time and prints
 * the rate, so the BPF programs' cost is measured without a runtime's noise.
 *
 *   sabpf-bench-loop [-c CGROUP_DIR] SECONDS open PATH       open(2) + close(2)
 *   sabpf-bench-loop [-c CGROUP_DIR] SECONDS exec PATH       fork + execve + wait
 *   sabpf-bench-loop [-c CGROUP_DIR] SECONDS connect PORT    UDP socket + connect to
 *                                                            127.0.0.1:PORT + close
 * Output: "<operations> <seconds> <operations per second>".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what)
{
	fprintf(stderr, "sabpf-bench-loop: failed to %s: %s\n", what, strerror(errno));
	exit(1);
}

static void join_cgroup(const char *dir)
{
	char path[4096], pid[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	n = snprintf(pid, sizeof(pid), "%d\n", getpid());
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, pid, n) != n)
		fail("join the cgroup");
	close(fd);
}

static void one_open(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		fail("open the target");
	close(fd);
}

static void one_exec(const char *path)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		execl(path, path, (char *)0);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("run the target binary");
}

static void one_connect(struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		fail("create a UDP socket");
	if (connect(fd, (struct sockaddr *)sin, sizeof(*sin)) < 0)
		fail("connect");
	close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	double seconds, start, elapsed;
	unsigned long ops = 0;
	const char *op, *arg;

	if (argc > 2 && !strcmp(argv[1], "-c")) {
		join_cgroup(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: sabpf-bench-loop [-c CGROUP_DIR] SECONDS open|exec|connect PATH|PORT\n");
		return 2;
	}
	seconds = atof(argv[1]);
	op = argv[2];
	arg = argv[3];
	sin.sin_port = htons(atoi(arg));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	/* Check the clock every 16 operations: reading it costs a little too. */
	start = now();
	do {
		for (int i = 0; i < 16; i++) {
			if (!strcmp(op, "open"))
				one_open(arg);
			else if (!strcmp(op, "exec"))
				one_exec(arg);
			else if (!strcmp(op, "connect"))
				one_connect(&sin);
			else {
				fprintf(stderr, "sabpf-bench-loop: unknown operation %s\n", op);
				return 2;
			}
		}
		ops += 16;
		elapsed = now() - start;
	} while (elapsed < seconds);

	printf("%lu %.3f %.1f\n", ops, elapsed, ops / elapsed);
	return 0;
}
