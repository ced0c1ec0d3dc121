// The webhook's HTTP application and its HTTPS server.
//
//   POST /validate/csp   ContainerSecurityPolicy CREATE/UPDATE (validating)
//   POST /mutate/csp     ContainerSecurityPolicy CREATE/UPDATE (signing)
//   POST /validate/pod   Pod CREATE (validating)
//   GET  /healthz        liveness
//   GET  /readyz         readiness: caches synced
//   GET  /metrics        Prometheus metrics

import { createServer, type Server } from 'node:https';

import express, { type ErrorRequestHandler, type Express } from 'express';
import type { Logger } from 'pino';

import { admissionRoute, sendError } from './admission-route.js';
import type { AdmissionRules } from './admission-rules.js';
import type { ClusterView } from './cache/cluster-view.js';
import { healthz, readyz } from './health.js';
import type { WebhookMetrics } from './metrics.js';
import { mutatePolicy } from './mutate-csp.js';
import type { PolicySigner } from './signing.js';
import type { TlsFiles } from './tls.js';
import { validatePolicy } from './validate-csp.js';
import { validatePod } from './validate-pod.js';

/**
 * An AdmissionReview of an UPDATE carries the object and the old object,
 * each at most 1.5 MiB (what etcd stores per object), plus a small envelope.
 */
export const MAX_BODY_BYTES = 3 * 1024 * 1024 + 64 * 1024;

const POLICY_KIND = { group: 'sabpf.io', version: 'v1alpha1', kind: 'ContainerSecurityPolicy' };
const POD_KIND = { group: '', version: 'v1', kind: 'Pod' };
const ADMISSION_ENDPOINTS = ['/validate/csp', '/mutate/csp', '/validate/pod'];

export interface WebhookDeps {
  cluster: ClusterView;
  rules: AdmissionRules;
  signer: PolicySigner;
  log: Logger;
  metrics: WebhookMetrics;
  /** Deadline for one admission handler, in milliseconds. */
  timeoutMs: number;
}

export function createApp(deps: WebhookDeps): Express {
  const { log, metrics, timeoutMs } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', healthz());
  app.get('/readyz', readyz(deps.cluster));
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  const json = express.json({ limit: MAX_BODY_BYTES, strict: true });
  const route = { log, metrics, timeoutMs };
  app.post(
    '/validate/csp',
    json,
    admissionRoute({ ...route, endpoint: '/validate/csp', kind: POLICY_KIND, handler: (r) => validatePolicy(r, deps) }),
  );
  app.post(
    '/mutate/csp',
    json,
    admissionRoute({ ...route, endpoint: '/mutate/csp', kind: POLICY_KIND, handler: (r) => mutatePolicy(r, deps) }),
  );
  app.post(
    '/validate/pod',
    json,
    admissionRoute({ ...route, endpoint: '/validate/pod', kind: POD_KIND, handler: (r) => validatePod(r, deps) }),
  );

  app.use((req, res) => {
    sendError(res, 404, `no route ${req.method} ${req.path}: admission endpoints take POST on ${ADMISSION_ENDPOINTS.join(', ')}`);
  });
  app.use(bodyErrors(log, metrics));
  return app;
}

/**
 * Responds to errors raised before a handler ran, mostly from the JSON body
 * parser, with their HTTP status and a JSON message. Anything else is an
 * internal fault: HTTP 500, logged, and no stack trace in the body.
 */
function bodyErrors(log: Logger, metrics: WebhookMetrics): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const endpoint = ADMISSION_ENDPOINTS.includes(req.path) ? req.path : 'other';
    const { type, status } = (error ?? {}) as { type?: string; status?: number };

    let message: string;
    switch (type) {
      case 'entity.parse.failed':
        message = `failed to parse the AdmissionReview: invalid JSON: ${(error as Error).message}`;
        break;
      case 'entity.too.large':
        message = `failed to read the AdmissionReview: the body is larger than ${MAX_BODY_BYTES} bytes`;
        break;
      default:
        message =
          typeof status === 'number' && status >= 400 && status < 500
            ? `failed to read the request: ${(error as Error).message}`
            : 'internal error, see the webhook log';
    }
    const code = typeof status === 'number' && status >= 400 && status < 600 ? status : 500;

    if (code >= 500) log.error({ endpoint, err: error }, 'failed to handle a request');
    else log.warn({ endpoint, status: code, problem: message }, 'rejected an unreadable request');
    metrics.requests.inc({ endpoint, result: code >= 500 ? 'error' : 'bad_request' });
    sendError(res, code, message);
  };
}

/** Starts HTTPS on host:port (0 picks a free port). TLS 1.2 is the oldest version offered. */
export async function listenHttps(app: Express, tls: TlsFiles, host: string, port: number, timeoutMs: number): Promise<Server> {
  const server = createServer({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' }, app);
  // The apiserver reuses connections, so idle ones stay open longer than
  // between two admissions; a slow client cannot hold a socket for long.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = timeoutMs + 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
