import assert from 'node:assert/strict';
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { computeRecordHash } from '../../../enforcer/audit/canonical.js';
import { verify, type VerifyProblem } from '../../../enforcer/audit/verify.js';
import { makeTempDir, readLines, removeTempDir, writeLines, writeTrail } from './helpers.js';

/** Finds the problem of one code, or undefined. */
function problemOf(problems: readonly VerifyProblem[], code: string): VerifyProblem | undefined {
  return problems.find((problem) => problem.problem === code);
}

describe('verify', () => {
  let directory: string;
  let file: string;

  beforeEach(async () => {
    directory = await makeTempDir();
    file = join(directory, 'audit.log');
    // start (line 1), decisions (lines 2-11), stop (line 12)
    await writeTrail(directory, 10);
  });

  afterEach(async () => {
    await removeTempDir(directory);
  });

  describe('when a field of a record is edited', () => {
    it('reports hash-mismatch at that line and nothing else', async () => {
      const lines = await readLines(file);
      const record = JSON.parse(lines[4] ?? '') as { resource: { path: string } };
      record.resource.path = '/etc/hostname';
      lines[4] = JSON.stringify(record);
      await writeLines(file, lines);

      const result = await verify(directory);
      assert.equal(result.ok, false);
      assert.equal(result.problems.length, 1);
      assert.equal(result.problems[0]?.problem, 'hash-mismatch');
      assert.equal(result.problems[0]?.line, 5);
      assert.equal(result.problems[0]?.seq, 5);
      assert.equal(result.problems[0]?.file, file);
    });
  });

  describe('when an edited record is rehashed', () => {
    it('reports prev-hash-mismatch at the next line', async () => {
      const lines = await readLines(file);
      const record = JSON.parse(lines[4] ?? '') as Record<string, unknown> & { prevHash: string };
      record['decision'] = 'allow';
      record['enforced'] = false;
      record['hash'] = computeRecordHash(record);
      lines[4] = JSON.stringify(record);
      await writeLines(file, lines);

      const result = await verify(directory);
      assert.equal(result.problems.length, 1);
      assert.equal(result.problems[0]?.problem, 'prev-hash-mismatch');
      assert.equal(result.problems[0]?.line, 6);
    });
  });

  describe('when a record is deleted from the middle', () => {
    it('reports seq-gap at the record after it', async () => {
      const lines = await readLines(file);
      lines.splice(5, 1);
      await writeLines(file, lines);

      const result = await verify(directory);
      const gap = problemOf(result.problems, 'seq-gap');
      assert.equal(result.ok, false);
      assert.equal(gap?.line, 6);
      assert.equal(gap?.seq, 7);
      assert.match(gap?.detail ?? '', /record 6 is missing/);
    });
  });

  describe('when two records are swapped', () => {
    it('reports seq-reorder', async () => {
      const lines = await readLines(file);
      const [fourth, fifth] = [lines[3] ?? '', lines[4] ?? ''];
      lines[3] = fifth;
      lines[4] = fourth;
      await writeLines(file, lines);

      const result = await verify(directory);
      const reorder = problemOf(result.problems, 'seq-reorder');
      assert.equal(reorder?.line, 5);
      assert.equal(reorder?.seq, 4);
    });
  });

  describe('when a correctly hashed record is inserted', () => {
    it('reports seq-repeat at the record it displaced', async () => {
      const lines = await readLines(file);
      const previous = JSON.parse(lines[3] ?? '') as { seq: number; hash: string };
      const forged: Record<string, unknown> & { prevHash: string } = {
        ...(JSON.parse(lines[4] ?? '') as Record<string, unknown>),
        seq: previous.seq + 1,
        prevHash: previous.hash,
        pod: 'forged',
      };
      forged['hash'] = computeRecordHash(forged);
      lines.splice(4, 0, JSON.stringify(forged));
      await writeLines(file, lines);

      const result = await verify(directory);
      assert.equal(result.problems.length, 1);
      assert.equal(result.problems[0]?.problem, 'seq-repeat');
      assert.equal(result.problems[0]?.line, 6);
    });
  });

  describe('when a record is duplicated', () => {
    it('reports seq-repeat', async () => {
      const lines = await readLines(file);
      lines.splice(4, 0, lines[4] ?? '');
      await writeLines(file, lines);

      const result = await verify(directory);
      assert.equal(problemOf(result.problems, 'seq-repeat')?.line, 6);
    });
  });

  describe('when the last line is cut short', () => {
    it('reports truncated-line at that line', async () => {
      const size = (await readFile(file)).length;
      await truncate(file, size - 40);

      const result = await verify(directory, { stateFile: null });
      assert.equal(result.problems.length, 1);
      assert.equal(result.problems[0]?.problem, 'truncated-line');
      assert.equal(result.problems[0]?.line, 12);
    });

    it('also reports the lost record against the state file', async () => {
      const size = (await readFile(file)).length;
      await truncate(file, size - 40);

      const result = await verify(directory);
      assert.equal(problemOf(result.problems, 'tail-truncated')?.seq, 12);
    });
  });

  describe('when a line is not JSON', () => {
    it('reports invalid-json with file and line', async () => {
      const lines = await readLines(file);
      lines[6] = '{"seq": 7, "kind": "decision"';
      await writeLines(file, lines);

      const result = await verify(directory);
      const invalid = problemOf(result.problems, 'invalid-json');
      assert.equal(invalid?.file, file);
      assert.equal(invalid?.line, 7);
    });

    it('reports a JSON value that is not an object', async () => {
      const lines = await readLines(file);
      lines[6] = '[1, 2]';
      await writeLines(file, lines);

      const result = await verify(directory);
      assert.equal(problemOf(result.problems, 'invalid-json')?.line, 7);
    });

    it('reports an empty line', async () => {
      const lines = await readLines(file);
      lines.splice(3, 0, '');
      await writeLines(file, lines);

      const result = await verify(directory);
      assert.equal(problemOf(result.problems, 'invalid-json')?.line, 4);
    });
  });

  describe('when a record lacks chain fields', () => {
    it('reports invalid-record', async () => {
      const lines = await readLines(file);
      const record = JSON.parse(lines[6] ?? '') as Record<string, unknown>;
      delete record['seq'];
      lines[6] = JSON.stringify(record);
      await writeLines(file, lines);

      const result = await verify(directory);
      assert.equal(problemOf(result.problems, 'invalid-record')?.line, 7);
    });
  });

  describe('when the newest records are deleted', () => {
    it('reports tail-truncated against the state file', async () => {
      const lines = await readLines(file);
      await writeLines(file, lines.slice(0, -2));

      const result = await verify(directory);
      const truncated = problemOf(result.problems, 'tail-truncated');
      assert.equal(truncated?.seq, 12);
      assert.match(truncated?.detail ?? '', /ends at seq 10/);
    });

    it('cannot tell without a state file', async () => {
      const lines = await readLines(file);
      await writeLines(file, lines.slice(0, -2));

      const result = await verify(directory, { stateFile: null });
      assert.equal(result.ok, true);
    });
  });

  describe('when the oldest record is deleted', () => {
    it('reports head-truncated against the state file', async () => {
      const lines = await readLines(file);
      await writeLines(file, lines.slice(1));

      const result = await verify(directory);
      const truncated = problemOf(result.problems, 'head-truncated');
      assert.equal(truncated?.seq, 2);
      assert.equal(truncated?.line, 1);
    });
  });

  describe('when the first record does not start from genesis', () => {
    it('reports genesis-mismatch', async () => {
      const lines = await readLines(file);
      const record = JSON.parse(lines[0] ?? '') as Record<string, unknown> & { prevHash: string };
      record.prevHash = 'f'.repeat(64);
      record['hash'] = computeRecordHash(record);
      lines[0] = JSON.stringify(record);
      await writeLines(file, lines);

      const result = await verify(directory, { stateFile: null });
      assert.equal(problemOf(result.problems, 'genesis-mismatch')?.line, 1);
    });
  });

  describe('when the state file hash differs', () => {
    it('reports state-mismatch', async () => {
      const statePath = join(directory, 'audit.state.json');
      const state = JSON.parse(await readFile(statePath, 'utf8')) as Record<string, unknown>;
      state['hash'] = 'a'.repeat(64);
      await writeFile(statePath, JSON.stringify(state));

      const result = await verify(directory);
      assert.equal(problemOf(result.problems, 'state-mismatch')?.file, statePath);
    });
  });

  describe('when the state file is not JSON', () => {
    it('reports state-invalid', async () => {
      const statePath = join(directory, 'audit.state.json');
      await writeFile(statePath, '{');

      const result = await verify(directory);
      assert.equal(problemOf(result.problems, 'state-invalid')?.file, statePath);
    });
  });

  describe('when the directory has no trail', () => {
    it('reports no-records', async () => {
      await rm(file);
      await rm(join(directory, 'audit.state.json'));

      const result = await verify(directory);
      assert.equal(result.ok, false);
      assert.equal(problemOf(result.problems, 'no-records')?.file, directory);
    });
  });

  describe('when a file is missing', () => {
    it('reports unreadable-file', async () => {
      const missing = join(directory, 'nope.log');
      const result = await verify([missing]);
      assert.equal(problemOf(result.problems, 'unreadable-file')?.file, missing);
    });
  });

  describe('when files are given with a state file', () => {
    it('checks them against it', async () => {
      const result = await verify([file], { stateFile: join(directory, 'audit.state.json') });
      assert.equal(result.ok, true, JSON.stringify(result.problems));
      assert.equal(result.stateFile, join(directory, 'audit.state.json'));
    });
  });
});
