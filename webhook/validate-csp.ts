// POST /validate/csp: ContainerSecurityPolicy CREATE and UPDATE, after every
// mutating webhook ran. Rejects invalid policies with one line per problem,
// rejects a policy whose signature does not match its final spec, and warns
// about valid policies that would break the pods they select.

import { isBeingDeleted, type AdmissionRequest, type Verdict } from './admission-review.js';
import type { ClusterView } from './cache/cluster-view.js';
import { checkPolicyObject, invalidPolicyVerdict } from './csp-check.js';
import { riskyPolicyWarnings } from './policy-warnings.js';
import { SIGNATURE_ANNOTATION, type PolicySigner } from './signing.js';

export interface PolicyAdmissionDeps {
  cluster: ClusterView;
  signer: PolicySigner;
}

export function validatePolicy(request: AdmissionRequest, deps: PolicyAdmissionDeps): Verdict {
  // DELETE and CONNECT are always allowed. So is an update of a policy that
  // is being deleted, so a finalizer can be removed from a policy stored
  // before the webhook checked it.
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
  if (isBeingDeleted(request.object)) return { allowed: true };

  const check = checkPolicyObject(request);
  if (!check.policy) return invalidPolicyVerdict(check);

  // The enforcer rejects a policy whose signature fails, so storing one would
  // give a policy that looks applied but is not enforced anywhere.
  const signature = deps.signer.verify(check.object);
  if (!signature.ok) {
    const policy = `${check.policy.namespace}/${check.policy.name}`;
    return {
      allowed: false,
      code: 422,
      message:
        `[${policy}] metadata.annotations.${SIGNATURE_ANNOTATION}: ${signature.reason}; ` +
        'the mutating webhook that signs policies did not run last: check that its MutatingWebhookConfiguration is installed ' +
        'and that no later mutating webhook changes spec',
    };
  }

  const pods = deps.cluster.podsIn(check.policy.namespace);
  return { allowed: true, warnings: [...check.warnings, ...riskyPolicyWarnings(check.policy, pods)] };
}
