// Canonical JSON and the record hash. Verification re-serializes each parsed
// line, so the hash depends on the record's values and never on key order or
// whitespace in the file.

import { createHash } from 'node:crypto';

/**
 * Serializes a JSON value with object keys sorted recursively.
 * Keys sort by UTF-16 code unit (Array.prototype.sort), numbers and strings
 * are written as JSON.stringify writes them, and object members whose value
 * is undefined are left out, as JSON.stringify does.
 * Throws on values that JSON cannot carry (NaN, Infinity, bigint, functions),
 * because they would not survive a write and re-read unchanged.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) {
    return 'null';
  }

  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError(`failed to serialize number ${value}: JSON has no representation for it`);
      }
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`failed to serialize a value of type ${typeof value}: JSON has no representation for it`);
  }

  if (Array.isArray(value)) {
    const items = value.map((item: unknown) => (item === undefined ? 'null' : canonicalJson(item)));
    return `[${items.join(',')}]`;
  }

  const members: string[] = [];
  for (const key of Object.keys(value).sort()) {
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined) {
      continue;
    }
    members.push(`${JSON.stringify(key)}:${canonicalJson(member)}`);
  }
  return `{${members.join(',')}}`;
}

/**
 * Computes a record's chain hash: sha256 hex of its prevHash followed by the
 * canonical JSON of the record without its `hash` member. The record's own
 * `prevHash` member is therefore covered twice, which is harmless.
 */
export function computeRecordHash(record: { prevHash: string } & Record<string, unknown>): string {
  const { hash: _ignored, ...body } = record;
  return createHash('sha256').update(record.prevHash).update(canonicalJson(body)).digest('hex');
}

const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** Reports whether a value is a lowercase 64-digit hex sha256. */
export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HASH_PATTERN.test(value);
}
