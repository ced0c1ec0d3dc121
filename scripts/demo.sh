#!/usr/bin/env bash
# The sabpf walkthrough. Part 1 runs the CLI on the example policies:
# validate, compile and explain, with no cluster. Part 2 runs the same
# policies on a Kubernetes node: a real kube-apiserver on this machine and a
# QEMU VM with BPF LSM as the node (test/e2e/full/demo.ts narrates it).
# Run through `make demo`, which builds the project, the cluster binaries and
# the VM kernel first. Exits non-zero as soon as a step does not behave as
# narrated.
set -uo pipefail
cd "$(dirname "$0")/.."

sabpf() { node dist/cli/main.js "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# show EXPECTED ARGS...: runs sabpf ARGS, prints its exit status, and stops
# the demo when the status is not the expected one.
show() {
  local expected=$1 status
  shift
  printf '$ sabpf %s\n' "$*"
  sabpf "$@"
  status=$?
  printf '(exit %s)\n' "$status"
  if [[ $status -ne $expected ]]; then
    echo "The demo stopped: sabpf $1 exited $status, expected $expected." >&2
    exit 1
  fi
}

# Part 2 needs the BPF objects, the addon and the cluster binaries. Name the
# target that builds a missing one rather than failing inside the VM.
require() {
  if [[ ! -e $1 ]]; then
    echo "failed to find $1: run $2 first (make demo does)" >&2
    exit 1
  fi
}
require dist/test/e2e/full/demo.js 'make build-ts'
require enforcer/bpf/sabpf.bpf.o 'make build-bpf'
require enforcer/native/build/Release/sabpf.node 'make build-native'
for bin in kube-apiserver kubectl etcd opa; do
  require "$(bash test/cluster/paths.sh "$bin")" 'make cluster-bins'
done

echo 'Part 1: the sabpf command line on the example policies (no cluster).'

step "1. Validate the example policies (policies/examples/)"
show 0 validate policies/examples/*.yaml

step "2. A broken policy is rejected with every problem, its line and its fix"
show 1 validate test/unit/corpus/invalid/38-many-errors-at-once.yaml

step "3. Compile: the program the nginx container of policies/pods/web.yaml gets"
show 0 compile policies/examples/*.yaml --pod policies/pods/web.yaml

# explain exits 0 for an allowed operation and 3 for a denied one.
step "4. Explain decisions, exactly as the kernel programs will take them"
show 3 explain --policies policies/examples/protect-host-credentials.yaml --policies policies/examples/read-only-etc.yaml \
  --pod policies/pods/web.yaml --container nginx --op open:/etc/shadow:read
show 3 explain --policies policies/examples/nginx-exec-allow-list.yaml --policies policies/examples/block-package-managers.yaml \
  --pod policies/pods/web.yaml --container nginx --op exec:/usr/bin/apt-get
show 0 explain --policies policies/examples/egress-to-database-only.yaml --pod policies/pods/checkout.yaml \
  --op connect:tcp:[::ffff:10.20.0.7]:5432
show 3 explain --policies policies/examples/egress-to-database-only.yaml --pod policies/pods/checkout.yaml \
  --op connect:tcp:203.0.113.9:443

node dist/test/e2e/full/demo.js --first-step 5
