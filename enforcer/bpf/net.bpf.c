// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Network hooks: socket_connect and socket_bind for TCP and UDP over IPv4
 * and IPv6, socket_sendmsg for the sends that name their destination,
 * socket_create for raw and packet sockets. Included by sabpf.bpf.c, not an
 * object of its own.
 *
 * Not checked, by design of the hook set: unix sockets and other families
 * (no addresses to match), and protocols other than TCP, MPTCP and UDP on
 * inet sockets (ping sockets, SCTP: allowed).
 */
#include <bpf/bpf_endian.h>

#include "event.h"

#define SABPF_SOCK_TYPE_MASK 0xf /* type bits of socket(2)'s type argument */
#define SABPF_MSG_FASTOPEN 0x20000000 /* MSG_FASTOPEN: sendto(2) connects a TCP socket */
#define SABPF_SIN6_MIN_LEN 24	 /* SIN6_LEN_RFC2133: what the kernel accepts */

/* An address and port in the form the net rules are keyed by. */
struct sabpf_sockaddr {
	__u8 addr[16]; /* IPv6, or IPv4 mapped to ::ffff:a.b.c.d */
	__u16 port;    /* host byte order */
	__u8 family;
	__u8 pad;
};

/*
 * Reads the sockaddr of a connect, bind or send. Returns -1 for what the
 * kernel itself rejects or that carries no address (AF_UNSPEC connect
 * disconnects): those are allowed. On an IPv4 socket, bind(2) and UDP sends
 * take an AF_UNSPEC address as AF_INET (INADDR_ANY, or the address given),
 * so unspec_is_inet reads it as AF_INET then.
 */
static __always_inline int sabpf_read_sockaddr(struct sockaddr *address, int addrlen,
					       __u16 sk_family, int unspec_is_inet,
					       struct sabpf_sockaddr *out)
{
	struct sockaddr_in6 sin6 = {};
	struct sockaddr_in sin = {};
	__u16 family = 0;

	bpf_probe_read_kernel(&family, sizeof(family), &address->sa_family);
	if (family == 0 && unspec_is_inet && sk_family == AF_INET)
		family = AF_INET;

	/* The kernel copied the sockaddr into a sockaddr_storage: reads stay inside it. */
	if (family == AF_INET) {
		if (addrlen < (int)sizeof(sin))
			return -1;
		bpf_probe_read_kernel(&sin, sizeof(sin), address);
		out->addr[10] = 0xff;
		out->addr[11] = 0xff;
		__builtin_memcpy(&out->addr[12], &sin.sin_addr.s_addr, 4);
		out->port = bpf_ntohs(sin.sin_port);
		out->family = AF_INET;
		return 0;
	}
	if (family == AF_INET6) {
		if (addrlen < SABPF_SIN6_MIN_LEN)
			return -1;
		bpf_probe_read_kernel(&sin6, SABPF_SIN6_MIN_LEN, address);
		__builtin_memcpy(out->addr, &sin6.sin6_addr, 16);
		out->port = bpf_ntohs(sin6.sin6_port);
		out->family = AF_INET6;
		return 0;
	}
	return -1;
}

/* The other addresses an operation on the unspecified address reaches. */
#define SABPF_ALSO_LOOPBACK4 1 /* ::ffff:127.0.0.1 */
#define SABPF_ALSO_LOOPBACK6 2 /* ::1 */
#define SABPF_ALSO_ANY4 4      /* ::ffff:0.0.0.0 */
#define SABPF_ALSO_V6ONLY 8    /* none: a bind to :: that IPV6_V6ONLY keeps off IPv4 */

/*
 * Returns the other addresses an operation on the unspecified address
 * reaches, a bit each (SABPF_ALSO_*), because its rules must judge them too.
 * The kernel sends 0.0.0.0 to 127.0.0.1, or to the socket's source address
 * when it has one (ip_route_output_key_hash_rcu). It sends :: to ::1, or to
 * 127.0.0.1 from an IPv6 socket bound to an IPv4-mapped address
 * (tcp_v6_connect, ip6_datagram_connect, udpv6_sendmsg). A bind to :: without
 * IPV6_V6ONLY also takes 0.0.0.0 (inet6_bind).
 */
static __always_inline __u32 sabpf_also_addresses(struct sock *sk, __u32 op, const __u8 *addr)
{
	__u32 w0 = 0, w1 = 0, w2 = 0, w3 = 0;

	__builtin_memcpy(&w0, &addr[0], 4);
	__builtin_memcpy(&w1, &addr[4], 4);
	__builtin_memcpy(&w2, &addr[8], 4);
	__builtin_memcpy(&w3, &addr[12], 4);
	if (w0 || w1 || w3)
		return 0;
	if (op == SABPF_NET_CONNECT) {
		if (w2 == bpf_htonl(0xffff))
			return SABPF_ALSO_LOOPBACK4;
		if (w2 == 0)
			return SABPF_ALSO_LOOPBACK4 | SABPF_ALSO_LOOPBACK6;
		return 0;
	}
	if (w2 != 0)
		return 0;
	return BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_ipv6only) ? SABPF_ALSO_V6ONLY
									      : SABPF_ALSO_ANY4;
}

/* ORs the masks of every port block of net node prefix that holds port. */
static __always_inline void sabpf_add_ports(__u32 slot, const struct sabpf_net_prefix *prefix,
					    __u16 port, struct sabpf_verdict *v)
{
	struct sabpf_port_key key = {.slot = slot, .net_id = prefix->id};
	struct sabpf_verdict *block;
	__u32 n;

#pragma unroll
	for (n = 0; n <= 16; n++) {
		if (!(prefix->port_plen_mask & (1u << n)))
			continue;
		key.plen = n;
		key.port_prefix = n ? (__u32)port >> (16 - n) : 0;
		block = bpf_map_lookup_elem(&sabpf_ports, &key);
		if (block) {
			v->deny |= block->deny;
			v->audit |= block->audit;
			v->allow |= block->allow;
		}
	}
}

/*
 * Folds the masks for another address the operation reaches into v. A policy
 * denies if it denies any address, and allows or audits by rule only if it
 * does so for every address, so an extra address can only deny more.
 */
static __always_inline void sabpf_also_check(__u32 slot, struct sabpf_net_key *key, __u16 port,
					     struct sabpf_verdict *v)
{
	struct sabpf_verdict other = {};
	struct sabpf_net_prefix *prefix;
	__u32 ruled;

	prefix = bpf_map_lookup_elem(&sabpf_net_prefixes, key);
	if (prefix)
		sabpf_add_ports(slot, prefix, port, &other);
	ruled = (v->allow | v->audit) & (other.allow | other.audit);
	v->deny |= other.deny;
	v->audit = (v->audit | other.audit) & ruled;
	v->allow = ruled;
}

/* Records a network decision; flags are SABPF_EVENT_* bits to add. */
static __always_inline void sabpf_net_event(__u32 hook, const struct sabpf_outcome *o, __u32 op,
					    __u8 proto, const struct sabpf_sockaddr *a, __u32 flags)
{
	struct sabpf_run *run = sabpf_run_get();
	struct sabpf_event *e;

	/* No path was walked in this run: the executable must be walked afresh. */
	if (run)
		sabpf_run_start(run);
	e = bpf_ringbuf_reserve(&sabpf_events, sizeof(*e), 0);
	if (!e) {
		sabpf_count(SABPF_COUNTER_EVENTS_DROPPED);
		return;
	}
	sabpf_event_fill(e, hook, o, run);
	e->flags |= flags;
	e->net_op = op;
	e->proto = proto;
	e->family = a->family;
	e->port = a->port;
	__builtin_memcpy(e->addr, a->addr, sizeof(e->addr));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline struct sabpf_config *sabpf_config_of(struct socket *sock)
{
#ifdef SABPF_GLOBAL
	__u64 cgid;

	return sabpf_config_current(&cgid);
#else
	return sabpf_config_socket(sock);
#endif
}

/*
 * connect(2) and bind(2) of a TCP or UDP socket, and sends to an address.
 * hook is the config bit that enables the check, event_hook the hook the
 * event names.
 */
static __always_inline int sabpf_check_addr(struct socket *sock, struct sockaddr *address,
					    int addrlen, __u32 op, __u32 hook, __u32 event_hook)
{
	struct sabpf_net_key key = {.prefixlen = 64 + 128};
	struct sabpf_net_prefix *prefix;
	struct sabpf_sockaddr a = {};
	struct sabpf_verdict v = {};
	struct sabpf_config *cfg;
	struct sabpf_outcome o;
	struct sock *sk;
	__u16 sk_family;
	__u16 proto;
	__u32 also;

	/* The container's config. Without one, the attach mode decides. */
	cfg = sabpf_config_of(sock);
	if (!cfg)
		return sabpf_no_config();
	if (!(cfg->hooks & hook))
		return SABPF_ALLOW;

	/*
	 * A socket being connected, bound or sent on always has its sock (the
	 * kernel's own cgroup shim reads it unchecked). The 6.12 verifier, unlike
	 * 6.1's, types socket->sk as possibly NULL and rejects an unchecked load.
	 * So check it, and fail closed on the case that cannot happen.
	 */
	sk = sock->sk;
	if (!sk)
		return SABPF_DENY;

	/* Only TCP and UDP over IPv4 and IPv6 have rules. */
	sk_family = sk->__sk_common.skc_family;
	if (sk_family != AF_INET && sk_family != AF_INET6)
		return SABPF_ALLOW;
	proto = sk->sk_protocol;

	/* An MPTCP socket connects like TCP (and falls back to plain TCP), so TCP rules apply. */
	if (proto == IPPROTO_MPTCP)
		proto = IPPROTO_TCP;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return SABPF_ALLOW;
	if (sabpf_read_sockaddr(address, addrlen, sk_family,
				op == SABPF_NET_BIND || hook == SABPF_HOOK_SOCKET_SENDMSG, &a) < 0)
		return SABPF_ALLOW;

	/* Longest prefix for the address, then its port blocks. */
	key.slot = cfg->slot;
	key.op = op;
	key.proto = proto;
	__builtin_memcpy(key.addr, a.addr, sizeof(key.addr));
	prefix = bpf_map_lookup_elem(&sabpf_net_prefixes, &key);
	if (prefix)
		sabpf_add_ports(cfg->slot, prefix, a.port, &v);

	/* The addresses the unspecified address also reaches (the record keeps the one given). */
	also = sabpf_also_addresses(sk, op, a.addr);
	if (also) {
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		if (also & SABPF_ALSO_ANY4)
			sabpf_also_check(cfg->slot, &key, a.port, &v);
		key.addr[12] = 127;
		key.addr[15] = 1;
		if (also & SABPF_ALSO_LOOPBACK4)
			sabpf_also_check(cfg->slot, &key, a.port, &v);
		key.addr[10] = 0;
		key.addr[11] = 0;
		key.addr[12] = 0;
		if (also & SABPF_ALSO_LOOPBACK6)
			sabpf_also_check(cfg->slot, &key, a.port, &v);
	}

	/* Decide, record, answer. */
	o = sabpf_decide(cfg, SABPF_SECTION_NETWORK, &v, 0);
	if (o.kind != SABPF_OUTCOME_ALLOW)
		sabpf_net_event(event_hook, &o, op, proto, &a,
				also & SABPF_ALSO_V6ONLY ? SABPF_EVENT_V6ONLY : 0);
	return sabpf_verdict_of(&o);
}

SABPF_LSM(socket_connect)
int BPF_PROG(sabpf_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
	return sabpf_check_addr(sock, address, addrlen, SABPF_NET_CONNECT,
				SABPF_HOOK_SOCKET_CONNECT, SABPF_HOOK_SOCKET_CONNECT);
}

SABPF_LSM(socket_bind)
int BPF_PROG(sabpf_socket_bind, struct socket *sock, struct sockaddr *address, int addrlen)
{
	return sabpf_check_addr(sock, address, addrlen, SABPF_NET_BIND, SABPF_HOOK_SOCKET_BIND,
				SABPF_HOOK_SOCKET_BIND);
}

/*
 * sendmsg(2) and sendto(2) that name a destination: a UDP datagram, which
 * needs no connect(2), and a TCP Fast Open send (MSG_FASTOPEN), which
 * connects without socket_connect. Both are judged by the connect rules and
 * recorded as connects. A TCP send without MSG_FASTOPEN ignores its address,
 * so it is not checked. The cheap checks come before the config lookup:
 * most sends name no address.
 */
SABPF_LSM(socket_sendmsg)
int BPF_PROG(sabpf_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size)
{
	struct sockaddr *name = msg->msg_name;
	int namelen = msg->msg_namelen;
	struct sock *sk = sock->sk;
	__u16 proto;

	if (!name || namelen <= 0)
		return SABPF_ALLOW;

	/* NULL only to the verifier; sabpf_check_addr fails closed on it. */
	proto = sk ? sk->sk_protocol : IPPROTO_UDP;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_MPTCP) && !(msg->msg_flags & SABPF_MSG_FASTOPEN))
		return SABPF_ALLOW;
	return sabpf_check_addr(sock, name, namelen, SABPF_NET_CONNECT, SABPF_HOOK_SOCKET_SENDMSG,
				SABPF_HOOK_SOCKET_CONNECT);
}

/*
 * socket(2): raw IPv4/IPv6 sockets and packet sockets, which bypass the
 * connect and bind checks. Sockets the kernel makes for itself are skipped.
 */
SABPF_LSM(socket_create)
int BPF_PROG(sabpf_socket_create, int family, int type, int protocol, int kern)
{
	struct sabpf_sockaddr a = {.family = family};
	const struct sabpf_verdict *v;
	struct sabpf_config *cfg;
	struct sabpf_outcome o;
	__u64 cgid;

	/* Only user sockets of the raw and packet kinds have rules. */
	if (kern)
		return SABPF_ALLOW;
	if (family != AF_INET && family != AF_INET6 && family != AF_PACKET)
		return SABPF_ALLOW;
	if (family != AF_PACKET && (type & SABPF_SOCK_TYPE_MASK) != SOCK_RAW)
		return SABPF_ALLOW;

	/* The container's config. Without one, the attach mode decides. */
	cfg = sabpf_config_current(&cgid);
	if (!cfg)
		return sabpf_no_config();
	if (!(cfg->hooks & SABPF_HOOK_SOCKET_CREATE))
		return SABPF_ALLOW;

	/* Decide on the config's raw or packet masks, record, answer. */
	v = family == AF_PACKET ? &cfg->packet_socket : &cfg->raw_socket;
	o = sabpf_decide(cfg, SABPF_SECTION_NETWORK, v, 0);
	if (o.kind != SABPF_OUTCOME_ALLOW)
		sabpf_net_event(SABPF_HOOK_SOCKET_CREATE, &o, 0, type & SABPF_SOCK_TYPE_MASK, &a, 0);
	return sabpf_verdict_of(&o);
}
