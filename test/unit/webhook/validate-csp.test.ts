import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse } from 'yaml';

import { repositoryRoot } from '../../../compiler/schema.js';
import type { Verdict } from '../../../webhook/admission-review.js';
import { StaticClusterView } from '../../../webhook/cache/static-view.js';
import { mutatePolicy } from '../../../webhook/mutate-csp.js';
import { PolicySigner, SIGNATURE_ANNOTATION, signaturePatch } from '../../../webhook/signing.js';
import { validatePolicy } from '../../../webhook/validate-csp.js';
import { admissionRequest, applyAddPatch, ecKeyPair, podObject, policyObject } from './helpers.js';

const signer = PolicySigner.fromPem(ecKeyPair().privateKeyPem, 'test key');

function signedPolicy(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  const object = policyObject(name, spec);
  return applyAddPatch(object, signaturePatch(object, signer.sign(object)));
}

function denied(verdict: Verdict): { code: number; message: string } {
  assert.equal(verdict.allowed, false, 'expected a denial');
  return verdict as { code: number; message: string };
}

/** Reads a corpus file and its `# expect:` lines without the "line:column: error: " prefix, as admission shows them. */
function corpusExpectations(file: string): { object: Record<string, unknown>; lines: string[] } {
  const text = readFileSync(join(repositoryRoot(), 'test/unit/corpus/invalid', file), 'utf8');
  const lines = text
    .split('\n')
    .filter((line) => line.startsWith('# expect: '))
    .map((line) => line.replace(/^# expect: \d+:\d+: error: /, ''));
  return { object: parse(text) as Record<string, unknown>, lines };
}

const blockPackageManagers = {
  exec: { posture: 'allow', rules: [{ name: 'package-managers', paths: ['/usr/bin/apt-get'], action: 'deny' }] },
};

describe('/validate/csp handler', () => {
  const cluster = new StaticClusterView();

  describe('when the policy has many errors', () => {
    const { object, lines } = corpusExpectations('38-many-errors-at-once.yaml');
    const verdict = denied(validatePolicy(admissionRequest({ object }), { cluster, signer }));

    it('rejects with 422', () => {
      assert.equal(verdict.code, 422);
    });

    it('lists one line per problem', () => {
      assert.deepEqual(verdict.message.split('\n').sort(), [...lines].sort());
    });
  });

  describe('when the policy is valid and signed', () => {
    const verdict = validatePolicy(admissionRequest({ object: signedPolicy('block', blockPackageManagers) }), { cluster, signer });

    it('allows it', () => {
      assert.equal(verdict.allowed, true);
    });

    it('has no warnings', () => {
      assert.deepEqual(verdict.warnings, []);
    });
  });

  describe('when the policy is valid but unsigned', () => {
    const verdict = denied(validatePolicy(admissionRequest({ object: policyObject('block', blockPackageManagers) }), { cluster, signer }));

    it('rejects with 422', () => {
      assert.equal(verdict.code, 422);
    });

    it('names the annotation and the reason', () => {
      assert.match(verdict.message, /^\[shop\/block\] metadata.annotations.sabpf.io\/signature: missing annotation sabpf.io\/signature; /);
    });

    it('points at the mutating webhook', () => {
      assert.match(verdict.message, /MutatingWebhookConfiguration/);
    });
  });

  describe('when the spec changed after signing', () => {
    const object = signedPolicy('block', blockPackageManagers);
    (object.spec as { mode: string }).mode = 'audit';

    it('rejects it', () => {
      assert.match(denied(validatePolicy(admissionRequest({ object }), { cluster, signer })).message, /spec changed after it was signed/);
    });
  });

  describe('when the operation is not CREATE or UPDATE', () => {
    it('allows DELETE of an invalid policy', () => {
      const { object } = corpusExpectations('38-many-errors-at-once.yaml');
      const verdict = validatePolicy(admissionRequest({ operation: 'DELETE', object: null, oldObject: object }), { cluster, signer });
      assert.deepEqual(verdict, { allowed: true });
    });

    it('allows an update during deletion', () => {
      const { object } = corpusExpectations('38-many-errors-at-once.yaml');
      const deleting = { ...object, metadata: { ...(object.metadata as object), deletionTimestamp: '2025-01-01T00:00:00Z' } };
      assert.deepEqual(validatePolicy(admissionRequest({ operation: 'UPDATE', object: deleting }), { cluster, signer }), { allowed: true });
    });
  });

  describe('when the object has no namespace', () => {
    it('takes it from the request', () => {
      const object = signedPolicy('block', blockPackageManagers);
      const { namespace: _namespace, ...metadata } = object.metadata as Record<string, unknown>;
      // The signature covers the namespace, which the request supplies.
      const verdict = validatePolicy(admissionRequest({ namespace: 'shop', object: { ...object, metadata } }), { cluster, signer });
      assert.equal(verdict.allowed, true);
    });
  });
});

describe('/validate/csp warnings', () => {
  const pods = [
    podObject('web-1', [{ name: 'nginx', command: ['/docker-entrypoint.sh'] }]),
    podObject('web-2', [{ name: 'nginx', command: ['/docker-entrypoint.sh'] }]),
    podObject('web-3', [{ name: 'nginx', command: ['nginx'] }]),
    podObject('db-1', [{ name: 'postgres', command: ['/usr/bin/postgres'] }], { labels: { app: 'db' } }),
    podObject('web-other-ns', [{ name: 'nginx', command: ['/docker-entrypoint.sh'] }], { namespace: 'bank' }),
  ];
  const cluster = new StaticClusterView({ pods });

  const warningsFor = (spec: Record<string, unknown>): string[] => {
    const verdict = validatePolicy(admissionRequest({ object: signedPolicy('risky', spec) }), { cluster, signer });
    assert.equal(verdict.allowed, true, JSON.stringify(verdict));
    return verdict.warnings ?? [];
  };

  describe('when an allow-list misses the entrypoint of selected pods', () => {
    const warnings = warningsFor({ exec: { posture: 'deny', rules: [{ paths: ['/usr/sbin/nginx'], action: 'allow' }] } });

    it('warns once per container and command', () => {
      assert.equal(warnings.length, 1, warnings.join('\n'));
    });

    it('names pod, container, command and posture', () => {
      assert.match(
        warnings[0] ?? '',
        /^\[shop\/risky\] spec.exec.posture \(deny\) denies the entrypoint \/docker-entrypoint.sh of container "nginx" in pod web-1 \(and 1 more pods\)/,
      );
    });

    it('says what happens in enforce mode', () => {
      assert.match(warnings[0] ?? '', /new pods like it will be rejected/);
    });
  });

  describe('when the allow-list allows the entrypoint', () => {
    it('does not warn', () => {
      const warnings = warningsFor({
        exec: { posture: 'deny', rules: [{ paths: ['/docker-entrypoint.sh', '/usr/sbin/nginx'], action: 'allow' }] },
      });
      assert.deepEqual(warnings, []);
    });
  });

  describe('when the policy is in audit mode', () => {
    it('says denials are recorded', () => {
      const warnings = warningsFor({ mode: 'audit', exec: { posture: 'deny', rules: [{ paths: ['/usr/sbin/nginx'], action: 'allow' }] } });
      assert.match(warnings[0] ?? '', /recorded as a denial/);
    });
  });

  describe('when a deny rule hits the entrypoint', () => {
    it('names the rule', () => {
      const warnings = warningsFor({ exec: { posture: 'allow', rules: [{ paths: ['/docker-entrypoint.sh'], action: 'deny' }] } });
      assert.match(warnings[0] ?? '', /^\[shop\/risky\] spec.exec.rules\[0\] denies the entrypoint/);
    });
  });

  describe('when a file allow-list leaves out the libraries', () => {
    it('warns about both directories', () => {
      const warnings = warningsFor({ file: { posture: 'deny', rules: [{ paths: ['/etc/**'], access: 'read', action: 'allow' }] } });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /no rule allows reading \/lib\/\*\* and \/usr\/lib\/\*\*: the dynamic loader/);
    });

    it('warns about the one left out', () => {
      const warnings = warningsFor({ file: { posture: 'deny', rules: [{ paths: ['/usr/lib/**'], access: 'read', action: 'allow' }] } });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /no rule allows reading \/lib\/\*\*:/);
    });

    it('stays quiet when both are readable', () => {
      const warnings = warningsFor({
        file: { posture: 'deny', rules: [{ paths: ['/lib/**', '/usr/lib/**'], access: 'read', action: 'allow' }] },
      });
      assert.deepEqual(warnings, []);
    });
  });

  describe('when an enforced network allow-list has no bind rule', () => {
    const connectOnly = { posture: 'deny', rules: [{ operation: 'connect', cidrs: ['10.0.0.0/8'], action: 'allow' }] };

    it('warns that listening fails', () => {
      const warnings = warningsFor({ network: connectOnly });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /spec.network.posture is deny in enforce mode and no rule allows bind/);
    });

    it('stays quiet with a bind rule', () => {
      const warnings = warningsFor({
        network: { posture: 'deny', rules: [...connectOnly.rules, { operation: 'bind', ports: [{ port: 8080 }], action: 'allow' }] },
      });
      assert.deepEqual(warnings, []);
    });

    it('stays quiet in audit mode', () => {
      assert.deepEqual(warningsFor({ mode: 'audit', network: connectOnly }), []);
    });
  });
});

describe('/mutate/csp handler', () => {
  describe('when a valid policy has no annotations', () => {
    const object = policyObject('block', blockPackageManagers);
    const verdict = mutatePolicy(admissionRequest({ object }), { signer });

    it('allows it with a patch', () => {
      assert.equal(verdict.allowed, true);
      assert.equal(verdict.allowed && verdict.patch?.length, 1);
    });

    it('adds the annotations map', () => {
      const patch = verdict.allowed ? (verdict.patch ?? []) : [];
      assert.equal(patch[0]?.path, '/metadata/annotations');
    });

    it('produces a signature that verifies', () => {
      const patched = applyAddPatch(object, verdict.allowed ? (verdict.patch ?? []) : []);
      assert.deepEqual(signer.verify(patched), { ok: true });
    });

    it('leaves the request object unmodified', () => {
      assert.equal((object.metadata as Record<string, unknown>).annotations, undefined);
    });
  });

  describe('when the signature is already current', () => {
    it('sends no patch', () => {
      const verdict = mutatePolicy(admissionRequest({ operation: 'UPDATE', object: signedPolicy('block', blockPackageManagers) }), {
        signer,
      });
      assert.deepEqual(verdict, { allowed: true });
    });
  });

  describe('when the spec changed', () => {
    it('re-signs it', () => {
      const object = signedPolicy('block', blockPackageManagers);
      (object.spec as { severity: string }).severity = 'low';
      const verdict = mutatePolicy(admissionRequest({ operation: 'UPDATE', object }), { signer });
      assert.equal(verdict.allowed && verdict.patch?.[0]?.path, `/metadata/annotations/sabpf.io~1signature`);
      const patched = applyAddPatch(object, verdict.allowed ? (verdict.patch ?? []) : []);
      assert.deepEqual(signer.verify(patched), { ok: true });
      assert.notEqual((patched.metadata as { annotations: Record<string, string> }).annotations[SIGNATURE_ANNOTATION], undefined);
    });
  });

  describe('when the policy is invalid', () => {
    it('rejects it like /validate/csp', () => {
      const { object } = corpusExpectations('38-many-errors-at-once.yaml');
      const mutated = denied(mutatePolicy(admissionRequest({ object }), { signer }));
      const validated = denied(validatePolicy(admissionRequest({ object }), { cluster: new StaticClusterView(), signer }));
      assert.deepEqual(mutated, validated);
    });
  });

  describe('when the policy is deleted', () => {
    it('allows without a patch', () => {
      assert.deepEqual(mutatePolicy(admissionRequest({ operation: 'DELETE', object: null }), { signer }), { allowed: true });
    });
  });
});
