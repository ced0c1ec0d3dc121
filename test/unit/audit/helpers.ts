// Shared fixtures for the audit trail tests: temporary trail directories,
// decision events, and raw access to trail lines for tampering.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import type { DecisionEvent } from '../../../enforcer/audit/record.js';
import { AuditWriter, type AuditWriterOptions } from '../../../enforcer/audit/writer.js';

export const NODE = 'node-a';

/** Creates a temporary directory; remove it with removeTempDir. */
export async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'sabpf-audit-'));
}

export async function removeTempDir(directory: string): Promise<void> {
  await rm(directory, { recursive: true, force: true });
}

/** Returns a file-open deny in enforce mode with `overrides` applied. */
export function fileDecision(overrides: Partial<DecisionEvent> = {}): DecisionEvent {
  return {
    namespace: 'payments',
    pod: 'api-7d9f',
    container: 'app',
    cgroupId: '18446744073709551615',
    pid: 4242,
    ppid: 1,
    uid: 1000,
    comm: 'cat',
    executable: '/usr/bin/cat',
    operation: 'file-open',
    access: 'read',
    resource: { path: '/etc/shadow' },
    decision: 'deny',
    enforced: true,
    mode: 'enforce',
    policy: 'payments/protect-secrets',
    rule: 'spec.file.rules[2]',
    severity: 'high',
    message: 'reading credentials is not allowed',
    reason: 'rule',
    ...overrides,
  } as DecisionEvent;
}

/** Returns a clock that starts at `start` and advances by `stepMs` on every call. */
export function steppingClock(start = '2024-05-01T12:00:00.000Z', stepMs = 1000): () => Date {
  let next = Date.parse(start);
  return () => {
    const now = new Date(next);
    next += stepMs;
    return now;
  };
}

/** Options for a test writer: a fixed clock and no fsync timer, so runs are deterministic. */
export function writerOptions(directory: string, overrides: Partial<AuditWriterOptions> = {}): AuditWriterOptions {
  return {
    directory,
    node: NODE,
    now: steppingClock(),
    fsync: { everyRecords: 1000, intervalMs: 0 },
    ...overrides,
  };
}

/** Writes a trail of start, `count` decisions and stop; returns the writer after close. */
export async function writeTrail(directory: string, count: number, overrides: Partial<AuditWriterOptions> = {}): Promise<AuditWriter> {
  const writer = await AuditWriter.open(writerOptions(directory, overrides));
  for (let index = 0; index < count; index += 1) {
    await writer.appendDecision(fileDecision({ pid: 1000 + index }));
  }
  await writer.close();
  return writer;
}

/** Reads a trail file as lines without the trailing empty string. */
export async function readLines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') {
    lines.pop();
  }
  return lines;
}

/** Writes lines back, each terminated by a newline. */
export async function writeLines(file: string, lines: readonly string[]): Promise<void> {
  await writeFile(file, lines.map((line) => `${line}\n`).join(''));
}

export async function readRecords(file: string): Promise<Record<string, unknown>[]> {
  return (await readLines(file)).map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Stops a writer as a crash would: its file handle is closed without the stop
 * record or a final fsync and state update.
 */
export async function abandonWriter(writer: AuditWriter): Promise<void> {
  await (writer as unknown as { handle: { close(): Promise<void> } }).handle.close();
}

/** A writable stream that keeps what is written to it. */
export class CapturedOutput extends Writable {
  text = '';

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    callback();
  }

  lines(): string[] {
    return this.text.split('\n').filter((line) => line !== '');
  }
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const result: T[] = [];
  for await (const item of items) {
    result.push(item);
  }
  return result;
}
