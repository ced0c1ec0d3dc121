#!/usr/bin/env bash
# Build the harness smoke-test probe into test/vm/out/probe/:
#   secret.bpf.o   CO-RE object compiled against the guest kernel's vmlinux.h
#   probe-loader   static libbpf loader, so it runs in the guest whatever
#                  libraries the initramfs carries
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(cd "$here/.." && pwd)/out/probe"
mkdir -p "$out"

"$here/../vmlinux-h.sh" "$out/vmlinux.h" >/dev/null

clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
  -I"$out" -c "$here/secret.bpf.c" -o "$out/secret.bpf.o"

clang -O2 -g -Wall -Werror -static "$here/loader.c" \
  -lbpf -lelf -lz -o "$out/probe-loader"

echo "$out"
