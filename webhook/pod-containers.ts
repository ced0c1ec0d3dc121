// The containers of a Pod object as the compiler selects them, read without
// throwing, because admission must respond for any pod the apiserver sends.

import { podContainers, type PodContainer } from '../cli/pod.js';
import { isObject } from './admission-review.js';

/**
 * Returns the init and regular containers of a pod, with the namespace taken
 * from `namespace` (the admission request's, which is authoritative) and the
 * pod name falling back to generateName. Returns [] for a pod without containers.
 */
export function containersOf(pod: Readonly<Record<string, unknown>>, namespace: string): PodContainer[] {
  const metadata = isObject(pod.metadata) ? pod.metadata : {};
  try {
    return podContainers({ ...pod, metadata: { ...metadata, namespace } });
  } catch {
    // podContainers throws only for a pod without containers, which the
    // apiserver's own validation rejects.
    return [];
  }
}

/** Names a pod for messages: its name, or its generateName prefix followed by "*". */
export function podName(pod: Readonly<Record<string, unknown>>): string {
  const metadata = isObject(pod.metadata) ? pod.metadata : {};
  if (typeof metadata.name === 'string' && metadata.name !== '') return metadata.name;
  if (typeof metadata.generateName === 'string' && metadata.generateName !== '') return `${metadata.generateName}*`;
  return '(unnamed)';
}

/** Describes a container for messages: `container "app"` or `init container "setup"`. */
export function describeContainer(container: PodContainer): string {
  return `${container.init ? 'init container' : 'container'} "${container.container}"`;
}
