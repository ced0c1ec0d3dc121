// Multi-document YAML parsing that keeps positions, so every diagnostic can
// name the line and column of the value it is about.

import { isMap, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';

/** Largest YAML input accepted, in bytes. Larger inputs are rejected before parsing. */
export const MAX_SOURCE_BYTES = 16 * 1024 * 1024;

export interface SourceDocument {
  index: number;
  /** Plain JavaScript value of the document, or undefined for an empty document. */
  value: unknown;
  /** Finds the 1-based line and column of a field path; falls back to the nearest parent. */
  locate(path: readonly (string | number)[]): { line: number; column: number };
  /** Length of the document's text, in characters. */
  size: number;
  /** The value was parsed here from text, so no caller shares it. */
  fromText: boolean;
  /** YAML syntax errors of this document, already located. */
  syntaxErrors: { message: string; line: number; column: number }[];
}

/** Parses every document of a YAML text. Never throws on bad input. */
export function parseSource(text: string): SourceDocument[] {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
  });
  const list = Array.isArray(documents) ? documents : [documents];
  return list.map((doc, index) => toSourceDocument(doc, index, lineCounter));
}

function toSourceDocument(doc: Document, index: number, lineCounter: LineCounter): SourceDocument {
  const positionOf = (offset: number | undefined): { line: number; column: number } => {
    if (offset === undefined) return { line: 0, column: 0 };
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };

  const syntaxErrors = doc.errors.map((error) => ({
    message: error.message.split('\n')[0] ?? error.message,
    ...positionOf(error.pos[0]),
  }));

  let value: unknown;
  if (syntaxErrors.length === 0) {
    try {
      // Aliases could blow up a small document into a huge value.
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      syntaxErrors.push({ message: (error as Error).message, ...positionOf(doc.contents?.range?.[0]) });
    }
  }

  const locate = (path: readonly (string | number)[]): { line: number; column: number } => {
    let node: unknown = doc.contents;
    let best = positionOf((doc.contents as Node | null)?.range?.[0]);
    for (const segment of path) {
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((item) => {
          const key = item.key as { value?: unknown } | null;
          return key !== null && String(key.value ?? key) === String(segment);
        });
        // Point at the value when it exists, else at the key.
        next = pair?.value ?? pair?.key;
      } else if (isSeq(node) && typeof segment === 'number') {
        next = node.items[segment];
      }
      const range = (next as Node | undefined)?.range;
      if (!range) break;
      best = positionOf(range[0]);
      node = next;
    }
    return best;
  };

  const size = doc.range ? doc.range[2] - doc.range[0] : 0;
  return { index, value, locate, size, fromText: true, syntaxErrors };
}
