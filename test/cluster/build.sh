#!/usr/bin/env bash
# Builds the test control plane binaries (kube-apiserver, kubectl, etcd, opa)
# from the Go module proxy into ${SABPF_CACHE:-$HOME/.cache/sabpf}/bin.
#
# Usage:
#   test/cluster/build.sh                 build every missing binary
#   test/cluster/build.sh NAME...         build only these (kube-apiserver kubectl etcd opa)
#   test/cluster/build.sh --print-paths   print NAME=PATH lines and exit
#
# A binary already in the cache is skipped, so a second run takes seconds.
# The cache file name carries the version taken from the wrapper module's
# go.mod (see paths.sh), so bumping the version there makes this script rebuild.
# Each binary is built into a temporary file, checked to report the expected
# version, then renamed into place, so an interrupted build never leaves a
# file that later runs would mistake for a finished one.
set -euo pipefail

# shellcheck source=paths.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/paths.sh"

if [[ "${1:-}" == "--print-paths" ]]; then
	for name in $(cluster_bin_names); do
		echo "$name=$(cluster_bin_path "$name")"
	done
	exit 0
fi

if ! command -v go >/dev/null 2>&1; then
	echo "failed to build the test control plane: go is not on PATH; install Go 1.26 or newer" >&2
	exit 1
fi

# The machine's own toolchain builds everything. A go.mod that requires a
# newer one fails the build instead of fetching a toolchain unannounced.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# Pure Go builds: static binaries that do not depend on the host's libc.
export CGO_ENABLED=0

# The committed go.sum files are the source of truth, so a stale one fails
# the build instead of being rewritten.
export GOFLAGS="-mod=readonly -buildvcs=false"

# Go package to build for each binary, inside its wrapper module.
cluster_bin_package() {
	case "$1" in
	kube-apiserver) echo k8s.io/kubernetes/cmd/kube-apiserver ;;
	kubectl) echo k8s.io/kubernetes/cmd/kubectl ;;
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	opa) echo github.com/open-policy-agent/opa ;;
	esac
}

# Prints the ldflags for one binary. Kubernetes reads its version from
# variables that its release tooling sets at link time (hack/lib/version.sh).
# Without them the server reports v0.0.0-master.
cluster_bin_ldflags() {
	local name="$1" version="$2" flags="-s -w"
	case "$name" in
	kube-apiserver | kubectl)
		local minor pkg build_date
		minor="$(echo "$version" | cut -d. -f2)"
		build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
			flags+=" -X $pkg.gitVersion=$version"
			flags+=" -X $pkg.gitMajor=1"
			flags+=" -X $pkg.gitMinor=$minor"
			flags+=" -X $pkg.gitTreeState=archive"
			flags+=" -X $pkg.buildDate=$build_date"
		done
		;;
	opa)
		# Points the update check of `opa run` and `opa version -c` at a closed
		# loopback port: tests must never send traffic off this machine.
		flags+=" -X github.com/open-policy-agent/opa/internal/versioncheck.ExternalServiceURL=http://127.0.0.1:9"
		;;
	esac
	echo "$flags"
}

cluster_bin_tags() {
	case "$1" in
	# Enables `opa eval -t wasm` (wazero, pure Go), as upstream release builds do,
	# so compiled policies can be cross-checked against the wasm runtime.
	opa) echo opa_wasm ;;
	*) echo "" ;;
	esac
}

# Prints the version the built binary reports, for the check before install.
cluster_bin_reported_version() {
	local name="$1" file="$2"
	case "$name" in
	kube-apiserver) "$file" --version ;;
	kubectl) "$file" version --client ;;
	etcd) "$file" --version ;;
	opa) "$file" version ;;
	esac
}

build_one() {
	local name="$1" version out dir module tmp started elapsed reported
	version="$(cluster_bin_version "$name")"
	out="$(cluster_bin_path "$name")"

	if [[ -x "$out" ]]; then
		echo "$name $version: cached at $out"
		return 0
	fi

	read -r dir module < <(cluster_bin_module "$name")
	mkdir -p "$(dirname "$out")"
	tmp="$(mktemp "$out.tmp.XXXXXX")"
	# Removes the partial binary if the build fails or is interrupted.
	trap 'rm -f "$tmp"' EXIT

	echo "building $name $version ... (first build takes several minutes)"
	started="$(date +%s)"
	(
		cd "$dir"
		nice -n 10 go build -trimpath \
			-tags "$(cluster_bin_tags "$name")" \
			-ldflags "$(cluster_bin_ldflags "$name" "$version")" \
			-o "$tmp" "$(cluster_bin_package "$name")"
	)
	elapsed=$(($(date +%s) - started))

	# The version check catches a build whose ldflags did not take (a
	# kube-apiserver reporting v0.0.0-master) before it lands in the cache.
	reported="$(cluster_bin_reported_version "$name" "$tmp" 2>&1 || true)"
	if [[ "$reported" != *"${version#v}"* ]]; then
		echo "failed to verify $name: built binary reports '$reported', expected version $version" >&2
		exit 1
	fi

	mv -f "$tmp" "$out"
	trap - EXIT
	echo "built $name $version in ${elapsed}s: $out"
}

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
	read -r -a names <<<"$(cluster_bin_names)"
fi

# One at a time: each Go build already uses every core.
for name in "${names[@]}"; do
	cluster_bin_module "$name" >/dev/null
	build_one "$name"
done
