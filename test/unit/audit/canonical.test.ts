import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { canonicalJson, computeRecordHash } from '../../../enforcer/audit/canonical.js';
import { GENESIS_HASH } from '../../../enforcer/audit/record.js';

describe('canonicalJson', () => {
  describe('when objects are nested', () => {
    it('sorts keys at every level', () => {
      const text = canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } });
      assert.equal(text, '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
    });
  });

  describe('when a member is undefined', () => {
    it('leaves it out as JSON.stringify does', () => {
      assert.equal(canonicalJson({ a: undefined, b: null }), '{"b":null}');
    });
  });

  describe('when strings need escapes', () => {
    it('escapes them as JSON.stringify does', () => {
      const value = 'line\nbreak "quoted" \u0001 \ud800';
      assert.equal(canonicalJson(value), JSON.stringify(value));
    });
  });

  describe('when a number is not finite', () => {
    it('throws instead of writing null', () => {
      assert.throws(() => canonicalJson({ a: Number.NaN }), /failed to serialize number NaN/);
    });
  });

  describe('when a value is a bigint', () => {
    it('throws', () => {
      assert.throws(() => canonicalJson(1n), /type bigint/);
    });
  });
});

describe('computeRecordHash', () => {
  describe('when given a record', () => {
    it('hashes prevHash followed by the canonical JSON without hash', () => {
      const record = { seq: 1, kind: 'stop', prevHash: GENESIS_HASH, hash: 'ignored' };
      const expected = createHash('sha256')
        .update(GENESIS_HASH + `{"kind":"stop","prevHash":"${GENESIS_HASH}","seq":1}`)
        .digest('hex');
      assert.equal(computeRecordHash(record), expected);
    });
  });

  describe('when key order differs', () => {
    it('returns the same hash', () => {
      const first = { seq: 2, kind: 'stop', prevHash: GENESIS_HASH, message: 'x' };
      const second = { message: 'x', prevHash: GENESIS_HASH, kind: 'stop', seq: 2 };
      assert.equal(computeRecordHash(first), computeRecordHash(second));
    });
  });
});
