// Names and order of a trail's files. The active file is `audit.log`; rotation
// renames it to `audit.log.1` and shifts older files up by one, so a higher
// suffix is an older file.

import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const DEFAULT_FILE_NAME = 'audit.log';
export const STATE_FILE_NAME = 'audit.state.json';

/** Returns the name of a trail file: index 0 is the active file, 1 the newest rotated one. */
export function trailFileName(base: string, index: number): string {
  return index === 0 ? base : `${base}.${index}`;
}

/** Returns the rotation index of a file name of the trail, or null when the name is not one. */
export function rotationIndex(base: string, name: string): number | null {
  if (name === base) {
    return 0;
  }
  if (!name.startsWith(`${base}.`)) {
    return null;
  }
  const suffix = name.slice(base.length + 1);
  return /^[1-9][0-9]{0,5}$/.test(suffix) ? Number(suffix) : null;
}

export interface TrailFileEntry {
  /** 0 for the active file, n for `<base>.n`. */
  index: number;
  path: string;
}

/** Lists a directory's trail files with their rotation index, oldest (highest index) first. */
export async function listTrailEntries(directory: string, base = DEFAULT_FILE_NAME): Promise<TrailFileEntry[]> {
  const entries: TrailFileEntry[] = [];

  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const index = rotationIndex(base, entry.name);
    if (index !== null && entry.isFile()) {
      entries.push({ index, path: join(directory, entry.name) });
    }
  }

  entries.sort((a, b) => b.index - a.index);
  return entries;
}

/** Lists a directory's trail files, oldest first. */
export async function listTrailFiles(directory: string, base = DEFAULT_FILE_NAME): Promise<string[]> {
  return (await listTrailEntries(directory, base)).map((entry) => entry.path);
}

/**
 * Orders explicitly named files oldest first when they all belong to one
 * trail, meaning one directory and one base name, as a shell glob such as
 * audit.log* expands them. Other lists keep the order given.
 */
export function orderTrailPaths(paths: readonly string[]): string[] {
  const first = paths[0];
  if (first === undefined) {
    return [];
  }

  const base = basename(first).replace(/\.[1-9][0-9]*$/, '');
  const directory = dirname(first);
  const indexed: TrailFileEntry[] = [];

  for (const path of paths) {
    const index = dirname(path) === directory ? rotationIndex(base, basename(path)) : null;
    if (index === null) {
      return [...paths];
    }
    indexed.push({ index, path });
  }

  indexed.sort((a, b) => b.index - a.index);
  return indexed.map((item) => item.path);
}

/** Directory and base name of a trail. */
export interface TrailLocation {
  directory: string;
  fileName: string;
}

/**
 * Resolves a trail from a directory (base name audit.log) or from the path of
 * one of its files, such as /var/log/sabpf/audit.log or audit.log.2.
 */
export async function resolveTrailLocation(path: string): Promise<TrailLocation> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message;
    throw new Error(
      `failed to open audit trail ${path}: ${reason}; pass the trail directory (the enforcer's audit directory) or its audit.log`,
      {
        cause: error,
      },
    );
  }
  if (isDirectory) {
    return { directory: path, fileName: DEFAULT_FILE_NAME };
  }
  return { directory: dirname(path), fileName: basename(path).replace(/\.[1-9][0-9]*$/, '') };
}
