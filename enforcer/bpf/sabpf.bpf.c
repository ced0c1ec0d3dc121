// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The one sabpf object: every hook family in one ELF so that all programs
 * share one set of maps without cross-object pinning rules. Built twice by
 * the Makefile: sabpf.bpf.o (lsm_cgroup, kernel 6.0+) and, with
 * -DSABPF_GLOBAL, sabpf-global.bpf.o (lsm, for kernels without
 * BPF_LSM_CGROUP). The programs use bpf_loop, so both need kernel 5.17+.
 */
#include "file.bpf.c"
#include "link.bpf.c"
#include "exec.bpf.c"
#include "net.bpf.c"

char LICENSE[] SEC("license") = "GPL";
