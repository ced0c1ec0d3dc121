// Compile benchmark: time and peak memory to validate and compile policies of
// 10, 1,000 and 10,000 rules, each size in its own process, side by side in
// one run. Not a test: it prints numbers and asserts nothing.
//
//   make bench    or    node dist/bench/compile/run.js [repeats]

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repeats = process.argv[2] ?? '5';
const one = fileURLToPath(new URL('./one.js', import.meta.url));

interface Result {
  rules: number;
  mode: string;
  bytes: number;
  entries: number;
  validateMs: number;
  compileMs: number;
  totalMs: number;
  maxRssKb: number;
  rssBeforeKb: number;
  heapGrowthMiB: number;
  retainedMiB: number;
}

const sizes = [10, 1_000, 10_000];
const measure = (rules: number, mode: string): Result =>
  JSON.parse(execFileSync(process.execPath, ['--expose-gc', one, String(rules), repeats, mode], { encoding: 'utf8' })) as Result;

process.stdout.write(`compile benchmark: median of ${repeats} runs per size, each size and mode in a fresh node process\n`);
process.stdout.write(
  '  object: validate (CRD schema + semantic checks) and compile a parsed policy object, as the webhook and enforcer do\n',
);
process.stdout.write('  yaml:   the same plus YAML parsing with positions, as `sabpf validate` and `sabpf compile` do\n\n');
process.stdout.write(
  'mode    rules   yaml KiB  map entries  validate ms  compile ms  total ms  x(10 rules)  heap growth MiB  retained MiB  RSS over start MiB\n',
);
for (const mode of ['object', 'yaml']) {
  const results = sizes.map((rules) => measure(rules, mode));
  const base = results[0] as Result;
  for (const r of results) print(r, base);
}

function print(r: Result, base: Result): void {
  process.stdout.write(
    `${r.mode.padEnd(7)} ${String(r.rules).padEnd(7)} ${(r.bytes / 1024).toFixed(0).padStart(8)}  ${String(r.entries).padStart(11)}  ${r.validateMs.toFixed(2).padStart(11)}  ${r.compileMs.toFixed(2).padStart(10)}  ${r.totalMs.toFixed(2).padStart(8)}  ${(r.totalMs / base.totalMs).toFixed(1).padStart(11)}  ${r.heapGrowthMiB.toFixed(1).padStart(15)}  ${r.retainedMiB.toFixed(1).padStart(12)}  ${((r.maxRssKb - r.rssBeforeKb) / 1024).toFixed(1).padStart(18)}\n`,
  );
}
