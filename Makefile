# sabpf build and test entry points. `make test` runs everything and installs
# what it needs on a fresh Debian machine (apt packages, npm ci, Go builds).

SHELL := /bin/bash
.DEFAULT_GOAL := help

APT_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libc6-dev binutils qemu-system-x86 busybox-static cpio zstd xz-utils openssl iproute2 gcc g++ make python3
NODE_MODULES_STAMP := node_modules/.package-lock.json
MOCHA := npx mocha --color

.PHONY: help deps apt-deps build build-ts build-bpf build-native build-rego cluster-bins lint format \
	test test-unit test-vm test-e2e bench demo clean

help:
	@echo "make demo       run the sabpf walkthrough on the embedded example policies"
	@echo "make test       lint, unit, VM (real kernel) and API-server tests; installs what it needs"
	@echo "make test-unit  unit and property tests (no VM, no cluster)"
	@echo "make test-vm    kernel tests in a QEMU VM (Debian 6.1 kernel with BPF LSM)"
	@echo "make test-e2e   tests against a real kube-apiserver and etcd"
	@echo "make bench      benchmarks (results go to docs/benchmarks.md)"

# Installs missing Debian packages only, so a prepared machine pays nothing.
apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: apt-deps $(NODE_MODULES_STAMP)

build-ts: $(NODE_MODULES_STAMP)
	npx tsc -p tsconfig.json

build: build-ts build-bpf build-native build-rego

build-bpf: apt-deps
	$(MAKE) -C enforcer/bpf

build-native: apt-deps $(NODE_MODULES_STAMP)
	cd enforcer/native && npx node-gyp rebuild --nodedir=/usr --silent

cluster-bins:
	bash test/cluster/build.sh

# Compiles policies/admission/*.rego to wasm with the opa built by cluster-bins (runs opa test first).
build-rego: cluster-bins
	bash policies/admission/build.sh

lint: $(NODE_MODULES_STAMP)
	npx eslint .
	npx prettier --check .

format: $(NODE_MODULES_STAMP)
	npx prettier --write .

test: deps lint test-unit test-vm test-e2e

test-unit: deps build-ts build-native
	$(MOCHA) 'dist/test/unit/**/*.test.js'

test-vm: deps build
	bash test/vm/kernel.sh >/dev/null
	$(MOCHA) --timeout 900000 'dist/test/vm/**/*.test.js'

test-e2e: deps build cluster-bins
	bash test/vm/kernel.sh >/dev/null
	$(MOCHA) --timeout 900000 'dist/test/e2e/**/*.test.js'

bench: deps build cluster-bins
	bash test/vm/kernel.sh >/dev/null
	node dist/bench/compile/run.js
	node dist/bench/admission/run.js
	node dist/bench/kernel/run.js
	node dist/bench/kernel/global-run.js
	node dist/bench/propagation/run.js

demo: deps build cluster-bins
	bash test/vm/kernel.sh >/dev/null
	bash scripts/demo.sh

clean:
	rm -rf dist enforcer/native/build test/vm/out
	-$(MAKE) -C enforcer/bpf clean
