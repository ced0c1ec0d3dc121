// One build of the sabpf BPF object as the kernel benchmark uses it: loaded
// through the native addon directly rather than enforcer/kernel, so that an
// older build with fewer programs (the "before" side of a comparison) loads
// too. Each build gets its own pinned maps.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { loadAddon, type NativeAddon, type NativeBpfObject } from '../../enforcer/kernel/addon.js';

export interface BenchObject {
  /** Label of the build in results ("after", "before"). */
  label: string;
  path: string;
  addon: NativeAddon;
  object: NativeBpfObject;
  /** Program name to fd, every program of the object. */
  programs: Record<string, number>;
  maps: Record<string, number>;
}

/** Loads an object with its maps pinned under pinRoot/<label>/maps. */
export function loadObject(label: string, path: string, pinRoot: string): BenchObject {
  const addon = loadAddon();
  const mapDir = join(pinRoot, label, 'maps');
  mkdirSync(mapDir, { recursive: true });
  const object = new addon.BpfObject(path, mapDir, {});
  return { label, path, addon, object, programs: object.programs(), maps: object.maps() };
}

/** Returns the fd of one of the object's maps. */
export function mapFd(o: BenchObject, name: string): number {
  const fd = o.maps[name];
  if (fd === undefined) throw new Error(`failed to find map ${name} in ${o.path}: rebuild enforcer/bpf`);
  return fd;
}
