// The status one node writes into a ContainerSecurityPolicy, computed from
// the status the object has now (other nodes' contributions included) and
// this node's view. Pure, so the condition transitions are unit-tested.
//
// Several nodes write the same status. Fields that belong to one node
// (enforcedNodes, denials) are merged, never overwritten. A failure one node
// reported (CompileFailed, AttachFailed) is not cleared by another node that
// merely has nothing to report. Only the reporting node or a new generation
// clears it, and an AttachFailed also ends when some node enforces the policy.

import type { DecisionRecord, PolicyNodeStatus } from '../core/types.js';
import { kubeTime } from './clock.js';
import { operationName, resourceText } from './denial-message.js';
import type { Condition, CspStatus, LastDenial } from './objects.js';

export const CONDITION_COMPILED = 'Compiled';
export const CONDITION_ENFORCED = 'Enforced';

/** Nodes named in the Enforced message before it ends with "and N more". */
const NODES_IN_MESSAGE = 5;

export interface NodeStatusInput {
  node: string;
  /** metadata.generation of the object this node validated. */
  generation: number;
  valid: boolean;
  /** Validation errors of `generation` when it is invalid. */
  errors: string[];
  /** The generation this node hands to the enforcer (the latest valid one), if any. */
  enforcedGeneration: number | undefined;
  ruleCount: number | undefined;
  /** The enforcer core's view of the policy on this node; undefined before it reported. */
  nodeStatus: PolicyNodeStatus | undefined;
  /** Denials on this node since its last successful status write. */
  newDenials: number;
  lastDenial: DecisionRecord | undefined;
  now: number;
}

export function computeStatus(current: CspStatus | undefined, input: NodeStatusInput): CspStatus {
  const next: CspStatus = { ...(current ?? {}) };
  const now = kubeTime(input.now);

  next.observedGeneration = input.generation;
  if (input.ruleCount !== undefined) next.ruleCount = input.ruleCount;

  const enforcing = input.enforcedGeneration !== undefined && input.nodeStatus?.enforced === true;
  const nodes = new Set(current?.enforcedNodes ?? []);
  if (enforcing) nodes.add(input.node);
  else nodes.delete(input.node);
  next.enforcedNodes = [...nodes].sort();
  next.enforcedNodeCount = next.enforcedNodes.length;

  next.denials = (current?.denials ?? 0) + input.newDenials;
  if (input.lastDenial && (!current?.lastDenial || current.lastDenial.time <= input.lastDenial.time)) {
    next.lastDenial = lastDenialOf(input.lastDenial);
  }

  const existing = current?.conditions ?? [];
  const compiled = compiledCondition(input, find(existing, CONDITION_COMPILED));
  const enforced = enforcedCondition(input, next.enforcedNodes, find(existing, CONDITION_ENFORCED));
  next.conditions = [
    ...existing.filter((c) => c.type !== CONDITION_COMPILED && c.type !== CONDITION_ENFORCED),
    transition(find(existing, CONDITION_COMPILED), compiled, now),
    transition(find(existing, CONDITION_ENFORCED), enforced, now),
  ];
  return next;
}

export function lastDenialOf(record: DecisionRecord): LastDenial {
  return {
    time: record.time,
    node: record.node,
    pod: record.pod,
    container: record.container,
    operation: record.access ? `${operationName(record)} (${record.access})` : operationName(record),
    resource: resourceText(record),
    rule: record.reason === 'rule' ? record.rule : record.reason,
  };
}

type Draft = Omit<Condition, 'lastTransitionTime'>;

function compiledCondition(input: NodeStatusInput, existing: Condition | undefined): Draft {
  const base = { type: CONDITION_COMPILED, observedGeneration: input.generation };
  if (!input.valid) {
    const kept =
      input.enforcedGeneration !== undefined ? `; generation ${input.enforcedGeneration} stays in force` : '; nothing of it is enforced';
    return {
      ...base,
      status: 'False',
      reason: 'InvalidPolicy',
      message: `generation ${input.generation} is invalid: ${input.errors.join('; ')}${kept}`,
    };
  }
  if (input.nodeStatus?.compiled === false) {
    return {
      ...base,
      status: 'False',
      reason: 'CompileFailed',
      message: `${nodePrefix(input.node)}${input.nodeStatus.error ?? 'the policy did not compile'}`,
    };
  }
  if (reportedByOtherNode(existing, 'CompileFailed', input)) return stripTime(existing);
  return { ...base, status: 'True', reason: 'Compiled', message: `generation ${input.generation} is valid and compiles` };
}

function enforcedCondition(input: NodeStatusInput, nodes: string[], existing: Condition | undefined): Draft {
  const base = { type: CONDITION_ENFORCED, observedGeneration: input.generation };
  if (nodes.length > 0) {
    const named =
      nodes.slice(0, NODES_IN_MESSAGE).join(', ') + (nodes.length > NODES_IN_MESSAGE ? ` and ${nodes.length - NODES_IN_MESSAGE} more` : '');
    const stale =
      !input.valid && input.enforcedGeneration !== undefined
        ? `; generation ${input.generation} is invalid, generation ${input.enforcedGeneration} is enforced`
        : '';
    return {
      ...base,
      status: 'True',
      reason: 'Enforced',
      message: `enforced on ${nodes.length} node${nodes.length === 1 ? '' : 's'}: ${named}${stale}`,
    };
  }
  if (!input.valid && input.enforcedGeneration === undefined) {
    return {
      ...base,
      status: 'False',
      reason: 'NotApplied',
      message: `generation ${input.generation} is invalid and no earlier generation was valid`,
    };
  }
  const status = input.nodeStatus;
  if (status && status.containers > 0 && !status.enforced) {
    return {
      ...base,
      status: 'False',
      reason: 'AttachFailed',
      message: `${nodePrefix(input.node)}${status.error ?? `the programs are not attached to all ${status.containers} selected containers`}`,
    };
  }
  if (reportedByOtherNode(existing, 'AttachFailed', input)) return stripTime(existing);
  if (!status) {
    return { ...base, status: 'Unknown', reason: 'Pending', message: `no node enforces it yet; ${input.node} has not reported on it` };
  }
  return { ...base, status: 'False', reason: 'NoMatchingContainers', message: 'no node runs a container that the policy selects' };
}

function nodePrefix(node: string): string {
  return `node ${node}: `;
}

/** Tells whether the condition is a failure another node wrote for this generation, which this node cannot refute. */
function reportedByOtherNode(existing: Condition | undefined, reason: string, input: NodeStatusInput): existing is Condition {
  return (
    existing !== undefined &&
    existing.status === 'False' &&
    existing.reason === reason &&
    existing.observedGeneration === input.generation &&
    !(existing.message ?? '').startsWith(nodePrefix(input.node))
  );
}

function stripTime(condition: Condition): Draft {
  const { lastTransitionTime: _time, ...rest } = condition;
  return rest;
}

function find(conditions: Condition[], type: string): Condition | undefined {
  return conditions.find((c) => c.type === type);
}

/** lastTransitionTime moves only when the status changes. */
export function transition(previous: Condition | undefined, next: Draft, now: string): Condition {
  const lastTransitionTime = previous && previous.status === next.status && previous.lastTransitionTime ? previous.lastTransitionTime : now;
  return {
    type: next.type,
    status: next.status,
    ...(next.observedGeneration !== undefined ? { observedGeneration: next.observedGeneration } : {}),
    lastTransitionTime,
    ...(next.reason !== undefined ? { reason: next.reason } : {}),
    ...(next.message !== undefined ? { message: next.message } : {}),
  };
}
