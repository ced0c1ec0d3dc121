// Prometheus metrics of the Kubernetes side. Metrics are looked up before
// they are created so that two enforcers in one process (tests run two
// "nodes") can share a registry without a duplicate-name error.

import { Counter, Registry } from 'prom-client';

export interface K8sMetrics {
  /** Lists and watches restarted, by resource and reason (error, expired, stalled, closed). */
  watchRestarts: Counter<'resource' | 'reason'>;
  /** Full lists, by resource and result. */
  lists: Counter<'resource' | 'result'>;
  /** Event API calls, by verb (create, patch) and result (ok, error). */
  eventCalls: Counter<'verb' | 'result'>;
  /** Denial occurrences that never reached an Event, by reason. */
  eventsDropped: Counter<'reason'>;
  /** Times an Event waited for a rate-limit token instead of being sent at once. */
  eventsThrottled: Counter<'limit'>;
  /** CSP status patches, by result (ok, conflict, error). */
  statusPatches: Counter<'result'>;
}

export function createK8sMetrics(registry: Registry = new Registry()): K8sMetrics {
  return {
    watchRestarts: counter(registry, 'sabpf_k8s_watch_restarts_total', 'List/watch restarts, by resource and reason.', [
      'resource',
      'reason',
    ]),
    lists: counter(registry, 'sabpf_k8s_lists_total', 'Full lists of a resource, by result.', ['resource', 'result']),
    eventCalls: counter(registry, 'sabpf_k8s_event_calls_total', 'Event create and patch calls to the API server, by verb and result.', [
      'verb',
      'result',
    ]),
    eventsDropped: counter(
      registry,
      'sabpf_k8s_events_dropped_total',
      'Denials that did not reach a Kubernetes Event, by reason: queue-full (bounded queue overflowed, oldest dropped), api-error, shutdown.',
      ['reason'],
    ),
    eventsThrottled: counter(
      registry,
      'sabpf_k8s_events_throttled_total',
      'Events held back by a rate limit (object or global); their occurrences are folded into the Event count when it is sent.',
      ['limit'],
    ),
    statusPatches: counter(registry, 'sabpf_k8s_status_patches_total', 'ContainerSecurityPolicy status patches, by result.', ['result']),
  };
}

function counter<T extends string>(registry: Registry, name: string, help: string, labelNames: T[]): Counter<T> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) {
    if (!(existing instanceof Counter)) {
      throw new Error(
        `failed to register metric ${name}: the registry already has a ${existing.constructor.name} of that name; pass a registry without it`,
      );
    }
    return existing as Counter<T>;
  }
  return new Counter<T>({ name, help, labelNames, registers: [registry] });
}
