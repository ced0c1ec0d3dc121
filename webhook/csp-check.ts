// Validation of a ContainerSecurityPolicy in an admission request, shared by
// the validating and the mutating endpoint: both must reject the same policies
// with the same message.

import { formatForAdmission } from '../compiler/diagnostics.js';
import { loadPolicyObject } from '../compiler/load.js';
import type { Policy } from '../compiler/types.js';
import { isObject, type AdmissionRequest, type Verdict } from './admission-review.js';

export interface PolicyCheck {
  /** The validated policy; absent when there are errors. */
  policy?: Policy;
  /** One line per error, `[ns/name] field: problem (got value); fix`. */
  errors: string[];
  warnings: string[];
  /** The object as checked, with the request's namespace filled in. */
  object: Record<string, unknown>;
}

/** Validates request.object. The request must be a CREATE or UPDATE (object present). */
export function checkPolicyObject(request: AdmissionRequest): PolicyCheck {
  const object = withNamespace(request.object ?? {}, request.namespace);
  const result = loadPolicyObject(object);
  const errors = result.diagnostics.filter((d) => d.severity === 'error').map(formatForAdmission);
  const warnings = result.diagnostics.filter((d) => d.severity === 'warning').map(formatForAdmission);
  const policy = errors.length === 0 ? result.policies[0] : undefined;
  return policy ? { policy, errors, warnings, object } : { errors, warnings, object };
}

/** Builds the rejection for a policy with errors: HTTP 422 with one line per problem. */
export function invalidPolicyVerdict(check: PolicyCheck): Verdict {
  return { allowed: false, code: 422, message: check.errors.join('\n') };
}

// The apiserver fills metadata.namespace from the request URL before
// admission; the copy keeps that true even for a client that left it out.
function withNamespace(object: Record<string, unknown>, namespace: string): Record<string, unknown> {
  const metadata = isObject(object.metadata) ? object.metadata : {};
  if (namespace === '' || metadata.namespace === namespace) return object;
  return { ...object, metadata: { ...metadata, namespace } };
}
