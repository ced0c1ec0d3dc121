// SPDX-License-Identifier: Apache-2.0
/*
 * sabpf-probe: one system call per run, with its errno on stdout, so a
 * guest scenario can tell EPERM (a BPF denial) from any other failure.
 * Built statically on the host (hooks.test.ts) and run inside the VM:
 *
 *   sabpf-probe [-c CGROUP_DIR] OP ARGS...
 *     -c DIR                    join the cgroup first (write to DIR/cgroup.procs)
 *     open PATH r|w|rw|t        open(2); t is O_RDONLY | O_TRUNC
 *     open-many N PATH r|w|rw   open(2) N times; prints "denied K" (K opens
 *                               failed with EPERM), exit 1 on any other error
 *     open-until STOP PATH r|w|rw  open(2) until the file STOP exists; prints
 *                               "opens N denied K", exit 1 on any other error
 *     openat DIR NAME r|w|rw    openat(2) relative to an fd of DIR
 *     deep N NAME r|w|rw|c      chdir N levels down a chain of "a" directories
 *                               (made as needed), then open(2) NAME there; c creates
 *     exec PATH [ARGS...]       execve(2); prints only on failure
 *     link OLD NEW              link(2): a hard link NEW to the file OLD
 *     rename OLD NEW            rename(2)
 *     exchange OLD NEW          renameat2(2) with RENAME_EXCHANGE
 *     create PATH               open(2) with O_RDONLY | O_CREAT (mode 0644)
 *     mknod PATH                mknod(2) of a fifo
 *     mkdir PATH | rmdir PATH | unlink PATH
 *     symlink TARGET PATH       symlink(2): PATH pointing to TARGET
 *     truncate PATH             truncate(2) to 0 bytes
 *     chmod PATH                chmod(2) to 0666
 *     connect ADDR PORT tcp|udp|mptcp  connect(2); ADDR is IPv4 or IPv6 (may be mapped)
 *     bind ADDR PORT tcp|udp    bind(2)
 *     bind-v6only ADDR PORT tcp|udp  bind(2) of an IPv6 socket with IPV6_V6ONLY set
 *     connect-from SRC ADDR PORT  bind(2) a TCP socket to SRC (port 0), then connect(2)
 *     sendto ADDR PORT          sendto(2) of one byte from an unconnected UDP socket
 *     sendto-unspec ADDR PORT   the same from an IPv4 socket, with the address's family AF_UNSPEC
 *     tfo ADDR PORT             sendto(2) of one byte with MSG_FASTOPEN from a new TCP socket
 *     chroot DIR PATH r|w|rw    chroot(2) to DIR, then open(2) PATH inside it
 *     raw4 | raw6 | packet      socket(2) of a raw IPv4/IPv6 or packet socket
 *
 * Output: "ok" or "errno N NAME"; exit status 0 or 1 (2 for usage errors).
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup_join.h"

#ifndef AF_PACKET
#define AF_PACKET 17
#endif

/* open(2) and close(2) once; counts EPERM in *denied, -1 on any other error. */
static int open_counting(const char *path, int flags, long *denied)
{
	int fd = open(path, flags);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EPERM)
		return -1;
	(*denied)++;
	return 0;
}

static int report(int rc)
{
	if (rc < 0) {
		int err = errno;
		printf("errno %d %s\n", err, strerror(err));
		return 1;
	}
	printf("ok\n");
	return 0;
}

static int open_flags(const char *mode)
{
	if (!strcmp(mode, "r"))
		return O_RDONLY;
	if (!strcmp(mode, "w"))
		return O_WRONLY;
	if (!strcmp(mode, "rw"))
		return O_RDWR;
	if (!strcmp(mode, "c"))
		return O_WRONLY | O_CREAT;
	if (!strcmp(mode, "t"))
		return O_RDONLY | O_TRUNC;
	fprintf(stderr, "sabpf-probe: mode must be r, w, rw, c or t, not %s\n", mode);
	exit(2);
}

/* Fills a sockaddr_in6 or sockaddr_in from text; returns its length. */
static socklen_t parse_addr(const char *text, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(atoi(port));
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(atoi(port));
		return sizeof(*sin6);
	}
	fprintf(stderr, "sabpf-probe: not an IPv4 or IPv6 address: %s\n", text);
	exit(2);
}

static int net(const char *op, const char *addr, const char *port, const char *proto)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(addr, port, &ss);
	int type = !strcmp(proto, "udp") ? SOCK_DGRAM : SOCK_STREAM;
	int protocol = !strcmp(proto, "mptcp") ? 262 /* IPPROTO_MPTCP */ : 0;
	int fd = socket(ss.ss_family, type, protocol);

	if (fd < 0)
		return report(fd);
	if (!strcmp(op, "connect"))
		return report(connect(fd, (struct sockaddr *)&ss, len));
	if (!strcmp(op, "bind-v6only")) {
		int on = 1;

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
			return report(-1);
		return report(bind(fd, (struct sockaddr *)&ss, len));
	}
	if (!strcmp(op, "sendto-unspec")) {
		/* udp_sendmsg takes AF_UNSPEC as AF_INET on an IPv4 socket. */
		((struct sockaddr_in *)&ss)->sin_family = AF_UNSPEC;
		return report(sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) < 0 ? -1 : 0);
	}
	if (!strcmp(op, "sendto") || !strcmp(op, "tfo"))
		return report(sendto(fd, "x", 1, !strcmp(op, "tfo") ? MSG_FASTOPEN : 0, (struct sockaddr *)&ss, len) < 0 ? -1 : 0);
	return report(bind(fd, (struct sockaddr *)&ss, len));
}

/* A TCP connect from a socket bound first to src: the kernel reads "::" by the bound family. */
static int connect_from(const char *src, const char *addr, const char *port)
{
	struct sockaddr_storage from, to;
	socklen_t from_len = parse_addr(src, "0", &from);
	socklen_t to_len = parse_addr(addr, port, &to);
	int fd = socket(to.ss_family, SOCK_STREAM, 0);

	if (fd < 0)
		return report(fd);
	if (bind(fd, (struct sockaddr *)&from, from_len) < 0) {
		fprintf(stderr, "sabpf-probe: failed to bind to %s: %s\n", src, strerror(errno));
		exit(2);
	}
	return report(connect(fd, (struct sockaddr *)&to, to_len));
}

static void join_cgroup(const char *dir)
{
	if (sabpf_join_cgroup(dir) < 0) {
		fprintf(stderr, "sabpf-probe: failed to join cgroup %s: %s\n", dir, strerror(errno));
		exit(2);
	}
}

int main(int argc, char **argv)
{
	const char *op;

	if (argc > 2 && !strcmp(argv[1], "-c")) {
		join_cgroup(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc < 2)
		goto usage;
	op = argv[1];

	if (!strcmp(op, "open") && argc == 4)
		return report(open(argv[2], open_flags(argv[3])));
	if (!strcmp(op, "open-until") && argc == 5) {
		long opens = 0, denied = 0;

		for (; access(argv[2], F_OK) != 0; opens++)
			if (open_counting(argv[3], open_flags(argv[4]), &denied) < 0)
				return report(-1);
		printf("opens %ld denied %ld\n", opens, denied);
		return 0;
	}
	if (!strcmp(op, "open-many") && argc == 5) {
		long n = atol(argv[2]), denied = 0;

		for (long i = 0; i < n; i++)
			if (open_counting(argv[3], open_flags(argv[4]), &denied) < 0)
				return report(-1);
		printf("denied %ld\n", denied);
		return 0;
	}
	if (!strcmp(op, "chroot") && argc == 5) {
		if (chroot(argv[2]) < 0 || chdir("/") < 0)
			return report(-1);
		return report(open(argv[3], open_flags(argv[4])));
	}
	if (!strcmp(op, "openat") && argc == 5) {
		int dir = open(argv[2], O_RDONLY | O_DIRECTORY);
		if (dir < 0)
			return report(dir);
		return report(openat(dir, argv[3], open_flags(argv[4])));
	}
	if (!strcmp(op, "deep") && argc == 5) {
		/* Relative steps: the absolute name may be longer than PATH_MAX. */
		for (int i = atoi(argv[2]); i > 0; i--) {
			if (mkdir("a", 0755) < 0 && errno != EEXIST)
				return report(-1);
			if (chdir("a") < 0)
				return report(-1);
		}
		return report(open(argv[3], open_flags(argv[4]), 0644));
	}
	if (!strcmp(op, "exec") && argc >= 3) {
		execv(argv[2], &argv[2]);
		return report(-1);
	}
	if ((!strcmp(op, "sendto") || !strcmp(op, "sendto-unspec")) && argc == 4)
		return net(op, argv[2], argv[3], "udp");
	if (!strcmp(op, "tfo") && argc == 4)
		return net(op, argv[2], argv[3], "tcp");
	if ((!strcmp(op, "connect") || !strcmp(op, "bind") || !strcmp(op, "bind-v6only")) && argc == 5)
		return net(op, argv[2], argv[3], argv[4]);
	if (!strcmp(op, "connect-from") && argc == 5)
		return connect_from(argv[2], argv[3], argv[4]);
	if (!strcmp(op, "raw4"))
		return report(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
	if (!strcmp(op, "link") && argc == 4)
		return report(link(argv[2], argv[3]));
	if (!strcmp(op, "rename") && argc == 4)
		return report(rename(argv[2], argv[3]));
	/* Through syscall(2): older C libraries have no renameat2 wrapper. 2 is RENAME_EXCHANGE. */
	if (!strcmp(op, "exchange") && argc == 4)
		return report((int)syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], 2));
	if (!strcmp(op, "create") && argc == 3)
		return report(open(argv[2], O_RDONLY | O_CREAT, 0644));
	if (!strcmp(op, "mknod") && argc == 3)
		return report(mknod(argv[2], S_IFIFO | 0644, 0));
	if (!strcmp(op, "mkdir") && argc == 3)
		return report(mkdir(argv[2], 0755));
	if (!strcmp(op, "rmdir") && argc == 3)
		return report(rmdir(argv[2]));
	if (!strcmp(op, "unlink") && argc == 3)
		return report(unlink(argv[2]));
	if (!strcmp(op, "symlink") && argc == 4)
		return report(symlink(argv[2], argv[3]));
	if (!strcmp(op, "truncate") && argc == 3)
		return report(truncate(argv[2], 0));
	if (!strcmp(op, "chmod") && argc == 3)
		return report(chmod(argv[2], 0666));
	if (!strcmp(op, "raw6"))
		return report(socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6));
	if (!strcmp(op, "packet"))
		return report(socket(AF_PACKET, SOCK_RAW, 0));

usage:
	fprintf(stderr, "usage: sabpf-probe [-c CGROUP_DIR] open|openat|deep|exec|link|rename|exchange|create|mknod|mkdir|rmdir|unlink|symlink|truncate|chmod|connect|bind|raw4|raw6|packet ARGS...\n");
	return 2;
}
