import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { lockFolder, lockHolder } from '../../../enforcer/kernel/index.js';

describe('folder locks', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sabpf-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lets one holder at a time lock a folder, and names it', () => {
    const first = lockFolder(dir);
    assert.ok(first.locked);
    // A second open file of the same process conflicts too, as a second enforcer's would.
    assert.deepEqual(lockFolder(dir), { locked: false, holder: process.pid });
    first.lock.release();
    first.lock.release();

    const second = lockFolder(dir);
    assert.ok(second.locked, 'release did not drop the lock');
    second.lock.release();
  });

  it('names the folder it cannot open', () => {
    assert.throws(
      () => lockFolder(join(dir, 'missing')),
      /^Error: failed to open folder .*\/missing: No such file or directory \(errno 2\)$/u,
    );
  });

  describe('lockHolder', () => {
    /** /proc/locks' id of dir: major:minor:inode, the numbers of the device in hex. */
    function lockId(): string {
      const { dev, ino } = statSync(dir, { bigint: true });
      const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
      const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
      return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${ino}`;
    }

    it('finds the holder and skips waiters and other files', () => {
      const locks = [
        `1: POSIX  ADVISORY  WRITE 77 ${lockId()} 0 EOF`,
        `2: FLOCK  ADVISORY  WRITE 88 00:01:1 0 EOF`,
        `3: FLOCK  ADVISORY  WRITE 4321 ${lockId()} 0 EOF`,
        `3: -> FLOCK  ADVISORY  WRITE 99 ${lockId()} 0 EOF`,
      ].join('\n');
      assert.equal(lockHolder(dir, locks), 4321);
    });

    it('takes a single holder of the inode on another device', () => {
      const inode = lockId().split(':')[2];
      assert.equal(lockHolder(dir, `1: FLOCK  ADVISORY  WRITE 66 00:99:${inode} 0 EOF\n`), 66);
    });

    it('gives no pid for two holders on other devices', () => {
      const inode = lockId().split(':')[2];
      const locks = [`1: FLOCK  ADVISORY  WRITE 66 00:98:${inode} 0 EOF`, `2: FLOCK  ADVISORY  WRITE 67 00:99:${inode} 0 EOF`].join('\n');
      assert.equal(lockHolder(dir, locks), undefined);
    });

    it('gives no pid for a folder without a lock', () => {
      assert.equal(lockHolder(dir, ''), undefined);
      assert.equal(lockHolder(join(dir, 'missing'), `1: FLOCK  ADVISORY  WRITE 5 ${lockId()} 0 EOF\n`), undefined);
    });
  });
});
