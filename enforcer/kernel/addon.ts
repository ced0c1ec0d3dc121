// The native addon (enforcer/native, libbpf) and its types. This is the only
// file of the project that loads the .node file, and the rest of the enforcer
// goes through the typed API of enforcer/kernel/index.ts. The C++ side checks
// argument types and calls libbpf, and defaults live in TypeScript.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A loaded BPF object file. Program and map fds belong to it until close(). */
export interface NativeBpfObject {
  programs(): Record<string, number>;
  maps(): Record<string, number>;
  /** Attaches with bpf_program__attach_cgroup and returns a link fd owned by the caller. */
  attachCgroup(program: string, cgroupPath: string): number;
  /** Attaches with bpf_program__attach_lsm and returns a link fd owned by the caller. */
  attachGlobal(program: string): number;
  close(): void;
}

export interface NativeRingBufferReader {
  stop(): void;
  /** Settles once stop() was called and every record queued before it was delivered. */
  drained(): Promise<void>;
  ref(): void;
  unref(): void;
  stats(): { records: bigint; lost: bigint; queueFullWaits: bigint; pollError: number; running: boolean };
}

export interface NativeMapInfo {
  id: number;
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface NativeLinkInfo {
  id: number;
  type: number;
  progId: number;
  cgroupId?: bigint;
  attachType?: number;
}

export interface NativeAddon {
  BpfObject: new (path: string, pinMapsDir: string, mapEntries: Record<string, number>) => NativeBpfObject;
  RingBufferReader: new (mapFd: number, onRecord: (record: Buffer) => void) => NativeRingBufferReader;
  objGet(path: string): number;
  objPin(fd: number, path: string): void;
  attachCgroupFd(progFd: number, cgroupPath: string): number;
  attachGlobalFd(progFd: number): number;
  detachLink(linkFd: number): void;
  linkUpdate(linkFd: number, progFd: number): void;
  closeFd(fd: number): void;
  /** fd of the folder with an exclusive flock on it, or null when another open file holds the lock. */
  lockFolder(path: string): number | null;
  mapInfo(fd: number): NativeMapInfo;
  progInfo(fd: number): { id: number; name: string; type: number; verifiedInsns: number };
  progExists(id: number): boolean;
  linkInfo(fd: number): NativeLinkInfo;
  possibleCpus(): number;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void;
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags: number): number;
  mapDelete(fd: number, key: Buffer): boolean;
  mapLookup(fd: number, key: Buffer): Buffer | null;
  mapKeys(fd: number): Buffer[];
  readPercpuU64(fd: number, index: number): bigint[];
  /** sizeof() of the sabpf.h structs, as compiled into the addon. */
  sizes: { config: number; nodeKey: number; node: number; netKey: number; portKey: number; event: number };
}

// Compiled, this file is dist/enforcer/kernel/addon.js (three levels below
// the project root). Run from source it is enforcer/kernel/addon.ts (two).
const here = dirname(fileURLToPath(import.meta.url));
const sourceRoot = resolve(here, ...(here.split('/').includes('dist') ? ['..', '..', '..'] : ['..', '..']));

/** Where the addon is looked for: $SABPF_ADDON, else the node-gyp build output. */
export function addonPath(): string {
  return process.env['SABPF_ADDON'] ?? join(sourceRoot, 'enforcer', 'native', 'build', 'Release', 'sabpf.node');
}

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  try {
    cached = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `failed to load the native addon ${path}: ${reason}; build it with \`cd enforcer/native && npx node-gyp rebuild --nodedir=/usr\` (needs libbpf-dev)`,
      { cause: err },
    );
  }
  return cached;
}
