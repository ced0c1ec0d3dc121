// User errors of the CLI and the parsing of numeric flags. Kept apart from
// io.ts, which loads the compiler, so that commands without policies stay light.

/** An error meant for the user: printed as one line, without a stack trace. */
export class UsageError extends Error {}

/** Parses a whole-number option; undefined (not given) yields the fallback. */
export function parseCount(
  option: string,
  text: string | undefined,
  fallback: number,
  minimum: number,
  maximum = Number.MAX_SAFE_INTEGER,
): number {
  if (text === undefined) {
    return fallback;
  }
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
    const range = maximum === Number.MAX_SAFE_INTEGER ? `of at least ${minimum}` : `from ${minimum} to ${maximum}`;
    throw new UsageError(`invalid ${option} ${JSON.stringify(text)}: pass a whole number ${range}`);
  }
  return value;
}
