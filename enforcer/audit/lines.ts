// Streaming line reader for trail files. Reads a snapshot of the file as it
// was when reading started, so a writer appending meanwhile never yields a
// half line.

import { open, type FileHandle } from 'node:fs/promises';
import { createInterface, type Interface } from 'node:readline';
import { Readable } from 'node:stream';

const CHUNK_BYTES = 64 * 1024;

export interface TrailLine {
  file: string;
  /** 1-based line number within the file. */
  lineNumber: number;
  text: string;
  /** False for a last line that has no terminating newline: an interrupted write. */
  complete: boolean;
}

/** Yields the lines of a file in order; see readLinesFromHandle. */
export async function* readTrailLines(file: string): AsyncGenerator<TrailLine> {
  const handle = await open(file, 'r');
  try {
    yield* readLinesFromHandle(handle, file);
  } finally {
    await handle.close();
  }
}

/**
 * Yields the lines of an open file in order without closing it. Only the
 * first `size` bytes are read, by default the bytes present when reading
 * starts. Records never contain a raw CR
 * or LF because JSON escapes them, so splitting on readline's line ends loses
 * nothing in an intact file.
 */
export async function* readLinesFromHandle(handle: FileHandle, file: string, size?: number): AsyncGenerator<TrailLine> {
  let stream: Readable | null = null;
  let lines: Interface | null = null;
  try {
    size ??= (await handle.stat()).size;
    if (size === 0) {
      return;
    }

    const lastByte = Buffer.alloc(1);
    await handle.read(lastByte, 0, 1, size - 1);
    const endsWithNewline = lastByte[0] === 0x0a;

    // FileHandle.createReadStream closes the handle when the stream is
    // destroyed, even with autoClose false (Node 20), so chunks are read
    // with positional reads that leave the handle to its owner.
    stream = Readable.from(readChunks(handle, size));
    lines = createInterface({ input: stream, crlfDelay: Infinity });

    // One line of lookahead shows which line is the last one.
    let pending: TrailLine | null = null;
    let lineNumber = 0;
    for await (const text of lines) {
      lineNumber += 1;
      if (pending !== null) {
        yield pending;
      }
      pending = { file, lineNumber, text, complete: true };
    }
    if (pending !== null) {
      yield { ...pending, complete: endsWithNewline };
    }
  } finally {
    // A consumer that stops early must not leave the stream reading.
    lines?.close();
    stream?.destroy();
  }
}

async function* readChunks(handle: FileHandle, size: number): AsyncGenerator<Buffer> {
  let position = 0;
  while (position < size) {
    const buffer = Buffer.alloc(Math.min(CHUNK_BYTES, size - position));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) {
      return;
    }
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/** Parses a line as a JSON object; returns null when it is not one. */
export function parseObjectLine(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return null;
  }
  return value as Record<string, unknown>;
}
