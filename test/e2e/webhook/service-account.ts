// A kubeconfig for a service account of deploy/, so the webhook under test
// runs with exactly the RBAC the deployment grants it.

import { join } from 'node:path';

import type { Cluster } from '../../cluster/cluster.js';
import { writeKubeconfig } from '../../cluster/kubectl.js';

/** Requests a token for namespace/name through the TokenRequest API and writes a kubeconfig that uses it. */
export async function serviceAccountKubeconfig(cluster: Cluster, namespace: string, name: string): Promise<string> {
  const token = await cluster.kubectl(['create', 'token', name, '-n', namespace, '--duration=2h']);
  if (token.code !== 0) throw new Error(`failed to create a token for ${namespace}/${name}: ${token.stderr}`);

  const path = join(cluster.dataDir, `kubeconfig-${name}`);
  await writeKubeconfig(path, { server: cluster.apiServerUrl, caCertPath: cluster.caCertPath, token: token.stdout.trim() });
  return path;
}
