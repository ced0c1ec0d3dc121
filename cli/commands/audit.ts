// `sabpf audit verify|query|tail`: checks and reads the tamper-evident audit
// trail that the enforcer writes on each node.

import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { formatRecord } from '../../enforcer/audit/format.js';
import { parseTimeBound, type RecordFilter } from '../../enforcer/audit/filters.js';
import { query } from '../../enforcer/audit/query.js';
import { DECISIONS, OPERATIONS, RECORD_KINDS, type AuditRecord } from '../../enforcer/audit/record.js';
import type { SkippedLine } from '../../enforcer/audit/records.js';
import { DEFAULT_POLL_INTERVAL_MS, DEFAULT_TAIL_LINES, tail } from '../../enforcer/audit/tail.js';
import { verify, type VerifyResult } from '../../enforcer/audit/verify.js';
import { parseCount, UsageError } from '../usage.js';

/** Exit codes: 0 success, 1 the trail is not intact, 2 invalid usage or an unreadable trail. */
export const EXIT_OK = 0;
export const EXIT_TAMPERED = 1;
export const EXIT_USAGE = 2;

export interface CommandIO {
  stdout: Writable;
  stderr: Writable;
  /** Stops `tail --follow`; without it, SIGINT and SIGTERM stop it. */
  signal?: AbortSignal;
}

const MAIN_HELP = `Usage: sabpf audit <command> [options]

Check and read the audit trail that the sabpf enforcer writes on a node
(audit.log, its rotated files audit.log.1 ... and audit.state.json).

Commands:
  verify FILE|DIR...   Check the hash chain; exit 0 when intact, 1 with one line per problem
  query [filters] DIR  Print the records that match the filters, oldest first
  tail [options] DIR   Print the last records and, with --follow, new ones as they are written

Run "sabpf audit <command> --help" for the options of a command.
Exit codes: 0 success, 1 trail not intact (verify), 2 invalid usage or unreadable trail.
`;

const FILTER_HELP = `Filters (all optional; a record must match every one given):
  --namespace NAME     Pod namespace
  --pod NAME           Pod name
  --container NAME     Container name
  --decision VALUE     allow or deny
  --policy NS/NAME     Deciding policy, as namespace/name
  --operation VALUE    file-open, file-link, file-rename, file-create,
                       file-mkdir, file-symlink, file-unlink, file-rmdir,
                       file-truncate, file-chmod, exec, connect, bind or
                       socket-create
  --kind VALUE         decision, dropped, start or stop
  --since TIME         Records at or after TIME: RFC 3339 (2024-05-01T12:00:00Z)
                       or a duration before now (90s, 15m, 2h, 1h30m, 7d)
  --until TIME         Records at or before TIME, same forms as --since
The namespace, pod, container, decision, policy and operation filters match
decision records only, so they leave out start, stop and dropped records.`;

const VERIFY_HELP = `Usage: sabpf audit verify [--state FILE] [--json] FILE|DIR...

Recompute every record's hash and follow the seq and prevHash links across
rotated files. Reports edited, deleted, inserted and reordered records,
truncated lines, and (with a state file) removed newest or oldest records.

Each DIR is verified as one trail, with its audit.state.json when present.
All FILE arguments together form one more trail, ordered oldest first when
their names are audit.log, audit.log.1, ... of one directory.

Options:
  --state FILE   State file to check FILE arguments against (default: none,
                 because copied files may be only part of a trail)
  --json         Print each result as a JSON object instead of text
  -h, --help     Show this help

Exit status: 0 every trail is intact, 1 a problem was found (one line each),
2 invalid usage.`;

const QUERY_HELP = `Usage: sabpf audit query [filters] [--json] DIR

Print the records of the trail in DIR (or of the trail that a file such as
DIR/audit.log belongs to) that match the filters, oldest first. Records are
read as stored; run "sabpf audit verify" to check that they are intact.

${FILTER_HELP}

Options:
  --json         Print records as JSON lines instead of text
  -h, --help     Show this help`;

const TAIL_HELP = `Usage: sabpf audit tail [-f] [-n COUNT] [filters] [--json] DIR

Print the last records of the trail in DIR that match the filters and, with
--follow, keep printing new records as the enforcer writes them, across
rotations, until interrupted (Ctrl-C).

${FILTER_HELP}

Options:
  -f, --follow               Keep printing new records
  -n, --lines COUNT          Records printed before following (default ${DEFAULT_TAIL_LINES}; 0 prints none)
      --poll-interval MS     Milliseconds between checks for new records (default ${DEFAULT_POLL_INTERVAL_MS})
      --json                 Print records as JSON lines instead of text
  -h, --help                 Show this help`;

const FILTER_OPTIONS = {
  namespace: { type: 'string' },
  pod: { type: 'string' },
  container: { type: 'string' },
  decision: { type: 'string' },
  policy: { type: 'string' },
  operation: { type: 'string' },
  kind: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** Runs `sabpf audit ...` with the arguments after `audit`; resolves to the exit code. */
export async function auditCommand(argv: string[], io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;

  // Without a listener, an EPIPE on the output would crash the process;
  // writeText reports it instead through the stream's errored state.
  const ignore = (): void => undefined;
  io.stdout.on('error', ignore);
  io.stderr.on('error', ignore);
  try {
    switch (command) {
      case 'verify':
        return await runVerify(rest, io);
      case 'query':
        return await runQuery(rest, io);
      case 'tail':
        return await runTail(rest, io);
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        await writeText(io.stdout, MAIN_HELP);
        return command === undefined ? EXIT_USAGE : EXIT_OK;
      default:
        throw new UsageError(`unknown audit command ${JSON.stringify(command)}; use verify, query or tail (see sabpf audit --help)`);
    }
  } catch (error) {
    if (isBrokenPipe(error)) {
      return EXIT_OK;
    }
    // Usage errors and the library's own errors already name what failed.
    // Raw system errors (EACCES and the like) get the command as context.
    const message = (error as Error).message;
    const text =
      error instanceof UsageError || message.startsWith('failed to') ? message : `failed to run sabpf audit ${command}: ${message}`;
    await writeText(io.stderr, `error: ${text}\n`).catch(() => undefined);
    return EXIT_USAGE;
  } finally {
    io.stdout.off('error', ignore);
    io.stderr.off('error', ignore);
  }
}

async function runVerify(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parse(argv, {
    state: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    await writeText(io.stdout, `${VERIFY_HELP}\n`);
    return EXIT_OK;
  }
  if (positionals.length === 0) {
    throw new UsageError('verify needs at least one trail directory or file, such as: sabpf audit verify /var/log/sabpf');
  }

  const directories: string[] = [];
  const files: string[] = [];
  for (const path of positionals) {
    const kind = await pathKind(path, 'verify');
    (kind === 'directory' ? directories : files).push(path);
  }
  if (values.state !== undefined && files.length === 0) {
    throw new UsageError(`--state ${values.state} applies to FILE arguments only; a directory is checked against its own audit.state.json`);
  }

  let intact = true;
  for (const directory of directories) {
    intact = (await reportVerify(directory, await verify(directory), values.json === true, io)) && intact;
  }
  if (files.length > 0) {
    const result = await verify(files, { stateFile: values.state ?? null });
    intact = (await reportVerify(files.join(' '), result, values.json === true, io)) && intact;
  }
  return intact ? EXIT_OK : EXIT_TAMPERED;
}

async function reportVerify(target: string, result: VerifyResult, json: boolean, io: CommandIO): Promise<boolean> {
  if (json) {
    await writeText(io.stdout, `${JSON.stringify({ target, ...result })}\n`);
    return result.ok;
  }

  for (const problem of result.problems) {
    const line = problem.line === null ? '' : `:${problem.line}`;
    const seq = problem.seq === null ? '' : ` seq ${problem.seq}:`;
    await writeText(io.stdout, `${problem.file}${line}:${seq} ${problem.problem}: ${problem.detail}\n`);
  }

  const range = result.firstSeq === null ? '' : `, seq ${result.firstSeq} to ${result.lastSeq}`;
  const anchor =
    result.anchor === null
      ? ''
      : `; anchored at seq ${result.anchor.seq} (${result.anchor.file} line ${result.anchor.line}) because older records were rotated away`;
  const state =
    result.stateFile === null
      ? '; no state file, so removal of the newest records cannot be detected'
      : `; checked against ${result.stateFile}`;
  const summary = `${target}: ${result.records} records${range}${anchor}${state}`;

  if (result.ok) {
    await writeText(io.stdout, `intact: ${summary}\n`);
  } else {
    await writeText(io.stderr, `NOT intact (${result.problems.length} problems): ${summary}\n`);
  }
  return result.ok;
}

async function runQuery(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...FILTER_OPTIONS,
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    await writeText(io.stdout, `${QUERY_HELP}\n`);
    return EXIT_OK;
  }

  const trail = await singleTrail(positionals, 'query');
  const filter = parseFilter(values);
  const skips = new SkipReporter(io.stderr, trail);

  for await (const record of query(trail, filter, { onSkippedLine: (skipped) => skips.add(skipped) })) {
    await writeText(io.stdout, `${render(record, values.json === true)}\n`);
  }
  await skips.flush();
  return EXIT_OK;
}

async function runTail(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...FILTER_OPTIONS,
    follow: { type: 'boolean', short: 'f' },
    lines: { type: 'string', short: 'n' },
    'poll-interval': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    await writeText(io.stdout, `${TAIL_HELP}\n`);
    return EXIT_OK;
  }

  const trail = await singleTrail(positionals, 'tail');
  const filter = parseFilter(values);
  const lines = parseCount('--lines', values.lines, DEFAULT_TAIL_LINES, 0);
  const pollIntervalMs = parseCount('--poll-interval', values['poll-interval'], DEFAULT_POLL_INTERVAL_MS, 10);
  const skips = new SkipReporter(io.stderr, trail);

  const { signal, release } = stopSignal(io);
  try {
    const records = tail(trail, {
      lines,
      follow: values.follow === true,
      filter,
      pollIntervalMs,
      signal,
      onSkippedLine: (skipped) => skips.add(skipped),
    });
    for await (const record of records) {
      await writeText(io.stdout, `${render(record, values.json === true)}\n`);
    }
  } finally {
    release();
  }
  await skips.flush();
  return EXIT_OK;
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs messages name the option; add where to look for the valid ones.
    throw new UsageError(`${(error as Error).message}; see --help for the options`);
  }
}

type FilterValues = { [K in keyof typeof FILTER_OPTIONS]?: string };

function parseFilter(values: FilterValues): RecordFilter {
  const filter: RecordFilter = {};
  const now = new Date();

  if (values.namespace !== undefined) filter.namespace = values.namespace;
  if (values.pod !== undefined) filter.pod = values.pod;
  if (values.container !== undefined) filter.container = values.container;
  if (values.decision !== undefined) filter.decision = oneOf('--decision', values.decision, DECISIONS);
  if (values.operation !== undefined) filter.operation = oneOf('--operation', values.operation, OPERATIONS);
  if (values.kind !== undefined) filter.kind = oneOf('--kind', values.kind, RECORD_KINDS);

  if (values.policy !== undefined) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(values.policy)) {
      throw new UsageError(`invalid --policy ${JSON.stringify(values.policy)}: pass namespace/name, such as payments/deny-shadow`);
    }
    filter.policy = values.policy;
  }

  try {
    if (values.since !== undefined) filter.since = parseTimeBound(values.since, now);
    if (values.until !== undefined) filter.until = parseTimeBound(values.until, now);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) {
    throw new UsageError(`--since ${values.since} is after --until ${values.until}; swap them or widen the range`);
  }
  return filter;
}

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`invalid ${option} ${JSON.stringify(value)}: use one of ${allowed.join(', ')}`);
  }
  return value as T;
}

async function singleTrail(positionals: string[], command: string): Promise<string> {
  const [trail, ...extra] = positionals;
  if (trail === undefined) {
    throw new UsageError(`${command} needs the trail directory, such as: sabpf audit ${command} /var/log/sabpf`);
  }
  if (extra.length > 0) {
    throw new UsageError(
      `${command} reads one trail, got ${positionals.length} paths (${positionals.join(', ')}); pass only its directory`,
    );
  }
  await pathKind(trail, command);
  return trail;
}

async function pathKind(path: string, command: string): Promise<'directory' | 'file'> {
  try {
    return (await stat(path)).isDirectory() ? 'directory' : 'file';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file or directory' : (error as Error).message;
    throw new UsageError(`failed to ${command} ${path}: ${reason}; pass the enforcer's audit directory or one of its audit.log files`);
  }
}

function render(record: AuditRecord, json: boolean): string {
  return json ? JSON.stringify(record) : formatRecord(record);
}

/** Reports skipped lines on stderr: the first few in full, then only a count. */
class SkipReporter {
  private static readonly SHOWN = 5;
  private count = 0;

  constructor(
    private readonly stderr: Writable,
    private readonly trail: string,
  ) {}

  add(skipped: SkippedLine): void {
    this.count += 1;
    if (this.count <= SkipReporter.SHOWN) {
      this.stderr.write(`warning: skipped ${skipped.file}:${skipped.line}: ${skipped.reason}\n`);
    }
  }

  async flush(): Promise<void> {
    if (this.count > 0) {
      await writeText(
        this.stderr,
        `warning: skipped ${this.count} lines that are not audit records; run: sabpf audit verify ${this.trail}\n`,
      );
    }
  }
}

/** Returns the AbortSignal that stops tail --follow: the caller's, or one fired by SIGINT or SIGTERM. */
function stopSignal(io: CommandIO): { signal: AbortSignal; release: () => void } {
  if (io.signal !== undefined) {
    return { signal: io.signal, release: () => undefined };
  }
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    release: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** Writes text and waits for the stream to drain when its buffer is full, so large outputs respect backpressure. */
async function writeText(stream: Writable, text: string): Promise<void> {
  if (stream.errored !== null || stream.destroyed) {
    throw stream.errored ?? Object.assign(new Error('output stream is closed'), { code: 'ERR_STREAM_DESTROYED' });
  }
  if (!stream.write(text)) {
    await once(stream, 'drain');
  }
}

/** Reports whether an error means the reader of the output went away, as `| head` does. */
function isBrokenPipe(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}
