// Structural validation against the CRD's own openAPIV3Schema, so the API
// server and the compiler can never disagree about the shape of a policy.
// CEL rules (x-kubernetes-validations) are not evaluated here: semantic.ts
// implements each of them, with better messages.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';

const CRD_FILE = 'crds/sabpf.io_containersecuritypolicies.yaml';

let cached: { schema: Record<string, unknown>; validate: ValidateFunction } | undefined;

/** Finds the repository root from this module's location (dist/compiler or compiler). */
export function repositoryRoot(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const parts = here.split('/').filter(Boolean);
  const distAt = parts.lastIndexOf('dist');
  const rootParts = distAt >= 0 ? parts.slice(0, distAt) : parts.slice(0, -1);
  return `/${rootParts.join('/')}`;
}

/** Returns the openAPIV3Schema of the CRD's first version. Throws if the CRD file is unreadable. */
export function crdSchema(): Record<string, unknown> {
  return compiled().schema;
}

function compiled(): { schema: Record<string, unknown>; validate: ValidateFunction } {
  if (cached) return cached;
  const path = `${repositoryRoot()}/${CRD_FILE}`;
  const crd = parse(readFileSync(path, 'utf8')) as {
    spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
  };
  const schema = crd.spec.versions[0]?.schema.openAPIV3Schema;
  if (!schema) throw new Error(`failed to read the openAPIV3Schema from ${path}: no versions[0].schema`);

  closeObjects((schema.properties as Record<string, Record<string, unknown>> | undefined)?.spec);
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    verbose: true, // parentSchema lists the allowed fields for unknown-field messages
    strict: false, // the x-kubernetes-* keywords are not JSON Schema
    validateFormats: false,
  });
  cached = { schema, validate: ajv.compile(schema) };
  return cached;
}

/**
 * Sets additionalProperties: false on every object schema with properties
 * below `node`, so unknown fields (typos such as "acess") are reported. The
 * CRD cannot say it itself: structural schemas forbid properties together
 * with additionalProperties.
 */
function closeObjects(node: Record<string, unknown> | undefined): void {
  if (!node || typeof node !== 'object') return;
  const properties = node.properties as Record<string, Record<string, unknown>> | undefined;
  if (properties && node.additionalProperties === undefined) node.additionalProperties = false;
  for (const child of Object.values(properties ?? {})) closeObjects(child);
  closeObjects(node.items as Record<string, unknown> | undefined);
}

export interface SchemaProblem {
  /** Segments of the field path, such as ["spec", "file", "rules", 2]. */
  path: (string | number)[];
  value: unknown;
  problem: string;
  fix: string;
}

/**
 * Validates an object against the CRD schema, applying its defaults in place.
 * Returns every problem found, not only the first.
 */
export function validateSchema(object: unknown): SchemaProblem[] {
  const { validate } = compiled();
  if (validate(object)) return [];
  return (validate.errors ?? []).map((error) => toProblem(error, object));
}

function toProblem(error: ErrorObject, root: unknown): SchemaProblem {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/gu, '/').replace(/~0/gu, '~'))
    .map((s) => (/^\d+$/u.test(s) ? Number(s) : s));
  const value = valueAt(root, path);
  const params = error.params as Record<string, unknown>;

  switch (error.keyword) {
    case 'required': {
      const missing = String(params.missingProperty);
      return { path: [...path, missing], value: undefined, problem: `missing required field "${missing}"`, fix: `add ${missing}` };
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      const allowed = allowedProperties(error.parentSchema);
      const suggestion = closest(extra, allowed);
      return {
        path: [...path, extra],
        value: undefined,
        problem: `unknown field "${extra}"`,
        fix: suggestion
          ? `did you mean "${suggestion}"? Allowed fields: ${allowed.join(', ')}`
          : `remove it; allowed fields: ${allowed.join(', ')}`,
      };
    }
    case 'enum': {
      const values = (params.allowedValues as unknown[]).map(String);
      return { path, value, problem: 'unsupported value', fix: `use one of: ${values.join(', ')}` };
    }
    case 'type':
      return { path, value, problem: `must be ${article(String(params.type))}`, fix: `write ${article(String(params.type))} here` };
    case 'minItems':
      return {
        path,
        value: undefined,
        problem: `must have at least ${String(params.limit)} item(s)`,
        fix: 'add an item or remove the field',
      };
    case 'maxItems':
      return {
        path,
        value: undefined,
        problem: `has more than ${String(params.limit)} items`,
        fix: 'split it into several rules or policies',
      };
    case 'minLength':
      return { path, value, problem: 'must not be empty', fix: 'write a value or remove the field' };
    case 'maxLength':
      return { path, value, problem: `is longer than ${String(params.limit)} characters`, fix: 'shorten it' };
    case 'maxProperties':
      return { path, value: undefined, problem: `has more than ${String(params.limit)} entries`, fix: 'remove entries' };
    case 'minimum':
    case 'maximum':
      return {
        path,
        value,
        problem: `must be ${error.keyword === 'minimum' ? '>=' : '<='} ${String(params.limit)}`,
        fix: 'use a value in range',
      };
    case 'pattern':
      return { path, value, problem: 'invalid format', fix: patternFix(path) };
    default:
      return { path, value, problem: error.message ?? 'invalid', fix: 'see the CRD schema in crds/' };
  }
}

function patternFix(path: (string | number)[]): string {
  if (path.includes('containers')) return 'use a container name: lowercase letters, digits and "-", at most 63 characters';
  return 'see the pattern in the CRD schema in crds/';
}

function article(type: string): string {
  const noun = type === 'object' ? 'object (a mapping)' : type === 'array' ? 'list' : type;
  return /^[aeiou]/u.test(noun) ? `an ${noun}` : `a ${noun}`;
}

function allowedProperties(parentSchema: unknown): string[] {
  const properties = (parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return properties ? Object.keys(properties) : [];
}

/** Returns the allowed name within edit distance 2 of `name`, if any. */
function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 99;
}

export function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let node = root;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

/** Renders path segments as a field path: spec.file.rules[2].paths[0]. */
export function fieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}
