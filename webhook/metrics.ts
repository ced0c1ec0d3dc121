// Prometheus metrics of the webhook, on GET /metrics. Each admission request
// is counted and timed once, in the admission route.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { CacheSizes } from './cache/cluster-view.js';

export type RequestResult = 'allowed' | 'denied' | 'bad_request' | 'error';

export class WebhookMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'endpoint' | 'result'>;
  readonly duration: Histogram<'endpoint'>;

  /**
   * cacheSizes is read at every scrape. processMetrics adds prom-client's
   * default process and Node.js metrics, which start timers and GC observers.
   */
  constructor(cacheSizes: () => CacheSizes, options: { processMetrics?: boolean } = {}) {
    this.requests = new Counter({
      name: 'sabpf_webhook_admission_requests_total',
      help: 'Admission requests by endpoint and result (allowed, denied, bad_request, error).',
      labelNames: ['endpoint', 'result'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'sabpf_webhook_admission_duration_seconds',
      help: 'Time from receiving a parsed AdmissionReview to sending the response, in seconds.',
      labelNames: ['endpoint'],
      // The apiserver's budget per webhook call is timeoutSeconds (3 s for pods in deploy/);
      // most requests take well under a millisecond.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    new Gauge({
      name: 'sabpf_webhook_cache_objects',
      help: 'Objects in the webhook caches by kind (policies, invalid_policies, pods, namespaces).',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        const sizes = cacheSizes();
        this.set({ kind: 'policies' }, sizes.policies);
        this.set({ kind: 'invalid_policies' }, sizes.invalidPolicies);
        this.set({ kind: 'pods' }, sizes.pods);
        this.set({ kind: 'namespaces' }, sizes.namespaces);
      },
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'sabpf_webhook_' });
  }
}
