// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The one sabpf object: every hook family in one ELF so that all programs
 * share one set of maps without cross-object pinning rules. The Makefile
 * builds it three times:
 *   sabpf.bpf.o         lsm_cgroup, kernel 6.0+
 *   sabpf-global.bpf.o  -DSABPF_GLOBAL: lsm, 5.17+, for kernels without BPF_LSM_CGROUP
 *   sabpf-legacy.bpf.o  -DSABPF_GLOBAL -DSABPF_LEGACY: lsm, 5.8+, without bpf_loop (loop.h)
 */
#include "file.bpf.c"
#include "link.bpf.c"
#include "rename.bpf.c"
#include "path_write.bpf.c"
#include "exec.bpf.c"
#include "net.bpf.c"

char LICENSE[] SEC("license") = "GPL";

/*
 * Which build this is (enum sabpf_variant), for tools that inspect a loaded
 * object. It also keeps .rodata's BTF section from being empty: clang puts
 * struct initializers there without naming them, and the 5.10 kernel
 * rejects a BTF data section with no variables.
 */
#if defined(SABPF_LEGACY)
const volatile __u32 sabpf_variant = SABPF_VARIANT_LEGACY;
#elif defined(SABPF_GLOBAL)
const volatile __u32 sabpf_variant = SABPF_VARIANT_GLOBAL;
#else
const volatile __u32 sabpf_variant = SABPF_VARIANT_CGROUP;
#endif
