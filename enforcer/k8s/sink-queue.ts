// Feeds the enforcer core in the order the informers saw the changes. Watch
// handlers are synchronous; sink calls are not, so each call is chained after
// the previous one. A failed call is logged and the chain goes on: one bad
// container must not stop the updates of every other.

import type { Logger } from 'pino';

import type { DesiredStateSink, NodeContainer, PolicyUpdate } from '../core/types.js';

export class SinkQueue {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly sink: DesiredStateSink,
    private readonly log: Logger,
  ) {}

  upsertPolicy(update: PolicyUpdate): void {
    const key = `${update.policy.namespace}/${update.policy.name}`;
    this.enqueue(() => this.sink.upsertPolicy(update), `failed to apply policy ${key} generation ${update.policy.generation ?? '?'}`);
  }

  deletePolicy(namespace: string, name: string): void {
    this.enqueue(() => this.sink.deletePolicy(namespace, name), `failed to delete policy ${namespace}/${name}`);
  }

  upsertContainer(container: NodeContainer): void {
    this.enqueue(
      () => this.sink.upsertContainer(container),
      `failed to confine container ${container.namespace}/${container.pod}/${container.container} at ${container.cgroupPath}`,
    );
  }

  deleteContainer(cgroupPath: string): void {
    this.enqueue(() => this.sink.deleteContainer(cgroupPath), `failed to release the container at ${cgroupPath}`);
  }

  /** Runs `call` after every queued sink call, in order. */
  run(call: () => Promise<void>, failure: string): void {
    this.enqueue(call, failure);
  }

  /** Resolves when every call queued so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }

  get depth(): number {
    return this.pending;
  }

  private enqueue(call: () => Promise<void>, failure: string): void {
    this.pending++;
    this.tail = this.tail
      .then(call)
      .catch((err: unknown) => this.log.error({ err }, failure))
      .finally(() => {
        this.pending--;
      });
  }
}
