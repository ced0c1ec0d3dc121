#!/usr/bin/env node
// sabpf: validate, compile and explain ContainerSecurityPolicies, run the
// enforcer, and read the audit trail.

import { compileCommand, compileHelp } from './commands/compile.js';
import { explainCommand, explainHelp } from './commands/explain.js';
import { validateCommand, validateHelp } from './commands/validate.js';
import { UsageError } from './usage.js';

type Command = { run: (argv: string[]) => number | Promise<number>; summary: string; help?: string };

const commands: Record<string, Command> = {
  validate: { run: validateCommand, summary: 'check policy files and list every problem', help: validateHelp },
  compile: { run: compileCommand, summary: 'show the program each container of a pod gets', help: compileHelp },
  explain: { run: explainCommand, summary: 'show which policy and rule decide one operation', help: explainHelp },
};

/** Registers a subcommand; modules with heavy dependencies register lazily. */
export function registerCommand(name: string, command: Command): void {
  commands[name] = command;
}

const usage = (): string =>
  `Usage: sabpf COMMAND [OPTIONS]\n\nCommands:\n${Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
    .join('\n')}\n\nRun "sabpf COMMAND --help" for the options of a command.`;

async function main(argv: string[]): Promise<number> {
  await registerLazyCommands();
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`sabpf: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  return command.run(rest);
}

/** Commands whose modules load the native addon or network clients are imported only when present. */
async function registerLazyCommands(): Promise<void> {
  const optional: [string, string, string, string][] = [
    ['audit', './commands/audit.js', 'auditCommand', 'verify, tail and query the audit trail'],
    ['enforce', './commands/enforce.js', 'enforceCommand', 'load policies into the kernel for declared containers'],
  ];
  for (const [name, path, exportName, summary] of optional) {
    commands[name] = {
      summary,
      run: async (argv) => {
        const module = (await import(path)) as Record<string, (argv: string[]) => Promise<number> | number>;
        const run = module[exportName];
        if (!run) throw new Error(`${path} does not export ${exportName}`);
        return run(argv);
      },
    };
  }
}

// A closed pipe (sabpf compile ... | head) ends the output, not the process with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`sabpf: ${(error as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`sabpf: internal error: ${(error as Error).message}\n`);
    if (process.env.SABPF_DEBUG) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
    process.exitCode = 70;
  },
);
