// Warnings for policies that are valid but likely to break the containers
// they select. They travel in the AdmissionResponse's warnings, which kubectl
// prints as "Warning: ..." without failing the request.

import { decide } from '../compiler/decide.js';
import { normalizePattern } from '../compiler/paths.js';
import { policySelects } from '../compiler/selector.js';
import type { Policy } from '../compiler/types.js';
import { containersOf, describeContainer, podName } from './pod-containers.js';

/** Entrypoint warnings beyond this many are summed up in one line. */
const MAX_ENTRYPOINT_WARNINGS = 5;

/**
 * Library files the dynamic loader opens first. Debian and Ubuntu images
 * reach /usr/lib after the kernel resolves the merged-/usr symlink /lib, and
 * Alpine's musl loader lives in /lib, so both must stay readable.
 */
const LOADER_PROBES = [
  { directory: '/lib/**', path: '/lib/x86_64-linux-gnu/libc.so.6' },
  { directory: '/usr/lib/**', path: '/usr/lib/x86_64-linux-gnu/libc.so.6' },
];

/** Returns every warning for a validated policy, given the pods of its namespace now. */
export function riskyPolicyWarnings(policy: Policy, pods: readonly Readonly<Record<string, unknown>>[]): string[] {
  return [...entrypointWarnings(policy, pods), ...loaderWarnings(policy), ...listenWarnings(policy)];
}

/** Warns when the policy on its own denies the entrypoint of a container it selects right now. */
export function entrypointWarnings(policy: Policy, pods: readonly Readonly<Record<string, unknown>>[]): string[] {
  if (!policy.spec.exec) return [];

  // Replicas of one workload share a template, so group by container and command.
  const groups = new Map<string, { container: string; command: string; pods: string[]; rule: string }>();
  for (const pod of pods) {
    for (const container of containersOf(pod, policy.namespace)) {
      const command = container.command[0];
      if (command === undefined || !policySelects(policy, container)) continue;
      const normalized = normalizePattern(command, false);
      if (!normalized.ok) continue;

      const decision = decide([policy], { kind: 'exec', path: normalized.pattern.path });
      if (decision.decision !== 'deny') continue;

      const key = `${describeContainer(container)}\0${command}`;
      const group = groups.get(key) ?? { container: describeContainer(container), command, pods: [], rule: ruleLabel(decision.rule) };
      group.pods.push(podName(pod));
      groups.set(key, group);
    }
  }

  const consequence =
    policy.spec.mode === 'enforce'
      ? 'new pods like it will be rejected and a restart of the container will fail to exec'
      : 'every start of the container will be recorded as a denial';
  const warnings = [...groups.values()].slice(0, MAX_ENTRYPOINT_WARNINGS).map((group) => {
    const others = group.pods.length > 1 ? ` (and ${group.pods.length - 1} more pods)` : '';
    return (
      `[${policy.namespace}/${policy.name}] ${group.rule} denies the entrypoint ${group.command} of ${group.container} ` +
      `in pod ${group.pods[0]}${others}, which this policy selects now: ${consequence}; allow ${group.command} in spec.exec.rules`
    );
  });
  if (groups.size > MAX_ENTRYPOINT_WARNINGS) {
    warnings.push(`[${policy.namespace}/${policy.name}] ${groups.size - MAX_ENTRYPOINT_WARNINGS} more containers have a denied entrypoint`);
  }
  return warnings;
}

/** Warns when a file allow-list leaves the shared library directories unreadable. */
export function loaderWarnings(policy: Policy): string[] {
  if (policy.spec.file?.posture !== 'deny') return [];
  const denied = LOADER_PROBES.filter((probe) => decide([policy], { kind: 'open', path: probe.path, access: 'read' }).decision === 'deny');
  if (denied.length === 0) return [];

  const directories = denied.map((probe) => probe.directory).join(' and ');
  return [
    `[${policy.namespace}/${policy.name}] spec.file.posture is deny and no rule allows reading ${directories}: ` +
      'the dynamic loader cannot open shared libraries, so dynamically linked programs fail to start; ' +
      `add a rule with paths [${directories.replace(' and ', ', ')}], access: read, action: allow`,
  ];
}

/** Warns when an enforced network allow-list has no rule that lets the containers listen. */
export function listenWarnings(policy: Policy): string[] {
  const network = policy.spec.network;
  if (policy.spec.mode !== 'enforce' || network?.posture !== 'deny') return [];
  if (network.rules.some((rule) => rule.operation === 'bind' && rule.action !== 'deny')) return [];
  return [
    `[${policy.namespace}/${policy.name}] spec.network.posture is deny in enforce mode and no rule allows bind: ` +
      'the containers cannot open listening sockets, so servers fail to start; ' +
      'add a rule with operation: bind, the ports they listen on, and action: allow',
  ];
}

function ruleLabel(rule: string | undefined): string {
  return rule === undefined || rule === 'posture' ? 'spec.exec.posture (deny)' : rule;
}
