// Diagnostics: one problem in one document, located by field path and by the
// line and column of the YAML that produced it.

export interface Diagnostic {
  /** File name as given to the loader, or "<stdin>". */
  file: string;
  /** 1-based line and column of the offending YAML node, 0 when unknown. */
  line: number;
  column: number;
  /** Index of the document in a multi-document file, from 0. */
  document: number;
  /** Name of the policy as namespace/name when known. */
  policy?: string;
  /** Field path such as spec.file.rules[2].paths[0]. */
  field: string;
  /** The offending value, shortened for display. */
  value?: string;
  /** Problem description. */
  problem: string;
  /** Suggested fix. */
  fix: string;
  severity: 'error' | 'warning';
}

const MAX_VALUE_LENGTH = 80;

/** Renders a value for a message: JSON, control characters escaped, cut at 80 characters. */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  if (text.length > MAX_VALUE_LENGTH) {
    return `${text.slice(0, MAX_VALUE_LENGTH)}… (${text.length} characters)`;
  }
  return text;
}

/** Formats a diagnostic as `file:line:col: error: [policy] field: problem (value); fix`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  const policy = d.policy ? `[${d.policy}] ` : '';
  const value = d.value !== undefined ? ` (got ${d.value})` : '';
  return `${where}: ${d.severity}: ${policy}${d.field}: ${d.problem}${value}; ${d.fix}`;
}

/** Formats a diagnostic for an admission response: `[policy] field: problem (value); fix`. */
export function formatForAdmission(d: Diagnostic): string {
  const policy = d.policy ? `[${d.policy}] ` : '';
  const value = d.value !== undefined ? ` (got ${d.value})` : '';
  return `${policy}${d.field}: ${d.problem}${value}; ${d.fix}`;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}
