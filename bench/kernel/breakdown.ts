// Guest side of `run.js --breakdown`: where file_open's run time goes. One
// program is attached to one cgroup, and bpf_stats gives its run time per
// invocation for opens of paths 2, 4 and 23 components deep under four
// configs that switch the parts of the check on one by one:
//   none       no trie and an allow posture: nothing to decide
//   walk       the path and the executable are walked, nothing is looked up
//              (fromSource is on, with no source trie)
//   miss       the walk, the root node, and a miss at the first component
//   hit        the walk and one lookup per component (rules sit on a
//              sibling of the opened file, so every directory has a node)
//   cold       hit, while an unconfined task renames a file in a loop: each
//              rename invalidates the directory cache, so most opens walk
//              and cache the directory again
// With the directory cache, miss and hit use it after the first open, and
// fillsPerRun is how often a check had to walk.
// Differences between depths give the cost per component of the walk and of
// a lookup. Builds (the one under test, and the comparison build) alternate
// measurement by measurement, so host load hits them alike; the minimum of
// the samples is the least disturbed one.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

import { ConfigFlag, Counter, Hook, type Config } from '../../compiler/layout.js';
import { cgroupId, removePins } from '../../enforcer/kernel/index.js';
import { Ids, Trie, configWith } from '../../test/vm/scenarios/entries.js';
import { loadObject, mapFd, type BenchObject } from './objects.js';
import { setConfig } from './rules.js';
import { nsPerRun, runStats, setBpfStats } from './stats.js';
import { median } from './summary.js';

const loopBin = process.env['SABPF_BENCH_LOOP'] ?? '';
const samples = Number(process.env['SABPF_BENCH_SAMPLES'] ?? '7');
const sampleSeconds = process.env['SABPF_BENCH_SAMPLE_SECONDS'] ?? '0.5';
const objectPath = process.env['SABPF_BENCH_OBJECT'] ?? 'enforcer/bpf/sabpf.bpf.o';
const comparePath = process.env['SABPF_BENCH_COMPARE'];
const cgRoot = '/sys/fs/cgroup/sabpf-breakdown';
const pinRoot = '/sys/fs/bpf/sabpf-breakdown';

const deepDir = `/tmp/breakdown/${Array.from({ length: 21 }, (_, i) => `d${i}`).join('/')}`;
const PATHS: Record<string, string> = {
  depth2: '/tmp/breakdown/f',
  depth4: '/tmp/breakdown/a/b/f',
  depth23: `${deepDir}/f`,
};

function config(fields: Partial<Config>): Buffer {
  return configWith({ hooks: Hook.fileOpen, ...fields });
}

interface Setup {
  object: BenchObject;
  cgroup: string;
  configs: Record<string, Buffer>;
}

function setUp(label: string, path: string): Setup {
  const object = loadObject(label, path, pinRoot);
  const ids = new Ids();
  const miss = new Trie(ids).rule('/srv/unrelated', 'exact', 'read', 'deny');
  const hit = new Trie(ids);
  for (const p of Object.values(PATHS)) hit.rule(p.replace(/f$/u, 'sibling'), 'exact', 'read', 'deny');
  const entries = [...miss.entries(), ...hit.entries()];
  object.addon.mapUpdateBatch(
    mapFd(object, 'sabpf_nodes'),
    Buffer.concat(entries.map(([k]) => k)),
    Buffer.concat(entries.map(([, v]) => v)),
    entries.length,
    0,
  );
  const cgroup = `${cgRoot}/${label}`;
  mkdirSync(cgroup, { recursive: true });
  return {
    object,
    cgroup,
    configs: {
      none: config({}),
      walk: config({ flags: ConfigFlag.hasFileSources }),
      miss: config({ fileRoot: miss.root }),
      hit: config({ fileRoot: hit.root }),
      cold: config({ fileRoot: hit.root }),
    },
  };
}

/** Returns the directory cache's fill counter summed over CPUs (0 for a build without it). */
function cacheFills(o: BenchObject): bigint {
  return o.addon.readPercpuU64(mapFd(o, 'sabpf_counters'), Counter.dirCacheFills).reduce((a, b) => a + b, 0n);
}

function main(): void {
  if (!loopBin) throw new Error('failed to find sabpf-bench-loop: set SABPF_BENCH_LOOP to its path in the guest');
  mkdirSync(`${deepDir}`, { recursive: true });
  mkdirSync('/tmp/breakdown/a/b', { recursive: true });
  for (const p of Object.values(PATHS)) writeFileSync(p, 'x');

  removePins(pinRoot);
  const setups = [setUp('after', objectPath)];
  if (comparePath) setups.push(setUp('before', comparePath));
  const links = setups.map((s) => {
    const fd = s.object.programs['sabpf_file_open']!;
    setConfig(s.object, cgroupId(s.cgroup), s.configs['none']!);
    return s.object.addon.attachCgroupFd(fd, s.cgroup);
  });

  const result: Record<string, Record<string, { min: number; median: number; fillsPerRun: number }>> = {};
  mkdirSync('/tmp/breakdown/churn', { recursive: true });
  writeFileSync('/tmp/breakdown/churn/r0', 'x');
  setBpfStats(true);
  for (const name of Object.keys(setups[0]!.configs)) {
    for (const s of setups) setConfig(s.object, cgroupId(s.cgroup), s.configs[name]!);
    const churn = name === 'cold' ? spawn(loopBin, ['churn', '3600', '/tmp/breakdown/churn'], { stdio: 'ignore' }) : undefined;
    for (const [depth, path] of Object.entries(PATHS)) {
      const values: number[][] = setups.map(() => []);
      const runs = setups.map(() => 0);
      const fills = setups.map(() => 0n);
      for (let i = 0; i < samples; i++) {
        setups.forEach((s, k) => {
          const fd = s.object.programs['sabpf_file_open']!;
          const before = runStats(fd);
          const fillsBefore = cacheFills(s.object);
          const r = spawnSync(loopBin, ['-c', s.cgroup, sampleSeconds, 'open', path], { encoding: 'utf8' });
          if (r.status !== 0) throw new Error(`failed to open ${path} in ${s.cgroup}: ${r.stderr || r.stdout}`);
          fills[k]! += cacheFills(s.object) - fillsBefore;
          const per = nsPerRun(before, runStats(fd));
          if (per) {
            values[k]!.push(per.ns);
            runs[k]! += per.runs;
          }
        });
      }
      setups.forEach((s, k) => {
        (result[s.object.label] ??= {})[`${name}.${depth}`] = {
          min: Math.round(Math.min(...values[k]!)),
          median: Math.round(median(values[k]!)),
          fillsPerRun: Number((Number(fills[k]!) / Math.max(runs[k]!, 1)).toFixed(3)),
        };
      });
    }
    churn?.kill();
  }
  setBpfStats(false);
  links.forEach((fd, k) => {
    setups[k]!.object.addon.detachLink(fd);
    setups[k]!.object.addon.closeFd(fd);
  });
  for (const s of setups) s.object.object.close();
  removePins(pinRoot);

  const text = JSON.stringify({ samples, sampleSeconds: Number(sampleSeconds), paths: PATHS, nsPerRun: result }, null, 1);
  if (process.env['SABPF_OUT']) writeFileSync(`${process.env['SABPF_OUT']}/bench-breakdown.json`, text);
  process.stdout.write(`${text}\n`);
}

main();
