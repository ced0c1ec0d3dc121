// POST /mutate/csp: ContainerSecurityPolicy CREATE and UPDATE, before the
// CRD schema runs. Signs valid policies and rejects invalid ones with the same
// message as /validate/csp. The apiserver checks the CRD schema between the
// mutating and the validating webhooks, so for a schema error this is the
// only sabpf webhook that can report every problem at once.

import { isBeingDeleted, type AdmissionRequest, type Verdict } from './admission-review.js';
import { checkPolicyObject, invalidPolicyVerdict } from './csp-check.js';
import { signaturePatch, type PolicySigner } from './signing.js';

export interface PolicySigningDeps {
  signer: PolicySigner;
}

export function mutatePolicy(request: AdmissionRequest, deps: PolicySigningDeps): Verdict {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
  if (isBeingDeleted(request.object)) return { allowed: true };

  const check = checkPolicyObject(request);
  if (!check.policy) return invalidPolicyVerdict(check);

  // A signature that still verifies is kept. ECDSA signatures differ on every
  // signing, so re-signing an unchanged spec would change the object on every
  // update and on every reinvocation.
  if (deps.signer.verify(check.object).ok) return { allowed: true };

  return { allowed: true, patch: signaturePatch(check.object, deps.signer.sign(check.object)) };
}
