import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { checkNoOtherVariant, checkTakeoverKernel, defaultMode, objectVariant } from '../../../enforcer/kernel/programs.js';

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
    assert.throws(() => checkNoOtherVariant(pinRootWith('cgroup'), 'global'), /cgroup links from an earlier run/u);
  });

  it('rejects global links under legacy', () => {
    assert.throws(
      () => checkNoOtherVariant(pinRootWith('global'), 'legacy'),
      /failed to load the legacy programs: global links from an earlier run are still attached under .*; run sabpf enforce --unload first/u,
    );
  });

  it('rejects cgroup links under global', () => {
    assert.throws(() => checkNoOtherVariant(pinRootWith('4242'), 'global'), /cgroup links of cgroup 4242/u);
  });

  it('ignores empty link folders', () => {
    const root = pinRootWith();
    mkdirSync(join(root, 'links', 'global'), { recursive: true });
    assert.doesNotThrow(() => checkNoOtherVariant(root, 'cgroup'));
  });
});

describe('takeover of another build by kernel release', () => {
  for (const release of ['6.1.0-57-amd64', '6.12.118+deb13-amd64', '7.0.0'])
    it(`allows it on ${release}`, () => {
      assert.doesNotThrow(() => checkTakeoverKernel('/sys/fs/bpf/sabpf', release));
    });

  for (const release of ['5.10.0-46-amd64', '5.19.0', '6.0.19'])
    it(`rejects it on ${release}`, () => {
      assert.throws(
        () => checkTakeoverKernel('/sys/fs/bpf/sabpf', release),
        (err: Error) => {
          assert.match(err.message, /under \/sys\/fs\/bpf\/sabpf/u);
          assert.ok(err.message.includes(`kernel ${release} is older than 6.1`), err.message);
          assert.match(err.message, /keep enforcing/u);
          assert.match(err.message, /run sabpf enforce --unload/u);
          return true;
        },
      );
    });
});
