// What the admission handlers read about the cluster. The informer-backed
// implementation (informer-view.ts) serves the running webhook. The static one
// (static-view.ts) serves the benchmark and the handler unit tests. Both use
// the same PolicyIndex, so policy validation is never faked.

import type { Policy } from '../../compiler/types.js';

export interface CacheSizes {
  policies: number;
  invalidPolicies: number;
  pods: number;
  namespaces: number;
}

export interface ClusterView {
  /** Valid ContainerSecurityPolicies of a namespace. */
  policiesIn(namespace: string): readonly Policy[];
  /** Pods of a namespace as the API returns them. Callers must not modify them. */
  podsIn(namespace: string): readonly Readonly<Record<string, unknown>>[];
  /** Labels of a namespace, or undefined when the namespace does not exist. */
  namespaceLabels(namespace: string): Promise<Record<string, string> | undefined>;
  /** True once every cache has listed its objects at least once. */
  synced(): boolean;
  sizes(): CacheSizes;
}
