// The kubelet of the VM node in the Kubernetes node scenario: polls the API
// server for the pods bound to this node and starts each new one with the
// test kubelet (guest-pod.ts), one child process per pod, so each pod's
// output lands in its own file: <pods dir>/<namespace>_<pod>.out contains the
// containers' stdout and stderr, <namespace>_<pod>.kubelet.log the test
// kubelet's own log. A pod deleted from the API server is stopped.
//
//   node dist/test/e2e/full/guest-kubelet.js --kubeconfig FILE --node-name NAME
//        --pods-dir DIR --enforcer-log FILE
//
// Needs RBAC: list pods (to find this node's pods) and what the test kubelet
// needs (get pods, patch pods/status); test/e2e/full/rbac.yaml grants both.
// It runs pod commands as root processes of the VM: for tests only.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { pino } from 'pino';

import { createKubeApi, loadKubeConfig } from '../../../enforcer/k8s/api.js';
import type { Pod } from '../../../enforcer/k8s/objects.js';

const POLL_MS = 500;
const guestPodScript = fileURLToPath(new URL('./guest-pod.js', import.meta.url));

interface Running {
  key: string;
  child: ChildProcess;
  exited: Promise<void>;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      'node-name': { type: 'string' },
      'pods-dir': { type: 'string' },
      'enforcer-log': { type: 'string' },
    },
  });
  const { kubeconfig, 'node-name': node, 'pods-dir': podsDir, 'enforcer-log': enforcerLog } = values;
  if (!kubeconfig || !node || !podsDir || !enforcerLog) {
    process.stderr.write('usage: guest-kubelet.js --kubeconfig FILE --node-name NAME --pods-dir DIR --enforcer-log FILE\n');
    return 2;
  }
  const log = pino({ name: 'guest-kubelet', base: { node } });
  const api = createKubeApi(loadKubeConfig(kubeconfig));
  const running = new Map<string, Running>();
  let stopping = false;

  const start = (pod: Pod): void => {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const key = `${namespace}/${name}`;
    const base = join(podsDir, `${namespace}_${name}`);
    const output = openSync(`${base}.out`, 'w');
    const child = spawn(
      process.execPath,
      [
        guestPodScript,
        '--kubeconfig',
        kubeconfig,
        '--namespace',
        namespace,
        '--pod',
        name,
        '--enforcer-log',
        enforcerLog,
        '--log-file',
        `${base}.kubelet.log`,
      ],
      { stdio: ['ignore', output, output] },
    );
    closeSync(output);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        log.info({ pod: key, code, signal }, 'pod process exited');
        resolve();
      });
    });
    running.set(pod.metadata?.uid ?? key, { key, child, exited });
    log.info({ pod: key, pid: child.pid }, 'starting pod');
  };

  const poll = async (): Promise<void> => {
    const list = await api.request<{ items: Pod[] }>({
      method: 'GET',
      path: '/api/v1/pods',
      query: { fieldSelector: `spec.nodeName=${node}` },
    });
    const present = new Set<string>();
    for (const pod of list.items) {
      const uid = pod.metadata?.uid ?? '';
      present.add(uid);
      // A pod with container statuses was started already, by this or an earlier run.
      const fresh = (pod.status?.containerStatuses ?? []).length === 0 && pod.metadata?.deletionTimestamp === undefined;
      if (fresh && !running.has(uid) && !stopping) start(pod);
    }
    for (const [uid, entry] of running) {
      if (!present.has(uid) && entry.child.exitCode === null && entry.child.signalCode === null) {
        log.info({ pod: entry.key }, 'pod deleted; stopping it');
        entry.child.kill('SIGTERM');
      }
    }
  };

  await poll();
  log.info('watching pods');
  const timer = setInterval(() => {
    poll().catch((err: unknown) => log.warn({ err }, 'failed to list the pods of this node; retrying'));
  }, POLL_MS);

  return new Promise<number>((resolve) => {
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      clearInterval(timer);
      for (const entry of running.values()) entry.child.kill('SIGTERM');
      void Promise.all([...running.values()].map((entry) => entry.exited)).then(() => {
        log.info({ pods: running.size }, 'stopped');
        resolve(0);
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`guest-kubelet: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
