// Guest side of the node-wide benchmark (bench/kernel/global-run.ts boots
// the VM). The global and legacy objects run for every task of the node, so
// two costs matter: a confined container's open, and everyone else's.
//
// One build is loaded (SABPF_BENCH_OBJECT), with the 10,000-rule policy of
// rules.ts selecting cgroup "confined"; only file_open is attached. Then:
//   1. With kernel.bpf_stats_enabled, the program's mean run time per open
//      in the confined cgroup and in an unconfined one.
//   2. With statistics off, open+close rates of the unconfined cgroup with
//      the program attached and detached, alternating for
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
const cgRoot = '/sys/fs/cgroup/sabpf-bench-global';
const pinRoot = '/sys/fs/bpf/sabpf-bench-global';

// The measured loop: open+close of the target, timed inside the process so
// that node's start-up is not counted. Prints nanoseconds per open+close.
const loopScript = `const fs=require('fs');const n=${opens};for(let i=0;i<500;i++)fs.closeSync(fs.openSync('${BENCH_TARGET}','r'));const t=process.hrtime.bigint();for(let i=0;i<n;i++)fs.closeSync(fs.openSync('${BENCH_TARGET}','r'));console.log(Number(process.hrtime.bigint()-t)/n)`;

/** Runs the loop in a cgroup and returns nanoseconds per open+close. */
function openLoop(cgroup: string): number {
  const r = spawnSync('sh', ['-c', `echo $$ >${cgroup}/cgroup.procs && exec node -e "${loopScript}"`], { encoding: 'utf8' });
  const ns = Number(r.stdout.trim());
  if (r.status !== 0 || !Number.isFinite(ns)) {
    throw new Error(`failed to run the open loop in ${cgroup}: exit ${r.status}: ${r.stdout}${r.stderr}`);
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
  const prog = o.programs['sabpf_file_open'];
  if (prog === undefined) throw new Error(`failed to find sabpf_file_open in ${objectPath}: rebuild enforcer/bpf`);
  const link = o.object.attachGlobal('sabpf_file_open');

  // 1. Program run time per open.
  setBpfStats(true);
  const perRun = (cgroup: string): number | undefined => {
    const before = runStats(prog);
    openLoop(cgroup);
    return nsPerRun(before, runStats(prog))?.ns;
  };
  const programNs = { confined: perRun(confined), unconfined: perRun(unconfined) };
  setBpfStats(false);

  // 2. The unconfined task's open+close, attached against detached. A
  // tracing program attaches once per load (a second attach after a detach
  // fails with ENOENT), so each round attaches a fresh load.
  o.addon.closeFd(link);
  const ratios: number[] = [];
  const attachedNs: number[] = [];
  const detachedNs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const fresh = loadObject(`round${round}`, objectPath, pinRoot);
    const attachedRun = (): number => {
      const roundLink = fresh.object.attachGlobal('sabpf_file_open');
      const ns = openLoop(unconfined);
      fresh.addon.closeFd(roundLink);
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
    opens,
    rounds,
    programNsPerOpen: programNs,
    unconfined: { ratio: spread(ratios), attachedNs: spread(attachedNs), detachedNs: spread(detachedNs) },
  };
  const out = process.env['SABPF_OUT'];
  if (out) writeFileSync(join(out, 'bench-global.json'), JSON.stringify(result, null, 1));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  removePins(pinRoot);
}

main();
