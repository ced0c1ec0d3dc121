// The containers of a pod that the enforcer confines: every init, regular and
// ephemeral container whose state is running, with the cgroup directory
// the resolver found for it. Waiting containers have no processes yet and
// terminated ones have none left.

import type { NodeContainer } from '../core/types.js';
import type { CgroupResolver } from './cgroups.js';
import { parseContainerId } from './cgroups.js';
import type { ContainerStatus, Pod } from './objects.js';

export interface PodContainers {
  /** Running containers whose cgroup was found. */
  running: NodeContainer[];
  /** Running containers that could not be placed, with the reason (cgroup not found, unknown runtime). */
  problems: { container: string; containerId: string; error: string }[];
}

export function podContainers(pod: Pod, resolver: CgroupResolver): PodContainers {
  const result: PodContainers = { running: [], problems: [] };
  const namespace = pod.metadata?.namespace ?? '';
  const podName = pod.metadata?.name ?? '';
  const podUid = pod.metadata?.uid ?? '';
  // Copied: NodeContainer outlives the cached pod, which must stay untouched.
  const labels = { ...(pod.metadata?.labels ?? {}) };

  const statuses: ContainerStatus[] = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
    ...(pod.status?.ephemeralContainerStatuses ?? []),
  ];
  for (const status of statuses) {
    if (!status.state?.running || !status.containerID) continue;
    try {
      const { runtime, id } = parseContainerId(status.containerID);
      const cgroupPath = resolver.resolve({ runtime, id, podUid, qosClass: pod.status?.qosClass, containerName: status.name });
      result.running.push({ namespace, pod: podName, container: status.name, labels: { ...labels }, podUid, containerId: id, cgroupPath });
    } catch (err) {
      result.problems.push({ container: status.name, containerId: status.containerID, error: (err as Error).message });
    }
  }
  return result;
}
