// A ClusterView over fixed objects, for the benchmark and the handler unit
// tests. Policies go through the same PolicyIndex as in the running webhook.

import type { Policy } from '../../compiler/types.js';
import { isObject } from '../admission-review.js';
import type { CacheSizes, ClusterView } from './cluster-view.js';
import { PolicyIndex } from './policy-index.js';

export interface StaticObjects {
  policies?: unknown[];
  pods?: Record<string, unknown>[];
  /** Namespace name to labels. */
  namespaces?: Record<string, Record<string, string>>;
}

export class StaticClusterView implements ClusterView {
  readonly index = new PolicyIndex();
  readonly #pods: Record<string, unknown>[];
  readonly #namespaces: Record<string, Record<string, string>>;

  /** Throws if one of the policies is invalid, since a test or benchmark built on it would be wrong. */
  constructor(objects: StaticObjects = {}) {
    for (const policy of objects.policies ?? []) {
      const result = this.index.upsert(policy);
      if (!result.ok) throw new Error(`failed to load policy ${result.key}: ${result.problems.join('; ')}`);
    }
    this.#pods = objects.pods ?? [];
    this.#namespaces = objects.namespaces ?? {};
  }

  policiesIn(namespace: string): readonly Policy[] {
    return this.index.policiesIn(namespace);
  }

  podsIn(namespace: string): readonly Record<string, unknown>[] {
    return this.#pods.filter((pod) => isObject(pod.metadata) && pod.metadata.namespace === namespace);
  }

  async namespaceLabels(namespace: string): Promise<Record<string, string> | undefined> {
    return this.#namespaces[namespace];
  }

  synced(): boolean {
    return true;
  }

  sizes(): CacheSizes {
    return {
      policies: this.index.validCount,
      invalidPolicies: this.index.invalidCount,
      pods: this.#pods.length,
      namespaces: Object.keys(this.#namespaces).length,
    };
  }
}
