// One side of the admission benchmark, in its own process so the two servers
// and the load generator do not share an event loop:
//   node dist/bench/admission/server.js webhook|bare CERT KEY
// It listens on 127.0.0.1 on a free port and sends the port to its parent
// over IPC, then its CPU time whenever the parent sends a message.

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import express from 'express';
import { pino } from 'pino';

import { WasmAdmissionRules } from '../../webhook/admission-rules.js';
import { StaticClusterView } from '../../webhook/cache/static-view.js';
import { WebhookMetrics } from '../../webhook/metrics.js';
import { createApp, listenHttps, MAX_BODY_BYTES } from '../../webhook/server.js';
import { PolicySigner } from '../../webhook/signing.js';
import { benchPolicies, BENCH_NAMESPACE, NAMESPACE_LABELS } from './fixtures.js';

const REQUEST_TIMEOUT_MS = 2500;
const RULES_WASM = fileURLToPath(new URL('../../../policies/admission/require_policy.wasm', import.meta.url));

const [side, certPath, keyPath] = process.argv.slice(2);
if ((side !== 'webhook' && side !== 'bare') || certPath === undefined || keyPath === undefined) {
  process.stderr.write('usage: node dist/bench/admission/server.js webhook|bare CERT KEY\n');
  process.exit(2);
}
const tls = { cert: readFileSync(certPath), key: readFileSync(keyPath) };

const server = side === 'webhook' ? await webhookServer() : await bareServer();
process.send?.({ port: (server.address() as AddressInfo).port });

// The parent requests this process's CPU time around each phase, which
// measures the cost per request even when other processes compete for the CPU.
process.once('SIGTERM', () => process.exit(0));
process.on('message', () => {
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicroseconds: user + system });
});

/** Starts the real webhook application with 100 policies in its cache and the compiled Rego rules. */
async function webhookServer() {
  const cluster = new StaticClusterView({ policies: benchPolicies(), namespaces: { [BENCH_NAMESPACE]: NAMESPACE_LABELS } });
  const rules = await WasmAdmissionRules.load(RULES_WASM);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signer = PolicySigner.fromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'generated key');
  // Logs at the production level go to /dev/null, so their cost is measured but not printed.
  const log = pino({ level: 'info' }, pino.destination('/dev/null'));
  const metrics = new WebhookMetrics(() => cluster.sizes());
  const app = createApp({ cluster, rules, signer, log, metrics, timeoutMs: REQUEST_TIMEOUT_MS });
  return listenHttps(app, tls, '127.0.0.1', 0, REQUEST_TIMEOUT_MS);
}

/** Starts the baseline: an express HTTPS handler that parses the review and always allows. */
async function bareServer() {
  const app = express();
  app.post('/validate/pod', express.json({ limit: MAX_BODY_BYTES }), (req, res) => {
    const uid = (req.body as { request?: { uid?: string } }).request?.uid;
    res.json({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } });
  });
  const bare = createServer({ ...tls, minVersion: 'TLSv1.2' }, app);
  bare.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  return bare;
}
