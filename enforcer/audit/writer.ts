// Append-only writer of the audit trail. All file work runs on one promise
// queue, so records take their seq in call order. Each line is written by a
// single write call, so a crash can leave a partial last line but never two
// records interleaved.

import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

import { buildDecision, buildDropped, buildStart, buildStop, chainRecord } from './build.js';
import { DEFAULT_FILE_NAME, listTrailFiles, STATE_FILE_NAME, trailFileName } from './files.js';
import { createAuditMetrics, type AuditMetrics } from './metrics.js';
import {
  GENESIS_HASH,
  type AuditRecord,
  type DecisionEvent,
  type DecisionRecord,
  type DropSource,
  type DroppedRecord,
  type UnchainedRecord,
} from './record.js';
import { findResumePoint, type ResumePoint } from './resume.js';
import { firstSeqAfterRotation, shiftTrailFiles } from './rotation.js';
import { validateRecord } from './schema.js';
import { writeState } from './state.js';

export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 5;
export const DEFAULT_MAX_PENDING = 10_000;

/**
 * Thrown by appendDecision when maxPending decisions already wait. The
 * decision is counted, and a dropped record with source `audit-backlog`
 * reports it in the trail, so callers need not log each one.
 */
export class AuditBacklogFullError extends Error {
  constructor(maxPending: number) {
    super(
      `failed to append audit record: ${maxPending} decisions already wait to be written (maxPending); the decision was enforced and is counted in a dropped record with source audit-backlog`,
    );
    this.name = 'AuditBacklogFullError';
  }
}

/**
 * Schedule of fsyncs: after `everyRecords` records, or `intervalMs`
 * milliseconds after the first unsynced record, whichever comes first.
 * Records not yet fsynced are lost on power loss (not on a process crash,
 * because they are already in the page cache). Each fsync also rewrites the
 * state file, which costs one more fsync and a rename.
 */
export interface FsyncPolicy {
  /** Records between fsyncs; 1 fsyncs every record. Positive integer. */
  everyRecords: number;
  /** Maximum milliseconds a record stays unsynced; 0 disables the timer. */
  intervalMs: number;
}

export const DEFAULT_FSYNC_POLICY: Readonly<FsyncPolicy> = { everyRecords: 100, intervalMs: 1000 };

export interface AuditWriterOptions {
  /** Directory of the trail; created when missing. */
  directory: string;
  /** Kubernetes node name written into every record. */
  node: string;
  /** Base name of the active file; rotated files add .1, .2, ... */
  fileName?: string;
  /** Rotate before a record would grow the active file past this many bytes. */
  maxBytes?: number;
  /** Files kept, the active one included; at least 2. */
  maxFiles?: number;
  /**
   * Decisions that may wait to be written. Beyond it appendDecision rejects
   * them, so that events arriving faster than the disk takes them cannot
   * grow memory without a bound. Dropped records are never rejected.
   */
  maxPending?: number;
  fsync?: Partial<FsyncPolicy>;
  /** Registry for the writer's counters; none are registered without it. */
  registry?: Registry;
  logger?: Logger;
  /** Clock for record times; tests pass a fixed one. */
  now?: () => Date;
}

export interface AuditWriterStats {
  records: number;
  bytes: number;
  rotations: number;
  /** Sum of `count` over the dropped records written. */
  droppedEvents: number;
  writeFailures: number;
  fsyncs: number;
  /** Appends that failed, and decisions rejected, not yet reported by a dropped record. */
  unreportedLosses: number;
  /** Decisions rejected because maxPending were waiting. */
  backlogDrops: number;
}

interface WriterSettings {
  directory: string;
  node: string;
  fileName: string;
  maxBytes: number;
  maxFiles: number;
  maxPending: number;
  fsync: FsyncPolicy;
  logger: Logger | undefined;
  now: () => Date;
}

export class AuditWriter {
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private closing = false;
  private unsynced = 0;
  /** Failed appends waiting to be reported in a dropped record. */
  private losses = 0;
  /** Decisions queued and not yet written (or failed). */
  private pending = 0;
  /**
   * Decisions rejected for the backlog, and how many of them dropped records
   * report. Each queued record remembers the rejections before it, so the
   * dropped record lands where they happened in call order.
   */
  private rejected = 0;
  private rejectedReported = 0;
  /** Base name of the file that contains the record `seq`, for the state file. */
  private lastRecordFile: string;
  private readonly counts: AuditWriterStats = {
    records: 0,
    bytes: 0,
    rotations: 0,
    droppedEvents: 0,
    writeFailures: 0,
    fsyncs: 0,
    unreportedLosses: 0,
    backlogDrops: 0,
  };

  private constructor(
    private readonly settings: WriterSettings,
    private readonly metrics: AuditMetrics | null,
    private handle: FileHandle,
    private size: number,
    private seq: number,
    private hash: string,
    private firstSeq: number,
    /** Resume point found when the writer opened, with the start record's message. */
    readonly resume: ResumePoint,
  ) {
    this.lastRecordFile = settings.fileName;
  }

  /**
   * Opens a trail for appending and writes its start record. An existing
   * trail is continued: see findResumePoint for where. A partial last line
   * left by a crash is terminated with a newline first, so it stays in the
   * file as evidence and the next record starts on a line of its own.
   */
  static async open(options: AuditWriterOptions): Promise<AuditWriter> {
    const settings = resolveSettings(options);
    const metrics = options.registry === undefined ? null : createAuditMetrics(options.registry);

    await mkdir(settings.directory, { recursive: true, mode: 0o750 });
    const files = await listTrailFiles(settings.directory, settings.fileName);
    const resume = await findResumePoint(files, join(settings.directory, STATE_FILE_NAME));

    const activePath = join(settings.directory, settings.fileName);
    // a+ rather than a: the last byte must be readable to find a partial line.
    const handle = await open(activePath, 'a+', 0o640);
    try {
      let size = (await handle.stat()).size;
      let message = resume.message;

      if (size > 0 && !(await endsWithNewline(handle, size))) {
        await handle.write('\n');
        size += 1;
        message += `; terminated a partial last line of ${settings.fileName} left by an interrupted write`;
      }

      const writer = new AuditWriter(settings, metrics, handle, size, resume.seq, resume.hash, resume.firstSeq, { ...resume, message });
      settings.logger?.info(
        { directory: settings.directory, seq: resume.seq, resumedFrom: resume.resumedFrom },
        `audit trail opened: ${message}`,
      );

      await writer.enqueue(async () => {
        await writer.appendInQueue(buildStart(resume.resumedFrom, message, settings.node, settings.now()), 0);
        await writer.syncInQueue();
      });
      return writer;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Appends a decision record; resolves once it is written (not necessarily fsynced). */
  appendDecision(event: DecisionEvent): Promise<DecisionRecord> {
    if (!this.closing && this.pending >= this.settings.maxPending) {
      if (this.rejected === this.rejectedReported) {
        this.settings.logger?.warn(
          { maxPending: this.settings.maxPending },
          'audit backlog is full: decisions are enforced but counted as dropped until it drains',
        );
      }
      this.rejected += 1;
      this.counts.backlogDrops += 1;
      return Promise.reject(new AuditBacklogFullError(this.settings.maxPending));
    }
    const appended = this.append(() => buildDecision(event, this.settings.node, this.settings.now())) as Promise<DecisionRecord>;
    this.pending += 1;
    const settled = (): void => {
      this.pending -= 1;
      // Report rejected decisions once the backlog has drained, so a burst
      // that ends is recorded without waiting for the next decision.
      if (this.pending === 0 && this.rejected > this.rejectedReported && !this.closing) {
        const upTo = this.rejected;
        // On failure the count stays unreported, and the next append retries it.
        this.enqueue(() => this.reportBacklogLosses(upTo)).catch((error: unknown) => {
          this.counts.writeFailures += 1;
          this.metrics?.writeFailures.inc();
          this.settings.logger?.error({ err: error }, 'failed to append the dropped record of rejected decisions');
        });
      }
    };
    appended.then(settled, settled);
    return appended;
  }

  /**
   * Appends a dropped record for `count` events lost at `source`. Pass the
   * ring buffer's lost-event count here so that no loss is silent.
   */
  appendDropped(count: number, source: DropSource = 'ring-buffer'): Promise<DroppedRecord> {
    return this.append(() => buildDropped(count, source, this.settings.node, this.settings.now())) as Promise<DroppedRecord>;
  }

  /** Fsyncs the records written so far and updates the state file. */
  sync(): Promise<void> {
    return this.enqueue(() => this.syncInQueue());
  }

  /** Writes the stop record, fsyncs, and closes the file. Later appends are rejected. */
  async close(message = 'enforcer stopped'): Promise<void> {
    if (this.closing) {
      return;
    }
    this.closing = true;
    this.clearTimer();

    await this.enqueue(async () => {
      try {
        await this.appendInQueue(buildStop(message, this.settings.node, this.settings.now()), this.rejected);
        await this.syncInQueue();
      } finally {
        await this.handle.close();
      }
    });
  }

  /** Returns a copy of the writer's counters since it opened. */
  stats(): AuditWriterStats {
    return { ...this.counts, unreportedLosses: this.losses + this.rejected - this.rejectedReported };
  }

  /** seq and hash of the last record written. */
  get head(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.hash };
  }

  private append(build: () => UnchainedRecord): Promise<AuditRecord> {
    if (this.closing) {
      return Promise.reject(new Error('failed to append audit record: the writer is closed; open a new AuditWriter'));
    }

    // Validate before queueing: an invalid record is a caller bug, not a lost
    // event, so it must neither take a seq nor count as a loss.
    let body: UnchainedRecord;
    try {
      body = build();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const placeholderChain = { seq: 1, prevHash: GENESIS_HASH, hash: GENESIS_HASH };
    const problems = validateRecord({ ...placeholderChain, ...body });
    if (problems.length > 0) {
      return Promise.reject(new Error(`failed to append audit record: ${problems.join('; ')}`));
    }

    const rejectedBefore = this.rejected;
    return this.enqueue(() => this.appendInQueue(body, rejectedBefore));
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes a record, preceded by dropped records for the decisions rejected
   * before it was queued (rejectedBefore) and for earlier appends that
   * failed. A failed append is counted as a loss, so the next successful
   * append reports it in the trail.
   */
  private async appendInQueue(body: UnchainedRecord, rejectedBefore: number): Promise<AuditRecord> {
    try {
      await this.reportBacklogLosses(rejectedBefore);
      if (this.losses > 0) {
        const lost = this.losses;
        await this.writeChained(buildDropped(lost, 'audit-write', this.settings.node, this.settings.now()));
        this.losses -= lost;
      }
      return await this.writeChained(body);
    } catch (error) {
      this.losses += 1;
      this.counts.writeFailures += 1;
      this.metrics?.writeFailures.inc();
      this.settings.logger?.error({ err: error, lostRecords: this.losses }, 'failed to append audit record');
      throw error;
    }
  }

  /** Writes a dropped record for the rejections up to upTo that none reports yet. */
  private async reportBacklogLosses(upTo: number): Promise<void> {
    if (upTo <= this.rejectedReported) return;
    await this.writeChained(buildDropped(upTo - this.rejectedReported, 'audit-backlog', this.settings.node, this.settings.now()));
    this.rejectedReported = upTo;
  }

  private async writeChained(body: UnchainedRecord): Promise<AuditRecord> {
    const record = chainRecord(body, this.seq + 1, this.hash);
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');

    if (this.size > 0 && this.size + line.length > this.settings.maxBytes) {
      await this.rotate();
    }
    await this.writeLine(line);

    this.seq = record.seq;
    this.hash = record.hash;
    this.lastRecordFile = this.settings.fileName;
    this.unsynced += 1;
    this.countWritten(record, line.length);

    await this.syncIfDue();
    return record;
  }

  /**
   * Writes one line with one write call. A short or failed write is cut back
   * to the previous size, so a later line never continues a partial one.
   */
  private async writeLine(line: Buffer): Promise<void> {
    try {
      const { bytesWritten } = await this.handle.write(line, 0, line.length);
      if (bytesWritten !== line.length) {
        throw new Error(`short write: ${bytesWritten} of ${line.length} bytes`);
      }
    } catch (error) {
      const activePath = join(this.settings.directory, this.settings.fileName);
      await this.handle.truncate(this.size).catch((truncateError: unknown) => {
        this.settings.logger?.error(
          { err: truncateError, file: activePath, size: this.size },
          'failed to truncate audit trail after a failed write',
        );
      });
      throw new Error(`failed to write audit record to ${activePath}: ${(error as Error).message}`, { cause: error });
    }
    this.size += line.length;
  }

  private countWritten(record: AuditRecord, bytes: number): void {
    this.counts.records += 1;
    this.counts.bytes += bytes;
    this.metrics?.records.inc({ kind: record.kind });
    this.metrics?.bytes.inc(bytes);

    if (record.kind === 'dropped') {
      this.counts.droppedEvents += record.count;
      this.metrics?.droppedEvents.inc({ source: record.source }, record.count);
    }
  }

  /**
   * Fsyncs when the policy requires it. A failed fsync does not fail the
   * append, because the record is already written. The next sync retries it.
   */
  private async syncIfDue(): Promise<void> {
    if (this.unsynced < this.settings.fsync.everyRecords) {
      this.armTimer();
      return;
    }
    try {
      await this.syncInQueue();
    } catch (error) {
      this.settings.logger?.error({ err: error }, 'failed to fsync audit trail; retrying at the next sync');
    }
  }

  private armTimer(): void {
    if (this.timer !== null || this.settings.fsync.intervalMs === 0 || this.closing) {
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.enqueue(() => this.syncInQueue()).catch((error: unknown) => {
        this.settings.logger?.error({ err: error }, 'failed to fsync audit trail on the timer; retrying at the next sync');
      });
    }, this.settings.fsync.intervalMs);
    // An idle timer must not keep the process alive; close() syncs anyway.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Fsyncs the active file, then records the synced head in the state file. */
  private async syncInQueue(): Promise<void> {
    if (this.unsynced === 0) {
      return;
    }
    this.clearTimer();

    try {
      await this.handle.sync();
    } catch (error) {
      this.counts.writeFailures += 1;
      this.metrics?.writeFailures.inc();
      throw new Error(`failed to fsync audit trail ${join(this.settings.directory, this.settings.fileName)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.unsynced = 0;
    this.counts.fsyncs += 1;

    await this.writeStateFile();
  }

  private async writeStateFile(): Promise<void> {
    await writeState(join(this.settings.directory, STATE_FILE_NAME), {
      seq: this.seq,
      hash: this.hash,
      file: this.lastRecordFile,
      firstSeq: this.firstSeq,
    });
  }

  /**
   * Rotates the active file. The state file takes the new firstSeq before any
   * file is deleted: a crash in between then leaves a trail with more records
   * than the state promises, which verifies, instead of fewer, which would
   * look like tampering.
   */
  private async rotate(): Promise<void> {
    const { directory, fileName, maxFiles } = this.settings;
    await this.syncInQueue();

    const nextFirstSeq = await firstSeqAfterRotation(directory, fileName, maxFiles, this.seq + 1);
    if (nextFirstSeq !== null) {
      this.firstSeq = nextFirstSeq;
      await this.writeStateFile();
    }

    await this.handle.close();
    try {
      await shiftTrailFiles(directory, fileName, maxFiles);
      this.lastRecordFile = trailFileName(fileName, 1);
    } finally {
      // Reopen even after a failed shift, so the writer keeps appending to
      // whatever audit.log is now; the chain stays intact either way.
      const activePath = join(directory, fileName);
      this.handle = await open(activePath, 'a', 0o640);
      this.size = (await stat(activePath)).size;
    }

    await this.writeStateFile();
    this.counts.rotations += 1;
    this.metrics?.rotations.inc();
    this.settings.logger?.info({ directory, seq: this.seq, firstSeq: this.firstSeq }, 'audit trail rotated');
  }
}

function resolveSettings(options: AuditWriterOptions): WriterSettings {
  const settings: WriterSettings = {
    directory: options.directory,
    node: options.node,
    fileName: options.fileName ?? DEFAULT_FILE_NAME,
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    maxFiles: options.maxFiles ?? DEFAULT_MAX_FILES,
    maxPending: options.maxPending ?? DEFAULT_MAX_PENDING,
    fsync: { ...DEFAULT_FSYNC_POLICY, ...options.fsync },
    logger: options.logger,
    now: options.now ?? (() => new Date()),
  };

  requireInteger('maxBytes', settings.maxBytes, 1, 'bytes; the default is 10485760 (10 MiB)');
  requireInteger('maxFiles', settings.maxFiles, 2, 'files including the active one, because rotation must keep the previous file');
  requireInteger('maxPending', settings.maxPending, 1, 'decisions waiting to be written; the default is 10000');
  requireInteger('fsync.everyRecords', settings.fsync.everyRecords, 1, 'records; 1 fsyncs every record');
  requireInteger('fsync.intervalMs', settings.fsync.intervalMs, 0, 'milliseconds; 0 disables the timer');
  if (settings.node === '') {
    throw new Error('failed to open audit trail: node is empty; pass the Kubernetes node name');
  }
  if (settings.fileName.includes('/') || settings.fileName === '' || settings.fileName === STATE_FILE_NAME) {
    throw new Error(
      `failed to open audit trail: fileName ${JSON.stringify(settings.fileName)} is invalid; pass a plain file name such as ${DEFAULT_FILE_NAME}`,
    );
  }
  return settings;
}

function requireInteger(name: string, value: number, minimum: number, unit: string): void {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new Error(`failed to open audit trail: ${name} is ${value}; pass an integer of at least ${minimum} (${unit})`);
  }
}

async function endsWithNewline(handle: FileHandle, size: number): Promise<boolean> {
  const lastByte = Buffer.alloc(1);
  await handle.read(lastByte, 0, 1, size - 1);
  return lastByte[0] === 0x0a;
}
