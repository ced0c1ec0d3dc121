// Starting and stopping the whole webhook: load the signing key and the Rego
// rules (a failure stops the start), start the caches, then serve HTTPS.
// main.ts calls this with the parsed flags; the end-to-end test calls it
// in-process.

import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';

import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { WasmAdmissionRules } from './admission-rules.js';
import { InformerClusterView } from './cache/informer-view.js';
import type { WebhookConfig } from './config.js';
import { WebhookMetrics } from './metrics.js';
import { createApp, listenHttps } from './server.js';
import { PolicySigner } from './signing.js';
import { readTlsFiles, reloadTlsPeriodically } from './tls.js';

export interface RunningWebhook {
  server: Server;
  /** The port actually bound, useful with port 0. */
  port: number;
  cluster: InformerClusterView;
  signer: PolicySigner;
  stop(): Promise<void>;
}

export async function startWebhook(config: WebhookConfig, log: Logger): Promise<RunningWebhook> {
  const signer = await loadSigner(config.signingKeyFile);
  const rules = await WasmAdmissionRules.load(config.rulesWasm);

  const kubeConfig = new KubeConfig();
  try {
    if (config.kubeconfig !== undefined) kubeConfig.loadFromFile(config.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw new Error(
      `failed to load the kubeconfig ${config.kubeconfig ?? '(default)'}: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }

  const cluster = new InformerClusterView(kubeConfig, log);
  const metrics = new WebhookMetrics(() => cluster.sizes());
  const app = createApp({ cluster, rules, signer, log, metrics, timeoutMs: config.requestTimeoutMs });

  const tls = await readTlsFiles(config.tlsCertFile, config.tlsKeyFile);
  const server = await listenHttps(app, tls, config.host, config.port, config.requestTimeoutMs);
  const stopReload = reloadTlsPeriodically(
    server,
    { certPath: config.tlsCertFile, keyPath: config.tlsKeyFile },
    tls,
    log,
    config.tlsReloadIntervalMs,
  );
  const port = (server.address() as AddressInfo).port;

  // Never rejects: failed lists retry with back-off, and /readyz reports 503 until they succeed.
  void cluster.start().then(() => log.info({ synced: cluster.synced() }, 'caches started'));
  log.info({ host: config.host, port, signingKeyId: signer.keyId, rules: config.rulesWasm }, 'webhook listening');

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopReload();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await cluster.stop();
      log.info('webhook stopped');
    })();
    return stopped;
  };
  return { server, port, cluster, signer, stop };
}

async function loadSigner(path: string): Promise<PolicySigner> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`failed to read the signing key ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return PolicySigner.fromPem(pem, path);
}
