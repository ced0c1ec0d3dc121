import assert from 'node:assert/strict';
import { readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import { Registry } from 'prom-client';

import { GENESIS_HASH, type DecisionEvent } from '../../../enforcer/audit/record.js';
import { verify } from '../../../enforcer/audit/verify.js';
import { AuditBacklogFullError, AuditWriter } from '../../../enforcer/audit/writer.js';
import { fileDecision, makeTempDir, readRecords, removeTempDir, writerOptions, writeTrail } from './helpers.js';

describe('AuditWriter', () => {
  let directory: string;

  beforeEach(async () => {
    directory = await makeTempDir();
  });

  afterEach(async () => {
    await removeTempDir(directory);
  });

  describe('when a trail is written and verified', () => {
    it('verifies intact with every record counted', async () => {
      await writeTrail(directory, 20);
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
      assert.equal(result.records, 22);
      assert.equal(result.firstSeq, 1);
      assert.equal(result.lastSeq, 22);
      assert.equal(result.anchored, false);
    });

    it('starts the chain at seq 1 with the genesis prevHash', async () => {
      await writeTrail(directory, 1);
      const [first] = await readRecords(join(directory, 'audit.log'));
      assert.equal(first?.['seq'], 1);
      assert.equal(first?.['prevHash'], GENESIS_HASH);
    });

    it('opens with a start record and ends with a stop record', async () => {
      await writeTrail(directory, 2);
      const records = await readRecords(join(directory, 'audit.log'));
      assert.equal(records[0]?.['kind'], 'start');
      assert.equal(records[0]?.['resumedFrom'], 'new');
      assert.equal(records.at(-1)?.['kind'], 'stop');
    });

    it('links each record to the hash of the one before', async () => {
      await writeTrail(directory, 5);
      const records = await readRecords(join(directory, 'audit.log'));
      for (let index = 1; index < records.length; index += 1) {
        assert.equal(records[index]?.['prevHash'], records[index - 1]?.['hash'], `record ${index}`);
      }
    });
  });

  describe('when a decision is appended', () => {
    it('writes the documented fields in order', async () => {
      await writeTrail(directory, 1);
      const lines = (await readFile(join(directory, 'audit.log'), 'utf8')).split('\n');
      const decision = JSON.parse(lines[1] ?? '') as Record<string, unknown>;
      assert.deepEqual(Object.keys(decision), [
        'seq',
        'time',
        'kind',
        'node',
        'namespace',
        'pod',
        'container',
        'cgroupId',
        'pid',
        'ppid',
        'uid',
        'comm',
        'executable',
        'operation',
        'access',
        'resource',
        'decision',
        'enforced',
        'mode',
        'policy',
        'rule',
        'severity',
        'reason',
        'message',
        'prevHash',
        'hash',
      ]);
    });

    it('writes the time as RFC 3339 UTC with milliseconds', async () => {
      await writeTrail(directory, 1);
      const [, decision] = await readRecords(join(directory, 'audit.log'));
      assert.match(String(decision?.['time']), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    });

    it('keeps a u64 cgroup id exact as a string', async () => {
      await writeTrail(directory, 1);
      const [, decision] = await readRecords(join(directory, 'audit.log'));
      assert.equal(decision?.['cgroupId'], '18446744073709551615');
    });

    it('leaves access out of exec records', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      const record = await writer.appendDecision(
        fileDecision({ operation: 'exec', resource: { path: '/bin/sh' }, access: undefined } as Partial<DecisionEvent>),
      );
      await writer.close();
      assert.equal('access' in record, false);
    });

    it('drops fields the record format does not define', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      const event = { ...fileDecision(), secret: 'token' } as unknown as DecisionEvent;
      const record = await writer.appendDecision(event);
      await writer.close();
      assert.equal('secret' in record, false);
    });
  });

  describe('when a decision is invalid', () => {
    it('rejects it with the field named', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      const invalid = fileDecision({ operation: 'mount' } as unknown as Partial<DecisionEvent>);
      await assert.rejects(writer.appendDecision(invalid), /operation "mount" is not one of/);
      await writer.close();
    });

    it('rejects an enforced allow', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      await assert.rejects(writer.appendDecision(fileDecision({ decision: 'allow', enforced: true })), /failed to append audit record/);
      await writer.close();
    });

    it('does not consume a seq', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.appendDecision(fileDecision({ pid: -1 })).catch(() => undefined);
      const record = await writer.appendDecision(fileDecision());
      await writer.close();
      assert.equal(record.seq, 2);
    });

    it('does not count as a lost record', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.appendDecision(fileDecision({ pid: -1 })).catch(() => undefined);
      await writer.close();
      assert.equal(writer.stats().unreportedLosses, 0);
    });
  });

  describe('when many appends run concurrently', () => {
    it('writes whole lines with consecutive seqs', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      const records = await Promise.all(Array.from({ length: 200 }, (_, pid) => writer.appendDecision(fileDecision({ pid }))));
      await writer.close();
      assert.deepEqual(
        records.map((record) => record.seq),
        Array.from({ length: 200 }, (_, index) => index + 2),
      );
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
    });
  });

  describe('when events are dropped', () => {
    it('records the count and source', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      const record = await writer.appendDropped(7);
      await writer.close();
      assert.equal(record.kind, 'dropped');
      assert.equal(record.count, 7);
      assert.equal(record.source, 'ring-buffer');
    });

    it('rejects a count of zero', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      await assert.rejects(writer.appendDropped(0), /count must be >= 1/);
      await writer.close();
    });
  });

  describe('when a registry is passed', () => {
    it('counts records by kind', async () => {
      const registry = new Registry();
      await writeTrail(directory, 3, { registry });
      const metric = await registry.getSingleMetric('sabpf_audit_records_total')?.get();
      const decisions = metric?.values.find((value) => value.labels['kind'] === 'decision');
      const starts = metric?.values.find((value) => value.labels['kind'] === 'start');
      assert.equal(decisions?.value, 3);
      assert.equal(starts?.value, 1);
    });

    it('counts bytes written', async () => {
      const registry = new Registry();
      await writeTrail(directory, 3, { registry });
      const size = (await readFile(join(directory, 'audit.log'))).length;
      const metric = await registry.getSingleMetric('sabpf_audit_bytes_total')?.get();
      assert.equal(metric?.values[0]?.value, size);
    });

    it('counts dropped events by source', async () => {
      const registry = new Registry();
      const writer = await AuditWriter.open(writerOptions(directory, { registry }));
      await writer.appendDropped(5);
      await writer.appendDropped(2);
      await writer.close();
      const metric = await registry.getSingleMetric('sabpf_audit_dropped_events_total')?.get();
      const ringBuffer = metric?.values.find((value) => value.labels['source'] === 'ring-buffer');
      assert.equal(ringBuffer?.value, 7);
    });

    it('shares counters between writers on one registry', async () => {
      const registry = new Registry();
      await writeTrail(directory, 1, { registry });
      await writeTrail(directory, 1, { registry });
      const metric = await registry.getSingleMetric('sabpf_audit_records_total')?.get();
      const starts = metric?.values.find((value) => value.labels['kind'] === 'start');
      assert.equal(starts?.value, 2);
    });
  });

  describe('when fsync runs every 3 records', () => {
    it('updates the state file only at each fsync', async () => {
      const writer = await AuditWriter.open(writerOptions(directory, { fsync: { everyRecords: 3, intervalMs: 0 } }));
      await writer.appendDecision(fileDecision());
      await writer.appendDecision(fileDecision());
      const before = JSON.parse(await readFile(join(directory, 'audit.state.json'), 'utf8')) as { seq: number };
      await writer.appendDecision(fileDecision());
      const after = JSON.parse(await readFile(join(directory, 'audit.state.json'), 'utf8')) as { seq: number };
      await writer.close();
      assert.equal(before.seq, 1);
      assert.equal(after.seq, 4);
    });
  });

  describe('when the fsync timer is set', () => {
    it('fsyncs an idle record after the interval', async () => {
      const writer = await AuditWriter.open(writerOptions(directory, { fsync: { everyRecords: 1000, intervalMs: 20 } }));
      await writer.appendDecision(fileDecision());
      await new Promise((resolve) => setTimeout(resolve, 150));
      const state = JSON.parse(await readFile(join(directory, 'audit.state.json'), 'utf8')) as { seq: number };
      const fsyncs = writer.stats().fsyncs;
      await writer.close();
      assert.equal(state.seq, 2);
      assert.equal(fsyncs, 2);
    });
  });

  describe('when an append fails part-way through the line', () => {
    /** Makes the next write of the writer's file handle write 10 bytes and report a short write. */
    function failNextWrite(writer: AuditWriter): void {
      const handle = (writer as unknown as { handle: FileHandle }).handle;
      const write = handle.write.bind(handle) as (buffer: Buffer, offset: number, length: number) => Promise<{ bytesWritten: number }>;
      const patched = async (buffer: Buffer): Promise<{ bytesWritten: number }> => {
        Object.assign(handle, { write });
        await write(buffer, 0, 10);
        return { bytesWritten: 10 };
      };
      Object.assign(handle, { write: patched });
    }

    it('rejects the append', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      failNextWrite(writer);
      await assert.rejects(
        writer.appendDecision(fileDecision()),
        /failed to write audit record to .*audit\.log: short write: 10 of \d+ bytes/,
      );
      await writer.close();
    });

    it('reports the lost record in a dropped record before the next one', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      failNextWrite(writer);
      await writer.appendDecision(fileDecision()).catch(() => undefined);
      await writer.appendDecision(fileDecision());
      await writer.close();
      const records = await readRecords(join(directory, 'audit.log'));
      assert.equal(records[1]?.['kind'], 'dropped');
      assert.equal(records[1]?.['count'], 1);
      assert.equal(records[1]?.['source'], 'audit-write');
      assert.equal(records[2]?.['kind'], 'decision');
    });

    it('cuts the partial line so the trail still verifies', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      failNextWrite(writer);
      await writer.appendDecision(fileDecision()).catch(() => undefined);
      await writer.appendDecision(fileDecision());
      await writer.close();
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
    });

    it('counts the failure', async () => {
      const registry = new Registry();
      const writer = await AuditWriter.open(writerOptions(directory, { registry }));
      failNextWrite(writer);
      await writer.appendDecision(fileDecision()).catch(() => undefined);
      const unreported = writer.stats().unreportedLosses;
      await writer.close();
      const metric = await registry.getSingleMetric('sabpf_audit_write_failures_total')?.get();
      assert.equal(unreported, 1);
      assert.equal(metric?.values[0]?.value, 1);
    });
  });

  describe('when more decisions wait than maxPending', () => {
    const burst = async (writer: AuditWriter, n: number): Promise<PromiseSettledResult<unknown>[]> =>
      Promise.allSettled(Array.from({ length: n }, () => writer.appendDecision(fileDecision())));

    it('rejects the excess with AuditBacklogFullError', async () => {
      const writer = await AuditWriter.open(writerOptions(directory, { maxPending: 3 }));
      const results = await burst(writer, 10);
      await writer.close();
      assert.deepEqual(
        results.map((r) => r.status),
        [...Array<string>(3).fill('fulfilled'), ...Array<string>(7).fill('rejected')],
      );
      const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      assert.ok(reasons.every((e) => e instanceof AuditBacklogFullError));
    });

    it('reports rejected decisions in one dropped record', async () => {
      const registry = new Registry();
      const writer = await AuditWriter.open(writerOptions(directory, { maxPending: 3, registry }));
      await burst(writer, 10);
      await writer.sync();
      const unreported = writer.stats().unreportedLosses;
      await writer.close();

      const records = await readRecords(join(directory, 'audit.log'));
      assert.deepEqual(
        records.map((r) => r['kind']),
        ['start', 'decision', 'decision', 'decision', 'dropped', 'stop'],
      );
      assert.equal(records[4]?.['count'], 7);
      assert.equal(records[4]?.['source'], 'audit-backlog');
      assert.equal(unreported, 0);
      const metric = await registry.getSingleMetric('sabpf_audit_dropped_events_total')?.get();
      assert.deepEqual(
        metric?.values.map((v) => [v.labels['source'], v.value]),
        [['audit-backlog', 7]],
      );
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
    });

    it('takes decisions again after the backlog drained', async () => {
      const writer = await AuditWriter.open(writerOptions(directory, { maxPending: 2 }));
      await burst(writer, 5);
      await writer.appendDecision(fileDecision());
      assert.equal(writer.stats().backlogDrops, 3);
      await writer.close();
      const records = await readRecords(join(directory, 'audit.log'));
      assert.deepEqual(
        records.map((r) => r['kind']),
        ['start', 'decision', 'decision', 'dropped', 'decision', 'stop'],
      );
    });

    it('rejects a maxPending below 1', async () => {
      await assert.rejects(AuditWriter.open(writerOptions(directory, { maxPending: 0 })), /maxPending is 0; pass an integer of at least 1/);
    });
  });

  describe('when the writer is closed', () => {
    it('rejects later appends', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.close();
      await assert.rejects(writer.appendDecision(fileDecision()), /the writer is closed/);
    });
  });

  describe('when options are invalid', () => {
    it('rejects maxFiles below 2', async () => {
      await assert.rejects(AuditWriter.open(writerOptions(directory, { maxFiles: 1 })), /maxFiles is 1; pass an integer of at least 2/);
    });

    it('rejects an empty node name', async () => {
      await assert.rejects(AuditWriter.open(writerOptions(directory, { node: '' })), /node is empty/);
    });
  });
});
