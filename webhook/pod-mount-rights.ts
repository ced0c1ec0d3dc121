// Mount rights of a pod's containers. Path rules name paths, and a container
// that may mount can give a protected file a path that no rule names (a
// bind mount, or a detached open_tree(2) mount). The enforcer does not hook
// mounts, so the webhook warns when a container that enforce-mode path rules
// confine is privileged or adds CAP_SYS_ADMIN.
// NOTE: a container that can create a user namespace can mount too. Whether
// it can depends on its seccomp profile and on the node's settings, so that
// case is documented in docs/design.md instead of warned about.

import { policyKey } from '../compiler/types.js';
import { describeContainer } from './pod-containers.js';
import type { SelectedContainer } from './pod-entrypoints.js';

interface RawContainer {
  name?: unknown;
  securityContext?: { privileged?: unknown; capabilities?: { add?: unknown } };
}

/** Capability names that grant CAP_SYS_ADMIN, as Kubernetes spells them. */
const MOUNT_CAPABILITIES = new Set(['SYS_ADMIN', 'CAP_SYS_ADMIN', 'ALL']);

function rawContainers(pod: Readonly<Record<string, unknown>>, init: boolean): RawContainer[] {
  const spec = (pod.spec ?? {}) as { containers?: unknown; initContainers?: unknown };
  const list = init ? spec.initContainers : spec.containers;
  return Array.isArray(list) ? (list as RawContainer[]) : [];
}

/** Reasons a container may mount, empty when it may not. */
function mountReasons(raw: RawContainer | undefined): string[] {
  const context = raw?.securityContext;
  const reasons: string[] = [];
  if (context?.privileged === true) reasons.push('is privileged');
  const added = context?.capabilities?.add;
  if (Array.isArray(added) && added.some((cap) => typeof cap === 'string' && MOUNT_CAPABILITIES.has(cap.toUpperCase()))) {
    reasons.push('adds CAP_SYS_ADMIN');
  }
  return reasons;
}

/** Returns one warning per container that enforce-mode path rules confine and that may mount. */
export function checkMountRights(
  pod: Readonly<Record<string, unknown>>,
  podName: string,
  selected: readonly SelectedContainer[],
): string[] {
  const warnings: string[] = [];
  for (const { container, policies } of selected) {
    const confining = policies.filter((policy) => policy.spec.mode === 'enforce' && (policy.spec.file || policy.spec.exec));
    if (confining.length === 0) continue;

    const raw = rawContainers(pod, container.init).find((c) => c.name === container.container);
    const reasons = mountReasons(raw);
    if (reasons.length === 0) continue;

    warnings.push(
      `${describeContainer(container)} of pod ${podName} ${reasons.join(' and ')}, so it may mount and reach files under paths ` +
        `that the path rules of ${confining.map(policyKey).join(', ')} do not name; drop privileged and CAP_SYS_ADMIN to keep those rules whole`,
    );
  }
  return warnings;
}
