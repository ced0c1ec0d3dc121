// A list/watch loop with a local cache, the enforcer's informer. It keeps the
// guarantees the library's ListWatch lacks:
//
// - Start never throws: a failed list or watch is logged and retried with
//   exponential backoff and jitter, forever, until stop().
// - A 410 Gone (HTTP status or ERROR event) means the resource version left
//   the server's window: list again and diff the cache against the list.
// - A watch that sends no event and no bookmark for `stallTimeoutMs` is
//   aborted and reopened; bookmarks are requested so that a quiet but
//   healthy watch still shows signs of life (the API server sends one about
//   every minute).
// - Only a successful list can delete objects (those it no longer returns),
//   so while the API server is unreachable the cache, and everything derived
//   from it, stays at the last known state.
// - Cached objects are deep-frozen: handlers share them and must copy before
//   changing anything.

import type { Logger } from 'pino';

import { ApiError, isApiError, type KubeApi, type WatchEvent } from './api.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.js';
import type { K8sMetrics } from './metrics.js';
import { deepFreeze, objectKey, type KubeObject } from './objects.js';

export interface ReflectorHandler<T extends KubeObject> {
  /** An object appeared or changed; `previous` is the cached version it replaces. Both are frozen. */
  upsert(object: T, previous: T | undefined): void;
  /** An object is gone: a watch reported its deletion, or a full list no longer returns it. */
  delete(object: T): void;
}

export interface ReflectorOptions<T extends KubeObject> {
  /** Resource name for logs and metrics, such as pods. */
  resource: string;
  api: KubeApi;
  /** Collection path, such as /api/v1/pods. */
  path: string;
  fieldSelector?: string;
  handler: ReflectorHandler<T>;
  logger: Logger;
  clock?: Clock;
  metrics?: K8sMetrics;
  backoff?: BackoffOptions;
  /** A watch silent for this long is restarted. Default 150 s, over two bookmark periods. */
  stallTimeoutMs?: number;
  /** Server-side watch timeout per request; default 5 to 10 minutes at random, as client-go. */
  watchTimeoutSeconds?: () => number;
  /** Items per list page. Default 500. */
  pageSize?: number;
}

interface ListResponse {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeObject[];
}

type WatchOutcome = 'closed' | 'empty' | 'expired' | 'stalled';

export class Reflector<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly stallTimeoutMs: number;
  private readonly watchTimeoutSeconds: () => number;
  private resourceVersion = '';
  private needList = true;
  private stopped = false;
  private started = false;
  private synced = false;
  private readonly stopSignal = new AbortController();
  private request: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private readonly syncWaiters: ((synced: boolean) => void)[] = [];

  constructor(private readonly options: ReflectorOptions<T>) {
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(options.backoff);
    this.log = options.logger.child({ resource: options.resource });
    this.stallTimeoutMs = options.stallTimeoutMs ?? 150_000;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? (() => 300 + Math.floor(Math.random() * 300));
  }

  /** Starts the loop in the background. Errors never escape it: they are logged and retried. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.loop = this.run().catch((err: unknown) => {
      // run() catches everything it expects; this is a bug, logged rather than crashing the enforcer.
      this.log.error({ err }, 'list/watch loop ended unexpectedly');
    });
  }

  /** Aborts the open request and waits for the loop to end. The cache is kept. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    this.request?.abort();
    await this.loop;
    for (const resolve of this.syncWaiters.splice(0)) resolve(false);
  }

  /** Resolves true after the first successful list, false if stopped before. Never rejects. */
  whenSynced(): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Returns the cached (frozen) object of `namespace/name`. */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** Resource version the next watch starts from; empty before the first list. */
  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const request = new AbortController();
      this.request = request;
      let phase = this.needList ? 'list' : 'watch';
      try {
        if (this.needList) {
          await this.listAll(request.signal);
          phase = 'watch';
        }
        const outcome = await this.watchOnce(request);
        if (this.stopped) break;
        this.options.metrics?.watchRestarts.inc({ resource: this.options.resource, reason: outcome });
        if (outcome === 'expired') {
          this.needList = true;
          this.log.info({ resourceVersion: this.resourceVersion }, 'watch resource version expired (410 Gone); listing again');
        } else if (outcome === 'stalled') {
          this.log.warn(
            { stallTimeoutMs: this.stallTimeoutMs },
            `watch sent no event or bookmark for ${this.stallTimeoutMs} ms; reopening it`,
          );
        } else if (outcome === 'empty') {
          // The server ended a watch before any event: back off so that a
          // server which keeps doing that is not hammered.
          const delayMs = this.backoff.next();
          this.log.info({ delayMs, attempt: this.backoff.attempts }, `watch ended without an event; reopening in ${delayMs} ms`);
          await sleep(this.clock, delayMs, this.stopSignal.signal);
        } else {
          this.log.debug({ resourceVersion: this.resourceVersion }, 'watch ended by the server; reopening');
        }
      } catch (err) {
        if (this.stopped) break;
        if (isApiError(err, 410)) {
          // An expired resource version (watch) or continue token (list page).
          this.needList = true;
          this.options.metrics?.watchRestarts.inc({ resource: this.options.resource, reason: 'expired' });
          this.log.info({ phase }, `${phase} returned 410 Gone; listing again`);
          continue;
        }
        if (phase === 'list') this.options.metrics?.lists.inc({ resource: this.options.resource, result: 'error' });
        this.options.metrics?.watchRestarts.inc({ resource: this.options.resource, reason: 'error' });
        const delayMs = this.backoff.next();
        this.log.warn(
          { err: (err as Error).message, phase, attempt: this.backoff.attempts, delayMs, keptObjects: this.cache.size },
          `failed to ${phase} ${this.options.resource}; retrying in ${delayMs} ms with the last known state kept`,
        );
        await sleep(this.clock, delayMs, this.stopSignal.signal);
      } finally {
        this.request = undefined;
      }
    }
  }

  private async listAll(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let resourceVersion = '';
    let continueToken: string | undefined;
    do {
      const page = await this.options.api.request<ListResponse>({
        method: 'GET',
        path: this.options.path,
        query: { fieldSelector: this.options.fieldSelector, limit: this.options.pageSize ?? 500, continue: continueToken },
        signal,
        timeoutMs: 60_000,
      });
      // Every page of one list carries the snapshot's resource version.
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      const kind = page.kind?.replace(/List$/u, '');
      for (const item of page.items ?? []) {
        // List items of built-in kinds carry no apiVersion and kind; the
        // watch's do, and consumers (loadPolicyObject) expect them.
        items.push({ ...item, apiVersion: item.apiVersion ?? page.apiVersion, kind: item.kind ?? kind } as T);
      }
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken !== undefined);

    this.replace(items);
    this.resourceVersion = resourceVersion;
    this.needList = false;
    this.backoff.reset();
    this.options.metrics?.lists.inc({ resource: this.options.resource, result: 'ok' });
    this.log.info({ objects: items.length, resourceVersion }, 'listed');
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve(true);
    }
  }

  /** Makes the cache equal to a full list: upserts first, so that enforcement is never looser in between. */
  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const previous = this.cache.get(key);
      if (previous && sameVersion(previous, item)) continue;
      this.cache.set(key, deepFreeze(item));
      this.dispatch(() => this.options.handler.upsert(item, previous), key);
    }
    for (const [key, previous] of [...this.cache]) {
      if (seen.has(key)) continue;
      this.cache.delete(key);
      this.dispatch(() => this.options.handler.delete(previous), key);
    }
  }

  private async watchOnce(request: AbortController): Promise<WatchOutcome> {
    let lines = 0;
    let stalled = false;
    let expired = false;
    let failure: Error | undefined;
    let timer: TimerHandle | undefined;
    const arm = (): void => {
      if (timer) this.clock.clearTimeout(timer);
      timer = this.clock.setTimeout(() => {
        stalled = true;
        request.abort();
      }, this.stallTimeoutMs);
    };

    arm();
    try {
      await this.options.api.watch(
        this.options.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: this.watchTimeoutSeconds(),
          fieldSelector: this.options.fieldSelector,
        },
        (event) => {
          if (request.signal.aborted) return;
          lines++;
          if (lines === 1) this.backoff.reset();
          arm();
          if (event.type === 'ERROR') {
            // Thrown errors would escape through the stream's data listener,
            // so the outcome is recorded and the stream aborted instead.
            const status = event.object as { code?: number; reason?: string; message?: string };
            if (status.code === 410) expired = true;
            else
              failure = new ApiError(
                `watch of ${this.options.path} failed: ${status.message ?? 'ERROR event'}`,
                status.code ?? 0,
                status.reason,
              );
            request.abort();
            return;
          }
          this.apply(event);
        },
        request.signal,
      );
    } catch (err) {
      if (!stalled && !expired && !failure) throw err;
    } finally {
      if (timer) this.clock.clearTimeout(timer);
    }
    if (failure) throw failure;
    if (expired) return 'expired';
    if (stalled) return 'stalled';
    return lines === 0 ? 'empty' : 'closed';
  }

  private apply(event: WatchEvent): void {
    const object = event.object as T;
    const resourceVersion = object.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (resourceVersion) this.resourceVersion = resourceVersion;
      return;
    }
    const key = objectKey(object);
    const previous = this.cache.get(key);
    if (event.type === 'ADDED' || event.type === 'MODIFIED') {
      if (resourceVersion) this.resourceVersion = resourceVersion;
      if (previous && sameVersion(previous, object)) return;
      this.cache.set(key, deepFreeze(object));
      this.dispatch(() => this.options.handler.upsert(object, previous), key);
    } else if (event.type === 'DELETED') {
      if (resourceVersion) this.resourceVersion = resourceVersion;
      if (!previous) return;
      this.cache.delete(key);
      this.dispatch(() => this.options.handler.delete(deepFreeze(object)), key);
    }
  }

  /** Runs a handler; its failure is logged and never stops the watch. */
  private dispatch(call: () => void, key: string): void {
    try {
      call();
    } catch (err) {
      this.log.error({ err, object: key }, 'handler failed on a watched object; the cache is updated and the watch goes on');
    }
  }
}

function sameVersion(a: KubeObject, b: KubeObject): boolean {
  const version = a.metadata?.resourceVersion;
  return version !== undefined && version === b.metadata?.resourceVersion && a.metadata?.uid === b.metadata?.uid;
}
