// AdmissionReview admission.k8s.io/v1: the request the kube-apiserver sends
// to a webhook and the response it expects back. Parsing checks only what the
// handlers rely on, and every rejection names the field, so a misconfigured
// webhook configuration is easy to spot in the apiserver log.

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const ADMISSION_KIND = 'AdmissionReview';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

const OPERATIONS: readonly Operation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** The fields of AdmissionRequest that the handlers read. */
export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  operation: Operation;
  /** Empty for cluster-scoped objects, and for a name the apiserver generates later. */
  namespace: string;
  name: string;
  /** The object being admitted: null for DELETE. */
  object: Record<string, unknown> | null;
  oldObject: Record<string, unknown> | null;
  dryRun: boolean;
  userName: string;
}

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** What a handler decides; the route adds the request uid. */
export type Verdict =
  | { allowed: true; warnings?: string[]; patch?: JsonPatchOperation[] }
  | { allowed: false; code: number; message: string; warnings?: string[] };

/** A request the webhook cannot read, rejected with HTTP 400 and this message. */
export class BadRequestError extends Error {
  override readonly name = 'BadRequestError';
}

/**
 * Reads an AdmissionReview body and returns its request.
 * Throws BadRequestError naming the first field that is missing or invalid.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) {
    throw new BadRequestError(`invalid AdmissionReview: the body is ${describe(body)}, not a JSON object`);
  }
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw new BadRequestError(
      `unsupported AdmissionReview apiVersion ${JSON.stringify(body.apiVersion)}: expected ${ADMISSION_API_VERSION}; ` +
        'set admissionReviewVersions: ["v1"] in the webhook configuration',
    );
  }
  if (body.kind !== ADMISSION_KIND) {
    throw new BadRequestError(`invalid AdmissionReview: kind is ${JSON.stringify(body.kind)}, expected ${ADMISSION_KIND}`);
  }

  const request = body.request;
  if (!isObject(request)) throw new BadRequestError('invalid AdmissionReview: missing request');
  if (typeof request.uid !== 'string' || request.uid === '') {
    throw new BadRequestError('invalid AdmissionReview: request.uid is missing or empty');
  }
  if (!OPERATIONS.includes(request.operation as Operation)) {
    throw new BadRequestError(
      `invalid AdmissionReview: request.operation is ${JSON.stringify(request.operation)}, expected one of ${OPERATIONS.join(', ')}`,
    );
  }
  const kind = request.kind;
  if (!isObject(kind) || typeof kind.kind !== 'string' || typeof kind.version !== 'string') {
    throw new BadRequestError('invalid AdmissionReview: request.kind must be an object with group, version and kind');
  }

  const operation = request.operation as Operation;
  const object = optionalObject(request.object, 'request.object');
  if (object === null && (operation === 'CREATE' || operation === 'UPDATE')) {
    throw new BadRequestError(`invalid AdmissionReview: request.object is missing for operation ${operation}`);
  }
  const userInfo = isObject(request.userInfo) ? request.userInfo : {};

  return {
    uid: request.uid,
    kind: { group: typeof kind.group === 'string' ? kind.group : '', version: kind.version, kind: kind.kind },
    operation,
    namespace: typeof request.namespace === 'string' ? request.namespace : '',
    name: typeof request.name === 'string' ? request.name : '',
    object,
    oldObject: optionalObject(request.oldObject, 'request.oldObject'),
    dryRun: request.dryRun === true,
    userName: typeof userInfo.username === 'string' ? userInfo.username : '',
  };
}

/**
 * Throws BadRequestError unless the request is for the expected kind: a
 * mismatch means the webhook configuration routes a resource to the wrong path.
 */
export function expectKind(request: AdmissionRequest, expected: GroupVersionKind, endpoint: string): void {
  const { group, kind } = request.kind;
  if (group === expected.group && kind === expected.kind) return;
  const got = group === '' ? kind : `${kind}.${group}`;
  const want = expected.group === '' ? expected.kind : `${expected.kind}.${expected.group}`;
  throw new BadRequestError(
    `failed to admit ${got}: ${endpoint} admits ${want} only; fix the rules of the webhook configuration that calls ${endpoint}`,
  );
}

/** Builds the AdmissionReview the apiserver expects back for a verdict. */
export function admissionResponse(uid: string, verdict: Verdict): Record<string, unknown> {
  const response: Record<string, unknown> = { uid, allowed: verdict.allowed };
  if (verdict.warnings && verdict.warnings.length > 0) response.warnings = verdict.warnings;

  if (!verdict.allowed) {
    response.status = { code: verdict.code, reason: reasonFor(verdict.code), message: verdict.message };
  } else if (verdict.patch && verdict.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_KIND, response };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Returns true when metadata.deletionTimestamp is set, which happens once a delete waits for finalizers. */
export function isBeingDeleted(object: Record<string, unknown> | null): boolean {
  const metadata = object?.metadata;
  return isObject(metadata) && metadata.deletionTimestamp !== undefined && metadata.deletionTimestamp !== null;
}

function optionalObject(value: unknown, field: string): Record<string, unknown> | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) throw new BadRequestError(`invalid AdmissionReview: ${field} is ${describe(value)}, not an object`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

// Status reasons as metav1.StatusReason spells them, so kubectl prints
// "Error from server (Invalid)" or "(Forbidden)".
function reasonFor(code: number): string {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 403:
      return 'Forbidden';
    case 422:
      return 'Invalid';
    default:
      return 'Unknown';
  }
}
