import assert from 'node:assert/strict';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { verify } from '../../../enforcer/audit/verify.js';
import { AuditWriter } from '../../../enforcer/audit/writer.js';
import {
  abandonWriter,
  fileDecision,
  makeTempDir,
  readLines,
  readRecords,
  removeTempDir,
  writeLines,
  writerOptions,
  writeTrail,
} from './helpers.js';

describe('AuditWriter.open', () => {
  let directory: string;
  let file: string;

  beforeEach(async () => {
    directory = await makeTempDir();
    file = join(directory, 'audit.log');
  });

  afterEach(async () => {
    await removeTempDir(directory);
  });

  describe('when the trail was closed cleanly', () => {
    it('continues seq and prevHash from the state file', async () => {
      await writeTrail(directory, 3);
      const before = await readRecords(file);
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.close();
      const after = await readRecords(file);
      const start = after[before.length];
      assert.equal(start?.['kind'], 'start');
      assert.equal(start?.['seq'], 6);
      assert.equal(start?.['prevHash'], before.at(-1)?.['hash']);
      assert.equal(start?.['resumedFrom'], 'state-file');
    });

    it('leaves a trail that verifies', async () => {
      await writeTrail(directory, 3);
      await writeTrail(directory, 3);
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
      assert.equal(result.lastSeq, 10);
    });
  });

  describe('when the state file is missing', () => {
    it('continues from the last record and says so in the start record', async () => {
      await writeTrail(directory, 3);
      await rm(join(directory, 'audit.state.json'));
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.close();
      const records = await readRecords(file);
      const start = records[5];
      assert.equal(start?.['seq'], 6);
      assert.equal(start?.['resumedFrom'], 'last-record');
      assert.match(
        String(start?.['message']),
        /state file .*audit\.state\.json is missing; continued from the last complete record, seq 5/,
      );
    });

    it('leaves a trail that verifies', async () => {
      await writeTrail(directory, 3);
      await rm(join(directory, 'audit.state.json'));
      await writeTrail(directory, 1);
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
    });
  });

  describe('when the state file is corrupt', () => {
    it('continues from the last record and names the problem', async () => {
      await writeTrail(directory, 1);
      await writeFile(join(directory, 'audit.state.json'), 'not json');
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.close();
      assert.equal(writer.resume.resumedFrom, 'last-record');
      assert.match(writer.resume.message, /failed to read audit state file .*invalid JSON/);
    });
  });

  describe('when the previous writer crashed before an fsync', () => {
    it('continues after the records past the state file', async () => {
      const crashed = await AuditWriter.open(writerOptions(directory));
      for (let pid = 0; pid < 4; pid += 1) {
        await crashed.appendDecision(fileDecision({ pid }));
      }
      await abandonWriter(crashed);

      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.close();
      assert.equal(writer.resume.seq, 5);
      assert.match(writer.resume.message, /4 records past the state file's seq 1/);
      const result = await verify(directory);
      assert.equal(result.ok, true, JSON.stringify(result.problems));
    });
  });

  describe('when the previous writer left a partial line', () => {
    it('terminates it and continues from the last complete record', async () => {
      await writeTrail(directory, 2);
      await appendFile(file, '{"seq":5,"time":"2024-05');
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.close();
      assert.equal(writer.resume.seq, 4);
      assert.match(writer.resume.message, /terminated a partial last line/);
    });

    it('leaves the fragment for verify to report', async () => {
      await writeTrail(directory, 2);
      await appendFile(file, '{"seq":5,"time":"2024-05');
      await writeTrail(directory, 1);
      const result = await verify(directory);
      assert.equal(result.problems.length, 1);
      assert.equal(result.problems[0]?.problem, 'invalid-json');
      assert.equal(result.problems[0]?.line, 5);
    });
  });

  describe('when the newest records were deleted while stopped', () => {
    it('continues from the state file so the gap stays visible', async () => {
      await writeTrail(directory, 3);
      const lines = await readLines(file);
      await writeLines(file, lines.slice(0, -2));
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.close();
      assert.equal(writer.resume.seq, 5);
      assert.match(writer.resume.message, /records 4 to 5 are missing/);
      const result = await verify(directory);
      assert.equal(result.problems[0]?.problem, 'seq-gap');
      assert.equal(result.problems[0]?.seq, 6);
    });
  });

  describe('when every trail file was deleted while stopped', () => {
    it('keeps the state firstSeq so verify reports the loss', async () => {
      await writeTrail(directory, 3);
      await rm(file);
      await writeTrail(directory, 1);
      const result = await verify(directory);
      assert.equal(result.problems[0]?.problem, 'head-truncated');
    });
  });
});
