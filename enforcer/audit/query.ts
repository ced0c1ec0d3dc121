// Filtered reading of a whole trail, oldest record first. Files are streamed
// one line at a time, so memory stays flat however large the trail is.

import { listTrailFiles, resolveTrailLocation } from './files.js';
import { matchesFilter, type RecordFilter } from './filters.js';
import { readLinesFromHandle } from './lines.js';
import type { AuditRecord } from './record.js';
import { closeAll, openTrailFiles, parseRecordLine, type ReadOptions } from './records.js';

/**
 * Yields the records of a trail that pass `filter`, in trail order. `trail`
 * is the trail directory or the path of one of its files.
 */
export async function* query(trail: string, filter: RecordFilter = {}, options: ReadOptions = {}): AsyncGenerator<AuditRecord> {
  const { directory, fileName } = await resolveTrailLocation(trail);
  const opened = await openTrailFiles(await listTrailFiles(directory, fileName));

  try {
    for (const { file, handle } of opened) {
      for await (const line of readLinesFromHandle(handle, file)) {
        const parsed = parseRecordLine(line);
        if (typeof parsed === 'string') {
          options.onSkippedLine?.({ file, line: line.lineNumber, reason: parsed });
        } else if (matchesFilter(parsed, filter)) {
          yield parsed;
        }
      }
    }
  } finally {
    await closeAll(opened);
  }
}
