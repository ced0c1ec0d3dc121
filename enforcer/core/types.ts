// The contract between the enforcer's sources of desired state (a
// containers file in standalone mode, informers in Kubernetes mode) and the
// one owner of policy-to-container state (enforcer/core/enforcer.ts).

import type { ContainerRef } from '../../compiler/selector.js';
import type { Policy } from '../../compiler/types.js';
import type { Operation } from '../audit/record.js';

/** A running container on this node, with the cgroup its programs attach to. */
export interface NodeContainer extends ContainerRef {
  /** Pod UID, for Events' involvedObject. */
  podUid?: string;
  /** Runtime container id without the runtime prefix (containerd://...), when known. */
  containerId?: string;
  /** Absolute cgroup v2 directory of the container, such as /sys/fs/cgroup/kubepods.slice/.../cri-containerd-<id>.scope. */
  cgroupPath: string;
}

/** A policy as the enforcer receives it, with what it needs to trust it. */
export interface PolicyUpdate {
  policy: Policy;
  /** Signature stored on the object by the admission webhook (annotation sabpf.io/signature), when present. */
  signature?: string;
  /** The object as received, for signature verification of its spec. Read only: it may be an informer's cached copy. */
  object?: Record<string, unknown>;
}

/** One recorded decision, after the enforcer resolved the kernel event to a container, policy and rule. */
export interface DecisionRecord {
  time: string;
  node: string;
  namespace: string;
  pod: string;
  podUid?: string;
  container: string;
  cgroupId: string;
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  executable: string;
  operation: Operation;
  access?: 'read' | 'write';
  resource: Record<string, string | number>;
  decision: 'allow' | 'deny';
  enforced: boolean;
  mode: 'enforce' | 'audit';
  policy: string;
  rule: string;
  severity: string;
  message?: string;
  reason: 'rule' | 'posture' | 'path-truncated' | 'rules-below';
}

/** State changes the sources feed in. Every call is serialized by the enforcer. */
export interface DesiredStateSink {
  upsertPolicy(update: PolicyUpdate): Promise<void>;
  deletePolicy(namespace: string, name: string): Promise<void>;
  upsertContainer(container: NodeContainer): Promise<void>;
  deleteContainer(cgroupPath: string): Promise<void>;
}

/** Per-policy view of what this node enforces, for CSP status. */
export interface PolicyNodeStatus {
  policy: string;
  /** Containers on this node the policy confines right now. */
  containers: number;
  /** The policy compiled; false with `error` when it did not (for example, more than 32 policies on a container). */
  compiled: boolean;
  error?: string;
  /** The programs are attached in the kernel for every container listed. */
  enforced: boolean;
  denials: number;
  lastDenial?: DecisionRecord;
}
