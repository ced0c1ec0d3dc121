#!/usr/bin/env bash
# Compiles the admission rules to WebAssembly for the webhook:
#   policies/admission/require_policy.wasm  (git-ignored)
# The webhook evaluates the entrypoint sabpf/admission/deny, a set of
# violation messages. opa comes from the test control plane cache; build it
# with `test/cluster/build.sh opa` if this script reports it missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
opa="$(bash "$repo/test/cluster/paths.sh" opa)"

if [[ ! -x "$opa" ]]; then
	echo "failed to find opa at $opa: build it with test/cluster/build.sh opa" >&2
	exit 1
fi

# The tests run first, so a broken rule never reaches the wasm file.
"$opa" check --strict "$here"
"$opa" test "$here" >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Only the rules go into the bundle: the tests are not part of the policy.
"$opa" build -t wasm -e sabpf/admission/deny --ignore '*_test.rego' \
	"$here/require_policy.rego" -o "$work/bundle.tar.gz"
# The bundle stores the module as /policy.wasm. -P keeps the name as it is,
# which is safe because -O writes the member to stdout, not to that path.
tar -xzPOf "$work/bundle.tar.gz" /policy.wasm >"$work/policy.wasm"

# Renamed into place so a webhook reading the file never sees half of it.
# Mode 0644 because the webhook runs as a non-root user.
install -m 0644 "$work/policy.wasm" "$here/require_policy.wasm.tmp"
mv "$here/require_policy.wasm.tmp" "$here/require_policy.wasm"
echo "built $here/require_policy.wasm"
