// Shared CLI plumbing: reading files, printing diagnostics, user errors.

import { readFileSync, statSync } from 'node:fs';
import { formatDiagnostic, type Diagnostic } from '../compiler/diagnostics.js';
import { loadPolicies, type LoadResult } from '../compiler/load.js';
import { MAX_SOURCE_BYTES } from '../compiler/source.js';
import { UsageError } from './usage.js';

export function readInput(file: string): string {
  if (file === '-') return readFileSync(0, 'utf8');
  let size: number;
  try {
    size = statSync(file).size;
  } catch (error) {
    throw new UsageError(`failed to read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; check the path`);
  }
  if (size > MAX_SOURCE_BYTES) {
    throw new UsageError(`failed to read ${file}: ${size} bytes is larger than the ${MAX_SOURCE_BYTES} byte limit; split the file`);
  }
  return readFileSync(file, 'utf8');
}

/** Loads policies from several files; diagnostics of all files are merged. */
export function loadFiles(files: readonly string[], policiesOnly: boolean): LoadResult {
  const merged: LoadResult = { policies: [], others: [], diagnostics: [] };
  for (const file of files) {
    const result = loadPolicies(readInput(file), file === '-' ? '<stdin>' : file, { policiesOnly });
    merged.policies.push(...result.policies);
    merged.others.push(...result.others);
    merged.diagnostics.push(...result.diagnostics);
  }
  return merged;
}

export function printDiagnostics(diagnostics: readonly Diagnostic[], stream: NodeJS.WriteStream = process.stderr): void {
  for (const diagnostic of diagnostics) stream.write(`${formatDiagnostic(diagnostic)}\n`);
}

/** Rejects duplicate namespace/name pairs across files: the later one would silently win in a cluster. */
export function checkDuplicates(result: LoadResult): void {
  const seen = new Set<string>();
  for (const policy of result.policies) {
    const key = `${policy.namespace}/${policy.name}`;
    if (seen.has(key)) throw new UsageError(`policy ${key} is defined twice; rename one of them`);
    seen.add(key);
  }
}
