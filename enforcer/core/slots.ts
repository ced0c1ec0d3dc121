// Map entries of one compiled program under one slot. Every key starts with
// the slot (net keys after their prefixlen), so a program's entries can be
// written, found and deleted without touching other containers'.

import type { CompiledProgram, MapEntry } from '../../compiler/compile.js';
import { withSlot } from '../../compiler/layout.js';
import type { MapName } from '../kernel/index.js';
import type { KernelPort } from './kernel-port.js';

type SlotMap = 'sabpf_nodes' | 'sabpf_long_nodes' | 'sabpf_source_roots' | 'sabpf_net_prefixes' | 'sabpf_ports';

const TABLES: [
  SlotMap,
  keyof Pick<CompiledProgram, 'nodes' | 'longNodes' | 'sourceRoots' | 'netPrefixes' | 'ports'>,
  Parameters<typeof withSlot>[2],
][] = [
  ['sabpf_nodes', 'nodes', 'nodes'],
  ['sabpf_long_nodes', 'longNodes', 'nodes'],
  ['sabpf_source_roots', 'sourceRoots', 'sourceRoots'],
  ['sabpf_net_prefixes', 'netPrefixes', 'netPrefixes'],
  ['sabpf_ports', 'ports', 'ports'],
];

/** Byte offset of the slot in each map's key. */
const SLOT_OFFSET: Record<SlotMap, number> = {
  sabpf_nodes: 0,
  sabpf_long_nodes: 0,
  sabpf_source_roots: 0,
  sabpf_net_prefixes: 4,
  sabpf_ports: 0,
};

export interface SlotKeys {
  map: SlotMap;
  keys: Buffer[];
}

/**
 * Writes a program's entries under `slot`. On failure, deletes what it wrote
 * and rethrows, so a failed update leaves the kernel as it was.
 */
export function writeSlot(kernel: KernelPort, program: CompiledProgram, slot: number): SlotKeys[] {
  const written: SlotKeys[] = [];
  try {
    for (const [map, field, kind] of TABLES) {
      const entries: [Buffer, Buffer][] = program[field].map((entry: MapEntry) => [withSlot(entry.key, slot, kind), entry.value]);
      const keys = entries.map(([key]) => key);
      written.push({ map, keys });
      kernel.updateElems(map, entries);
    }
  } catch (err) {
    deleteSlotKeys(kernel, written);
    throw err;
  }
  return written;
}

/** Deletes the given entries; entries already gone are not an error. */
export function deleteSlotKeys(kernel: KernelPort, written: readonly SlotKeys[]): void {
  for (const { map, keys } of written) for (const key of keys) kernel.deleteElem(map, key);
}

/**
 * Finds every entry of `slot` by scanning the maps: used for programs an
 * earlier enforcer process wrote, whose keys this process never saw.
 */
export function findSlotKeys(kernel: KernelPort, slot: number): SlotKeys[] {
  return TABLES.map(([map]) => ({
    map,
    keys: kernel.keys(map as MapName).filter((key) => key.readUInt32LE(SLOT_OFFSET[map]) === slot),
  }));
}

/** Returns the largest slot in use by any container config, 0 when none. */
export function maxSlotInUse(kernel: KernelPort): number {
  let max = 0;
  for (const key of kernel.keys('sabpf_configs')) {
    const config = kernel.lookupElem('sabpf_configs', key);
    if (config) max = Math.max(max, config.readUInt32LE(0));
  }
  return max;
}

/**
 * Deletes the entries of every slot that no container config names, and
 * returns how many it deleted. An enforcer killed between writing a slot
 * and naming it (or between unnaming it and deleting it) leaves such
 * entries behind. maxSlotInUse counts only named slots, so after a restart
 * the slot number can be given out again, and the old entries would mix
 * into the new program's trie.
 */
export function deleteUnnamedSlots(kernel: KernelPort): number {
  const named = new Set<number>();
  for (const key of kernel.keys('sabpf_configs')) {
    const config = kernel.lookupElem('sabpf_configs', key);
    if (config) named.add(config.readUInt32LE(0));
  }
  let deleted = 0;
  for (const [map] of TABLES) {
    for (const key of kernel.keys(map as MapName)) {
      if (named.has(key.readUInt32LE(SLOT_OFFSET[map]))) continue;
      if (kernel.deleteElem(map, key)) deleted++;
    }
  }
  return deleted;
}
