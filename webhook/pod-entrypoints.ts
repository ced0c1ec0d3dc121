// Entrypoint checks for a pod: a container whose command[0] an enforce-mode
// policy denies could never start, so the pod is rejected at admission with
// the policy and rule instead of failing later in CrashLoopBackOff.

import type { PodContainer } from '../cli/pod.js';
import { decide } from '../compiler/decide.js';
import { normalizePattern } from '../compiler/paths.js';
import { policyKey, type Policy } from '../compiler/types.js';
import { describeContainer } from './pod-containers.js';

export interface SelectedContainer {
  container: PodContainer;
  /** Policies selecting the container, sorted by selectPolicies. */
  policies: readonly Policy[];
}

export interface EntrypointResult {
  /** One line per denied entrypoint: `[ns/policy] container "x" command /p: ...`. */
  violations: string[];
  /** Containers whose entrypoint cannot be checked at admission. */
  warnings: string[];
}

export function checkEntrypoints(pod: string, selected: readonly SelectedContainer[]): EntrypointResult {
  const result: EntrypointResult = { violations: [], warnings: [] };

  for (const { container, policies } of selected) {
    // Only an enforce-mode exec section can stop the entrypoint.
    const confining = policies.filter((policy) => policy.spec.mode === 'enforce' && policy.spec.exec);
    if (confining.length === 0) continue;
    const names = confining.map(policyKey).join(', ');
    const subject = `${describeContainer(container)} of pod ${pod}`;

    const command = container.command[0];
    if (command === undefined) {
      result.warnings.push(
        `${subject} has no command, so its image's ENTRYPOINT cannot be checked against the exec rules of ${names} at admission; ` +
          'set command to the absolute path of the entrypoint to have it checked',
      );
      continue;
    }
    if (!command.startsWith('/')) {
      result.warnings.push(
        `${subject} has the relative command "${command}", which only the image's PATH resolves, ` +
          `so it cannot be checked against the exec rules of ${names} at admission; use an absolute path to have it checked`,
      );
      continue;
    }
    const normalized = normalizePattern(command, false);
    if (!normalized.ok) {
      result.warnings.push(`${subject} has the command "${command}", which cannot be checked at admission: ${normalized.problem}`);
      continue;
    }

    // Deciding over the confining policies alone gives the same enforced
    // deny, and names the same policy: an enforced deny comes from an
    // enforce-mode policy, and confining keeps the namespace/name order.
    const decision = decide(confining, { kind: 'exec', path: normalized.pattern.path });
    if (!decision.enforced || decision.policy === undefined) continue;
    const policy = confining.find((p) => policyKey(p) === decision.policy);
    result.violations.push(
      `[${decision.policy}] ${subject}: the entrypoint ${command} is denied by ${denyingRule(policy, decision.rule, decision)}`,
    );
  }
  return result;
}

function denyingRule(policy: Policy | undefined, ruleId: string | undefined, decision: ReturnType<typeof decide>): string {
  if (ruleId === undefined || ruleId === 'posture') {
    return 'spec.exec.posture (deny) because no rule of the policy allows it; add an allow rule for it or use another command';
  }
  const rule = policy?.spec.exec?.rules.find((r) => r.id === ruleId);
  const name = rule?.name !== undefined ? ` "${rule.name}"` : '';
  const matched = decision.perPolicy.find((p) => p.policy === decision.policy)?.matched;
  const pattern = matched !== undefined ? ` (matches ${matched})` : '';
  return `${ruleId}${name}${pattern}; use another command or change the policy`;
}
