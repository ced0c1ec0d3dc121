// Turns ContainerSecurityPolicy objects into policy upserts and deletes.
// Each new generation is validated with the compiler's loader. An invalid one
// is not applied, so the node keeps enforcing the last valid generation of
// that policy (or nothing, if there was none). The rejection is kept for the
// status reporter.

import type { Logger } from 'pino';

import { formatForAdmission } from '../../compiler/diagnostics.js';
import { loadPolicyObject } from '../../compiler/load.js';
import type { Policy } from '../../compiler/types.js';
import type { PolicyUpdate } from '../core/types.js';
import { objectKey, SIGNATURE_ANNOTATION, type PolicyObject } from './objects.js';
import type { ReflectorHandler } from './reflector.js';
import type { SinkQueue } from './sink-queue.js';

/** Error lines kept per rejected generation, for logs and the Compiled condition. */
const MAX_ERROR_LINES = 5;

/** This node's view of one policy object. */
export interface PolicyView {
  key: string;
  namespace: string;
  name: string;
  uid: string | undefined;
  /** metadata.generation of the latest object seen. */
  generation: number;
  signature: string | undefined;
  /** Whether the latest generation passed validation. */
  valid: boolean;
  /** First validation errors of the latest generation when it is invalid. */
  errors: string[];
  /** The generation handed to the enforcer, if any: the latest valid one. */
  applied: { generation: number; ruleCount: number; policy: Policy } | undefined;
}

export interface PolicyControllerOptions {
  sink: SinkQueue;
  logger: Logger;
  /** Called after the view of a policy changed, and after a policy was deleted. */
  onChange?: (key: string) => void;
}

export class PolicyController implements ReflectorHandler<PolicyObject> {
  private readonly views = new Map<string, PolicyView>();

  constructor(private readonly options: PolicyControllerOptions) {}

  view(key: string): PolicyView | undefined {
    return this.views.get(key);
  }

  /** Returns the uid of a policy, for the involvedObject of Events. */
  uidOf(key: string): string | undefined {
    return this.views.get(key)?.uid;
  }

  keys(): string[] {
    return [...this.views.keys()];
  }

  upsert(object: PolicyObject): void {
    const key = objectKey(object);
    const metadata = object.metadata ?? {};
    const generation = metadata.generation ?? 0;
    const signature = metadata.annotations?.[SIGNATURE_ANNOTATION];
    const previous = this.views.get(key);
    const sameObject = previous !== undefined && previous.uid === metadata.uid;

    // Status patches (ours included) change the resource version but not the
    // generation: nothing to validate or apply again.
    if (sameObject && previous.generation === generation && previous.signature === signature) return;

    // Never inPlace: `object` is the informer's frozen cached copy.
    const loaded = loadPolicyObject(object);
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
    const policy = loaded.policies[0];
    const base = { key, namespace: metadata.namespace ?? '', name: metadata.name ?? '', uid: metadata.uid, generation, signature };

    if (policy && errors.length === 0) {
      const update: PolicyUpdate = { policy, object: object as Record<string, unknown>, ...(signature !== undefined ? { signature } : {}) };
      this.options.sink.upsertPolicy(update);
      this.views.set(key, { ...base, valid: true, errors: [], applied: { generation, ruleCount: ruleCount(policy), policy } });
      this.options.logger.info({ policy: key, generation }, 'policy applied');
    } else {
      const lines = errors.slice(0, MAX_ERROR_LINES).map(formatForAdmission);
      if (errors.length > MAX_ERROR_LINES) lines.push(`${errors.length - MAX_ERROR_LINES} more errors`);
      if (lines.length === 0) lines.push('the object did not load as a ContainerSecurityPolicy');
      // A recreated object (new uid) must not inherit the old object's rules.
      const applied = sameObject ? previous.applied : undefined;
      if (previous?.applied && !sameObject) this.options.sink.deletePolicy(base.namespace, base.name);
      this.views.set(key, { ...base, valid: false, errors: lines, applied });
      this.options.logger.warn(
        { policy: key, generation, errors: lines, enforcedGeneration: applied?.generation },
        applied
          ? `rejected invalid generation ${generation} of policy ${key}; generation ${applied.generation} stays in force`
          : `rejected invalid generation ${generation} of policy ${key}; nothing of it is enforced`,
      );
    }
    this.options.onChange?.(key);
  }

  delete(object: PolicyObject): void {
    const key = objectKey(object);
    const view = this.views.get(key);
    this.views.delete(key);
    // Also when nothing was applied: the core may hold a rejection to clear.
    if (view) this.options.sink.deletePolicy(view.namespace, view.name);
    this.options.logger.info({ policy: key }, 'policy deleted');
    this.options.onChange?.(key);
  }
}

/** Rules written in the policy, over all sections, for status.ruleCount. */
export function ruleCount(policy: Policy): number {
  const spec = policy.spec;
  return (spec.file?.rules.length ?? 0) + (spec.exec?.rules.length ?? 0) + (spec.network?.rules.length ?? 0);
}
