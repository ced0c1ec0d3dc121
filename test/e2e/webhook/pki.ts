// Keys and certificates for the webhook under test, made with the openssl
// command line. The CA signs a serving certificate for 127.0.0.1, because the
// apiserver reaches the webhook by URL and checks it against caBundle. The
// EC P-256 key signs policies.

import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface WebhookPki {
  caCertPem: string;
  servingCertPath: string;
  servingKeyPath: string;
  signingKeyPath: string;
}

const servingExtensions = `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
`;

export async function createWebhookPki(dir: string): Promise<WebhookPki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

  await openssl('create the webhook test CA', [
    'req',
    '-x509',
    ...ec,
    '-days',
    '1',
    '-subj',
    '/CN=sabpf-webhook-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    path('ca.key'),
    '-out',
    path('ca.crt'),
  ]);
  await openssl('create the webhook certificate request', [
    'req',
    '-new',
    ...ec,
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    path('tls.key'),
    '-out',
    path('tls.csr'),
  ]);
  await writeFile(path('tls.ext'), servingExtensions);
  await openssl('sign the webhook certificate', [
    'x509',
    '-req',
    '-in',
    path('tls.csr'),
    '-CA',
    path('ca.crt'),
    '-CAkey',
    path('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    path('tls.ext'),
    '-out',
    path('tls.crt'),
  ]);
  await openssl('create the policy signing key', [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    path('signing-key.pem'),
  ]);

  return {
    caCertPem: await readFile(path('ca.crt'), 'utf8'),
    servingCertPath: path('tls.crt'),
    servingKeyPath: path('tls.key'),
    signingKeyPath: path('signing-key.pem'),
  };
}

async function openssl(step: string, args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`failed to ${step} with openssl: ${stderr || String(error)}`, { cause: error });
  }
}
