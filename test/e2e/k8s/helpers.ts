// Helpers for the Kubernetes-mode tests against the real API server: an API
// client wrapper that counts calls and can cut or age watches, and a
// recording core that also computes statusProvider() from the calls it recorded.

import type { PolicyNodeStatus } from '../../../enforcer/core/types.js';
import type { ApiRequest, KubeApi, Query, WatchEvent } from '../../../enforcer/k8s/api.js';
import { policySelects } from '../../../compiler/selector.js';
import type { Policy } from '../../../compiler/types.js';
import { RecordingSink } from '../../unit/k8s/helpers.js';

export interface CountedCall {
  method: string;
  path: string;
  status: 'ok' | number | 'error';
}

export class CountingApi implements KubeApi {
  readonly calls: CountedCall[] = [];
  readonly watchCalls: { path: string; query: Query }[] = [];
  private readonly open = new Set<AbortController>();
  /** Resource version given to the next watch of a path containing this text, to force a 410. */
  private staleNext: string | undefined;
  /** Runs after a GET of a path that passes `filter`, before its response is returned. */
  afterGet: { filter: (path: string) => boolean; run: () => Promise<void> } | undefined;

  constructor(private readonly inner: KubeApi) {}

  async request<T>(request: ApiRequest): Promise<T> {
    try {
      const result = await this.inner.request<T>(request);
      this.calls.push({ method: request.method, path: request.path, status: 'ok' });
      const hook = this.afterGet;
      if (request.method === 'GET' && hook?.filter(request.path)) {
        this.afterGet = undefined;
        await hook.run();
      }
      return result;
    } catch (err) {
      const status = (err as { status?: number }).status;
      this.calls.push({ method: request.method, path: request.path, status: status ?? 'error' });
      throw err;
    }
  }

  async watch(path: string, query: Query, onEvent: (event: WatchEvent) => void, signal: AbortSignal, onOpen?: () => void): Promise<void> {
    const controller = new AbortController();
    const forward = (): void => controller.abort();
    signal.addEventListener('abort', forward, { once: true });
    this.open.add(controller);
    let effective = query;
    if (this.staleNext !== undefined && path.includes(this.staleNext)) {
      effective = { ...query, resourceVersion: '1' };
      this.staleNext = undefined;
    }
    this.watchCalls.push({ path, query: effective });
    try {
      await this.inner.watch(path, effective, onEvent, controller.signal, onOpen);
    } finally {
      signal.removeEventListener('abort', forward);
      this.open.delete(controller);
    }
  }

  /** Cuts every open watch, as a dropped connection would. */
  killWatches(): number {
    const count = this.open.size;
    for (const controller of this.open) controller.abort();
    return count;
  }

  /** Makes the next watch of a path containing `pathPart` request resource version 1, which the server no longer has. */
  expireNextWatch(pathPart: string): void {
    this.staleNext = pathPart;
  }

  count(filter: (call: CountedCall) => boolean): number {
    return this.calls.filter(filter).length;
  }
}

/**
 * The recording sink, plus the per-policy status a real core would report:
 * a policy is enforced on this node when it selects one of the recorded
 * containers.
 */
export class RecordingCore extends RecordingSink {
  private readonly policies = new Map<string, Policy>();
  private readonly containers = new Map<string, { namespace: string; pod: string; container: string; labels: Record<string, string> }>();

  override async upsertPolicy(update: Parameters<RecordingSink['upsertPolicy']>[0]): Promise<void> {
    await super.upsertPolicy(update);
    this.policies.set(`${update.policy.namespace}/${update.policy.name}`, update.policy);
  }

  override async deletePolicy(namespace: string, name: string): Promise<void> {
    await super.deletePolicy(namespace, name);
    this.policies.delete(`${namespace}/${name}`);
  }

  override async upsertContainer(container: Parameters<RecordingSink['upsertContainer']>[0]): Promise<void> {
    await super.upsertContainer(container);
    this.containers.set(container.cgroupPath, container);
  }

  override async deleteContainer(cgroupPath: string): Promise<void> {
    await super.deleteContainer(cgroupPath);
    this.containers.delete(cgroupPath);
  }

  status(): PolicyNodeStatus[] {
    return [...this.policies.entries()].map(([key, policy]) => {
      const confined = [...this.containers.values()].filter((c) => policySelects(policy, c)).length;
      return { policy: key, containers: confined, compiled: true, enforced: confined > 0, denials: 0 };
    });
  }
}

export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${(last as Error).message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
