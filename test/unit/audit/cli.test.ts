import assert from 'node:assert/strict';
import { join } from 'node:path';

import { auditCommand, EXIT_OK, EXIT_TAMPERED, EXIT_USAGE } from '../../../cli/commands/audit.js';
import { AuditWriter } from '../../../enforcer/audit/writer.js';
import { CapturedOutput, fileDecision, makeTempDir, readLines, removeTempDir, writeLines, writerOptions, writeTrail } from './helpers.js';

async function run(argv: string[], signal?: AbortSignal): Promise<{ code: number; stdout: CapturedOutput; stderr: CapturedOutput }> {
  const stdout = new CapturedOutput();
  const stderr = new CapturedOutput();
  const code = await auditCommand(argv, { stdout, stderr, ...(signal === undefined ? {} : { signal }) });
  return { code, stdout, stderr };
}

describe('auditCommand', () => {
  let directory: string;

  beforeEach(async () => {
    directory = await makeTempDir();
  });

  afterEach(async () => {
    await removeTempDir(directory);
  });

  describe('when verify finds an intact trail', () => {
    it('exits 0 and prints the summary', async () => {
      await writeTrail(directory, 3);
      const { code, stdout } = await run(['verify', directory]);
      assert.equal(code, EXIT_OK);
      assert.match(stdout.text, /^intact: .*: 5 records, seq 1 to 5; checked against .*audit\.state\.json\n$/);
    });
  });

  describe('when verify finds problems', () => {
    it('exits 1 with one line per problem', async () => {
      await writeTrail(directory, 5);
      const file = join(directory, 'audit.log');
      const lines = await readLines(file);
      lines.splice(2, 1);
      lines[4] = 'not json';
      await writeLines(file, lines);

      const { code, stdout, stderr } = await run(['verify', directory]);
      assert.equal(code, EXIT_TAMPERED);
      assert.deepEqual(stdout.lines(), [
        `${file}:3: seq 4: seq-gap: seq 4 follows seq 2: record 3 is missing`,
        `${file}:5: invalid-json: line is not a JSON object`,
        // The garbage replaced record 6, so its successor shows a gap too.
        `${file}:6: seq 7: seq-gap: seq 7 follows seq 5: record 6 is missing`,
      ]);
      assert.match(stderr.text, /NOT intact \(3 problems\)/);
    });
  });

  describe('when verify gets --json', () => {
    it('prints the result as JSON', async () => {
      await writeTrail(directory, 1);
      const { stdout } = await run(['verify', '--json', directory]);
      const result = JSON.parse(stdout.text) as { ok: boolean; records: number };
      assert.equal(result.ok, true);
      assert.equal(result.records, 3);
    });
  });

  describe('when verify gets files in glob order', () => {
    it('verifies them as one trail', async () => {
      await writeTrail(directory, 20, { maxBytes: 4096 });
      const files = ['audit.log', 'audit.log.1', 'audit.log.2'].map((name) => join(directory, name));
      const { code, stdout } = await run(['verify', ...files]);
      assert.equal(code, EXIT_OK, stdout.text);
      assert.match(stdout.text, /no state file, so removal of the newest records cannot be detected/);
    });
  });

  describe('when verify gets a missing path', () => {
    it('exits 2 naming the path and the fix', async () => {
      const missing = join(directory, 'nope');
      const { code, stderr } = await run(['verify', missing]);
      assert.equal(code, EXIT_USAGE);
      assert.equal(
        stderr.text,
        `error: failed to verify ${missing}: no such file or directory; pass the enforcer's audit directory or one of its audit.log files\n`,
      );
    });
  });

  describe('when query gets filters', () => {
    it('prints matching records as JSON lines with --json', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.appendDecision(fileDecision({ pod: 'one' }));
      await writer.appendDecision(fileDecision({ pod: 'two' }));
      await writer.close();

      const { code, stdout } = await run(['query', '--pod', 'two', '--json', directory]);
      const records = stdout.lines().map((line) => JSON.parse(line) as { pod: string });
      assert.equal(code, EXIT_OK);
      assert.equal(records.length, 1);
      assert.equal(records[0]?.pod, 'two');
    });

    it('prints readable lines by default', async () => {
      await writeTrail(directory, 1);
      const { stdout } = await run(['query', '--decision', 'deny', directory]);
      assert.deepEqual(stdout.lines(), [
        '2024-05-01T12:00:01.000Z  DENY  payments/api-7d9f/app  file-open read /etc/shadow  pid=1000 uid=1000 comm=cat  policy=payments/protect-secrets rule=spec.file.rules[2] reason=rule  seq=2',
      ]);
    });

    it('escapes control characters from containers', async () => {
      const writer = await AuditWriter.open(writerOptions(directory));
      await writer.appendDecision(fileDecision({ resource: { path: '/tmp/\u001b[2Jx' } }));
      await writer.close();
      const { stdout } = await run(['query', '--kind', 'decision', directory]);
      assert.match(stdout.text, /\/tmp\/\\x1b\[2Jx/);
      assert.equal(stdout.text.includes('\u001b'), false);
    });
  });

  describe('when a filter value is invalid', () => {
    it('exits 2 naming the value and the choices', async () => {
      await writeTrail(directory, 1);
      const { code, stderr } = await run(['query', '--decision', 'maybe', directory]);
      assert.equal(code, EXIT_USAGE);
      assert.equal(stderr.text, 'error: invalid --decision "maybe": use one of allow, deny\n');
    });

    it('rejects an unreadable time', async () => {
      await writeTrail(directory, 1);
      const { code, stderr } = await run(['query', '--since', 'last week', directory]);
      assert.equal(code, EXIT_USAGE);
      assert.match(stderr.text, /^error: invalid time "last week": pass an RFC 3339 time/);
    });

    it('rejects an unknown option', async () => {
      const { code, stderr } = await run(['query', '--colour', directory]);
      assert.equal(code, EXIT_USAGE);
      assert.match(stderr.text, /--colour.*see --help for the options/);
    });
  });

  describe('when tail gets -n', () => {
    it('prints that many records', async () => {
      await writeTrail(directory, 5);
      const { code, stdout } = await run(['tail', '-n', '2', '--json', directory]);
      const seqs = stdout.lines().map((line) => (JSON.parse(line) as { seq: number }).seq);
      assert.equal(code, EXIT_OK);
      assert.deepEqual(seqs, [6, 7]);
    });

    it('rejects a count that is not a number', async () => {
      const { code, stderr } = await run(['tail', '-n', 'ten', directory]);
      assert.equal(code, EXIT_USAGE);
      assert.equal(stderr.text, 'error: invalid --lines "ten": pass a whole number of at least 0\n');
    });
  });

  describe('when tail follows', () => {
    it('stops with exit 0 when the signal aborts', async () => {
      await writeTrail(directory, 1);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const { code, stdout } = await run(['tail', '-f', '-n', '1', '--poll-interval', '20', directory], controller.signal);
      assert.equal(code, EXIT_OK);
      assert.match(stdout.text, /STOP {2}enforcer stopped/);
    });
  });

  describe('when help is requested', () => {
    it('lists the commands', async () => {
      const { code, stdout } = await run(['--help']);
      assert.equal(code, EXIT_OK);
      assert.match(stdout.text, /verify FILE\|DIR\.\.\./);
    });

    it('states the unit of the poll interval', async () => {
      const { stdout } = await run(['tail', '--help']);
      assert.match(stdout.text, /--poll-interval MS +Milliseconds between checks/);
    });
  });

  describe('when the command is unknown', () => {
    it('exits 2 with the valid commands', async () => {
      const { code, stderr } = await run(['list']);
      assert.equal(code, EXIT_USAGE);
      assert.equal(stderr.text, 'error: unknown audit command "list"; use verify, query or tail (see sabpf audit --help)\n');
    });
  });
});
