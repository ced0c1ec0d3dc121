// The kernel's preemption model, which the BPF programs depend on: they keep
// a run's state in per-CPU maps (path stacks, key scratch, the config memo),
// and the kernel runs LSM programs with migration disabled but preemption
// enabled. Under full, lazy or real-time preemption, a task preempted
// mid-check could have its per-CPU state rewritten by another task's check
// on that CPU, and decide with another container's rules. Under no or
// voluntary preemption, a check runs to its end before the CPU moves on.

import { gunzipSync } from 'node:zlib';

export type PreemptModel = 'none' | 'voluntary' | 'full' | 'lazy' | 'rt';

/** Models under which a BPF program is not preempted by another task. */
export const SAFE_PREEMPT_MODELS: readonly PreemptModel[] = ['none', 'voluntary'];

export interface PreemptionReading {
  /** undefined when no source reported it. */
  model: PreemptModel | undefined;
  /** The file or command the model was read from, for the message. */
  source: string;
}

export interface PreemptionPaths {
  /** debugfs: the models, the active one in parentheses (PREEMPT_DYNAMIC kernels). */
  debugfs: string;
  cmdline: string;
  /** Kernel config files to try for the build's default, plain or gzip (/proc/config.gz). */
  configs: string[];
}

export function defaultPreemptionPaths(kernelRelease: string): PreemptionPaths {
  return {
    debugfs: '/sys/kernel/debug/sched/preempt',
    cmdline: '/proc/cmdline',
    configs: [`/boot/config-${kernelRelease}`, '/proc/config.gz'],
  };
}

const MODELS = new Set<string>(['none', 'voluntary', 'full', 'lazy']);

function asModel(word: string | undefined): PreemptModel | undefined {
  return word !== undefined && MODELS.has(word) ? (word as PreemptModel) : undefined;
}

/**
 * Returns the active model from debugfs text such as "none (voluntary) full
 * lazy": the word in parentheses. Returns 'unknown' for a word that names no
 * model listed here, so that a new model is refused rather than guessed.
 */
export function parseDebugfsPreempt(text: string): PreemptModel | 'unknown' {
  return asModel(/\(([^)]*)\)/u.exec(text)?.[1]) ?? 'unknown';
}

/**
 * Returns the model the kernel takes from its command line: the last valid
 * preempt=, since the kernel ignores an invalid one and keeps the one
 * before. Quotes are dropped, as the kernel's parser drops them.
 */
export function parseCmdlinePreempt(cmdline: string): PreemptModel | undefined {
  let model: PreemptModel | undefined;
  for (const word of cmdline.replace(/"/gu, '').trim().split(/\s+/u)) {
    if (word === '--') break; // the rest goes to init
    if (word.startsWith('preempt=')) model = asModel(word.slice('preempt='.length)) ?? model;
  }
  return model;
}

/** Returns the build's model from a kernel config: CONFIG_PREEMPT_RT, _LAZY, PREEMPT, _VOLUNTARY or _NONE. */
export function parseConfigPreempt(config: string): PreemptModel | undefined {
  const set = (name: string): boolean => new RegExp(`^${name}=y$`, 'mu').test(config);
  if (set('CONFIG_PREEMPT_RT')) return 'rt';
  if (set('CONFIG_PREEMPT_LAZY')) return 'lazy';
  if (set('CONFIG_PREEMPT')) return 'full';
  if (set('CONFIG_PREEMPT_VOLUNTARY')) return 'voluntary';
  if (set('CONFIG_PREEMPT_NONE')) return 'none';
  return undefined;
}

/**
 * Reads the active model. debugfs shows it on a PREEMPT_DYNAMIC build.
 * Without debugfs, a dynamic build (PREEMPT_DYNAMIC in `uname -v`, as on
 * 6.1, or CONFIG_PREEMPT_DYNAMIC in the config) takes preempt= from the
 * command line, else the config's default. Other builds are named by
 * `uname -v`: PREEMPT_RT, PREEMPT, or nothing for none and voluntary.
 * NOTE: older dynamic builds may print PREEMPT, so without debugfs or a
 * config they are taken for full preemption and rejected.
 */
export function readPreemptModel(
  unameVersion: string,
  read: (path: string) => string | undefined,
  paths: PreemptionPaths,
): PreemptionReading {
  if (/\bPREEMPT_RT\b/u.test(unameVersion)) return { model: 'rt', source: 'uname -v' };

  const debugfs = read(paths.debugfs);
  if (debugfs !== undefined) {
    const active = parseDebugfsPreempt(debugfs);
    if (active === 'unknown') return { model: undefined, source: `${paths.debugfs} names no known model: ${debugfs.trim() || '(empty)'}` };
    return { model: active, source: paths.debugfs };
  }

  // The first config that names a model; later ones (a gzip) are not read.
  let config: { path: string; text: string; model: PreemptModel } | undefined;
  for (const path of paths.configs) {
    const text = read(path);
    const model = text === undefined ? undefined : parseConfigPreempt(text);
    if (text !== undefined && model !== undefined) {
      config = { path, text, model };
      break;
    }
  }

  const dynamic = /\bPREEMPT_DYNAMIC\b/u.test(unameVersion) || /^CONFIG_PREEMPT_DYNAMIC=y$/mu.test(config?.text ?? '');
  if (dynamic) {
    const cmdline = read(paths.cmdline);
    const fromCmdline = cmdline === undefined ? undefined : parseCmdlinePreempt(cmdline);
    if (fromCmdline) return { model: fromCmdline, source: `preempt= in ${paths.cmdline}` };
    if (config) return { model: config.model, source: `the default in ${config.path}` };
    return { model: undefined, source: '' };
  }

  // PREEMPT_LAZY builds that are not dynamic say PREEMPT_LAZY.
  if (/\bPREEMPT_LAZY\b/u.test(unameVersion)) return { model: 'lazy', source: 'uname -v' };
  if (/\bPREEMPT\b/u.test(unameVersion)) return { model: 'full', source: 'uname -v' };
  return { model: 'voluntary', source: 'uname -v, which names no preemption: none or voluntary' };
}

/** Reads a file as text, gunzipping a .gz; undefined when it cannot be read. */
export function readKernelText(path: string, readFile: (path: string) => Buffer): string | undefined {
  try {
    const data = readFile(path);
    return (path.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Returns the preflight problem for a reading, or undefined when the model is safe. */
export function preemptionProblem(reading: PreemptionReading, paths: PreemptionPaths): string | undefined {
  const needs = "sabpf's BPF programs keep per-CPU state that a preempted check would share with another task";
  if (reading.model === undefined && reading.source !== '') {
    return `cannot tell the kernel's preemption model: ${reading.source}; ${needs}, so boot with preempt=voluntary and check that ${paths.debugfs} shows (voluntary)`;
  }
  if (reading.model === undefined) {
    return (
      `cannot tell the kernel's preemption model: a PREEMPT_DYNAMIC kernel, and none of ${paths.debugfs}, ` +
      `preempt= in ${paths.cmdline} or ${paths.configs.join(', ')} gave a model; ` +
      "mount debugfs at /sys/kernel/debug or the host's /boot read-only, so that sabpf can check it runs without full preemption"
    );
  }
  if (SAFE_PREEMPT_MODELS.includes(reading.model)) return undefined;
  if (reading.model === 'rt') {
    return `the kernel is a real-time (PREEMPT_RT) build (${reading.source}), which always preempts: ${needs}; use a kernel without PREEMPT_RT`;
  }
  const guessed =
    reading.source === 'uname -v'
      ? "; if this is a PREEMPT_DYNAMIC kernel older than its uname -v shows, mount debugfs at /sys/kernel/debug or the host's /boot read-only so that sabpf can read the active model"
      : '';
  return (
    `the kernel runs with ${reading.model} preemption (${reading.source}): ${needs}; ` +
    'boot a PREEMPT_DYNAMIC kernel with preempt=voluntary (or preempt=none), or use a kernel built with voluntary preemption' +
    guessed
  );
}
