// The containers file of standalone mode: the containers of this node,
// declared by hand (or by a test) instead of discovered from Kubernetes.
//
//   node: demo-node
//   containers:
//     - namespace: shop
//       pod: web-1
//       container: nginx
//       labels: { app: web }
//       cgroupPath: /sys/fs/cgroup/demo/web-1/nginx

import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse } from 'yaml';
import type { NodeContainer } from './types.js';

export interface ContainersFile {
  node: string | undefined;
  containers: NodeContainer[];
}

/** Reads and checks a containers file. Throws an error naming the entry and field at fault. */
export function readContainersFile(path: string): ContainersFile {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`failed to read containers file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const root = (raw ?? {}) as { node?: unknown; containers?: unknown };
  if (!Array.isArray(root.containers)) {
    throw new Error(`invalid containers file ${path}: "containers" must be a list of {namespace, pod, container, labels, cgroupPath}`);
  }

  const seen = new Set<string>();
  const containers = root.containers.map((entry: unknown, i: number): NodeContainer => {
    const item = (entry ?? {}) as Record<string, unknown>;
    const where = `${path}: containers[${i}]`;
    for (const field of ['namespace', 'pod', 'container', 'cgroupPath']) {
      if (typeof item[field] !== 'string' || item[field] === '') throw new Error(`invalid ${where}.${field}: missing or not a string`);
    }
    const cgroupPath = item.cgroupPath as string;
    if (!isAbsolute(cgroupPath))
      throw new Error(`invalid ${where}.cgroupPath ${JSON.stringify(cgroupPath)}: write an absolute path under /sys/fs/cgroup`);
    if (!existsSync(cgroupPath) || !statSync(cgroupPath).isDirectory()) {
      throw new Error(
        `invalid ${where}.cgroupPath: ${cgroupPath} is not a directory; create the cgroup first (mkdir under /sys/fs/cgroup)`,
      );
    }
    if (seen.has(cgroupPath)) throw new Error(`invalid ${where}.cgroupPath: ${cgroupPath} is declared twice`);
    seen.add(cgroupPath);

    const labels = (item.labels ?? {}) as Record<string, unknown>;
    if (typeof labels !== 'object' || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string')) {
      throw new Error(`invalid ${where}.labels: must map label names to string values`);
    }
    return {
      namespace: item.namespace as string,
      pod: item.pod as string,
      container: item.container as string,
      labels: labels as Record<string, string>,
      cgroupPath,
    };
  });
  return { node: typeof root.node === 'string' ? root.node : undefined, containers };
}
