// Taking over the links another build pinned: container links move to this
// build's programs in place (BPF_LINK_UPDATE), node-wide links are replaced
// by new ones pinned over the old. The addon is a fake over plain files
// standing in for bpffs pins; the VM hook tests run the same in a kernel.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CGROUP_HOOKS, NODE_WIDE_HOOKS, type HookName } from '../../../compiler/layout.js';
import type { NativeAddon } from '../../../enforcer/kernel/addon.js';
import { ALL_HOOKS, KernelPrograms, MAP_NAMES, type MapName } from '../../../enforcer/kernel/programs.js';

/** Program ids: the earlier build's are 100 + i, this build's 200 + i. */
const oldId = (hook: HookName): number => 100 + ALL_HOOKS.indexOf(hook);
const newId = (hook: HookName): number => 200 + ALL_HOOKS.indexOf(hook);

/**
 * Returns a fake addon whose pins are files holding the id of the program
 * the link runs, then " dead" when the link's cgroup is gone. Link fds are
 * numbers from 1000 on; program fds are their hook's index.
 */
function fakeAddon() {
  const linkProgram = new Map<number, number>();
  const deadLinks = new Set<number>();
  const closed: number[] = [];
  const updates: Array<[number, number]> = [];
  let nextFd = 1000;
  const addon = {
    closed,
    updates,
    linkProgram,
    failUpdate: false,
    failAttach: false,
    objGet(path: string): number {
      const fd = nextFd++;
      const [id, dead] = readFileSync(path, 'utf8').split(' ');
      linkProgram.set(fd, Number(id));
      if (dead === 'dead') deadLinks.add(fd);
      return fd;
    },
    objPin(fd: number, path: string): void {
      if (existsSync(path)) throw new Error(`EEXIST ${path}`);
      writeFileSync(path, String(linkProgram.get(fd)));
    },
    linkInfo(fd: number) {
      return { id: fd, type: 0, progId: linkProgram.get(fd) ?? -1, cgroupId: deadLinks.has(fd) ? 0n : 42n };
    },
    progInfo(fd: number) {
      return { id: newId(ALL_HOOKS[fd]!), name: '', type: 29, verifiedInsns: 0 };
    },
    linkUpdate(linkFd: number, progFd: number): void {
      if (addon.failUpdate) throw new Error('failed to bpf_link_update: Invalid argument (errno 22)');
      updates.push([linkFd, progFd]);
      linkProgram.set(linkFd, newId(ALL_HOOKS[progFd]!));
    },
    attachGlobalFd(progFd: number): number {
      if (addon.failAttach) throw new Error('failed to bpf_raw_tracepoint_open: No such file or directory (errno 2)');
      const fd = nextFd++;
      linkProgram.set(fd, newId(ALL_HOOKS[progFd]!));
      return fd;
    },
    closeFd(fd: number): void {
      closed.push(fd);
    },
  };
  return addon;
}

/** Makes a pin root where the earlier build left links for cgroup 42 and the node-wide hooks. */
function earlierBuildPins(): string {
  const root = mkdtempSync(join(tmpdir(), 'sabpf-takeover-'));
  mkdirSync(join(root, 'links', '42'), { recursive: true });
  mkdirSync(join(root, 'links', 'cgroup'), { recursive: true });
  for (const hook of CGROUP_HOOKS) writeFileSync(join(root, 'links', '42', hook), String(oldId(hook)));
  for (const hook of NODE_WIDE_HOOKS) writeFileSync(join(root, 'links', 'cgroup', hook), String(oldId(hook)));
  return root;
}

function programsOver(root: string, addon: ReturnType<typeof fakeAddon>): KernelPrograms {
  const programs = Object.fromEntries(ALL_HOOKS.map((hook, i) => [hook, i])) as Record<HookName, number>;
  const maps = Object.fromEntries(MAP_NAMES.map((name, i) => [name, 500 + i])) as Record<MapName, number>;
  return new KernelPrograms(addon as unknown as NativeAddon, 'cgroup', 'cgroup', root, false, programs, maps, [], undefined, true);
}

describe("taking over another build's pinned links", () => {
  it('moves each container link to this build in place', () => {
    const root = earlierBuildPins();
    const addon = fakeAddon();
    const k = programsOver(root, addon);

    const links = k.adoptContainer(42n);

    assert.deepEqual(Object.keys(links.links).sort(), [...CGROUP_HOOKS].sort());
    for (const hook of CGROUP_HOOKS) assert.equal(addon.linkProgram.get(links.links[hook]!), newId(hook), hook);
    assert.equal(addon.updates.length, CGROUP_HOOKS.length);
    assert.equal(k.replacedLinks, CGROUP_HOOKS.length);
  });

  it("leaves a link that already runs this build's program", () => {
    const root = earlierBuildPins();
    writeFileSync(join(root, 'links', '42', 'fileOpen'), String(newId('fileOpen')));
    const addon = fakeAddon();
    const k = programsOver(root, addon);

    k.adoptContainer(42n);

    assert.equal(k.replacedLinks, CGROUP_HOOKS.length - 1);
  });

  it('pins a new node-wide link over each old one', () => {
    const root = earlierBuildPins();
    const addon = fakeAddon();
    const k = programsOver(root, addon);

    const links = k.attachGlobal();

    const dir = join(root, 'links', 'cgroup');
    assert.deepEqual(readdirSync(dir).sort(), [...NODE_WIDE_HOOKS].sort(), 'a -next pin is left');
    for (const hook of NODE_WIDE_HOOKS) {
      assert.equal(readFileSync(join(dir, hook), 'utf8'), String(newId(hook)), hook);
      assert.equal(addon.linkProgram.get(links.links[hook]!), newId(hook), hook);
    }
    // The old links' fds were opened to read their program, then closed.
    assert.equal(addon.closed.length, NODE_WIDE_HOOKS.length);
    assert.equal(k.replacedLinks, NODE_WIDE_HOOKS.length);
  });

  it('finishes a replacement interrupted after the new link was pinned', () => {
    const root = earlierBuildPins();
    const dir = join(root, 'links', 'cgroup');
    const hook = NODE_WIDE_HOOKS[0]!;
    writeFileSync(join(dir, `${hook}-next`), String(newId(hook)));
    const addon = fakeAddon();
    const k = programsOver(root, addon);

    k.attachGlobal();

    assert.equal(readFileSync(join(dir, hook), 'utf8'), String(newId(hook)));
    assert.equal(existsSync(join(dir, `${hook}-next`)), false);
    assert.equal(k.replacedLinks, NODE_WIDE_HOOKS.length - 1);
  });

  it('leaves a link whose cgroup is gone to the initial sync', () => {
    const root = earlierBuildPins();
    writeFileSync(join(root, 'links', '42', 'fileOpen'), `${oldId('fileOpen')} dead`);
    const addon = fakeAddon();
    const k = programsOver(root, addon);

    const links = k.adoptContainer(42n);

    assert.ok(links.links.fileOpen !== undefined, 'the dead link is not returned for detaching');
    assert.equal(addon.linkProgram.get(links.links.fileOpen), oldId('fileOpen'));
    assert.equal(k.replacedLinks, CGROUP_HOOKS.length - 1);
  });

  it('names the link and the fix when a move fails', () => {
    const root = earlierBuildPins();
    const addon = fakeAddon();
    addon.failUpdate = true;
    const k = programsOver(root, addon);

    assert.throws(
      () => k.adoptContainer(42n),
      /failed to move the fileOpen link of cgroup 42 \(.*links\/42\/fileOpen\) to this build's program: .*errno 22.*Run sabpf enforce --unload/u,
    );
  });

  it('drops the build pin when a node-wide attach fails', () => {
    const root = earlierBuildPins();
    mkdirSync(join(root, 'progs-cgroup'));
    writeFileSync(join(root, 'progs-cgroup', 'build-0123456789abcdef'), '');
    writeFileSync(join(root, 'progs-cgroup', 'sabpf_file_open'), '');
    const addon = fakeAddon();
    addon.failAttach = true;
    const k = programsOver(root, addon);

    assert.throws(() => k.attachGlobal(), /failed to attach sabpf_path_mknod globally: .*errno 2.*start sabpf enforce again/u);
    assert.deepEqual(readdirSync(join(root, 'progs-cgroup')), ['sabpf_file_open']);
    // The old link stays pinned and enforcing.
    assert.equal(readFileSync(join(root, 'links', 'cgroup', NODE_WIDE_HOOKS[0]!), 'utf8'), String(oldId(NODE_WIDE_HOOKS[0]!)));
  });

  it('attaches a hook the earlier build had not pinned', () => {
    const root = earlierBuildPins();
    const dir = join(root, 'links', 'cgroup');
    const hook = NODE_WIDE_HOOKS[0]!;
    renameSync(join(dir, hook), join(root, 'gone'));
    const addon = fakeAddon();
    const k = programsOver(root, addon);

    k.attachGlobal();

    assert.equal(readFileSync(join(dir, hook), 'utf8'), String(newId(hook)));
    assert.equal(k.replacedLinks, NODE_WIDE_HOOKS.length - 1);
  });
});
