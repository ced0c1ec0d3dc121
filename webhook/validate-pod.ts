// POST /validate/pod: Pod CREATE. A pod is rejected when an enforce-mode
// policy that selects one of its containers denies that container's
// entrypoint, or when the Rego admission rules report a violation (in a
// namespace labelled sabpf.io/require-policy=true, a container that no
// enforce-mode policy selects).

import { selectorMatches, selectPolicies } from '../compiler/selector.js';
import { policyKey } from '../compiler/types.js';
import type { AdmissionRequest, Verdict } from './admission-review.js';
import type { AdmissionRules, RulesInput } from './admission-rules.js';
import type { ClusterView } from './cache/cluster-view.js';
import { containersOf, podName } from './pod-containers.js';
import { checkEntrypoints, type SelectedContainer } from './pod-entrypoints.js';
import { checkMountRights } from './pod-mount-rights.js';

export interface PodAdmissionDeps {
  cluster: ClusterView;
  rules: AdmissionRules;
}

export async function validatePod(request: AdmissionRequest, deps: PodAdmissionDeps): Promise<Verdict> {
  // Containers, commands and labels are set at creation: the pod spec's
  // containers cannot change later, so only CREATE is checked.
  if (request.operation !== 'CREATE' || request.object === null) return { allowed: true };
  const pod = request.object;
  const namespace = request.namespace;
  const name = podName(pod);

  // Every container of a pod has the pod's labels, so the label selectors are
  // matched once per pod; selectPolicies then applies spec.containers and sorts.
  const containers = containersOf(pod, namespace);
  const labels = containers[0]?.labels ?? {};
  const matching = deps.cluster.policiesIn(namespace).filter((policy) => selectorMatches(policy.spec.selector, labels));
  const selected: SelectedContainer[] = containers.map((container) => ({ container, policies: selectPolicies(matching, container) }));
  const entrypoints = checkEntrypoints(name, selected);
  const warnings = [...entrypoints.warnings, ...checkMountRights(pod, name, selected)];

  const namespaceLabels = (await deps.cluster.namespaceLabels(namespace)) ?? {};
  const violations = [...entrypoints.violations, ...deps.rules.evaluate(rulesInput(pod, name, namespace, namespaceLabels, selected))];

  if (violations.length > 0) {
    return { allowed: false, code: 403, message: violations.join('\n'), warnings };
  }
  return { allowed: true, warnings };
}

/** Builds the input of the Rego rules: the pod, its namespace's labels, and the policies selecting each container. */
export function rulesInput(
  pod: Readonly<Record<string, unknown>>,
  name: string,
  namespace: string,
  namespaceLabels: Record<string, string>,
  selected: readonly SelectedContainer[],
): RulesInput {
  const metadata = (pod.metadata ?? {}) as { labels?: Record<string, string> };
  return {
    pod: { name, namespace, labels: metadata.labels ?? {} },
    namespace: { name: namespace, labels: namespaceLabels },
    containers: selected.map(({ container, policies }) => ({
      name: container.container,
      init: container.init,
      policies: policies.map((policy) => ({ name: policyKey(policy), mode: policy.spec.mode })),
    })),
  };
}
