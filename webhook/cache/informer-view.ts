// The running webhook's ClusterView: list-watch caches of every
// ContainerSecurityPolicy, Pod and Namespace in the cluster. The RBAC in
// deploy/rbac-webhook.yaml grants exactly the get, list and watch these need.

import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type V1Namespace,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { API_GROUP, type Policy } from '../../compiler/types.js';
import type { CacheSizes, ClusterView } from './cluster-view.js';
import { withTimeout } from '../timeout.js';
import { PolicyIndex } from './policy-index.js';
import { WatchedResource } from './watched-resource.js';

const POLICY_VERSION = 'v1alpha1';
const POLICY_PLURAL = 'containersecuritypolicies';

/** How long a namespace read that misses the cache may take before the admission fails. */
const NAMESPACE_READ_TIMEOUT_MS = 2_000;

export class InformerClusterView implements ClusterView {
  readonly #index = new PolicyIndex();
  readonly #policies: WatchedResource<KubernetesObject>;
  readonly #pods: WatchedResource<KubernetesObject>;
  readonly #namespaces: WatchedResource<V1Namespace>;
  readonly #core: CoreV1Api;
  readonly #log: Logger;

  constructor(kubeConfig: KubeConfig, log: Logger) {
    this.#log = log;
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);

    this.#policies = new WatchedResource<KubernetesObject>({
      kubeConfig,
      path: `/apis/${API_GROUP}/${POLICY_VERSION}/${POLICY_PLURAL}`,
      list: () => custom.listClusterCustomObject({ group: API_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL }),
      resource: POLICY_PLURAL,
      log,
      handlers: {
        add: (object) => this.#storePolicy(object),
        update: (object) => this.#storePolicy(object),
        delete: (object) => this.#index.remove(object),
      },
    });
    this.#pods = new WatchedResource<KubernetesObject>({
      kubeConfig,
      path: '/api/v1/pods',
      list: () => this.#core.listPodForAllNamespaces(),
      resource: 'pods',
      log,
    });
    this.#namespaces = new WatchedResource<V1Namespace>({
      kubeConfig,
      path: '/api/v1/namespaces',
      list: () => this.#core.listNamespace(),
      resource: 'namespaces',
      log,
    });
  }

  /** Starts the three caches; resolves after their first attempts. Use synced() for readiness. */
  async start(): Promise<void> {
    await Promise.all([this.#policies.start(), this.#pods.start(), this.#namespaces.start()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.#policies.stop(), this.#pods.stop(), this.#namespaces.stop()]);
  }

  policiesIn(namespace: string): readonly Policy[] {
    return this.#index.policiesIn(namespace);
  }

  podsIn(namespace: string): readonly Readonly<Record<string, unknown>>[] {
    return this.#pods.list(namespace) as readonly Readonly<Record<string, unknown>>[];
  }

  /**
   * Returns a namespace's labels from the cache, or reads the namespace when
   * the cache has not seen it yet. A pod can arrive right after its namespace
   * was created, and admitting it as if the namespace had no labels would skip
   * the sabpf.io/require-policy rule. Throws when the read fails.
   */
  async namespaceLabels(namespace: string): Promise<Record<string, string> | undefined> {
    const cached = this.#namespaces.get(namespace);
    if (cached) return cached.metadata?.labels ?? {};

    try {
      const read = await withTimeout(
        this.#core.readNamespace({ name: namespace }),
        NAMESPACE_READ_TIMEOUT_MS,
        `read namespace ${namespace}`,
      );
      return read.metadata?.labels ?? {};
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw new Error(`failed to read namespace ${namespace}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  synced(): boolean {
    return this.#policies.synced() && this.#pods.synced() && this.#namespaces.synced();
  }

  sizes(): CacheSizes {
    return {
      policies: this.#index.validCount,
      invalidPolicies: this.#index.invalidCount,
      pods: this.#pods.list().length,
      namespaces: this.#namespaces.list().length,
    };
  }

  #storePolicy(object: KubernetesObject): void {
    const result = this.#index.upsert(object);
    if (!result.ok) {
      // Stored before the webhook ran or while it was bypassed. Pods are
      // admitted as if it did not exist, and the enforcer rejects it too.
      this.#log.warn({ policy: result.key, problems: result.problems }, 'ignoring an invalid ContainerSecurityPolicy in the cache');
    }
  }
}
