// Types of a ContainerSecurityPolicy after
// validation: defaults applied, paths normalized. The CRD in
// crds/sabpf.io_containersecuritypolicies.yaml is the source of truth for the
// YAML shape; these types describe the validated form.

export const API_GROUP = 'sabpf.io';
export const API_VERSION = `${API_GROUP}/v1alpha1`;
export const KIND = 'ContainerSecurityPolicy';

export type Action = 'allow' | 'deny' | 'audit';
export type Posture = Action;
export type Mode = 'enforce' | 'audit';
export type Severity = 'low' | 'medium' | 'high' | 'critical';
export type FileAccess = 'read' | 'write' | 'readwrite';
export type NetworkOperation = 'connect' | 'bind' | 'raw-socket' | 'packet-socket';
export type Protocol = 'tcp' | 'udp';

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** A path pattern after normalization: the path and how far it reaches. */
export interface PathPattern {
  /** Normalized absolute path without the wildcard suffix, "/" for the root. */
  path: string;
  /** exact: the path itself; children: its direct entries; subtree: it and everything below. */
  scope: 'exact' | 'children' | 'subtree';
}

export interface FileRule {
  /** Field path of the rule, such as spec.file.rules[2]; also its id in audit records. */
  id: string;
  name?: string;
  paths: PathPattern[];
  access: FileAccess;
  action: Action;
  fromSource: string[];
}

export interface ExecRule {
  id: string;
  name?: string;
  paths: PathPattern[];
  action: Action;
  fromSource: string[];
}

export interface PortRange {
  port: number;
  endPort: number;
}

export interface Cidr {
  /** The CIDR as written, for messages. */
  text: string;
  /** 16 bytes, IPv4 in its IPv4-mapped IPv6 form. */
  address: Uint8Array;
  /** Prefix length over the 128-bit form (IPv4 /8 is 104). */
  prefixLength: number;
}

export interface NetworkRule {
  id: string;
  name?: string;
  operation: NetworkOperation;
  protocols: Protocol[];
  /** Empty means any address. */
  cidrs: Cidr[];
  /** Empty means any port. */
  ports: PortRange[];
  action: Action;
}

export interface Section<R> {
  posture: Posture;
  rules: R[];
}

export interface PolicySpec {
  selector: LabelSelector;
  containers?: string[];
  mode: Mode;
  severity: Severity;
  message?: string;
  file?: Section<FileRule>;
  exec?: Section<ExecRule>;
  network?: Section<NetworkRule>;
}

export interface Policy {
  namespace: string;
  name: string;
  /** metadata.generation when known, for status observedGeneration. */
  generation?: number;
  uid?: string;
  spec: PolicySpec;
}

/** `namespace/name`, the id used in audit records, events and ordering. */
export function policyKey(policy: Pick<Policy, 'namespace' | 'name'>): string {
  return `${policy.namespace}/${policy.name}`;
}
