// Turns the pods bound to this node into container upserts and deletes. The
// controller remembers what it upserted per pod, so a status change (a
// container started, restarted under a new id, or ended) becomes the exact
// difference, and a deleted pod releases all its containers.

import { isDeepStrictEqual } from 'node:util';

import type { Logger } from 'pino';

import type { NodeContainer } from '../core/types.js';
import type { CgroupResolver } from './cgroups.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { podContainers } from './containers.js';
import { objectKey, type Pod } from './objects.js';
import type { ReflectorHandler } from './reflector.js';
import type { SinkQueue } from './sink-queue.js';

export interface PodControllerOptions {
  sink: SinkQueue;
  resolver: CgroupResolver;
  logger: Logger;
  /** The current cached pod, for retries. */
  lookup: (key: string) => Pod | undefined;
  clock?: Clock;
  /** How often containers whose cgroup was not found are tried again. Default 5 s. */
  retryMs?: number;
}

export class PodController implements ReflectorHandler<Pod> {
  /** Pod key → cgroup path → the container upserted for it. */
  private readonly confined = new Map<string, Map<string, NodeContainer>>();
  /** Pod key → container ids that are running but could not be placed. */
  private readonly unresolved = new Map<string, Set<string>>();
  private readonly clock: Clock;
  private retryTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly options: PodControllerOptions) {
    this.clock = options.clock ?? systemClock;
  }

  upsert(pod: Pod): void {
    this.reconcile(objectKey(pod), pod);
  }

  delete(pod: Pod): void {
    const key = objectKey(pod);
    for (const path of this.confined.get(key)?.keys() ?? []) this.options.sink.deleteContainer(path);
    this.confined.delete(key);
    this.unresolved.delete(key);
  }

  /** Containers currently upserted, for tests and diagnostics. */
  containers(): NodeContainer[] {
    return [...this.confined.values()].flatMap((byPath) => [...byPath.values()]);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
  }

  private reconcile(key: string, pod: Pod): void {
    const { running, problems } = podContainers(pod, this.options.resolver);
    const before = this.confined.get(key) ?? new Map<string, NodeContainer>();
    const after = new Map(running.map((container) => [container.cgroupPath, container]));

    // A container that was placed before and cannot be found now keeps its
    // confinement: a failed lookup is no proof that its processes are gone.
    for (const problem of problems) {
      for (const [path, container] of before) {
        if (problem.containerId.endsWith(`://${container.containerId}`) && !after.has(path)) after.set(path, container);
      }
    }

    for (const [path, container] of after) {
      const previous = before.get(path);
      if (!previous || !isDeepStrictEqual(previous, container)) this.options.sink.upsertContainer(container);
    }
    for (const path of before.keys()) {
      if (!after.has(path)) this.options.sink.deleteContainer(path);
    }
    if (after.size > 0) this.confined.set(key, after);
    else this.confined.delete(key);

    this.noteProblems(key, problems);
  }

  private noteProblems(key: string, problems: { container: string; containerId: string; error: string }[]): void {
    const known = this.unresolved.get(key) ?? new Set<string>();
    const current = new Set(problems.map((p) => p.containerId));
    for (const problem of problems) {
      // Logged once per container id; the retries are silent until it resolves.
      if (!known.has(problem.containerId)) {
        this.options.logger.warn({ pod: key, container: problem.container, retryMs: this.retryMs }, problem.error);
      }
    }
    for (const id of known) {
      if (!current.has(id)) this.options.logger.info({ pod: key, containerId: id }, 'container placed after retry, or no longer running');
    }
    if (current.size > 0) this.unresolved.set(key, current);
    else this.unresolved.delete(key);
    this.scheduleRetry();
  }

  private get retryMs(): number {
    return this.options.retryMs ?? 5000;
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer || this.unresolved.size === 0) return;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      for (const key of [...this.unresolved.keys()]) {
        const pod = this.options.lookup(key);
        if (pod) this.reconcile(key, pod);
        else this.unresolved.delete(key);
      }
    }, this.retryMs);
  }
}
