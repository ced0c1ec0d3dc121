import { strict as assert } from 'node:assert';

import type { PolicyNodeStatus } from '../../../enforcer/core/types.js';
import { ApiError, type ApiRequest } from '../../../enforcer/k8s/api.js';
import type { CspStatus, PolicyObject } from '../../../enforcer/k8s/objects.js';
import type { PolicyView } from '../../../enforcer/k8s/policies.js';
import { computeStatus, type NodeStatusInput } from '../../../enforcer/k8s/status-compute.js';
import { StatusReporter } from '../../../enforcer/k8s/status.js';
import { denial, FakeApi, FakeClock, quietLogger } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const T1 = T0 + 60_000;

function nodeStatus(overrides: Partial<PolicyNodeStatus> = {}): PolicyNodeStatus {
  return { policy: 'shop/p', containers: 2, compiled: true, enforced: true, denials: 0, ...overrides };
}

function input(overrides: Partial<NodeStatusInput> = {}): NodeStatusInput {
  return {
    node: 'node-a',
    generation: 1,
    valid: true,
    errors: [],
    enforcedGeneration: 1,
    ruleCount: 3,
    nodeStatus: nodeStatus(),
    newDenials: 0,
    lastDenial: undefined,
    now: T0,
    ...overrides,
  };
}

function condition(status: CspStatus, type: string) {
  return status.conditions?.find((c) => c.type === type);
}

describe('k8s status computation', function () {
  it('reports a valid, enforced policy', function () {
    const status = computeStatus(undefined, input());
    assert.equal(status.observedGeneration, 1);
    assert.equal(status.ruleCount, 3);
    assert.deepEqual(status.enforcedNodes, ['node-a']);
    assert.equal(status.enforcedNodeCount, 1);
    assert.equal(status.denials, 0);
    assert.deepEqual(condition(status, 'Compiled'), {
      type: 'Compiled',
      status: 'True',
      observedGeneration: 1,
      lastTransitionTime: '2026-01-01T00:00:00Z',
      reason: 'Compiled',
      message: 'generation 1 is valid and compiles',
    });
    assert.deepEqual(condition(status, 'Enforced'), {
      type: 'Enforced',
      status: 'True',
      observedGeneration: 1,
      lastTransitionTime: '2026-01-01T00:00:00Z',
      reason: 'Enforced',
      message: 'enforced on 1 node: node-a',
    });
  });

  it('keeps lastTransitionTime while the status stays, moves it on a transition', function () {
    const first = computeStatus(undefined, input());
    const same = computeStatus(first, input({ generation: 2, enforcedGeneration: 2, now: T1 }));
    assert.equal(condition(same, 'Compiled')?.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(condition(same, 'Compiled')?.observedGeneration, 2, 'observedGeneration follows even without a transition');
    assert.equal(condition(same, 'Compiled')?.message, 'generation 2 is valid and compiles');

    const invalid = computeStatus(
      same,
      input({
        generation: 3,
        valid: false,
        errors: ['spec.file.rules[0].paths[0]: path must be absolute'],
        enforcedGeneration: 2,
        now: T1 + 1000,
      }),
    );
    const compiled = condition(invalid, 'Compiled');
    assert.equal(compiled?.status, 'False');
    assert.equal(compiled?.reason, 'InvalidPolicy');
    assert.equal(compiled?.lastTransitionTime, '2026-01-01T00:01:01Z');
    assert.equal(
      compiled?.message,
      'generation 3 is invalid: spec.file.rules[0].paths[0]: path must be absolute; generation 2 stays in force',
    );
    // The previous generation is still enforced, so Enforced does not flip.
    const enforced = condition(invalid, 'Enforced');
    assert.equal(enforced?.status, 'True');
    assert.equal(enforced?.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.match(enforced?.message ?? '', /generation 3 is invalid, generation 2 is enforced/);
  });

  it('reports an invalid first generation as not applied', function () {
    const status = computeStatus(
      undefined,
      input({ valid: false, errors: ['bad cidr'], enforcedGeneration: undefined, ruleCount: undefined, nodeStatus: undefined }),
    );
    assert.equal(condition(status, 'Compiled')?.status, 'False');
    assert.match(condition(status, 'Compiled')?.message ?? '', /nothing of it is enforced/);
    assert.deepEqual(
      { status: condition(status, 'Enforced')?.status, reason: condition(status, 'Enforced')?.reason },
      { status: 'False', reason: 'NotApplied' },
    );
    assert.equal(status.ruleCount, undefined);
    assert.deepEqual(status.enforcedNodes, []);
  });

  it('is Unknown before the core reported, False without matching containers', function () {
    const pending = computeStatus(undefined, input({ nodeStatus: undefined }));
    assert.equal(condition(pending, 'Enforced')?.status, 'Unknown');
    assert.equal(condition(pending, 'Enforced')?.reason, 'Pending');
    const idle = computeStatus(pending, input({ nodeStatus: nodeStatus({ containers: 0, enforced: false }), now: T1 }));
    assert.equal(condition(idle, 'Enforced')?.status, 'False');
    assert.equal(condition(idle, 'Enforced')?.reason, 'NoMatchingContainers');
    assert.equal(condition(idle, 'Enforced')?.lastTransitionTime, '2026-01-01T00:01:00Z');
  });

  it('merges nodes: adds this one, keeps others, removes this one when it stops', function () {
    const current: CspStatus = { enforcedNodes: ['node-b', 'node-c'], enforcedNodeCount: 2, denials: 7 };
    const added = computeStatus(current, input());
    assert.deepEqual(added.enforcedNodes, ['node-a', 'node-b', 'node-c']);
    assert.equal(added.enforcedNodeCount, 3);
    const removed = computeStatus(added, input({ nodeStatus: nodeStatus({ containers: 0, enforced: false }) }));
    assert.deepEqual(removed.enforcedNodes, ['node-b', 'node-c']);
    assert.equal(condition(removed, 'Enforced')?.status, 'True', 'other nodes still enforce it');
    assert.equal(removed.denials, 7);
  });

  it('adds new denials and keeps the latest lastDenial', function () {
    const first = computeStatus(
      { denials: 5 },
      input({ newDenials: 3, lastDenial: denial({ policy: 'shop/p', time: '2026-01-01T00:00:05.000Z' }) }),
    );
    assert.equal(first.denials, 8);
    assert.deepEqual(first.lastDenial, {
      time: '2026-01-01T00:00:05.000Z',
      node: 'node-a',
      pod: 'web-1',
      container: 'nginx',
      operation: 'open (read)',
      resource: '/etc/shadow',
      rule: 'spec.file.rules[0]',
    });
    // Another node wrote a later denial meanwhile: an older one does not replace it.
    const later = {
      ...first,
      lastDenial: { ...(first.lastDenial as NonNullable<CspStatus['lastDenial']>), time: '2026-01-01T00:00:09.000Z', node: 'node-b' },
    };
    const second = computeStatus(later, input({ newDenials: 1, lastDenial: denial({ time: '2026-01-01T00:00:06.000Z' }) }));
    assert.equal(second.denials, 9);
    assert.equal(second.lastDenial?.node, 'node-b');
  });

  it('keeps a compile failure another node reported for this generation', function () {
    const failedB = computeStatus(
      undefined,
      input({
        node: 'node-b',
        nodeStatus: nodeStatus({ compiled: false, enforced: false, error: 'more than 32 policies select web-1/nginx' }),
      }),
    );
    assert.equal(condition(failedB, 'Compiled')?.message, 'node node-b: more than 32 policies select web-1/nginx');
    const fromA = computeStatus(failedB, input({ now: T1 }));
    assert.equal(condition(fromA, 'Compiled')?.status, 'False', 'node-a cannot refute node-b');
    assert.equal(condition(fromA, 'Compiled')?.lastTransitionTime, '2026-01-01T00:00:00Z');
    const fixedB = computeStatus(fromA, input({ node: 'node-b', now: T1 }));
    assert.equal(condition(fixedB, 'Compiled')?.status, 'True', 'node-b clears its own failure');
    const newGeneration = computeStatus(fromA, input({ generation: 2, enforcedGeneration: 2, now: T1 }));
    assert.equal(condition(newGeneration, 'Compiled')?.status, 'True', 'a new generation starts over');
  });

  it('reports an attach failure with the node name', function () {
    const status = computeStatus(
      undefined,
      input({ nodeStatus: nodeStatus({ enforced: false, error: 'failed to attach file_open: EPERM' }) }),
    );
    assert.deepEqual(
      {
        status: condition(status, 'Enforced')?.status,
        reason: condition(status, 'Enforced')?.reason,
        message: condition(status, 'Enforced')?.message,
      },
      { status: 'False', reason: 'AttachFailed', message: 'node node-a: failed to attach file_open: EPERM' },
    );
  });

  it('leaves unknown condition types and fields alone', function () {
    const status = computeStatus({ contentHash: 'abc', conditions: [{ type: 'Admitted', status: 'True' }] }, input());
    assert.equal(status.contentHash, 'abc');
    assert.deepEqual(
      status.conditions?.map((c) => c.type),
      ['Admitted', 'Compiled', 'Enforced'],
    );
  });
});

function view(overrides: Partial<PolicyView> = {}): PolicyView {
  return {
    key: 'shop/p',
    namespace: 'shop',
    name: 'p',
    uid: 'uid-p',
    generation: 1,
    signature: undefined,
    valid: true,
    errors: [],
    applied: { generation: 1, ruleCount: 1, policy: {} as never },
    ...overrides,
  };
}

describe('k8s status reporter', function () {
  function server(options: { conflicts?: number } = {}) {
    let object: PolicyObject = {
      metadata: { name: 'p', namespace: 'shop', uid: 'uid-p', generation: 1, resourceVersion: '10' },
      status: {},
    };
    let conflicts = options.conflicts ?? 0;
    const api = new FakeApi((request: ApiRequest) => {
      if (request.method === 'GET') return structuredClone(object);
      const body = request.body as { metadata: { resourceVersion: string }; status: CspStatus };
      if (conflicts > 0) {
        conflicts--;
        // Another node wrote in between.
        object = {
          ...object,
          metadata: { ...object.metadata, resourceVersion: String(Number(object.metadata?.resourceVersion) + 1) },
          status: { ...object.status, enforcedNodes: ['node-z'] },
        };
      }
      if (body.metadata.resourceVersion !== object.metadata?.resourceVersion) throw new ApiError('conflict', 409, 'Conflict');
      object = {
        ...object,
        metadata: { ...object.metadata, resourceVersion: String(Number(object.metadata?.resourceVersion) + 1) },
        status: body.status,
      };
      return object;
    });
    return { api, current: () => object };
  }

  it('debounces a burst of denials into one write', async function () {
    const clock = new FakeClock();
    const { api, current } = server();
    const reporter = new StatusReporter({
      api,
      node: 'node-a',
      logger: quietLogger,
      clock,
      view: () => view(),
      statusProvider: () => [nodeStatus({ policy: 'shop/p' })],
      debounceMs: 2000,
    });
    for (let i = 0; i < 20; i++) reporter.recordDenial(denial({ policy: 'shop/p' }));
    await clock.advance(100);
    await reporter.whenIdle();
    assert.equal(api.requests.filter((r) => r.method === 'PATCH').length, 1);
    assert.equal(current().status?.denials, 20);

    // More denials right after: written no sooner than 2 s after the last write.
    reporter.recordDenial(denial({ policy: 'shop/p' }));
    await clock.advance(1500);
    assert.equal(api.requests.filter((r) => r.method === 'PATCH').length, 1);
    await clock.advance(500);
    await reporter.whenIdle();
    assert.equal(api.requests.filter((r) => r.method === 'PATCH').length, 2);
    assert.equal(current().status?.denials, 21);
  });

  it('retries on 409 and keeps the other writer\u2019s node', async function () {
    const clock = new FakeClock();
    const { api, current } = server({ conflicts: 2 });
    const reporter = new StatusReporter({
      api,
      node: 'node-a',
      logger: quietLogger,
      clock,
      view: () => view(),
      statusProvider: () => [nodeStatus({ policy: 'shop/p' })],
    });
    reporter.policyChanged('shop/p');
    await clock.advance(100);
    for (let i = 0; i < 10; i++) await clock.advance(1000);
    await reporter.whenIdle();
    assert.deepEqual(current().status?.enforcedNodes, ['node-a', 'node-z']);
    assert.equal(api.requests.filter((r) => r.method === 'PATCH').length, 3, 'two conflicts, then success');
  });

  it('keeps unwritten denials when the write fails', async function () {
    const clock = new FakeClock();
    let down = true;
    const { api: inner, current } = server();
    const api = new FakeApi((request) => {
      if (down) throw new Error('connect ECONNREFUSED');
      return inner.request(request);
    });
    const reporter = new StatusReporter({ api, node: 'node-a', logger: quietLogger, clock, view: () => view(), debounceMs: 2000 });
    reporter.recordDenial(denial({ policy: 'shop/p' }));
    reporter.recordDenial(denial({ policy: 'shop/p' }));
    // Tries at 0.1 s, then 4 s and 8 s after each failure (2 s doubled per failure).
    await clock.advance(100);
    assert.equal(api.requests.length, 1);
    await clock.advance(4000);
    assert.equal(api.requests.length, 2);
    down = false;
    await clock.advance(7999);
    assert.equal(api.requests.length, 2, 'backed off');
    await clock.advance(1);
    await reporter.whenIdle();
    assert.equal(current().status?.denials, 2);
  });

  it('writes nothing when the status would not change', async function () {
    const clock = new FakeClock();
    const { api } = server();
    const reporter = new StatusReporter({
      api,
      node: 'node-a',
      logger: quietLogger,
      clock,
      view: () => view(),
      statusProvider: () => [nodeStatus({ policy: 'shop/p' })],
    });
    reporter.policyChanged('shop/p');
    await clock.advance(100);
    await reporter.whenIdle();
    reporter.policyChanged('shop/p');
    await clock.advance(3000);
    await reporter.whenIdle();
    assert.equal(api.requests.filter((r) => r.method === 'PATCH').length, 1);
  });
});
