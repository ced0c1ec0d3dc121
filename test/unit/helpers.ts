// Shared helpers for unit tests: loading policies from inline YAML.

import { loadPolicies } from '../../compiler/load.js';
import type { ContainerRef } from '../../compiler/selector.js';
import type { Policy } from '../../compiler/types.js';

/** Loads policies from YAML and fails the test on any error diagnostic. */
export function policiesFrom(yaml: string): Policy[] {
  const result = loadPolicies(yaml, 'test.yaml');
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`test policies are invalid: ${errors.map((e) => `${e.field}: ${e.problem}`).join('; ')}`);
  return result.policies;
}

export const webContainer: ContainerRef = { namespace: 'shop', pod: 'web-1', container: 'nginx', labels: { app: 'web' } };

/** A policy document for namespace shop, selecting app=web, with the given spec body (indented YAML). */
export function policyYaml(name: string, body: string, mode: 'enforce' | 'audit' = 'enforce'): string {
  return `apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata:
  name: ${name}
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  mode: ${mode}
${body}
---
`;
}
