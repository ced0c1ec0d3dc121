// Kernel benchmark: boots the test VM once and runs bench/kernel/guest.ts,
// which measures hooked operations with and without the sabpf programs.
//   npx tsc -p tsconfig.json && make build-bpf build-native
//   node dist/bench/kernel/run.js [--seconds 1] [--rounds 3]
// Prints the guest's JSON and a table of median rates, with each rate's
// ratio to the baseline in parentheses.
// Absolute rates under TCG emulation are far below real hardware. The ratios
// measured in one run are what carries over.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { projectRoot, vmOutDir } from '../../test/vm/paths.js';
import { runInVm } from '../../test/vm/run.js';

type Rates = Record<'open' | 'exec' | 'connect', number>;

interface BenchResult {
  baseline: Rates;
  confined: Record<string, Rates>;
  unconfined: Rates;
  ratios: { confined: Record<string, Rates>; unconfined: Rates };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' } },
  });
  const loopBin = join(vmOutDir, 'bin', 'sabpf-bench-loop');
  mkdirSync(join(vmOutDir, 'bin'), { recursive: true });
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-o', loopBin, join(projectRoot, 'bench', 'kernel', 'loop.c')]);

  const script = [
    `export SABPF_BENCH_LOOP=${loopBin} SABPF_BENCH_SECONDS=${values.seconds} SABPF_BENCH_ROUNDS=${values.rounds}`,
    'node dist/bench/kernel/guest.js >"$SABPF_OUT/bench.stdout" 2>"$SABPF_OUT/bench.stderr"',
  ].join('\n');
  const run = await runInVm({ script, timeoutMs: 900_000 });
  if (run.exitCode !== 0) {
    const stderr = await readFile(join(run.outputs, 'bench.stderr'), 'utf8').catch(() => '');
    process.stderr.write(`failed to run the kernel benchmark in the VM (exit ${run.exitCode}):\n${stderr}\n`);
    return 1;
  }

  const result = JSON.parse(await readFile(join(run.outputs, 'bench-kernel.json'), 'utf8')) as BenchResult;
  process.stdout.write(`${JSON.stringify(result, null, 1)}\n\n`);
  const row = (label: string, rates: Rates, ratio: Rates | undefined): string =>
    `${label.padEnd(28)} ${(['open', 'exec', 'connect'] as const)
      .map((op) => `${rates[op].toFixed(0).padStart(9)}/s ${ratio ? `(${ratio[op].toFixed(2)})` : '      '}`)
      .join('  ')}`;
  process.stdout.write(`${'setting'.padEnd(28)} ${'open+close'.padStart(20)}  ${'exec'.padStart(20)}  ${'connect'.padStart(20)}\n`);
  process.stdout.write(`${row('(a) no programs', result.baseline, undefined)}\n`);
  for (const [count, rates] of Object.entries(result.confined)) {
    process.stdout.write(`${row(`(b) confined, ${count} rules`, rates, result.ratios.confined[count])}\n`);
  }
  process.stdout.write(`${row('(c) unconfined, others confined', result.unconfined, result.ratios.unconfined)}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
