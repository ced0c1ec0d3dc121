#!/usr/bin/env bash
# Fetch a Debian kernel for the VM tests, once, into the cache. Prints the
# path of the image to boot on stdout; everything else goes to stderr.
#
# Usage: kernel.sh [LINE]
#   6.1   (default) bookworm's linux-image-amd64: BPF_LSM_CGROUP, bpf_loop.
#         Every VM test boots it.
#   5.10  bullseye's linux-image-amd64: BPF LSM and BTF, but neither
#         BPF_LSM_CGROUP (6.0) nor bpf_loop (5.17). The tests of the legacy
#         global object boot it. Its package lists come from a private apt
#         directory in the cache, so the host's sources stay untouched.
#   6.12  bookworm-security's linux-image-6.12-amd64, the kernel of Debian 13:
#         a later verifier, and the LSM hooks as they are after 6.1 (its BTF
#         has file_truncate, which 6.1's lacks).
#
# The image booted is not vmlinuz but the ELF vmlinux unpacked from it. QEMU
# starts an ELF kernel through its PVH entry point, which skips the BIOS boot
# path and the xz decompressor, both slow under TCG. With a minimal initramfs,
# boot to poweroff measured about 7 s from vmlinuz and about 3 s from vmlinux.
# The ELF also carries the kernel's .BTF section, which vmlinux-h.sh reads
# without booting.
#
# The cache layout is part of the harness contract (initramfs.sh and
# vmlinux-h.sh read it). <dir> is "kernel" for 6.1 and "kernel-<line>" for
# the others:
#   $SABPF_CACHE/vm/<dir>/          the extracted linux-image deb
#   $SABPF_CACHE/vm/<dir>/KVER      the kernel release string, e.g. 6.1.0-57-amd64
#   $SABPF_CACHE/vm/<dir>/vmlinux   the unpacked ELF kernel
set -euo pipefail

line="${1:-6.1}"
cache="${SABPF_CACHE:-$HOME/.cache/sabpf}/vm"
case "$line" in
  6.1) kdir="$cache/kernel" ;;
  5.10 | 6.12) kdir="$cache/kernel-$line" ;;
  *)
    echo "failed to pick a kernel: unknown line '$line'; use 6.1, 5.10 or 6.12" >&2
    exit 2
    ;;
esac

if [[ -s "$kdir/KVER" && -s "$kdir/vmlinux" ]]; then
  echo "$kdir/vmlinux"
  exit 0
fi

# apt options for the 5.10 line: bullseye and its security suite, with lists
# kept in the cache. The host's keyring already trusts bullseye's keys.
apt_opts=()
if [[ "$line" == 5.10 ]]; then
  aptdir="$cache/apt-bullseye"
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache"
  printf '%s\n' \
    'deb http://deb.debian.org/debian bullseye main' \
    'deb http://deb.debian.org/debian-security bullseye-security main' >"$aptdir/sources.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$aptdir/sources.list" -o Dir::Etc::sourceparts=/nonexistent
    -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache")
fi

# A meta package (linux-image-amd64, or linux-image-6.12-amd64) only depends
# on the versioned image, and apt-get download needs the versioned name.
# Before the first update, apt-cache fails, and the empty result triggers the
# update.
meta=linux-image-amd64
if [[ "$line" == 6.12 ]]; then
  meta=linux-image-6.12-amd64
fi
resolve_pkg() {
  { apt-cache "${apt_opts[@]}" depends "$meta" 2>/dev/null || true; } | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
pkg="$(resolve_pkg)"
if [[ -z "$pkg" ]]; then
  apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root update -qq >&2
  pkg="$(resolve_pkg)"
fi
if [[ -z "$pkg" ]]; then
  fix="run apt-get update"
  if [[ "$line" == 6.12 ]]; then
    fix="the host's apt sources need bookworm-security (deb http://deb.debian.org/debian-security bookworm-security main), then apt-get update"
  fi
  echo "failed to resolve the $line kernel package: apt-cache depends $meta names no linux-image-<version>-amd64; $fix" >&2
  exit 1
fi

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/download.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# apt's sandbox user _apt cannot enter a cache under /root. apt then falls
# back to downloading as root with a warning, so ask for root directly.
download() {
  echo "downloading $pkg" >&2
  (cd "$tmp" && apt-get "${apt_opts[@]}" download -qq -o APT::Sandbox::User=root "$pkg" >&2)
}
# Lists older than the archive name a version it has already dropped (the
# security suite keeps only the newest): update once and resolve again.
if ! download; then
  apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root update -qq >&2
  pkg="$(resolve_pkg)"
  download
fi
kver="${pkg#linux-image-}"
deb="$(ls "$tmp"/*.deb)"

# Extract beside the final directory and rename, so an interrupted run never
# leaves a half-extracted kernel that the check above would accept.
dpkg-deb -x "$deb" "$tmp/root"
if [[ ! -f "$tmp/root/boot/vmlinuz-$kver" ]]; then
  echo "failed to extract $pkg: $tmp/root/boot/vmlinuz-$kver is missing" >&2
  exit 1
fi

# bzImage is a boot stub followed by the compressed ELF: xz up to Debian's
# 6.1, zstd in its 6.12. The setup header says where the stream starts and
# how long it is (payload_offset and payload_length, counted from the end of
# the setup sectors), and the build appends the ELF's size as the stream's
# last 4 bytes. So exactly the stream is decompressed, and the result is
# checked against that size: a truncated kernel is never cached.
vmlinuz="$tmp/root/boot/vmlinuz-$kver"
le32() { od -An -tu4 -j "$1" -N4 "$vmlinuz" | tr -d ' '; }
setup_sects="$(od -An -tu1 -j $((0x1f1)) -N1 "$vmlinuz" | tr -d ' ')"
if [[ "$setup_sects" == 0 ]]; then
  setup_sects=4
fi
start=$(((setup_sects + 1) * 512 + $(le32 $((0x248)))))
stream_bytes=$(($(le32 $((0x24c))) - 4))
elf_bytes="$(le32 $((start + stream_bytes)))"
magic="$(od -An -tx1 -j "$start" -N4 "$vmlinuz" | tr -d ' ')"
case "$magic" in
  fd377a58) decompress=(xz -dcq) ;;
  28b52ffd) decompress=(zstd -dcq) ;;
  *)
    echo "failed to unpack $vmlinuz: the stream at byte $start starts with $magic, neither xz nor zstd; teach kernel.sh the kernel's compressor (CONFIG_KERNEL_* in its config)" >&2
    exit 1
    ;;
esac
if ! command -v "${decompress[0]}" >/dev/null; then
  echo "failed to unpack $vmlinuz: ${decompress[0]} is not installed; run test/vm/deps.sh" >&2
  exit 1
fi
head -c $((start + stream_bytes)) "$vmlinuz" | tail -c "$stream_bytes" | "${decompress[@]}" >"$tmp/root/vmlinux"
if [[ "$(stat -c %s "$tmp/root/vmlinux")" != "$elf_bytes" ]]; then
  echo "failed to unpack $vmlinuz: got $(stat -c %s "$tmp/root/vmlinux") bytes, the image says $elf_bytes" >&2
  exit 1
fi
if ! notes="$(readelf -n "$tmp/root/vmlinux" 2>/dev/null)"; then
  echo "failed to unpack $vmlinuz: the stream at byte $start does not hold an ELF kernel" >&2
  exit 1
fi
# binutils 2.40 prints this note as "Unknown note type: (0x00000012)", and
# later releases may name it PHYS32_ENTRY.
if ! grep -qE '\(0x00000012\)|PHYS32_ENTRY' <<<"$notes"; then
  echo "failed to find the PVH entry note (Xen note 0x12) in the unpacked vmlinux: QEMU cannot boot it directly; the kernel needs CONFIG_PVH=y" >&2
  exit 1
fi

echo "$kver" >"$tmp/root/KVER"
rm -rf "$kdir"
mv "$tmp/root" "$kdir"

echo "$kdir/vmlinux"
