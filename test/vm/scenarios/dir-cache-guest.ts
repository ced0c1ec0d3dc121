// Guest side of test/vm/dir-cache.test.ts: the directory cache of the path
// checks (enforcer/bpf/dir_cache.h) against everything that may make a
// cached directory state stale. Each step runs sabpf-probe once and keeps
// how the cache counters moved, so the host test can tell a hit from a
// fresh walk. It asserts nothing: the host test does.
//
//   node dir-cache-guest.js cgroup|global
//
// Output: one JSON object on stdout, steps by name: {rc, out, pid, hits,
// fills, events}.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { Hook } from '../../../compiler/layout.js';
import { cgroupId, loadPrograms, removePins, type KernelPrograms, type SabpfEvent } from '../../../enforcer/kernel/index.js';
import { Ids, Trie, configWith } from './entries.js';

const probeBin = process.env['SABPF_PROBE'] ?? '';
const raceBin = process.env['SABPF_RACE'] ?? '';
const d = '/tmp/dc';
const cgroup = '/sys/fs/cgroup/sabpf-dc/k1';

interface Step {
  rc: number | null;
  out: string;
  pid: number | undefined;
  hits: number;
  fills: number;
  fileHits: number;
  events: Array<{ hook: number; decision: number; flags: number; path: string }>;
}

const steps: Record<string, Step> = {};
const events: SabpfEvent[] = [];

function sh(script: string): void {
  const r = spawnSync('sh', ['-ec', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`failed to run setup command ${JSON.stringify(script)}: ${r.stderr}`);
}

/** Runs one sabpf-probe in the confined cgroup and keeps the cache counters' deltas. */
function step(k: KernelPrograms, name: string, ...args: string[]): void {
  stepArgv(k, name, probeBin, ['-c', cgroup, ...args]);
}

/** As step, on CPU 0 only, so that consecutive steps meet the same per-CPU config memo. */
function stepOnCpu0(k: KernelPrograms, name: string, ...args: string[]): void {
  stepArgv(k, name, 'taskset', ['-c', '0', probeBin, '-c', cgroup, ...args]);
}

function stepArgv(k: KernelPrograms, name: string, command: string, argv: string[]): void {
  const before = k.counters();
  const r = spawnSync(command, argv, { encoding: 'utf8' });
  const after = k.counters();
  steps[name] = {
    rc: r.status,
    out: r.stdout.trim(),
    pid: r.pid,
    hits: Number(after.dirCacheHits - before.dirCacheHits),
    fills: Number(after.dirCacheFills - before.dirCacheFills),
    fileHits: Number(after.fileCacheHits - before.fileCacheHits),
    events: [],
  };
}

/** Races of RACE_ITERATIONS renames; an unfixed cache lost within a few thousand. */
const RACE_ITERATIONS = '50000';

/** Runs dir-race.c in the confined cgroup with one checker thread. */
function race(k: KernelPrograms, name: string, args: string[]): void {
  const before = k.counters();
  const flags = args.filter((a) => a.startsWith('-'));
  const paths = args.filter((a) => !a.startsWith('-'));
  const r = spawnSync(raceBin, [...flags, '-c', cgroup, ...paths, RACE_ITERATIONS, '1'], { encoding: 'utf8' });
  const after = k.counters();
  steps[name] = {
    rc: r.status,
    out: `${r.stdout.trim()} ${r.stderr.trim()}`.trim(),
    pid: r.pid,
    hits: Number(after.dirCacheHits - before.dirCacheHits),
    fills: Number(after.dirCacheFills - before.dirCacheFills),
    fileHits: Number(after.fileCacheHits - before.fileCacheHits),
    events: [],
  };
}

/** Writes a policy into slot 0 (replacing every trie entry) and returns its config. */
function writePolicy(k: KernelPrograms, file: Trie, exec: Trie): Buffer {
  for (const map of ['sabpf_nodes', 'sabpf_long_nodes'] as const) for (const key of k.keys(map)) k.deleteElem(map, key);
  k.updateElems('sabpf_nodes', [...file.entries(), ...exec.entries()]);
  return configWith({ hooks: Hook.fileOpen | Hook.exec, fileRoot: file.root, execRoot: exec.root });
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  if (mode !== 'cgroup' && mode !== 'global') throw new Error(`failed to run mode ${JSON.stringify(mode)}: expected cgroup or global`);
  if (!probeBin) throw new Error('failed to find sabpf-probe: set SABPF_PROBE to its path in the guest');
  if (!raceBin) throw new Error('failed to find sabpf-race: set SABPF_RACE to its path in the guest');

  sh(`mkdir -p ${d}/pub ${d}/secret ${d}/a/b ${d}/mnt/m1 ${d}/bin
      for f in pub/f pub/g secret/x a/b/f top; do echo data > ${d}/$f; done
      cp /usr/bin/busybox ${d}/bin/denied && chmod +x ${d}/bin/denied
      mount -t tmpfs dc ${d}/mnt/m1 && echo data > ${d}/mnt/m1/f
      mkdir -p ${d}/ovl/lower/sub ${d}/ovl/upper ${d}/ovl/work ${d}/ovl/merged && echo data > ${d}/ovl/lower/sub/f
      mount -t overlay ovl -o lowerdir=${d}/ovl/lower,upperdir=${d}/ovl/upper,workdir=${d}/ovl/work ${d}/ovl/merged
      mkdir -p ${d}/race/secret ${d}/race/pub
      for f in secret/victim pub/victim; do echo data > ${d}/race/$f; done
      printf data > ${d}/race/pub/f && chmod 755 ${d}/race/*/*`);
  mkdirSync(cgroup, { recursive: true });

  const pins = `/sys/fs/bpf/sabpf-dc-${mode}`;
  removePins(pins);
  const k = loadPrograms({ mode, pinRoot: pins });
  const sub = k.subscribe((e) => events.push(e));
  const ids = new Ids();
  const file = new Trie(ids).rule(`${d}/secret`, 'subtree', 'read', 'deny');
  const exec = new Trie(ids).rule(`${d}/bin/denied`, 'exact', 'read', 'deny');
  k.setConfig(cgroupId(cgroup), writePolicy(k, file, exec));
  const links = mode === 'cgroup' ? k.attachContainer(cgroup) : k.attachGlobal();

  // A second file of a cached directory is a hit.
  step(k, 'warm.first', 'open', `${d}/pub/f`, 'r');
  step(k, 'warm.second', 'open', `${d}/pub/g`, 'r');

  // A denial decided from the cache still records the whole path.
  step(k, 'deny.first', 'open', `${d}/secret/x`, 'r');
  step(k, 'deny.second', 'open', `${d}/secret/x`, 'r');

  // A file looked up twice from its directory's entry gets a slot in it (its
  // directory has a trie node: the rule on secret sits below it).
  step(k, 'file.walk', 'open', `${d}/top`, 'r');
  step(k, 'file.dirHit', 'open', `${d}/top`, 'r');
  step(k, 'file.repeat', 'open', `${d}/top`, 'r');
  step(k, 'file.hit', 'open', `${d}/top`, 'r');
  step(k, 'deny.third', 'open', `${d}/secret/x`, 'r');
  step(k, 'deny.fileHit', 'open', `${d}/secret/x`, 'r');

  // The file's slot is not taken for another name of its inode, nor after a rename.
  sh(`ln ${d}/top ${d}/secret/toplink`);
  step(k, 'file.hardlink', 'open', `${d}/secret/toplink`, 'r');
  sh(`rm ${d}/secret/toplink && mv ${d}/top ${d}/secret/top`);
  step(k, 'file.renamed', 'open', `${d}/secret/top`, 'r');
  sh(`mv ${d}/secret/top ${d}/top`);

  // The cached directory renamed into the protected tree by an unconfined task.
  sh(`mv ${d}/pub ${d}/secret/pub`);
  step(k, 'rename.moved', 'open', `${d}/secret/pub/f`, 'r');
  sh(`mv ${d}/secret/pub ${d}/pub`);
  step(k, 'rename.back', 'open', `${d}/pub/f`, 'r');

  // An ancestor of the cached directory renamed.
  step(k, 'ancestor.warm', 'open', `${d}/a/b/f`, 'r');
  step(k, 'ancestor.hit', 'open', `${d}/a/b/f`, 'r');
  sh(`mv ${d}/a ${d}/secret/a`);
  step(k, 'ancestor.moved', 'open', `${d}/secret/a/b/f`, 'r');
  sh(`mv ${d}/secret/a ${d}/a`);

  // The cached directory's mount moved: same dentry, same mount, new path.
  step(k, 'mount.warm', 'open', `${d}/mnt/m1/f`, 'r');
  step(k, 'mount.hit', 'open', `${d}/mnt/m1/f`, 'r');
  sh(`mkdir -p ${d}/secret/m1 && mount -o move ${d}/mnt/m1 ${d}/secret/m1`);
  step(k, 'mount.moved', 'open', `${d}/secret/m1/f`, 'r');
  sh(`mount -o move ${d}/secret/m1 ${d}/mnt/m1`);
  step(k, 'mount.back', 'open', `${d}/mnt/m1/f`, 'r');

  // The cached directory seen through a bind mount inside the protected tree.
  sh(`mkdir -p ${d}/secret/bound && mount --bind ${d}/pub ${d}/secret/bound`);
  step(k, 'bind.warm', 'open', `${d}/pub/f`, 'r');
  step(k, 'bind.hit', 'open', `${d}/pub/f`, 'r');
  step(k, 'bind.viaSecret', 'open', `${d}/secret/bound/f`, 'r');
  step(k, 'bind.pubAgain', 'open', `${d}/pub/f`, 'r');
  sh(`umount ${d}/secret/bound`);

  // File and exec tables of one directory are cached apart.
  step(k, 'table.open', 'open', `${d}/bin/denied`, 'r');
  step(k, 'table.exec', 'exec', `${d}/bin/denied`);
  step(k, 'table.execAgain', 'exec', `${d}/bin/denied`);

  // A new program in the same slot, with the same root id: the config write bumps the epoch.
  step(k, 'epoch.warm', 'open', `${d}/pub/f`, 'r');
  step(k, 'epoch.hit', 'open', `${d}/pub/f`, 'r');
  const ids2 = new Ids();
  const file2 = new Trie(ids2).rule(`${d}/pub`, 'subtree', 'read', 'deny');
  const exec2 = new Trie(ids2).rule(`${d}/bin/denied`, 'exact', 'read', 'deny');
  k.setConfig(cgroupId(cgroup), writePolicy(k, file2, exec2));
  step(k, 'epoch.replaced', 'open', `${d}/pub/f`, 'r');

  // Each CPU keeps the last config it found until the epoch moves, so a
  // config written without a bump (setConfig always bumps) is not seen on a
  // CPU that found the old one, until the next bump. The new config differs
  // only in its file posture: tries and cached directories stay the same.
  const memoKey = Buffer.alloc(8);
  memoKey.writeBigUInt64LE(cgroupId(cgroup));
  const postureDeny = configWith({ hooks: Hook.fileOpen | Hook.exec, fileRoot: file2.root, execRoot: exec2.root, postureDeny: [1, 0, 0] });
  stepOnCpu0(k, 'memo.before', 'open', `${d}/a/b/f`, 'r');
  k.updateElem('sabpf_configs', memoKey, postureDeny);
  stepOnCpu0(k, 'memo.stale', 'open', `${d}/a/b/f`, 'r');
  k.setConfig(cgroupId(cgroup), postureDeny);
  stepOnCpu0(k, 'memo.bumped', 'open', `${d}/a/b/f`, 'r');
  k.setConfig(cgroupId(cgroup), configWith({ hooks: Hook.fileOpen | Hook.exec, fileRoot: file2.root, execRoot: exec2.root }));

  // A container's image is an overlay mount: its directories are cached too.
  step(k, 'overlay.warm', 'open', `${d}/ovl/merged/sub/f`, 'r');
  step(k, 'overlay.hit', 'open', `${d}/ovl/merged/sub/f`, 'r');

  // Entries expire: after the time to live, the same open walks again.
  step(k, 'ttl.warm', 'open', `${d}/a/b/f`, 'r');
  step(k, 'ttl.hit', 'open', `${d}/a/b/f`, 'r');
  await sleep(10_500);
  step(k, 'ttl.expired', 'open', `${d}/a/b/f`, 'r');

  // A file renamed back and forth while it is checked (dir-race.c): reads
  // and execs under race/secret are denied, and must stay so.
  const ids3 = new Ids();
  const file3 = new Trie(ids3).rule(`${d}/race/secret`, 'subtree', 'read', 'deny');
  const exec3 = new Trie(ids3).rule(`${d}/race/secret`, 'subtree', 'read', 'deny');
  k.setConfig(cgroupId(cgroup), writePolicy(k, file3, exec3));
  const secret = `${d}/race/secret`;
  const pub = `${d}/race/pub`;
  race(k, 'race.read', [secret, pub, `${secret}/victim`]);
  race(k, 'race.exec', ['-x', secret, pub, `${secret}/victim`]);
  sh(`mv ${pub}/f ${secret}/f`);
  race(k, 'race.allowedRead', ['-r', pub, secret, `${pub}/victim`]);

  await sleep(1000);
  for (const s of Object.values(steps)) {
    s.events = events.filter((e) => e.pid === s.pid).map((e) => ({ hook: e.hook, decision: e.decision, flags: e.flags, path: e.path }));
  }
  const result = {
    mode: k.mode,
    variant: k.variant,
    sameRoot: file.root === file2.root,
    counters: Object.fromEntries(Object.entries(k.counters()).map(([name, n]) => [name, n.toString()])),
    steps,
  };
  sub.stop();
  k.detach(links);
  k.close();
  removePins(pins);
  sh(`umount ${d}/mnt/m1 ${d}/ovl/merged`);

  const text = JSON.stringify(result, null, 1);
  const out = process.env['SABPF_OUT'];
  if (out) writeFileSync(`${out}/dir-cache-${mode}.json`, text);
  process.stdout.write(`${text}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
