// A stand-in kubelet for end-to-end tests, where a VM (or the test machine)
// plays the node and no real kubelet or container runtime runs. For one pod
// it creates a cgroup per container in the flat layout
// (<cgroup root>/sabpf-test/<pod uid>/<container name>), runs the
// container's command on the host inside that cgroup, and reports the
// container states through the API server (PATCH pods/status) the way a
// kubelet would, with containerID test://<id>.
//
// Each command starts as
//   /bin/sh -c 'echo $$ > "$1/cgroup.procs" && ... && exec "$@"' sh <cgroup> <command...>
// so the process is in its cgroup before the command's first instruction.
// Between joining the cgroup and exec, the shell waits on a pipe: the status
// is reported running first, then `startGate` (say, "the enforcer attached")
// is awaited, then the command is released.
//
// Needs RBAC: get pods, patch pods/status (ClusterRole sabpf-test-kubelet in
// rbac.yaml). Only for tests: it runs pod commands as host processes.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { pino, type Logger } from 'pino';

import { createKubeApi, loadKubeConfig, type KubeApi } from './api.js';
import { DEFAULT_CGROUP_ROOT, FLAT_PARENT } from './cgroups.js';
import type { ContainerStatus, Pod } from './objects.js';

export interface TestPodOptions {
  api: KubeApi;
  namespace: string;
  pod: string;
  /** Default /sys/fs/cgroup. A plain folder works too: cgroup.procs is then an ordinary file. */
  cgroupRoot?: string;
  /** Awaited after the pod is reported running and before the commands run. */
  startGate?: (pod: TestPod) => Promise<void>;
  /** stdout and stderr of the commands. Default inherit. */
  output?: 'inherit' | 'ignore';
  logger?: Logger;
}

export interface TestContainer {
  name: string;
  /** Container id without the test:// prefix. */
  id: string;
  cgroupPath: string;
  pid: number;
  /** Exit code, or 128 + signal number when a signal ended it. */
  exited: Promise<number>;
}

export interface TestPod {
  uid: string;
  containers: TestContainer[];
  /** Resolves when every command ended and the final status was reported. */
  done: Promise<void>;
  /** Signals every running command and waits for `done`. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

// $1 is the cgroup directory; fd 3 is a socket to the test kubelet.
const LAUNCHER = 'echo $$ > "$1/cgroup.procs" && echo joined >&3 && read -r _ <&3 && shift && exec "$@" 3>&-';

export async function runTestPod(options: TestPodOptions): Promise<TestPod> {
  const log = (options.logger ?? pino({ name: 'test-kubelet' })).child({ pod: `${options.namespace}/${options.pod}` });
  const podPath = `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods/${encodeURIComponent(options.pod)}`;
  const pod = await options.api.request<Pod>({ method: 'GET', path: podPath });
  const uid = pod.metadata?.uid;
  if (!uid) throw new Error(`failed to run pod ${options.namespace}/${options.pod}: the API server returned it without a uid`);
  if (pod.spec?.initContainers?.length) {
    throw new Error(
      `failed to run pod ${options.namespace}/${options.pod}: the test kubelet runs no init containers; remove spec.initContainers`,
    );
  }
  const specs = pod.spec?.containers ?? [];
  for (const spec of specs) {
    if (!spec.command?.length) {
      throw new Error(
        `failed to run container ${spec.name} of pod ${options.namespace}/${options.pod}: it has no command; the test kubelet runs spec.containers[].command (and args) as a host command, images are not used`,
      );
    }
  }

  const root = options.cgroupRoot ?? DEFAULT_CGROUP_ROOT;
  const statuses = new Map<string, ContainerStatus>();
  let reports: Promise<void> = Promise.resolve();
  const report = (phase: string): Promise<void> => {
    const containerStatuses = specs.map((spec) => statuses.get(spec.name)).filter((s): s is ContainerStatus => s !== undefined);
    reports = reports.then(() =>
      options.api
        .request({ method: 'PATCH', path: `${podPath}/status`, body: { status: { phase, containerStatuses } } })
        .then(() => undefined),
    );
    return reports;
  };

  const launched: { container: TestContainer; child: ChildProcess; release: () => void }[] = [];
  try {
    for (const spec of specs) {
      const cgroupPath = join(root, FLAT_PARENT, uid, spec.name);
      await mkdir(cgroupPath, { recursive: true });
      const argv = [...(spec.command ?? []), ...(spec.args ?? [])];
      const child = spawn('/bin/sh', ['-c', LAUNCHER, 'sh', cgroupPath, ...argv], {
        stdio: ['ignore', options.output ?? 'inherit', options.output ?? 'inherit', 'pipe'],
      });
      // Listened to at once, so an early exit is not missed.
      const exited = new Promise<number>((resolve) => {
        child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0)));
      });
      const control = child.stdio[3] as unknown as Duplex;
      await joined(child, control, spec.name);
      const id = randomBytes(16).toString('hex');
      const container: TestContainer = { name: spec.name, id, cgroupPath, pid: child.pid as number, exited };
      launched.push({ container, child, release: () => control.end('go\n') });
      statuses.set(spec.name, {
        name: spec.name,
        containerID: `test://${id}`,
        image: spec.image ?? 'test',
        imageID: '',
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: new Date().toISOString().replace(/\.\d+Z$/u, 'Z') } },
      });
      log.info({ container: spec.name, pid: child.pid, cgroupPath }, 'container joined its cgroup');
    }
    await report('Running');
  } catch (err) {
    for (const { child } of launched) child.kill('SIGKILL');
    throw err;
  }

  const handle: TestPod = {
    uid,
    containers: launched.map((l) => l.container),
    done: Promise.resolve(),
    stop: async (signal = 'SIGTERM') => {
      for (const { child } of launched) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await handle.done;
    },
  };

  handle.done = (async () => {
    const ends = launched.map(async ({ container }) => {
      const code = await container.exited;
      const running = statuses.get(container.name)?.state?.running;
      statuses.set(container.name, {
        ...(statuses.get(container.name) as ContainerStatus),
        ready: false,
        started: false,
        state: {
          terminated: {
            exitCode: code,
            reason: code === 0 ? 'Completed' : 'Error',
            ...(running?.startedAt ? { startedAt: running.startedAt } : {}),
            finishedAt: new Date().toISOString().replace(/\.\d+Z$/u, 'Z'),
            containerID: `test://${container.id}`,
          },
        },
      });
      log.info({ container: container.name, exitCode: code }, 'container exited');
      const allDone = [...statuses.values()].every((s) => s.state?.terminated);
      const failed = [...statuses.values()].some((s) => (s.state?.terminated?.exitCode ?? 0) !== 0);
      let phase = 'Running';
      if (allDone) phase = failed ? 'Failed' : 'Succeeded';
      await report(phase);
      // A cgroup can be removed once its processes are gone; a plain folder keeps its cgroup.procs file.
      await rmdir(container.cgroupPath).catch(() => undefined);
    });
    await Promise.all(ends);
    await rmdir(join(root, FLAT_PARENT, uid)).catch(() => undefined);
  })();

  try {
    if (options.startGate) await options.startGate(handle);
  } finally {
    for (const { release } of launched) release();
  }
  return handle;
}

/** Waits for the launcher to report that it joined its cgroup. */
function joined(child: ChildProcess, control: Duplex, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (text.includes('joined')) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(
        new Error(
          `failed to start container ${name}: the launcher exited with ${code} before joining its cgroup; check that the cgroup root is writable`,
        ),
      );
    };
    const cleanup = (): void => {
      control.off('data', onData);
      child.off('exit', onExit);
    };
    control.on('data', onData);
    child.once('exit', onExit);
  });
}

const usage = `Usage: node dist/enforcer/k8s/test-kubelet.js --namespace NS --pod NAME [--kubeconfig FILE] [--cgroup-root DIR]

Runs the commands of one pod as host processes in cgroups under
DIR/sabpf-test/<pod uid>/<container>, and reports their states to the API
server as a kubelet would. Prints one JSON line per container
({container, pid, cgroupPath, containerID}) once all are running, and exits
when they all ended; SIGTERM stops them. For tests only.`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespace: { type: 'string' },
      pod: { type: 'string' },
      kubeconfig: { type: 'string' },
      'cgroup-root': { type: 'string', default: DEFAULT_CGROUP_ROOT },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !values.namespace || !values.pod) {
    process.stderr.write(`${usage}\n`);
    return values.help ? 0 : 2;
  }
  const logger = pino({ name: 'test-kubelet' }, pino.destination(2));
  const api = createKubeApi(loadKubeConfig(values.kubeconfig));
  const pod = await runTestPod({
    api,
    namespace: values.namespace,
    pod: values.pod,
    cgroupRoot: values['cgroup-root'],
    logger,
    output: 'inherit',
  });
  for (const container of pod.containers) {
    process.stdout.write(
      `${JSON.stringify({ container: container.name, pid: container.pid, cgroupPath: container.cgroupPath, containerID: `test://${container.id}` })}\n`,
    );
  }
  process.once('SIGTERM', () => void pod.stop('SIGTERM'));
  process.once('SIGINT', () => void pod.stop('SIGTERM'));
  await pod.done;
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`test-kubelet: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
