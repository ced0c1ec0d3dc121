import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { Registry } from 'prom-client';

import { listTrailFiles } from '../../../enforcer/audit/files.js';
import { verify } from '../../../enforcer/audit/verify.js';
import { makeTempDir, readRecords, removeTempDir, writeTrail } from './helpers.js';

// About six records fit in one file at this size.
const MAX_BYTES = 4096;

describe('rotation', () => {
  let directory: string;

  beforeEach(async () => {
    directory = await makeTempDir();
  });

  afterEach(async () => {
    await removeTempDir(directory);
  });

  describe('when the trail outgrows one file', () => {
    it('rotates into numbered files within maxBytes', async () => {
      await writeTrail(directory, 20, { maxBytes: MAX_BYTES, maxFiles: 10 });
      const files = await listTrailFiles(directory);
      assert.ok(files.length >= 3, `expected at least 3 files, got ${files.length}`);
      for (const file of files) {
        const size = (await readFile(file)).length;
        assert.ok(size <= MAX_BYTES, `${file} has ${size} bytes`);
      }
    });

    it('links files through prevHash', async () => {
      await writeTrail(directory, 20, { maxBytes: MAX_BYTES, maxFiles: 10 });
      const files = await listTrailFiles(directory);
      for (let index = 1; index < files.length; index += 1) {
        const older = await readRecords(files[index - 1] ?? '');
        const newer = await readRecords(files[index] ?? '');
        assert.equal(newer[0]?.['prevHash'], older.at(-1)?.['hash'], files[index]);
        assert.equal(newer[0]?.['seq'], Number(older.at(-1)?.['seq']) + 1, files[index]);
      }
    });

    it('verifies across files from seq 1', async () => {
      await writeTrail(directory, 20, { maxBytes: MAX_BYTES, maxFiles: 10 });
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
      assert.equal(result.records, 22);
      assert.equal(result.firstSeq, 1);
      assert.equal(result.anchored, false);
    });

    it('counts rotations in stats and metrics', async () => {
      const registry = new Registry();
      const writer = await writeTrail(directory, 20, { maxBytes: MAX_BYTES, maxFiles: 10, registry });
      const files = await listTrailFiles(directory);
      const metric = await registry.getSingleMetric('sabpf_audit_rotations_total')?.get();
      assert.equal(writer.stats().rotations, files.length - 1);
      assert.equal(metric?.values[0]?.value, files.length - 1);
    });
  });

  describe('when rotation deletes the oldest files', () => {
    it('keeps maxFiles files', async () => {
      await writeTrail(directory, 60, { maxBytes: MAX_BYTES, maxFiles: 3 });
      const files = await listTrailFiles(directory);
      assert.deepEqual(
        files.map((file) => file.slice(directory.length + 1)),
        ['audit.log.2', 'audit.log.1', 'audit.log'],
      );
    });

    it('verifies from the oldest remaining file as an anchor', async () => {
      await writeTrail(directory, 60, { maxBytes: MAX_BYTES, maxFiles: 3 });
      const oldest = await readRecords(join(directory, 'audit.log.2'));
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
      assert.equal(result.anchored, true);
      assert.equal(result.anchor?.seq, oldest[0]?.['seq']);
      assert.equal(result.anchor?.file, join(directory, 'audit.log.2'));
      assert.equal(result.lastSeq, 62);
    });

    it('records the oldest kept seq in the state file', async () => {
      await writeTrail(directory, 60, { maxBytes: MAX_BYTES, maxFiles: 3 });
      const oldest = await readRecords(join(directory, 'audit.log.2'));
      const state = JSON.parse(await readFile(join(directory, 'audit.state.json'), 'utf8')) as { firstSeq: number };
      assert.equal(state.firstSeq, oldest[0]?.['seq']);
    });
  });

  describe('when the oldest kept file is deleted by hand', () => {
    it('reports head-truncated', async () => {
      await writeTrail(directory, 60, { maxBytes: MAX_BYTES, maxFiles: 3 });
      await rm(join(directory, 'audit.log.2'));
      const result = await verify(directory);
      assert.equal(result.problems[0]?.problem, 'head-truncated');
    });
  });

  describe('when a middle file is deleted', () => {
    it('reports seq-gap at the first record of the next file', async () => {
      await writeTrail(directory, 20, { maxBytes: MAX_BYTES, maxFiles: 10 });
      await rm(join(directory, 'audit.log.2'));
      const result = await verify(directory);
      assert.equal(result.problems.length, 1);
      assert.equal(result.problems[0]?.problem, 'seq-gap');
      assert.equal(result.problems[0]?.file, join(directory, 'audit.log.1'));
      assert.equal(result.problems[0]?.line, 1);
    });
  });

  describe('when files are given in shell glob order', () => {
    it('orders them oldest first', async () => {
      await writeTrail(directory, 20, { maxBytes: MAX_BYTES, maxFiles: 10 });
      const globOrder = (await listTrailFiles(directory)).sort();
      const result = await verify(globOrder, { stateFile: join(directory, 'audit.state.json') });
      assert.equal(result.ok, true, JSON.stringify(result.problems));
      assert.equal(result.files.at(-1), join(directory, 'audit.log'));
    });
  });
});
