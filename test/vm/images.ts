// The kernel and initramfs that a VM boots. Both scripts are idempotent and
// return at once when their output is current, so every run calls them.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { vmSourceDir } from './paths.js';

const execFileAsync = promisify(execFile);

export interface VmImages {
  kernel: string;
  initramfs: string;
}

async function runBuildScript(name: string): Promise<string> {
  const script = join(vmSourceDir, name);
  try {
    const { stdout } = await execFileAsync('nice', ['-n', '10', script], {
      maxBuffer: 1024 * 1024,
    });
    const path = stdout.trim().split('\n').pop() ?? '';
    if (path !== '') {
      return path;
    }
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`failed to build the VM image with ${script}: ${detail}`, { cause: err });
  }
  throw new Error(`failed to build the VM image with ${script}: it printed no image path on stdout`);
}

// The scripts run one after the other because initramfs.sh reads the kernel's
// modules. One shared promise per process keeps concurrent runs from
// downloading the deb twice.
let pending: Promise<VmImages> | undefined;

export function prepareVmImages(): Promise<VmImages> {
  pending ??= (async () => {
    const kernel = await runBuildScript('kernel.sh');
    const initramfs = await runBuildScript('initramfs.sh');
    return { kernel, initramfs };
  })();
  pending.catch(() => {
    pending = undefined;
  });
  return pending;
}
