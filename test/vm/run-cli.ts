// Run a command in the test VM from a terminal:
//   node dist/test/vm/run-cli.js [--timeout SEC] [--memory MB] [--cpus N] [--kernel 6.1|5.10|6.12]
//                                [--share DIR] [--run-dir DIR] [--icount] [--single-thread] [--quiet] -- 'command'
// Streams the console, prints where the outputs are, and exits with the
// guest command's exit status.
import { parseArgs } from 'node:util';

import { KERNEL_LINES, runInVm, VmTimeoutError, type KernelLine } from './run.js';

const usage =
  "usage: node dist/test/vm/run-cli.js [--timeout SEC] [--memory MB] [--cpus N] [--kernel 6.1|5.10|6.12] [--share DIR] [--run-dir DIR] [--icount] [--single-thread] [--quiet] -- 'command'";

function kernelLine(value: string | undefined): KernelLine | undefined {
  if (value === undefined) {
    return undefined;
  }
  const line = KERNEL_LINES.find((l) => l === value);
  if (line === undefined) {
    throw new Error(`failed to parse --kernel ${JSON.stringify(value)}: expected one of ${KERNEL_LINES.join(', ')}`);
  }
  return line;
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`failed to parse --${name} ${JSON.stringify(value)}: expected a positive integer`);
  }
  return n;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      timeout: { type: 'string' },
      memory: { type: 'string' },
      cpus: { type: 'string' },
      kernel: { type: 'string' },
      share: { type: 'string' },
      'run-dir': { type: 'string' },
      icount: { type: 'boolean', default: false },
      'single-thread': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }

  const timeoutSec = positiveInt('timeout', values.timeout);
  const result = await runInVm({
    script: `${positionals.join(' ')}\n`,
    shareDir: values.share,
    runDir: values['run-dir'],
    timeoutMs: timeoutSec === undefined ? undefined : timeoutSec * 1000,
    memoryMb: positiveInt('memory', values.memory),
    cpus: positiveInt('cpus', values.cpus),
    kernel: kernelLine(values.kernel),
    icount: values.icount,
    singleThread: values['single-thread'],
    onConsole: values.quiet ? undefined : (chunk) => process.stdout.write(chunk),
  });

  process.stderr.write(
    `vm: exit ${result.exitCode} after ${(result.durationMs / 1000).toFixed(1)} s; outputs in ${result.outputs}; console in ${result.consoleLog}\n`,
  );
  return result.exitCode;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof VmTimeoutError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`${message}\n`);
    process.exitCode = 125;
  },
);
