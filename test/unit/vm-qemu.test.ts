// The QEMU command line of the test VM: the instruction-counting mode that
// the kernel benchmark uses, the vCPU count it needs, the single TCG thread,
// and the kernel parameters.
import assert from 'node:assert/strict';

import { qemuArgs, type QemuConfig } from '../vm/qemu.js';

function config(fields: Partial<QemuConfig>): QemuConfig {
  return {
    images: { kernel: '/k/vmlinux', initramfs: '/k/initramfs.cpio' },
    runDir: '/r',
    shareDir: '/s',
    memoryMb: 2048,
    cpus: 2,
    ...fields,
  };
}

describe('qemuArgs', () => {
  it('runs plain TCG, without icount, by default', () => {
    const args = qemuArgs(config({}));
    assert.deepEqual(args.slice(args.indexOf('-accel'), args.indexOf('-accel') + 2), ['-accel', 'tcg']);
    assert.equal(args.includes('-icount'), false);
    assert.equal(args[args.indexOf('-smp') + 1], '2');
  });

  it('counts instructions with one vCPU when icount is on', () => {
    const args = qemuArgs(config({ icount: true, cpus: 1 }));
    assert.equal(args[args.indexOf('-icount') + 1], 'shift=0,sleep=off,align=off');
    assert.equal(args[args.indexOf('-smp') + 1], '1');
  });

  it('runs every vCPU in one host thread when asked', () => {
    const args = qemuArgs(config({ singleThread: true }));
    assert.equal(args[args.indexOf('-accel') + 1], 'tcg,thread=single');
    assert.equal(args[args.indexOf('-smp') + 1], '2');
  });

  it('turns a soft lockup into a panic that ends the run', () => {
    const args = qemuArgs(config({}));
    const append = (args[args.indexOf('-append') + 1] ?? '').split(' ');
    assert.ok(append.includes('softlockup_panic=1'), append.join(' '));
    assert.ok(append.includes('panic=-1'), append.join(' '));
    assert.ok(args.includes('-no-reboot'));
  });

  it('rejects icount with more than one vCPU, naming the fix', () => {
    assert.throws(() => qemuArgs(config({ icount: true, cpus: 2 })), /icount needs 1 vCPU, got 2; .*--cpus 1/u);
  });

  it('appends extra kernel parameters after the fixed ones', () => {
    const args = qemuArgs(config({ kernelParams: ['preempt=full'] }));
    const append = args[args.indexOf('-append') + 1] ?? '';
    assert.match(append, /lsm=lockdown,capability,bpf .*preempt=full sabpf\.share=\/s$/u);
  });

  it('rejects a kernel parameter with a space, naming it', () => {
    assert.throws(() => qemuArgs(config({ kernelParams: ['init=/bin/sh -x'] })), /kernel parameter "init=\/bin\/sh -x"/u);
  });
});
