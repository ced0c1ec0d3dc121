#!/bin/sh
# Guest side of the Kubernetes node scenario (test/e2e/full, make demo and
# bench/propagation): this VM is the node "vm-node". It runs the enforcer in
# Kubernetes mode and the test kubelet against the API server on the host,
# reached only through QEMU's forward at 10.0.2.100:6443, until the host
# creates /sabpf/stop. It asserts nothing: the host does, from kubectl.
#
# Inputs the host wrote into the run share before boot (/sabpf/in):
#   enforcer.kubeconfig   token of ServiceAccount sabpf-system/sabpf-enforcer
#   kubelet.kubeconfig    token of ServiceAccount sabpf-system/sabpf-test-kubelet
#   signing-public-key.pem, ca.crt
#   apiserver-port        the API server's port on the host's loopback, which
#                         the guest must not reach except through the forward
# Environment: SABPF_E2E_AUDIT_DIR, the enforcer's audit trail (default
# $SABPF_OUT/audit, which the host reads while the VM runs). A trail kept
# elsewhere is copied to $SABPF_OUT/audit once the enforcer stopped.
#
# Console markers, one line each, for the host: "SABPF-E2E network-isolated"
# (or "network-reached <address> <port>"), "SABPF-E2E enforcer-ready",
# "SABPF-E2E node-ready", "SABPF-E2E enforcer-stopped rc=N" and
# "SABPF-E2E failed <reason>".
set -u
IN=/sabpf/in
OUT=$SABPF_OUT
ROOT=$SABPF_SHARE
NODE=vm-node
AUDIT_DIR=${SABPF_E2E_AUDIT_DIR:-$OUT/audit}

mark() { echo "SABPF-E2E $*"; }

fail() {
  mark "failed $*"
  exit 1
}

# wait_for_log FILE TEXT PID: waits until FILE contains TEXT, or fails when PID exits first.
wait_for_log() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || return 1
    i=$((i + 1))
    # About 5 minutes: a node start under TCG takes seconds, a hung one forever.
    [ $i -lt 3000 ] || return 1
    sleep 0.1
  done
}

# The forward lives on QEMU's user network 10.0.2.0/24; without a NIC the
# VM was started without runInVm's network option.
nic=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
[ -n "$nic" ] || fail "no network interface: start the VM with runInVm's network option"
ip link set "$nic" up || fail "could not bring up $nic"
ip addr add 10.0.2.15/24 dev "$nic" || fail "could not add 10.0.2.15/24 to $nic"

# QEMU's restrict=on must leave the forward as the only destination. Without
# it, the gateway 10.0.2.2 leads to the host's loopback, where the API server
# listens on its own port, so that connection must be refused. (QEMU's DNS
# address is not probed: without restrict=on it would relay off the host.)
host_port=$(cat $IN/apiserver-port)
if echo | nc -w 3 10.0.2.2 "$host_port" >/dev/null 2>&1; then
  mark "network-reached 10.0.2.2 $host_port"
else
  mark network-isolated
fi

# Files the scenario's policies protect, and the benchmark's target.
mkdir -p /srv/secret /srv/data /srv/bench "$OUT/pods"
echo s3cret >/srv/secret/key
echo data >/srv/data/a
echo bench >/srv/bench/target

node "$ROOT/dist/cli/main.js" enforce --kubernetes --node-name $NODE \
  --kubeconfig $IN/enforcer.kubeconfig --cgroup-layout flat \
  --signing-public-key $IN/signing-public-key.pem --audit-dir "$AUDIT_DIR" \
  --metrics-port 9464 >"$OUT/enforcer.log" 2>&1 &
ENFORCER=$!
wait_for_log "$OUT/enforcer.log" '"msg":"initial sync done"' $ENFORCER || fail "the enforcer did not finish its initial sync; see enforcer.log"
mark enforcer-ready

node "$ROOT/dist/test/e2e/full/guest-kubelet.js" --kubeconfig $IN/kubelet.kubeconfig --node-name $NODE \
  --pods-dir "$OUT/pods" --enforcer-log "$OUT/enforcer.log" >"$OUT/kubelet.log" 2>&1 &
KUBELET=$!
wait_for_log "$OUT/kubelet.log" '"msg":"watching pods"' $KUBELET || fail "the test kubelet did not start; see kubelet.log"
mark node-ready

while [ ! -e /sabpf/stop ]; do
  kill -0 $ENFORCER 2>/dev/null || fail "the enforcer exited; see enforcer.log"
  sleep 0.2
done

# The enforcer's counters of the whole run, for reading a failure or a benchmark.
wget -q -O "$OUT/enforcer-metrics.txt" http://127.0.0.1:9464/metrics || mark "failed to read the enforcer's metrics"

# Pods first, so the enforcer handles the end of their containers before it stops.
kill -TERM $KUBELET
wait $KUBELET
mark "kubelet-stopped rc=$?"
kill -TERM $ENFORCER
wait $ENFORCER
rc=$?
mark "enforcer-stopped rc=$rc"
if [ "$AUDIT_DIR" != "$OUT/audit" ]; then
  cp -r "$AUDIT_DIR" "$OUT/audit" || mark "failed to copy the audit trail from $AUDIT_DIR"
fi
exit $rc
