// SPDX-License-Identifier: GPL-2.0
// Smoke-test program for the VM harness: in the cgroup it is attached to,
// opening any file whose last path component is "secret" fails with EPERM.
// It proves that BPF_LSM_CGROUP programs load, attach per cgroup and decide
// on the booted kernel, independently of the enforcer's real programs.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define DENIED_NAME "secret"

// One slot: how many opens this program denied. The test compares it with
// the number of denials it caused, so an EPERM from anything else is caught.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} denials SEC(".maps");

// lsm_cgroup programs return 1 to allow and 0 to deny; the kernel turns 0
// into -EPERM for the hooked syscall.
SEC("lsm_cgroup/file_open")
int BPF_PROG(deny_secret_open, struct file *file)
{
  const char denied[] = DENIED_NAME;
  char name[sizeof(denied) + 1] = {};
  const unsigned char *dname = BPF_CORE_READ(file, f_path.dentry, d_name.name);
  long len = bpf_probe_read_kernel_str(name, sizeof(name), dname);

  // The read length counts the NUL, so a longer name such as "secrets" reads
  // sizeof(denied) + 1 bytes and never matches.
  if (len != sizeof(denied)) {
    return 1;
  }
  for (int i = 0; i < sizeof(denied); i++) {
    if (name[i] != denied[i]) {
      return 1;
    }
  }

  __u32 key = 0;
  __u64 *count = bpf_map_lookup_elem(&denials, &key);
  if (count) {
    __sync_fetch_and_add(count, 1);
  }
  return 0;
}
