import assert from 'node:assert/strict';

import { formatRecord, printable } from '../../../enforcer/audit/format.js';
import type { AuditRecord } from '../../../enforcer/audit/record.js';

describe('printable', () => {
  describe('when text has control characters', () => {
    it('escapes C0 controls', () => {
      assert.equal(printable('a\u001b[31mb\n'), 'a\\x1b[31mb\\x0a');
    });

    it('escapes C1 controls', () => {
      assert.equal(printable('\u009b2J'), '\\x9b2J');
    });

    it('escapes backslashes so escapes stay unambiguous', () => {
      assert.equal(printable('C:\\x1b'), 'C:\\\\x1b');
    });
  });
});

describe('formatRecord', () => {
  const chain = { seq: 9, prevHash: '0'.repeat(64), hash: '1'.repeat(64), time: '2024-05-01T12:00:00.000Z', node: 'node-a' };

  describe('when a deny was not enforced', () => {
    it('says so', () => {
      const record = {
        ...chain,
        kind: 'decision',
        namespace: 'shop',
        pod: 'web',
        container: 'app',
        cgroupId: '1',
        pid: 3,
        ppid: 1,
        uid: 0,
        comm: 'curl',
        executable: '/usr/bin/curl',
        operation: 'connect',
        resource: { address: '2001:db8::1', port: 443, protocol: 'tcp' },
        decision: 'deny',
        enforced: false,
        mode: 'audit',
        policy: 'shop/egress',
        rule: 'spec.network.rules[0]',
        severity: 'medium',
        message: '',
        reason: 'rule',
      } as AuditRecord;
      assert.equal(
        formatRecord(record),
        '2024-05-01T12:00:00.000Z  DENY(not enforced)  shop/web/app  connect tcp [2001:db8::1]:443  pid=3 uid=0 comm=curl  policy=shop/egress rule=spec.network.rules[0] reason=rule  seq=9',
      );
    });
  });

  describe('when events were dropped', () => {
    it('shows the count and source', () => {
      const record = { ...chain, kind: 'dropped', count: 12, source: 'ring-buffer' } as AuditRecord;
      assert.equal(formatRecord(record), '2024-05-01T12:00:00.000Z  DROPPED  12 events lost (ring-buffer)  node=node-a  seq=9');
    });
  });
});
