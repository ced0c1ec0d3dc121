// SPDX-License-Identifier: Apache-2.0
/*
 * sabpf-bench-loop: repeats one hooked operation and reports its rate, so the
 * BPF programs' cost is measured without a runtime's noise.
 *
 *   sabpf-bench-loop [-c CGROUP_DIR] SECONDS OP ARG
 *       Runs OP for SECONDS. Output: "<operations> <seconds> <operations per second>".
 *
 *   sabpf-bench-loop interleave SECONDS BURST_MS OP ARG [-l PROG_PIN:CGROUP_DIR]... SLOT...
 *       Runs OP in every SLOT in turn, BURST_MS at a time, until SECONDS of
 *       measured time. A SLOT is a cgroup directory the process moves into;
 *       "+DIR" means with the -l links attached (each pinned program attached
 *       to its cgroup with BPF_LSM_CGROUP), plain "DIR" with none of them
 *       attached, so that no sabpf trampoline exists at all. Bursts of all
 *       slots alternate every few tens of milliseconds, so a change in the
 *       emulator's speed hits every slot alike. Attaching and detaching take
 *       long under emulation (a trampoline patched in or out), so slots with
 *       one attach state are best listed together: a cycle then toggles
 *       twice. Within each such group, cycle k starts at its slot k mod size.
 *       Not timed: the toggle and one burst of operations after it, the
 *       move, one warm-up batch. Output, one line per burst,
 *       "<slot index> <cycle> <operations> <nanoseconds>", and one per
 *       toggle, "toggle <0 (detach) or 1 (attach)> <nanoseconds>".
 *
 * OP and ARG: open PATH (open(2) + close(2)), exec PATH (fork + execve +
 * wait), connect PORT (UDP socket + connect to 127.0.0.1:PORT + close).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../test/vm/scenarios/cgroup_join.h"

#define MAX_SLOTS 32
#define MAX_LINKS 128

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "sabpf-bench-loop: failed to %s %s: %s\n", what, detail, strerror(errno));
	exit(1);
}

static void join_cgroup(const char *dir)
{
	if (sabpf_join_cgroup(dir) < 0)
		fail("join the cgroup", dir);
}

static void one_open(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		fail("open the target", path);
	close(fd);
}

static void one_exec(const char *path)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		fail("fork for", path);
	if (pid == 0) {
		execl(path, path, (char *)0);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("run the target binary", path);
}

static void one_connect(struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		fail("create a UDP socket", "");
	if (connect(fd, (struct sockaddr *)sin, sizeof(*sin)) < 0)
		fail("connect to", "127.0.0.1");
	close(fd);
}

/* The operation under test, and how many of it run between clock reads. */
struct op {
	const char *name;
	const char *arg;
	struct sockaddr_in sin;
	int batch;
};

static struct op parse_op(const char *name, const char *arg)
{
	struct op op = {.name = name, .arg = arg, .batch = 16};

	op.sin.sin_family = AF_INET;
	op.sin.sin_port = htons(atoi(arg));
	op.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!strcmp(name, "exec"))
		op.batch = 1; /* a fork+exec takes milliseconds under emulation */
	else if (strcmp(name, "open") && strcmp(name, "connect")) {
		fprintf(stderr, "sabpf-bench-loop: unknown operation %s (open, exec or connect)\n", name);
		exit(2);
	}
	return op;
}

static void run_batch(struct op *op)
{
	for (int i = 0; i < op->batch; i++) {
		if (op->name[0] == 'o')
			one_open(op->arg);
		else if (op->name[0] == 'e')
			one_exec(op->arg);
		else
			one_connect(&op->sin);
	}
}

/* Runs batches for at least seconds; returns the operations run and sets *elapsed. */
static unsigned long run_for(struct op *op, double seconds, double *elapsed)
{
	unsigned long ops = 0;
	double start = now();

	do {
		run_batch(op);
		ops += op->batch;
		*elapsed = now() - start;
	} while (*elapsed < seconds);
	return ops;
}

/* One program pinned in bpffs and the cgroup it is attached to in "+" slots. */
struct link {
	int prog_fd;
	int cgroup_fd;
	int link_fd; /* -1 while detached */
};

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static void parse_link(const char *spec, struct link *l)
{
	char pin[4096];
	const char *colon = strchr(spec, ':');
	union bpf_attr attr;

	if (!colon || colon - spec >= (long)sizeof(pin)) {
		fprintf(stderr, "sabpf-bench-loop: -l takes PROG_PIN:CGROUP_DIR, not %s\n", spec);
		exit(2);
	}
	memcpy(pin, spec, colon - spec);
	pin[colon - spec] = 0;
	memset(&attr, 0, sizeof(attr));
	attr.pathname = (__u64)(unsigned long)pin;
	l->prog_fd = bpf(BPF_OBJ_GET, &attr);
	if (l->prog_fd < 0)
		fail("open the pinned program", pin);
	l->cgroup_fd = open(colon + 1, O_RDONLY | O_DIRECTORY);
	if (l->cgroup_fd < 0)
		fail("open the cgroup", colon + 1);
	l->link_fd = -1;
}

/*
 * Attaches or detaches every link. Closing the only fd of an unpinned link
 * detaches it, and with the last link of a hook gone the kernel removes
 * the hook's trampoline.
 */
static int set_attached(struct link *links, int n, int attached)
{
	union bpf_attr attr;
	int changed = 0;

	for (int i = 0; i < n; i++) {
		if (attached && links[i].link_fd < 0) {
			memset(&attr, 0, sizeof(attr));
			attr.link_create.prog_fd = links[i].prog_fd;
			attr.link_create.target_fd = links[i].cgroup_fd;
			attr.link_create.attach_type = BPF_LSM_CGROUP;
			links[i].link_fd = bpf(BPF_LINK_CREATE, &attr);
			if (links[i].link_fd < 0)
				fail("attach a program with", "BPF_LINK_CREATE");
			changed = 1;
		} else if (!attached && links[i].link_fd >= 0) {
			close(links[i].link_fd);
			links[i].link_fd = -1;
			changed = 1;
		}
	}
	return changed;
}

static int interleave(int argc, char **argv)
{
	static struct link links[MAX_LINKS];
	const char *slots[MAX_SLOTS];
	int nlinks = 0, nslots = 0, i;
	double seconds, burst, measured = 0, elapsed;
	struct op op;

	if (argc < 6)
		goto usage;
	seconds = atof(argv[2]);
	burst = atof(argv[3]) / 1000;
	op = parse_op(argv[4], argv[5]);
	for (i = 6; i < argc; i++) {
		if (!strcmp(argv[i], "-l") && i + 1 < argc && nlinks < MAX_LINKS)
			parse_link(argv[++i], &links[nlinks++]);
		else if (nslots < MAX_SLOTS)
			slots[nslots++] = argv[i];
		else
			goto usage;
	}
	if (nslots == 0)
		goto usage;

	for (int cycle = 0; measured < seconds; cycle++) {
		/* Each group of slots with one attach state, starting at cycle mod its size. */
		for (int first = 0; first < nslots;) {
			int attached = slots[first][0] == '+', size = 0;

			while (first + size < nslots && (slots[first + size][0] == '+') == attached)
				size++;
			for (int k = 0; k < size; k++) {
				int s = first + (cycle + k) % size;
				unsigned long ops;
				double start = now();

				/*
				 * Patching a hook's trampoline in or out makes the emulator
				 * retranslate the patched code, and freeing one queues work
				 * for later: let that settle for a burst before timing.
				 */
				if (set_attached(links, nlinks, attached)) {
					printf("toggle %d %.0f\n", attached, (now() - start) * 1e9);
					run_for(&op, burst, &elapsed);
				}
				join_cgroup(attached ? slots[s] + 1 : slots[s]);
				run_batch(&op); /* warm-up after the move, not timed */
				ops = run_for(&op, burst, &elapsed);
				measured += elapsed;
				printf("%d %d %lu %.0f\n", s, cycle, ops, elapsed * 1e9);
			}
			first += size;
		}
	}
	set_attached(links, nlinks, 0);
	return 0;

usage:
	fprintf(stderr, "usage: sabpf-bench-loop interleave SECONDS BURST_MS OP ARG "
			"[-l PROG_PIN:CGROUP_DIR]... [+]CGROUP_DIR...\n");
	return 2;
}

/*
 * Renames DIR/r0 to DIR/r1 and back for SECONDS. Each rename bumps the
 * kernel's rename_lock counter, which invalidates every cached directory
 * state of the sabpf programs: the breakdown's cold rows.
 */
static int churn(const char *seconds, const char *dir)
{
	char a[4096], b[4096];
	double start = now(), limit = atof(seconds);
	unsigned long n = 0;

	/* An earlier run may have left the file at either name. */
	snprintf(a, sizeof(a), "%s/r0", dir);
	snprintf(b, sizeof(b), "%s/r1", dir);
	if (access(a, F_OK) < 0) {
		snprintf(a, sizeof(a), "%s/r1", dir);
		snprintf(b, sizeof(b), "%s/r0", dir);
	}
	while (now() - start < limit) {
		if (rename(n & 1 ? b : a, n & 1 ? a : b) < 0)
			fail("rename", a);
		n++;
	}
	printf("%lu\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	double elapsed;
	unsigned long ops;
	struct op op;

	if (argc > 1 && !strcmp(argv[1], "interleave"))
		return interleave(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "churn"))
		return churn(argv[2], argv[3]);
	if (argc > 2 && !strcmp(argv[1], "-c")) {
		join_cgroup(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: sabpf-bench-loop [-c CGROUP_DIR] SECONDS open|exec|connect PATH|PORT"
				" | churn SECONDS DIR\n");
		return 2;
	}
	op = parse_op(argv[2], argv[3]);
	ops = run_for(&op, atof(argv[1]), &elapsed);
	printf("%lu %.3f %.1f\n", ops, elapsed, ops / elapsed);
	return 0;
}
