// Checks that need more than the schema: path normalization, CIDRs, label
// syntax, and the CEL rules of the CRD. Builds the validated PolicySpec.

import { formatPattern, normalizePattern } from './paths.js';
import { parseCidr } from './net.js';
import { fieldPath } from './schema.js';
import type {
  Action,
  Cidr,
  ExecRule,
  FileRule,
  LabelSelector,
  NetworkRule,
  PathPattern,
  PolicySpec,
  PortRange,
  Protocol,
  Section,
} from './types.js';

export interface SemanticProblem {
  path: (string | number)[];
  value?: unknown;
  problem: string;
  fix: string;
  severity: 'error' | 'warning';
}

type Raw = Record<string, unknown>;
type Path = (string | number)[];

// The schema has already reported values of the wrong type; these keep the
// semantic checks from tripping over them.
function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function asObject(value: unknown): Raw {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Raw) : {};
}

function asObjects(value: unknown): Raw[] {
  return asArray(value).map(asObject);
}

/**
 * Checks a spec that passed the schema (defaults applied) and builds the
 * validated form. `skip` contains field paths the schema already reported, so
 * one mistake gives one message.
 */
export function checkSpec(spec: Raw, skip: ReadonlySet<string>): { spec?: PolicySpec; problems: SemanticProblem[] } {
  const problems: SemanticProblem[] = [];
  const report = (path: Path, problem: string, fix: string, value?: unknown, severity: 'error' | 'warning' = 'error'): void => {
    if (skip.has(fieldPath(path))) return;
    problems.push({ path, value, problem, fix, severity });
  };

  if (spec.file === undefined && spec.exec === undefined && spec.network === undefined) {
    report(['spec'], 'policy has no file, exec or network section', 'add at least one section');
  }

  const selector = checkSelector(asObject(spec.selector), report);
  const file = spec.file ? checkFileSection(asObject(spec.file), report) : undefined;
  const exec = spec.exec ? checkExecSection(asObject(spec.exec), report) : undefined;
  const network = spec.network ? checkNetworkSection(asObject(spec.network), report) : undefined;

  const result: PolicySpec = {
    selector,
    mode: (spec.mode as PolicySpec['mode']) ?? 'enforce',
    severity: (spec.severity as PolicySpec['severity']) ?? 'medium',
  };
  if (Array.isArray(spec.containers)) result.containers = spec.containers.filter((c): c is string => typeof c === 'string');
  if (typeof spec.message === 'string') result.message = spec.message;
  if (file) result.file = file;
  if (exec) result.exec = exec;
  if (network) result.network = network;
  return { spec: result, problems };
}

type Report = (path: Path, problem: string, fix: string, value?: unknown, severity?: 'error' | 'warning') => void;

// Kubernetes label syntax: an optional DNS-subdomain prefix and a name of at most 63 characters.
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/u;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/u;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/u;

function validLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return LABEL_NAME.test(key);
  const prefix = key.slice(0, slash);
  return prefix.length <= 253 && LABEL_PREFIX.test(prefix) && LABEL_NAME.test(key.slice(slash + 1));
}

function checkSelector(raw: Raw, report: Report): LabelSelector {
  const matchLabels = asObject(raw.matchLabels) as Record<string, string>;
  const matchExpressions = asObjects(raw.matchExpressions) as { key: string; operator: string; values?: string[] }[];
  if (Object.keys(matchLabels).length === 0 && matchExpressions.length === 0) {
    report(
      ['spec', 'selector'],
      'selector is empty and would select every pod of the namespace',
      'add matchLabels or matchExpressions that name the pods to confine',
      raw,
    );
  }
  for (const [key, value] of Object.entries(matchLabels)) {
    if (!validLabelKey(key)) {
      report(
        ['spec', 'selector', 'matchLabels', key],
        'invalid label key',
        'use an optional DNS prefix and a name of letters, digits, "-", "_" and "." (at most 63)',
        key,
      );
    }
    if (typeof value === 'string' && !LABEL_VALUE.test(value)) {
      report(
        ['spec', 'selector', 'matchLabels', key],
        'invalid label value',
        'use letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
        value,
      );
    }
  }
  matchExpressions.forEach((expression, i) => {
    const at: Path = ['spec', 'selector', 'matchExpressions', i];
    if (typeof expression.key === 'string' && !validLabelKey(expression.key)) {
      report(
        [...at, 'key'],
        'invalid label key',
        'use an optional DNS prefix and a name of letters, digits, "-", "_" and "."',
        expression.key,
      );
    }
    const values = asArray(expression.values);
    if ((expression.operator === 'In' || expression.operator === 'NotIn') && values.length === 0) {
      report([...at, 'values'], `operator ${expression.operator} needs at least one value`, 'add values, or use Exists', undefined);
    }
    if ((expression.operator === 'Exists' || expression.operator === 'DoesNotExist') && values.length > 0) {
      report([...at, 'values'], `operator ${expression.operator} takes no values`, 'remove values, or use In', values);
    }
  });
  const selector: LabelSelector = {};
  if (Object.keys(matchLabels).length > 0) selector.matchLabels = matchLabels;
  if (matchExpressions.length > 0) {
    selector.matchExpressions = matchExpressions.map((e) => {
      const requirement: NonNullable<LabelSelector['matchExpressions']>[number] = {
        key: e.key,
        operator: e.operator as 'In',
      };
      if (e.values) requirement.values = e.values;
      return requirement;
    });
  }
  return selector;
}

function checkPosture(raw: Raw, at: Path, report: Report): void {
  const rules = asObjects(raw.rules);
  if (raw.posture === 'allow' && rules.some((r) => r.action === 'allow')) {
    report(
      [...at, 'posture'],
      'allow rules have no effect under posture allow',
      'set posture: deny to make the allow rules an allow-list, or remove the allow rules',
      raw.posture,
    );
  }
  if (raw.posture === 'deny' && !rules.some((r) => r.action === 'allow' || r.action === 'audit')) {
    report(
      [...at, 'posture'],
      'posture deny with no allow rule denies every operation of this section',
      'add allow rules for what the container needs, or set posture: allow',
      raw.posture,
      'warning',
    );
  }
}

function checkPaths(rawPaths: unknown, at: Path, report: Report): PathPattern[] {
  const patterns: PathPattern[] = [];
  const seen = new Set<string>();
  asArray(rawPaths).forEach((raw, i) => {
    if (typeof raw !== 'string') return;
    const result = normalizePattern(raw);
    if (!result.ok) {
      report([...at, i], result.problem, result.fix, raw);
      return;
    }
    const key = formatPattern(result.pattern);
    if (seen.has(key)) {
      report([...at, i], `duplicate path ${key}`, 'remove the duplicate', raw, 'warning');
      return;
    }
    seen.add(key);
    patterns.push(result.pattern);
  });
  return patterns;
}

function checkSources(rawSources: unknown, at: Path, report: Report): string[] {
  const sources: string[] = [];
  asArray(rawSources).forEach((raw, i) => {
    if (typeof raw !== 'string') return;
    const result = normalizePattern(raw, false);
    if (!result.ok) {
      report([...at, i], result.problem, result.fix, raw);
      return;
    }
    if (!sources.includes(result.pattern.path)) sources.push(result.pattern.path);
  });
  return sources.sort();
}

function checkFileSection(raw: Raw, report: Report): Section<FileRule> {
  const at: Path = ['spec', 'file'];
  checkPosture(raw, at, report);
  const rules = asObjects(raw.rules).map((rule, i): FileRule => {
    const ruleAt: Path = [...at, 'rules', i];
    const built: FileRule = {
      id: fieldPath(ruleAt),
      paths: checkPaths(rule.paths, [...ruleAt, 'paths'], report),
      access: (rule.access as FileRule['access']) ?? 'readwrite',
      action: rule.action as Action,
      fromSource: checkSources(rule.fromSource, [...ruleAt, 'fromSource'], report),
    };
    if (typeof rule.name === 'string') built.name = rule.name;
    return built;
  });
  checkContradictions(rules, at, report, (r) => (r.access === 'readwrite' ? ['read', 'write'] : [r.access]));
  return { posture: raw.posture as Section<FileRule>['posture'], rules };
}

function checkExecSection(raw: Raw, report: Report): Section<ExecRule> {
  const at: Path = ['spec', 'exec'];
  checkPosture(raw, at, report);
  const rules = asObjects(raw.rules).map((rule, i): ExecRule => {
    const ruleAt: Path = [...at, 'rules', i];
    const built: ExecRule = {
      id: fieldPath(ruleAt),
      paths: checkPaths(rule.paths, [...ruleAt, 'paths'], report),
      action: rule.action as Action,
      fromSource: checkSources(rule.fromSource, [...ruleAt, 'fromSource'], report),
    };
    if (typeof rule.name === 'string') built.name = rule.name;
    return built;
  });
  checkContradictions(rules, at, report, () => ['exec']);
  return { posture: raw.posture as Section<ExecRule>['posture'], rules };
}

/**
 * Rejects an allow (or audit) rule and a deny rule of the same policy on the
 * same pattern, access and sources: deny wins, so the other rule is dead and
 * almost certainly a mistake.
 */
function checkContradictions<R extends { id: string; paths: PathPattern[]; action: Action; fromSource: string[] }>(
  rules: R[],
  at: Path,
  report: Report,
  accessesOf: (rule: R) => string[],
): void {
  // Only a section with both deny and other rules can contradict itself.
  if (!rules.some((r) => r.action === 'deny') || rules.every((r) => r.action === 'deny')) return;
  const denied = new Map<string, string>();
  for (const rule of rules) {
    if (rule.action !== 'deny') continue;
    for (const pattern of rule.paths) {
      for (const access of accessesOf(rule)) {
        denied.set(`${formatPattern(pattern)}|${access}|${rule.fromSource.join(',')}`, rule.id);
      }
    }
  }
  rules.forEach((rule, i) => {
    if (rule.action === 'deny') return;
    rule.paths.forEach((pattern) => {
      for (const access of accessesOf(rule)) {
        const denier = denied.get(`${formatPattern(pattern)}|${access}|${rule.fromSource.join(',')}`);
        if (denier === undefined) continue;
        const shown = formatPattern(pattern);
        report(
          [...at, 'rules', i],
          `contradicting rules: this rule's ${rule.action} of ${shown}${access === 'exec' ? '' : ` (${access})`} is overridden by the deny in ${denier}`,
          'a deny always wins; remove one of the two rules',
          shown,
        );
        return;
      }
    });
  });
}

function checkNetworkSection(raw: Raw, report: Report): Section<NetworkRule> {
  const at: Path = ['spec', 'network'];
  checkPosture(raw, at, report);
  const rules = asObjects(raw.rules).map((rule, i): NetworkRule => {
    const ruleAt: Path = [...at, 'rules', i];
    const operation = rule.operation as NetworkRule['operation'];
    const isSocketRule = operation === 'raw-socket' || operation === 'packet-socket';
    if (isSocketRule) {
      for (const field of ['protocol', 'cidrs', 'ports']) {
        if (rule[field] !== undefined) {
          report(
            [...ruleAt, field],
            `${operation} rules take no ${field}`,
            `remove ${field}; they apply to every ${operation} created`,
            rule[field],
          );
        }
      }
    }

    const cidrs: Cidr[] = [];
    asArray(rule.cidrs).forEach((text, j) => {
      if (typeof text !== 'string') return;
      const parsed = parseCidr(text);
      if (parsed.ok) cidrs.push(parsed.cidr);
      else report([...ruleAt, 'cidrs', j], parsed.problem, parsed.fix, text);
    });

    const ports: PortRange[] = [];
    asObjects(rule.ports).forEach((entry, j) => {
      if (typeof entry.port !== 'number') return;
      const port = entry.port;
      const endPort = typeof entry.endPort === 'number' ? entry.endPort : port;
      if (endPort < port) {
        report(
          [...ruleAt, 'ports', j, 'endPort'],
          `endPort ${endPort} is below port ${port}`,
          'set endPort >= port, or remove it for a single port',
          endPort,
        );
        return;
      }
      ports.push({ port, endPort });
    });

    const protocols: Protocol[] = isSocketRule ? [] : rule.protocol ? [rule.protocol as Protocol] : ['tcp', 'udp'];
    const built: NetworkRule = { id: fieldPath(ruleAt), operation, protocols, cidrs, ports, action: rule.action as Action };
    if (typeof rule.name === 'string') built.name = rule.name;
    return built;
  });
  return { posture: raw.posture as Section<NetworkRule>['posture'], rules };
}
