// Policy selection for a container: Kubernetes label selector semantics
// (all requirements must hold) plus the optional container names.

import type { LabelSelector, Policy } from './types.js';

/** A container as the compiler and enforcer see it. */
export interface ContainerRef {
  namespace: string;
  pod: string;
  container: string;
  labels: Record<string, string>;
}

export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const requirement of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, requirement.key);
    const value = labels[requirement.key];
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        if (!has || !values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

export function policySelects(policy: Policy, container: ContainerRef): boolean {
  if (policy.namespace !== container.namespace) return false;
  if (policy.spec.containers && !policy.spec.containers.includes(container.container)) return false;
  return selectorMatches(policy.spec.selector, container.labels);
}

/**
 * Returns the policies that select a container, sorted by namespace/name.
 * The sort makes every later step independent of the order policies arrived in.
 */
export function selectPolicies(policies: readonly Policy[], container: ContainerRef): Policy[] {
  return policies
    .filter((p) => policySelects(p, container))
    .sort((a, b) => (a.namespace === b.namespace ? compare(a.name, b.name) : compare(a.namespace, b.namespace)));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
