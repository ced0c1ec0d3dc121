#!/usr/bin/env bash
# Install the Debian packages the VM harness needs, only those missing.
# Safe to run on every `make test`: it prints nothing and touches nothing when
# all are present.
set -euo pipefail

packages=(
  qemu-system-x86 # the VM itself, with virtio-9p shares
  busybox-static  # the guest's userland
  cpio            # packs the initramfs
  xz-utils        # unpacks vmlinux from vmlinuz (xz up to 6.1)
  zstd            # unpacks the 6.12 vmlinux; initramfs.sh reads .ko.zst modules
  binutils        # readelf (PVH note check), objcopy (BTF extraction)
  bpftool         # vmlinux.h from BTF; also copied into the guest for debugging
  clang           # BPF programs (-target bpf) and the probe loader
  libc6-dev       # static link of the probe loader
  libbpf-dev
  libelf-dev
  zlib1g-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "failed to install ${missing[*]}: apt-get needs root; run test/vm/deps.sh as root" >&2
  exit 1
fi

echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
