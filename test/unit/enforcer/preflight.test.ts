import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preflight, type PreflightPaths } from '../../../enforcer/core/preflight.js';

const goodMounts = 'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\nbpf /sys/fs/bpf bpf rw 0 0\n';

// Debian's 6.1 build: the model is chosen at boot, and debugfs shows it.
const DYNAMIC = '#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)';

function fixture(lsm: string | undefined, btf: boolean, mounts: string, preempt = 'none (voluntary) full\n'): PreflightPaths {
  const dir = mkdtempSync(join(tmpdir(), 'sabpf-preflight-'));
  const paths: PreflightPaths = {
    lsm: join(dir, 'lsm'),
    btf: join(dir, 'vmlinux'),
    mounts: join(dir, 'mounts'),
    preemption: { debugfs: join(dir, 'preempt'), cmdline: join(dir, 'cmdline'), configs: [join(dir, 'config')] },
  };
  if (lsm !== undefined) writeFileSync(paths.lsm, lsm);
  if (btf) writeFileSync(paths.btf, '');
  writeFileSync(paths.mounts, mounts);
  writeFileSync(paths.preemption.debugfs, preempt);
  writeFileSync(paths.preemption.cmdline, 'BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro\n');
  return paths;
}

describe('preflight', () => {
  it('passes on a 6.1 kernel with every feature', () => {
    const result = preflight('6.1.0-57-amd64', fixture('lockdown,capability,bpf', true, goodMounts), DYNAMIC);
    assert.deepEqual(result.problems, []);
    assert.equal(result.ok, true);
    assert.equal(result.mode, 'cgroup');
    assert.equal(result.preemption, 'voluntary');
  });

  it('picks global mode with bpf_loop from 5.17 to 5.19', () => {
    const result = preflight('5.19.0', fixture('bpf', true, goodMounts), DYNAMIC);
    assert.equal(result.ok, true);
    assert.equal(result.mode, 'global');
    assert.equal(result.object, 'global');
  });

  it('picks the legacy object from 5.8 to 5.16', () => {
    for (const release of ['5.8.0', '5.10.0-46-amd64', '5.16.20']) {
      const result = preflight(release, fixture('bpf', true, goodMounts), DYNAMIC);
      assert.deepEqual(result.problems, [], release);
      assert.equal(result.mode, 'global', release);
      assert.equal(result.object, 'legacy', release);
    }
  });

  const failures: [string, string, ReturnType<typeof fixture>, RegExp][] = [
    [
      'a kernel without the BPF ring buffer',
      '5.7.19',
      fixture('bpf', true, goodMounts),
      /older than 5\.8, which added the BPF ring buffer/u,
    ],
    [
      'the BPF LSM off',
      '6.1.0',
      fixture('lockdown,capability,apparmor', true, goodMounts),
      /BPF LSM is not active.*lsm=lockdown,capability,apparmor,bpf/u,
    ],
    ['securityfs missing', '6.1.0', fixture(undefined, true, goodMounts), /securityfs is not mounted/u],
    ['no BTF', '6.1.0', fixture('bpf', false, goodMounts), /no BTF/u],
    ['cgroup v1', '6.1.0', fixture('bpf', true, 'bpf /sys/fs/bpf bpf rw 0 0\n'), /cgroup v2 is not mounted/u],
    ['no bpffs', '6.1.0', fixture('bpf', true, 'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n'), /bpffs is not mounted/u],
    [
      'full preemption',
      '6.1.0',
      fixture('bpf', true, goodMounts, 'none voluntary (full)\n'),
      /runs with full preemption \(.*preempt\): .*with preempt=voluntary/u,
    ],
  ];
  for (const [name, release, paths, problem] of failures) {
    it(`names ${name}`, () => {
      const result = preflight(release, paths, DYNAMIC);
      assert.equal(result.ok, false);
      assert.equal(result.problems.length, 1, result.problems.join('\n'));
      assert.match(result.problems[0] ?? '', problem);
    });
  }
});
