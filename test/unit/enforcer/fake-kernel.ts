// An in-memory KernelPort for unit tests of the enforcer core's logic: maps
// are Maps of hex keys, links are records, and every call is logged in order
// so tests can check the sequence (config before attach, switch before
// delete). The real kernel is tested in the VM (test/vm/).

import type { Counter, HookName } from '../../../compiler/layout.js';
import type { KernelPort } from '../../../enforcer/core/kernel-port.js';
import type { ContainerLinks, EventSubscription, MapName, SabpfEvent } from '../../../enforcer/kernel/index.js';

export class FakeKernel implements KernelPort {
  readonly maps = new Map<string, Map<string, Buffer>>();
  readonly calls: string[] = [];
  readonly pinned = new Map<bigint, Set<HookName>>();
  /** Makes the next updateElems on this map throw. */
  failNextUpdate: MapName | undefined;
  onEvent: ((event: SabpfEvent) => void) | undefined;
  closed = false;

  constructor(readonly mode: 'cgroup' | 'global' = 'cgroup') {}

  private map(name: string): Map<string, Buffer> {
    let map = this.maps.get(name);
    if (!map) {
      map = new Map();
      this.maps.set(name, map);
    }
    return map;
  }

  updateElems(map: MapName, entries: ReadonlyArray<readonly [Buffer, Buffer]>): number {
    if (this.failNextUpdate === map) {
      this.failNextUpdate = undefined;
      throw new Error(`failed to update map ${map}: No space left on device (errno 28)`);
    }
    for (const [key, value] of entries) this.map(map).set(key.toString('hex'), Buffer.from(value));
    this.calls.push(`update ${map} ${entries.length}`);
    return entries.length;
  }

  deleteElem(map: MapName, key: Buffer): boolean {
    return this.map(map).delete(key.toString('hex'));
  }

  lookupElem(map: MapName, key: Buffer): Buffer | null {
    return this.map(map).get(key.toString('hex')) ?? null;
  }

  keys(map: MapName): Buffer[] {
    return [...this.map(map).keys()].map((k) => Buffer.from(k, 'hex'));
  }

  setConfig(id: bigint, config: Buffer): void {
    this.map('sabpf_configs').set(u64(id), Buffer.from(config));
    this.calls.push(`config ${id} slot ${config.readUInt32LE(0)}`);
  }

  deleteConfig(id: bigint): boolean {
    this.calls.push(`delete-config ${id}`);
    return this.map('sabpf_configs').delete(u64(id));
  }

  configOf(id: bigint): Buffer | undefined {
    return this.map('sabpf_configs').get(u64(id));
  }

  attachContainer(cgroupPath: string, hooks: readonly HookName[]): ContainerLinks {
    const id = BigInt(cgroupPath.length);
    const set = this.pinned.get(id) ?? new Set<HookName>();
    const links: ContainerLinks = { cgroupId: id, links: {} };
    for (const hook of hooks) {
      if (set.has(hook)) throw new Error(`failed to attach ${hook}: already pinned`);
      set.add(hook);
      links.links[hook] = 100;
    }
    this.pinned.set(id, set);
    this.calls.push(`attach ${id} ${hooks.join(',')}`);
    return links;
  }

  attachGlobal(): ContainerLinks {
    this.calls.push('attach-global');
    return { cgroupId: 0n, links: {} };
  }

  adoptContainer(id: bigint): ContainerLinks {
    const links: ContainerLinks = { cgroupId: id, links: {} };
    for (const hook of this.pinned.get(id) ?? []) links.links[hook] = 200;
    this.calls.push(`adopt ${id}`);
    return links;
  }

  pinnedContainers(): bigint[] {
    return [...this.pinned.keys()];
  }

  detach(links: ContainerLinks): void {
    this.pinned.delete(links.cgroupId);
    this.calls.push(`detach ${links.cgroupId}`);
  }

  release(links: ContainerLinks): void {
    links.links = {};
  }

  subscribe(onEvent: (event: SabpfEvent) => void): EventSubscription {
    this.onEvent = onEvent;
    return {
      stop: () => undefined,
      drained: () => Promise.resolve(),
      unref: () => undefined,
      stats: () => ({ records: 0n, lost: this.readerLost, queueFullWaits: 0n }),
    };
  }

  /** What the subscription's stats() reports as lost by the addon's reader. */
  readerLost = 0n;

  /** What counters() returns: tests set the kernel's running totals here. */
  counterValues: Record<keyof typeof Counter, bigint> = {
    eventsDropped: 0n,
    pathTruncated: 0n,
    noConfig: 0n,
    denied: 0n,
    audited: 0n,
    dirCacheHits: 0n,
    dirCacheFills: 0n,
    fileCacheHits: 0n,
  };

  counters(): Record<keyof typeof Counter, bigint> {
    return { ...this.counterValues };
  }

  close(): void {
    this.closed = true;
  }

  /** Number of entries of `slot` in the trie map. */
  slotEntries(slot: number): number {
    return this.keys('sabpf_nodes').filter((k) => k.readUInt32LE(0) === slot).length;
  }
}

function u64(id: bigint): string {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(id);
  return buffer.toString('hex');
}
