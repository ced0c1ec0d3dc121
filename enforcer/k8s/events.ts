// Kubernetes Events for denials, one on the pod and one on the policy.
//
// A denial loop in a container can produce thousands of identical records a
// second, so the recorder works like the kubelet's EventRecorder and more
// frugally:
//
// - record() never blocks and never throws: it folds the denial into a
//   pending entry per (involved object, reason, message). A burst of
//   identical denials is one entry with a count, sent as one API call.
// - The pending entries form a bounded queue; when it is full the oldest
//   entry is dropped and its occurrences counted as dropped.
// - API calls are rate limited per involved object and globally (token
//   buckets). An entry that must wait keeps collecting occurrences and is
//   sent when a token is free, so throttling delays Events but does not lose
//   their count.
// - Within the aggregation window, a repeat PATCHes the existing Event's
//   count and lastTimestamp instead of creating a new one.

import type { Logger } from 'pino';

import type { DecisionRecord } from '../core/types.js';
import { isApiError, type KubeApi } from './api.js';
import { kubeTime, systemClock, type Clock, type TimerHandle } from './clock.js';
import { denialReason, podEventMessage, policyEventMessage } from './denial-message.js';
import type { K8sMetrics } from './metrics.js';
import { CSP_GROUP_VERSION } from './objects.js';
import { TokenBucket, type TokenBucketOptions } from './token-bucket.js';

export const EVENT_COMPONENT = 'sabpf-enforcer';

export interface ObjectReference {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

export interface EventRecorderOptions {
  api: KubeApi;
  node: string;
  logger: Logger;
  clock?: Clock;
  metrics?: K8sMetrics;
  /** uid of a policy (`namespace/name`), for the involvedObject of its Events. */
  policyUid?: (key: string) => string | undefined;
  /** uid of a pod, when the record carries none. */
  podUid?: (namespace: string, name: string) => string | undefined;
  /** Per involved object. Default burst 25, one token per 5 s. */
  perObjectLimit?: TokenBucketOptions;
  /** Over all objects. Default burst 100, one token per 100 ms. */
  globalLimit?: TokenBucketOptions;
  /** Pending entries kept before the oldest is dropped. Default 1000. */
  queueCapacity?: number;
  /** A repeat within this time patches the existing Event. Default 10 minutes, as the kubelet's aggregator. */
  aggregateWindowMs?: number;
  /** At most one warning about drops and throttling per interval. Default 60 s. */
  warnIntervalMs?: number;
}

interface PendingEvent {
  key: string;
  involved: ObjectReference;
  reason: string;
  message: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  throttled: boolean;
}

interface SentEvent {
  namespace: string;
  name: string;
  count: number;
  lastSeen: number;
}

/** Aggregation and bucket caches are bounded like the kubelet's LRU. */
const MAX_TRACKED = 4096;

export class EventRecorder {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly pending = new Map<string, PendingEvent>();
  private readonly sent = new Map<string, SentEvent>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly global: TokenBucket;
  private readonly capacity: number;
  private readonly windowMs: number;
  private readonly warnIntervalMs: number;
  private running: Promise<void> | undefined;
  private wakeTimer: TimerHandle | undefined;
  private stopping = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private sequence = 0n;
  private lastWarnAt = Number.NEGATIVE_INFINITY;
  private unreported = { dropped: new Map<string, number>(), throttled: 0 };

  constructor(private readonly options: EventRecorderOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ component: 'events' });
    this.global = new TokenBucket(options.globalLimit ?? { burst: 100, refillMs: 100 }, this.clock.now());
    this.capacity = options.queueCapacity ?? 1000;
    this.windowMs = options.aggregateWindowMs ?? 600_000;
    this.warnIntervalMs = options.warnIntervalMs ?? 60_000;
  }

  /** Queues the Events of a denial. Allow records are ignored. Never blocks, never throws. */
  record(record: DecisionRecord): void {
    try {
      this.recordDenial(record);
    } catch (err) {
      // A malformed record must not reach the kernel event path as an exception.
      this.log.error({ err, policy: record.policy, pod: record.pod }, 'failed to queue the Events of a denial record');
    }
  }

  private recordDenial(record: DecisionRecord): void {
    if (record.decision !== 'deny') return;
    if (this.stopping) {
      this.drop(2, 'shutdown');
      return;
    }
    const reason = denialReason(record);
    const now = this.clock.now();
    const podUid = record.podUid ?? this.options.podUid?.(record.namespace, record.pod);
    this.enqueue(
      { apiVersion: 'v1', kind: 'Pod', namespace: record.namespace, name: record.pod, ...(podUid ? { uid: podUid } : {}) },
      reason,
      podEventMessage(record),
      now,
    );

    const slash = record.policy.indexOf('/');
    const policyUid = this.options.policyUid?.(record.policy);
    this.enqueue(
      {
        apiVersion: CSP_GROUP_VERSION,
        kind: 'ContainerSecurityPolicy',
        namespace: record.policy.slice(0, slash),
        name: record.policy.slice(slash + 1),
        ...(policyUid ? { uid: policyUid } : {}),
      },
      reason,
      policyEventMessage(record),
      now,
    );
    this.kick();
  }

  /** Resolves when nothing can be sent right now: the queue is empty or waits for rate-limit tokens. */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Entries waiting to be sent. */
  get queued(): number {
    return this.pending.size;
  }

  /**
   * Sends what the rate limits allow within `deadlineMs`, drops the rest
   * (counted), and stops. Later records are dropped.
   */
  async stop(deadlineMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopping = true;
    if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    const deadline = setTimeout(() => this.abort.abort(), deadlineMs);
    deadline.unref();
    try {
      await this.whenIdle();
      this.kick();
      await this.whenIdle();
    } finally {
      clearTimeout(deadline);
    }
    let left = 0;
    for (const entry of this.pending.values()) left += entry.count;
    this.pending.clear();
    if (left > 0) this.drop(left, 'shutdown');
    this.stopped = true;
    this.warn(true);
  }

  private enqueue(involved: ObjectReference, reason: string, message: string, now: number): void {
    const key = `${involved.kind}\u0000${involved.namespace}\u0000${involved.name}\u0000${involved.uid ?? ''}\u0000${reason}\u0000${message}`;
    const existing = this.pending.get(key);
    if (existing) {
      existing.count++;
      existing.lastSeen = now;
      return;
    }
    if (this.pending.size >= this.capacity) {
      // Drop-oldest, because a fresh denial matters more to an operator than a stale one.
      const [oldestKey, oldest] = this.pending.entries().next().value as [string, PendingEvent];
      this.pending.delete(oldestKey);
      this.drop(oldest.count, 'queue-full');
    }
    this.pending.set(key, { key, involved, reason, message, count: 1, firstSeen: now, lastSeen: now, throttled: false });
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    // Started on the next turn of the event loop, so that the denials of one
    // burst (one ring-buffer read) are folded before the first call.
    this.running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.pump())
      .catch((err: unknown) => this.log.error({ err }, 'event sender failed; later denials start it again'))
      .finally(() => {
        this.running = undefined;
      });
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
      const now = this.clock.now();
      const next = this.pickReady(now);
      if (!next.entry) {
        if (next.wakeMs !== undefined && !this.stopping) {
          this.wakeTimer = this.clock.setTimeout(() => {
            this.wakeTimer = undefined;
            this.kick();
          }, next.wakeMs);
        }
        this.warn(false);
        return;
      }
      this.pending.delete(next.entry.key);
      await this.send(next.entry);
    }
  }

  /** The oldest entry whose object and the global bucket both have a token; takes the tokens. */
  private pickReady(now: number): { entry?: PendingEvent; wakeMs?: number } {
    if (this.pending.size === 0) return {};
    const globalWait = this.global.waitMs(now);
    if (globalWait > 0) {
      const head = this.pending.values().next().value as PendingEvent;
      this.markThrottled(head, 'global');
      return { wakeMs: globalWait };
    }
    let wakeMs = Number.POSITIVE_INFINITY;
    for (const entry of this.pending.values()) {
      const bucket = this.bucketOf(entry.involved, now);
      const wait = bucket.waitMs(now);
      if (wait === 0) {
        bucket.take(now);
        this.global.take(now);
        return { entry };
      }
      this.markThrottled(entry, 'object');
      wakeMs = Math.min(wakeMs, wait);
    }
    return { wakeMs };
  }

  private markThrottled(entry: PendingEvent, limit: 'object' | 'global'): void {
    if (entry.throttled) return;
    entry.throttled = true;
    this.options.metrics?.eventsThrottled.inc({ limit });
    this.unreported.throttled++;
  }

  private bucketOf(involved: ObjectReference, now: number): TokenBucket {
    const key = `${involved.kind}/${involved.namespace}/${involved.name}`;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= MAX_TRACKED) this.evictBucket(now);
      bucket = new TokenBucket(this.options.perObjectLimit ?? { burst: 25, refillMs: 5000 }, now);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  /** Forgets a full bucket (nothing lost), else the oldest. */
  private evictBucket(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.full(now)) {
        this.buckets.delete(key);
        return;
      }
    }
    const oldest = this.buckets.keys().next().value;
    if (oldest !== undefined) this.buckets.delete(oldest);
  }

  private async send(entry: PendingEvent): Promise<void> {
    const previous = this.sent.get(entry.key);
    if (previous && entry.lastSeen - previous.lastSeen <= this.windowMs) {
      try {
        const count = previous.count + entry.count;
        await this.options.api.request({
          method: 'PATCH',
          path: `/api/v1/namespaces/${encodeURIComponent(previous.namespace)}/events/${encodeURIComponent(previous.name)}`,
          body: { count, lastTimestamp: kubeTime(entry.lastSeen) },
          signal: this.abort.signal,
        });
        this.options.metrics?.eventCalls.inc({ verb: 'patch', result: 'ok' });
        previous.count = count;
        previous.lastSeen = entry.lastSeen;
        this.remember(entry.key, previous);
        return;
      } catch (err) {
        this.options.metrics?.eventCalls.inc({ verb: 'patch', result: 'error' });
        // The Event expired (its TTL is an hour by default) or was deleted: create a new one.
        if (!isApiError(err, 404)) {
          this.failed(entry, err);
          return;
        }
        this.sent.delete(entry.key);
      }
    }

    const name = this.eventName(entry.involved.name);
    try {
      await this.options.api.request({
        method: 'POST',
        path: `/api/v1/namespaces/${encodeURIComponent(entry.involved.namespace)}/events`,
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name, namespace: entry.involved.namespace },
          involvedObject: entry.involved,
          reason: entry.reason,
          message: entry.message,
          type: 'Warning',
          count: entry.count,
          firstTimestamp: kubeTime(entry.firstSeen),
          lastTimestamp: kubeTime(entry.lastSeen),
          source: { component: EVENT_COMPONENT, host: this.options.node },
          reportingComponent: EVENT_COMPONENT,
          reportingInstance: this.options.node,
        },
        signal: this.abort.signal,
      });
      this.options.metrics?.eventCalls.inc({ verb: 'create', result: 'ok' });
      this.remember(entry.key, { namespace: entry.involved.namespace, name, count: entry.count, lastSeen: entry.lastSeen });
    } catch (err) {
      this.options.metrics?.eventCalls.inc({ verb: 'create', result: 'error' });
      this.failed(entry, err);
    }
  }

  private remember(key: string, sent: SentEvent): void {
    // Re-inserted so that Map order is least recently used first.
    this.sent.delete(key);
    this.sent.set(key, sent);
    if (this.sent.size > MAX_TRACKED) {
      const oldest = this.sent.keys().next().value;
      if (oldest !== undefined) this.sent.delete(oldest);
    }
  }

  /** Names an Event as the kubelet does: involved object name and a hex timestamp, unique per recorder. */
  private eventName(involvedName: string): string {
    this.sequence++;
    const stamp = BigInt(this.clock.now()) * 1_000_000n + (this.sequence % 1_000_000n);
    return `${involvedName}.${stamp.toString(16)}`;
  }

  private failed(entry: PendingEvent, err: unknown): void {
    this.drop(entry.count, 'api-error');
    this.lastError = (err as Error).message;
  }

  private lastError: string | undefined;

  private drop(occurrences: number, reason: string): void {
    this.options.metrics?.eventsDropped.inc({ reason }, occurrences);
    this.unreported.dropped.set(reason, (this.unreported.dropped.get(reason) ?? 0) + occurrences);
    this.warn(false);
  }

  /** Logs at most one warning per interval, summing what was dropped and throttled since the last one. */
  private warn(force: boolean): void {
    const dropped = Object.fromEntries(this.unreported.dropped);
    const total = [...this.unreported.dropped.values()].reduce((a, b) => a + b, 0);
    if (total === 0 && this.unreported.throttled === 0) return;
    const now = this.clock.now();
    if (!force && now - this.lastWarnAt < this.warnIntervalMs) return;
    this.lastWarnAt = now;
    this.log.warn(
      { dropped, throttled: this.unreported.throttled, lastError: this.lastError, queued: this.pending.size },
      total > 0
        ? `dropped ${total} denial occurrences before they reached a Kubernetes Event (see sabpf_k8s_events_dropped_total)`
        : `held back ${this.unreported.throttled} Events by rate limit; their counts are sent later`,
    );
    this.unreported = { dropped: new Map(), throttled: 0 };
    this.lastError = undefined;
  }
}
