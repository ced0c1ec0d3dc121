// sabpf validate FILE...: check policies and list every problem.

import { parseArgs } from 'node:util';
import { hasErrors } from '../../compiler/diagnostics.js';
import { checkDuplicates, loadFiles, printDiagnostics } from '../io.js';

export const validateHelp = `Usage: sabpf validate [--quiet] FILE...

Checks ContainerSecurityPolicy documents against the CRD schema and the
semantic rules, and prints every problem as file:line:column with the field
path, the value and the fix. "-" reads standard input.

Options:
  -q, --quiet   print nothing when the policies are valid
  -h, --help    show this help

Exit status: 0 when every policy is valid (warnings allowed), 1 when any
problem is an error, 2 on a usage error.`;

export function validateCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`${validateHelp}\n`);
    return 0;
  }
  if (positionals.length === 0) {
    process.stderr.write('sabpf validate: no files given; pass one or more policy files, or - for standard input\n');
    return 2;
  }

  const result = loadFiles(positionals, true);
  checkDuplicates(result);
  printDiagnostics(result.diagnostics);
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = result.diagnostics.length - errors;
  if (hasErrors(result.diagnostics)) {
    process.stderr.write(`${errors} error(s), ${warnings} warning(s)\n`);
    return 1;
  }
  if (!values.quiet) {
    process.stdout.write(
      `${result.policies.length} polic${result.policies.length === 1 ? 'y' : 'ies'} valid${warnings ? `, ${warnings} warning(s)` : ''}\n`,
    );
  }
  return 0;
}
