// Startup checks: the kernel features enforcement depends on. A missing
// feature is named with what to do about it, and the enforcer exits
// non-zero rather than report enforcement that is not happening.

import { existsSync, readFileSync } from 'node:fs';
import { release, version } from 'node:os';

import { objectVariant, type ObjectVariant } from '../kernel/programs.js';
import {
  defaultPreemptionPaths,
  preemptionProblem,
  readKernelText,
  readPreemptModel,
  type PreemptModel,
  type PreemptionPaths,
} from './preemption.js';

export interface PreflightResult {
  ok: boolean;
  /** One line per missing feature: what is missing and how to fix it. */
  problems: string[];
  kernelRelease: string;
  /** cgroup: BPF_LSM_CGROUP (6.0+); global: lsm/ programs with a per-cgroup lookup (5.8 to 5.19). */
  mode: 'cgroup' | 'global';
  /** The object auto mode loads: cgroup (6.0+), global (5.17+, bpf_loop) or legacy (5.8 to 5.16); undefined before 5.8. */
  object: ObjectVariant | undefined;
  /** The active preemption model, or undefined when no source reported it. */
  preemption: PreemptModel | undefined;
}

export interface PreflightPaths {
  lsm: string;
  btf: string;
  mounts: string;
  preemption: PreemptionPaths;
}

function defaultPaths(kernelRelease: string): PreflightPaths {
  return {
    lsm: '/sys/kernel/security/lsm',
    btf: '/sys/kernel/btf/vmlinux',
    mounts: '/proc/self/mounts',
    preemption: defaultPreemptionPaths(kernelRelease),
  };
}

/**
 * Checks BPF LSM, BTF, cgroup2, bpffs, the kernel version and the
 * preemption model. unameVersion is `uname -v`.
 */
export function preflight(
  kernelRelease: string = release(),
  paths: PreflightPaths = defaultPaths(kernelRelease),
  unameVersion: string = version(),
): PreflightResult {
  const problems: string[] = [];
  const version = /^(\d+)\.(\d+)/u.exec(kernelRelease);
  const major = Number(version?.[1] ?? 0);
  const minor = Number(version?.[2] ?? 0);
  const atLeast = (m: number, n: number): boolean => major > m || (major === m && minor >= n);

  if (!atLeast(5, 8)) {
    problems.push(
      `kernel ${kernelRelease} is older than 5.8, which added the BPF ring buffer that carries sabpf's audit events; upgrade the node's kernel`,
    );
  }

  if (!existsSync(paths.lsm)) {
    problems.push(
      `${paths.lsm} is missing: securityfs is not mounted; mount it with "mount -t securityfs securityfs /sys/kernel/security"`,
    );
  } else {
    const lsms = readFileSync(paths.lsm, 'utf8').trim().split(',');
    if (!lsms.includes('bpf')) {
      problems.push(
        `the BPF LSM is not active (active LSMs: ${lsms.join(',') || 'none'}); add "bpf" to the kernel command line's lsm= list, for example lsm=${[...lsms.filter(Boolean), 'bpf'].join(',')}`,
      );
    }
  }

  if (!existsSync(paths.btf)) {
    problems.push(
      `${paths.btf} is missing: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF), which CO-RE programs need; use a kernel built with BTF`,
    );
  }

  const mounts = existsSync(paths.mounts) ? readFileSync(paths.mounts, 'utf8') : '';
  if (!/^\S+ \/sys\/fs\/cgroup cgroup2 /mu.test(mounts)) {
    problems.push('cgroup v2 is not mounted at /sys/fs/cgroup; boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1)');
  }
  if (!/^\S+ \/sys\/fs\/bpf bpf /mu.test(mounts)) {
    problems.push('bpffs is not mounted at /sys/fs/bpf, so programs cannot be pinned; mount it with "mount -t bpf bpf /sys/fs/bpf"');
  }

  const preemption = readPreemptModel(unameVersion, (path) => readKernelText(path, readFileSync), paths.preemption);
  const unsafePreemption = preemptionProblem(preemption, paths.preemption);
  if (unsafePreemption) problems.push(unsafePreemption);

  const object = atLeast(5, 8) ? objectVariant('auto', kernelRelease) : undefined;
  return {
    ok: problems.length === 0,
    problems,
    kernelRelease,
    mode: atLeast(6, 0) ? 'cgroup' : 'global',
    object,
    preemption: preemption.model,
  };
}
