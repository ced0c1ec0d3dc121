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

import { alsoAddresses, cidrMatches } from './net.js';
import { formatPattern, patternMatches } from './paths.js';
import type { Action, Cidr, NetworkRule, Policy, Protocol } from './types.js';
import { policyKey } from './types.js';

export interface SocketOperation {
  kind: 'connect' | 'bind';
  /** 16 bytes, IPv4 in its IPv4-mapped form. */
  address: Uint8Array;
  port: number;
  protocol: Protocol;
  /** Whether the socket set IPV6_V6ONLY, so that a bind to :: takes no IPv4. */
  v6only?: boolean;
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

/** The deciding rule of one policy and what it matched, formatted only for the winner. */
interface Candidate {
  action: Action;
  id: string;
  matched: () => string;
}

// Allocation-light on purpose: the webhook calls this for every container of
// every admitted pod, and garbage here showed up as admission latency.
function decideOne(policy: Policy, operation: Operation): PolicyOutcome {
  const key = policyKey(policy);
  const mode = policy.spec.mode;
  const section = sectionOf(policy, operation);
  if (!section) return { policy: key, mode, outcome: 'none' };

  const best = bestRule(policy, operation);
  if (best) return { policy: key, mode, outcome: best.action, by: best.id, matched: best.matched() };
  return { policy: key, mode, outcome: section.posture, by: 'posture' };
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

/** Returns the most restrictive matching rule; among equals, the first in the policy. */
function bestRule(policy: Policy, operation: Operation): Candidate | undefined {
  let best: Candidate | undefined;
  const offer = (action: Action, id: string, matched: () => string): void => {
    if (!best || SEVERITY[action] > SEVERITY[best.action]) best = { action, id, matched };
  };

  if (operation.kind === 'open' || operation.kind === 'exec') {
    const rules = operation.kind === 'open' ? (policy.spec.file?.rules ?? []) : (policy.spec.exec?.rules ?? []);
    for (const rule of rules) {
      if (best?.action === 'deny') break;
      if (operation.kind === 'open' && 'access' in rule && rule.access !== 'readwrite' && rule.access !== operation.access) continue;
      if (!sourceMatches(rule.fromSource, operation.executable)) continue;
      for (const pattern of rule.paths) {
        if (!patternMatches(pattern, operation.path)) continue;
        offer(rule.action, rule.id, () => formatPattern(pattern));
        break;
      }
    }
    return best;
  }

  const rules = policy.spec.network?.rules ?? [];
  if (operation.kind === 'raw-socket' || operation.kind === 'packet-socket') {
    for (const rule of rules) if (rule.operation === operation.kind) offer(rule.action, rule.id, () => operation.kind);
    return best;
  }
  // An operation on the unspecified address reaches other addresses too
  // (net.bpf.c), and each must be ruled: a deny for any of them wins, and the
  // operation is allowed or audited by rule only if every one of them is.
  let combined = bestNetworkRule(rules, operation, operation.address);
  for (const other of alsoAddresses(operation.kind, operation.address, operation.v6only)) {
    combined = stricter(combined, bestNetworkRule(rules, operation, other));
  }
  return combined;
}

/** Returns the most restrictive network rule that matches the operation at address. */
function bestNetworkRule(rules: NetworkRule[], operation: SocketOperation, address: Uint8Array): Candidate | undefined {
  const { port, protocol } = operation;
  let best: Candidate | undefined;
  for (const rule of rules) {
    if (rule.operation !== operation.kind || !rule.protocols.includes(protocol)) continue;
    let portMatches = rule.ports.length === 0;
    for (const range of rule.ports) if (port >= range.port && port <= range.endPort) portMatches = true;
    if (!portMatches) continue;

    const cidr = matchingCidr(rule.cidrs, address);
    if (cidr === undefined) continue;
    if (!best || SEVERITY[rule.action] > SEVERITY[best.action]) {
      best = { action: rule.action, id: rule.id, matched: () => `${cidr === 'any' ? 'any address' : cidr.text} port ${port}` };
    }
  }
  return best;
}

/** Combines the rulings for two addresses of one operation; undefined leaves it to the posture. */
function stricter(a: Candidate | undefined, b: Candidate | undefined): Candidate | undefined {
  if (a?.action === 'deny') return a;
  if (b?.action === 'deny') return b;
  if (a === undefined || b === undefined) return undefined;
  return SEVERITY[b.action] > SEVERITY[a.action] ? b : a;
}

/** Returns the first CIDR of a rule that contains address, 'any' for a rule without CIDRs, or undefined. */
function matchingCidr(cidrs: Cidr[], address: Uint8Array): Cidr | 'any' | undefined {
  if (cidrs.length === 0) return 'any';
  return cidrs.find((candidate) => cidrMatches(candidate, address));
}

function sourceMatches(fromSource: readonly string[], executable: string | undefined): boolean {
  if (fromSource.length === 0) return true;
  return executable !== undefined && fromSource.includes(executable);
}
