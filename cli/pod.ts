// Reading a Pod manifest into the containers the compiler works on.

import type { ContainerRef } from '../compiler/selector.js';
import { loadPolicies } from '../compiler/load.js';
import { readInput } from './io.js';
import { UsageError } from './usage.js';

export interface PodContainer extends ContainerRef {
  /** Entrypoint from the container's command; empty when the image's ENTRYPOINT applies. */
  command: string[];
  init: boolean;
}

/** Reads the containers of the first Pod in a file. */
export function readPod(file: string): PodContainer[] {
  const { others, diagnostics } = loadPolicies(readInput(file), file);
  const syntax = diagnostics.find((d) => d.severity === 'error');
  if (syntax) throw new UsageError(`failed to read pod ${file}: ${syntax.problem} at line ${syntax.line}`);
  const pod = others.find((o) => o.object.kind === 'Pod');
  if (!pod) throw new UsageError(`no Pod found in ${file}; give a file with a kind: Pod document`);
  return podContainers(pod.object);
}

export function podContainers(pod: Record<string, unknown>): PodContainer[] {
  const metadata = (pod.metadata ?? {}) as { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string> };
  const spec = (pod.spec ?? {}) as { containers?: unknown[]; initContainers?: unknown[] };
  const list = (items: unknown[] | undefined, init: boolean): PodContainer[] =>
    (items ?? []).map((raw) => {
      const container = raw as { name?: string; command?: string[]; args?: string[] };
      return {
        namespace: metadata.namespace ?? 'default',
        pod: metadata.name ?? metadata.generateName ?? '(unnamed)',
        container: container.name ?? '(unnamed)',
        labels: metadata.labels ?? {},
        command: container.command ?? [],
        init,
      };
    });
  const containers = [...list(spec.initContainers, true), ...list(spec.containers, false)];
  if (containers.length === 0) throw new UsageError('the Pod has no containers; check spec.containers');
  return containers;
}
