// GET /healthz (liveness) and GET /readyz (readiness). Liveness only proves
// that the event loop responds. Readiness waits for the caches, because a
// webhook that admits pods against an empty policy cache admits everything.

import type { RequestHandler } from 'express';

import type { ClusterView } from './cache/cluster-view.js';

export function healthz(): RequestHandler {
  return (_req, res) => {
    res.json({ status: 'ok' });
  };
}

/** Ready once every cache has listed its objects. The Rego wasm and the signing key are loaded before the server starts. */
export function readyz(cluster: ClusterView): RequestHandler {
  return (_req, res) => {
    if (cluster.synced()) {
      res.json({ status: 'ready' });
      return;
    }
    res.status(503).json({ status: 'not ready', reason: 'the policy, pod and namespace caches have not listed their objects yet' });
  };
}
