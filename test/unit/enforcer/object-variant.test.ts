import assert from 'node:assert/strict';

import { defaultMode, objectVariant } from '../../../enforcer/kernel/programs.js';

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
    ['5.10.0', 'cgroup', 'cgroup'],
  ];
  for (const [release, mode, object] of cases) {
    it(`loads ${object} for --mode ${mode} on ${release}`, () => {
      assert.equal(objectVariant(mode as Parameters<typeof objectVariant>[0], release), object);
    });
  }

  it('rejects kernels without the ring buffer', () => {
    assert.throws(() => defaultMode('5.7.19'), /5\.7\.19: the sabpf programs need BPF LSM and the BPF ring buffer \(5\.8\+\)/u);
  });

  it('names an unparsable release', () => {
    assert.throws(() => objectVariant('auto', 'custom-kernel'), /failed to parse kernel release "custom-kernel"/u);
  });
});
