#!/usr/bin/env bash
# The sabpf walkthrough on the example policies: validate, compile and explain.
# Needs no cluster. Run through `make demo`, which builds the project first.
set -uo pipefail
cd "$(dirname "$0")/.."

sabpf() { node dist/cli/main.js "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ sabpf %s\n' "$*"; sabpf "$@"; printf '(exit %s)\n' "$?"; }

step "1. Validate the example policies (policies/examples/)"
show validate policies/examples/*.yaml

step "2. A broken policy is rejected with every problem, its line and its fix"
show validate test/unit/corpus/invalid/38-many-errors-at-once.yaml

step "3. Compile: the program the nginx container of policies/pods/web.yaml gets"
show compile policies/examples/*.yaml --pod policies/pods/web.yaml

step "4. Explain decisions, exactly as the kernel programs will take them"
show explain --policies policies/examples/protect-host-credentials.yaml --policies policies/examples/read-only-etc.yaml \
  --pod policies/pods/web.yaml --container nginx --op open:/etc/shadow:read
show explain --policies policies/examples/nginx-exec-allow-list.yaml --policies policies/examples/block-package-managers.yaml \
  --pod policies/pods/web.yaml --container nginx --op exec:/usr/bin/apt-get
show explain --policies policies/examples/egress-to-database-only.yaml --pod policies/pods/checkout.yaml \
  --op connect:tcp:[::ffff:10.20.0.7]:5432
show explain --policies policies/examples/egress-to-database-only.yaml --pod policies/pods/checkout.yaml \
  --op connect:tcp:203.0.113.9:443
