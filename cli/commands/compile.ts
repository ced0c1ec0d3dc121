// sabpf compile FILE... --pod POD.yaml: the program each container gets.

import { parseArgs } from 'node:util';
import { compileContainer } from '../../compiler/compile.js';
import { hasErrors } from '../../compiler/diagnostics.js';
import { describeProgram, programToJson } from '../../compiler/describe.js';
import { checkDuplicates, loadFiles, printDiagnostics } from '../io.js';
import { UsageError } from '../usage.js';
import { readPod } from '../pod.js';

export const compileHelp = `Usage: sabpf compile FILE... --pod POD.yaml [--json] [--tables]

Compiles the policies that select each container of the pod into the program
the kernel runs: hooks, postures, and the map entries in their binary layout.

Options:
      --pod FILE   Pod manifest whose labels, namespace and containers are used (required)
      --json       print JSON (map entries as hex) instead of text
      --tables     with text output, list every table entry
  -h, --help       show this help`;

export function compileCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      pod: { type: 'string' },
      json: { type: 'boolean' },
      tables: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${compileHelp}\n`);
    return 0;
  }
  if (!values.pod) throw new UsageError('missing --pod; give the Pod manifest the policies are compiled for');
  if (positionals.length === 0) throw new UsageError('no policy files given; pass one or more policy files');

  const result = loadFiles(positionals, true);
  checkDuplicates(result);
  printDiagnostics(result.diagnostics);
  if (hasErrors(result.diagnostics)) return 1;

  const programs = readPod(values.pod).map((container) => ({ container, program: compileContainer(result.policies, container) }));
  if (values.json) {
    const out = programs.map(({ container, program }) =>
      program
        ? programToJson(program)
        : { container: { namespace: container.namespace, pod: container.pod, container: container.container }, unconfined: true },
    );
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  for (const { container, program } of programs) {
    if (!program) {
      process.stdout.write(
        `container ${container.namespace}/${container.pod}/${container.container}\n  no policy selects it: unconfined\n`,
      );
      continue;
    }
    process.stdout.write(`${describeProgram(program, { tables: values.tables ?? false }).join('\n')}\n`);
  }
  return 0;
}
