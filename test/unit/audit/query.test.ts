import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';

import { parseTimeBound } from '../../../enforcer/audit/filters.js';
import { query } from '../../../enforcer/audit/query.js';
import type { AuditRecord } from '../../../enforcer/audit/record.js';
import type { SkippedLine } from '../../../enforcer/audit/records.js';
import { AuditWriter } from '../../../enforcer/audit/writer.js';
import { collect, fileDecision, makeTempDir, removeTempDir, steppingClock, writerOptions } from './helpers.js';

/** pids of the decision records, the handle each test checks. */
function pids(records: readonly AuditRecord[]): number[] {
  return records.flatMap((record) => (record.kind === 'decision' ? [record.pid] : []));
}

describe('query', () => {
  let directory: string;

  // Clock: start record at 12:00:00, then one record per minute.
  // pid 1: payments/api app, file-open deny, policy payments/protect-secrets
  // pid 2: payments/api sidecar, exec allow, policy payments/exec-list
  // pid 3: shop/web app, connect deny (audit mode), policy shop/egress
  // pid 4: shop/web app, socket-create deny, policy shop/egress
  // then a dropped record and the stop record.
  before(async () => {
    directory = await makeTempDir();
    const writer = await AuditWriter.open(
      writerOptions(directory, { now: steppingClock('2024-05-01T12:00:00.000Z', 60_000), maxBytes: 2048, maxFiles: 10 }),
    );
    await writer.appendDecision(fileDecision({ pid: 1, pod: 'api' }));
    await writer.appendDecision(
      fileDecision({
        pid: 2,
        pod: 'api',
        container: 'sidecar',
        operation: 'exec',
        resource: { path: '/bin/sh' },
        decision: 'allow',
        enforced: false,
        policy: 'payments/exec-list',
      }),
    );
    await writer.appendDecision(
      fileDecision({
        pid: 3,
        namespace: 'shop',
        pod: 'web',
        operation: 'connect',
        resource: { address: '10.0.0.1', port: 443, protocol: 'tcp' },
        enforced: false,
        mode: 'audit',
        policy: 'shop/egress',
      }),
    );
    await writer.appendDecision(
      fileDecision({
        pid: 4,
        namespace: 'shop',
        pod: 'web',
        operation: 'socket-create',
        resource: { family: 'AF_PACKET', type: 'SOCK_RAW' },
        policy: 'shop/egress',
      }),
    );
    await writer.appendDropped(3);
    await writer.close();
  });

  after(async () => {
    await removeTempDir(directory);
  });

  describe('when no filter is set', () => {
    it('returns every record in seq order across rotated files', async () => {
      const records = await collect(query(directory));
      assert.deepEqual(
        records.map((record) => record.seq),
        [1, 2, 3, 4, 5, 6, 7],
      );
    });
  });

  describe('when filtering by pod', () => {
    it('returns only that pod', async () => {
      assert.deepEqual(pids(await collect(query(directory, { pod: 'web' }))), [3, 4]);
    });

    it('leaves out records that are not decisions', async () => {
      const records = await collect(query(directory, { pod: 'web' }));
      assert.equal(records.length, 2);
    });
  });

  describe('when filtering by namespace', () => {
    it('returns only that namespace', async () => {
      assert.deepEqual(pids(await collect(query(directory, { namespace: 'payments' }))), [1, 2]);
    });
  });

  describe('when filtering by container', () => {
    it('returns only that container', async () => {
      assert.deepEqual(pids(await collect(query(directory, { container: 'sidecar' }))), [2]);
    });
  });

  describe('when filtering by decision', () => {
    it('returns only denies', async () => {
      assert.deepEqual(pids(await collect(query(directory, { decision: 'deny' }))), [1, 3, 4]);
    });
  });

  describe('when filtering by policy', () => {
    it('returns only that policy', async () => {
      assert.deepEqual(pids(await collect(query(directory, { policy: 'shop/egress' }))), [3, 4]);
    });
  });

  describe('when filtering by operation', () => {
    it('returns only that operation', async () => {
      assert.deepEqual(pids(await collect(query(directory, { operation: 'connect' }))), [3]);
    });
  });

  describe('when filtering by kind', () => {
    it('returns only that kind', async () => {
      const records = await collect(query(directory, { kind: 'dropped' }));
      assert.equal(records.length, 1);
      assert.equal(records[0]?.seq, 6);
    });
  });

  describe('when filtering by time', () => {
    it('includes both bounds', async () => {
      const since = new Date('2024-05-01T12:02:00.000Z');
      const until = new Date('2024-05-01T12:03:00.000Z');
      assert.deepEqual(pids(await collect(query(directory, { since, until }))), [2, 3]);
    });
  });

  describe('when filters combine', () => {
    it('requires every filter to match', async () => {
      assert.deepEqual(pids(await collect(query(directory, { namespace: 'shop', operation: 'socket-create' }))), [4]);
    });
  });

  describe('when a line is not a record', () => {
    it('skips it and reports its file and line', async () => {
      const file = join(directory, 'audit.log');
      await appendFile(file, 'garbage\n');
      const skipped: SkippedLine[] = [];
      const records = await collect(query(directory, {}, { onSkippedLine: (line) => skipped.push(line) }));
      assert.equal(records.length, 7);
      assert.equal(skipped.length, 1);
      assert.equal(skipped[0]?.file, file);
      assert.equal(skipped[0]?.reason, 'not a JSON object');
    });
  });

  describe('when the trail path is a file of the trail', () => {
    it('reads the whole trail', async () => {
      const records = await collect(query(join(directory, 'audit.log.1')));
      assert.equal(records.length, 7);
    });
  });

  describe('when the trail does not exist', () => {
    it('rejects with the path and the fix', async () => {
      await assert.rejects(
        collect(query(join(directory, 'missing'))),
        /failed to open audit trail .*missing: no such file or directory; pass the trail directory/,
      );
    });
  });
});

describe('parseTimeBound', () => {
  const now = new Date('2024-05-01T12:00:00.000Z');

  describe('when given an RFC 3339 time', () => {
    it('parses UTC', () => {
      assert.equal(parseTimeBound('2024-05-01T10:00:00Z', now).toISOString(), '2024-05-01T10:00:00.000Z');
    });

    it('applies an offset', () => {
      assert.equal(parseTimeBound('2024-05-01T10:00:00.5+02:00', now).toISOString(), '2024-05-01T08:00:00.500Z');
    });
  });

  describe('when given a duration', () => {
    it('subtracts minutes from now', () => {
      assert.equal(parseTimeBound('15m', now).toISOString(), '2024-05-01T11:45:00.000Z');
    });

    it('adds up combined units', () => {
      assert.equal(parseTimeBound('1h30m', now).toISOString(), '2024-05-01T10:30:00.000Z');
    });

    it('accepts days', () => {
      assert.equal(parseTimeBound('2d', now).toISOString(), '2024-04-29T12:00:00.000Z');
    });
  });

  describe('when given neither', () => {
    it('throws naming the value and the accepted forms', () => {
      assert.throws(() => parseTimeBound('yesterday', now), /invalid time "yesterday": pass an RFC 3339 time .* or a duration/);
    });

    it('rejects a date without a time', () => {
      assert.throws(() => parseTimeBound('2024-05-01', now), /invalid time/);
    });
  });
});
