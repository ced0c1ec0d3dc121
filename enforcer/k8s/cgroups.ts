// Container cgroup v2 directories. The kubelet and the container runtime
// name them from the pod UID, the pod's QoS class and the container id,
// in one of two layouts chosen by the cgroup driver:
//
//   systemd:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, - as _>.slice/cri-containerd-<id>.scope
//             (Guaranteed pods sit directly under kubepods.slice: kubepods.slice/kubepods-pod<uid>.slice/...)
//   cgroupfs: kubepods/burstable/pod<uid>/<id>          (CRI-O: crio-<id>)
//             (Guaranteed: kubepods/pod<uid>/<id>)
//
// and a third, `flat`, used only by the test kubelet (test-kubelet.ts):
//
//   flat:     sabpf-test/<pod uid>/<container name>
//
// The driver is a node setting the API server does not report, so the
// resolver probes the disk for the candidates and takes the one that exists.

import { statSync } from 'node:fs';
import { join } from 'node:path';

import type { QosClass } from './objects.js';

export type CgroupLayout = 'systemd' | 'cgroupfs' | 'flat';
/** A layout, or auto: systemd, then cgroupfs, then flat, whichever exists. */
export type LayoutChoice = CgroupLayout | 'auto';
export type Runtime = 'containerd' | 'cri-o' | 'docker' | 'test';

export const LAYOUTS: readonly LayoutChoice[] = ['auto', 'systemd', 'cgroupfs', 'flat'];
export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';
/** Folder under the cgroup root where the test kubelet creates pod cgroups. */
export const FLAT_PARENT = 'sabpf-test';

export interface ContainerLocation {
  runtime: Runtime;
  /** Container id without the runtime prefix. */
  id: string;
  podUid: string;
  /** Missing in a pod status written before the kubelet set it; every class is then tried. */
  qosClass: QosClass | undefined;
  containerName: string;
}

const RUNTIME_PREFIXES: Record<string, Runtime> = {
  containerd: 'containerd',
  'cri-o': 'cri-o',
  docker: 'docker',
  test: 'test',
};

/** Splits `containerd://<id>` into runtime and id. */
export function parseContainerId(containerId: string): { runtime: Runtime; id: string } {
  const match = /^([a-z-]+):\/\/([A-Za-z0-9_.-]+)$/u.exec(containerId);
  const runtime = match ? RUNTIME_PREFIXES[match[1] as string] : undefined;
  if (!match || !runtime) {
    throw new Error(
      `failed to parse containerID ${JSON.stringify(containerId)}: expected <runtime>://<id> with runtime containerd, cri-o or docker (test for the test kubelet)`,
    );
  }
  return { runtime, id: match[2] as string };
}

const QOS_CLASSES: readonly QosClass[] = ['Guaranteed', 'Burstable', 'BestEffort'];

/** Returns the cgroup directories, relative to the cgroup root, that `layout` gives a container, in probe order. */
export function candidatePaths(location: ContainerLocation, layout: CgroupLayout): string[] {
  if (layout === 'flat') return [join(FLAT_PARENT, location.podUid, location.containerName)];
  // The test runtime has no kubelet layout: it exists only in the flat one.
  if (location.runtime === 'test') return [];
  const classes = location.qosClass ? [location.qosClass] : QOS_CLASSES;
  return classes.map((qos) => (layout === 'systemd' ? systemdPath(location, qos) : cgroupfsPath(location, qos)));
}

function systemdPath(location: ContainerLocation, qos: QosClass): string {
  // systemd unit names use "-" as the hierarchy separator, so the kubelet escapes the UID's dashes.
  const uid = location.podUid.replaceAll('-', '_');
  const pod = qos === 'Guaranteed' ? `kubepods-pod${uid}.slice` : `kubepods-${qos.toLowerCase()}-pod${uid}.slice`;
  const parents = qos === 'Guaranteed' ? ['kubepods.slice'] : ['kubepods.slice', `kubepods-${qos.toLowerCase()}.slice`];
  return join(...parents, pod, systemdScope(location));
}

function systemdScope(location: ContainerLocation): string {
  switch (location.runtime) {
    case 'containerd':
      return `cri-containerd-${location.id}.scope`;
    case 'cri-o':
      return `crio-${location.id}.scope`;
    default:
      return `docker-${location.id}.scope`;
  }
}

function cgroupfsPath(location: ContainerLocation, qos: QosClass): string {
  const parents = qos === 'Guaranteed' ? ['kubepods'] : ['kubepods', qos.toLowerCase()];
  // CRI-O's cgroupfs manager prefixes the id; containerd and dockershim use it bare.
  const leaf = location.runtime === 'cri-o' ? `crio-${location.id}` : location.id;
  return join(...parents, `pod${location.podUid}`, leaf);
}

/** Layouts tried for a choice, in order. */
export function layoutsOf(choice: LayoutChoice): CgroupLayout[] {
  return choice === 'auto' ? ['systemd', 'cgroupfs', 'flat'] : [choice];
}

export class CgroupResolver {
  constructor(
    readonly root: string = DEFAULT_CGROUP_ROOT,
    readonly layout: LayoutChoice = 'auto',
    private readonly isDirectory: (path: string) => boolean = directoryExists,
  ) {
    if (!LAYOUTS.includes(layout)) {
      throw new Error(`failed to configure the cgroup layout: unknown layout ${JSON.stringify(layout)}; use ${LAYOUTS.join(', ')}`);
    }
  }

  /** Returns the absolute cgroup directory of a container. Throws, naming every path tried, when none exists. */
  resolve(location: ContainerLocation): string {
    const tried: string[] = [];
    for (const layout of layoutsOf(this.layout)) {
      for (const relative of candidatePaths(location, layout)) {
        const path = join(this.root, relative);
        if (this.isDirectory(path)) return path;
        tried.push(path);
      }
    }
    const fix =
      tried.length === 0
        ? `runtime ${location.runtime} has no cgroup in layout ${this.layout}; use layout flat for test:// containers`
        : `check --cgroup-root (${this.root}) points at the node's cgroup v2 mount and --cgroup-layout (${this.layout}) matches the kubelet's cgroup driver`;
    throw new Error(
      `failed to find the cgroup of container ${location.containerName} (${location.runtime}://${location.id}) of pod ${location.podUid}: tried ${tried.length === 0 ? 'no path' : tried.join(', ')}; ${fix}`,
    );
  }
}

function directoryExists(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}
