// The webhook's view of the ContainerSecurityPolicies in the cluster, by
// namespace. Each object is validated once when it arrives, so a pod admission
// only selects among policies that are already compiled into their typed form.

import { formatForAdmission } from '../../compiler/diagnostics.js';
import { loadPolicyObject } from '../../compiler/load.js';
import type { Policy } from '../../compiler/types.js';
import { isObject } from '../admission-review.js';

export type UpsertResult = { ok: true } | { ok: false; key: string; problems: string[] };

export class PolicyIndex {
  readonly #byNamespace = new Map<string, Map<string, Policy>>();
  /** namespace/name of stored objects that fail validation, with their problems. */
  readonly #invalid = new Map<string, string[]>();
  /** Per-namespace arrays handed to callers, rebuilt after a change to that namespace. */
  readonly #lists = new Map<string, readonly Policy[]>();

  /**
   * Adds or replaces a policy from an API object. The object is copied before
   * validation applies defaults, so informer-cached objects stay untouched.
   * An object that fails validation (stored before the webhook ran, or while
   * it was bypassed) replaces any earlier valid version: its old rules no
   * longer describe what is stored.
   */
  upsert(object: unknown): UpsertResult {
    const key = objectKey(object);
    this.remove(object);

    const result = loadPolicyObject(object);
    const policy = result.policies[0];
    if (!policy) {
      const problems = result.diagnostics.filter((d) => d.severity === 'error').map(formatForAdmission);
      this.#invalid.set(key, problems);
      return { ok: false, key, problems };
    }

    let namespace = this.#byNamespace.get(policy.namespace);
    if (!namespace) {
      namespace = new Map();
      this.#byNamespace.set(policy.namespace, namespace);
    }
    namespace.set(policy.name, policy);
    this.#lists.delete(policy.namespace);
    return { ok: true };
  }

  remove(object: unknown): void {
    const { namespace, name } = objectName(object);
    this.#invalid.delete(`${namespace}/${name}`);
    const policies = this.#byNamespace.get(namespace);
    if (!policies?.delete(name)) return;
    if (policies.size === 0) this.#byNamespace.delete(namespace);
    this.#lists.delete(namespace);
  }

  /** Returns the valid policies of a namespace in no particular order; selectPolicies sorts. */
  policiesIn(namespace: string): readonly Policy[] {
    let list = this.#lists.get(namespace);
    if (!list) {
      list = [...(this.#byNamespace.get(namespace)?.values() ?? [])];
      this.#lists.set(namespace, list);
    }
    return list;
  }

  get validCount(): number {
    let count = 0;
    for (const policies of this.#byNamespace.values()) count += policies.size;
    return count;
  }

  get invalidCount(): number {
    return this.#invalid.size;
  }
}

function objectName(object: unknown): { namespace: string; name: string } {
  const metadata = isObject(object) && isObject(object.metadata) ? object.metadata : {};
  return {
    namespace: typeof metadata.namespace === 'string' ? metadata.namespace : '',
    name: typeof metadata.name === 'string' ? metadata.name : '',
  };
}

function objectKey(object: unknown): string {
  const { namespace, name } = objectName(object);
  return `${namespace}/${name}`;
}
