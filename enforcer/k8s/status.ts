// Writes each policy's status subresource. Writes are debounced per policy,
// so a denial burst becomes one write. Each write is a read-modify-write: GET
// the object, merge this node's part into its status, and merge-patch it with
// the resourceVersion read. A concurrent write by another node then fails
// with 409 Conflict instead of being erased, and the cycle repeats.

import { isDeepStrictEqual } from 'node:util';

import type { Logger } from 'pino';

import type { DecisionRecord, PolicyNodeStatus } from '../core/types.js';
import { isApiError, type KubeApi } from './api.js';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.js';
import type { K8sMetrics } from './metrics.js';
import { cspPath, type PolicyObject } from './objects.js';
import type { PolicyView } from './policies.js';
import { computeStatus } from './status-compute.js';

/** Maximum wait between status writes of one policy while they fail. */
const MAX_RETRY_MS = 30_000;

export interface StatusReporterOptions {
  api: KubeApi;
  node: string;
  logger: Logger;
  /** This node's view of a policy (`namespace/name`). */
  view: (key: string) => PolicyView | undefined;
  /** The enforcer core's per-policy status on this node. */
  statusProvider?: () => PolicyNodeStatus[];
  clock?: Clock;
  metrics?: K8sMetrics;
  /** At most one write per policy per this interval. Default 2 s. */
  debounceMs?: number;
  /** How often the core's status is compared with what was last written. Default 5 s. */
  pollMs?: number;
  /** Read-modify-write attempts per flush before giving up until the next change. Default 8. */
  maxAttempts?: number;
}

interface PolicyState {
  /** Denials recorded and not yet written. */
  newDenials: number;
  lastDenial: DecisionRecord | undefined;
  lastFlushAt: number;
  /** Failed writes in a row; each one doubles the wait before the next, up to 30 s. */
  failures: number;
  timer: TimerHandle | undefined;
  flushing: Promise<void> | undefined;
  dirty: boolean;
  /** The core status last written, to notice changes when polling. */
  written: PolicyNodeStatus | undefined;
}

export class StatusReporter {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly states = new Map<string, PolicyState>();
  private pollTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly options: StatusReporterOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ component: 'status' });
  }

  start(): void {
    this.schedulePoll();
  }

  /** Marks a policy for a write after its object or this node's view of it changed. */
  policyChanged(key: string): void {
    if (!this.options.view(key)) {
      // Deleted: its status went with it.
      const state = this.states.get(key);
      if (state?.timer) this.clock.clearTimeout(state.timer);
      this.states.delete(key);
      return;
    }
    this.markDirty(key);
  }

  /** Counts a denial (enforced or audit) of the policy the record names. */
  recordDenial(record: DecisionRecord): void {
    if (record.decision !== 'deny' || !this.options.view(record.policy)) return;
    const state = this.state(record.policy);
    state.newDenials++;
    if (!state.lastDenial || state.lastDenial.time <= record.time) state.lastDenial = record;
    this.markDirty(record.policy);
  }

  /** Writes every pending change now, ignoring the debounce, then stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) this.clock.clearTimeout(this.pollTimer);
    for (const state of this.states.values()) {
      if (state.timer) this.clock.clearTimeout(state.timer);
      state.timer = undefined;
    }
    // Writes in flight first: a change that arrived during one is written after it.
    await Promise.all([...this.states.values()].map((state) => state.flushing));
    await Promise.all([...this.states].filter(([, state]) => state.dirty).map(([key]) => this.flush(key)));
  }

  /** Resolves when no write is scheduled or running; for tests. */
  async whenIdle(): Promise<void> {
    for (;;) {
      const busy = [...this.states.values()].filter((s) => s.flushing || s.timer);
      if (busy.length === 0) return;
      await Promise.all(busy.map((s) => s.flushing ?? sleep(this.clock, 50)));
    }
  }

  private state(key: string): PolicyState {
    let state = this.states.get(key);
    if (!state) {
      state = {
        newDenials: 0,
        lastDenial: undefined,
        lastFlushAt: Number.NEGATIVE_INFINITY,
        failures: 0,
        timer: undefined,
        flushing: undefined,
        dirty: false,
        written: undefined,
      };
      this.states.set(key, state);
    }
    return state;
  }

  private markDirty(key: string): void {
    const state = this.state(key);
    state.dirty = true;
    if (this.stopped || state.timer || state.flushing) return;
    // While the API server fails, writes back off so that a policy does not log every 2 s.
    const debounceMs = Math.min(MAX_RETRY_MS, (this.options.debounceMs ?? 2000) * 2 ** state.failures);
    // A short delay even for the first write gathers a burst into one patch.
    const delay = Math.max(Math.min(100, debounceMs), state.lastFlushAt + debounceMs - this.clock.now());
    state.timer = this.clock.setTimeout(() => {
      state.timer = undefined;
      void this.flush(key);
    }, delay);
  }

  private flush(key: string): Promise<void> {
    const state = this.state(key);
    if (state.flushing) return state.flushing;
    state.dirty = false;
    state.flushing = this.write(key, state)
      .then(() => {
        state.failures = 0;
      })
      .catch((err: unknown) => {
        this.options.metrics?.statusPatches.inc({ result: 'error' });
        // Kept dirty, so the write is retried with the denials still counted.
        state.dirty = true;
        state.failures++;
        // The first failure and then every tenth are logged.
        if (state.failures % 10 === 1) {
          this.log.warn(
            { policy: key, err: (err as Error).message, failures: state.failures },
            `failed to write the status of policy ${key}; retrying with backoff`,
          );
        }
      })
      .finally(() => {
        state.flushing = undefined;
        state.lastFlushAt = this.clock.now();
        if (state.dirty && !this.stopped) this.markDirty(key);
      });
    return state.flushing;
  }

  private async write(key: string, state: PolicyState): Promise<void> {
    const maxAttempts = this.options.maxAttempts ?? 8;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const view = this.options.view(key);
      if (!view) return;
      let object: PolicyObject;
      try {
        object = await this.options.api.request<PolicyObject>({ method: 'GET', path: cspPath(view.namespace, view.name) });
      } catch (err) {
        if (isApiError(err, 404)) return;
        throw err;
      }
      // The informer is behind (a newer generation or a recreated object):
      // its update will mark the policy dirty again, so skip for now.
      if (object.metadata?.uid !== view.uid || object.metadata?.generation !== view.generation) {
        this.log.debug({ policy: key }, 'status write skipped: the informer has not seen the latest object yet');
        state.dirty = true;
        return;
      }

      const nodeStatus = this.options.statusProvider?.().find((s) => s.policy === key);
      const newDenials = state.newDenials;
      const next = computeStatus(object.status, {
        node: this.options.node,
        generation: view.generation,
        valid: view.valid,
        errors: view.errors,
        enforcedGeneration: view.applied?.generation,
        ruleCount: view.applied?.ruleCount,
        nodeStatus,
        newDenials,
        lastDenial: state.lastDenial,
        now: this.clock.now(),
      });
      if (isDeepStrictEqual(next, object.status ?? {})) {
        state.written = nodeStatus;
        return;
      }

      try {
        await this.options.api.request({
          method: 'PATCH',
          path: cspPath(view.namespace, view.name, 'status'),
          // The resourceVersion makes the patch conditional: it fails with 409 if anyone wrote since the GET.
          body: { metadata: { resourceVersion: object.metadata?.resourceVersion }, status: next },
        });
      } catch (err) {
        if (isApiError(err, 409)) {
          this.options.metrics?.statusPatches.inc({ result: 'conflict' });
          this.log.debug({ policy: key, attempt }, 'status write conflicted with another writer; reading again');
          await sleep(this.clock, 20 + Math.floor(Math.random() * 80 * attempt));
          continue;
        }
        if (isApiError(err, 404)) return;
        throw err;
      }
      this.options.metrics?.statusPatches.inc({ result: 'ok' });
      state.newDenials -= newDenials;
      state.written = nodeStatus;
      return;
    }
    throw new Error(`failed to write the status of policy ${key}: ${maxAttempts} attempts conflicted with other writers`);
  }

  private schedulePoll(): void {
    if (this.stopped || !this.options.statusProvider) return;
    this.pollTimer = this.clock.setTimeout(() => {
      this.poll();
      this.schedulePoll();
    }, this.options.pollMs ?? 5000);
  }

  /** Marks the policies whose core status changed since it was last written. */
  private poll(): void {
    let statuses: PolicyNodeStatus[];
    try {
      statuses = this.options.statusProvider?.() ?? [];
    } catch (err) {
      this.log.error({ err }, 'failed to read the enforcer status');
      return;
    }
    const seen = new Set<string>();
    for (const status of statuses) {
      seen.add(status.policy);
      if (!this.options.view(status.policy)) continue;
      const written = this.states.get(status.policy)?.written;
      if (!written || !sameNodeStatus(written, status)) this.markDirty(status.policy);
    }
    // A policy the core no longer reports on: this node must leave enforcedNodes.
    for (const [key, state] of this.states) {
      if (!seen.has(key) && state.written) this.markDirty(key);
    }
  }
}

/** Compares the fields of the core's status that show in the CSP status (denials are counted from records). */
function sameNodeStatus(a: PolicyNodeStatus, b: PolicyNodeStatus): boolean {
  return a.containers === b.containers && a.compiled === b.compiled && a.enforced === b.enforced && a.error === b.error;
}
