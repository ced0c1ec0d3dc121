import assert from 'node:assert/strict';
import { buildDecision } from '../../../enforcer/audit/build.js';
import { FILE_OPERATIONS, validateRecord, type DecisionEvent } from '../../../enforcer/audit/index.js';

const base = {
  namespace: 'shop',
  pod: 'web-1',
  container: 'nginx',
  cgroupId: '94',
  pid: 10,
  ppid: 1,
  uid: 0,
  comm: 'ln',
  executable: '/bin/busybox',
  decision: 'deny',
  enforced: true,
  mode: 'enforce',
  policy: 'shop/p',
  rule: 'spec.file.rules[0]',
  severity: 'high',
  message: '',
  reason: 'rule',
} as const;

describe('buildDecision', () => {
  for (const operation of FILE_OPERATIONS) {
    describe(`when the operation is ${operation} with a kernel time`, () => {
      const time = new Date('2026-12-04T22:00:00.123Z');
      const record = buildDecision(
        { ...base, operation, access: 'read', resource: { path: '/srv/secret/key' }, time } as DecisionEvent,
        'n1',
        new Date(),
      );

      it('formats the given time', () => {
        assert.equal(record.time, '2026-12-04T22:00:00.123Z');
      });

      it('keeps only the record fields', () => {
        assert.equal((record as Record<string, unknown>).access, 'read');
        assert.deepEqual((record as Record<string, unknown>).resource, { path: '/srv/secret/key' });
      });

      it('passes the record schema', () => {
        const chained = { ...record, seq: 1, prevHash: '0'.repeat(64), hash: 'a'.repeat(64) };
        assert.deepEqual(validateRecord(chained), []);
      });
    });
  }
});
