// A real control plane for tests: etcd and kube-apiserver on 127.0.0.1,
// started the way controller-runtime's envtest starts them. There is no
// controller-manager, scheduler or kubelet: objects are stored and admitted
// (webhooks, RBAC, CRD validation all run) but nothing reconciles them.
//
// Network invariant: every listener binds 127.0.0.1 and every client URL
// points there. The service CIDR 10.0.0.0/24 is only a setting that the
// apiserver allocates cluster IPs from, and nothing here routes to it.
// Aggregator routing makes the apiserver resolve a Service reference through
// EndpointSlices, of which there are none, instead of dialing a cluster IP.
// Webhooks in tests must therefore use clientConfig.url on 127.0.0.1.

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino, type Logger } from 'pino';

import { requireBinaries, resolveBinaryPaths, type BinaryPaths } from './binaries.js';
import { registerExitCleanup } from './exit-cleanup.js';
import { runKubectl, writeKubeconfig, type KubectlResult } from './kubectl.js';
import { createClusterPki } from './pki.js';
import { freeLoopbackPorts } from './ports.js';
import { apiServerReadyzProbe, etcdHealthProbe, waitUntilReady } from './readiness.js';
import { startServerProcess, type ServerProcess } from './server-process.js';

export type { KubectlResult } from './kubectl.js';
export type { BinaryPaths } from './binaries.js';

export interface ClusterOptions {
  // How long etcd and then kube-apiserver may each take to become ready. A
  // cold kube-apiserver start on two shared cores takes 20 to 40 seconds.
  startTimeoutMs?: number;
  // Flags appended after the defaults. A repeated flag overrides the default.
  extraApiServerArgs?: readonly string[];
  // More subjectAltName entries for the serving certificate, such as
  // IP:10.0.2.100 for a test VM that reaches the apiserver through a QEMU
  // forward. The apiserver still listens on 127.0.0.1 only.
  extraSans?: readonly string[];
  // Parent of the temporary data directory, the OS temp dir by default.
  parentDir?: string;
  // Whether to keep the data directory (logs, certificates) after a failed
  // start or after stop(). SABPF_KEEP_CLUSTER_DIR=1 sets it too.
  keepDataDir?: boolean;
  logger?: Logger;
}

export interface Cluster {
  apiServerUrl: string;
  caCertPath: string;
  adminToken: string;
  kubeconfigPath: string;
  dataDir: string;
  binaries: BinaryPaths;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  stop(): Promise<void>;
}

const defaultStartTimeoutMs = 90_000;
const loopback = '127.0.0.1';
const adminUser = 'sabpf-admin';

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const logger = options.logger ?? pino({ name: 'test-cluster', level: process.env.SABPF_CLUSTER_LOG_LEVEL ?? 'warn' });
  const startTimeoutMs = options.startTimeoutMs ?? defaultStartTimeoutMs;
  const keepDataDir = options.keepDataDir ?? process.env.SABPF_KEEP_CLUSTER_DIR === '1';

  const binaries = resolveBinaryPaths();
  requireBinaries(binaries, ['etcd', 'kube-apiserver', 'kubectl']);

  const dataDir = await mkdtemp(join(options.parentDir ?? tmpdir(), 'sabpf-cluster-'));
  const unregisterDirCleanup = keepDataDir ? () => undefined : registerExitCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  const servers: ServerProcess[] = [];

  const stopServers = async (): Promise<void> => {
    // Reverse order: the apiserver goes before the etcd it writes to.
    for (const server of [...servers].reverse()) await server.stop();
  };
  const removeDataDir = async (): Promise<void> => {
    unregisterDirCleanup();
    if (!keepDataDir) await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const [etcdClientPort, etcdPeerPort, apiServerPort] = (await freeLoopbackPorts(3)) as [number, number, number];
    const etcdUrl = `http://${loopback}:${etcdClientPort}`;
    const apiServerUrl = `https://${loopback}:${apiServerPort}`;

    logger.info({ dataDir, etcdUrl }, 'starting etcd');
    const etcd = startEtcd(binaries.etcd, dataDir, etcdClientPort, etcdPeerPort);
    servers.push(etcd);

    // Key generation overlaps with etcd's start.
    const pki = await createClusterPki(join(dataDir, 'pki'), options.extraSans ?? []);
    await waitUntilReady(etcd, `${etcdUrl}/health`, etcdHealthProbe(etcdUrl), startTimeoutMs);

    const adminToken = randomBytes(32).toString('hex');
    const tokenFile = join(dataDir, 'tokens.csv');
    // Format: token,user,uid,"group,...". Members of system:masters pass every RBAC check.
    await writeFile(tokenFile, `${adminToken},${adminUser},${adminUser},"system:masters"\n`, { mode: 0o600 });

    const apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${apiServerPort}`,
      `--bind-address=${loopback}`,
      `--advertise-address=${loopback}`,
      `--tls-cert-file=${pki.servingCertPath}`,
      `--tls-private-key-file=${pki.servingKeyPath}`,
      `--client-ca-file=${pki.caCertPath}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${pki.serviceAccountPublicKeyPath}`,
      `--service-account-signing-key-file=${pki.serviceAccountKeyPath}`,
      '--authorization-mode=RBAC',
      `--token-auth-file=${tokenFile}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // No controller-manager runs to create service account tokens, and the
      // plugin would reject every pod waiting for one.
      '--disable-admission-plugins=ServiceAccount',
      '--enable-priority-and-fairness=false',
      // A loopback address is invalid in an Endpoints object, so without this
      // the apiserver would keep failing to write one for the kubernetes Service.
      '--endpoint-reconciler-type=none',
      '--enable-aggregator-routing=true',
      `--cert-dir=${join(dataDir, 'apiserver-certs')}`,
      ...(options.extraApiServerArgs ?? []),
    ];

    logger.info({ apiServerUrl }, 'starting kube-apiserver');
    await mkdir(join(dataDir, 'apiserver-certs'), { recursive: true });
    const apiServer = startServerProcess('kube-apiserver', binaries['kube-apiserver'], apiServerArgs, join(dataDir, 'kube-apiserver.log'));
    servers.push(apiServer);

    const caCert = await readFile(pki.caCertPath, 'utf8');
    const startedAt = Date.now();
    await waitUntilReady(apiServer, `${apiServerUrl}/readyz`, apiServerReadyzProbe(apiServerUrl, caCert, adminToken), startTimeoutMs);
    logger.info({ apiServerUrl, readyAfterMs: Date.now() - startedAt }, 'kube-apiserver ready');

    const kubeconfigPath = join(dataDir, 'kubeconfig');
    await writeKubeconfig(kubeconfigPath, { server: apiServerUrl, caCertPath: pki.caCertPath, token: adminToken });

    let stopped: Promise<void> | undefined;
    return {
      apiServerUrl,
      caCertPath: pki.caCertPath,
      adminToken,
      kubeconfigPath,
      dataDir,
      binaries,
      kubectl: (args, input) => runKubectl(binaries.kubectl, kubeconfigPath, args, input),
      // Idempotent: an after() hook and a failing test may both call it.
      stop: () => {
        stopped ??= stopServers().then(removeDataDir);
        return stopped;
      },
    };
  } catch (error) {
    await stopServers();
    await removeDataDir();
    if (keepDataDir && error instanceof Error) error.message += `\n(data directory kept at ${dataDir})`;
    throw error;
  }
}

function startEtcd(etcdPath: string, dataDir: string, clientPort: number, peerPort: number): ServerProcess {
  const clientUrl = `http://${loopback}:${clientPort}`;
  const peerUrl = `http://${loopback}:${peerPort}`;
  return startServerProcess(
    'etcd',
    etcdPath,
    [
      '--name=sabpf-test',
      `--data-dir=${join(dataDir, 'etcd')}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=sabpf-test=${peerUrl}`,
      // Test data is thrown away with the directory, so durability buys
      // nothing and fsync only slows every write.
      '--unsafe-no-fsync',
    ],
    join(dataDir, 'etcd.log'),
  );
}
