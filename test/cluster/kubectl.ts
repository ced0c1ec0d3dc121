// Runs the built kubectl against the test cluster's kubeconfig.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubeconfigFields {
  server: string;
  caCertPath: string;
  token: string;
}

// kubeconfig is YAML, and YAML is a superset of JSON, so JSON needs no
// serializer and still parses in kubectl and client libraries.
export async function writeKubeconfig(path: string, fields: KubeconfigFields): Promise<void> {
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'sabpf-test', cluster: { server: fields.server, 'certificate-authority': fields.caCertPath } }],
    users: [{ name: 'sabpf-admin', user: { token: fields.token } }],
    contexts: [{ name: 'sabpf-test', context: { cluster: 'sabpf-test', user: 'sabpf-admin' } }],
    'current-context': 'sabpf-test',
  };
  await writeFile(path, `${JSON.stringify(kubeconfig, null, 2)}\n`, { mode: 0o600 });
}

const kubectlTimeoutMs = 120_000;

export function runKubectl(kubectlPath: string, kubeconfigPath: string, args: readonly string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    // A minimal environment: KUBECONFIG and proxy settings of the caller stay
    // out, and HOME is the cluster's data directory, so kubectl's discovery
    // cache is removed with the cluster instead of landing in the real home.
    const child = spawn(kubectlPath, ['--kubeconfig', kubeconfigPath, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirname(kubeconfigPath) },
      timeout: kubectlTimeoutMs,
    });

    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });

    child.once('error', (error) => {
      reject(new Error(`failed to run ${kubectlPath} ${args.join(' ')}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      if (signal !== null) stderr += `\nkubectl ended by ${signal} (timeout ${kubectlTimeoutMs / 1000}s)`;
      resolve({ code: code ?? -1, stdout, stderr });
    });

    child.stdin.on('error', () => {
      // kubectl may exit before reading all input, and its exit code and stderr report why.
    });
    child.stdin.end(input ?? '');
  });
}
