// Guest side of test/vm/hooks.test.ts: runs inside the VM as root, loads the
// sabpf programs through enforcer/kernel, fills the maps with hand-built
// entries, runs real system calls in and out of confined cgroups and prints
// what it saw as JSON. It asserts nothing: the host test does.
//
//   node hooks-guest.js main    cgroup mode: every hook family; leaves c1 pinned
//   node hooks-guest.js adopt   a new process re-adopts the pins, then detaches
//   node hooks-guest.js global  global-mode object (the fallback for old kernels)
//   node hooks-guest.js drops   a full ring buffer counts lost records; addon errors
//   node hooks-guest.js legacy         auto mode on a kernel without bpf_loop (Debian
//                                      5.10): the legacy global object, every hook family
//   node hooks-guest.js legacy-forced  the same with --mode legacy, on any kernel
//   node hooks-guest.js flip           the legacy object's node-wide links replaced
//                                      60 times while tasks loop through the hooks
//
// Output: one JSON object on stdout; probes are {rc, out, err, pid, events}.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

import { ConfigFlag, IpProto, NetOp, Table, encodeSourceRootKey, encodeU32 } from '../../../compiler/layout.js';
import { loadAddon } from '../../../enforcer/kernel/addon.js';
import { ALL_HOOKS, cgroupId, loadPrograms, removePins, type KernelPrograms, type SabpfEvent } from '../../../enforcer/kernel/index.js';
import { Ids, Trie, configWith, netEntries } from './entries.js';

const probeBin = process.env['SABPF_PROBE'] ?? '';
const cgRoot = '/sys/fs/cgroup/sabpf-test';
const pinRoot = '/sys/fs/bpf/sabpf';
const t = '/tmp/t';

interface Probe {
  rc: number | null;
  out: string;
  err: string;
  pid: number | undefined;
  events: Array<Record<string, unknown>>;
}

const probes: Record<string, Probe> = {};
const events: SabpfEvent[] = [];

function sh(script: string): string {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`failed to run setup command ${JSON.stringify(script)}: ${r.stderr}`);
  return r.stdout;
}

/** Runs sabpf-probe (optionally inside a cgroup) and records the result under name. */
function probe(name: string, cgroup: string | undefined, ...args: string[]): Probe {
  return probeIn(process.cwd(), name, cgroup, ...args);
}

function probeIn(cwd: string, name: string, cgroup: string | undefined, ...args: string[]): Probe {
  const argv = cgroup ? ['-c', `${cgRoot}/${cgroup}`, ...args] : args;
  const r = spawnSync(probeBin, argv, { encoding: 'utf8', cwd });
  const result: Probe = { rc: r.status, out: r.stdout.trim(), err: r.stderr.trim(), pid: r.pid, events: [] };
  probes[name] = result;
  return result;
}

/** Like probe, with a shell: for chdir, shells and busybox tools inside a cgroup. */
function shellProbe(name: string, cgroup: string, script: string): Probe {
  return probe(name, cgroup, 'exec', '/bin/sh', '-c', script);
}

function eventJson(e: SabpfEvent): Record<string, unknown> {
  return {
    hook: e.hook,
    access: e.access,
    decision: e.decision,
    flags: e.flags,
    policy: e.policy,
    netOp: e.netOp,
    port: e.port,
    proto: e.proto,
    family: e.family,
    addr: Buffer.from(e.addr).toString('hex'),
    comm: e.comm,
    path: e.path,
    pathLen: e.path.length,
    exe: e.exe,
    pid: e.pid,
    ppid: e.ppid,
    uid: e.uid,
    cgroupId: e.cgroupId.toString(),
    timeBootNs: e.timeBootNs.toString(),
  };
}

/** Gives each probe the events of its process (the pid survives execve). */
function assignEvents(): void {
  for (const p of Object.values(probes)) {
    p.events = events.filter((e) => e.pid === p.pid).map(eventJson);
  }
}

function counters(k: KernelPrograms): Record<string, string> {
  return Object.fromEntries(Object.entries(k.counters()).map(([name, n]) => [name, n.toString()]));
}

/** Instructions the verifier processed for each program, by hook (0 before 5.16). */
function verifiedInsns(k: KernelPrograms): Record<string, number> {
  const addon = loadAddon();
  return Object.fromEntries(ALL_HOOKS.map((hook) => [hook, addon.progInfo(k.program(hook)).verifiedInsns]));
}

// Files, links and the deep tree the probes act on.
const deepName = 'd'.repeat(24);
// A component over 31 bytes: its node is in sabpf_long_nodes, not sabpf_nodes.
const longDir = `${t}/${'l'.repeat(40)}`;
// The two names at the boundary: 31 bytes (sabpf_nodes) and 32 (sabpf_long_nodes).
const edgeShort = `${t}/${'m'.repeat(31)}`;
const edgeLong = `${t}/${'n'.repeat(32)}`;
const deepDir = `${t}/deep/${Array.from({ length: 60 }, () => deepName).join('/')}`;

function setupFiles(): void {
  sh(`mkdir -p ${t}/ro ${t}/kids/sub ${t}/bin ${t}/secretdir ${t}/links ${t}/mv/dir ${t}/nest/a ${t}/swap ${t}/wo ${t}/ro/empty ${deepDir}
      for f in secret.txt plain.txt audited.txt fs.txt ro/file ro/moved kids/a kids/sub/b secretdir/s.txt secretdir/moved.txt mv/one mv/two mv/three mv/g-src wo/target.txt ro/audited ro/outside ro/global ro/legacy nest/a/secret; do echo data > ${t}/$f; done
      mkdir -p ${longDir} && echo data > ${longDir}/secret.txt && echo data > ${longDir}/plain.txt
      for d in ${edgeShort} ${edgeLong}; do mkdir -p $d && echo data > $d/secret.txt && echo data > $d/plain.txt; done
      echo deep > ${deepDir}/file; echo deep > ${deepDir}/other
      ln -s ${t}/secret.txt ${t}/link
      ln ${t}/secret.txt ${t}/hard
      ln ${t}/secretdir/s.txt ${t}/secretdir/hard
      cp /usr/bin/busybox ${t}/bin/denied
      cp /usr/bin/busybox ${t}/bin/sh2
      ln -s ${t}/bin/denied ${t}/bin/alias
      printf '#!${t}/bin/sh2\\necho script-ran\\n' > ${t}/script-denied.sh
      printf '#!/bin/sh\\necho script-ran\\n' > ${t}/script-ok.sh
      chmod +x ${t}/bin/* ${t}/script-denied.sh ${t}/script-ok.sh`);
  // A path deeper than SABPF_MAX_DEPTH (2048): built one relative step at a
  // time, since its absolute name is longer than PATH_MAX.
  mkdirSync(`${t}/toodeep`, { recursive: true });
  const made = spawnSync(probeBin, ['deep', '2060', 'f', 'c'], { cwd: `${t}/toodeep`, encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`failed to build the 2060-level tree under ${t}/toodeep: ${made.stdout}${made.stderr}`);
}

function makeCgroup(name: string): string {
  const path = `${cgRoot}/${name}`;
  mkdirSync(path, { recursive: true });
  return path;
}

/** Policy 0 as the maps of every cgroup-mode scenario see it. */
function writePolicy(k: KernelPrograms): { file: Trie; exec: Trie; source: Trie; usrBinOnly: Trie } {
  const ids = new Ids();
  const file = new Trie(ids)
    .rule(`${t}/secret.txt`, 'exact', 'read', 'deny')
    .rule(`${t}/ro`, 'subtree', 'write', 'deny')
    .rule(`${t}/kids`, 'children', 'read', 'deny')
    .rule(`${t}/secretdir`, 'subtree', 'read', 'deny')
    .rule(`${t}/nest/a/secret`, 'exact', 'read', 'deny')
    .rule(`${t}/wo/target.txt`, 'exact', 'read', 'deny')
    .rule(`${t}/ghost/key`, 'exact', 'write', 'deny')
    .rule(`${t}/audited.txt`, 'exact', 'read', 'audit')
    .rule(`${deepDir}/file`, 'exact', 'read', 'deny')
    .rule(`${longDir}/secret.txt`, 'exact', 'read', 'deny')
    .rule(`${edgeShort}/secret.txt`, 'exact', 'read', 'deny')
    .rule(`${edgeLong}/secret.txt`, 'exact', 'read', 'deny');
  const exec = new Trie(ids).rule(`${t}/bin/denied`, 'exact', 'read', 'deny').rule(`${t}/bin/sh2`, 'exact', 'read', 'deny');
  // For a deny posture: only what is under /usr/bin may run.
  const usrBinOnly = new Trie(ids).rule('/usr/bin', 'subtree', 'read', 'allow');

  // fromSource: busybox (the image's cat) may not read fs.txt, other programs may.
  const source = new Trie(ids).source('/usr/bin/busybox', 7);
  const busyboxFiles = new Trie(ids).rule(`${t}/fs.txt`, 'exact', 'read', 'deny');

  const net = netEntries(ids, [
    { op: NetOp.connect, proto: IpProto.tcp, ip: '127.0.0.1', cidr: 32, port: 9999, action: 'deny' },
    { op: NetOp.connect, proto: IpProto.tcp, ip: '127.0.0.1', cidr: 32, port: 8080, action: 'allow' },
    { op: NetOp.bind, proto: IpProto.udp, ip: '0.0.0.0', cidr: 32, port: 5353, action: 'deny' },
    { op: NetOp.connect, proto: IpProto.udp, ip: '127.0.0.1', cidr: 32, port: 9998, action: 'deny' },
    { op: NetOp.connect, proto: IpProto.tcp, ip: '::1', cidr: 128, port: 9996, action: 'deny' },
    { op: NetOp.bind, proto: IpProto.udp, ip: '::', cidr: 128, port: 5355, action: 'deny' },
  ]);

  const tries = [file, exec, usrBinOnly, source, busyboxFiles];
  k.updateElems(
    'sabpf_nodes',
    tries.flatMap((trie) => trie.entries()),
  );
  k.updateElems(
    'sabpf_long_nodes',
    tries.flatMap((trie) => trie.entries('sabpf_long_nodes')),
  );
  k.updateElem('sabpf_source_roots', encodeSourceRootKey(0, 7, Table.file), encodeU32(busyboxFiles.root));
  k.updateElems('sabpf_net_prefixes', net.prefixes);
  k.updateElems('sabpf_ports', net.ports);
  return { file, exec, source, usrBinOnly };
}

async function phaseMain(): Promise<Record<string, unknown>> {
  setupFiles();
  removePins(pinRoot);
  const k = loadPrograms({ mode: 'cgroup', pinRoot });
  const sub = k.subscribe((e) => events.push(e));
  const { file, exec, source, usrBinOnly } = writePolicy(k);
  const rules = { fileRoot: file.root, execRoot: exec.root, sourceRoot: source.root };
  const raw = { deny: 1, audit: 0, allow: 0 };

  // c1 enforces, c2 is the same policy in audit mode, c3 denies exec by
  // posture, c4 is attached with no config (fail closed).
  const c1 = makeCgroup('c1');
  const c2 = makeCgroup('c2');
  const c3 = makeCgroup('c3');
  const c4 = makeCgroup('c4');
  k.setConfig(cgroupId(c1), configWith({ ...rules, flags: ConfigFlag.hasFileSources, rawSocket: raw, packetSocket: raw }));
  k.setConfig(cgroupId(c2), configWith({ ...rules, enforce: 0, rawSocket: raw }));
  k.setConfig(cgroupId(c3), configWith({ execRoot: usrBinOnly.root, postureDeny: [0, 1, 0] }));
  const links = [c1, c2, c3, c4].map((cg) => k.attachContainer(cg));
  const nodeWide = k.attachGlobal();

  // A child cgroup of c1 (a container's own sub-cgroup) inherits c1's
  // programs and must find c1's config as its nearest configured ancestor.
  makeCgroup('c1/child');

  // A listener outside every cgroup, for the allowed connects. The kernel
  // completes handshakes into the backlog while spawnSync blocks this loop.
  const listener = createServer((socket) => socket.destroy());
  await new Promise<void>((resolveListen) => listener.listen(8080, '127.0.0.1', resolveListen));

  // File opens.
  probe('file.c1.plain', 'c1', 'open', `${t}/plain.txt`, 'r');
  probe('file.c1.secret', 'c1', 'open', `${t}/secret.txt`, 'r');
  probe('file.c1.secretWrite', 'c1', 'open', `${t}/secret.txt`, 'w');
  probe('file.c1.roRead', 'c1', 'open', `${t}/ro/file`, 'r');
  probe('file.c1.roWrite', 'c1', 'open', `${t}/ro/file`, 'w');
  probe('file.c1.roReadWrite', 'c1', 'open', `${t}/ro/file`, 'rw');
  probe('file.c1.kidsDirect', 'c1', 'open', `${t}/kids/a`, 'r');
  probe('file.c1.kidsNested', 'c1', 'open', `${t}/kids/sub/b`, 'r');
  probe('file.c1.symlink', 'c1', 'open', `${t}/link`, 'r');
  probe('file.c1.hardlinkOutside', 'c1', 'open', `${t}/hard`, 'r');
  probe('file.c1.hardlinkInside', 'c1', 'open', `${t}/secretdir/hard`, 'r');
  probe('file.c1.openat', 'c1', 'openat', t, 'secret.txt', 'r');
  probe('file.c1.openatPlain', 'c1', 'openat', t, 'plain.txt', 'r');
  shellProbe('file.c1.chdirCat', 'c1', `cd ${t} && cat secret.txt`);
  probe('file.c1.chroot', 'c1', 'chroot', t, '/secret.txt', 'r');
  shellProbe('file.c1.chdirCatPlain', 'c1', `cd ${t}/ro && cat ../plain.txt`);
  probe('file.c1.deep', 'c1', 'open', `${deepDir}/file`, 'r');
  probe('file.c1.deepOther', 'c1', 'open', `${deepDir}/other`, 'r');
  probe('file.c1.longName', 'c1', 'open', `${longDir}/secret.txt`, 'r');
  probe('file.c1.longNamePlain', 'c1', 'open', `${longDir}/plain.txt`, 'r');
  probe('file.c1.edgeShort', 'c1', 'open', `${edgeShort}/secret.txt`, 'r');
  probe('file.c1.edgeShortPlain', 'c1', 'open', `${edgeShort}/plain.txt`, 'r');
  probe('file.c1.edgeLong', 'c1', 'open', `${edgeLong}/secret.txt`, 'r');
  probe('file.c1.edgeLongPlain', 'c1', 'open', `${edgeLong}/plain.txt`, 'r');
  probeIn(`${t}/toodeep`, 'file.c1.tooDeep', 'c1', 'deep', '2060', 'f', 'r');
  shellProbe('file.c1.sourceCat', 'c1', `cat ${t}/fs.txt`);
  probe('file.c1.sourceProbe', 'c1', 'open', `${t}/fs.txt`, 'r');
  probe('file.c1.audited', 'c1', 'open', `${t}/audited.txt`, 'r');
  probe('file.c1child.secret', 'c1/child', 'open', `${t}/secret.txt`, 'r');
  probe('file.c1child.plain', 'c1/child', 'open', `${t}/plain.txt`, 'r');
  probe('file.outside.secret', undefined, 'open', `${t}/secret.txt`, 'r');
  probe('file.outside.deep', undefined, 'open', `${deepDir}/file`, 'r');
  probe('file.c2.secret', 'c2', 'open', `${t}/secret.txt`, 'r');
  probe('file.c2.audited', 'c2', 'open', `${t}/audited.txt`, 'r');
  probe('file.c4.noConfig', 'c4', 'open', `${t}/plain.txt`, 'r');

  // Hard links made inside the cgroups (the ones made by setupFiles, outside
  // every cgroup, are the file.c1.hardlink probes above).
  probe('link.c1.secret', 'c1', 'link', `${t}/secret.txt`, `${t}/links/secret`);
  probe('link.c1.secretReadBack', 'c1', 'open', `${t}/links/secret`, 'r');
  probe('link.c1.roFile', 'c1', 'link', `${t}/ro/file`, `${t}/links/ro`);
  probe('link.c1.intoRo', 'c1', 'link', `${t}/plain.txt`, `${t}/ro/plain`);
  probe('link.c1.kids', 'c1', 'link', `${t}/kids/a`, `${t}/links/kid`);
  probe('link.c1.plain', 'c1', 'link', `${t}/plain.txt`, `${t}/links/plain`);
  probe('link.c1.plainReadBack', 'c1', 'open', `${t}/links/plain`, 'r');
  probe('link.c1.audited', 'c1', 'link', `${t}/audited.txt`, `${t}/links/audited`);
  shellProbe('link.c1.sourceLn', 'c1', `ln ${t}/fs.txt ${t}/links/fs-busybox`);
  probe('link.c1.sourceProbe', 'c1', 'link', `${t}/fs.txt`, `${t}/links/fs-probe`);
  probe('link.c1child.secret', 'c1/child', 'link', `${t}/secret.txt`, `${t}/links/secret-child`);
  probe('link.outside.secret', undefined, 'link', `${t}/secret.txt`, `${t}/links/secret-outside`);
  probe('link.c2.secret', 'c2', 'link', `${t}/secret.txt`, `${t}/links/secret-audit`);
  probe('link.c4.noConfig', 'c4', 'link', `${t}/plain.txt`, `${t}/links/plain-c4`);

  // Renames, judged as links: the old name for read and write, the new name
  // for write, and for read too when an exchange moves its file to the old name.
  probe('rename.c1.outOfSecretdir', 'c1', 'rename', `${t}/secretdir/moved.txt`, `${t}/links/moved.txt`);
  probe('rename.c1.readMoved', 'c1', 'open', `${t}/links/moved.txt`, 'r');
  probe('rename.c1.secretdirItself', 'c1', 'rename', `${t}/secretdir`, `${t}/links/secretdir`);
  probe('rename.c1.outOfRo', 'c1', 'rename', `${t}/ro/moved`, `${t}/mv/from-ro`);
  probe('rename.c1.intoRo', 'c1', 'rename', `${t}/mv/one`, `${t}/ro/one`);
  probe('rename.c1.exchangeReadProtected', 'c1', 'exchange', `${t}/mv/two`, `${t}/wo/target.txt`);
  probe('rename.c1.overReadProtected', 'c1', 'rename', `${t}/mv/two`, `${t}/wo/target.txt`);
  probe('rename.c1.readReplaced', 'c1', 'open', `${t}/wo/target.txt`, 'r');
  probe('rename.c1.plain', 'c1', 'rename', `${t}/mv/three`, `${t}/mv/four`);
  probe('rename.c1.plainReadBack', 'c1', 'open', `${t}/mv/four`, 'r');
  probe('rename.c2.outOfSecretdir', 'c2', 'rename', `${t}/secretdir/s.txt`, `${t}/links/s-audit.txt`);
  // A directory carries the paths below it: one with rules below stays put.
  probe('rename.c1.parentOfRule', 'c1', 'rename', `${t}/nest`, `${t}/nest-moved`);
  probe('rename.c1.dirWithoutRules', 'c1', 'rename', `${t}/mv/dir`, `${t}/mv/dir2`);
  // Nor does one move in above rules, by a rename or by an exchange.
  probe('rename.c1.dirOntoRules', 'c1', 'rename', `${t}/swap`, `${t}/ghost`);
  probe('rename.c1.exchangeWithRules', 'c1', 'exchange', `${t}/swap`, `${t}/nest`);
  probe('rename.c2.parentOfRule', 'c2', 'rename', `${t}/nest`, `${t}/nest-audit`);

  // Names and contents changed without an open for write (node-wide
  // programs): each is a write at the name. ro is write-protected.
  probe('write.c1.unlinkRo', 'c1', 'unlink', `${t}/ro/file`);
  probe('write.c1.truncateRo', 'c1', 'truncate', `${t}/ro/file`);
  probe('write.c1.createRo', 'c1', 'create', `${t}/ro/new`);
  probe('write.c1.mknodRo', 'c1', 'mknod', `${t}/ro/fifo`);
  probe('write.c1.mkdirRo', 'c1', 'mkdir', `${t}/ro/dir`);
  probe('write.c1.rmdirRo', 'c1', 'rmdir', `${t}/ro/empty`);
  probe('write.c1.symlinkRo', 'c1', 'symlink', `${t}/plain.txt`, `${t}/ro/link`);
  probe('write.c1.chmodRo', 'c1', 'chmod', `${t}/ro/file`);
  probe('write.c1child.unlinkRo', 'c1/child', 'unlink', `${t}/ro/file`);
  probe('write.c1.createPlain', 'c1', 'create', `${t}/mv/created`);
  probe('write.c1.truncatePlain', 'c1', 'truncate', `${t}/mv/created`);
  probe('write.c1.unlinkPlain', 'c1', 'unlink', `${t}/mv/created`);
  probe('write.c1.mknodPlain', 'c1', 'mknod', `${t}/mv/fifo`);
  probe('write.c1.mkdirPlain', 'c1', 'mkdir', `${t}/mv/newdir`);
  probe('write.c1.rmdirPlain', 'c1', 'rmdir', `${t}/mv/newdir`);
  probe('write.c1.symlinkPlain', 'c1', 'symlink', `${t}/links`, `${t}/mv/sym`);
  probe('write.c1.chmodPlain', 'c1', 'chmod', `${t}/plain.txt`);
  // A symlink where rules lie below (ghost/key) would lead those paths elsewhere.
  probe('write.c1.symlinkOntoRules', 'c1', 'symlink', `${t}/links`, `${t}/ghost`);
  probe('rename.c1.symlinkOntoRules', 'c1', 'rename', `${t}/mv/sym`, `${t}/ghost`);
  probe('link.c1.symlinkOntoRules', 'c1', 'link', `${t}/mv/sym`, `${t}/ghost`);
  // O_TRUNC empties a file opened for read: file_open judges it as a write.
  probe('write.c1.readTruncRo', 'c1', 'open', `${t}/ro/file`, 't');
  probe('write.c2.unlinkRo', 'c2', 'unlink', `${t}/ro/audited`);
  probe('write.outside.unlinkRo', undefined, 'unlink', `${t}/ro/outside`);

  // Exec.
  probe('exec.c1.allowed', 'c1', 'exec', '/bin/true');
  probe('exec.c1.denied', 'c1', 'exec', `${t}/bin/denied`);
  probe('exec.c1.symlink', 'c1', 'exec', `${t}/bin/alias`);
  probe('exec.c1.scriptDeniedInterpreter', 'c1', 'exec', `${t}/script-denied.sh`);
  probe('exec.c1.scriptOk', 'c1', 'exec', `${t}/script-ok.sh`);
  probe('exec.outside.denied', undefined, 'exec', `${t}/bin/denied`, '--help');
  probe('exec.c2.denied', 'c2', 'exec', `${t}/bin/denied`, '--help');
  probe('exec.c3.posture', 'c3', 'exec', '/bin/true');
  probe('exec.c3.postureDenied', 'c3', 'exec', `${t}/bin/denied`, '--help');

  // Network.
  probe('net.c1.connectAllowed', 'c1', 'connect', '127.0.0.1', '8080', 'tcp');
  probe('net.c1.connectDenied', 'c1', 'connect', '127.0.0.1', '9999', 'tcp');
  probe('net.c1.connectMappedDenied', 'c1', 'connect', '::ffff:127.0.0.1', '9999', 'tcp');
  probe('net.c1.connectMappedAllowed', 'c1', 'connect', '::ffff:127.0.0.1', '8080', 'tcp');
  probe('net.c1.mptcpDenied', 'c1', 'connect', '127.0.0.1', '9999', 'mptcp');
  probe('net.c1.mptcpAllowed', 'c1', 'connect', '127.0.0.1', '8080', 'mptcp');
  probe('net.c1.sendtoDenied', 'c1', 'sendto', '127.0.0.1', '9998');
  probe('net.c1.sendtoAllowed', 'c1', 'sendto', '127.0.0.1', '9997');
  probe('net.c1.sendtoUnspecDenied', 'c1', 'sendto-unspec', '127.0.0.1', '9998');
  probe('net.c1.tfoDenied', 'c1', 'tfo', '127.0.0.1', '9999');

  // The unspecified address reaches a local address: the loopback rules judge it too.
  probe('net.c1.connectAnyDenied', 'c1', 'connect', '0.0.0.0', '9999', 'tcp');
  probe('net.c1.connectAnyAllowed', 'c1', 'connect', '0.0.0.0', '8080', 'tcp');
  probe('net.c1.connectMappedAnyDenied', 'c1', 'connect', '::ffff:0.0.0.0', '9999', 'tcp');
  probe('net.c1.connectAny6Denied', 'c1', 'connect', '::', '9996', 'tcp');
  probe('net.c1.connectAny6MappedBoundDenied', 'c1', 'connect-from', '::ffff:127.0.0.1', '::', '9999');
  probe('net.c1.sendtoAnyDenied', 'c1', 'sendto', '0.0.0.0', '9998');
  probe('net.outside.connectAny', undefined, 'connect', '0.0.0.0', '8080', 'tcp');
  probe('net.outside.connectAny6MappedBound', undefined, 'connect-from', '::ffff:127.0.0.1', '::', '8080');
  probe('net.c1.tfoAllowed', 'c1', 'tfo', '127.0.0.1', '8080');
  probe('net.outside.sendtoDenied', undefined, 'sendto', '127.0.0.1', '9998');
  probe('net.c1.bindDenied', 'c1', 'bind', '0.0.0.0', '5353', 'udp');
  probe('net.c1.bindAllowed', 'c1', 'bind', '0.0.0.0', '5354', 'udp');
  probe('net.c1.bindDualDenied', 'c1', 'bind', '::', '5353', 'udp');
  probe('net.c1.bindDualAllowed', 'c1', 'bind', '::', '5354', 'udp');
  probe('net.c1.bindV6onlyAllowed', 'c1', 'bind-v6only', '::', '5353', 'udp');
  probe('net.c1.bindV6onlyDenied', 'c1', 'bind-v6only', '::', '5355', 'udp');
  probe('net.c1.raw4', 'c1', 'raw4');
  probe('net.c1.raw6', 'c1', 'raw6');
  probe('net.c1.packet', 'c1', 'packet');
  probe('net.c1child.connectDenied', 'c1/child', 'connect', '127.0.0.1', '9999', 'tcp');
  probe('net.c1child.raw4', 'c1/child', 'raw4');
  probe('net.outside.connectDenied', undefined, 'connect', '127.0.0.1', '9999', 'tcp');
  probe('net.outside.raw4', undefined, 'raw4');
  probe('net.c2.connectDenied', 'c2', 'connect', '127.0.0.1', '9999', 'tcp');
  probe('net.c2.raw4', 'c2', 'raw4');

  // Let the ring-buffer thread hand over the last records.
  await sleep(1500);
  assignEvents();
  const result = {
    phase: 'main',
    adopted: k.adopted,
    mode: k.mode,
    verifiedInsns: verifiedInsns(k),
    c1: cgroupId(c1).toString(),
    counters: counters(k),
    subscription: Object.fromEntries(Object.entries(sub.stats()).map(([n, v]) => [n, String(v)])),
    totalEvents: events.length,
    probes,
  };

  // Leave c1 attached and pinned for the adopt phase, and detach the others.
  sub.stop();
  listener.close();
  for (const l of links.slice(1)) k.detach(l);
  k.release(links[0]!);
  k.release(nodeWide);
  k.close();
  return result;
}

async function phaseAdopt(): Promise<Record<string, unknown>> {
  const c1 = `${cgRoot}/c1`;

  // No enforcer runs now: the pins alone must keep c1 confined.
  probe('orphan.c1.secret', 'c1', 'open', `${t}/secret.txt`, 'r');
  probe('orphan.c1.plain', 'c1', 'open', `${t}/plain.txt`, 'r');
  probe('orphan.c1.unlinkRo', 'c1', 'unlink', `${t}/ro/file`);

  // A new enforcer adopts programs, maps and links instead of reloading.
  const k = loadPrograms({ mode: 'cgroup', pinRoot });
  const sub = k.subscribe((e) => events.push(e));
  const pinned = k.pinnedContainers().map(String);
  const links = k.adoptContainer(cgroupId(c1));
  const nodeWideLinks = Object.keys(k.attachGlobal().links);
  probe('adopted.c1.secret', 'c1', 'open', `${t}/secret.txt`, 'r');
  await sleep(1000);
  assignEvents();
  const adoptedEvents = events.length;
  const adoptedLinks = Object.keys(links.links);

  // Detach: c1 is free again, and its config can go.
  k.detach(links);
  k.deleteConfig(cgroupId(c1));
  probe('detached.c1.secret', 'c1', 'open', `${t}/secret.txt`, 'r');
  const result = {
    phase: 'adopt',
    adopted: k.adopted,
    pinned,
    adoptedLinks,
    nodeWideLinks,
    c1: cgroupId(c1).toString(),
    adoptedEvents,
    counters: counters(k),
    probes,
  };
  sub.stop();
  k.close();
  removePins(pinRoot);
  return result;
}

/**
 * Takes over the pinned state of an earlier build while a confined
 * workload keeps opening a denied file. The earlier build is this
 * object with its build pin removed, which is what a build without build
 * pins leaves. Every open must be denied throughout, and afterwards every
 * link must run the new programs and the old ones must be gone. With the
 * legacy object every hook is node-wide, so every link is replaced.
 */
async function phaseUpgrade(mode: 'cgroup' | 'legacy'): Promise<Record<string, unknown>> {
  const upPins = '/sys/fs/bpf/sabpf-upgrade';
  const stop = '/tmp/upgrade-stop';
  removePins(upPins);
  rmSync(stop, { force: true });
  sh(`echo data > ${t}/ro/upgrade`);
  const addon = loadAddon();
  const programIds = (k: KernelPrograms): Record<string, number> =>
    Object.fromEntries(ALL_HOOKS.map((hook) => [hook, addon.progInfo(k.program(hook)).id]));
  const linkPrograms = (links: Record<string, number | undefined>): Record<string, number> =>
    Object.fromEntries(Object.entries(links).flatMap(([hook, fd]) => (fd === undefined ? [] : [[hook, addon.linkInfo(fd).progId]])));

  // The earlier build: attached, pinned, and its process gone.
  const k1 = loadPrograms({ mode, pinRoot: upPins });
  const { file } = writePolicy(k1);
  const u1 = makeCgroup('u1');
  k1.setConfig(cgroupId(u1), configWith({ fileRoot: file.root }));
  // u2's container goes away while no enforcer runs: the kernel detaches
  // its links, which the takeover must leave to the initial sync.
  const u2 = makeCgroup('u2');
  const u2Id = cgroupId(u2);
  k1.setConfig(u2Id, configWith({ fileRoot: file.root }));
  if (mode === 'cgroup') {
    k1.release(k1.attachContainer(u1));
    k1.release(k1.attachContainer(u2));
  }
  k1.release(k1.attachGlobal());
  const oldIds = programIds(k1);
  k1.close();
  rmdirSync(u2);
  const progDir = `${upPins}/progs-${mode}`;
  const buildPins = readdirSync(progDir).filter((name) => name.startsWith('build-'));
  for (const name of buildPins) unlinkSync(`${progDir}/${name}`);

  // The workload runs through the takeover.
  const workload = spawn(probeBin, ['-c', u1, 'open-until', stop, `${t}/secret.txt`, 'r'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let workloadOut = '';
  workload.stdout.on('data', (chunk: Buffer) => (workloadOut += chunk.toString()));
  workload.stderr.on('data', (chunk: Buffer) => (workloadOut += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => workload.on('exit', (code) => resolve(code)));
  await sleep(500);

  const k2 = loadPrograms({ mode, pinRoot: upPins });
  const containerLinks = k2.adoptContainer(cgroupId(u1));
  const nodeWide = k2.attachGlobal();
  const replacedLinks = k2.replacedLinks;
  let goneCgroupError = '';
  try {
    k2.detach(k2.adoptContainer(u2Id));
  } catch (err) {
    goneCgroupError = String(err);
  }
  k2.deleteConfig(u2Id);
  await sleep(500);
  writeFileSync(stop, '');
  const workloadExit = await exited;

  const newIds = programIds(k2);
  const result = {
    replacedBuild: k2.replacedBuild,
    adopted: k2.adopted,
    replacedLinks,
    buildPinsBefore: buildPins.length,
    buildPinsAfter: readdirSync(progDir).filter((name) => name.startsWith('build-')).length,
    oldIds,
    newIds,
    containerLinks: linkPrograms(containerLinks.links),
    nodeWideLinks: linkPrograms(nodeWide.links),
    nextPins: readdirSync(`${upPins}/links/${mode}`).filter((name) => name.endsWith('-next')),
    workload: { exit: workloadExit, out: workloadOut.trim() },
    goneCgroupError,
    oldProgramsLeft: [] as number[],
    sameBuildAdopted: false,
    sameBuildReplaced: true,
  };
  probe('upgrade.u1.secret', 'u1', 'open', `${t}/secret.txt`, 'r');
  probe('upgrade.u1.unlinkRo', 'u1', 'unlink', `${t}/ro/upgrade`);

  // The kernel frees a program once no link or pin references it, which
  // may take a moment after the last one went.
  k2.release(containerLinks);
  k2.release(nodeWide);
  k2.close();
  for (let i = 0; i < 50; i++) {
    result.oldProgramsLeft = Object.values(oldIds).filter((id) => addon.progExists(id));
    if (result.oldProgramsLeft.length === 0) break;
    await sleep(100);
  }

  // The same build again adopts instead of loading.
  const k3 = loadPrograms({ mode, pinRoot: upPins });
  result.sameBuildAdopted = k3.adopted;
  result.sameBuildReplaced = k3.replacedBuild;
  k3.detach(k3.adoptContainer(cgroupId(u1)));
  k3.close();
  removePins(upPins);
  if (existsSync(stop)) unlinkSync(stop);
  return { phase: mode === 'cgroup' ? 'upgrade' : 'upgrade-legacy', upgrade: result, probes };
}

/** Parses the "opens N denied K" line of sabpf-probe open-until. */
function openCounts(out: string): { opens: number; denied: number } | undefined {
  const m = /^opens (\d+) denied (\d+)$/mu.exec(out.trim());
  return m ? { opens: Number(m[1]), denied: Number(m[2]) } : undefined;
}

/**
 * Replaces every node-wide link of the legacy object, again and again, while
 * a confined task and an unconfined one open the denied file in a loop. Each
 * round attaches the other load's programs before it lets the current links
 * go, as attachGlobal does in a takeover, so the confined task must be denied
 * every time and the other one never. Runs with and without QEMU's single
 * thread point to the emulator as the cause of the lockup in test/vm/README.md.
 */
async function phaseFlip(rounds: number): Promise<Record<string, unknown>> {
  const addon = loadAddon();
  const stop = '/tmp/flip-stop';
  rmSync(stop, { force: true });
  sh(`mkdir -p ${t} && echo data > ${t}/secret.txt`);
  const f1 = makeCgroup('f1');
  const loads = ['/sys/fs/bpf/sabpf-flip-a', '/sys/fs/bpf/sabpf-flip-b'].map((pins) => {
    removePins(pins);
    const k = loadPrograms({ mode: 'legacy', pinRoot: pins });
    const file = new Trie(new Ids()).rule(`${t}/secret.txt`, 'exact', 'read', 'deny');
    k.updateElems('sabpf_nodes', file.entries());
    k.setConfig(cgroupId(f1), configWith({ fileRoot: file.root }));
    return k;
  });

  type LoopResult = { out: string; exit: number | null; counts?: { opens: number; denied: number } };
  const loop = (cgroup: string | undefined): Promise<LoopResult> => {
    const argv = [...(cgroup ? ['-c', cgroup] : []), 'open-until', stop, `${t}/secret.txt`, 'r'];
    const child = spawn(probeBin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    // 'close', not 'exit': only then has all of the child's output arrived.
    return new Promise((resolve) => child.on('close', (exit) => resolve({ out: out.trim(), exit, counts: openCounts(out) })));
  };
  // Attached before the loops start, so every open of the confined one
  // meets a program.
  let links = ALL_HOOKS.map((hook) => addon.attachGlobalFd(loads[0]!.program(hook)));
  const confined = loop(f1);
  const unconfined = loop(undefined);
  await sleep(200);

  let done = 0;
  try {
    for (; done < rounds; done++) {
      const next = loads[(done + 1) % 2]!;
      const fresh: number[] = [];
      try {
        for (const hook of ALL_HOOKS) fresh.push(addon.attachGlobalFd(next.program(hook)));
      } catch (err) {
        for (const fd of fresh) addon.closeFd(fd);
        throw err;
      }
      for (const fd of links) addon.closeFd(fd);
      links = fresh;
    }
  } finally {
    // Also after a failed attach, so that the loops end. The process's exit
    // then closes the links.
    writeFileSync(stop, '');
  }
  const [confinedLoop, unconfinedLoop] = await Promise.all([confined, unconfined]);
  const finalPrograms = links.map((fd) => addon.linkInfo(fd).progId);
  for (const fd of links) addon.closeFd(fd);

  // Before the rounds, and after an even number of them, the first load's
  // programs decide alone. So the second load's programs deny some opens
  // only if the loop ran while the rounds went on.
  const deniedBy = loads.map((k) => k.counters().denied.toString());
  const lastLoad = loads[done % 2]!;
  const lastPrograms = ALL_HOOKS.map((hook) => addon.progInfo(lastLoad.program(hook)).id);
  for (const k of loads) k.close();
  removePins('/sys/fs/bpf/sabpf-flip-a');
  removePins('/sys/fs/bpf/sabpf-flip-b');
  rmSync(stop, { force: true });
  return {
    phase: 'flip',
    rounds: done,
    deniedBy,
    finalPrograms,
    lastPrograms,
    confined: confinedLoop,
    unconfined: unconfinedLoop,
  };
}

async function phaseGlobal(): Promise<Record<string, unknown>> {
  const globalPins = '/sys/fs/bpf/sabpf-global';
  removePins(globalPins);
  const k = loadPrograms({ mode: 'global', pinRoot: globalPins });
  const sub = k.subscribe((e) => events.push(e));
  const { file, exec, source } = writePolicy(k);
  const g1 = makeCgroup('g1');
  const g1Nested = makeNestedCgroup('g1');
  k.setConfig(
    cgroupId(g1),
    configWith({ fileRoot: file.root, execRoot: exec.root, sourceRoot: source.root, rawSocket: { deny: 1, audit: 0, allow: 0 } }),
  );
  const links = k.attachGlobal();

  probe('global.g1.secret', 'g1', 'open', `${t}/secret.txt`, 'r');
  probe('global.g1.plain', 'g1', 'open', `${t}/plain.txt`, 'r');
  probe('global.g1nested.secret', g1Nested, 'open', `${t}/secret.txt`, 'r');
  probe('global.g1.execDenied', 'g1', 'exec', `${t}/bin/denied`);
  probe('global.g1.connectDenied', 'g1', 'connect', '::ffff:127.0.0.1', '9999', 'tcp');
  probe('global.g1.connectAnyDenied', 'g1', 'connect', '0.0.0.0', '9999', 'tcp');
  probe('global.g1.raw4', 'g1', 'raw4');
  probe('global.g1.link', 'g1', 'link', `${t}/secret.txt`, `${t}/links/secret-global`);
  probe('global.g1.rename', 'g1', 'rename', `${t}/secretdir/moved.txt`, `${t}/links/moved-global`);
  // The node-wide objects do not read the hook's flags: any file at the new name is judged for read.
  probe('global.g1.overReadProtected', 'g1', 'rename', `${t}/mv/g-src`, `${t}/wo/target.txt`);
  probe('global.g1.unlinkRo', 'g1', 'unlink', `${t}/ro/global`);
  probe('global.outside.link', undefined, 'link', `${t}/secret.txt`, `${t}/links/secret-global-outside`);
  probe('global.outside.secret', undefined, 'open', `${t}/secret.txt`, 'r');
  probe('global.outside.execDenied', undefined, 'exec', `${t}/bin/denied`, '--help');
  probe('global.outside.raw4', undefined, 'raw4');
  await sleep(1000);
  assignEvents();

  k.detach(links);
  probe('global.detached.secret', 'g1', 'open', `${t}/secret.txt`, 'r');
  const result = { phase: 'global', mode: k.mode, verifiedInsns: verifiedInsns(k), counters: counters(k), probes };
  sub.stop();
  k.close();
  removePins(globalPins);
  return result;
}

/** Creates a cgroup 20 levels below parent, deeper than the 16 ancestor levels searched upward, and returns its name. */
function makeNestedCgroup(parent: string): string {
  const name = `${parent}/${Array.from({ length: 20 }, (_, i) => `n${i}`).join('/')}`;
  makeCgroup(name);
  return name;
}

/**
 * Runs the legacy object: global attach on a 5.8 to 5.16 kernel in auto
 * mode, or forced with mode 'legacy'. l1 enforces policy 0, l2 is the same
 * policy in audit mode, and the cgroups below l1 must find l1's config.
 */
async function phaseLegacy(mode: 'auto' | 'legacy'): Promise<Record<string, unknown>> {
  setupFiles();
  // 65 components: one more than the legacy object walks.
  sh(`mkdir -p ${deepDir}/more && echo deep > ${deepDir}/more/file`);
  const legacyPins = '/sys/fs/bpf/sabpf-legacy';
  removePins(legacyPins);
  const k = loadPrograms({ mode, pinRoot: legacyPins });
  const sub = k.subscribe((e) => events.push(e));
  const { file, exec, source } = writePolicy(k);
  const rules = { fileRoot: file.root, execRoot: exec.root, sourceRoot: source.root };
  const raw = { deny: 1, audit: 0, allow: 0 };
  const l1 = makeCgroup('l1');
  const l2 = makeCgroup('l2');
  makeCgroup('l1/child');
  const nested = makeNestedCgroup('l1');
  k.setConfig(cgroupId(l1), configWith({ ...rules, flags: ConfigFlag.hasFileSources, rawSocket: raw, packetSocket: raw }));
  k.setConfig(cgroupId(l2), configWith({ ...rules, enforce: 0, rawSocket: raw }));
  const links = k.attachGlobal();

  const listener = createServer((socket) => socket.destroy());
  await new Promise<void>((resolveListen) => listener.listen(8080, '127.0.0.1', resolveListen));

  probe('legacy.l1.plain', 'l1', 'open', `${t}/plain.txt`, 'r');
  probe('legacy.l1.secret', 'l1', 'open', `${t}/secret.txt`, 'r');
  probe('legacy.l1.roWrite', 'l1', 'open', `${t}/ro/file`, 'w');
  probe('legacy.l1.kidsDirect', 'l1', 'open', `${t}/kids/a`, 'r');
  probe('legacy.l1.kidsNested', 'l1', 'open', `${t}/kids/sub/b`, 'r');
  probe('legacy.l1.symlink', 'l1', 'open', `${t}/link`, 'r');
  probe('legacy.l1.openat', 'l1', 'openat', t, 'secret.txt', 'r');
  shellProbe('legacy.l1.chdirCat', 'l1', `cd ${t} && cat secret.txt`);
  probe('legacy.l1.chroot', 'l1', 'chroot', t, '/secret.txt', 'r');
  probe('legacy.l1.deep', 'l1', 'open', `${deepDir}/file`, 'r');
  probe('legacy.l1.deepOther', 'l1', 'open', `${deepDir}/other`, 'r');
  probe('legacy.l1.longName', 'l1', 'open', `${longDir}/secret.txt`, 'r');
  probe('legacy.l1.deeper', 'l1', 'open', `${deepDir}/more/file`, 'r');
  probeIn(`${t}/toodeep`, 'legacy.l1.tooDeep', 'l1', 'deep', '2060', 'f', 'r');
  shellProbe('legacy.l1.sourceCat', 'l1', `cat ${t}/fs.txt`);
  probe('legacy.l1.sourceProbe', 'l1', 'open', `${t}/fs.txt`, 'r');
  probe('legacy.l1.audited', 'l1', 'open', `${t}/audited.txt`, 'r');
  probe('legacy.l1child.secret', 'l1/child', 'open', `${t}/secret.txt`, 'r');
  probe('legacy.l1nested.secret', nested, 'open', `${t}/secret.txt`, 'r');
  probe('legacy.l2.secret', 'l2', 'open', `${t}/secret.txt`, 'r');
  probe('legacy.outside.secret', undefined, 'open', `${t}/secret.txt`, 'r');
  probe('legacy.outside.deep', undefined, 'open', `${deepDir}/file`, 'r');

  probe('legacy.l1.link', 'l1', 'link', `${t}/secret.txt`, `${t}/links/secret-legacy`);
  probe('legacy.outside.link', undefined, 'link', `${t}/secret.txt`, `${t}/links/secret-legacy-outside`);
  probe('legacy.l1.rename', 'l1', 'rename', `${t}/secretdir/moved.txt`, `${t}/links/moved-legacy`);
  probe('legacy.l1.unlinkRo', 'l1', 'unlink', `${t}/ro/legacy`);
  probe('legacy.l1.symlinkOntoRules', 'l1', 'symlink', `${t}/links`, `${t}/ghost`);

  probe('legacy.l1.execAllowed', 'l1', 'exec', '/bin/true');
  probe('legacy.l1.execDenied', 'l1', 'exec', `${t}/bin/denied`);
  probe('legacy.l1.execSymlink', 'l1', 'exec', `${t}/bin/alias`);
  probe('legacy.l1.scriptDeniedInterpreter', 'l1', 'exec', `${t}/script-denied.sh`);
  probe('legacy.l1.scriptOk', 'l1', 'exec', `${t}/script-ok.sh`);
  probe('legacy.outside.execDenied', undefined, 'exec', `${t}/bin/denied`, '--help');

  probe('legacy.l1.connectAllowed', 'l1', 'connect', '127.0.0.1', '8080', 'tcp');
  probe('legacy.l1.connectDenied', 'l1', 'connect', '127.0.0.1', '9999', 'tcp');
  probe('legacy.l1.connectMappedDenied', 'l1', 'connect', '::ffff:127.0.0.1', '9999', 'tcp');
  probe('legacy.l1.connectAnyDenied', 'l1', 'connect', '0.0.0.0', '9999', 'tcp');
  probe('legacy.l1.sendtoDenied', 'l1', 'sendto', '127.0.0.1', '9998');
  probe('legacy.l1.sendtoUnspecDenied', 'l1', 'sendto-unspec', '127.0.0.1', '9998');
  probe('legacy.l1.tfoDenied', 'l1', 'tfo', '127.0.0.1', '9999');
  probe('legacy.l1.bindDenied', 'l1', 'bind', '0.0.0.0', '5353', 'udp');
  probe('legacy.l1.bindAllowed', 'l1', 'bind', '0.0.0.0', '5354', 'udp');
  probe('legacy.l1.raw4', 'l1', 'raw4');
  probe('legacy.l1.packet', 'l1', 'packet');
  probe('legacy.l1child.connectDenied', 'l1/child', 'connect', '127.0.0.1', '9999', 'tcp');
  probe('legacy.l2.connectDenied', 'l2', 'connect', '127.0.0.1', '9999', 'tcp');
  probe('legacy.outside.connectDenied', undefined, 'connect', '127.0.0.1', '9999', 'tcp');
  probe('legacy.outside.raw4', undefined, 'raw4');

  const takeover = kernelBefore61() ? rejectedTakeover(legacyPins, 'legacy') : undefined;

  await sleep(1500);
  assignEvents();
  k.detach(links);
  probe('legacy.detached.secret', 'l1', 'open', `${t}/secret.txt`, 'r');
  const result = {
    phase: mode === 'auto' ? 'legacy' : 'legacy-forced',
    takeover,
    verifiedInsns: verifiedInsns(k),
    mode: k.mode,
    variant: k.variant,
    l1: cgroupId(l1).toString(),
    counters: counters(k),
    probes,
  };
  sub.stop();
  listener.close();
  k.close();
  removePins(legacyPins);
  return result;
}

function kernelBefore61(): boolean {
  const [major = 0, minor = 0] = release()
    .split('.')
    .map((part) => parseInt(part, 10));
  return major * 1000 + minor < 6001;
}

/**
 * Loads fresh programs while the ones pinned under pinRoot enforce: once as
 * another build (a build pin of another digest), once after a start that did
 * not finish (no build pin). Before 6.1 each load must fail and leave every
 * pin and program in place.
 */
function rejectedTakeover(pinRoot: string, variant: string): Record<string, unknown> {
  const addon = loadAddon();
  const progDir = `${pinRoot}/progs-${variant}`;
  const buildPins = (): string[] => readdirSync(progDir).filter((name) => name.startsWith('build-'));
  const pinnedIds = (): Record<string, number> =>
    Object.fromEntries(
      readdirSync(progDir)
        .filter((name) => !name.startsWith('build-'))
        .map((name) => {
          const fd = addon.objGet(`${progDir}/${name}`);
          const id = addon.progInfo(fd).id;
          addon.closeFd(fd);
          return [name, id];
        }),
    );
  const idsBefore = pinnedIds();

  // Another build: its build pin names another digest.
  for (const name of buildPins()) unlinkSync(`${progDir}/${name}`);
  const [program = 'missing'] = Object.keys(idsBefore);
  const fd = addon.objGet(`${progDir}/${program}`);
  addon.objPin(fd, `${progDir}/build-0123456789abcdef`);
  addon.closeFd(fd);
  const otherBuildError = errorOf(() => loadPrograms({ mode: 'legacy', pinRoot }).close());
  const idsAfterOtherBuild = pinnedIds();
  const buildPinsAfterOtherBuild = buildPins();

  // A start that did not finish: no build pin at all.
  for (const name of buildPins()) unlinkSync(`${progDir}/${name}`);
  const unfinishedError = errorOf(() => loadPrograms({ mode: 'legacy', pinRoot }).close());
  const idsAfter = pinnedIds();

  probe('legacy.takeoverRejected.secret', 'l1', 'open', `${t}/secret.txt`, 'r');
  return { otherBuildError, unfinishedError, idsBefore, idsAfterOtherBuild, buildPinsAfterOtherBuild, idsAfter };
}

/** Message of the error fn throws, or a note that it threw nothing. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
}

/** Denied opens of the flood in phaseDrops: more than the poll thread drains past a queue of 1,024 records and a full ring. */
const FLOOD_OPENS = 20_000;

/**
 * Floods the reader with denials while the JS thread is busy (spawnSync
 * blocks it). The default ring of 4 MiB lets the poll thread drain records
 * faster than the JS thread takes them. The reader's queue must stay bounded, and every
 * denial must be delivered or counted as dropped by the kernel.
 */
async function floodWhileBusy(): Promise<Record<string, unknown>> {
  const floodPins = '/sys/fs/bpf/sabpf-flood';
  removePins(floodPins);
  const k = loadPrograms({ mode: 'cgroup', pinRoot: floodPins });
  const { file } = writePolicy(k);
  const d2 = makeCgroup('d2');
  k.setConfig(cgroupId(d2), configWith({ fileRoot: file.root }));
  const links = k.attachContainer(d2);

  let delivered = 0;
  const sub = k.subscribe(() => delivered++);
  const droppedBefore = k.counters().eventsDropped;
  probe('drops.d2.flood', 'd2', 'open-many', String(FLOOD_OPENS), `${t}/secret.txt`, 'r');

  // Stopped while its queue is full (JS has not run since the flood), the
  // reader must leave the ring's records for a later one.
  sub.stop();
  const stats = Object.fromEntries(Object.entries(sub.stats()).map(([n, v]) => [n, String(v)]));
  const deliveredAtStop = delivered;
  await sub.drained();
  const deliveredAtDrain = delivered;
  let late = 0;
  const lateSub = k.subscribe(() => late++);
  await sleep(2000);
  lateSub.stop();
  const flood = {
    opens: FLOOD_OPENS,
    delivered,
    deliveredAtStop,
    deliveredAtDrain,
    late,
    dropped: String(k.counters().eventsDropped - droppedBefore),
    ...stats,
  };

  k.detach(links);
  k.close();
  removePins(floodPins);
  return flood;
}

async function phaseDrops(): Promise<Record<string, unknown>> {
  // A ring buffer of 16 KiB holds one event of about 8 KiB: with no reader,
  // the later denials must be counted as dropped records.
  const dropPins = '/sys/fs/bpf/sabpf-drops';
  removePins(dropPins);
  const k = loadPrograms({ mode: 'cgroup', pinRoot: dropPins, ringBufferBytes: 16384 });
  const { file } = writePolicy(k);
  const d1 = makeCgroup('d1');
  k.setConfig(cgroupId(d1), configWith({ fileRoot: file.root }));
  const links = k.attachContainer(d1);
  for (let i = 0; i < 5; i++) probe(`drops.d1.secret${i}`, 'd1', 'open', `${t}/secret.txt`, 'r');
  const counted = counters(k);

  // A reader started afterwards gets what the ring kept.
  const sub = k.subscribe((e) => events.push(e));
  await sleep(1000);
  sub.stop();

  // Errors surface as JS exceptions that name the call, the object and errno.
  const errors = {
    keySize: errorOf(() => k.updateElem('sabpf_configs', Buffer.alloc(4), Buffer.alloc(80))),
    missingCgroup: errorOf(() => k.attachContainer(`${cgRoot}/missing`)),
    missingObject: errorOf(() => loadPrograms({ mode: 'cgroup', pinRoot: '/sys/fs/bpf/sabpf-none', objectDir: '/nonexistent' })),
    lookupMissing: k.lookupElem('sabpf_configs', Buffer.alloc(8)) === null ? 'null' : 'found',
    deleteMissing: String(k.deleteElem('sabpf_configs', Buffer.alloc(8))),
  };
  k.detach(links);
  k.close();
  removePins(dropPins);
  removePins('/sys/fs/bpf/sabpf-none');
  const flood = await floodWhileBusy();
  return { phase: 'drops', counters: counted, eventsAfter: events.length, flood, errors, probes };
}

async function main(): Promise<void> {
  if (!probeBin) throw new Error('failed to find sabpf-probe: set SABPF_PROBE to its path in the guest');
  const phase = process.argv[2];
  const phases: Record<string, () => Promise<Record<string, unknown>>> = {
    main: phaseMain,
    adopt: phaseAdopt,
    upgrade: () => phaseUpgrade('cgroup'),
    'upgrade-legacy': () => phaseUpgrade('legacy'),
    global: phaseGlobal,
    drops: phaseDrops,
    legacy: () => phaseLegacy('auto'),
    'legacy-forced': () => phaseLegacy('legacy'),
    flip: () => phaseFlip(60),
  };
  const run = phase === undefined ? undefined : phases[phase];
  if (!run)
    throw new Error(
      `failed to run phase ${JSON.stringify(phase)}: expected main, adopt, upgrade, upgrade-legacy, global, drops, legacy, legacy-forced or flip`,
    );
  const result = await run();
  const out = process.env['SABPF_OUT'];
  const text = JSON.stringify(result, null, 1);
  if (out) writeFileSync(`${out}/hooks-${phase}.json`, text);
  process.stdout.write(`${text}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
