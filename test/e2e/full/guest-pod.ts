// One pod of the VM node: the test kubelet (enforcer/k8s/test-kubelet.ts)
// starts its containers in flat-layout cgroups and reports them running,
// then delays each command until the enforcer has attached its programs to
// that container's cgroup. A real kubelet does not wait for sabpf; the gate
// exists so that the scenario's first operation already meets the policy
// and its outcome does not depend on how fast TCG runs the enforcer.
//
//   node dist/test/e2e/full/guest-pod.js --kubeconfig FILE --namespace NS --pod NAME
//        --enforcer-log FILE --log-file FILE [--pin-root DIR]
//
// The containers' stdout and stderr are this process's; guest-kubelet.ts
// sends them to the pod's .out file. SIGTERM stops the containers.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { pino, type Logger } from 'pino';

import { createKubeApi, loadKubeConfig } from '../../../enforcer/k8s/api.js';
import { runTestPod, type TestContainer, type TestPod } from '../../../enforcer/k8s/test-kubelet.js';

// Enforcer start and compile under TCG take seconds; this bounds a hang.
const GATE_TIMEOUT_MS = 180_000;
const GATE_POLL_MS = 100;

interface AppliedLine {
  msg?: string;
  namespace?: string;
  pod?: string;
  container?: string;
  cgroupId?: string;
}

/**
 * Resolves once the enforcer logged "applied policies to container" for this
 * container's cgroup id and the kernel links of that cgroup are pinned.
 * Throws after GATE_TIMEOUT_MS; the test kubelet then releases the command
 * anyway, and the host's checks report what ran unconfined.
 */
async function enforcementAttached(
  container: TestContainer,
  namespace: string,
  pod: string,
  enforcerLog: string,
  pinRoot: string,
): Promise<void> {
  const cgroupId = statSync(container.cgroupPath, { bigint: true }).ino.toString();
  const linksDir = join(pinRoot, 'links', cgroupId);
  const deadline = Date.now() + GATE_TIMEOUT_MS;
  for (;;) {
    if (appliedInLog(enforcerLog, namespace, pod, container.name, cgroupId) && pinnedLinks(linksDir) > 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `failed to see the enforcer attach to container ${container.name} of pod ${namespace}/${pod} (cgroup id ${cgroupId}) within ${GATE_TIMEOUT_MS / 1000}s; check ${enforcerLog} and that a policy selects the pod`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, GATE_POLL_MS));
  }
}

function appliedInLog(path: string, namespace: string, pod: string, container: string, cgroupId: string): boolean {
  const text = readFileSync(path, 'utf8');
  for (const line of text.split('\n')) {
    if (!line.includes('applied policies to container')) continue;
    try {
      const entry = JSON.parse(line) as AppliedLine;
      if (entry.namespace === namespace && entry.pod === pod && entry.container === container && entry.cgroupId === cgroupId) return true;
    } catch {
      // A line the enforcer is still writing; the next poll reads it whole.
    }
  }
  return false;
}

function pinnedLinks(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      pod: { type: 'string' },
      'enforcer-log': { type: 'string' },
      'log-file': { type: 'string' },
      'pin-root': { type: 'string', default: '/sys/fs/bpf/sabpf' },
    },
  });
  const { kubeconfig, namespace, pod: name, 'enforcer-log': enforcerLog, 'log-file': logFile } = values;
  if (!kubeconfig || !namespace || !name || !enforcerLog || !logFile) {
    process.stderr.write('usage: guest-pod.js --kubeconfig FILE --namespace NS --pod NAME --enforcer-log FILE --log-file FILE\n');
    return 2;
  }
  const logger: Logger = pino({ name: 'test-kubelet' }, pino.destination({ dest: logFile, sync: true }));
  const pinRoot = values['pin-root'];

  const pod: TestPod = await runTestPod({
    api: createKubeApi(loadKubeConfig(kubeconfig)),
    namespace,
    pod: name,
    output: 'inherit',
    logger,
    startGate: async (started) => {
      for (const container of started.containers) {
        await enforcementAttached(container, namespace, name, enforcerLog, pinRoot);
        logger.info({ container: container.name }, 'the enforcer attached; releasing the command');
      }
    },
  });
  process.once('SIGTERM', () => void pod.stop('SIGTERM'));
  await pod.done;
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`guest-pod: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
