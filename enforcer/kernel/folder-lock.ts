// Exclusive locks on the folders an enforcer works in: its pin root and its
// audit folder. enforcer/native/src/lock.h explains why they are flock(2) locks.

import { readFileSync, statSync } from 'node:fs';
import { loadAddon, type NativeAddon } from './addon.js';

export interface FolderLock {
  readonly path: string;
  /** Drops the lock. Exiting drops it too, so a running enforcer never calls this. */
  release(): void;
}

export type LockResult =
  | { locked: true; lock: FolderLock }
  /** holder: pid of the process with the lock, when /proc/locks shows it. */
  | { locked: false; holder: number | undefined };

/** Takes the lock on folder, which must exist, without waiting. Throws when the folder cannot be opened. */
export function lockFolder(path: string, addon: Pick<NativeAddon, 'lockFolder' | 'closeFd'> = loadAddon()): LockResult {
  const fd = addon.lockFolder(path);
  if (fd === null) return { locked: false, holder: lockHolder(path) };
  let released = false;
  return {
    locked: true,
    lock: {
      path,
      release: () => {
        if (released) return;
        released = true;
        addon.closeFd(fd);
      },
    },
  };
}

/**
 * Finds the pid that holds a flock on path in /proc/locks, whose lines read
 * "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF" (device in hex, inode
 * in decimal). The kernel leaves out the line of a holder outside this pid
 * namespace, as when two pods mount one hostPath.
 */
export function lockHolder(path: string, locks = readProcLocks()): number | undefined {
  let device: string;
  let inode: string;
  try {
    const info = statSync(path, { bigint: true });
    device = `${hex(major(info.dev))}:${hex(minor(info.dev))}`;
    inode = String(info.ino);
  } catch {
    return undefined;
  }

  // Holders of a flock on this inode, by device. Waiters are listed with a
  // "->" field after the number, so fields[1] skips them.
  const holders: { device: string; pid: number }[] = [];
  for (const line of locks.split('\n')) {
    const fields = line.trim().split(/\s+/u);
    if (fields[1] !== 'FLOCK') continue;
    const parts = fields[5]?.split(':');
    if (parts?.length !== 3 || parts[2] !== inode) continue;
    holders.push({ device: `${parts[0]}:${parts[1]}`, pid: Number(fields[4]) });
  }

  // btrfs reports a subvolume's own device to stat, and /proc/locks the file
  // system's, so a single holder of the inode on another device counts too.
  const match = holders.find((h) => h.device === device) ?? (holders.length === 1 ? holders[0] : undefined);
  return match !== undefined && Number.isInteger(match.pid) && match.pid > 0 ? match.pid : undefined;
}

function readProcLocks(): string {
  try {
    return readFileSync('/proc/locks', 'utf8');
  } catch {
    return '';
  }
}

// glibc's encoding of dev_t (gnu_dev_major and gnu_dev_minor).
function major(dev: bigint): bigint {
  return ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
}

function minor(dev: bigint): bigint {
  return (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
}

/** /proc/locks prints at least two hex digits per number. */
function hex(value: bigint): string {
  return value.toString(16).padStart(2, '0');
}
