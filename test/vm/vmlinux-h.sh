#!/usr/bin/env bash
# Write vmlinux.h for CO-RE BPF programs from the BTF of the kernel the VM tests
# boot (Debian 6.1), so the types the programs compile against are the ones
# they are tested on. Usage: vmlinux-h.sh [OUTPUT] (default enforcer/bpf/vmlinux.h).
#
# The BTF comes from the .BTF section of the vmlinux that kernel.sh unpacks.
# It is byte for byte what the guest exposes as /sys/kernel/btf/vmlinux, which
# harness.test.ts checks. It is cached as $SABPF_CACHE/vm/btf-<kver>.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
output="${1:-$root/enforcer/bpf/vmlinux.h}"
cache="${SABPF_CACHE:-$HOME/.cache/sabpf}/vm"

vmlinux="$("$here/kernel.sh")"
kver="$(cat "$cache/kernel/KVER")"
btf="$cache/btf-$kver"

if [[ ! -s "$btf" ]]; then
  objcopy -O binary --only-section=.BTF "$vmlinux" "$btf.tmp"
  if [[ ! -s "$btf.tmp" ]]; then
    rm -f "$btf.tmp"
    echo "failed to extract BTF from $vmlinux: it has no .BTF section; the kernel needs CONFIG_DEBUG_INFO_BTF=y" >&2
    exit 1
  fi
  mv "$btf.tmp" "$btf"
fi

if [[ -s "$output" && "$output" -nt "$btf" ]]; then
  echo "$output"
  exit 0
fi

mkdir -p "$(dirname "$output")"
bpftool btf dump file "$btf" format c >"$output.tmp"
mv "$output.tmp" "$output"
echo "$output"
