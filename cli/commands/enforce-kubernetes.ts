// sabpf enforce --kubernetes: the per-node enforcer of a cluster. Watches
// ContainerSecurityPolicies and the pods bound to this node, confines their
// containers, posts denials as Events and reports CSP status.

import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { Enforcer, type SignatureCheck } from '../../enforcer/core/enforcer.js';
import { preflight } from '../../enforcer/core/preflight.js';
import { LAYOUTS, type LayoutChoice } from '../../enforcer/k8s/cgroups.js';
import { runKubernetesMode } from '../../enforcer/k8s/run.js';
import { MODE_OPTIONS } from '../../enforcer/kernel/index.js';
import { checkVerifyingKeys, verifyPolicySignature } from '../../webhook/signing.js';
import { auditTrailHelp, auditTrailOptions, auditTrailSettings } from '../audit-options.js';
import { startEnforcement } from '../enforce-start.js';
import { parseCount, UsageError } from '../usage.js';

export const enforceKubernetesHelp = `Usage: sabpf enforce --kubernetes --node-name NAME [options]

Runs the per-node enforcer against the Kubernetes API: confines the
containers of the pods bound to NAME with the ContainerSecurityPolicies that
select them, posts denials as Events and updates CSP status.

Options:
      --node-name NAME           this node's name (default: $NODE_NAME)
      --kubeconfig FILE          kubeconfig (default: $KUBECONFIG, else the in-cluster service account)
      --cgroup-root DIR          cgroup v2 mount (default /sys/fs/cgroup)
      --cgroup-layout LAYOUT     ${LAYOUTS.join(', ')} (default auto: probe the node)
      --signing-public-key FILE  PEM public key of the admission webhook; policies whose
                                 sabpf.io/signature does not verify are not applied
      --allow-unsigned           apply policies without checking signatures (test clusters only)
${auditTrailHelp(27)}
      --pin-root DIR             bpffs folder for pins (default /sys/fs/bpf/sabpf)
      --mode MODE                auto (default), cgroup, global or legacy (see sabpf enforce --help)
      --metrics-port PORT        serve Prometheus metrics on 127.0.0.1:PORT (default: off)
  -h, --help                     show this help

Exit status: 0 on a clean stop, 1 when the metrics port or the audit folder
cannot be used, or another enforcer still holds the pin root or the audit
folder after a wait of 60 s, 2 on a usage error, 3 when a kernel feature is
missing, the pin root cannot be used or the programs do not load (the message
names why).`;

/**
 * How long a start waits for an enforcer that still holds the node's folders.
 * A rolling update starts the new pod after the old one has ended, but a pod
 * deleted with --force is replaced at once. Waiting here is shorter than the
 * kubelet's restart back-off, which grows to 5 minutes.
 */
const LOCK_WAIT_MS = 60_000;

export async function enforceKubernetesCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubernetes: { type: 'boolean' },
      'node-name': { type: 'string' },
      kubeconfig: { type: 'string' },
      'cgroup-root': { type: 'string', default: '/sys/fs/cgroup' },
      'cgroup-layout': { type: 'string', default: 'auto' },
      'signing-public-key': { type: 'string' },
      'allow-unsigned': { type: 'boolean' },
      ...auditTrailOptions,
      'pin-root': { type: 'string', default: '/sys/fs/bpf/sabpf' },
      mode: { type: 'string', default: 'auto' },
      'metrics-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${enforceKubernetesHelp}\n`);
    return 0;
  }
  const nodeName = values['node-name'] ?? process.env.NODE_NAME;
  if (!nodeName) throw new UsageError('missing --node-name; pass it or set NODE_NAME (the downward API spec.nodeName in a DaemonSet)');
  const layout = values['cgroup-layout'] as LayoutChoice;
  if (!LAYOUTS.includes(layout)) throw new UsageError(`invalid --cgroup-layout ${layout}; use one of ${LAYOUTS.join(', ')}`);
  const modeOption = MODE_OPTIONS.find((m) => m === values.mode);
  if (modeOption === undefined) throw new UsageError(`invalid --mode ${values.mode}; use ${MODE_OPTIONS.join(', ')}`);
  const trail = auditTrailSettings(values);
  const metricsPort = values['metrics-port'] === undefined ? undefined : parseCount('--metrics-port', values['metrics-port'], 0, 1, 65535);
  if (!values['signing-public-key'] && !values['allow-unsigned']) {
    throw new UsageError("missing --signing-public-key; give the webhook signing key's public half, or --allow-unsigned on a test cluster");
  }

  const logger = pino({ name: 'sabpf-enforcer', base: { node: nodeName } }, pino.destination(2));
  let checkSignature: SignatureCheck | undefined;
  if (values['signing-public-key']) {
    const publicKey = readSigningKey(values['signing-public-key']);
    checkSignature = (update) =>
      update.object ? verifyPolicySignature(update.object, publicKey) : { ok: false, reason: 'the policy object is missing' };
  }

  const checks = preflight();
  if (!checks.ok) {
    process.stderr.write(`sabpf enforce: cannot enforce on this kernel:\n${checks.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return 3;
  }
  logger.info({ kernel: checks.kernelRelease, object: checks.object, preemption: checks.preemption }, 'kernel checks passed');

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // The port first: like the steps of startEnforcement before the load, a
  // busy port leaves the kernel and the trail as they were.
  let metricsServer: Server | undefined;
  if (metricsPort !== undefined) {
    try {
      metricsServer = await serveMetrics(registry, metricsPort);
    } catch (err) {
      logger.error({ port: metricsPort, err }, 'failed to serve metrics');
      process.stderr.write(
        `sabpf enforce: cannot serve metrics on 127.0.0.1:${metricsPort}: ${(err as Error).message}; pick a free --metrics-port\n`,
      );
      return 1;
    }
  }
  const started = await startEnforcement({
    trail,
    load: { mode: modeOption, pinRoot: values['pin-root'] },
    node: nodeName,
    registry,
    logger,
    lockWaitMs: LOCK_WAIT_MS,
  });
  if (typeof started === 'number') {
    metricsServer?.close();
    return started;
  }
  const { kernel, audit } = started;
  // The Kubernetes side is created after the enforcer, so decisions reach it through this indirection.
  let forward: (record: Parameters<NonNullable<ConstructorParameters<typeof Enforcer>[0]['onDecision']>>[0]) => void = () => undefined;
  const enforcer = new Enforcer({
    kernel,
    node: nodeName,
    logger,
    audit,
    registry,
    cgroupRoot: values['cgroup-root'],
    ...(checkSignature ? { checkSignature } : {}),
    onDecision: (record) => forward(record),
  });
  await enforcer.start();

  const abort = new AbortController();
  const cluster = runKubernetesMode({
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    nodeName,
    cgroupRoot: values['cgroup-root'],
    layout,
    sink: enforcer,
    statusProvider: () => enforcer.status(),
    signal: abort.signal,
    logger,
    registry,
  });
  forward = (record) => cluster.onDecision(record);

  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping; pinned programs keep enforcing');
      abort.abort();
      void (async () => {
        await cluster.stop();
        await enforcer.stop();
        await audit.close(`enforcer stopped: ${signal}`);
        metricsServer?.close();
        resolve(0);
      })();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** Reads the webhook's public key, and throws a UsageError naming the file when it is missing or contains no key. */
function readSigningKey(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `failed to read --signing-public-key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; check the path`,
    );
  }
  const problem = checkVerifyingKeys(pem);
  if (problem !== undefined) {
    throw new UsageError(`invalid --signing-public-key ${file}: ${problem}; pass the PEM public key that the admission webhook signs with`);
  }
  return pem;
}

/** Serves the registry at /metrics on 127.0.0.1:port; resolves once listening, rejects when the port cannot be used. */
export function serveMetrics(registry: Registry, port: number): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => response.writeHead(500).end(String(err)),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
