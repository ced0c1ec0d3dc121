// The start that both enforce commands share. Its order keeps a failed start
// harmless. The checks for an operator's mistake (a second enforcer, an
// audit folder it cannot write) run before any program loads. The trail
// opens only after the load, so a rejected load writes nothing to a trail
// that another enforcer may own.

import { mkdirSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditWriter } from '../enforcer/audit/index.js';
import { lockFolder, loadPrograms, type FolderLock, type KernelPrograms, type LoadOptions } from '../enforcer/kernel/index.js';
import { checkTrailFolder, openAuditTrail, TRAIL_HINTS, type TrailSettings } from './audit-options.js';

export interface StartOptions {
  trail: TrailSettings;
  load: LoadOptions & { pinRoot: string };
  /** Node name for the trail's records. */
  node: string;
  registry: Registry;
  logger: Logger;
  /** Milliseconds to wait for another enforcer to let go of a folder; default 0. */
  lockWaitMs?: number;
}

export interface Started {
  kernel: KernelPrograms;
  audit: AuditWriter;
  /** Held until the process exits; tests release them. */
  locks: FolderLock[];
}

/** Exit statuses of a failed start, as both help texts list them. */
export const START_FAILED = 1;
export const USAGE = 2;
export const LOAD_FAILED = 3;

/** Fixes for the errors that creating or opening the pin root can meet, by errno code. */
export const PIN_ROOT_HINTS: Partial<Record<string, string>> = {
  EACCES: 'run the enforcer as root',
  EPERM: 'run the enforcer as root',
  EEXIST: 'the path is a file; pass a folder on bpffs as --pin-root',
  ENOTDIR: 'the path or a part of it is a file; pass a folder on bpffs as --pin-root',
  EROFS: 'mount bpffs read-write at /sys/fs/bpf',
};

/** Runs the start, or prints why it failed and returns the exit status. */
export async function startEnforcement(options: StartOptions): Promise<Started | number> {
  const { trail, load, logger } = options;
  const waitMs = options.lockWaitMs ?? 0;
  const locks: FolderLock[] = [];
  const fail = (status: number): number => {
    for (const lock of locks) lock.release();
    return status;
  };

  // Two enforcers on one pin root would adopt the same links and split the
  // ring buffer's events between them.
  try {
    mkdirSync(load.pinRoot, { recursive: true });
  } catch (err) {
    logger.error({ pinRoot: load.pinRoot, err }, 'failed to create the pin root');
    const hint = PIN_ROOT_HINTS[errnoCode(err)];
    process.stderr.write(
      `sabpf enforce: cannot create the pin root ${load.pinRoot}: ${(err as Error).message}${hint ? `; ${hint}` : ''}\n`,
    );
    return fail(LOAD_FAILED);
  }
  const pinLock = await takeLock(
    load.pinRoot,
    (holder) =>
      `another sabpf enforcer (${holder}) runs with the pin root ${load.pinRoot}, and two would fight over its links; stop it first`,
    { logger, waitMs, errorStatus: LOAD_FAILED, hints: PIN_ROOT_HINTS },
  );
  if (typeof pinLock === 'number') return fail(pinLock);
  locks.push(pinLock);

  // Two writers of one folder would interleave their hash chains, and verify
  // would report the trail as broken.
  if (!(await checkTrailFolder(trail, logger))) return fail(START_FAILED);
  if (sameFolder(load.pinRoot, trail.directory)) {
    // Else the second lock would fail on the first and blame another enforcer.
    logger.error({ pinRoot: load.pinRoot, directory: trail.directory }, 'the pin root and the audit folder are one folder');
    process.stderr.write(
      `sabpf enforce: --audit-dir ${trail.directory} is the pin root ${load.pinRoot}; give the audit trail a folder of its own\n`,
    );
    return fail(USAGE);
  }
  const trailLock = await takeLock(
    trail.directory,
    (holder) =>
      `another sabpf enforcer (${holder}) writes the audit trail in ${trail.directory}, and two chains would interleave; stop it first, or pass another --audit-dir`,
    { logger, waitMs, errorStatus: START_FAILED, hints: TRAIL_HINTS },
  );
  if (typeof trailLock === 'number') return fail(trailLock);
  locks.push(trailLock);

  let kernel;
  try {
    kernel = loadPrograms(load);
  } catch (err) {
    // Loading is where the kernel's own policy (lockdown, a hardened sysctl, a seccomp filter) rejects sabpf.
    logger.error({ err }, 'failed to load the programs');
    process.stderr.write(`sabpf enforce: cannot enforce: ${(err as Error).message}\n`);
    return fail(LOAD_FAILED);
  }
  const audit = await openAuditTrail(trail, options.node, options.registry, logger);
  if (!audit) {
    // As after a crash: what is pinned keeps enforcing, and the next start adopts it.
    kernel.close();
    return fail(START_FAILED);
  }
  return { kernel, audit, locks };
}

export interface LockSettings {
  logger: Logger;
  /** Milliseconds to retry while another process holds the lock. */
  waitMs?: number;
  /** Exit status when the folder cannot be opened or locked at all. */
  errorStatus: number;
  /** Fixes for such failures, by errno code. */
  hints: Partial<Record<string, string>>;
}

/**
 * Takes the lock on folder for this process. When the lock is still taken
 * after the wait, prints the message for its holder and returns
 * START_FAILED. On any other failure, prints it and returns errorStatus.
 * The folder exists: the caller created it.
 */
export async function takeLock(folder: string, message: (holder: string) => string, settings: LockSettings): Promise<FolderLock | number> {
  const { logger } = settings;
  const deadline = Date.now() + (settings.waitMs ?? 0);
  let logged = false;
  for (;;) {
    let result;
    try {
      result = lockFolder(folder);
    } catch (err) {
      logger.error({ folder, err }, 'failed to lock the folder');
      const hint = settings.hints[errnoCode(err)];
      process.stderr.write(`sabpf enforce: ${(err as Error).message}${hint ? `; ${hint}` : ''}\n`);
      return settings.errorStatus;
    }
    if (result.locked) return result.lock;

    if (Date.now() >= deadline) {
      const holder = result.holder === undefined ? 'whose pid /proc/locks does not show' : `pid ${result.holder}`;
      logger.error({ folder, holder: result.holder }, 'folder locked by another enforcer');
      process.stderr.write(`sabpf enforce: ${message(holder)}\n`);
      return START_FAILED;
    }
    // A pod replaced by force can start before the old process has exited.
    if (!logged) logger.warn({ folder, holder: result.holder, waitMs: settings.waitMs }, 'waiting for another enforcer to exit');
    logged = true;
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
}

/** Tells whether two paths name one folder; false when either cannot be read. */
function sameFolder(a: string, b: string): boolean {
  const first = statSync(a, { bigint: true, throwIfNoEntry: false });
  const second = statSync(b, { bigint: true, throwIfNoEntry: false });
  return first !== undefined && second !== undefined && first.dev === second.dev && first.ino === second.ino;
}

/** Returns the errno code (ENOENT) of a Node error, or of the addon's, which carries only the number. */
function errnoCode(err: unknown): string {
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  if (typeof code === 'string') return code;
  const found = Object.entries(constants.errno).find(([, value]) => value === Math.abs(Number(errno)));
  return found?.[0] ?? '';
}
