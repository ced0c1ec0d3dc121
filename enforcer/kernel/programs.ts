// Loading, pinning and attaching the sabpf BPF programs.
//
// Layout under the pin root (bpffs), which lets enforcement outlive the
// enforcer process and a new process adopt it without reloading:
//   <pinRoot>/maps/<map>                  policy maps, counters, events (libbpf pins)
//   <pinRoot>/progs-<variant>/<program>   loaded programs of one object variant
//   <pinRoot>/links/<cgroup id>/<hook>    cgroup mode: one link per hook and container
//   <pinRoot>/links/<variant>/<hook>      links for every task: all hooks in global mode (global
//                                         or legacy), the node-wide hooks in cgroup mode
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { CGROUP_HOOKS, COUNTERS, Counter, NODE_WIDE_HOOKS, SIZE, type HookName } from '../../compiler/layout.js';
import { loadAddon, type NativeAddon, type NativeBpfObject, type NativeRingBufferReader } from './addon.js';
import { decodeEvent, type SabpfEvent } from './events.js';

export type AttachMode = 'cgroup' | 'global';

/**
 * Builds of the BPF object (enforcer/bpf/Makefile). cgroup and global need
 * bpf_loop (5.17+). legacy is the global build without it, for 5.8 to 5.16.
 * It walks paths of up to 64 components, and deeper ones are decided by
 * posture and counted like any truncated path.
 */
export type ObjectVariant = 'cgroup' | 'global' | 'legacy';

export const OBJECT_FILES: Record<ObjectVariant, string> = {
  cgroup: 'sabpf.bpf.o',
  global: 'sabpf-global.bpf.o',
  legacy: 'sabpf-legacy.bpf.o',
};

/** Values of --mode: an attach mode, legacy (global attach, legacy object), or auto. */
export type ModeOption = AttachMode | 'legacy' | 'auto';
export const MODE_OPTIONS: readonly ModeOption[] = ['auto', 'cgroup', 'global', 'legacy'];

/** Programs of sabpf.bpf.c, by the hook they serve. */
export const HOOK_PROGRAMS: Record<HookName, string> = {
  fileOpen: 'sabpf_file_open',
  exec: 'sabpf_bprm_check_security',
  socketConnect: 'sabpf_socket_connect',
  socketBind: 'sabpf_socket_bind',
  socketCreate: 'sabpf_socket_create',
  fileLink: 'sabpf_path_link',
  fileRename: 'sabpf_path_rename',
  socketSendmsg: 'sabpf_socket_sendmsg',
  fileCreate: 'sabpf_path_mknod',
  fileMkdir: 'sabpf_path_mkdir',
  fileSymlink: 'sabpf_path_symlink',
  fileUnlink: 'sabpf_path_unlink',
  fileRmdir: 'sabpf_path_rmdir',
  fileTruncate: 'sabpf_path_truncate',
  fileChmod: 'sabpf_path_chmod',
};
export const ALL_HOOKS = Object.keys(HOOK_PROGRAMS) as HookName[];
export { CGROUP_HOOKS };

export const MAP_NAMES = [
  'sabpf_configs',
  'sabpf_nodes',
  'sabpf_long_nodes',
  'sabpf_source_roots',
  'sabpf_net_prefixes',
  'sabpf_ports',
  'sabpf_counters',
  'sabpf_events',
  'sabpf_epoch',
] as const;
export type MapName = (typeof MAP_NAMES)[number];

export interface LoadOptions {
  /**
   * 'auto' picks cgroup on kernels 6.0+ (BPF_LSM_CGROUP), global before.
   * 'global' loads the legacy object on kernels before 5.17; 'legacy'
   * loads it on any kernel. Default 'auto'.
   */
  mode?: ModeOption;
  /** bpffs directory of this node's sabpf state. Default /sys/fs/bpf/sabpf. */
  pinRoot?: string;
  /** Directory with the objects of OBJECT_FILES. Default $SABPF_BPF_DIR, else enforcer/bpf. */
  objectDir?: string;
  /**
   * Ring buffer size in bytes, a power of two, used only when the maps are
   * created. A load beside pinned maps of another size fails.
   */
  ringBufferBytes?: number;
  /**
   * Load even when this build's programs are pinned. Programs of another
   * build are replaced without it. Default false.
   */
  reload?: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const sourceRoot = resolve(here, ...(here.split('/').includes('dist') ? ['..', '..', '..'] : ['..', '..']));

function kernelVersion(kernelRelease: string, fix = "pass mode 'cgroup', 'global' or 'legacy'"): number {
  const match = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!match) {
    throw new Error(`failed to parse kernel release ${JSON.stringify(kernelRelease)}: ${fix}`);
  }
  return Number(match[1]) * 1000 + Number(match[2]);
}

/**
 * Picks cgroup mode on kernels from 6.0 on (BPF_LSM_CGROUP), global mode
 * from 5.8 (the BPF ring buffer) on. Older kernels get neither.
 */
export function defaultMode(kernelRelease: string = release()): AttachMode {
  const version = kernelVersion(kernelRelease);
  if (version < 5008) {
    throw new Error(
      `failed to pick an attach mode for kernel ${kernelRelease}: the sabpf programs need BPF LSM and the BPF ring buffer (5.8+); upgrade the node's kernel`,
    );
  }
  return version >= 6000 ? 'cgroup' : 'global';
}

/**
 * First kernel on which loading programs beside pinned links, and moving the
 * links to them, ran clean in the test VMs (6.1). On Debian's 5.10 it
 * soft-locked the kernel in 2 of 9 runs while a confined task was denied in a
 * tight loop. Those lockups, and one on 6.1, point to QEMU's multi-threaded
 * emulation (enforcer/bpf/README.md). TODO: run the hook suite's 5.10
 * takeover with one QEMU thread before 5.10 is allowed. 5.11 to 6.0 were
 * never run, so they are rejected as well.
 */
const REPLACE_MIN_KERNEL = 6001;

export interface PinnedState {
  pinRoot: string;
  /** Links pinned for this variant: the node-wide ones and, in cgroup mode, the containers'. */
  links: number;
  /** The pinning build: another build's digest, 'this build' for a forced reload, or undefined without a build pin. */
  build: string | undefined;
}

/**
 * Throws when this kernel is too old to load fresh programs beside links that
 * are still pinned, which would then move to them. Nothing has changed at
 * that point, so the pinned links keep enforcing.
 */
export function checkReplaceKernel(pinned: PinnedState, kernelRelease: string = release()): void {
  if (pinned.links === 0) return;
  const fix = 'use a kernel release of the form MAJOR.MINOR, or run sabpf enforce --unload before starting';
  if (kernelVersion(kernelRelease, fix) >= REPLACE_MIN_KERNEL) return;

  let owner = 'a start that did not finish (no build pin names it)';
  if (pinned.build === 'this build') owner = 'this build';
  else if (pinned.build !== undefined) owner = `another sabpf build (${BUILD_PIN_PREFIX}${pinned.build})`;
  throw new Error(
    `failed to load the sabpf programs beside the ${pinned.links} links that ${owner} pinned under ${pinned.pinRoot}: replacing running LSM programs soft-locked Linux 5.10 in tests, and kernel ${kernelRelease} is older than 6.1, the first where it ran clean in tests. Nothing changed, so those links keep enforcing. To load this build, run sabpf enforce --unload (enforcement stops until the next start), then start again`,
  );
}

/** Names the build whose programs are pinned in progDir, for checkReplaceKernel's message. */
function pinnedBuildName(progDir: string, buildPin: string | undefined): string | undefined {
  if (buildPin !== undefined && existsSync(buildPin)) return 'this build';
  const pin = readdirSync(progDir).find((name) => name.startsWith(BUILD_PIN_PREFIX));
  return pin?.slice(BUILD_PIN_PREFIX.length);
}

/** Tells whether a folder under <pinRoot>/links contains a container's links, which are named by its cgroup id. */
function isContainerLinks(name: string): boolean {
  return /^\d+$/u.test(name);
}

/** Counts the links pinned under pinRoot that a fresh load of variant would take over. */
export function countPinnedLinks(pinRoot: string, variant: ObjectVariant): number {
  const linksDir = join(pinRoot, 'links');
  if (!existsSync(linksDir)) return 0;
  const ours = readdirSync(linksDir).filter((name) => name === variant || (variant === 'cgroup' && isContainerLinks(name)));
  return ours.reduce((sum, name) => sum + readdirSync(join(linksDir, name)).length, 0);
}

/** Returns the object a mode option loads on this kernel: global falls back to legacy without bpf_loop (before 5.17). */
export function objectVariant(mode: ModeOption, kernelRelease: string = release()): ObjectVariant {
  const attach = mode === 'auto' ? defaultMode(kernelRelease) : mode;
  const version = kernelVersion(kernelRelease);
  if (attach === 'cgroup' && version < 6000) {
    throw new Error(
      `failed to load the programs in cgroup mode on kernel ${kernelRelease}: BPF_LSM_CGROUP needs Linux 6.0+; use --mode auto or global`,
    );
  }
  if (attach === 'global' && version < 5017) return 'legacy';
  return attach;
}

/** The cgroup id the BPF programs see: the inode number of the cgroup2 directory. */
export function cgroupId(cgroupPath: string): bigint {
  try {
    return statSync(cgroupPath, { bigint: true }).ino;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`failed to find cgroup ${cgroupPath}: ${reason}; check the container is running and cgroup2 is mounted`, {
      cause: err,
    });
  }
}

export interface ContainerLinks {
  cgroupId: bigint;
  /** Link fds owned by this process. The pins keep the links if it exits. */
  links: Partial<Record<HookName, number>>;
}

export interface EventSubscription {
  stop(): void;
  /** Settles once stop() was called and every record queued before it was delivered. */
  drained(): Promise<void>;
  /** Lets the process exit while the subscription runs. */
  unref(): void;
  stats(): { records: bigint; lost: bigint; queueFullWaits: bigint };
}

export class KernelPrograms {
  private closed = false;

  constructor(
    private readonly addon: NativeAddon,
    readonly mode: AttachMode,
    readonly variant: ObjectVariant,
    readonly pinRoot: string,
    /** True when the programs came from pins left by an earlier process. */
    readonly adopted: boolean,
    private readonly programFds: Record<HookName, number>,
    private readonly mapFds: Record<MapName, number>,
    private readonly ownedFds: number[],
    /** The loaded object, when this process loaded it (not adopted). */
    private readonly object: NativeBpfObject | undefined,
    /**
     * True when programs of another build were pinned: the links this
     * process adopts move to its own programs (see adoptContainer).
     */
    readonly replacedBuild = false,
  ) {}

  /** Links moved from another build's programs to these, by adoptContainer and attachGlobal. */
  replacedLinks = 0;
  private programIds: Partial<Record<HookName, number>> = {};

  /** Returns the kernel's id of a hook's program, which a link's info names. */
  private programId(hook: HookName): number {
    return (this.programIds[hook] ??= this.addon.progInfo(this.programFds[hook]).id);
  }

  map(name: MapName): number {
    this.checkOpen();
    return this.mapFds[name];
  }

  program(hook: HookName): number {
    this.checkOpen();
    return this.programFds[hook];
  }

  /** Links of a container, or with 'global' the node-wide links of this variant. */
  private linkDir(id: bigint | 'global'): string {
    return join(this.pinRoot, 'links', id === 'global' ? this.variant : String(id));
  }

  /**
   * Attaches the programs of hooks to a container's cgroup and pins each link,
   * so the container stays confined if this process exits. Write the
   * container's config first: an attached program without one denies.
   * Node-wide hooks in the list are skipped: attachGlobal() serves them.
   */
  attachContainer(cgroupPath: string, hooks: readonly HookName[] = CGROUP_HOOKS): ContainerLinks {
    this.checkOpen();
    if (this.mode !== 'cgroup') {
      throw new Error(
        `failed to attach to ${cgroupPath}: the programs are loaded in global mode, which confines by config alone; call attachGlobal() once instead`,
      );
    }
    const id = cgroupId(cgroupPath);
    const dir = this.linkDir(id);
    mkdirSync(dir, { recursive: true });
    const result: ContainerLinks = { cgroupId: id, links: {} };
    try {
      for (const hook of hooks) {
        if (NODE_WIDE_HOOKS.includes(hook)) continue;
        if (existsSync(join(dir, hook))) {
          throw new Error(`failed to attach ${hook} to ${cgroupPath}: ${join(dir, hook)} is already pinned; detach it first`);
        }
        // Loaded here: libbpf's bpf_program__attach_cgroup. Adopted: the pinned program's fd.
        const fd = this.object
          ? this.object.attachCgroup(HOOK_PROGRAMS[hook], cgroupPath)
          : this.addon.attachCgroupFd(this.programFds[hook], cgroupPath);
        result.links[hook] = fd;
        this.addon.objPin(fd, join(dir, hook));
      }
    } catch (err) {
      this.detach(result);
      throw err;
    }
    return result;
  }

  /**
   * Attaches the programs that run for all tasks: every program in global
   * mode, the node-wide hooks' in cgroup mode. Links pinned by an earlier
   * process are reused.
   */
  attachGlobal(): ContainerLinks {
    this.checkOpen();
    const dir = this.linkDir('global');
    mkdirSync(dir, { recursive: true });
    const result: ContainerLinks = { cgroupId: 0n, links: {} };
    for (const hook of this.mode === 'global' ? ALL_HOOKS : NODE_WIDE_HOOKS) {
      const pin = join(dir, hook);
      // bpffs refuses names with a dot (EPERM), hence the dash.
      const next = `${pin}-next`;
      // A replacement interrupted after its link was pinned: finish it.
      if (existsSync(next)) renameSync(next, pin);
      if (existsSync(pin)) {
        const fd = this.addon.objGet(pin);
        if (this.addon.linkInfo(fd).progId === this.programId(hook)) {
          result.links[hook] = fd;
          continue;
        }
        // Another build's program. A node-wide link cannot change its
        // program, so attach this one beside it, then let the old link go.
        // Both run in between, and a deny from either wins.
        let replacement: number;
        try {
          replacement = this.attachNodeWide(hook);
        } catch (err) {
          this.addon.closeFd(fd);
          throw err;
        }
        this.addon.objPin(replacement, next);
        renameSync(next, pin);
        this.addon.closeFd(fd);
        this.replacedLinks++;
        result.links[hook] = replacement;
        continue;
      }
      const fd = this.attachNodeWide(hook);
      result.links[hook] = fd;
      this.addon.objPin(fd, pin);
    }
    return result;
  }

  /**
   * Attaches a hook's program for every task and returns the link fd. On
   * failure the build pin goes, so that the next start loads fresh programs
   * instead of adopting these.
   */
  private attachNodeWide(hook: HookName): number {
    try {
      return this.object ? this.object.attachGlobal(HOOK_PROGRAMS[hook]) : this.addon.attachGlobalFd(this.programFds[hook]);
    } catch (err) {
      // Kernels before about 5.13 attach an LSM program once per load, so
      // after a crash between the attach and the pin a second attach gets
      // ENOENT.
      const progDir = join(this.pinRoot, `progs-${this.variant}`);
      for (const name of existsSync(progDir) ? readdirSync(progDir) : []) {
        if (name.startsWith(BUILD_PIN_PREFIX)) unlinkSync(join(progDir, name));
      }
      const reason = err instanceof Error ? err.message : String(err);
      const next =
        kernelVersion(release(), 'run sabpf enforce --unload, then start again') >= REPLACE_MIN_KERNEL
          ? 'start sabpf enforce again: it loads fresh programs, and the pinned links keep enforcing meanwhile'
          : 'run sabpf enforce --unload, then start again (before Linux 6.1 fresh programs do not load beside pinned links)';
      throw new Error(`failed to attach ${HOOK_PROGRAMS[hook]} globally: ${reason}; ${next}`, { cause: err });
    }
  }

  /** Cgroup ids whose links an earlier or this process pinned. */
  pinnedContainers(): bigint[] {
    const dir = join(this.pinRoot, 'links');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter(isContainerLinks)
      .map((name) => BigInt(name));
  }

  /**
   * Re-opens the pinned links of a container (after a restart). A link that
   * runs another build's program moves to this one's in one step
   * (BPF_LINK_UPDATE), so the container is never without the hook.
   */
  adoptContainer(id: bigint): ContainerLinks {
    this.checkOpen();
    const dir = this.linkDir(id);
    const result: ContainerLinks = { cgroupId: id, links: {} };
    for (const hook of ALL_HOOKS) {
      const pin = join(dir, hook);
      if (!existsSync(pin)) continue;
      const fd = this.addon.objGet(pin);
      result.links[hook] = fd;
      const info = this.addon.linkInfo(fd);
      // cgroupId 0: the cgroup is gone and the kernel detached the link
      // (an update would fail with ENOLINK). The initial sync removes it.
      if (info.progId === this.programId(hook) || info.cgroupId === 0n) continue;
      try {
        this.addon.linkUpdate(fd, this.programFds[hook]);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(
          `failed to move the ${hook} link of cgroup ${id} (${pin}) to this build's program: ${reason}; the earlier program keeps enforcing there. Run sabpf enforce --unload, then start again`,
          { cause: err },
        );
      }
      this.replacedLinks++;
    }
    return result;
  }

  /** Detaches a container's (or the global) links and removes their pins. */
  detach(links: ContainerLinks): void {
    const dir = this.linkDir(links.cgroupId === 0n ? 'global' : links.cgroupId);
    const failures: string[] = [];
    for (const hook of ALL_HOOKS) {
      const fd = links.links[hook];
      const pin = join(dir, hook);
      try {
        // Unpin first: a link lives while a pin or an fd holds it.
        if (existsSync(pin)) unlinkSync(pin);
        if (fd !== undefined) {
          detachOrClose(this.addon, fd);
          delete links.links[hook];
        }
      } catch (err) {
        failures.push(`${hook}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
    if (failures.length > 0) {
      throw new Error(`failed to detach the links of cgroup ${links.cgroupId}: ${failures.join('; ')}`);
    }
  }

  /** Closes a container's link fds and keeps the pins: enforcement goes on. */
  release(links: ContainerLinks): void {
    for (const fd of Object.values(links.links)) if (fd !== undefined) this.addon.closeFd(fd);
    links.links = {};
  }

  updateElem(map: MapName, key: Buffer, value: Buffer, flags = 0): void {
    this.addon.mapUpdate(this.map(map), key, value, flags);
  }

  /** Writes many elements in one batch. Keys (and values) are Buffers of one size. */
  updateElems(map: MapName, entries: ReadonlyArray<readonly [Buffer, Buffer]>, flags = 0): number {
    if (entries.length === 0) return 0;
    const keys = Buffer.concat(entries.map(([k]) => k));
    const values = Buffer.concat(entries.map(([, v]) => v));
    return this.addon.mapUpdateBatch(this.map(map), keys, values, entries.length, flags);
  }

  deleteElem(map: MapName, key: Buffer): boolean {
    return this.addon.mapDelete(this.map(map), key);
  }

  lookupElem(map: MapName, key: Buffer): Buffer | null {
    return this.addon.mapLookup(this.map(map), key);
  }

  keys(map: MapName): Buffer[] {
    return this.addon.mapKeys(this.map(map));
  }

  /**
   * Writes a container's config (cgroup id -> struct sabpf_config). The
   * policy epoch goes up before and after the write. Before: the programs
   * cache directory state per slot, and a slot number may come back after a
   * restart, so state cached before this write must not be taken for the
   * program the config now names. After: each CPU keeps the last config it
   * found (struct sabpf_config_memo), valid while the epoch is the value it
   * read before the search.
   */
  setConfig(id: bigint, config: Buffer): void {
    this.bumpEpoch();
    this.updateElem('sabpf_configs', u64Key(id), config);
    this.bumpEpoch();
  }

  /** Removes a container's config, then bumps the epoch as setConfig does. */
  deleteConfig(id: bigint): boolean {
    const deleted = this.deleteElem('sabpf_configs', u64Key(id));
    this.bumpEpoch();
    return deleted;
  }

  /**
   * Moves the policy epoch on (see nextEpoch). Only the enforcer writes it,
   * one write at a time, so a read and an update need no atomic increment.
   */
  bumpEpoch(): void {
    const key = Buffer.alloc(4);
    const epoch = this.lookupElem('sabpf_epoch', key);
    if (epoch === null) throw new Error('failed to read map sabpf_epoch: entry 0 is missing; rebuild enforcer/bpf');
    this.updateElem('sabpf_epoch', key, nextEpoch(epoch));
  }

  /** Counters summed over CPUs, by enum sabpf_counter name. */
  counters(): Record<keyof typeof Counter, bigint> {
    const fd = this.map('sabpf_counters');
    const sum = (index: number): bigint => this.addon.readPercpuU64(fd, index).reduce((a, b) => a + b, 0n);
    const out = {} as Record<keyof typeof Counter, bigint>;
    for (const [name, index] of Object.entries(Counter) as [keyof typeof Counter, number][]) {
      if (index >= COUNTERS) throw new Error(`failed to read counter ${name}: index ${index} is past SABPF_COUNTERS`);
      out[name] = sum(index);
    }
    return out;
  }

  /**
   * Delivers every ring-buffer record, decoded, on the event loop. Records
   * are read by a native thread, so a slow callback never stalls the kernel
   * side. Records the ring could not hold are counted in eventsDropped.
   */
  subscribe(onEvent: (event: SabpfEvent) => void, onError?: (err: Error) => void): EventSubscription {
    const reader: NativeRingBufferReader = new this.addon.RingBufferReader(this.map('sabpf_events'), (record) => {
      try {
        onEvent(decodeEvent(record));
      } catch (err) {
        if (onError) onError(err instanceof Error ? err : new Error(String(err)));
        else throw err;
      }
    });
    return {
      stop: () => reader.stop(),
      drained: () => reader.drained(),
      unref: () => reader.unref(),
      stats: () => reader.stats(),
    };
  }

  /** Closes this process's fds. Pinned programs, maps and links stay. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.ownedFds) this.addon.closeFd(fd);
    this.object?.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('failed to use the sabpf programs: close() was called');
  }
}

const EOPNOTSUPP = 95;

/**
 * Ends an attachment now even if another process still holds the link.
 * Cgroup links support BPF_LINK_DETACH. The tracing links of global mode do
 * not (EOPNOTSUPP) and end when their last fd and pin are gone.
 */
function detachOrClose(addon: Pick<NativeAddon, 'detachLink' | 'closeFd'>, fd: number): void {
  try {
    addon.detachLink(fd);
  } catch (err) {
    if ((err as { errno?: number }).errno !== EOPNOTSUPP) {
      addon.closeFd(fd);
      throw err;
    }
  }
  addon.closeFd(fd);
}

function u64Key(id: bigint): Buffer {
  const key = Buffer.alloc(8);
  key.writeBigUInt64LE(id);
  return key;
}

/**
 * Returns the policy epoch after current (8 bytes, little-endian): the
 * counter n + 1 in both 32-bit halves. The kernel copies a value written from
 * user space with memcpy, which may move one byte at a time, so a program can
 * read a mix of the old and the new value. With both halves equal, any such
 * mix has unequal halves, and the programs refuse it (sabpf_epoch_read in
 * decide.h) instead of keeping state under an epoch that may come round
 * again. The larger half of current is the counter, so that a plain counter
 * of an older build moves on too.
 */
export function nextEpoch(current: Buffer): Buffer {
  const lo = current.readUInt32LE(0);
  const hi = current.readUInt32LE(4);
  const n = ((lo > hi ? lo : hi) + 1) >>> 0;
  const next = Buffer.alloc(8);
  next.writeUInt32LE(n, 0);
  next.writeUInt32LE(n, 4);
  return next;
}

/**
 * Loads the sabpf programs, or adopts the ones an earlier enforcer of this
 * build pinned for this mode (their maps and links are still in use, so
 * reloading would only duplicate them). Programs another build pinned are
 * loaded afresh beside its maps; adoptContainer and attachGlobal then move
 * its links to them.
 */
export function loadPrograms(options: LoadOptions = {}): KernelPrograms {
  const addon = loadAddon();
  checkLayout(addon);
  const variant = objectVariant(options.mode ?? 'auto');
  const mode: AttachMode = variant === 'cgroup' ? 'cgroup' : 'global';
  const pinRoot = options.pinRoot ?? '/sys/fs/bpf/sabpf';
  checkNoOtherVariant(pinRoot, variant);
  const progDir = join(pinRoot, `progs-${variant}`);
  const mapDir = join(pinRoot, 'maps');
  mkdirSync(progDir, { recursive: true });
  mkdirSync(mapDir, { recursive: true });

  // The build whose programs are pinned: a second pin of one of them, named
  // by a digest of the object file. Without a readable object, pins are
  // adopted whatever their build (loading would fail anyway).
  const objectDir = options.objectDir ?? process.env['SABPF_BPF_DIR'] ?? join(sourceRoot, 'enforcer', 'bpf');
  const objectPath = join(objectDir, OBJECT_FILES[variant]);
  const digest = objectDigest(objectPath);
  const buildPin = digest === undefined ? undefined : join(progDir, `${BUILD_PIN_PREFIX}${digest}`);
  const pinnedProgs = ALL_HOOKS.map((hook) => join(progDir, HOOK_PROGRAMS[hook]));
  const pinnedMaps = MAP_NAMES.map((name) => join(mapDir, name));
  const otherBuild = buildPin !== undefined && !existsSync(buildPin) && pinnedProgs.some((p) => existsSync(p));

  // Adopt: every program and map of this variant is pinned, by this build.
  if (!options.reload && !otherBuild && [...pinnedProgs, ...pinnedMaps].every((p) => existsSync(p))) {
    const owned: number[] = [];
    const open = (path: string): number => {
      const fd = addon.objGet(path);
      owned.push(fd);
      return fd;
    };
    try {
      const programs = Object.fromEntries(ALL_HOOKS.map((hook, i) => [hook, open(pinnedProgs[i]!)])) as Record<HookName, number>;
      const maps = Object.fromEntries(MAP_NAMES.map((name, i) => [name, open(pinnedMaps[i]!)])) as Record<MapName, number>;
      const adopted = new KernelPrograms(addon, mode, variant, pinRoot, true, programs, maps, owned, undefined);
      // A previous enforcer may have died between a config write and the
      // bump after it, leaving per-CPU memos of the old config valid.
      adopted.bumpEpoch();
      return adopted;
    } catch (err) {
      for (const fd of owned) addon.closeFd(fd);
      throw err;
    }
  }

  // Whatever the build, fresh programs replace the pinned links' ones.
  checkReplaceKernel({ pinRoot, links: countPinnedLinks(pinRoot, variant), build: pinnedBuildName(progDir, buildPin) });

  // Load: libbpf reuses the pinned maps when they exist, else creates and pins them.
  const entries: Record<string, number> = {};
  if (options.ringBufferBytes !== undefined) entries['sabpf_events'] = options.ringBufferBytes;
  let object: NativeBpfObject;
  try {
    object = new addon.BpfObject(objectPath, mapDir, entries);
  } catch (err) {
    if (!otherBuild) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `failed to load ${objectPath} beside the state an earlier build pinned under ${pinRoot}: ${reason}. The earlier build's programs keep enforcing. If its maps differ from this build's, run sabpf enforce --unload (enforcement stops until the next start), then start again`,
      { cause: err },
    );
  }
  try {
    const progFds = object.programs();
    const mapFds = object.maps();
    const programs = {} as Record<HookName, number>;
    for (const hook of ALL_HOOKS) {
      const fd = progFds[HOOK_PROGRAMS[hook]];
      if (fd === undefined) throw new Error(`failed to find program ${HOOK_PROGRAMS[hook]} in ${objectPath}: rebuild enforcer/bpf`);
      programs[hook] = fd;
    }
    const maps = {} as Record<MapName, number>;
    for (const name of MAP_NAMES) {
      const fd = mapFds[name];
      if (fd === undefined) throw new Error(`failed to find map ${name} in ${objectPath}: rebuild enforcer/bpf`);
      maps[name] = fd;
    }

    // Pin. The build pins go first and this build's comes last, so a crash
    // in between leaves pins no build claims, and the next start loads again.
    for (const name of readdirSync(progDir)) {
      if (name.startsWith(BUILD_PIN_PREFIX)) unlinkSync(join(progDir, name));
    }
    for (const hook of ALL_HOOKS) {
      const pin = join(progDir, HOOK_PROGRAMS[hook]);
      if (existsSync(pin)) unlinkSync(pin);
      addon.objPin(programs[hook], pin);
    }
    if (buildPin !== undefined) addon.objPin(programs[ALL_HOOKS[0]!], buildPin);
    return new KernelPrograms(addon, mode, variant, pinRoot, false, programs, maps, [], object, otherBuild);
  } catch (err) {
    object.close();
    throw err;
  }
}

/** Names the pin that marks which build's programs are pinned. */
const BUILD_PIN_PREFIX = 'build-';

/** Returns the first 16 hex digits of the object file's SHA-256 (which build it is), or undefined when it cannot be read. */
function objectDigest(objectPath: string): string | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(objectPath);
  } catch {
    return undefined;
  }
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/**
 * Throws when links of another variant are pinned under pinRoot. They keep
 * enforcing after their enforcer exits, so starting beside them would run
 * two sets of programs per hook, and their configs would go stale.
 */
export function checkNoOtherVariant(pinRoot: string, variant: ObjectVariant): void {
  const linksDir = join(pinRoot, 'links');
  if (!existsSync(linksDir)) return;
  const attached = readdirSync(linksDir).filter((name) => readdirSync(join(linksDir, name)).length > 0);
  // Cgroup mode pins per container (cgroup ids) and its node-wide links under its own name.
  const others = attached.filter((name) => name !== variant && (variant !== 'cgroup' || !isContainerLinks(name)));
  if (others.length === 0) return;
  const leftovers = others
    .map((name) => (isContainerLinks(name) ? `the links of cgroup ${name}` : `the node-wide links of the ${name} object`))
    .join(', ');
  throw new Error(
    `failed to load the ${variant} programs: ${leftovers} from an earlier run are still attached under ${pinRoot}; run sabpf enforce --unload first, then start again`,
  );
}

/** Checks that the addon's sabpf.h and compiler/layout.ts agree on every struct size. */
function checkLayout(addon: NativeAddon): void {
  for (const [name, size] of Object.entries(addon.sizes)) {
    const expected = SIZE[name as keyof typeof SIZE];
    if (expected !== size) {
      throw new Error(
        `failed to use the native addon: struct ${name} is ${size} bytes in enforcer/bpf/sabpf.h and ${expected} in compiler/layout.ts; rebuild the addon or fix the layout`,
      );
    }
  }
}

/**
 * Ends all sabpf enforcement under pinRoot and returns once the kernel has
 * let go of the programs. Cgroup links are detached at once. Global-mode
 * links cannot be (EOPNOTSUPP): they end when their last pin goes, and the
 * kernel may free them after the unlink has returned (seen on 5.10, where a
 * check right after removing the pins was still denied). So the programs'
 * ids are polled until the kernel has freed them, which it does only after
 * every link to them is released.
 */
export async function unloadAll(
  pinRoot = '/sys/fs/bpf/sabpf',
  timeoutMs = 10_000,
  addon: Pick<NativeAddon, 'objGet' | 'progInfo' | 'progExists' | 'linkInfo' | 'detachLink' | 'closeFd'> = loadAddon(),
): Promise<void> {
  if (!existsSync(pinRoot)) return;
  // Programs pinned, and those only a link references (another build's
  // during a takeover): all must be gone before enforcement has ended.
  const progIds = new Set<number>();
  for (const dir of readdirSync(pinRoot)) {
    const isProgs = dir.startsWith('progs-');
    if (!isProgs && dir !== 'links') continue;
    for (const path of pinnedFiles(join(pinRoot, dir))) {
      const fd = addon.objGet(path);
      if (isProgs) {
        progIds.add(addon.progInfo(fd).id);
        addon.closeFd(fd);
      } else {
        progIds.add(addon.linkInfo(fd).progId);
        detachOrClose(addon, fd);
      }
    }
  }
  removePins(pinRoot);

  const deadline = Date.now() + timeoutMs;
  let left = [...progIds].sort((a, b) => a - b).filter((id) => addon.progExists(id));
  while (left.length > 0) {
    if (Date.now() > deadline) {
      throw new Error(
        `failed to end enforcement: programs ${left.join(', ')} are still loaded ${timeoutMs / 1000} s after their pins were removed, so another process still has them open; stop any running sabpf enforce and run sabpf enforce --unload again`,
      );
    }
    await sleep(20);
    left = left.filter((id) => addon.progExists(id));
  }
}

/** Lists the files below dir, at any depth. */
function pinnedFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? pinnedFiles(path) : [path];
  });
}

/** Removes every pin under pinRoot: programs, maps and links (all enforcement ends). */
export function removePins(pinRoot = '/sys/fs/bpf/sabpf'): void {
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        rmdirSync(path);
      } else {
        unlinkSync(path);
      }
    }
  };
  if (existsSync(pinRoot)) {
    walk(pinRoot);
    rmdirSync(pinRoot);
  }
}
