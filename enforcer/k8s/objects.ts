// The parts of Kubernetes objects this package reads, as they arrive in JSON
// (timestamps are strings). The library's generated models describe
// deserialized objects (Date fields), which raw list and watch JSON is not.

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface ContainerState {
  running?: { startedAt?: string };
  terminated?: { exitCode?: number; reason?: string; startedAt?: string; finishedAt?: string; containerID?: string };
  waiting?: { reason?: string; message?: string };
}

export interface ContainerStatus {
  name: string;
  containerID?: string;
  state?: ContainerState;
  ready?: boolean;
  restartCount?: number;
  image?: string;
  imageID?: string;
  started?: boolean;
}

export interface PodContainer {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
}

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

export interface Pod extends KubeObject {
  spec?: {
    nodeName?: string;
    containers?: PodContainer[];
    initContainers?: PodContainer[];
    ephemeralContainers?: PodContainer[];
  };
  status?: {
    phase?: string;
    qosClass?: QosClass;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
    ephemeralContainerStatuses?: ContainerStatus[];
  };
}

export interface PolicyObject extends KubeObject {
  spec?: unknown;
  status?: CspStatus;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface LastDenial {
  time: string;
  node: string;
  pod: string;
  container: string;
  operation: string;
  resource: string;
  rule: string;
}

/** status of a ContainerSecurityPolicy, as the CRD declares it. */
export interface CspStatus {
  observedGeneration?: number;
  ruleCount?: number;
  contentHash?: string;
  enforcedNodeCount?: number;
  enforcedNodes?: string[];
  denials?: number;
  lastDenial?: LastDenial;
  conditions?: Condition[];
}

/** `namespace/name`, the cache key of a namespaced object. */
export function objectKey(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

/**
 * Freezes an object and everything below it. Cached objects are shared by
 * every handler. Freezing them turns an accidental in-place change (a default
 * applied, a field deleted) into a TypeError at the faulty line, where it
 * would otherwise corrupt the cache silently.
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}

export const CSP_GROUP_VERSION = 'sabpf.io/v1alpha1';
export const CSP_RESOURCE = 'containersecuritypolicies';
export const CSP_COLLECTION_PATH = `/apis/${CSP_GROUP_VERSION}/${CSP_RESOURCE}`;
export const SIGNATURE_ANNOTATION = 'sabpf.io/signature';

export function cspPath(namespace: string, name: string, subresource?: 'status'): string {
  const base = `/apis/${CSP_GROUP_VERSION}/namespaces/${encodeURIComponent(namespace)}/${CSP_RESOURCE}/${encodeURIComponent(name)}`;
  return subresource ? `${base}/${subresource}` : base;
}
