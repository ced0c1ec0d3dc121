// The reference decision: what the kernel programs decide for one operation
// of a container, computed from the policies themselves. `sabpf explain`
// prints it, the enforcer uses it to name the rule behind a kernel event, and
// tests check that the compiled tables make the kernel decide the same.
//
// Each policy decides on its own: deny if one of its deny rules matches, else
// audit if an audit rule matches, else allow if an allow rule matches, else
// the section's posture (a policy without the section has no opinion). The
// container's decision is the most restrictive policy decision
// (deny > audit > allow), and the lowest policy in namespace/name order among
// those that reached it is named. A deny from a policy in audit mode is
// recorded, not enforced.

import { cidrMatches } from './net.js';
import { formatPattern, patternMatches } from './paths.js';
import type { Action, Policy, Protocol } from './types.js';
import { policyKey } from './types.js';

export interface SocketOperation {
  kind: 'connect' | 'bind';
  /** 16 bytes, IPv4 in its IPv4-mapped form. */
  address: Uint8Array;
  port: number;
  protocol: Protocol;
}

export type Operation =
  | { kind: 'open'; path: string; access: 'read' | 'write'; executable?: string }
  | { kind: 'exec'; path: string; executable?: string }
  | SocketOperation
  | { kind: 'raw-socket' }
  | { kind: 'packet-socket' };

export type Outcome = 'deny' | 'audit' | 'allow' | 'none';

export interface PolicyOutcome {
  policy: string;
  outcome: Outcome;
  /** Rule id that decided (spec.file.rules[2]), or "posture". Undefined when the policy has no opinion. */
  by?: string;
  /** The pattern or value of the rule that matched, for explanations. */
  matched?: string;
  mode: 'enforce' | 'audit';
}

export interface Decision {
  /** Decision the policies reached. */
  decision: 'allow' | 'deny';
  /** The operation is blocked (a deny from a policy in enforce mode). */
  enforced: boolean;
  /** An audit record is written (any deny, or an audit action or posture). */
  recorded: boolean;
  /** The deciding policy and rule, when one exists. */
  policy?: string;
  rule?: string;
  mode?: 'enforce' | 'audit';
  reason: 'rule' | 'posture' | 'none';
  perPolicy: PolicyOutcome[];
}

const SEVERITY: Record<Outcome, number> = { none: 0, allow: 1, audit: 2, deny: 3 };

/** Decides an operation against policies already sorted by selectPolicies(). */
export function decide(policies: readonly Policy[], operation: Operation): Decision {
  const perPolicy = policies.map((policy) => decideOne(policy, operation));

  const enforcedDeny = perPolicy.find((p) => p.outcome === 'deny' && p.mode === 'enforce');
  const anyDeny = perPolicy.find((p) => p.outcome === 'deny');
  const audit = perPolicy.find((p) => p.outcome === 'audit');
  const deciding = enforcedDeny ?? anyDeny ?? audit;

  if (!deciding) return { decision: 'allow', enforced: false, recorded: false, reason: 'none', perPolicy };
  const decision: Decision = {
    decision: deciding.outcome === 'deny' ? 'deny' : 'allow',
    enforced: deciding === enforcedDeny,
    recorded: true,
    policy: deciding.policy,
    mode: deciding.mode,
    reason: deciding.by === 'posture' ? 'posture' : 'rule',
    perPolicy,
  };
  if (deciding.by !== undefined) decision.rule = deciding.by;
  return decision;
}

interface Candidate {
  action: Action;
  id: string;
  matched: string;
}

function decideOne(policy: Policy, operation: Operation): PolicyOutcome {
  const base = { policy: policyKey(policy), mode: policy.spec.mode };
  const section = sectionOf(policy, operation);
  if (!section) return { ...base, outcome: 'none' };

  let best: Candidate | undefined;
  for (const candidate of matchingRules(policy, operation)) {
    // Most restrictive action wins; among equals, the first rule in the policy.
    if (!best || SEVERITY[candidate.action] > SEVERITY[best.action]) best = candidate;
  }
  if (best) return { ...base, outcome: best.action, by: best.id, matched: best.matched };
  return { ...base, outcome: section.posture, by: 'posture' };
}

function sectionOf(policy: Policy, operation: Operation): { posture: Action } | undefined {
  switch (operation.kind) {
    case 'open':
      return policy.spec.file;
    case 'exec':
      return policy.spec.exec;
    default:
      return policy.spec.network;
  }
}

function* matchingRules(policy: Policy, operation: Operation): Generator<Candidate> {
  if (operation.kind === 'open') {
    for (const rule of policy.spec.file?.rules ?? []) {
      if (rule.access !== 'readwrite' && rule.access !== operation.access) continue;
      if (!sourceMatches(rule.fromSource, operation.executable)) continue;
      const pattern = rule.paths.find((p) => patternMatches(p, operation.path));
      if (pattern) yield { action: rule.action, id: rule.id, matched: formatPattern(pattern) };
    }
    return;
  }
  if (operation.kind === 'exec') {
    for (const rule of policy.spec.exec?.rules ?? []) {
      if (!sourceMatches(rule.fromSource, operation.executable)) continue;
      const pattern = rule.paths.find((p) => patternMatches(p, operation.path));
      if (pattern) yield { action: rule.action, id: rule.id, matched: formatPattern(pattern) };
    }
    return;
  }
  if (operation.kind === 'raw-socket' || operation.kind === 'packet-socket') {
    for (const rule of policy.spec.network?.rules ?? []) {
      if (rule.operation === operation.kind) yield { action: rule.action, id: rule.id, matched: operation.kind };
    }
    return;
  }
  const { address, port, protocol } = operation;
  for (const rule of policy.spec.network?.rules ?? []) {
    if (rule.operation !== operation.kind || !rule.protocols.includes(protocol)) continue;
    const cidr = rule.cidrs.length === 0 ? undefined : rule.cidrs.find((c) => cidrMatches(c, address));
    if (rule.cidrs.length > 0 && !cidr) continue;
    const portMatches = rule.ports.length === 0 || rule.ports.some((r) => port >= r.port && port <= r.endPort);
    if (!portMatches) continue;
    yield { action: rule.action, id: rule.id, matched: `${cidr?.text ?? 'any address'} port ${port}` };
  }
}

function sourceMatches(fromSource: readonly string[], executable: string | undefined): boolean {
  if (fromSource.length === 0) return true;
  return executable !== undefined && fromSource.includes(executable);
}
