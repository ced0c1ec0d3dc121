#!/usr/bin/env bash
# Where the test control plane binaries live, without needing Go installed.
#
# Usage:
#   test/cluster/paths.sh              prints NAME=PATH for every binary
#   test/cluster/paths.sh NAME         prints the path of one binary
#   source test/cluster/paths.sh       defines cluster_bin_names, cluster_bin_version,
#                                      cluster_bin_module, cluster_bin_path
#
# The version of each binary is read from the go.mod of its wrapper module
# under test/cluster/build/, so bumping a version there is the only edit
# needed: the cache path changes with it and build.sh rebuilds.
#
# Invariant: a path printed here names a file that build.sh only ever creates
# by an atomic rename of a finished, version-checked binary.

cluster_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cluster_cache="${SABPF_CACHE:-$HOME/.cache/sabpf}"

cluster_bin_names() {
	echo kube-apiserver kubectl etcd opa
}

# Prints "WRAPPER_DIR MODULE_PATH" for a binary name.
cluster_bin_module() {
	case "$1" in
	kube-apiserver | kubectl) echo "$cluster_dir/build/kubernetes k8s.io/kubernetes" ;;
	etcd) echo "$cluster_dir/build/etcd go.etcd.io/etcd/server/v3" ;;
	opa) echo "$cluster_dir/build/opa github.com/open-policy-agent/opa" ;;
	*)
		echo "failed to resolve binary $1: unknown name, expected one of: $(cluster_bin_names)" >&2
		return 1
		;;
	esac
}

cluster_bin_version() {
	local dir module version
	read -r dir module < <(cluster_bin_module "$1") || return 1

	# Matches both "require M vX" and a "M vX" line inside a require block.
	# The version pattern skips the bare module path in the tool block.
	version="$(awk -v m="$module" '
		$1 == "require" && $2 == m && $3 ~ /^v[0-9]/ { print $3; exit }
		$1 == m && $2 ~ /^v[0-9]/ { print $2; exit }
	' "$dir/go.mod")"

	if [[ -z "$version" ]]; then
		echo "failed to read the version of $module from $dir/go.mod: no require line for it" >&2
		return 1
	fi
	echo "$version"
}

cluster_bin_path() {
	local version
	version="$(cluster_bin_version "$1")" || return 1
	echo "$cluster_cache/bin/$1-$version"
}

# Run as a script (not sourced): print the paths.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -euo pipefail
	if [[ $# -gt 0 ]]; then
		for name in "$@"; do
			cluster_bin_path "$name"
		done
	else
		for name in $(cluster_bin_names); do
			echo "$name=$(cluster_bin_path "$name")"
		done
	fi
fi
