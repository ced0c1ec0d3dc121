// Node-wide benchmark: boots one VM per build and kernel and runs
// bench/kernel/global-guest.ts in it, then prints a table.
//
//   npx tsc -p tsconfig.json && make build-bpf build-native
//   node dist/bench/kernel/global-run.js [--opens 20000] [--rounds 6] [--icount] [--op open|create]
//
// Builds: the global object and the legacy object on Debian 6.1, and the
// legacy object on Debian 5.10, the kernel auto mode gives it. --op create
// measures the node-wide hooks path_mknod and path_unlink instead of
// file_open, so the per-container object runs too: its node-wide programs
// are the only ones an unconfined task meets on that path. Times are
// under TCG emulation: only the ratios, and the program times relative to
// each other, carry over, and only roughly. --icount counts instructions
// instead (one guest nanosecond each, one vCPU; see test/vm/qemu.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { runInVm, type KernelLine } from '../../test/vm/run.js';
import type { Spread } from './summary.js';

interface GlobalBenchResult {
  kernel: string;
  object: string;
  op: string;
  opens: number;
  rounds: number;
  programNsPerOp: { confined?: number; unconfined?: number };
  unconfined: { ratio: Spread; attachedNs: Spread; detachedNs: Spread };
}

const runs: { kernel: KernelLine; object: string }[] = [
  { kernel: '6.1', object: 'enforcer/bpf/sabpf-global.bpf.o' },
  { kernel: '6.1', object: 'enforcer/bpf/sabpf-legacy.bpf.o' },
  { kernel: '5.10', object: 'enforcer/bpf/sabpf-legacy.bpf.o' },
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      opens: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '6' },
      icount: { type: 'boolean', default: false },
      op: { type: 'string', default: 'open' },
    },
  });
  if (values.op !== 'open' && values.op !== 'create') throw new Error(`invalid --op ${JSON.stringify(values.op)}: use open or create`);
  const results: GlobalBenchResult[] = [];
  const selected = values.op === 'create' ? [{ kernel: '6.1' as KernelLine, object: 'enforcer/bpf/sabpf.bpf.o' }, ...runs] : runs;
  for (const run of selected) {
    const script = [
      `export SABPF_BENCH_OBJECT=${run.object} SABPF_BENCH_OPENS=${values.opens} SABPF_BENCH_ROUNDS=${values.rounds} SABPF_BENCH_OP=${values.op}`,
      'node dist/bench/kernel/global-guest.js',
    ].join('\n');
    const vm = await runInVm({ script, kernel: run.kernel, timeoutMs: 1_200_000, icount: values.icount });
    const text = await readFile(join(vm.outputs, 'bench-global.json'), 'utf8').catch(() => undefined);
    if (vm.exitCode !== 0 || text === undefined) {
      throw new Error(
        `failed to run the benchmark of ${run.object} on ${run.kernel}: guest exit ${vm.exitCode}; console tail:\n${vm.console.slice(-2000)}`,
      );
    }
    results.push(JSON.parse(text) as GlobalBenchResult);
  }

  const fmt = (s: Spread): string => `${s.median.toFixed(3)} [${s.min.toFixed(3)}-${s.max.toFixed(3)}]`;
  const ns = (x: number | undefined): string => (x === undefined ? '-' : `${(x / 1000).toFixed(2)} µs`);
  process.stdout.write(`${JSON.stringify(results, null, 1)}\n\n`);
  const opName = values.op === 'create' ? 'create+close+unlink' : 'open+close';
  process.stdout.write(
    `kernel             object                program per op: confined (10,000 rules)  unconfined   unconfined ${opName}, attached/detached\n`,
  );
  for (const r of results) {
    const object = r.object.split('/').pop() ?? r.object;
    process.stdout.write(
      `${r.kernel.padEnd(19)}${object.padEnd(22)}${ns(r.programNsPerOp.confined).padStart(40)}${ns(r.programNsPerOp.unconfined).padStart(13)}   ${fmt(r.unconfined.ratio)}\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
