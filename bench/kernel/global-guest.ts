// Guest side of the node-wide benchmark (bench/kernel/global-run.ts boots
// the VM). The global and legacy objects, and the node-wide hooks of every
// object, run for every task of the node, so two costs matter: a confined
// container's operation, and everyone else's.
//
// One build is loaded (SABPF_BENCH_OBJECT), with the 10,000-rule policy of
// rules.ts selecting cgroup "confined". SABPF_BENCH_OP picks the operation
// and the programs attached (PROGRAMS_OF): open (open+close of the target,
// file_open) or create (open with O_CREAT of a new file, close and unlink,
// path_mknod and path_unlink). Then:
//   1. With kernel.bpf_stats_enabled, the programs' mean run time per
//      operation in the confined cgroup and in an unconfined one.
//   2. With statistics off, operation rates of the unconfined cgroup with
//      the programs attached and detached, alternating for
//      SABPF_BENCH_ROUNDS rounds: the cost every other task pays.
// Writes $SABPF_OUT/bench-global.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

import { cgroupId, removePins } from '../../enforcer/kernel/index.js';
import { loadObject } from './objects.js';
import { BENCH_TARGET, setConfig, writeRules } from './rules.js';
import { nsPerRun, runStats, setBpfStats } from './stats.js';
import { spread } from './summary.js';

const objectPath = process.env['SABPF_BENCH_OBJECT'] ?? 'enforcer/bpf/sabpf-global.bpf.o';
const opens = Number(process.env['SABPF_BENCH_OPENS'] ?? '20000');
const rounds = Number(process.env['SABPF_BENCH_ROUNDS'] ?? '6');
const op = process.env['SABPF_BENCH_OP'] ?? 'open';
const cgRoot = '/sys/fs/cgroup/sabpf-bench-global';
const pinRoot = '/sys/fs/bpf/sabpf-bench-global';

const PROGRAMS_OF: Record<string, string[]> = {
  open: ['sabpf_file_open'],
  create: ['sabpf_path_mknod', 'sabpf_path_unlink'],
};

// One operation in JavaScript: open+close of the target, or create+close+unlink
// of a new name beside /tmp/bench, whose subtree the policy protects from writes.
const CREATED = '/tmp/bench-created';
const STEP_OF: Record<string, string> = {
  open: `fs.closeSync(fs.openSync('${BENCH_TARGET}','r'))`,
  create: `fs.closeSync(fs.openSync('${CREATED}','w'));fs.unlinkSync('${CREATED}')`,
};

// The measured loop, timed inside the process so that node's start-up is
// not counted. Prints nanoseconds per operation.
const step = STEP_OF[op];
const loopScript = `const fs=require('fs');const n=${opens};for(let i=0;i<500;i++){${step}}const t=process.hrtime.bigint();for(let i=0;i<n;i++){${step}}console.log(Number(process.hrtime.bigint()-t)/n)`;

/** Runs the loop in a cgroup and returns nanoseconds per operation. */
function openLoop(cgroup: string): number {
  const r = spawnSync('sh', ['-c', `echo $$ >${cgroup}/cgroup.procs && exec node -e "${loopScript}"`], { encoding: 'utf8' });
  const ns = Number(r.stdout.trim());
  if (r.status !== 0 || !Number.isFinite(ns)) {
    throw new Error(`failed to run the ${op} loop in ${cgroup}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  }
  return ns;
}

function main(): void {
  mkdirSync('/tmp/bench', { recursive: true });
  writeFileSync(BENCH_TARGET, 'x');
  const confined = join(cgRoot, 'confined');
  const unconfined = join(cgRoot, 'unconfined');
  mkdirSync(confined, { recursive: true });
  mkdirSync(unconfined, { recursive: true });

  removePins(pinRoot);
  const o = loadObject('bench', objectPath, pinRoot);
  setConfig(o, cgroupId(confined), writeRules(o, 0, 10000));
  const names = PROGRAMS_OF[op];
  if (!names || !step) throw new Error(`failed to run operation ${JSON.stringify(op)}: SABPF_BENCH_OP must be open or create`);
  const progs = names.map((name) => {
    const fd = o.programs[name];
    if (fd === undefined) throw new Error(`failed to find ${name} in ${objectPath}: rebuild enforcer/bpf`);
    return fd;
  });
  const attachAll = (object: typeof o): number[] => names.map((name) => object.object.attachGlobal(name));
  const links = attachAll(o);

  // 1. Program run time per operation: each program runs once per operation.
  setBpfStats(true);
  const perRun = (cgroup: string): number | undefined => {
    const before = progs.map((fd) => runStats(fd));
    openLoop(cgroup);
    const perProgram = progs.map((fd, i) => nsPerRun(before[i]!, runStats(fd))?.ns);
    return perProgram.every((ns) => ns !== undefined) ? perProgram.reduce((sum, ns) => sum! + ns!, 0) : undefined;
  };
  const programNs = { confined: perRun(confined), unconfined: perRun(unconfined) };
  setBpfStats(false);

  // 2. The unconfined task's operation, attached against detached. A
  // tracing program attaches once per load (a second attach after a detach
  // fails with ENOENT), so each round attaches a fresh load.
  for (const link of links) o.addon.closeFd(link);
  const ratios: number[] = [];
  const attachedNs: number[] = [];
  const detachedNs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const fresh = loadObject(`round${round}`, objectPath, pinRoot);
    const attachedRun = (): number => {
      const roundLinks = attachAll(fresh);
      const ns = openLoop(unconfined);
      for (const link of roundLinks) fresh.addon.closeFd(link);
      return ns;
    };

    // Odd rounds measure detached first, so warm-up favours neither side.
    let on: number;
    let off: number;
    if (round % 2 === 0) {
      on = attachedRun();
      off = openLoop(unconfined);
    } else {
      off = openLoop(unconfined);
      on = attachedRun();
    }
    fresh.object.close();
    attachedNs.push(on);
    detachedNs.push(off);
    ratios.push(on / off);
  }

  const result = {
    kernel: release(),
    object: objectPath,
    op,
    opens,
    rounds,
    programNsPerOp: programNs,
    unconfined: { ratio: spread(ratios), attachedNs: spread(attachedNs), detachedNs: spread(detachedNs) },
  };
  const out = process.env['SABPF_OUT'];
  if (out) writeFileSync(join(out, 'bench-global.json'), JSON.stringify(result, null, 1));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  removePins(pinRoot);
}

main();
