import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';

import fc from 'fast-check';
import jwt from 'jsonwebtoken';

import { PolicySigner, SIGNATURE_ANNOTATION, signaturePatch, specHash, verifyPolicySignature } from '../../../webhook/signing.js';
import { applyAddPatch, ecKeyPair, policyObject } from './helpers.js';

const spec = { exec: { posture: 'allow', rules: [{ paths: ['/usr/bin/apt-get'], action: 'deny' }] } };

function signed(signer: PolicySigner, object: Record<string, unknown>): Record<string, unknown> {
  return applyAddPatch(object, signaturePatch(object, signer.sign(object)));
}

function annotate(object: Record<string, unknown>, token: string): Record<string, unknown> {
  return applyAddPatch(object, signaturePatch(object, token));
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('webhook signing', () => {
  const keys = ecKeyPair();
  const signer = PolicySigner.fromPem(keys.privateKeyPem, 'test key');

  describe('when a policy is signed', () => {
    const object = signed(signer, policyObject('block', spec));

    it('verifies with the public key', () => {
      assert.deepEqual(verifyPolicySignature(object, keys.publicKeyPem), { ok: true });
    });

    it('uses ES256 with the key id', () => {
      const token = (object.metadata as { annotations: Record<string, string> }).annotations[SIGNATURE_ANNOTATION] as string;
      const decoded = jwt.decode(token, { complete: true });
      assert.equal(decoded?.header.alg, 'ES256');
      assert.equal(decoded?.header.kid, signer.keyId);
    });

    it('carries namespace, name and specHash', () => {
      const token = (object.metadata as { annotations: Record<string, string> }).annotations[SIGNATURE_ANNOTATION] as string;
      const payload = jwt.decode(token) as Record<string, unknown>;
      assert.equal(payload.ns, 'shop');
      assert.equal(payload.name, 'block');
      assert.equal(payload.specHash, specHash(object.spec));
      assert.match(payload.specHash as string, /^[0-9a-f]{64}$/);
    });

    it('exposes the matching public key', () => {
      assert.deepEqual(verifyPolicySignature(object, signer.publicKeyPem), { ok: true });
    });
  });

  describe('when the object is changed or forged', () => {
    const object = signed(signer, policyObject('block', spec));
    const token = (object.metadata as { annotations: Record<string, string> }).annotations[SIGNATURE_ANNOTATION] as string;

    it('rejects a spec edited after signing', () => {
      const edited = structuredClone(object);
      (edited.spec as { mode: string }).mode = 'audit';
      const result = verifyPolicySignature(edited, keys.publicKeyPem);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /spec changed after it was signed/);
    });

    it('rejects a missing annotation', () => {
      const result = verifyPolicySignature(policyObject('block', spec), keys.publicKeyPem);
      assert.deepEqual(result, { ok: false, reason: `missing annotation ${SIGNATURE_ANNOTATION}` });
    });

    it('rejects a token copied to another name', () => {
      const copy = annotate(policyObject('other', spec), token);
      const result = verifyPolicySignature(copy, keys.publicKeyPem);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /for shop\/block, not shop\/other/);
    });

    it('rejects a token copied to another namespace', () => {
      const copy = annotate(policyObject('block', spec, { namespace: 'bank' }), token);
      assert.equal(verifyPolicySignature(copy, keys.publicKeyPem).ok, false);
    });

    it('rejects the wrong public key', () => {
      const result = verifyPolicySignature(object, ecKeyPair().publicKeyPem);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /invalid signature/);
    });

    it('rejects alg none', () => {
      const header = base64url({ alg: 'none', typ: 'JWT' });
      const payload = base64url({ ns: 'shop', name: 'block', specHash: specHash(object.spec) });
      const forged = annotate(policyObject('block', spec), `${header}.${payload}.`);
      const result = verifyPolicySignature(forged, keys.publicKeyPem);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /invalid signature/);
    });

    it('rejects HS256 keyed with the public key', () => {
      // The classic confusion attack: an HMAC whose secret is the public key text the verifier holds.
      const header = base64url({ alg: 'HS256', typ: 'JWT' });
      const payload = base64url({ ns: 'shop', name: 'block', specHash: specHash(object.spec) });
      const mac = createHmac('sha256', keys.publicKeyPem).update(`${header}.${payload}`).digest('base64url');
      const forged = annotate(policyObject('block', spec), `${header}.${payload}.${mac}`);
      const result = verifyPolicySignature(forged, keys.publicKeyPem);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /invalid signature/);
    });

    it('rejects ES384 from a P-384 key', () => {
      const p384 = ecKeyPair('P-384');
      const payload = { ns: 'shop', name: 'block', specHash: specHash(object.spec) };
      const other = jwt.sign(payload, p384.privateKeyPem, { algorithm: 'ES384' });
      const result = verifyPolicySignature(annotate(policyObject('block', spec), other), p384.publicKeyPem);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /invalid signature/);
    });

    it('accepts a key bundle with the right key', () => {
      const bundle = `${ecKeyPair().publicKeyPem}${keys.publicKeyPem}`;
      assert.deepEqual(verifyPolicySignature(object, bundle), { ok: true });
    });

    it('rejects a key bundle without it', () => {
      const bundle = `${ecKeyPair().publicKeyPem}${ecKeyPair().publicKeyPem}`;
      const result = verifyPolicySignature(object, bundle);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /invalid signature/);
    });

    it('rejects text that is no key', () => {
      const result = verifyPolicySignature(object, 'not a key');
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, /invalid signature/);
    });

    it('rejects a garbage token', () => {
      const result = verifyPolicySignature(annotate(policyObject('block', spec), 'not-a-jwt'), keys.publicKeyPem);
      assert.equal(result.ok, false);
    });

    it('rejects a non-object', () => {
      assert.deepEqual(verifyPolicySignature('policy', keys.publicKeyPem), { ok: false, reason: 'the policy is not an object' });
    });
  });

  describe('when the signature annotation is patched in', () => {
    it('adds the map when annotations are absent', () => {
      const patch = signaturePatch(policyObject('block', spec), 'TOKEN');
      assert.deepEqual(patch, [{ op: 'add', path: '/metadata/annotations', value: { [SIGNATURE_ANNOTATION]: 'TOKEN' } }]);
    });

    it('adds one member when annotations exist', () => {
      const object = policyObject('block', spec, { annotations: { team: 'shop' } });
      const patch = signaturePatch(object, 'TOKEN');
      assert.deepEqual(patch, [{ op: 'add', path: '/metadata/annotations/sabpf.io~1signature', value: 'TOKEN' }]);
      const patched = applyAddPatch(object, patch);
      assert.deepEqual((patched.metadata as { annotations: unknown }).annotations, { team: 'shop', [SIGNATURE_ANNOTATION]: 'TOKEN' });
    });

    it('replaces an old signature', () => {
      const object = policyObject('block', spec, { annotations: { [SIGNATURE_ANNOTATION]: 'OLD' } });
      const patched = applyAddPatch(object, signaturePatch(object, 'NEW'));
      assert.deepEqual((patched.metadata as { annotations: unknown }).annotations, { [SIGNATURE_ANNOTATION]: 'NEW' });
    });
  });

  describe('when the spec hash is computed', () => {
    it('ignores key order at every depth', () => {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const reordered = JSON.parse(JSON.stringify(value, (_key, member: unknown) => reverseKeys(member))) as unknown;
          assert.equal(specHash(reordered), specHash(value));
        }),
        { numRuns: 200 },
      );
    });

    it('keeps array order significant', () => {
      assert.notEqual(specHash({ paths: ['/a', '/b'] }), specHash({ paths: ['/b', '/a'] }));
    });
  });

  describe('when a signing key is loaded', () => {
    it('rejects an RSA key', () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      assert.throws(
        () => PolicySigner.fromPem(pem, '/keys/rsa.pem'),
        /failed to load the signing key from \/keys\/rsa\.pem: ES256 needs an EC P-256 key, got rsa/,
      );
    });

    it('rejects a P-384 key', () => {
      assert.throws(() => PolicySigner.fromPem(ecKeyPair('P-384').privateKeyPem, 'k'), /got EC secp384r1/);
    });

    it('rejects text that is not PEM', () => {
      assert.throws(() => PolicySigner.fromPem('hello', 'k'), /not a PEM private key/);
    });

    it('never puts the key in the error', () => {
      const pem = ecKeyPair('P-384').privateKeyPem;
      const body = pem.split('\n')[1] as string;
      assert.throws(
        () => PolicySigner.fromPem(pem, 'k'),
        (error: Error) => !error.message.includes(body),
      );
    });

    it('accepts a SEC1 EC key', () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const sec1 = privateKey.export({ type: 'sec1', format: 'pem' }).toString();
      assert.ok(PolicySigner.fromPem(sec1, 'k').keyId.match(/^[0-9a-f]{16}$/));
    });
  });
});

function reverseKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).reverse());
}
