// Locates the control plane binaries that test/cluster/build.sh puts in the
// cache. Only paths.sh encodes the versions and the cache layout, so this
// module runs it instead of repeating either.

import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type BinaryName = 'kube-apiserver' | 'kubectl' | 'etcd' | 'opa';

export type BinaryPaths = Record<BinaryName, string>;

const binaryNames: readonly BinaryName[] = ['kube-apiserver', 'kubectl', 'etcd', 'opa'];

// Compiled to dist/test/cluster/binaries.js, while the scripts stay in the
// source tree at test/cluster/, three levels up from there.
export function clusterSourceDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'paths.sh'))) return here;
  return join(here, '..', '..', '..', 'test', 'cluster');
}

export function resolveBinaryPaths(): BinaryPaths {
  const script = join(clusterSourceDir(), 'paths.sh');
  let output: string;
  try {
    output = execFileSync('bash', [script], { encoding: 'utf8' });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`failed to resolve the control plane binary paths with ${script}: ${reason}`, { cause: error });
  }

  const paths: Partial<BinaryPaths> = {};
  for (const line of output.split('\n')) {
    const separator = line.indexOf('=');
    if (separator < 0) continue;
    const name = line.slice(0, separator) as BinaryName;
    if (binaryNames.includes(name)) paths[name] = line.slice(separator + 1);
  }

  for (const name of binaryNames) {
    if (paths[name] === undefined) {
      throw new Error(`failed to resolve the path of ${name}: ${script} printed no line for it`);
    }
  }
  return paths as BinaryPaths;
}

// Throws one error listing every missing binary, with the command that builds them.
export function requireBinaries(paths: BinaryPaths, names: readonly BinaryName[]): void {
  const missing = names.filter((name) => !isExecutable(paths[name])).map((name) => paths[name]);
  if (missing.length === 0) return;

  throw new Error(
    `failed to find the test control plane binaries: missing ${missing.join(', ')}; ` +
      'build them with `test/cluster/build.sh` (or `make cluster-bins`), ' +
      'which takes several minutes the first time',
  );
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
