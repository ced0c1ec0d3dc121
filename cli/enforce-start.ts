// The start that both enforce commands share. Its order keeps a failed start
// harmless. The checks for an operator's mistake (a second enforcer, an
// audit folder it cannot write) run before any program loads. The trail
// opens only after the load, so a rejected load writes nothing to a trail
// that another enforcer may own.

import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditWriter } from '../enforcer/audit/index.js';
import { lockFolder, loadPrograms, type FolderLock, type KernelPrograms, type LoadOptions } from '../enforcer/kernel/index.js';
import { checkTrailFolder, openAuditTrail, type TrailSettings } from './audit-options.js';

export interface StartOptions {
  trail: TrailSettings;
  load: LoadOptions & { pinRoot: string };
  /** Node name for the trail's records. */
  node: string;
  registry: Registry;
  logger: Logger;
}

export interface Started {
  kernel: KernelPrograms;
  audit: AuditWriter;
  /** Held until the process exits; tests release them. */
  locks: FolderLock[];
}

/** Exit statuses of a failed start, as both help texts list them. */
export const START_FAILED = 1;
export const LOAD_FAILED = 3;

/** Runs the start, or prints why it failed and returns the exit status. */
export async function startEnforcement(options: StartOptions): Promise<Started | number> {
  const { trail, load, logger } = options;
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
    process.stderr.write(
      `sabpf enforce: cannot create the pin root ${load.pinRoot}: ${(err as Error).message}; mount bpffs at /sys/fs/bpf or pass another --pin-root\n`,
    );
    return fail(LOAD_FAILED);
  }
  const pinLock = takeLock(
    load.pinRoot,
    (holder) =>
      `another sabpf enforcer (${holder}) runs with the pin root ${load.pinRoot}, and two would fight over its links; stop it first`,
    logger,
  );
  if (pinLock === undefined) return fail(START_FAILED);
  locks.push(pinLock);

  // Two writers of one folder would interleave their hash chains, and verify
  // would report the trail as broken.
  if (!(await checkTrailFolder(trail, logger))) return fail(START_FAILED);
  const trailLock = takeLock(
    trail.directory,
    (holder) =>
      `another sabpf enforcer (${holder}) writes the audit trail in ${trail.directory}, and two chains would interleave; stop it first, or pass another --audit-dir`,
    logger,
  );
  if (trailLock === undefined) return fail(START_FAILED);
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

/**
 * Takes the lock on folder for this process, or prints the message for its
 * holder and returns undefined. The folder exists: the caller created it.
 */
export function takeLock(folder: string, message: (holder: string) => string, logger: Logger): FolderLock | undefined {
  let result;
  try {
    result = lockFolder(folder);
  } catch (err) {
    logger.error({ folder, err }, 'failed to lock the folder');
    process.stderr.write(`sabpf enforce: cannot lock ${folder}: ${(err as Error).message}\n`);
    return undefined;
  }
  if (result.locked) return result.lock;

  const holder = result.holder === undefined ? 'whose pid this pid namespace does not see' : `pid ${result.holder}`;
  logger.error({ folder, holder: result.holder }, 'folder locked by another enforcer');
  process.stderr.write(`sabpf enforce: ${message(holder)}\n`);
  return undefined;
}
