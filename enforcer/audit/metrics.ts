// Prometheus counters of the audit writer. Counters are looked up before they
// are created so that several writers (or a writer reopened after a restart
// inside one process) can share one registry without a duplicate-name error.

import { Counter, type Registry } from 'prom-client';

export interface AuditMetrics {
  records: Counter<'kind'>;
  bytes: Counter;
  rotations: Counter;
  droppedEvents: Counter<'source'>;
  writeFailures: Counter;
}

export function createAuditMetrics(registry: Registry): AuditMetrics {
  return {
    records: counter(registry, 'sabpf_audit_records_total', 'Audit records appended to the trail, by record kind.', ['kind']),
    bytes: counter(registry, 'sabpf_audit_bytes_total', 'Bytes appended to the audit trail, newlines included.', []),
    rotations: counter(registry, 'sabpf_audit_rotations_total', 'Size-based rotations of the audit trail file.', []),
    droppedEvents: counter(
      registry,
      'sabpf_audit_dropped_events_total',
      'Events lost before reaching the trail, as counted by recorded dropped records: ring-buffer (kernel could not deliver), audit-write (append failed) or audit-backlog (too many decisions waiting).',
      ['source'],
    ),
    writeFailures: counter(registry, 'sabpf_audit_write_failures_total', 'Appends or fsyncs of the audit trail that failed.', []),
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
