// The part of the kernel API (enforcer/kernel) the enforcer core uses. The
// real implementation is KernelPrograms; unit tests of the core's logic use
// an in-memory model, and the VM tests use the real kernel.

import type { Counter, HookName } from '../../compiler/layout.js';
import type { ContainerLinks, EventSubscription, MapName, SabpfEvent } from '../kernel/index.js';

export interface KernelPort {
  readonly mode: 'cgroup' | 'global';
  /** The object loaded (sabpf.bpf.o, -global or -legacy), for the logs. */
  readonly variant?: 'cgroup' | 'global' | 'legacy';
  /** True when another build's programs were pinned, for the logs. */
  readonly replacedBuild?: boolean;
  /** Pinned links moved to this build's programs so far, for the logs. */
  readonly replacedLinks?: number;
  updateElems(map: MapName, entries: ReadonlyArray<readonly [Buffer, Buffer]>, flags?: number): number;
  deleteElem(map: MapName, key: Buffer): boolean;
  lookupElem(map: MapName, key: Buffer): Buffer | null;
  keys(map: MapName): Buffer[];
  setConfig(id: bigint, config: Buffer): void;
  deleteConfig(id: bigint): boolean;
  attachContainer(cgroupPath: string, hooks: readonly HookName[]): ContainerLinks;
  attachGlobal(): ContainerLinks;
  adoptContainer(id: bigint): ContainerLinks;
  pinnedContainers(): bigint[];
  detach(links: ContainerLinks): void;
  release(links: ContainerLinks): void;
  subscribe(onEvent: (event: SabpfEvent) => void, onError?: (err: Error) => void): EventSubscription;
  counters(): Record<keyof typeof Counter, bigint>;
  close(): void;
}
