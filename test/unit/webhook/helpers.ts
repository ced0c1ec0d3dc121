// Shared helpers for the webhook unit tests: AdmissionRequests, policy and
// pod objects, signing keys, and a JSON Patch "add" for checking patches.

import { generateKeyPairSync } from 'node:crypto';

import type { AdmissionRequest, JsonPatchOperation, Operation } from '../../../webhook/admission-review.js';

export const POLICY_GVK = { group: 'sabpf.io', version: 'v1alpha1', kind: 'ContainerSecurityPolicy' };
export const POD_GVK = { group: '', version: 'v1', kind: 'Pod' };

export function admissionRequest(fields: Partial<AdmissionRequest> & { object: Record<string, unknown> | null }): AdmissionRequest {
  const metadata = (fields.object?.metadata ?? {}) as { name?: string; namespace?: string };
  return {
    uid: 'b6f0c5a4-0000-4000-8000-000000000001',
    kind: POLICY_GVK,
    operation: 'CREATE' as Operation,
    namespace: metadata.namespace ?? 'shop',
    name: metadata.name ?? '',
    oldObject: null,
    dryRun: false,
    userName: 'alice',
    ...fields,
  };
}

/** Builds a ContainerSecurityPolicy object in namespace shop selecting app=web, as the apiserver sends it. */
export function policyObject(
  name: string,
  spec: Record<string, unknown>,
  extraMetadata: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: 'sabpf.io/v1alpha1',
    kind: 'ContainerSecurityPolicy',
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, generation: 1, ...extraMetadata },
    spec: { selector: { matchLabels: { app: 'web' } }, mode: 'enforce', ...spec },
  };
}

export interface TestContainer {
  name: string;
  command?: string[];
  securityContext?: Record<string, unknown>;
}

export function podObject(
  name: string,
  containers: TestContainer[],
  options: { namespace?: string; labels?: Record<string, string>; initContainers?: TestContainer[] } = {},
): Record<string, unknown> {
  const spec: Record<string, unknown> = { containers: containers.map((c) => ({ image: 'example/app:1', ...c })) };
  if (options.initContainers) spec.initContainers = options.initContainers.map((c) => ({ image: 'example/init:1', ...c }));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: options.namespace ?? 'shop', labels: options.labels ?? { app: 'web' } },
    spec,
  };
}

export interface TestKeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
}

export function ecKeyPair(namedCurve = 'P-256'): TestKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Applies JSON Patch "add" operations to a deep copy (the only operation the webhook emits). */
export function applyAddPatch(object: Record<string, unknown>, patch: readonly JsonPatchOperation[]): Record<string, unknown> {
  const copy = structuredClone(object);
  for (const operation of patch) {
    if (operation.op !== 'add') throw new Error(`unexpected patch operation ${operation.op}`);
    const keys = operation.path
      .split('/')
      .slice(1)
      .map((key) => key.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = keys.pop();
    if (last === undefined) throw new Error(`invalid patch path ${operation.path}`);
    let parent: Record<string, unknown> = copy;
    for (const key of keys) {
      const next = parent[key];
      // A JSON Patch "add" fails when the parent is missing; so does this.
      if (typeof next !== 'object' || next === null) throw new Error(`patch path ${operation.path}: missing parent ${key}`);
      parent = next as Record<string, unknown>;
    }
    parent[last] = structuredClone(operation.value);
  }
  return copy;
}
