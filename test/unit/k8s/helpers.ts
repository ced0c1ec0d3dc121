// Test doubles for the Kubernetes side: a fake clock, a scripted API client,
// a recording sink (a stand-in for the enforcer core), and decision records.

import { pino, type Logger } from 'pino';

import type { DecisionRecord, DesiredStateSink, NodeContainer, PolicyUpdate } from '../../../enforcer/core/types.js';
import type { ApiRequest, KubeApi, Query, WatchEvent } from '../../../enforcer/k8s/api.js';
import type { Clock, TimerHandle } from '../../../enforcer/k8s/clock.js';

export const quietLogger: Logger = pino({ level: process.env.SABPF_TEST_LOG_LEVEL ?? 'silent' });

/** Creates a logger whose lines are kept, to assert on warnings. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface FakeTimer {
  at: number;
  seq: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  private time = Date.UTC(2026, 0, 1);
  private seq = 0;
  private readonly timers = new Set<FakeTimer>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = { at: this.time + Math.max(0, ms), seq: this.seq++, callback };
    this.timers.add(timer);
    return { id: timer };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id as FakeTimer);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward, firing due timers in order and letting their promise chains settle. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      await settle();
      const due = [...this.timers].filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers.delete(due);
      this.time = due.at;
      due.callback();
    }
    this.time = target;
    await settle();
  }
}

export type Responder = (request: ApiRequest) => unknown | Promise<unknown>;

/** A KubeApi whose responses a test scripts. It records every request. */
export class FakeApi implements KubeApi {
  readonly requests: ApiRequest[] = [];

  constructor(private readonly responder: Responder) {}

  async request<T>(request: ApiRequest): Promise<T> {
    this.requests.push(request);
    return (await this.responder(request)) as T;
  }

  watch(_path: string, _query: Query, _onEvent: (event: WatchEvent) => void, _signal: AbortSignal): Promise<void> {
    return Promise.reject(new Error('FakeApi does not watch'));
  }
}

export type SinkCall =
  | { op: 'upsertPolicy'; update: PolicyUpdate }
  | { op: 'deletePolicy'; namespace: string; name: string }
  | { op: 'upsertContainer'; container: NodeContainer }
  | { op: 'deleteContainer'; cgroupPath: string }
  | { op: 'finishInitialSync' };

/** Records the calls the Kubernetes side makes to the enforcer core. */
export class RecordingSink implements DesiredStateSink {
  readonly calls: SinkCall[] = [];

  async upsertPolicy(update: PolicyUpdate): Promise<void> {
    this.calls.push({ op: 'upsertPolicy', update });
  }

  async deletePolicy(namespace: string, name: string): Promise<void> {
    this.calls.push({ op: 'deletePolicy', namespace, name });
  }

  async upsertContainer(container: NodeContainer): Promise<void> {
    this.calls.push({ op: 'upsertContainer', container });
  }

  async deleteContainer(cgroupPath: string): Promise<void> {
    this.calls.push({ op: 'deleteContainer', cgroupPath });
  }

  async finishInitialSync(): Promise<void> {
    this.calls.push({ op: 'finishInitialSync' });
  }

  ops(): string[] {
    return this.calls.map((c) => c.op);
  }
}

export function denial(overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    time: '2026-01-01T00:00:00.000Z',
    node: 'node-a',
    namespace: 'shop',
    pod: 'web-1',
    podUid: '11111111-2222-3333-4444-555555555555',
    container: 'nginx',
    cgroupId: '4242',
    pid: 100,
    ppid: 1,
    uid: 0,
    comm: 'cat',
    executable: '/bin/cat',
    operation: 'file-open',
    access: 'read',
    resource: { path: '/etc/shadow' },
    decision: 'deny',
    enforced: true,
    mode: 'enforce',
    policy: 'shop/protect-creds',
    rule: 'spec.file.rules[0]',
    severity: 'high',
    reason: 'rule',
    ...overrides,
  };
}
