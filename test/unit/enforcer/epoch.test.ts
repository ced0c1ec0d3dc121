// The policy epoch's encoding: the programs take a value only when its two
// 32-bit halves are equal, so that a read of a half-written value is rejected.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { nextEpoch } from '../../../enforcer/kernel/programs.js';

function epoch(lo: number, hi: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(lo, 0);
  b.writeUInt32LE(hi, 4);
  return b;
}

const halvesEqual = (b: Buffer): boolean => b.readUInt32LE(0) === b.readUInt32LE(4);

describe('nextEpoch', () => {
  it('moves a fresh map on to 1 in both halves', () => {
    assert.deepEqual(nextEpoch(epoch(0, 0)), epoch(1, 1));
  });

  it('moves a plain counter of an older build on', () => {
    assert.deepEqual(nextEpoch(epoch(41, 0)), epoch(42, 42));
  });

  it('wraps the counter at 32 bits', () => {
    assert.deepEqual(nextEpoch(epoch(0xffffffff, 0xffffffff)), epoch(0, 0));
  });

  it('leaves every byte-wise mix of old and new with unequal halves', () => {
    // The kernel may copy the value one byte at a time, in either direction:
    // a reader then sees the first k bytes of one value and the rest of the
    // other. Only the old and the new value themselves may pass.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffffffe }), fc.integer({ min: 1, max: 7 }), fc.boolean(), (n, k, newFirst) => {
        const old = epoch(n, n);
        const next = nextEpoch(old);
        const [head, tail] = newFirst ? [next, old] : [old, next];
        const mix = Buffer.concat([head.subarray(0, k), tail.subarray(k)]);
        if (mix.equals(old) || mix.equals(next)) return;
        assert.equal(halvesEqual(mix), false, `mix ${mix.toString('hex')} of ${old.toString('hex')} and ${next.toString('hex')}`);
      }),
    );
  });
});
