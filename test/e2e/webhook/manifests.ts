// Reads the deployment manifests of deploy/ for the end-to-end tests, and
// turns the webhook configurations into ones the test apiserver can call.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseAllDocuments, stringify } from 'yaml';

import { repositoryRoot } from '../../../compiler/schema.js';

export type Manifest = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string } };

export function deployFile(name: string): string {
  return join(repositoryRoot(), 'deploy', name);
}

export function readManifests(name: string): Manifest[] {
  const text = readFileSync(deployFile(name), 'utf8');
  return parseAllDocuments(text).map((document) => document.toJSON() as Manifest);
}

export function toYaml(manifests: readonly unknown[]): string {
  return manifests.map((manifest) => stringify(manifest)).join('---\n');
}

/**
 * Returns deploy/webhook-configurations.yaml with each service reference
 * replaced by https://127.0.0.1:PORT/PATH and the test CA as caBundle: the
 * test apiserver cannot reach Services, and this keeps the real rules,
 * namespace selectors and failure policies under test.
 */
export function webhookConfigurationsForUrl(port: number, caCertPem: string): Manifest[] {
  return readManifests('webhook-configurations.yaml').map((configuration) => {
    const webhooks = (configuration.webhooks as { clientConfig: { service?: { path?: string } } }[]).map((webhook) => {
      const path = webhook.clientConfig.service?.path;
      if (path === undefined) throw new Error(`webhook in ${configuration.metadata.name} has no clientConfig.service.path`);
      return { ...webhook, clientConfig: { url: `https://127.0.0.1:${port}${path}`, caBundle: Buffer.from(caCertPem).toString('base64') } };
    });
    return { ...configuration, webhooks };
  });
}
