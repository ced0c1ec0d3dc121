// Options of both enforce commands that size the audit trail, and the
// opening of the trail. The writer checks the numbers again; parsing them
// here names the flag in the error.

import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  AuditWriter,
  DEFAULT_FILE_NAME,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_FILES,
  DEFAULT_MAX_PENDING,
  type AuditWriterOptions,
} from '../enforcer/audit/index.js';
import { parseCount } from './usage.js';

export const auditTrailOptions = {
  'audit-dir': { type: 'string', default: '/var/log/sabpf' },
  'audit-max-bytes': { type: 'string' },
  'audit-max-files': { type: 'string' },
  'audit-max-pending': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** Help lines for the options above, indented to a help text's option column. */
export function auditTrailHelp(column: number): string {
  const rows: [string, string][] = [
    ['--audit-dir DIR', `audit trail folder (default ${auditTrailOptions['audit-dir'].default})`],
    ['--audit-max-bytes N', `rotate before the active file passes N bytes; a larger record gets its own (default ${DEFAULT_MAX_BYTES})`],
    ['--audit-max-files N', `files kept, the active one included, at least 2 (default ${DEFAULT_MAX_FILES})`],
    ['--audit-max-pending N', `decisions waiting for the disk; beyond N they are counted as dropped (default ${DEFAULT_MAX_PENDING})`],
  ];
  return rows.map(([flag, text]) => `      ${flag.padEnd(column)}${text}`).join('\n');
}

type AuditTrailValues = { [K in keyof typeof auditTrailOptions]?: string };

/** Converts the flags to writer options, and throws a UsageError that names a bad flag. */
export function auditTrailSettings(
  values: AuditTrailValues,
): Pick<AuditWriterOptions, 'directory' | 'maxBytes' | 'maxFiles' | 'maxPending'> {
  return {
    directory: values['audit-dir'] ?? auditTrailOptions['audit-dir'].default,
    maxBytes: parseCount('--audit-max-bytes', values['audit-max-bytes'], DEFAULT_MAX_BYTES, 1),
    maxFiles: parseCount('--audit-max-files', values['audit-max-files'], DEFAULT_MAX_FILES, 2),
    maxPending: parseCount('--audit-max-pending', values['audit-max-pending'], DEFAULT_MAX_PENDING, 1),
  };
}

export type TrailSettings = ReturnType<typeof auditTrailSettings>;

/** Fixes for the file-system errors that opening a trail can meet, by errno code. */
export const TRAIL_HINTS: Partial<Record<string, string>> = {
  EACCES: 'check that the enforcer may write the folder',
  EPERM: 'check that the enforcer may write the folder',
  EROFS: 'mount a writable volume there or pass another --audit-dir',
  ENOTDIR: 'a part of the path is a file; pass a folder path',
  EEXIST: 'the path is a file; pass a folder path',
  ENOSPC: 'free space on its file system',
};

/**
 * Checks, without writing a record, that the trail's folder exists or can be
 * created, and that it and the active file can be written. The commands run
 * it before they load programs: a start that fails then leaves both the
 * kernel and a trail that another enforcer may be writing as they were.
 * Prints the problem and returns false when there is one.
 */
export async function checkTrailFolder(trail: TrailSettings, logger: Logger): Promise<boolean> {
  const active = join(trail.directory, DEFAULT_FILE_NAME);
  try {
    await mkdir(trail.directory, { recursive: true, mode: 0o750 });
    await access(trail.directory, constants.W_OK | constants.X_OK);
    const info = await stat(active).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (info !== undefined && !info.isFile()) {
      reportTrailProblem(trail, `${active} is not a regular file; move it away`, undefined, logger);
      return false;
    }
    if (info !== undefined) await access(active, constants.W_OK);
    return true;
  } catch (err) {
    reportTrailProblem(trail, (err as Error).message, err, logger);
    return false;
  }
}

/**
 * Opens the trail, or prints why it cannot and returns undefined. It runs
 * after checkTrailFolder and the load, so what the check cannot see, such
 * as a full disk, fails here.
 */
export async function openAuditTrail(
  trail: TrailSettings,
  node: string,
  registry: Registry,
  logger: Logger,
): Promise<AuditWriter | undefined> {
  try {
    return await AuditWriter.open({ ...trail, node, registry, logger });
  } catch (err) {
    reportTrailProblem(trail, (err as Error).message, err, logger);
    return undefined;
  }
}

function reportTrailProblem(trail: TrailSettings, reason: string, err: unknown, logger: Logger): void {
  const hint = TRAIL_HINTS[(err as NodeJS.ErrnoException | undefined)?.code ?? ''];
  logger.error({ directory: trail.directory, err: err ?? reason }, 'failed to open the audit trail');
  process.stderr.write(`sabpf enforce: cannot open the audit trail in ${trail.directory}: ${reason}${hint ? `; ${hint}` : ''}\n`);
}
