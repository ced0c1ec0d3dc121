import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  checkNoOtherVariant,
  checkReplaceKernel,
  countPinnedLinks,
  defaultMode,
  objectVariant,
} from '../../../enforcer/kernel/programs.js';

describe('object choice by kernel release', () => {
  const cases: [string, string, string][] = [
    // [release, --mode, object loaded]
    ['6.1.0-57-amd64', 'auto', 'cgroup'],
    ['6.1.0-57-amd64', 'global', 'global'],
    ['6.1.0-57-amd64', 'legacy', 'legacy'],
    ['5.19.0', 'auto', 'global'],
    ['5.17.0', 'auto', 'global'],
    ['5.16.20', 'auto', 'legacy'],
    ['5.16.20', 'global', 'legacy'],
    ['5.10.0-46-amd64', 'auto', 'legacy'],
    ['5.8.0', 'auto', 'legacy'],
  ];
  for (const [release, mode, object] of cases) {
    it(`loads ${object} for --mode ${mode} on ${release}`, () => {
      assert.equal(objectVariant(mode as Parameters<typeof objectVariant>[0], release), object);
    });
  }

  it('names BPF_LSM_CGROUP for cgroup mode before 6.0', () => {
    assert.throws(
      () => objectVariant('cgroup', '5.10.0'),
      /kernel 5\.10\.0: BPF_LSM_CGROUP needs Linux 6\.0\+; use --mode auto or global/u,
    );
  });

  it('rejects kernels without the ring buffer', () => {
    assert.throws(() => defaultMode('5.7.19'), /5\.7\.19: the sabpf programs need BPF LSM and the BPF ring buffer \(5\.8\+\)/u);
  });

  it('names an unparsable release', () => {
    assert.throws(() => objectVariant('auto', 'custom-kernel'), /failed to parse kernel release "custom-kernel"/u);
  });
});

describe('pinned links of another variant', () => {
  const pinRootWith = (...linkDirs: string[]): string => {
    const root = mkdtempSync(join(tmpdir(), 'sabpf-pins-'));
    for (const dir of linkDirs) {
      mkdirSync(join(root, 'links', dir), { recursive: true });
      writeFileSync(join(root, 'links', dir, 'fileOpen'), '');
    }
    return root;
  };

  it('accepts links of the same variant', () => {
    assert.doesNotThrow(() => checkNoOtherVariant(pinRootWith('legacy'), 'legacy'));
    assert.doesNotThrow(() => checkNoOtherVariant(pinRootWith('4242'), 'cgroup'));
  });

  it('accepts the node-wide links of cgroup mode', () => {
    assert.doesNotThrow(() => checkNoOtherVariant(pinRootWith('4242', 'cgroup'), 'cgroup'));
  });

  it('rejects the node-wide links of cgroup mode under global', () => {
    assert.throws(
      () => checkNoOtherVariant(pinRootWith('cgroup'), 'global'),
      /the node-wide links of the cgroup object from an earlier run/u,
    );
  });

  it('rejects global links under legacy', () => {
    assert.throws(
      () => checkNoOtherVariant(pinRootWith('global'), 'legacy'),
      /failed to load the legacy programs: the node-wide links of the global object from an earlier run are still attached under .*; run sabpf enforce --unload first/u,
    );
  });

  it('rejects cgroup links under global', () => {
    assert.throws(() => checkNoOtherVariant(pinRootWith('4242'), 'global'), /the links of cgroup 4242/u);
  });

  it('ignores empty link folders', () => {
    const root = pinRootWith();
    mkdirSync(join(root, 'links', 'global'), { recursive: true });
    assert.doesNotThrow(() => checkNoOtherVariant(root, 'cgroup'));
  });
});

describe('fresh load beside pinned links by kernel release', () => {
  const pinRoot = '/sys/fs/bpf/sabpf';
  const other = { pinRoot, links: 15, build: '0123456789abcdef' };

  for (const release of ['6.1.0-57-amd64', '6.12.118+deb13-amd64', '7.0.0'])
    it(`allows it on ${release}`, () => {
      assert.doesNotThrow(() => checkReplaceKernel(other, release));
    });

  it('allows it without pinned links on 5.10', () => {
    assert.doesNotThrow(() => checkReplaceKernel({ pinRoot, links: 0, build: '0123456789abcdef' }, '5.10.0-46-amd64'));
  });

  for (const release of ['5.10.0-46-amd64', '5.19.0', '6.0.19'])
    it(`rejects it on ${release}`, () => {
      const err = thrown(() => checkReplaceKernel(other, release));
      assert.match(
        err.message,
        /beside the 15 links that another sabpf build \(build-0123456789abcdef\) pinned under \/sys\/fs\/bpf\/sabpf/u,
      );
      assert.ok(err.message.includes(`kernel ${release} is older than 6.1`), err.message);
      assert.match(err.message, /those links keep enforcing/u);
      assert.match(err.message, /run sabpf enforce --unload/u);
    });

  it('names a start that did not finish', () => {
    const err = thrown(() => checkReplaceKernel({ pinRoot, links: 3, build: undefined }, '5.10.0'));
    assert.match(err.message, /the 3 links that a start that did not finish \(no build pin names it\) pinned/u);
  });

  it('names a reload of this build', () => {
    const err = thrown(() => checkReplaceKernel({ pinRoot, links: 2, build: 'this build' }, '5.10.0'));
    assert.match(err.message, /the 2 links that this build pinned/u);
  });

  it('names the fix for an unreadable release', () => {
    const err = thrown(() => checkReplaceKernel(other, 'custom'));
    assert.match(err.message, /failed to parse kernel release "custom": .*run sabpf enforce --unload/u);
  });
});

describe('links a fresh load would take over', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'sabpf-links-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const pin = (dir: string, ...hooks: string[]): void => {
    mkdirSync(join(root, 'links', dir), { recursive: true });
    for (const hook of hooks) writeFileSync(join(root, 'links', dir, hook), '');
  };

  it('counts none without a links folder', () => assert.equal(countPinnedLinks(root, 'legacy'), 0));

  it("counts the variant's node-wide links only", () => {
    pin('legacy', 'fileOpen', 'exec');
    pin('global', 'fileOpen');
    assert.equal(countPinnedLinks(root, 'legacy'), 2);
  });

  it('adds container links in cgroup mode', () => {
    pin('cgroup', 'fileLink');
    pin('4242', 'fileOpen', 'exec');
    pin('4243');
    assert.equal(countPinnedLinks(root, 'cgroup'), 3);
    assert.equal(countPinnedLinks(root, 'global'), 0);
  });
});

/** Returns the error fn throws, failing the test when it returns. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error, String(err));
    return err;
  }
  return assert.fail('expected an exception');
}
