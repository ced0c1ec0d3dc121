// Certificates and keys for the test control plane, made with the openssl
// command line: a CA, a serving certificate for 127.0.0.1 signed by it, and
// the RSA key pair that signs and verifies service account tokens.

import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface ClusterPki {
  caCertPath: string;
  caKeyPath: string;
  servingCertPath: string;
  servingKeyPath: string;
  serviceAccountKeyPath: string;
  serviceAccountPublicKeyPath: string;
}

// Short lived on purpose: the files live only as long as one test run, and a
// leaked CA key that expires in two days is worth little.
const validityDays = '2';

const caConfig = `[req]
distinguished_name = dn
prompt = no
x509_extensions = ca_ext
[dn]
CN = sabpf-test-ca
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
`;

// Clients on the host reach the apiserver only through 127.0.0.1 or
// localhost. A test VM reaches it through a QEMU forward at another address,
// which the caller adds as an extra SAN (IP:10.0.2.100).
function servingExtensions(extraSans: readonly string[]): string {
  const sans = ['IP:127.0.0.1', 'DNS:localhost', ...extraSans].join(', ');
  return `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${sans}
authorityKeyIdentifier = keyid
`;
}

// An entry goes into an openssl config line, so only plain names and addresses pass.
const sanPattern = /^(IP:[0-9A-Fa-f.:]+|DNS:[A-Za-z0-9.-]+)$/;

/** Writes the CA, serving and service account keys under dir. extraSans: more subjectAltName entries, such as IP:10.0.2.100. */
export async function createClusterPki(dir: string, extraSans: readonly string[] = []): Promise<ClusterPki> {
  for (const san of extraSans) {
    if (!sanPattern.test(san)) {
      throw new Error(`failed to create the test PKI: invalid extra SAN ${JSON.stringify(san)}; write IP:<address> or DNS:<name>`);
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = (name: string): string => join(dir, name);
  const pki: ClusterPki = {
    caCertPath: path('ca.crt'),
    caKeyPath: path('ca.key'),
    servingCertPath: path('apiserver.crt'),
    servingKeyPath: path('apiserver.key'),
    serviceAccountKeyPath: path('service-account.key'),
    serviceAccountPublicKeyPath: path('service-account.pub'),
  };

  await writeFile(path('ca.cnf'), caConfig);
  await writeFile(path('apiserver.ext'), servingExtensions(extraSans));

  await openssl(
    'create the test CA',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', pki.caKeyPath, '-out', pki.caCertPath],
    ['-days', validityDays, '-config', path('ca.cnf')],
  );

  await openssl(
    'create the apiserver certificate request',
    ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', pki.servingKeyPath],
    ['-out', path('apiserver.csr'), '-subj', '/CN=127.0.0.1'],
  );

  await openssl(
    'sign the apiserver certificate',
    ['x509', '-req', '-in', path('apiserver.csr'), '-CA', pki.caCertPath, '-CAkey', pki.caKeyPath],
    ['-CAcreateserial', '-days', validityDays, '-extfile', path('apiserver.ext'), '-out', pki.servingCertPath],
  );

  await openssl(
    'create the service account signing key',
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', pki.serviceAccountKeyPath],
    [],
  );

  await openssl(
    'extract the service account public key',
    ['pkey', '-in', pki.serviceAccountKeyPath, '-pubout', '-out', pki.serviceAccountPublicKeyPath],
    [],
  );

  return pki;
}

async function openssl(step: string, args: string[], moreArgs: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', [...args, ...moreArgs]);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    const reason = stderr !== undefined && stderr !== '' ? stderr : String(error);
    throw new Error(`failed to ${step} with openssl: ${reason}; openssl must be on PATH (Debian package openssl)`, { cause: error });
  }
}
