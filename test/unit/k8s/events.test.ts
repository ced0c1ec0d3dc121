import { strict as assert } from 'node:assert';

import { Registry } from 'prom-client';

import { ApiError, type ApiRequest } from '../../../enforcer/k8s/api.js';
import { EventRecorder, type EventRecorderOptions } from '../../../enforcer/k8s/events.js';
import { createK8sMetrics, type K8sMetrics } from '../../../enforcer/k8s/metrics.js';
import { capturingLogger, denial, FakeApi, FakeClock, quietLogger, settle } from './helpers.js';

interface EventBody {
  metadata: { name: string; namespace: string };
  involvedObject: { kind: string; name: string; namespace: string; uid?: string; apiVersion: string };
  reason: string;
  message: string;
  type: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string; host: string };
  reportingComponent: string;
  reportingInstance: string;
}

function setup(options: Partial<EventRecorderOptions> = {}, respond?: (request: ApiRequest) => unknown) {
  const clock = new FakeClock();
  const api = new FakeApi(respond ?? (() => ({})));
  const registry = new Registry();
  const metrics = createK8sMetrics(registry);
  const recorder = new EventRecorder({
    api,
    node: 'node-a',
    logger: quietLogger,
    clock,
    metrics,
    policyUid: (key) => (key === 'shop/protect-creds' ? 'policy-uid-1' : undefined),
    ...options,
  });
  return { clock, api, recorder, metrics };
}

async function counterValue(metrics: K8sMetrics, name: keyof K8sMetrics, labels: Record<string, string>): Promise<number> {
  const data = await metrics[name].get();
  return data.values
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

const creates = (api: FakeApi) => api.requests.filter((r) => r.method === 'POST');
const patches = (api: FakeApi) => api.requests.filter((r) => r.method === 'PATCH');

describe('k8s denial events', function () {
  it('posts one Warning on the pod and one on the policy', async function () {
    const { api, recorder } = setup();
    recorder.record(denial());
    await recorder.whenIdle();

    assert.equal(creates(api).length, 2);
    const [pod, policy] = creates(api).map((r) => r.body as EventBody) as [EventBody, EventBody];
    assert.equal(creates(api)[0]?.path, '/api/v1/namespaces/shop/events');
    assert.deepEqual(pod.involvedObject, {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: 'shop',
      name: 'web-1',
      uid: '11111111-2222-3333-4444-555555555555',
    });
    assert.equal(pod.reason, 'PolicyDenied');
    assert.equal(pod.type, 'Warning');
    assert.equal(pod.message, 'open /etc/shadow (read) denied by shop/protect-creds rule spec.file.rules[0] in container nginx');
    assert.deepEqual(pod.source, { component: 'sabpf-enforcer', host: 'node-a' });
    assert.equal(pod.reportingComponent, 'sabpf-enforcer');
    assert.equal(pod.reportingInstance, 'node-a');
    assert.equal(pod.count, 1);
    assert.match(pod.metadata.name, /^web-1\.[0-9a-f]+$/);
    assert.match(pod.firstTimestamp, /^2026-01-01T00:00:00Z$/);

    assert.deepEqual(policy.involvedObject, {
      apiVersion: 'sabpf.io/v1alpha1',
      kind: 'ContainerSecurityPolicy',
      namespace: 'shop',
      name: 'protect-creds',
      uid: 'policy-uid-1',
    });
    assert.equal(
      policy.message,
      'open /etc/shadow (read) denied by shop/protect-creds rule spec.file.rules[0] in pod shop/web-1 container nginx',
    );
  });

  it('uses PolicyAuditDenied for audit-mode denials and ignores allows', async function () {
    const { api, recorder } = setup();
    recorder.record(denial({ decision: 'allow', enforced: false }));
    recorder.record(
      denial({
        enforced: false,
        mode: 'audit',
        operation: 'connect',
        access: undefined,
        resource: { address: '10.0.0.1', port: 443, protocol: 'tcp' },
        rule: 'spec.network.rules[1]',
      }),
    );
    await recorder.whenIdle();
    const bodies = creates(api).map((r) => r.body as EventBody);
    assert.equal(bodies.length, 2);
    assert.equal(bodies[0]?.reason, 'PolicyAuditDenied');
    assert.equal(
      bodies[0]?.message,
      'connect tcp 10.0.0.1:443 would be denied (audit mode, allowed) by shop/protect-creds rule spec.network.rules[1] in container nginx',
    );
  });

  it('names the posture and appends the policy message', async function () {
    const { api, recorder } = setup();
    recorder.record(
      denial({
        reason: 'posture',
        rule: 'posture',
        operation: 'exec',
        access: undefined,
        resource: { path: '/usr/bin/curl' },
        message: 'no downloads',
      }),
    );
    await recorder.whenIdle();
    assert.equal(
      (creates(api)[0]?.body as EventBody).message,
      'exec /usr/bin/curl denied by shop/protect-creds exec posture in container nginx: no downloads',
    );
  });

  it('folds a burst of 50 identical denials into one Event per object', async function () {
    const { api, recorder } = setup();
    for (let i = 0; i < 50; i++) recorder.record(denial());
    await recorder.whenIdle();
    assert.equal(api.requests.length, 2, 'one create for the pod, one for the policy');
    assert.deepEqual(
      creates(api).map((r) => (r.body as EventBody).count),
      [50, 50],
    );
  });

  it('patches count and lastTimestamp of a repeat within the window', async function () {
    const { api, clock, recorder } = setup();
    recorder.record(denial());
    await recorder.whenIdle();
    const podEvent = (creates(api)[0]?.body as EventBody).metadata.name;

    await clock.advance(60_000);
    recorder.record(denial());
    recorder.record(denial());
    await recorder.whenIdle();
    assert.equal(creates(api).length, 2, 'no new Event');
    const patch = patches(api)[0] as ApiRequest;
    assert.equal(patch.path, `/api/v1/namespaces/shop/events/${podEvent}`);
    assert.deepEqual(patch.body, { count: 3, lastTimestamp: '2026-01-01T00:01:00Z' });
    assert.equal(patches(api).length, 2);
  });

  it('creates a new Event after the window', async function () {
    const { api, clock, recorder } = setup({ aggregateWindowMs: 600_000 });
    recorder.record(denial());
    await recorder.whenIdle();
    await clock.advance(600_001);
    recorder.record(denial());
    await recorder.whenIdle();
    assert.equal(creates(api).length, 4);
    assert.equal(patches(api).length, 0);
  });

  it('creates anew when the Event to patch expired', async function () {
    let gone = false;
    const { api, recorder } = setup({}, (request) => {
      if (request.method === 'PATCH' && gone) throw new ApiError('not found', 404, 'NotFound');
      return {};
    });
    recorder.record(denial());
    await recorder.whenIdle();
    gone = true;
    recorder.record(denial());
    await recorder.whenIdle();
    assert.equal(patches(api).length, 2);
    assert.equal(creates(api).length, 4);
    assert.equal((creates(api)[2]?.body as EventBody).count, 1);
  });

  it('rate-limits one object: burst, then one call per refill, counts kept', async function () {
    const { api, clock, recorder, metrics } = setup({
      perObjectLimit: { burst: 3, refillMs: 5000 },
      globalLimit: { burst: 1000, refillMs: 1 },
    });
    // Distinct messages: no aggregation, so each needs its own call.
    for (let i = 0; i < 6; i++) recorder.record(denial({ resource: { path: `/etc/secret-${i}` } }));
    await recorder.whenIdle();
    const podCalls = () => api.requests.filter((r) => (r.body as EventBody).involvedObject?.kind === 'Pod').length;
    assert.equal(podCalls(), 3, 'the burst');

    // Meanwhile the held-back Events keep counting.
    recorder.record(denial({ resource: { path: '/etc/secret-5' } }));
    await clock.advance(4999);
    assert.equal(podCalls(), 3);
    await clock.advance(1);
    assert.equal(podCalls(), 4, 'one token after 5 s');
    await clock.advance(10_000);
    assert.equal(podCalls(), 6);
    const last = api.requests.filter((r) => (r.body as EventBody).involvedObject?.kind === 'Pod').at(-1)?.body as EventBody;
    assert.equal(last.message.includes('/etc/secret-5'), true);
    assert.equal(last.count, 2, 'the repeat that arrived while throttled is in the count');
    assert.ok((await counterValue(metrics, 'eventsThrottled', { limit: 'object' })) >= 3);
    assert.equal(await counterValue(metrics, 'eventsDropped', {}), 0);
  });

  it('rate-limits all objects together', async function () {
    const { api, clock, recorder } = setup({ globalLimit: { burst: 4, refillMs: 1000 } });
    for (let i = 0; i < 5; i++) recorder.record(denial({ pod: `web-${i}`, podUid: `uid-${i}` }));
    await recorder.whenIdle();
    assert.equal(api.requests.length, 4);
    await clock.advance(1000);
    assert.equal(api.requests.length, 5);
    await clock.advance(5000);
    assert.equal(api.requests.length, 10);
  });

  it('drops the oldest entry when the queue is full, counted', async function () {
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { api, recorder, metrics } = setup({ queueCapacity: 4 }, async () => {
      await blocked;
      return {};
    });
    // Ten entries (pod and policy per denial) into a queue of four.
    for (let i = 0; i < 5; i++) recorder.record(denial({ pod: `web-${i}`, podUid: `uid-${i}`, resource: { path: `/etc/x${i}` } }));
    assert.equal(recorder.queued, 4, 'bounded');
    assert.equal(await counterValue(metrics, 'eventsDropped', { reason: 'queue-full' }), 6);

    // The first call blocks; records keep being accepted without waiting for it.
    await settle();
    assert.equal(api.requests.length, 1);
    recorder.record(denial({ pod: 'web-9', podUid: 'uid-9' }));
    assert.equal(recorder.queued, 4);
    release();
    await recorder.whenIdle();
    const sent = api.requests.map((r) => `${(r.body as EventBody).involvedObject.name} ${(r.body as EventBody).message.slice(0, 12)}`);
    // web-3's pod Event was in flight; web-9's two entries pushed out the oldest queued one.
    assert.deepEqual(sent, [
      'web-3 open /etc/x3',
      'web-4 open /etc/x4',
      'protect-creds open /etc/x4',
      'web-9 open /etc/sh',
      'protect-creds open /etc/sh',
    ]);
    assert.equal(await counterValue(metrics, 'eventsDropped', { reason: 'queue-full' }), 7);
  });

  it('counts API failures, warns once per interval', async function () {
    const { logger, lines } = capturingLogger();
    const { clock, recorder, metrics } = setup({ logger, warnIntervalMs: 60_000 }, () => {
      throw new Error('failed to POST /api/v1/namespaces/shop/events: connect ECONNREFUSED 127.0.0.1:6443');
    });
    for (let i = 0; i < 10; i++) {
      recorder.record(denial({ resource: { path: `/etc/x${i}` } }));
      await recorder.whenIdle();
    }
    assert.equal(await counterValue(metrics, 'eventsDropped', { reason: 'api-error' }), 20);
    assert.equal(lines.filter((l) => l.level === 40).length, 1, 'one warning within the interval');
    await clock.advance(60_000);
    recorder.record(denial({ resource: { path: '/etc/late' } }));
    await recorder.whenIdle();
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 2);
    assert.match(String(warnings[1]?.msg), /dropped \d+ denial occurrences/);
    assert.match(String(warnings[1]?.lastError), /ECONNREFUSED/);
  });

  it('drops what is left at stop and ignores later records', async function () {
    const { api, recorder, metrics } = setup({ perObjectLimit: { burst: 1, refillMs: 60_000 } });
    recorder.record(denial({ resource: { path: '/a' } }));
    recorder.record(denial({ resource: { path: '/b' } }));
    await recorder.whenIdle();
    assert.equal(api.requests.length, 2);
    await recorder.stop(1000);
    assert.equal(await counterValue(metrics, 'eventsDropped', { reason: 'shutdown' }), 2);
    recorder.record(denial());
    assert.equal(api.requests.length, 2);
  });
});
