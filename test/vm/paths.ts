// Where the harness finds its scripts and keeps its files. Compiled code lives
// in dist/test/vm/, so the project root is three levels above this module.
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** test/vm/ in the source tree: the shell scripts that build the VM images. */
export const vmSourceDir = join(projectRoot, 'test', 'vm');

/** Git-ignored build output: the initramfs and one directory per VM run. */
export const vmOutDir = join(vmSourceDir, 'out');

/** Downloads that outlive a checkout (the kernel deb, the guest BTF). */
export function vmCacheDir(): string {
  return join(process.env['SABPF_CACHE'] ?? join(homedir(), '.cache', 'sabpf'), 'vm');
}
