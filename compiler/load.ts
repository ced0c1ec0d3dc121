// Loading policies from YAML text: parse, check each document against the
// CRD schema and the semantic rules, and report every problem at once.

import { showValue, type Diagnostic } from './diagnostics.js';
import { checkSpec } from './semantic.js';
import { fieldPath, validateSchema } from './schema.js';
import { MAX_SOURCE_BYTES, parseSource, type SourceDocument } from './source.js';
import { API_GROUP, API_VERSION, KIND, type Policy } from './types.js';

/**
 * Largest single document accepted, in bytes: etcd stores at most about
 * 1.5 MiB per object (its default --max-request-bytes), so a larger policy
 * could never be applied to a cluster.
 */
export const MAX_DOCUMENT_BYTES = 1536 * 1024;

/** Diagnostics kept per document; a wildly wrong document would otherwise flood the output. */
const MAX_DIAGNOSTICS_PER_DOCUMENT = 200;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/u;

export interface LoadedObject {
  document: number;
  object: Record<string, unknown>;
}

export interface LoadResult {
  policies: Policy[];
  /** Documents of other kinds (pods, for example), untouched. */
  others: LoadedObject[];
  diagnostics: Diagnostic[];
}

export interface LoadOptions {
  /** Namespace for policies without metadata.namespace. */
  defaultNamespace?: string;
  /** Report documents of other kinds as errors (sabpf validate) instead of returning them. */
  policiesOnly?: boolean;
  /**
   * Apply schema defaults to the given object instead of a copy. Only for
   * objects the caller owns: never for informer-cached objects.
   */
  inPlace?: boolean;
}

/** Loads every ContainerSecurityPolicy of a YAML text. Never throws on bad input. */
export function loadPolicies(text: string, file: string, options: LoadOptions = {}): LoadResult {
  const result: LoadResult = { policies: [], others: [], diagnostics: [] };
  const byteLength = Buffer.byteLength(text, 'utf8');
  if (byteLength > MAX_SOURCE_BYTES) {
    result.diagnostics.push({
      file,
      line: 0,
      column: 0,
      document: 0,
      field: '(file)',
      problem: `input is ${(byteLength / 1048576).toFixed(1)} MiB, larger than the ${MAX_SOURCE_BYTES / 1048576} MiB limit`,
      fix: 'split the policies over several files',
      severity: 'error',
    });
    return result;
  }

  for (const document of parseSource(text)) {
    const diagnostics = loadDocument(document, file, options, result).sort((a, b) => a.line - b.line || a.column - b.column);
    if (diagnostics.length > MAX_DIAGNOSTICS_PER_DOCUMENT) {
      const kept = diagnostics.slice(0, MAX_DIAGNOSTICS_PER_DOCUMENT);
      kept.push({
        ...(kept[0] as Diagnostic),
        field: '(document)',
        value: undefined,
        problem: `${diagnostics.length - MAX_DIAGNOSTICS_PER_DOCUMENT} more problems not shown`,
        fix: 'fix the problems above and validate again',
      });
      result.diagnostics.push(...kept);
    } else {
      result.diagnostics.push(...diagnostics);
    }
  }
  return result;
}

/**
 * Validates one policy object that is already parsed (an AdmissionReview's
 * object, or a watch event). Diagnostics carry no line numbers.
 */
export function loadPolicyObject(object: unknown, options: LoadOptions = {}): LoadResult {
  const result: LoadResult = { policies: [], others: [], diagnostics: [] };
  const document: SourceDocument = {
    index: 0,
    value: object,
    locate: () => ({ line: 0, column: 0 }),
    size: 0,
    fromText: false,
    syntaxErrors: [],
  };
  result.diagnostics.push(...loadDocument(document, '<object>', { ...options, policiesOnly: true }, result));
  return result;
}

function loadDocument(document: SourceDocument, file: string, options: LoadOptions, result: LoadResult): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  // Set once the document is known to be a policy, so later problems name it.
  const named: { policy?: string } = {};
  // Reports a problem at a field path; `field` overrides the rendered path for whole-document problems.
  const report = (
    path: (string | number)[],
    problem: string,
    fix: string,
    extra: { value?: unknown; severity?: Diagnostic['severity']; field?: string } = {},
  ): void => {
    diagnostics.push({
      file,
      document: document.index,
      ...document.locate(path),
      ...(named.policy !== undefined ? { policy: named.policy } : {}),
      field: extra.field ?? fieldPath(path),
      ...(extra.value !== undefined ? { value: showValue(extra.value) } : {}),
      problem,
      fix,
      severity: extra.severity ?? 'error',
    });
  };

  for (const error of document.syntaxErrors) {
    diagnostics.push({
      file,
      document: document.index,
      line: error.line,
      column: error.column,
      field: '(yaml)',
      problem: `invalid YAML: ${error.message}`,
      fix: 'fix the YAML syntax at this position',
      severity: 'error',
    });
  }
  if (document.syntaxErrors.length > 0 || document.value === undefined || document.value === null) {
    return diagnostics;
  }

  const value = document.value;
  if (typeof value !== 'object' || Array.isArray(value)) {
    report([], 'document is not a Kubernetes object', 'write a mapping with apiVersion, kind, metadata and spec', {
      value,
      field: '(document)',
    });
    return diagnostics;
  }
  const object = value as Record<string, unknown>;
  if (document.size > MAX_DOCUMENT_BYTES) {
    report(
      [],
      `document is ${(document.size / 1048576).toFixed(1)} MiB, larger than the ${MAX_DOCUMENT_BYTES / 1048576} MiB Kubernetes stores per object`,
      'split the rules over several policies that select the same pods',
      { field: '(document)' },
    );
    return diagnostics;
  }

  const kind = object.kind;
  const apiVersion = object.apiVersion;
  const isPolicy = kind === KIND || (typeof apiVersion === 'string' && apiVersion.startsWith(`${API_GROUP}/`));
  if (!isPolicy) {
    if (options.policiesOnly) {
      report(['kind'], `expected kind ${KIND}`, `set apiVersion: ${API_VERSION} and kind: ${KIND}, or remove this document`, {
        value: kind,
      });
    } else {
      result.others.push({ document: document.index, object });
    }
    return diagnostics;
  }
  if (apiVersion !== API_VERSION) report(['apiVersion'], 'unsupported apiVersion', `set apiVersion: ${API_VERSION}`, { value: apiVersion });
  if (kind !== KIND) report(['kind'], 'unsupported kind', `set kind: ${KIND}`, { value: kind });

  const metadata = (object.metadata ?? {}) as Record<string, unknown>;
  const name = metadata.name;
  const namespace = metadata.namespace ?? options.defaultNamespace ?? 'default';
  named.policy = `${String(namespace)}/${String(name ?? '?')}`;
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    report(
      ['metadata', 'name'],
      name === undefined ? 'missing name' : 'invalid name',
      'use a DNS subdomain name: lowercase letters, digits, "-" and ".", at most 253 characters',
      { value: name },
    );
  }
  if (typeof namespace !== 'string' || namespace.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/u.test(namespace)) {
    report(['metadata', 'namespace'], 'invalid namespace', 'use a DNS label: lowercase letters, digits and "-", at most 63 characters', {
      value: namespace,
    });
  }

  // The schema applies its defaults in place. Values parsed from YAML here are
  // our own; objects passed in by callers are copied unless they own them.
  const copy = options.inPlace || document.fromText ? object : structuredClone(object);
  const skip = new Set<string>();
  for (const problem of validateSchema(copy)) {
    skip.add(fieldPath(problem.path));
    report(problem.path, problem.problem, problem.fix, { value: problem.value });
  }

  const spec = copy.spec;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return diagnostics;
  // Semantic checks run on what the schema accepted; fields it rejected are skipped.
  const checked = checkSpec(spec as Record<string, unknown>, skip);
  for (const problem of checked.problems) {
    report(problem.path, problem.problem, problem.fix, { value: problem.value, severity: problem.severity });
  }

  const failed = diagnostics.some((d) => d.severity === 'error');
  if (!failed && checked.spec && typeof name === 'string' && typeof namespace === 'string') {
    const loaded: Policy = { namespace, name, spec: checked.spec };
    if (typeof metadata.generation === 'number') loaded.generation = metadata.generation;
    if (typeof metadata.uid === 'string') loaded.uid = metadata.uid;
    result.policies.push(loaded);
  }
  return diagnostics;
}
