#!/bin/sh
# /init of the test VM (busybox ash). It prepares the mounts an enforcer
# expects on a Kubernetes node, mounts the two 9p shares, runs the script the
# host left in the run share, records its exit status and powers off.
#
# Contract with run.ts (keep both sides in step):
#   kernel command line  sabpf.share=<path>   where to mount the read-only tag "share"
#   tag "run"            mounted read-write at /sabpf. It contains script.sh (from
#                        the host), out/ (the script's output dir) and exit-code
#   console markers      "SABPF-SCRIPT-START", "SABPF-EXIT <status>" so the host
#                        still gets the status when the run share is unusable
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

fail() {
  echo "sabpf-init: $*"
  echo "SABPF-EXIT 255"
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "failed to mount cgroup2 at /sys/fs/cgroup"
mount -t bpf bpffs /sys/fs/bpf || fail "failed to mount bpffs at /sys/fs/bpf"
mount -t securityfs securityfs /sys/kernel/security || fail "failed to mount securityfs"
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# Child cgroups only get the controllers that the root delegates, and an
# enforcer test that sets memory or pids limits on a "container" cgroup needs
# them.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done

ip link set lo up

# Modules are listed by initramfs.sh in dependency order.
while read -r ko; do
  [ -n "$ko" ] && insmod "$ko" 2>&1 | grep -v 'File exists'
done </etc/sabpf-modules

share=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    sabpf.share=*) share="${arg#sabpf.share=}" ;;
  esac
done

mkdir -p /sabpf
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 run /sabpf ||
  fail "failed to mount the run share (9p tag run) at /sabpf"
if [ -n "$share" ]; then
  mkdir -p "$share"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro share "$share" ||
    fail "failed to mount the project share (9p tag share) at $share"
fi

export SABPF_SHARE="$share"
export SABPF_OUT=/sabpf/out
mkdir -p "$SABPF_OUT"
cd "${share:-/}" || fail "failed to enter $share"

echo "SABPF-SCRIPT-START"
if [ -f /sabpf/script.sh ]; then
  sh /sabpf/script.sh </dev/null
  status=$?
else
  echo "sabpf-init: no /sabpf/script.sh in the run share"
  status=255
fi

echo "$status" >/sabpf/exit-code
sync
echo "SABPF-EXIT $status"
poweroff -f
