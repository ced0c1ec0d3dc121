// JSON Schema of audit records. The writer validates every record against it
// before the record takes a seq, so a bug in the enforcer surfaces as an error
// at the call site instead of as a malformed line in the trail.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

import { FILE_OPERATIONS, OPERATIONS, type Operation, type RecordKind } from './record.js';

const hashSchema = { type: 'string', pattern: '^[0-9a-f]{64}$' };
const textSchema = { type: 'string', maxLength: 4096 };
const nameSchema = { type: 'string', minLength: 1, maxLength: 253 };

const chainProperties = {
  seq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  prevHash: hashSchema,
  hash: hashSchema,
};

const headerProperties = {
  time: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$' },
  node: nameSchema,
};

const pathResource = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: { path: textSchema },
};

const networkResource = {
  type: 'object',
  additionalProperties: false,
  required: ['address', 'port', 'protocol'],
  properties: {
    address: { type: 'string', minLength: 2, maxLength: 45 },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    protocol: { enum: ['tcp', 'udp'] },
  },
};

const socketResource = {
  type: 'object',
  additionalProperties: false,
  required: ['family', 'type'],
  properties: {
    family: { type: 'string', minLength: 1, maxLength: 64 },
    type: { type: 'string', minLength: 1, maxLength: 64 },
  },
};

const decisionContextProperties = {
  namespace: nameSchema,
  pod: nameSchema,
  container: nameSchema,
  cgroupId: { type: 'string', pattern: '^(0|[1-9][0-9]{0,19})$' },
  pid: { type: 'integer', minimum: 0, maximum: 4294967295 },
  ppid: { type: 'integer', minimum: 0, maximum: 4294967295 },
  uid: { type: 'integer', minimum: 0, maximum: 4294967295 },
  comm: { type: 'string', maxLength: 64 },
  executable: textSchema,
  decision: { enum: ['allow', 'deny'] },
  enforced: { type: 'boolean' },
  mode: { enum: ['enforce', 'audit'] },
  policy: { type: 'string', pattern: '^[^/\\s]+/[^/\\s]+$', maxLength: 507 },
  rule: { type: 'string', minLength: 1, maxLength: 512 },
  severity: { enum: ['low', 'medium', 'high', 'critical'] },
  message: { type: 'string', maxLength: 1024 },
  reason: { enum: ['rule', 'posture', 'path-truncated', 'rules-below'] },
};

// A blocked operation is always a deny from a policy in enforce mode.
const enforcedImpliesDeny = {
  if: { properties: { enforced: { const: true } } },
  then: { properties: { decision: { const: 'deny' }, mode: { const: 'enforce' } } },
};

function decisionSchema(operations: Operation[], resource: object, hasAccess: boolean): object {
  const operationProperty = { operation: { enum: operations } };
  const accessProperty = hasAccess ? { access: { enum: ['read', 'write'] } } : {};
  const properties = {
    ...chainProperties,
    ...headerProperties,
    kind: { const: 'decision' },
    ...decisionContextProperties,
    ...operationProperty,
    ...accessProperty,
    resource,
  };
  return {
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties),
    properties,
    ...enforcedImpliesDeny,
  };
}

function lifecycleSchema(kind: RecordKind, extra: Record<string, object>): object {
  const properties = { ...chainProperties, ...headerProperties, kind: { const: kind }, ...extra };
  return {
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties),
    properties,
  };
}

/** One schema per record shape, keyed by kind, or by `decision:<operation>` for decisions. */
export const RECORD_SCHEMAS: Readonly<Record<string, object>> = {
  ...Object.fromEntries(FILE_OPERATIONS.map((operation) => [`decision:${operation}`, decisionSchema([operation], pathResource, true)])),
  'decision:exec': decisionSchema(['exec'], pathResource, false),
  'decision:connect': decisionSchema(['connect'], networkResource, false),
  'decision:bind': decisionSchema(['bind'], networkResource, false),
  'decision:socket-create': decisionSchema(['socket-create'], socketResource, false),
  dropped: lifecycleSchema('dropped', {
    count: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    source: { enum: ['ring-buffer', 'audit-write', 'audit-backlog'] },
  }),
  start: lifecycleSchema('start', {
    resumedFrom: { enum: ['new', 'state-file', 'last-record'] },
    message: textSchema,
  }),
  stop: lifecycleSchema('stop', { message: textSchema }),
};

/** JSON Schema (draft-07) of any audit record, for consumers of the trail. */
export const AUDIT_RECORD_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'sabpf audit record',
  oneOf: Object.values(RECORD_SCHEMAS),
};

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const validators = new Map<string, ValidateFunction>();

for (const [key, schema] of Object.entries(RECORD_SCHEMAS)) {
  validators.set(key, ajv.compile(schema));
}

/**
 * Validates a record and returns its problems as readable text, or an empty
 * list when it conforms. Picks the schema by kind and operation first, so the
 * messages name the fields of the matching shape instead of every oneOf branch.
 */
export function validateRecord(record: Record<string, unknown>): string[] {
  const kind = record['kind'];
  const key = kind === 'decision' ? `decision:${String(record['operation'])}` : String(kind);
  const validate = validators.get(key);

  if (validate === undefined) {
    if (kind === 'decision') {
      return [`operation ${JSON.stringify(record['operation'])} is not one of ${OPERATION_LIST}`];
    }
    return [`kind ${JSON.stringify(kind)} is not one of decision, dropped, start, stop`];
  }

  if (validate(record)) {
    return [];
  }
  return (validate.errors ?? []).map(describeError);
}

const OPERATION_LIST = OPERATIONS.join(', ');

function describeError(error: ErrorObject): string {
  const where = error.instancePath === '' ? 'record' : error.instancePath.slice(1).replaceAll('/', '.');
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return `${where} has unexpected field ${extra}`;
  }
  if (error.keyword === 'enum') {
    const allowed = (error.params as { allowedValues: unknown[] }).allowedValues.join(', ');
    return `${where} must be one of ${allowed}`;
  }
  return `${where} ${error.message ?? 'is invalid'}`;
}
