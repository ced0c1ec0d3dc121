// sabpf enforce --unload: it returns only once the kernel has freed the
// programs, and fails, naming them, when another process keeps them. The
// addon is a fake over plain files standing in for bpffs pins.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { unloadAll } from '../../../enforcer/kernel/programs.js';

const EOPNOTSUPP = 95;

/** Builds a pin tree: two programs, a cgroup link and a global link. */
function pinTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'sabpf-unload-'));
  mkdirSync(join(root, 'progs-cgroup'));
  mkdirSync(join(root, 'maps'));
  mkdirSync(join(root, 'links', '42'), { recursive: true });
  mkdirSync(join(root, 'links', 'global'), { recursive: true });
  writeFileSync(join(root, 'progs-cgroup', 'sabpf_file_open'), '');
  writeFileSync(join(root, 'progs-cgroup', 'sabpf_path_rename'), '');
  writeFileSync(join(root, 'maps', 'sabpf_configs'), '');
  writeFileSync(join(root, 'links', '42', 'fileOpen'), '');
  writeFileSync(join(root, 'links', 'global', 'fileOpen'), '');
  return root;
}

/**
 * Returns a fake addon whose programs (ids 7 and 8) stay loaded for
 * `pollsLeft` checks each, or for ever when it is undefined.
 */
function fakeAddon(pollsLeft?: number) {
  const paths = new Map<number, string>();
  const polls = new Map<number, number>();
  const detached: string[] = [];
  let next = 3;
  return {
    detached,
    polls,
    objGet(path: string): number {
      paths.set(next, path);
      return next++;
    },
    progInfo(fd: number): { id: number; name: string; type: number; verifiedInsns: number } {
      return { id: (paths.get(fd) ?? '').endsWith('file_open') ? 7 : 8, name: '', type: 29, verifiedInsns: 0 };
    },
    // The global link runs program 9, which no progs- pin holds: an
    // earlier build's, left by a takeover.
    linkInfo(fd: number) {
      return { id: fd, type: 0, progId: (paths.get(fd) ?? '').includes(join('links', 'global')) ? 9 : 7 };
    },
    progExists(id: number): boolean {
      if (pollsLeft === undefined) return true;
      const seen = (polls.get(id) ?? 0) + 1;
      polls.set(id, seen);
      return seen <= pollsLeft;
    },
    detachLink(fd: number): void {
      const path = paths.get(fd) ?? '';
      if (path.includes(join('links', 'global'))) throw Object.assign(new Error('EOPNOTSUPP'), { errno: EOPNOTSUPP });
      detached.push(path);
    },
    closeFd(): void {},
  };
}

describe('unloadAll', () => {
  it('waits until the programs are freed', async () => {
    const root = pinTree();
    const addon = fakeAddon(3);
    await unloadAll(root, 5_000, addon);
    assert.equal(existsSync(root), false, 'pins are left');
    assert.deepEqual(addon.detached, [join(root, 'links', '42', 'fileOpen')]);
    // Loaded for three checks each, freed on the fourth: it kept asking
    // until then, for the program only a link held too.
    assert.deepEqual(
      [...addon.polls.entries()],
      [
        [7, 4],
        [8, 4],
        [9, 4],
      ],
    );
  });

  it('names the programs another process keeps', async () => {
    const root = pinTree();
    await assert.rejects(
      unloadAll(root, 200, fakeAddon()),
      /programs 7, 8, 9 are still loaded 0\.2 s after .*stop any running sabpf enforce/u,
    );
    assert.equal(existsSync(root), false, 'pins are left');
  });

  it('does nothing without a pin root', async () => {
    await unloadAll(join(tmpdir(), 'sabpf-unload-missing'), 200, fakeAddon());
  });
});
