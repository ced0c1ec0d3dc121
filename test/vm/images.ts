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

/**
 * Debian kernels the harness can boot (kernel.sh LINE). 6.1 has
 * BPF_LSM_CGROUP and bpf_loop; 5.10 has BPF LSM, BTF and the ring buffer
 * but neither, which is what the legacy global object is for.
 */
export type KernelLine = '6.1' | '5.10' | '6.12';
export const KERNEL_LINES: readonly KernelLine[] = ['6.1', '5.10', '6.12'];

async function runBuildScript(name: string, line: KernelLine): Promise<string> {
  const script = join(vmSourceDir, name);
  try {
    const { stdout } = await execFileAsync('nice', ['-n', '10', script, line], {
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
// modules. One shared promise per line and process keeps concurrent runs
// from downloading the deb twice.
const pending = new Map<KernelLine, Promise<VmImages>>();

export function prepareVmImages(line: KernelLine = '6.1'): Promise<VmImages> {
  let images = pending.get(line);
  if (images === undefined) {
    images = (async () => {
      const kernel = await runBuildScript('kernel.sh', line);
      const initramfs = await runBuildScript('initramfs.sh', line);
      return { kernel, initramfs };
    })();
    pending.set(line, images);
    images.catch(() => {
      pending.delete(line);
    });
  }
  return images;
}
