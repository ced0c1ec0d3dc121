// The world of the Kubernetes node scenario: a real kube-apiserver and etcd
// on the host's loopback, the admission webhook in-process (as
// test/e2e/webhook.test.ts runs it), and a QEMU VM with the Debian 6.1
// kernel as node vm-node. The VM's only network path is QEMU's forward from
// 10.0.2.100:6443 in the guest to the API server's loopback port. The API
// server calls the webhook on 127.0.0.1. The test, `make demo` and the
// propagation benchmark all start it here.
//
// Identities: the enforcer in the VM uses a token of ServiceAccount
// sabpf-system/sabpf-enforcer (deploy/rbac-enforcer.yaml), the VM's test
// kubelet one of sabpf-system/sabpf-test-kubelet (rbac.yaml here), and the
// webhook one of sabpf-system/sabpf-webhook (deploy/rbac-webhook.yaml). Only
// the host's kubectl is cluster admin.

import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { pino } from 'pino';

import { repositoryRoot } from '../../../compiler/schema.js';
import { startWebhook, type RunningWebhook } from '../../../webhook/webhook.js';
import { startCluster, type Cluster, type KubectlResult } from '../../cluster/cluster.js';
import { GUEST_API_SERVER_ADDRESS, GUEST_API_SERVER_PORT, newRunDir, runInVm, type VmRunResult } from '../../vm/run.js';
import { eventually, httpsRequest } from '../webhook/https.js';
import { deployFile, toYaml, webhookConfigurationsForUrl } from '../webhook/manifests.js';
import { createWebhookPki } from '../webhook/pki.js';
import { serviceAccountKubeconfig } from '../webhook/service-account.js';
import { ConsoleWatch } from './console-watch.js';

const execFileAsync = promisify(execFile);

export const NODE_NAME = 'vm-node';

/** Where the guest finds the files the host put in the run share (guest-node.sh reads them). */
const GUEST_IN = '/sabpf/in';

export interface NodeEnvironmentOptions {
  /** One line per start-up phase, for the demo's narration. */
  progress?: (text: string) => void;
  /** Variables for guest-node.sh, such as SABPF_E2E_AUDIT_DIR. */
  guestEnv?: Record<string, string>;
  /** Kills the VM after this long. Default 40 minutes. */
  vmTimeoutMs?: number;
}

export interface NodeEnvironment {
  root: string;
  cluster: Cluster;
  webhook: RunningWebhook;
  /** The VM run's directory; `outputs` is the guest's $SABPF_OUT. */
  runDir: string;
  outputs: string;
  signingPublicKeyPem: string;
  console: ConsoleWatch;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** Applies deploy/webhook-configurations.yaml pointed at the in-process webhook. */
  registerWebhooks(): Promise<void>;
  /** Resolves when the VM has exited, whatever the reason. */
  vmExited: Promise<VmRunResult | Error>;
  /** Stops the node (enforcer with SIGTERM), then the VM, the webhook and the cluster. Idempotent. */
  stop(): Promise<NodeStopReport>;
}

export interface NodeStopReport {
  /** The VM's run, or why it failed. */
  vm: VmRunResult | Error;
  /** Exit status of `sabpf enforce --kubernetes` after SIGTERM, from its console marker. */
  enforcerExit: number | undefined;
  /** Whether the guest stopped by itself once asked, rather than being killed. */
  stoppedCleanly: boolean;
}

export async function startNodeEnvironment(options: NodeEnvironmentOptions = {}): Promise<NodeEnvironment> {
  const progress = options.progress ?? (() => undefined);
  const root = repositoryRoot();
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };

  try {
    // The rules under test are compiled from the Rego in the tree, never a stale file.
    progress('compiling the admission rules (policies/admission/build.sh)');
    await execFileAsync('bash', [join(root, 'policies/admission/build.sh')]);

    progress('starting etcd and kube-apiserver on 127.0.0.1');
    const cluster = await startCluster({ extraSans: [`IP:${GUEST_API_SERVER_ADDRESS}`] });
    cleanups.push(() => cluster.stop());
    const kubectl = (args: string[], input?: string): Promise<KubectlResult> => cluster.kubectl(args, input);
    const mustKubectl = async (step: string, args: string[], input?: string): Promise<void> => {
      const result = await kubectl(args, input);
      if (result.code !== 0) throw new Error(`failed to ${step}: kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    };

    progress('applying the CRD and the RBAC of deploy/');
    await mustKubectl('apply the CRD', ['apply', '-f', join(root, 'crds/sabpf.io_containersecuritypolicies.yaml')]);
    await mustKubectl('apply the RBAC', [
      'apply',
      '-f',
      deployFile('namespace.yaml'),
      '-f',
      deployFile('rbac-webhook.yaml'),
      '-f',
      deployFile('rbac-enforcer.yaml'),
      '-f',
      join(root, 'enforcer/k8s/rbac.yaml'),
      '-f',
      join(root, 'test/e2e/full/rbac.yaml'),
    ]);
    await mustKubectl('wait for the CRD', [
      'wait',
      '--for=condition=Established',
      'crd/containersecuritypolicies.sabpf.io',
      '--timeout=60s',
    ]);

    const runDir = await newRunDir();
    const hostDir = join(runDir, 'host');
    await mkdir(hostDir, { recursive: true });

    progress('starting the admission webhook on 127.0.0.1');
    const pki = await createWebhookPki(join(cluster.dataDir, 'webhook-pki'));
    const webhookLog = pino({ level: 'debug' }, createWriteStream(join(hostDir, 'webhook.log')));
    const webhook = await startWebhook(
      {
        host: '127.0.0.1',
        port: 0,
        tlsCertFile: pki.servingCertPath,
        tlsKeyFile: pki.servingKeyPath,
        signingKeyFile: pki.signingKeyPath,
        rulesWasm: join(root, 'policies/admission/require_policy.wasm'),
        kubeconfig: await serviceAccountKubeconfig(cluster, 'sabpf-system', 'sabpf-webhook'),
        requestTimeoutMs: 2500,
        tlsReloadIntervalMs: 60_000,
        logLevel: 'debug',
      },
      webhookLog,
    );
    cleanups.push(() => webhook.stop());
    await eventually(
      'the webhook is ready',
      async () => {
        const reply = await httpsRequest(`https://127.0.0.1:${webhook.port}/readyz`, pki.caCertPem, 'GET');
        return reply.status === 200 ? true : `HTTP ${reply.status} ${reply.body}`;
      },
      60_000,
    );
    const registerWebhooks = (): Promise<void> =>
      mustKubectl('register the webhooks', ['apply', '-f', '-'], toYaml(webhookConfigurationsForUrl(webhook.port, pki.caCertPem)));
    await registerWebhooks();
    await untilWebhookCalled(kubectl);
    await mustKubectl('create the namespace', ['apply', '-f', join(root, 'test/e2e/full/manifests/namespace.yaml')]);

    // The guest's credentials and trust anchors, in the run share before boot.
    const guestIn = join(runDir, 'in');
    await mkdir(guestIn, { recursive: true, mode: 0o700 });
    await copyFile(cluster.caCertPath, join(guestIn, 'ca.crt'));
    const apiServerPort = Number(new URL(cluster.apiServerUrl).port);
    await writeFile(join(guestIn, 'apiserver-port'), `${apiServerPort}\n`);
    await writeFile(join(guestIn, 'signing-public-key.pem'), webhook.signer.publicKeyPem);
    await writeGuestKubeconfig(
      join(guestIn, 'enforcer.kubeconfig'),
      'sabpf-enforcer',
      await serviceAccountToken(kubectl, 'sabpf-enforcer'),
    );
    await writeGuestKubeconfig(
      join(guestIn, 'kubelet.kubeconfig'),
      'sabpf-test-kubelet',
      await serviceAccountToken(kubectl, 'sabpf-test-kubelet'),
    );

    progress(
      `booting the VM (node ${NODE_NAME}); its only route out is ${GUEST_API_SERVER_ADDRESS}:${GUEST_API_SERVER_PORT} -> the API server`,
    );
    const consoleWatch = new ConsoleWatch();
    const abort = new AbortController();
    const env = Object.entries(options.guestEnv ?? {})
      .map(([name, value]) => `${name}=${shellQuote(value)} `)
      .join('');
    const vmExited: Promise<VmRunResult | Error> = runInVm({
      script: `${env}sh ${join(root, 'test/e2e/full/guest-node.sh')}\n`,
      runDir,
      network: { apiServerPort },
      timeoutMs: options.vmTimeoutMs ?? 40 * 60_000,
      onConsole: (chunk) => consoleWatch.push(chunk),
      signal: abort.signal,
    }).then(
      (result) => {
        consoleWatch.end(`the VM exited (guest status ${result.exitCode})`);
        return result;
      },
      (err: unknown) => {
        consoleWatch.end(`the VM failed: ${(err as Error).message}`);
        return err as Error;
      },
    );
    cleanups.push(async () => {
      abort.abort();
      await vmExited;
    });

    // Either marker ends the wait; a failure marker carries the guest's reason.
    const ready = await consoleWatch.waitFor(/SABPF-E2E (node-ready|failed .*)/, 10 * 60_000);
    if (!ready.text.includes('node-ready')) {
      throw new Error(`failed to start node ${NODE_NAME} in the VM: ${ready.text.trim()}; logs in ${join(runDir, 'out')}`);
    }

    let stopping: Promise<NodeStopReport> | undefined;
    const stop = (): Promise<NodeStopReport> => {
      stopping ??= (async () => {
        // Gracefully first: guest-node.sh stops the kubelet and the enforcer
        // when the stop file appears, then powers off. QEMU is killed only if
        // that takes longer than 3 minutes.
        await writeFile(join(runDir, 'stop'), '');
        const timer = setTimeout(() => abort.abort(), 180_000);
        const vm = await vmExited;
        clearTimeout(timer);
        const marker = /SABPF-E2E enforcer-stopped rc=(\d+)/.exec(consoleWatch.lines.map((line) => line.text).join('\n'));
        const report: NodeStopReport = {
          vm,
          enforcerExit: marker ? Number(marker[1]) : undefined,
          stoppedCleanly: !abort.signal.aborted && !(vm instanceof Error),
        };
        await cleanUp();
        return report;
      })();
      return stopping;
    };

    return {
      root,
      cluster,
      webhook,
      runDir,
      outputs: join(runDir, 'out'),
      signingPublicKeyPem: webhook.signer.publicKeyPem,
      console: consoleWatch,
      kubectl,
      registerWebhooks,
      vmExited,
      stop,
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/**
 * Waits until the apiserver calls the webhook, which it starts doing some
 * time after the configurations are created: a dry run of an invalid policy
 * fails with the webhook's name once it does.
 */
async function untilWebhookCalled(kubectl: (args: string[], input?: string) => Promise<KubectlResult>): Promise<void> {
  const probe = JSON.stringify({
    apiVersion: 'sabpf.io/v1alpha1',
    kind: 'ContainerSecurityPolicy',
    metadata: { name: 'probe', namespace: 'sabpf-system' },
    spec: { selector: { matchLabels: { app: 'probe' } }, file: { posture: 'allow', rules: [{ paths: ['relative'], action: 'deny' }] } },
  });
  await eventually(
    'the apiserver calls the webhook',
    async () => {
      const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], probe);
      return result.code !== 0 && result.stderr.includes('sign.csp.sabpf.io') ? true : `exit ${result.code}: ${result.stderr}`;
    },
    60_000,
  );
}

async function serviceAccountToken(kubectl: (args: string[]) => Promise<KubectlResult>, name: string): Promise<string> {
  const result = await kubectl(['create', 'token', name, '-n', 'sabpf-system', '--duration=2h']);
  if (result.code !== 0) throw new Error(`failed to create a token for sabpf-system/${name}: ${result.stderr}`);
  return result.stdout.trim();
}

/** Writes a kubeconfig for the guest: the forward's address, and the CA at its guest path. */
async function writeGuestKubeconfig(path: string, user: string, token: string): Promise<void> {
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'host',
        cluster: { server: `https://${GUEST_API_SERVER_ADDRESS}:${GUEST_API_SERVER_PORT}`, 'certificate-authority': `${GUEST_IN}/ca.crt` },
      },
    ],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: user, context: { cluster: 'host', user } }],
    'current-context': user,
  };
  await writeFile(path, `${JSON.stringify(kubeconfig, null, 2)}\n`, { mode: 0o600 });
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
