// Options of both enforce commands that size the audit trail, and its opening.
// checks the numbers again; parsing them here names the flag in the error.

import type { ParseArgsConfig } from 'node:util';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  AuditWriter,
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
    ['--audit-dir DIR', 'audit trail folder (default /var/log/sabpf)'],
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
    directory: values['audit-dir'] ?? '/var/log/sabpf',
    maxBytes: parseCount('--audit-max-bytes', values['audit-max-bytes'], DEFAULT_MAX_BYTES, 1),
    maxFiles: parseCount('--audit-max-files', values['audit-max-files'], DEFAULT_MAX_FILES, 2),
    maxPending: parseCount('--audit-max-pending', values['audit-max-pending'], DEFAULT_MAX_PENDING, 1),
  };
}

type TrailSettings = ReturnType<typeof auditTrailSettings>;

/** Fixes for the file-system errors that opening a trail can meet, by errno code. */
const TRAIL_HINTS: Partial<Record<string, string>> = {
  EACCES: 'check that the enforcer may write the folder',
  EPERM: 'check that the enforcer may write the folder',
  EROFS: 'mount a writable volume there or pass another --audit-dir',
  ENOTDIR: 'a part of the path is a file; pass a folder path',
  ENOSPC: 'free space on its file system',
};

/**
 * Opens the trail, or prints why it cannot and returns undefined. The
 * commands open it before they load any program, so a folder the enforcer
 * cannot write stops the start before the kernel changes.
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
    const reason = (err as Error).message;
    const hint = TRAIL_HINTS[(err as NodeJS.ErrnoException).code ?? ''];
    logger.error({ directory: trail.directory, err }, 'failed to open the audit trail');
    process.stderr.write(`sabpf enforce: cannot open the audit trail in ${trail.directory}: ${reason}${hint ? `; ${hint}` : ''}\n`);
    return undefined;
  }
}
