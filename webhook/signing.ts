// Signed policies. The mutating webhook signs every ContainerSecurityPolicy it
// admits. The enforcer (sabpf enforce --kubernetes --signing-public-key)
// applies a policy only if the signature verifies, so a policy written to etcd
// by a path that skips admission (direct etcd access, a disabled webhook) is
// never enforced.
//
// The signature is an ES256 JWT in the annotation sabpf.io/signature with the
// payload {ns, name, specHash} (jsonwebtoken adds iat), where specHash is the
// sha256 of the canonical JSON of .spec. It binds the spec to the policy's
// namespace and name, so a token copied to another policy, or a spec edited
// after signing, fails. Metadata other than namespace and name, and status,
// are not covered.

import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

import jwt from 'jsonwebtoken';

import { canonicalJson } from '../enforcer/audit/canonical.js';
import { isObject, type JsonPatchOperation } from './admission-review.js';

export const SIGNATURE_ANNOTATION = 'sabpf.io/signature';
export const SIGNATURE_ALGORITHM = 'ES256';

export interface SignaturePayload {
  ns: string;
  name: string;
  specHash: string;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** The namespace, name and spec a signature covers, read from a policy object. */
interface SignedFields {
  ns: string;
  name: string;
  spec: unknown;
}

/** Signs policies with an EC P-256 private key. The key never leaves this object. */
export class PolicySigner {
  readonly publicKeyPem: string;
  /** sha256 of the public key (SPKI DER), first 16 hex digits: the JWT `kid`, so verifiers can pick a key during rotation. */
  readonly keyId: string;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    const publicKey = createPublicKey(privateKey);
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const der = publicKey.export({ type: 'spki', format: 'der' });
    this.keyId = createHash('sha256').update(der).digest('hex').slice(0, 16);
  }

  /**
   * Creates a signer from a PEM private key (PKCS#8 or SEC1).
   * Throws an error that names the problem, never the key material.
   */
  static fromPem(pem: string, source: string): PolicySigner {
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch {
      throw new Error(`failed to load the signing key from ${source}: not a PEM private key; create one with ${KEY_COMMAND}`);
    }
    const got = notP256(key);
    if (got !== undefined) {
      throw new Error(
        `failed to load the signing key from ${source}: ES256 needs an EC P-256 key, got ${got}; create one with ${KEY_COMMAND}`,
      );
    }
    return new PolicySigner(key);
  }

  /** Returns the JWT for a policy object. Throws if the object has no namespace or name. */
  sign(object: Record<string, unknown>): string {
    const fields = signedFields(object);
    if (typeof fields === 'string') throw new Error(`failed to sign the policy: ${fields}`);
    const payload: SignaturePayload = { ns: fields.ns, name: fields.name, specHash: specHash(fields.spec) };
    return jwt.sign(payload, this.#privateKey, { algorithm: SIGNATURE_ALGORITHM, keyid: this.keyId });
  }

  /** Checks the object's signature against this signer's own public key. */
  verify(object: unknown): VerifyResult {
    return verifyPolicySignature(object, this.publicKeyPem);
  }
}

const KEY_COMMAND = '`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signing-key.pem`';

/**
 * Checks the sabpf.io/signature annotation of a policy object against a
 * public key: the token must be ES256, signed by that key, and name the
 * object's namespace, name and current spec. publicKeyPem may hold several
 * PEM public keys one after another (during a key rotation), and one of them
 * must verify the token. Never throws.
 */
export function verifyPolicySignature(object: unknown, publicKeyPem: string): VerifyResult {
  if (!isObject(object)) return { ok: false, reason: 'the policy is not an object' };
  const fields = signedFields(object);
  if (typeof fields === 'string') return { ok: false, reason: fields };

  const metadata = object.metadata as Record<string, unknown>;
  const annotations = isObject(metadata.annotations) ? metadata.annotations : {};
  const token = annotations[SIGNATURE_ANNOTATION];
  if (typeof token !== 'string' || token === '') {
    return { ok: false, reason: `missing annotation ${SIGNATURE_ANNOTATION}` };
  }

  let payload: string | jwt.JwtPayload | undefined;
  let failure = '';
  for (const publicKey of publicKeysOf(publicKeyPem)) {
    try {
      // The explicit list is what rejects alg "none", and HS256 tokens whose
      // HMAC secret is the public key text.
      payload = jwt.verify(token, publicKey, { algorithms: [SIGNATURE_ALGORITHM] });
      break;
    } catch (error) {
      failure ||= error instanceof Error ? error.message : String(error);
    }
  }
  if (payload === undefined) return { ok: false, reason: `invalid signature: ${failure}` };
  if (typeof payload === 'string') return { ok: false, reason: 'invalid signature: the payload is not a JSON object' };

  if (payload.ns !== fields.ns || payload.name !== fields.name) {
    return {
      ok: false,
      reason: `the signature is for ${String(payload.ns)}/${String(payload.name)}, not ${fields.ns}/${fields.name}`,
    };
  }
  let hash: string;
  try {
    hash = specHash(fields.spec);
  } catch (error) {
    return { ok: false, reason: `failed to hash spec: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (payload.specHash !== hash) {
    return { ok: false, reason: 'the spec changed after it was signed (specHash differs)' };
  }
  return { ok: true };
}

/**
 * Returns the JSON Patch that sets the signature annotation. When the object
 * has no annotations the patch adds the whole map, because a JSON Patch "add"
 * into a missing parent fails.
 */
export function signaturePatch(object: Record<string, unknown>, token: string): JsonPatchOperation[] {
  const metadata = isObject(object.metadata) ? object.metadata : undefined;
  if (metadata === undefined) {
    return [{ op: 'add', path: '/metadata', value: { annotations: { [SIGNATURE_ANNOTATION]: token } } }];
  }
  if (!isObject(metadata.annotations)) {
    return [{ op: 'add', path: '/metadata/annotations', value: { [SIGNATURE_ANNOTATION]: token } }];
  }
  // "add" on an existing member replaces it. "/" in the key is escaped as "~1".
  return [{ op: 'add', path: `/metadata/annotations/${escapePointer(SIGNATURE_ANNOTATION)}`, value: token }];
}

/**
 * Returns the sha256 hex of the canonical JSON of a spec (keys sorted at every
 * depth), the specHash of a signature. Throws TypeError for values JSON cannot carry.
 */
export function specHash(spec: unknown): string {
  return createHash('sha256').update(canonicalJson(spec), 'utf8').digest('hex');
}

function signedFields(object: Record<string, unknown>): SignedFields | string {
  const metadata = object.metadata;
  if (!isObject(metadata)) return 'the policy has no metadata';
  if (typeof metadata.namespace !== 'string' || metadata.namespace === '') return 'the policy has no metadata.namespace';
  if (typeof metadata.name !== 'string' || metadata.name === '') return 'the policy has no metadata.name';
  if (object.spec === undefined) return 'the policy has no spec';
  return { ns: metadata.namespace, name: metadata.name, spec: object.spec };
}

const PUBLIC_KEY_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/gu;

// Text without SPKI blocks (a certificate, say) is passed on whole, so
// jsonwebtoken reports what is wrong with it.
/**
 * Checks that pem contains at least one key that can verify ES256 tokens: an
 * EC P-256 public key or certificate. Returns the problem of the first
 * unusable block when none can, else undefined.
 */
export function checkVerifyingKeys(pem: string): string | undefined {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/u.test(pem)) {
    return 'it contains a private key; pass only the public half (openssl pkey -in signing-key.pem -pubout)';
  }
  const problems: string[] = [];
  for (const block of publicKeysOf(pem)) {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (err) {
      problems.push(`no valid public key found (${(err as Error).message})`);
      continue;
    }
    const got = notP256(key);
    if (got === undefined) return undefined;
    problems.push(`${SIGNATURE_ALGORITHM} needs an EC P-256 public key, got ${got}`);
  }
  return problems[0] ?? 'no public key found';
}

/** Returns undefined for an EC P-256 key, else its type and curve for an error message. */
function notP256(key: KeyObject): string | undefined {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return undefined;
  return key.asymmetricKeyType === 'ec' ? `EC ${curve ?? 'unknown curve'}` : (key.asymmetricKeyType ?? 'unknown type');
}

function publicKeysOf(pem: string): string[] {
  const blocks = pem.match(PUBLIC_KEY_BLOCK);
  return blocks !== null && blocks.length > 0 ? blocks : [pem];
}

// RFC 6901: "~" is written "~0" and "/" is written "~1".
function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
