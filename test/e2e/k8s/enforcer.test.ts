// Kubernetes mode against a real kube-apiserver and etcd: informers, cgroup
// mapping, invalid policies, Events, status (with two nodes writing it), RBAC,
// watch recovery, and the test kubelet. The enforcer core is replaced by a
// recording sink; everything between it and the API server is real.

import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Registry } from 'prom-client';

import type { DecisionRecord, NodeContainer } from '../../../enforcer/core/types.js';
import { createKubeApi, loadKubeConfig, type KubeApi } from '../../../enforcer/k8s/api.js';
import type { CspStatus, Pod } from '../../../enforcer/k8s/objects.js';
import { runKubernetesMode, type KubernetesMode } from '../../../enforcer/k8s/run.js';
import { runTestPod } from '../../../enforcer/k8s/test-kubelet.js';
import { startCluster, type Cluster } from '../../cluster/cluster.js';
import { quietLogger } from '../../unit/k8s/helpers.js';
import { CountingApi, RecordingCore, waitFor } from './helpers.js';

const NS = 'shop';
const CONTAINER_ID = 'd2c9f3e1a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d';

interface EventJson {
  reason: string;
  message: string;
  count: number;
  type: string;
  involvedObject: { kind: string; name: string; uid?: string };
  source: { component: string; host: string };
}

function cspYaml(name: string, paths: string[], generationNote = ''): string {
  return JSON.stringify({
    apiVersion: 'sabpf.io/v1alpha1',
    kind: 'ContainerSecurityPolicy',
    metadata: { name, namespace: NS, annotations: { 'sabpf.io/signature': `sig-${name}${generationNote}` } },
    spec: { selector: { matchLabels: { app: 'web' } }, file: { posture: 'allow', rules: [{ paths, action: 'deny' }] } },
  });
}

function podJson(name: string, node: string, containers: { name: string; command?: string[] }[] = [{ name: 'nginx' }]): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: 'web' } },
    spec: { nodeName: node, restartPolicy: 'Never', containers: containers.map((c) => ({ image: 'registry.invalid/none:1', ...c })) },
  });
}

function denial(pod: string, podUid: string, path: string): DecisionRecord {
  return {
    time: new Date().toISOString(),
    node: 'node-a',
    namespace: NS,
    pod,
    podUid,
    container: 'nginx',
    cgroupId: '1',
    pid: 4242,
    ppid: 1,
    uid: 0,
    comm: 'cat',
    executable: '/bin/cat',
    operation: 'file-open',
    access: 'read',
    resource: { path },
    decision: 'deny',
    enforced: true,
    mode: 'enforce',
    policy: `${NS}/protect-creds`,
    rule: 'spec.file.rules[0]',
    severity: 'medium',
    reason: 'rule',
  };
}

/** Applies the CRD from crds/ as shipped and waits until it is established. */
async function applyCrdTo(cluster: Cluster): Promise<void> {
  const path = join(process.cwd(), 'crds/sabpf.io_containersecuritypolicies.yaml');
  const result = await cluster.kubectl(['apply', '-f', path]);
  assert.equal(result.code, 0, `kubectl apply ${path} failed: ${result.stderr}`);
  const established = await cluster.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/containersecuritypolicies.sabpf.io',
  ]);
  assert.equal(established.code, 0, established.stderr);
}

describe('k8s enforcer mode against a real API server', function () {
  this.timeout(240_000);

  let cluster: Cluster | undefined;
  let admin: KubeApi;
  let cgroupRoot = '';
  const modes: KubernetesMode[] = [];
  let core: RecordingCore;
  let api: CountingApi;
  let mode: KubernetesMode;
  let webUid = '';

  const running = (): Cluster => {
    assert.ok(cluster, 'the cluster did not start; see the before all hook error');
    return cluster;
  };

  async function kubectl(args: string[], input?: string): Promise<string> {
    const result = await running().kubectl(args, input);
    assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout;
  }

  async function getPod(name: string): Promise<Pod> {
    return admin.request<Pod>({ method: 'GET', path: `/api/v1/namespaces/${NS}/pods/${name}` });
  }

  async function cspStatus(name: string): Promise<CspStatus> {
    return (
      (
        await admin.request<{ status?: CspStatus }>({
          method: 'GET',
          path: `/apis/sabpf.io/v1alpha1/namespaces/${NS}/containersecuritypolicies/${name}`,
        })
      ).status ?? {}
    );
  }

  /** Reports a container running, as a kubelet would, through the status subresource. */
  async function setRunning(name: string, containerId: string | undefined, state: 'running' | 'terminated' = 'running'): Promise<void> {
    const status =
      state === 'running'
        ? { running: { startedAt: '2026-01-01T00:00:00Z' } }
        : { terminated: { exitCode: 0, reason: 'Completed', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:01:00Z' } };
    await admin.request({
      method: 'PATCH',
      path: `/api/v1/namespaces/${NS}/pods/${name}/status`,
      body: {
        status: {
          phase: state === 'running' ? 'Running' : 'Succeeded',
          containerStatuses: [
            {
              name: 'nginx',
              image: 'registry.invalid/none:1',
              imageID: '',
              ready: state === 'running',
              restartCount: 0,
              state: status,
              ...(containerId ? { containerID: containerId } : {}),
            },
          ],
        },
      },
    });
  }

  function systemdCgroup(podUid: string, id: string): string {
    const uid = podUid.replaceAll('-', '_');
    return join(cgroupRoot, `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid}.slice/cri-containerd-${id}.scope`);
  }

  function upserted(sink: RecordingCore, cgroupPath: string): NodeContainer | undefined {
    for (const call of sink.calls) if (call.op === 'upsertContainer' && call.container.cgroupPath === cgroupPath) return call.container;
    return undefined;
  }

  function policyUpserts(sink: RecordingCore, name: string) {
    return sink.calls.flatMap((call) => (call.op === 'upsertPolicy' && call.update.policy.name === name ? [call.update] : []));
  }

  function startMode(node: string, sink: RecordingCore, client: KubeApi, registry = new Registry()): KubernetesMode {
    const started = runKubernetesMode({
      nodeName: node,
      cgroupRoot,
      layout: 'auto',
      sink,
      statusProvider: () => sink.status(),
      api: client,
      logger: quietLogger,
      registry,
      tuning: { statusDebounceMs: 300, statusPollMs: 300, backoff: { initialMs: 100, maxMs: 1000 }, cgroupRetryMs: 200 },
    });
    modes.push(started);
    return started;
  }

  async function applyCrd(): Promise<void> {
    await applyCrdTo(running());
  }

  before(async function () {
    cluster = await startCluster();
    admin = createKubeApi(loadKubeConfig(cluster.kubeconfigPath));
    cgroupRoot = mkdtempSync(join(tmpdir(), 'sabpf-k8s-cgroups-'));
    await applyCrd();
    await kubectl(['create', 'namespace', NS]);

    core = new RecordingCore();
    api = new CountingApi(createKubeApi(loadKubeConfig(cluster.kubeconfigPath)));
    mode = startMode('node-a', core, api);
    assert.equal(await mode.whenSynced(), true);
  });

  after(async function () {
    for (const started of modes) await started.stop();
    await cluster?.stop();
    if (cgroupRoot) rmSync(cgroupRoot, { recursive: true, force: true });
  });

  it('finishes the initial sync once', function () {
    assert.deepEqual(core.ops(), ['finishInitialSync']);
  });

  it('applies a new policy with its generation and signature', async function () {
    await kubectl(['apply', '-f', '-'], cspYaml('protect-creds', ['/etc/shadow']));
    const update = await waitFor(() => policyUpserts(core, 'protect-creds')[0], 'upsertPolicy of shop/protect-creds');
    assert.equal(update.policy.generation, 1);
    assert.equal(update.signature, 'sig-protect-creds');
    assert.equal(update.policy.spec.mode, 'enforce');
    assert.deepEqual(update.policy.spec.file?.rules[0]?.paths, [{ path: '/etc/shadow', scope: 'exact' }]);
  });

  it('upserts a running container of a pod on this node with its cgroup', async function () {
    await kubectl(['apply', '-f', '-'], podJson('web-1', 'node-a'));
    await kubectl(['apply', '-f', '-'], podJson('elsewhere', 'node-z'));
    webUid = (await getPod('web-1')).metadata?.uid ?? '';
    const cgroup = systemdCgroup(webUid, CONTAINER_ID);
    mkdirSync(cgroup, { recursive: true });
    assert.equal((await getPod('web-1')).status?.qosClass, 'BestEffort', 'the API server computed the QoS class');

    await setRunning('elsewhere', `containerd://${'e'.repeat(64)}`);
    await setRunning('web-1', `containerd://${CONTAINER_ID}`);
    const container = await waitFor(() => upserted(core, cgroup), `upsertContainer of ${cgroup}`);
    assert.deepEqual(container, {
      namespace: NS,
      pod: 'web-1',
      container: 'nginx',
      labels: { app: 'web' },
      podUid: webUid,
      containerId: CONTAINER_ID,
      cgroupPath: cgroup,
    });
    assert.equal(
      core.calls.filter((c) => c.op === 'upsertContainer' && c.container.pod === 'elsewhere').length,
      0,
      'a pod bound to another node is not watched',
    );
  });

  it('applies an updated policy with the new generation', async function () {
    await kubectl(['apply', '-f', '-'], cspYaml('protect-creds', ['/etc/shadow', '/etc/gshadow'], '-v2'));
    const update = await waitFor(() => policyUpserts(core, 'protect-creds')[1], 'the second upsertPolicy');
    assert.equal(update.policy.generation, 2);
    assert.equal(update.signature, 'sig-protect-creds-v2');
    assert.equal(update.policy.spec.file?.rules[0]?.paths.length, 2);
  });

  it('writes Compiled and Enforced conditions with this node', async function () {
    const status = await waitFor(async () => {
      const current = await cspStatus('protect-creds');
      return current.observedGeneration === 2 && current.enforcedNodes?.includes('node-a') ? current : undefined;
    }, 'status of shop/protect-creds');
    assert.equal(status.ruleCount, 1);
    assert.equal(status.enforcedNodeCount, 1);
    const compiled = status.conditions?.find((c) => c.type === 'Compiled');
    const enforced = status.conditions?.find((c) => c.type === 'Enforced');
    assert.equal(compiled?.status, 'True');
    assert.equal(compiled?.observedGeneration, 2);
    assert.equal(enforced?.status, 'True');
    assert.equal(enforced?.message, 'enforced on 1 node: node-a');
    assert.match(enforced?.lastTransitionTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const printed = await kubectl(['get', 'csp', 'protect-creds', '-n', NS]);
    assert.match(printed, /protect-creds\s+enforce\s+1\s+1\s+0\s/, 'the printer columns read the status');
  });

  it('does not apply a policy the API server accepts but the loader rejects', async function () {
    // The CRD schema cannot tell a relative path from an absolute one; the loader can.
    await kubectl(['apply', '-f', '-'], cspYaml('relative-path', ['etc/shadow']));
    const status = await waitFor(async () => {
      const current = await cspStatus('relative-path');
      return current.conditions?.find((c) => c.type === 'Compiled') ? current : undefined;
    }, 'status of shop/relative-path');
    const compiled = status.conditions?.find((c) => c.type === 'Compiled');
    assert.equal(compiled?.status, 'False');
    assert.equal(compiled?.reason, 'InvalidPolicy');
    assert.match(compiled?.message ?? '', /^generation 1 is invalid: .*spec\.file\.rules\[0\]\.paths\[0\].*; nothing of it is enforced$/);
    assert.equal(status.conditions?.find((c) => c.type === 'Enforced')?.reason, 'NotApplied');
    assert.equal(policyUpserts(core, 'relative-path').length, 0);
  });

  it('keeps enforcing the previous generation when an update is invalid', async function () {
    await kubectl(['apply', '-f', '-'], cspYaml('protect-creds', ['/etc/shadow', 'relative/again'], '-v3'));
    const status = await waitFor(async () => {
      const current = await cspStatus('protect-creds');
      return current.observedGeneration === 3 ? current : undefined;
    }, 'status of generation 3');
    const compiled = status.conditions?.find((c) => c.type === 'Compiled');
    assert.equal(compiled?.status, 'False');
    assert.match(compiled?.message ?? '', /generation 3 is invalid: .*paths\[1\].*; generation 2 stays in force/);
    const enforced = status.conditions?.find((c) => c.type === 'Enforced');
    assert.equal(enforced?.status, 'True');
    assert.match(enforced?.message ?? '', /generation 3 is invalid, generation 2 is enforced/);
    assert.equal(policyUpserts(core, 'protect-creds').length, 2, 'generation 3 never reached the core');

    // Fixed again: generation 4 is applied and Compiled recovers.
    await kubectl(['apply', '-f', '-'], cspYaml('protect-creds', ['/etc/shadow'], '-v4'));
    await waitFor(() => policyUpserts(core, 'protect-creds')[2], 'generation 4');
    await waitFor(
      async () =>
        (await cspStatus('protect-creds')).conditions?.find(
          (c) => c.type === 'Compiled' && c.status === 'True' && c.observedGeneration === 4,
        ),
      'Compiled=True for generation 4',
    );
  });

  it('posts a PolicyDenied Event that kubectl shows on the pod', async function () {
    mode.onDecision(denial('web-1', webUid, '/etc/shadow'));
    const events = await waitFor(async () => {
      const out = JSON.parse(await kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=web-1', '-o', 'json'])) as {
        items: EventJson[];
      };
      return out.items.length > 0 ? out.items : undefined;
    }, 'an Event on web-1');
    assert.equal(events.length, 1);
    const event = events[0] as EventJson;
    assert.equal(event.reason, 'PolicyDenied');
    assert.equal(event.type, 'Warning');
    assert.equal(event.message, 'open /etc/shadow (read) denied by shop/protect-creds rule spec.file.rules[0] in container nginx');
    assert.deepEqual(event.source, { component: 'sabpf-enforcer', host: 'node-a' });
    assert.equal(event.involvedObject.uid, webUid);

    const described = await kubectl(['describe', 'pod', 'web-1', '-n', NS]);
    assert.match(described, /Warning\s+PolicyDenied\s+.*sabpf-enforcer.*open \/etc\/shadow \(read\) denied by shop\/protect-creds/);

    const onPolicy = JSON.parse(
      await kubectl([
        'get',
        'events',
        '-n',
        NS,
        '--field-selector',
        'involvedObject.kind=ContainerSecurityPolicy,involvedObject.name=protect-creds',
        '-o',
        'json',
      ]),
    ) as { items: EventJson[] };
    assert.equal(onPolicy.items.length, 1);
    assert.match(onPolicy.items[0]?.message ?? '', /in pod shop\/web-1 container nginx$/);
    const describedPolicy = await kubectl(['describe', 'csp', 'protect-creds', '-n', NS]);
    assert.match(describedPolicy, /PolicyDenied/);
  });

  it('folds 50 identical denials into one Event with far fewer API calls', async function () {
    const before = api.count((c) => c.path.includes('/events'));
    for (let i = 0; i < 50; i++) mode.onDecision(denial('web-1', webUid, '/etc/gshadow'));
    await mode.events.whenIdle();
    const calls = api.count((c) => c.path.includes('/events')) - before;
    assert.ok(calls <= 4, `${calls} Event API calls for 50 denials`);

    const out = JSON.parse(await kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=web-1', '-o', 'json'])) as {
      items: EventJson[];
    };
    const gshadow = out.items.filter((e) => e.message.includes('/etc/gshadow'));
    assert.equal(gshadow.length, 1, 'one Event');
    assert.equal(gshadow[0]?.count, 50);

    // A later repeat patches the same Event.
    mode.onDecision(denial('web-1', webUid, '/etc/gshadow'));
    await mode.events.whenIdle();
    assert.ok(api.calls.some((c) => c.method === 'PATCH' && c.path.includes('/events/')));
    const again = JSON.parse(await kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=web-1', '-o', 'json'])) as {
      items: EventJson[];
    };
    assert.equal(again.items.filter((e) => e.message.includes('/etc/gshadow'))[0]?.count, 51);
  });

  it('counts denials and the last denial in the status', async function () {
    const status = await waitFor(async () => {
      const current = await cspStatus('protect-creds');
      return current.denials === 52 ? current : undefined;
    }, 'denials = 52 (1 + 50 + 1)');
    assert.equal(status.lastDenial?.pod, 'web-1');
    assert.equal(status.lastDenial?.node, 'node-a');
    assert.equal(status.lastDenial?.resource, '/etc/gshadow');
    assert.equal(status.lastDenial?.operation, 'open (read)');
    assert.equal(status.lastDenial?.rule, 'spec.file.rules[0]');
  });

  it('merges two nodes through 409, least RBAC', async function () {
    // node-b runs as a user bound to the sabpf-enforcer ClusterRole only.
    await kubectl(['apply', '-f', join(process.cwd(), 'enforcer/k8s/rbac.yaml')]);
    await kubectl([
      'create',
      'clusterrolebinding',
      'sabpf-enforcer-node-b',
      '--clusterrole=sabpf-enforcer',
      '--user=system:serviceaccount:sabpf-system:sabpf-enforcer',
    ]);
    const kubeconfig = JSON.parse(readFileSync(running().kubeconfigPath, 'utf8')) as { users: { user: Record<string, unknown> }[] };
    (kubeconfig.users[0] as { user: Record<string, unknown> }).user.as = 'system:serviceaccount:sabpf-system:sabpf-enforcer';
    const restricted = join(running().dataDir, 'kubeconfig-enforcer');
    writeFileSync(restricted, JSON.stringify(kubeconfig), { mode: 0o600 });
    const denied = await running().kubectl(['--kubeconfig', restricted, 'get', 'secrets', '-A']);
    assert.notEqual(denied.code, 0, 'the restricted user cannot read secrets');

    const coreB = new RecordingCore();
    const apiB = new CountingApi(createKubeApi(loadKubeConfig(restricted)));
    const registryB = new Registry();
    const modeB = startMode('node-b', coreB, apiB, registryB);
    assert.equal(await modeB.whenSynced(), true);

    // node-b's first write (it enforces nothing yet) changes nothing; let it pass.
    await modeB.status.whenIdle();
    // Another writer changes the status between node-b's read and its write.
    apiB.afterGet = {
      filter: (path) => path.endsWith('/containersecuritypolicies/protect-creds'),
      run: async () => {
        const current = await admin.request<{ metadata: { resourceVersion: string }; status?: CspStatus }>({
          method: 'GET',
          path: `/apis/sabpf.io/v1alpha1/namespaces/${NS}/containersecuritypolicies/protect-creds`,
        });
        await admin.request({
          method: 'PATCH',
          path: `/apis/sabpf.io/v1alpha1/namespaces/${NS}/containersecuritypolicies/protect-creds/status`,
          body: {
            metadata: { resourceVersion: current.metadata.resourceVersion },
            status: { enforcedNodes: [...(current.status?.enforcedNodes ?? []), 'node-z'] },
          },
        });
      },
    };
    await kubectl(['apply', '-f', '-'], podJson('web-b', 'node-b'));
    const uidB = (await getPod('web-b')).metadata?.uid ?? '';
    mkdirSync(systemdCgroup(uidB, 'b'.repeat(64)), { recursive: true });
    await setRunning('web-b', `containerd://${'b'.repeat(64)}`);
    await waitFor(() => upserted(coreB, systemdCgroup(uidB, 'b'.repeat(64))), 'node-b upserts web-b');

    const status = await waitFor(async () => {
      const current = await cspStatus('protect-creds');
      return current.enforcedNodes?.includes('node-b') ? current : undefined;
    }, 'node-b in enforcedNodes');
    assert.deepEqual(status.enforcedNodes, ['node-a', 'node-b', 'node-z']);
    assert.equal(status.enforcedNodeCount, 3);
    const conflicts = apiB.count((c) => c.method === 'PATCH' && c.status === 409);
    assert.ok(conflicts >= 1, 'node-b met a 409 and retried');
    const metric = (await registryB.getSingleMetric('sabpf_k8s_status_patches_total')?.get())?.values.find(
      (v) => v.labels.result === 'conflict',
    );
    assert.ok((metric?.value ?? 0) >= 1);
    assert.equal(
      apiB.count((c) => c.status === 403),
      0,
      `the ClusterRole covers every call: ${JSON.stringify(apiB.calls.filter((c) => c.status === 403))}`,
    );

    // node-a writing again (a denial) keeps node-b's and node-z's entries.
    mode.onDecision(denial('web-1', webUid, '/etc/shadow'));
    const afterA = await waitFor(async () => {
      const current = await cspStatus('protect-creds');
      return current.denials === 53 ? current : undefined;
    }, 'node-a status write');
    assert.deepEqual(afterA.enforcedNodes, ['node-a', 'node-b', 'node-z']);
  });

  it('resumes after a cut watch without listing again', async function () {
    const listsBefore = api.count((c) => c.method === 'GET' && c.path === '/api/v1/pods');
    assert.ok(api.killWatches() >= 2, 'both watches were open');
    await kubectl(['apply', '-f', '-'], podJson('web-2', 'node-a'));
    const uid = (await getPod('web-2')).metadata?.uid ?? '';
    const cgroup = systemdCgroup(uid, 'c'.repeat(64));
    mkdirSync(cgroup, { recursive: true });
    await setRunning('web-2', `containerd://${'c'.repeat(64)}`);
    await waitFor(() => upserted(core, cgroup), 'web-2 after the watch was cut');
    assert.equal(
      api.count((c) => c.method === 'GET' && c.path === '/api/v1/pods'),
      listsBefore,
      'resumed from the resource version',
    );
    assert.equal(core.calls.filter((c) => c.op === 'deleteContainer').length, 0, 'nothing deleted');
  });

  it('deletes a terminated container and the containers of a deleted pod', async function () {
    const cgroup2 = systemdCgroup((await getPod('web-2')).metadata?.uid ?? '', 'c'.repeat(64));
    await setRunning('web-2', `containerd://${'c'.repeat(64)}`, 'terminated');
    await waitFor(
      () => core.calls.find((c) => c.op === 'deleteContainer' && c.cgroupPath === cgroup2),
      'deleteContainer of the terminated web-2',
    );

    const cgroup1 = systemdCgroup(webUid, CONTAINER_ID);
    await kubectl(['delete', 'pod', 'web-1', '-n', NS, '--grace-period=0', '--force', '--wait=false']);
    await waitFor(
      () => core.calls.find((c) => c.op === 'deleteContainer' && c.cgroupPath === cgroup1),
      'deleteContainer after the pod was deleted',
    );
  });

  it('deletes a deleted policy from the sink', async function () {
    await kubectl(['delete', 'csp', 'relative-path', '-n', NS]);
    await waitFor(
      () => core.calls.find((c) => c.op === 'deletePolicy' && c.name === 'relative-path'),
      'deletePolicy of shop/relative-path',
    );
  });

  it('runs a pod with the test kubelet: flat cgroup, gated start, states reported', async function () {
    await kubectl(['apply', '-f', join(process.cwd(), 'enforcer/k8s/rbac.yaml')]);
    await kubectl(['create', 'clusterrolebinding', 'sabpf-test-kubelet', '--clusterrole=sabpf-test-kubelet', '--user=sabpf-test-kubelet']);
    const kubeconfig = JSON.parse(readFileSync(running().kubeconfigPath, 'utf8')) as { users: { user: Record<string, unknown> }[] };
    (kubeconfig.users[0] as { user: Record<string, unknown> }).user.as = 'sabpf-test-kubelet';
    const kubeletConfig = join(running().dataDir, 'kubeconfig-test-kubelet');
    writeFileSync(kubeletConfig, JSON.stringify(kubeconfig), { mode: 0o600 });

    const marker = join(cgroupRoot, 'worker-started');
    await kubectl(
      ['apply', '-f', '-'],
      podJson('worker', 'node-a', [{ name: 'worker', command: ['/bin/sh', '-c', `echo started > ${marker}; exec sleep 60`] }]),
    );
    const pod = await runTestPod({
      api: createKubeApi(loadKubeConfig(kubeletConfig)),
      namespace: NS,
      pod: 'worker',
      cgroupRoot,
      output: 'ignore',
      logger: quietLogger,
      // Released only once the enforcer confined the container: the command runs confined from its start.
      startGate: async (started) => {
        const cgroup = started.containers[0]?.cgroupPath ?? '';
        await waitFor(() => upserted(core, cgroup), 'the enforcer upserting the worker');
        assert.equal(existsSync(marker), false, 'the command waits behind the gate');
      },
    });
    const container = pod.containers[0];
    assert.ok(container);
    assert.equal(container.cgroupPath, join(cgroupRoot, 'sabpf-test', pod.uid, 'worker'));
    assert.equal(
      readFileSync(join(container.cgroupPath, 'cgroup.procs'), 'utf8').trim(),
      String(container.pid),
      'the launcher wrote its pid before exec',
    );
    const placed = upserted(core, container.cgroupPath);
    assert.equal(placed?.containerId, container.id);
    await waitFor(() => existsSync(marker), 'the command started after the gate');
    const reported = await getPod('worker');
    assert.equal(reported.status?.phase, 'Running');
    assert.equal(reported.status?.containerStatuses?.[0]?.containerID, `test://${container.id}`);

    await pod.stop('SIGTERM');
    assert.equal(await container.exited, 143);
    await waitFor(
      () => core.calls.find((c) => c.op === 'deleteContainer' && c.cgroupPath === container.cgroupPath),
      'deleteContainer after the command ended',
    );
    const ended = await getPod('worker');
    assert.equal(ended.status?.phase, 'Failed');
    assert.equal(ended.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 143);
  });

  it('stops cleanly: informers end, pending status is written', async function () {
    mode.onDecision(denial('web-1', webUid, '/etc/shadow'));
    await mode.stop();
    const status = await cspStatus('protect-creds');
    assert.equal(status.denials, 54, 'the last denial was flushed at stop');
    const callsAfterStop = api.calls.length;
    await kubectl(['apply', '-f', '-'], podJson('web-3', 'node-a'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(api.calls.length, callsAfterStop, 'no API call after stop');
  });
});

describe('k8s watch recovery on a compacting API server', function () {
  this.timeout(180_000);

  // etcd is compacted every 2 s and pod watches bypass the watch cache, so a
  // watch from an old resource version meets a real 410 Gone from etcd. (The
  // watch cache keeps a young cluster's whole history, and would replay it.)
  let cluster: Cluster | undefined;
  let cgroupRoot = '';
  let mode: KubernetesMode | undefined;

  before(async function () {
    cluster = await startCluster({ extraApiServerArgs: ['--etcd-compaction-interval=2s', '--watch-cache-sizes=pods#0'] });
    cgroupRoot = mkdtempSync(join(tmpdir(), 'sabpf-k8s-410-'));
  });

  after(async function () {
    await mode?.stop();
    await cluster?.stop();
    if (cgroupRoot) rmSync(cgroupRoot, { recursive: true, force: true });
  });

  it('lists again after a real 410 Gone and deletes nothing that still exists', async function () {
    assert.ok(cluster);
    const admin = createKubeApi(loadKubeConfig(cluster.kubeconfigPath));
    const kubectl = async (args: string[], input?: string): Promise<void> => {
      const result = await (cluster as Cluster).kubectl(args, input);
      assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`);
    };
    await applyCrdTo(cluster);
    await kubectl(['create', 'namespace', NS]);
    await kubectl(['apply', '-f', '-'], cspYaml('protect-creds', ['/etc/shadow']));
    await kubectl(['apply', '-f', '-'], podJson('web-1', 'node-a'));
    const uid = (await admin.request<Pod>({ method: 'GET', path: `/api/v1/namespaces/${NS}/pods/web-1` })).metadata?.uid ?? '';
    const cgroup = join(
      cgroupRoot,
      `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice/cri-containerd-${CONTAINER_ID}.scope`,
    );
    mkdirSync(cgroup, { recursive: true });
    await admin.request({
      method: 'PATCH',
      path: `/api/v1/namespaces/${NS}/pods/web-1/status`,
      body: {
        status: {
          phase: 'Running',
          containerStatuses: [
            {
              name: 'nginx',
              image: 'x',
              imageID: '',
              ready: true,
              restartCount: 0,
              containerID: `containerd://${CONTAINER_ID}`,
              state: { running: {} },
            },
          ],
        },
      },
    });

    const core = new RecordingCore();
    const api = new CountingApi(createKubeApi(loadKubeConfig(cluster.kubeconfigPath)));
    mode = runKubernetesMode({
      nodeName: 'node-a',
      cgroupRoot,
      sink: core,
      api,
      logger: quietLogger,
      registry: new Registry(),
      tuning: { backoff: { initialMs: 100, maxMs: 1000 } },
    });
    assert.equal(await mode.whenSynced(), true);
    await waitFor(() => core.calls.find((c) => c.op === 'upsertContainer'), 'web-1 upserted');

    // Let the compactor pass the revisions the cluster was created at.
    await kubectl(['label', 'pod', 'web-1', '-n', NS, 'step=one']);
    await new Promise((resolve) => setTimeout(resolve, 5000));

    const podLists = (): number => api.count((c) => c.method === 'GET' && c.path === '/api/v1/pods');
    const listsBefore = podLists();
    const callsBefore = core.calls.length;
    api.expireNextWatch('/api/v1/pods');
    assert.ok(api.killWatches() >= 1);
    await waitFor(() => podLists() > listsBefore, 'a relist of pods after 410');
    assert.equal(api.watchCalls.filter((w) => w.path === '/api/v1/pods' && w.query.resourceVersion === '1').length, 1);

    // The relist found web-1 unchanged except the label; nothing was deleted.
    assert.equal(core.calls.filter((c) => c.op === 'deleteContainer').length, 0);
    // And the watch after the relist delivers new changes.
    await kubectl(['label', 'pod', 'web-1', '-n', NS, 'tier=edge']);
    await waitFor(
      () => core.calls.slice(callsBefore).find((c) => c.op === 'upsertContainer' && c.container.labels.tier === 'edge'),
      'the label change after the relist',
    );
    assert.equal(core.calls.filter((c) => c.op === 'deleteContainer').length, 0);
  });
});
