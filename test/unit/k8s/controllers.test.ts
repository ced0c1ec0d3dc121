import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CgroupResolver } from '../../../enforcer/k8s/cgroups.js';
import { deepFreeze, type Pod, type PolicyObject } from '../../../enforcer/k8s/objects.js';
import { PodController } from '../../../enforcer/k8s/pods.js';
import { PolicyController } from '../../../enforcer/k8s/policies.js';
import { SinkQueue } from '../../../enforcer/k8s/sink-queue.js';
import { capturingLogger, FakeClock, quietLogger, RecordingSink } from './helpers.js';

function csp(generation: number, paths: string[], extra: Partial<PolicyObject['metadata']> = {}): PolicyObject {
  // mode and severity are left out on purpose: the loader's schema defaults
  // fill them in, which must happen on a copy, not on this object.
  return {
    apiVersion: 'sabpf.io/v1alpha1',
    kind: 'ContainerSecurityPolicy',
    metadata: { name: 'protect-creds', namespace: 'shop', uid: 'uid-1', generation, resourceVersion: String(100 + generation), ...extra },
    spec: { selector: { matchLabels: { app: 'web' } }, file: { posture: 'allow', rules: [{ paths, action: 'deny' }] } },
  };
}

describe('k8s policy controller', function () {
  function setup() {
    const sink = new RecordingSink();
    const changed: string[] = [];
    const controller = new PolicyController({
      sink: new SinkQueue(sink, quietLogger),
      logger: quietLogger,
      onChange: (key) => changed.push(key),
    });
    return { sink, controller, changed };
  }

  it('validates a copy: the frozen cached object stays as it was', async function () {
    const { sink, controller } = setup();
    const cached = deepFreeze(csp(1, ['/etc/shadow']));
    const snapshot = structuredClone(cached);
    controller.upsert(cached);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(cached, snapshot, 'no defaults written into the cached object');
    const update = sink.calls[0];
    assert.equal(update?.op, 'upsertPolicy');
    if (update?.op !== 'upsertPolicy') return;
    assert.equal(update.update.policy.generation, 1);
    assert.equal(update.update.policy.spec.mode, 'enforce', 'defaults applied on the copy');
    assert.equal(update.update.policy.spec.file?.rules[0]?.access, 'readwrite');
  });

  it('passes the signature annotation along', async function () {
    const { sink, controller } = setup();
    controller.upsert(deepFreeze(csp(1, ['/etc/shadow'], { annotations: { 'sabpf.io/signature': 'sig-abc' } })));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sink.calls[0]?.op === 'upsertPolicy' && sink.calls[0].update.signature, 'sig-abc');
  });

  it('keeps the previous generation when a new one is invalid', async function () {
    const { logger, lines } = capturingLogger();
    const sink = new RecordingSink();
    const controller = new PolicyController({ sink: new SinkQueue(sink, quietLogger), logger });
    controller.upsert(deepFreeze(csp(1, ['/etc/shadow'])));
    controller.upsert(deepFreeze(csp(2, ['etc/shadow'])));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sink.ops(), ['upsertPolicy'], 'generation 2 is not applied');
    const view = controller.view('shop/protect-creds');
    assert.equal(view?.valid, false);
    assert.equal(view?.generation, 2);
    assert.equal(view?.applied?.generation, 1);
    assert.match(view?.errors[0] ?? '', /spec\.file\.rules\[0\]\.paths\[0\]/);
    const warning = lines.find((l) => l.level === 40);
    assert.match(String(warning?.msg), /rejected invalid generation 2 of policy shop\/protect-creds; generation 1 stays in force/);
  });

  it('ignores status-only updates and applies new generations', async function () {
    const { sink, controller, changed } = setup();
    controller.upsert(deepFreeze(csp(1, ['/etc/shadow'])));
    controller.upsert(deepFreeze(csp(1, ['/etc/shadow'], { resourceVersion: '555' })));
    controller.upsert(deepFreeze(csp(2, ['/etc/gshadow'])));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sink.ops(), ['upsertPolicy', 'upsertPolicy']);
    assert.deepEqual(changed, ['shop/protect-creds', 'shop/protect-creds']);
  });

  it('does not carry rules over to a recreated object that is invalid', async function () {
    const { sink, controller } = setup();
    controller.upsert(deepFreeze(csp(1, ['/etc/shadow'])));
    controller.upsert(deepFreeze(csp(1, ['relative'], { uid: 'uid-2' })));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sink.ops(), ['upsertPolicy', 'deletePolicy']);
    assert.equal(controller.view('shop/protect-creds')?.applied, undefined);
  });

  it('deletes the policy from the sink', async function () {
    const { sink, controller } = setup();
    const object = deepFreeze(csp(1, ['/etc/shadow']));
    controller.upsert(object);
    controller.delete(object);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sink.calls.at(-1), { op: 'deletePolicy', namespace: 'shop', name: 'protect-creds' });
    assert.equal(controller.view('shop/protect-creds'), undefined);
  });
});

describe('k8s pod controller', function () {
  const uid = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
  let root = '';

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), 'sabpf-pods-'));
  });

  afterEach(function () {
    rmSync(root, { recursive: true, force: true });
  });

  function cgroup(id: string): string {
    const path = join(root, `kubepods/besteffort/pod${uid}/${id}`);
    mkdirSync(path, { recursive: true });
    return path;
  }

  function webPod(statuses: NonNullable<Pod['status']>): Pod {
    return deepFreeze({
      metadata: { name: 'web-1', namespace: 'shop', uid, resourceVersion: '1', labels: { app: 'web' } },
      spec: { nodeName: 'node-a' },
      status: { qosClass: 'BestEffort', ...statuses },
    });
  }

  function setup(retryMs = 1000) {
    const sink = new RecordingSink();
    const queue = new SinkQueue(sink, quietLogger);
    const clock = new FakeClock();
    let current: Pod | undefined;
    const controller = new PodController({
      sink: queue,
      resolver: new CgroupResolver(root, 'cgroupfs'),
      logger: quietLogger,
      clock,
      retryMs,
      lookup: () => current,
    });
    return { sink, queue, controller, clock, set: (pod: Pod) => (current = pod) };
  }

  it('upserts running containers of every kind and skips the rest', async function () {
    const { sink, queue, controller } = setup();
    const [a, b, c] = [cgroup('aaa'), cgroup('bbb'), cgroup('ccc')];
    controller.upsert(
      webPod({
        initContainerStatuses: [{ name: 'init', containerID: 'containerd://iii', state: { terminated: { exitCode: 0 } } }],
        containerStatuses: [
          { name: 'nginx', containerID: 'containerd://aaa', state: { running: {} } },
          { name: 'sidecar', containerID: 'containerd://bbb', state: { running: {} } },
          { name: 'starting', state: { waiting: { reason: 'ContainerCreating' } } },
        ],
        ephemeralContainerStatuses: [{ name: 'debug', containerID: 'containerd://ccc', state: { running: {} } }],
      }),
    );
    await queue.idle();
    const upserts = sink.calls
      .filter((call) => call.op === 'upsertContainer')
      .map((call) => (call.op === 'upsertContainer' ? call.container : undefined));
    assert.deepEqual(
      upserts.map((container) => [container?.container, container?.cgroupPath, container?.containerId]),
      [
        ['nginx', a, 'aaa'],
        ['sidecar', b, 'bbb'],
        ['debug', c, 'ccc'],
      ],
    );
    assert.deepEqual(upserts[0], {
      namespace: 'shop',
      pod: 'web-1',
      container: 'nginx',
      labels: { app: 'web' },
      podUid: uid,
      containerId: 'aaa',
      cgroupPath: a,
    });
  });

  it('deletes a terminated container, a restarted one, and all on pod deletion', async function () {
    const { sink, queue, controller } = setup();
    const [a, b, a2] = [cgroup('aaa'), cgroup('bbb'), cgroup('aaa2')];
    controller.upsert(
      webPod({
        containerStatuses: [
          { name: 'nginx', containerID: 'containerd://aaa', state: { running: {} } },
          { name: 'sidecar', containerID: 'containerd://bbb', state: { running: {} } },
        ],
      }),
    );
    // nginx restarted under a new id; sidecar ended.
    controller.upsert(
      webPod({
        containerStatuses: [
          { name: 'nginx', containerID: 'containerd://aaa2', state: { running: {} } },
          { name: 'sidecar', containerID: 'containerd://bbb', state: { terminated: { exitCode: 0 } } },
        ],
      }),
    );
    // Same state again: nothing to do.
    const unchanged = webPod({ containerStatuses: [{ name: 'nginx', containerID: 'containerd://aaa2', state: { running: {} } }] });
    controller.upsert(unchanged);
    controller.delete(unchanged);
    await queue.idle();
    const changes = sink.calls.map((call) => {
      if (call.op === 'upsertContainer') return `+${call.container.cgroupPath}`;
      if (call.op === 'deleteContainer') return `-${call.cgroupPath}`;
      return call.op;
    });
    assert.deepEqual(changes, [`+${a}`, `+${b}`, `+${a2}`, `-${a}`, `-${b}`, `-${a2}`]);
  });

  it('re-upserts when pod labels change', async function () {
    const { sink, queue, controller } = setup();
    cgroup('aaa');
    const running = { containerStatuses: [{ name: 'nginx', containerID: 'containerd://aaa', state: { running: {} } }] };
    controller.upsert(webPod(running));
    controller.upsert(
      deepFreeze({ ...webPod(running), metadata: { name: 'web-1', namespace: 'shop', uid, labels: { app: 'web', tier: 'edge' } } }),
    );
    await queue.idle();
    assert.deepEqual(sink.ops(), ['upsertContainer', 'upsertContainer']);
  });

  it('retries a container whose cgroup does not exist yet, warning once', async function () {
    const { logger, lines } = capturingLogger();
    const sink = new RecordingSink();
    const queue = new SinkQueue(sink, quietLogger);
    const clock = new FakeClock();
    const pod = webPod({ containerStatuses: [{ name: 'nginx', containerID: 'containerd://late', state: { running: {} } }] });
    const controller = new PodController({
      sink: queue,
      resolver: new CgroupResolver(root, 'cgroupfs'),
      logger,
      clock,
      retryMs: 1000,
      lookup: () => pod,
    });
    controller.upsert(pod);
    await clock.advance(3000);
    assert.deepEqual(sink.ops(), []);
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1);
    assert.match(
      String(warnings[0]?.msg),
      /failed to find the cgroup of container nginx \(containerd:\/\/late\).*tried .*kubepods\/besteffort\/pod.*\/late/,
    );

    const path = cgroup('late');
    await clock.advance(1000);
    await queue.idle();
    assert.deepEqual(sink.calls, [
      {
        op: 'upsertContainer',
        container: {
          namespace: 'shop',
          pod: 'web-1',
          container: 'nginx',
          labels: { app: 'web' },
          podUid: uid,
          containerId: 'late',
          cgroupPath: path,
        },
      },
    ]);
    controller.stop();
    assert.equal(clock.pendingTimers, 0);
  });

  it('keeps a placed container when its cgroup lookup later fails', async function () {
    const { sink, queue, controller } = setup();
    const path = cgroup('aaa');
    const pod = webPod({ containerStatuses: [{ name: 'nginx', containerID: 'containerd://aaa', state: { running: {} } }] });
    controller.upsert(pod);
    rmSync(path, { recursive: true });
    controller.upsert(deepFreeze({ ...pod, metadata: { ...pod.metadata, resourceVersion: '2' } }));
    await queue.idle();
    assert.deepEqual(sink.ops(), ['upsertContainer']);
    controller.stop();
  });
});
