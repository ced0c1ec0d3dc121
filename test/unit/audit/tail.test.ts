import assert from 'node:assert/strict';

import type { AuditRecord } from '../../../enforcer/audit/record.js';
import { tail } from '../../../enforcer/audit/tail.js';
import { AuditWriter } from '../../../enforcer/audit/writer.js';
import { collect, fileDecision, makeTempDir, removeTempDir, writerOptions, writeTrail } from './helpers.js';

/** Reads from an iterator until `count` records arrived or `timeoutMs` passed. */
async function take(iterator: AsyncIterator<AuditRecord>, count: number, timeoutMs = 5000): Promise<AuditRecord[]> {
  const records: AuditRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (records.length < count && Date.now() < deadline) {
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), deadline - Date.now()).unref());
    const next = await Promise.race([iterator.next(), timeout]);
    if (next === 'timeout' || next.done === true) {
      break;
    }
    records.push(next.value);
  }
  return records;
}

describe('tail', () => {
  let directory: string;

  beforeEach(async () => {
    directory = await makeTempDir();
  });

  afterEach(async () => {
    await removeTempDir(directory);
  });

  describe('when not following', () => {
    it('returns the last N records oldest first', async () => {
      await writeTrail(directory, 10);
      const records = await collect(tail(directory, { lines: 3 }));
      assert.deepEqual(
        records.map((record) => record.seq),
        [10, 11, 12],
      );
    });

    it('reaches back into rotated files', async () => {
      await writeTrail(directory, 30, { maxBytes: 4096, maxFiles: 10 });
      const records = await collect(tail(directory, { lines: 20 }));
      assert.deepEqual(
        records.map((record) => record.seq),
        Array.from({ length: 20 }, (_, index) => index + 13),
      );
    });

    it('applies the filter before counting', async () => {
      await writeTrail(directory, 10);
      const records = await collect(tail(directory, { lines: 2, filter: { kind: 'start' } }));
      assert.deepEqual(
        records.map((record) => record.seq),
        [1],
      );
    });

    it('returns nothing for zero lines', async () => {
      await writeTrail(directory, 3);
      assert.deepEqual(await collect(tail(directory, { lines: 0 })), []);
    });
  });

  describe('when following', () => {
    it('yields records appended after it started', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      const controller = new AbortController();
      const iterator = tail(directory, { lines: 1, follow: true, pollIntervalMs: 20, signal: controller.signal });

      const initial = await take(iterator, 1);
      await writer.appendDecision(fileDecision({ pid: 7 }));
      await writer.appendDecision(fileDecision({ pid: 8 }));
      const fresh = await take(iterator, 2);
      controller.abort();
      await writer.close();
      await iterator.return?.(undefined);

      assert.equal(initial[0]?.kind, 'start');
      assert.deepEqual(
        fresh.map((record) => record.seq),
        [2, 3],
      );
    });

    it('keeps every record across rotations', async () => {
      const writer = await AuditWriter.open(writerOptions(directory, { maxBytes: 2048, maxFiles: 10 }));
      const controller = new AbortController();
      const iterator = tail(directory, { lines: 1, follow: true, pollIntervalMs: 200, signal: controller.signal });
      await take(iterator, 1);

      // Written faster than the poll interval, so several rotations happen between two polls.
      for (let pid = 0; pid < 20; pid += 1) {
        await writer.appendDecision(fileDecision({ pid }));
      }
      const fresh = await take(iterator, 20);
      controller.abort();
      await writer.close();
      await iterator.return?.(undefined);

      assert.ok(writer.stats().rotations >= 3, `only ${writer.stats().rotations} rotations`);
      assert.deepEqual(
        fresh.map((record) => record.seq),
        Array.from({ length: 20 }, (_, index) => index + 2),
      );
    });

    it('ends when the signal aborts', async () => {
      await writeTrail(directory, 1);
      const controller = new AbortController();
      const iterator = tail(directory, { lines: 0, follow: true, pollIntervalMs: 20, signal: controller.signal });
      const pending = iterator.next();
      setTimeout(() => controller.abort(), 50);
      const result = await pending;
      assert.equal(result.done, true);
    });

    it('waits for the trail file to appear', async () => {
      const controller = new AbortController();
      const iterator = tail(directory, { lines: 5, follow: true, pollIntervalMs: 20, signal: controller.signal });
      const pending = take(iterator, 1);
      const writer = await AuditWriter.open(writerOptions(directory));
      const records = await pending;
      controller.abort();
      await writer.close();
      await iterator.return?.(undefined);
      assert.equal(records[0]?.kind, 'start');
    });
  });
});
