// A list-watch cache of one resource with the recovery that the informer of
// @kubernetes/client-node 1.4 leaves to its caller: that informer stops for
// good after a failed list or a broken watch, so this wrapper restarts it with
// exponential back-off. A 410 Gone is handled inside the informer, which
// re-lists.

import {
  ApiException,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

const INITIAL_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

export interface WatchHandlers<T> {
  add?(object: T): void;
  update?(object: T): void;
  delete?(object: T): void;
}

export interface WatchedResourceOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Collection path, such as /api/v1/pods. */
  path: string;
  /** Lists the collection; the informer takes resourceVersion from the list's metadata. */
  list: () => Promise<KubernetesListObject<T>>;
  /** Resource name for logs, such as "pods". */
  resource: string;
  log: Logger;
  handlers?: WatchHandlers<T>;
}

export class WatchedResource<T extends KubernetesObject> {
  readonly resource: string;
  readonly #informer: Informer<T> & ObjectCache<T>;
  readonly #log: Logger;
  #listed = false;
  #stopped = false;
  #backoffMs = INITIAL_BACKOFF_MS;
  #retry: NodeJS.Timeout | undefined;

  constructor(options: WatchedResourceOptions<T>) {
    this.resource = options.resource;
    this.#log = options.log.child({ resource: options.resource });

    const list = async (): Promise<KubernetesListObject<T>> => {
      const result = await options.list();
      if (!this.#listed) this.#log.info({ count: result.items.length }, 'listed the initial objects');
      this.#listed = true;
      this.#backoffMs = INITIAL_BACKOFF_MS;
      return result;
    };
    this.#informer = makeInformer(options.kubeConfig, options.path, list);

    const { add, update, delete: remove } = options.handlers ?? {};
    if (add) this.#informer.on('add', add);
    if (update) this.#informer.on('update', update);
    if (remove) this.#informer.on('delete', remove);
    this.#informer.on('error', (error: unknown) => this.#scheduleRestart(error));
  }

  /** Starts the list and watch. Resolves after the first attempt, failed or not; failures retry on their own. */
  async start(): Promise<void> {
    this.#stopped = false;
    try {
      await this.#informer.start();
    } catch (error) {
      this.#scheduleRestart(error);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    await this.#informer.stop();
  }

  /** Returns true once a list has succeeded, so the cache contains every object that existed at that time. */
  synced(): boolean {
    return this.#listed;
  }

  /** Objects of one namespace, or of all namespaces when none is given. Callers must not modify them. */
  list(namespace?: string): readonly T[] {
    return this.#informer.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  #scheduleRestart(error: unknown): void {
    if (this.#stopped || this.#retry !== undefined) return;
    const delayMs = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
    this.#log.warn({ err: describeError(error), retryInMs: delayMs }, 'failed to list or watch; retrying');

    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.start();
    }, delayMs);
    this.#retry.unref();
  }
}

// Errors from the client carry the HTTP status and body. The log gets the
// status and the Status message only, so response bodies with object data and
// response headers stay out of it.
function describeError(error: unknown): string {
  if (error instanceof ApiException) {
    let message = 'no Status message';
    try {
      const status = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as { message?: unknown };
      if (typeof status?.message === 'string') message = status.message;
    } catch {
      // A body that is not JSON (a proxy's HTML error page) adds nothing useful.
    }
    return `${message} (HTTP ${error.code})`;
  }
  if (error instanceof Error) {
    const status = (error as { statusCode?: number }).statusCode;
    return status === undefined ? error.message : `${error.message} (HTTP ${status})`;
  }
  return String(error);
}
