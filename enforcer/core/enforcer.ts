// The one owner of policy-to-container state on a node.
//
// State: the policies (namespace/name -> Policy) and the containers
// (cgroup path -> what is applied to it). Three kinds of change reach it
// through DesiredStateSink: a policy changes, a container appears or goes,
// and (through either) the set of policies selecting a container changes.
// Each change recompiles the affected containers and applies the result.
//
// Invariants:
// - Mutations run one at a time (a promise chain), so memory and kernel
//   maps never see two updates interleave.
// - A container's new program is written under a fresh slot, then the
//   container's config is switched to it in one map update, then the old
//   slot is deleted: there is never a moment with neither program in force.
// - A config is written before a program is attached, and a program is
//   detached before its config is deleted (an attached program without a
//   config denies every operation).
// - A failed kernel update deletes what it wrote and keeps the previous
//   program: memory and kernel stay consistent, and the last good policy
//   stays enforced.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { Counter as PromCounter, Gauge, type Registry } from 'prom-client';
import { compileSelected, type CompiledProgram } from '../../compiler/compile.js';
import { CGROUP_HOOKS, LSM_HOOK, MAX_POLICIES, type HookName } from '../../compiler/layout.js';
import { selectPolicies } from '../../compiler/selector.js';
import { policyKey, type Policy } from '../../compiler/types.js';
import { AuditBacklogFullError, type AuditWriter } from '../audit/index.js';
import { cgroupId as readCgroupId, type ContainerLinks, type EventSubscription, type SabpfEvent } from '../kernel/index.js';
import type { KernelPort } from './kernel-port.js';
import { resolveEvent } from './records.js';
import { deleteSlotKeys, deleteUnnamedSlots, findSlotKeys, maxSlotInUse, writeSlot, type SlotKeys } from './slots.js';
import type { DecisionRecord, DesiredStateSink, NodeContainer, PolicyNodeStatus, PolicyUpdate } from './types.js';

/** Replaced programs kept per container to resolve events queued before a switch. */
const HISTORY = 3;

export type SignatureCheck = (update: PolicyUpdate) => { ok: true } | { ok: false; reason: string };

export interface EnforcerOptions {
  kernel: KernelPort;
  node: string;
  logger: Logger;
  audit?: AuditWriter;
  registry?: Registry;
  /** When set, a policy is applied only if this accepts its signature. */
  checkSignature?: SignatureCheck;
  /** Called for every recorded decision, after it is written to the audit trail. */
  onDecision?: (record: DecisionRecord) => void;
  /** How often kernel counters (dropped events, truncated paths) are read, in milliseconds. Default 1000. */
  counterIntervalMs?: number;
  /** Resolves a cgroup path to the id the kernel reports; tests replace it. Default: the directory's inode. */
  cgroupIdOf?: (cgroupPath: string) => bigint;
  /** cgroup v2 mount, for resolving events of child cgroups. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
}

interface Applied {
  slot: number;
  program: CompiledProgram | undefined;
  /** Entries of the slot; undefined for a slot an earlier process wrote (found by scanning when deleted). */
  keys: SlotKeys[] | undefined;
}

interface ContainerState {
  container: NodeContainer;
  id: bigint;
  links: ContainerLinks | undefined;
  applied: Applied | undefined;
  /** Policies of the applied program. */
  selected: Policy[];
  /** Policies that select the container now, applied or not (status reports on these). */
  desired: Policy[];
  /** Programs replaced recently, newest first: events still queued in the ring buffer were decided by them. */
  history: { program: CompiledProgram; selected: Policy[] }[];
  error: string | undefined;
}

interface PolicyState {
  policy: Policy;
  denials: number;
  lastDenial: DecisionRecord | undefined;
}

export class Enforcer implements DesiredStateSink {
  private readonly kernel: KernelPort;
  private readonly log: Logger;
  private readonly policies = new Map<string, PolicyState>();
  /** Policies whose latest update was rejected, with the reason; the previous version stays applied. */
  private readonly rejected = new Map<string, string>();
  private readonly containers = new Map<string, ContainerState>();
  private readonly byCgroupId = new Map<bigint, ContainerState>();
  /**
   * Containers an earlier run confined (their configs, slots and pinned
   * links, if any), until a source declares them.
   */
  private readonly orphans = new Map<bigint, { links: ContainerLinks | undefined; slot: number | undefined }>();
  private chain: Promise<unknown> = Promise.resolve();
  private nextSlot = 1;
  private subscription: EventSubscription | undefined;
  /** Records the addon's reader lost (its queue full when it stopped), as last reported. */
  private readerLost = 0n;
  private counterTimer: NodeJS.Timeout | undefined;
  private lastCounters = { eventsDropped: 0n, pathTruncated: 0n, noConfig: 0n, dirCacheHits: 0n, dirCacheFills: 0n, fileCacheHits: 0n };
  private readonly metrics: ReturnType<typeof createMetrics> | undefined;
  private readonly cgroupIdOf: (cgroupPath: string) => bigint;
  private readonly cgroupRoot: string;

  constructor(private readonly options: EnforcerOptions) {
    this.kernel = options.kernel;
    this.log = options.logger;
    this.metrics = options.registry ? createMetrics(options.registry) : undefined;
    this.cgroupIdOf = options.cgroupIdOf ?? readCgroupId;
    this.cgroupRoot = options.cgroupRoot ?? '/sys/fs/cgroup';
  }

  /**
   * Adopts what an earlier enforcer left pinned, attaches the programs that
   * run for all tasks (all of them in global mode, the node-wide hooks in
   * cgroup mode), and starts reading kernel events and counters.
   */
  async start(): Promise<void> {
    await this.serialize(() => {
      this.nextSlot = maxSlotInUse(this.kernel) + 1;
      const stale = deleteUnnamedSlots(this.kernel);
      if (stale > 0) this.log.warn({ entries: stale }, 'deleted map entries of slots no config names, left by an interrupted enforcer');
      this.kernel.attachGlobal();
      if (this.kernel.mode === 'cgroup') {
        for (const id of this.kernel.pinnedContainers()) {
          const config = this.kernel.lookupElem('sabpf_configs', u64(id));
          this.orphans.set(id, { links: this.kernel.adoptContainer(id), slot: config?.readUInt32LE(0) });
        }
      }
      // Every config waits for its container too. In cgroup mode, one without
      // links (left by a crash before the attach) still binds the node-wide hooks.
      for (const key of this.kernel.keys('sabpf_configs')) {
        const id = key.readBigUInt64LE(0);
        if (this.orphans.has(id)) continue;
        const config = this.kernel.lookupElem('sabpf_configs', key);
        this.orphans.set(id, { links: undefined, slot: config?.readUInt32LE(0) });
      }
      this.log.info(
        { mode: this.kernel.mode, object: this.kernel.variant, adopted: this.orphans.size, nextSlot: this.nextSlot },
        'enforcer started',
      );
      if (this.kernel.replacedBuild) {
        this.log.info(
          { replacedLinks: this.kernel.replacedLinks },
          "replaced another build's pinned programs: each pinned link now runs this build's",
        );
      }
    });

    this.subscription = this.kernel.subscribe(
      (event) => this.onKernelEvent(event),
      (err) => this.log.error({ err }, 'failed to handle a kernel event'),
    );
    const interval = this.options.counterIntervalMs ?? 1000;
    this.counterTimer = setInterval(() => void this.pollCounters(), interval);
    this.counterTimer.unref();
  }

  /**
   * Ends the initial sync: containers pinned by an earlier process that no
   * source declared are detached, because they no longer exist or are no
   * longer confined.
   */
  async finishInitialSync(): Promise<void> {
    await this.serialize(() => {
      for (const [id, orphan] of this.orphans) {
        this.log.info({ cgroupId: id.toString() }, 'unconfining a container of an earlier run that is no longer declared');
        if (orphan.links) this.kernel.detach(orphan.links);
        this.kernel.deleteConfig(id);
        if (orphan.slot !== undefined) deleteSlotKeys(this.kernel, findSlotKeys(this.kernel, orphan.slot));
      }
      this.orphans.clear();
    });
  }

  /** Stops reading events; the pinned programs keep enforcing unless `detach` is set. */
  async stop(options: { detach?: boolean } = {}): Promise<void> {
    if (this.counterTimer) clearInterval(this.counterTimer);
    // Records already queued still reach onKernelEvent, and the audit trail,
    // before the caller closes it.
    this.subscription?.stop();
    await this.subscription?.drained();
    await this.pollCounters();
    await this.serialize(() => {
      for (const state of this.containers.values()) {
        if (options.detach) this.unconfine(state);
        else if (state.links) this.kernel.release(state.links);
      }
      this.log.info({ containers: this.containers.size, detached: options.detach ?? false }, 'enforcer stopped');
    });
    this.kernel.close();
  }

  async upsertPolicy(update: PolicyUpdate): Promise<void> {
    await this.serialize(() => {
      const key = policyKey(update.policy);
      if (this.options.checkSignature) {
        const verdict = this.options.checkSignature(update);
        if (!verdict.ok) {
          this.rejected.set(key, `signature rejected: ${verdict.reason}`);
          this.log.warn(
            { policy: key, reason: verdict.reason },
            'rejected a policy whose signature does not verify; the previous version stays in force',
          );
          this.metrics?.policyUpdates.inc({ result: 'bad-signature' });
          return;
        }
      }
      this.rejected.delete(key);
      const previous = this.policies.get(key);
      this.policies.set(key, { policy: update.policy, denials: previous?.denials ?? 0, lastDenial: previous?.lastDenial });
      this.metrics?.policyUpdates.inc({ result: 'applied' });
      this.reconcileAll();
    });
  }

  async deletePolicy(namespace: string, name: string): Promise<void> {
    await this.serialize(() => {
      const key = `${namespace}/${name}`;
      this.rejected.delete(key);
      if (!this.policies.delete(key)) return;
      this.reconcileAll();
    });
  }

  async upsertContainer(container: NodeContainer): Promise<void> {
    await this.serialize(() => {
      const existing = this.containers.get(container.cgroupPath);
      if (existing) {
        existing.container = container;
        this.reconcile(existing);
        return;
      }
      const id = this.cgroupIdOf(container.cgroupPath);
      const orphan = this.orphans.get(id);
      this.orphans.delete(id);
      const state: ContainerState = {
        container,
        id,
        links: orphan?.links,
        applied: orphan?.slot !== undefined ? { slot: orphan.slot, program: undefined, keys: undefined } : undefined,
        selected: [],
        desired: [],
        history: [],
        error: undefined,
      };
      this.containers.set(container.cgroupPath, state);
      this.byCgroupId.set(id, state);
      this.metrics?.containers.set(this.containers.size);
      this.reconcile(state);
    });
  }

  async deleteContainer(cgroupPath: string): Promise<void> {
    await this.serialize(() => {
      const state = this.containers.get(cgroupPath);
      if (!state) return;
      this.unconfine(state);
      this.containers.delete(cgroupPath);
      this.byCgroupId.delete(state.id);
      this.metrics?.containers.set(this.containers.size);
    });
  }

  /** Per-policy view of this node, for CSP status. */
  status(): PolicyNodeStatus[] {
    const out: PolicyNodeStatus[] = [];
    const keys = new Set([...this.policies.keys(), ...this.rejected.keys()]);
    for (const key of [...keys].sort()) {
      const confined = [...this.containers.values()].filter((s) => s.desired.some((p) => policyKey(p) === key));
      const state = this.policies.get(key);
      const errors = confined.map((s) => s.error).filter((e): e is string => e !== undefined);
      const rejected = this.rejected.get(key);
      const status: PolicyNodeStatus = {
        policy: key,
        containers: confined.length,
        compiled: rejected === undefined && errors.length === 0,
        // A rejected update leaves the previous version enforcing, so only the kernel state counts here.
        enforced: confined.length > 0 && confined.every((s) => s.applied?.program !== undefined && s.error === undefined),
        denials: state?.denials ?? 0,
      };
      const error = rejected ?? errors[0];
      if (error !== undefined) status.error = error;
      if (state?.lastDenial) status.lastDenial = state.lastDenial;
      out.push(status);
    }
    return out;
  }

  /** Returns the program applied to a container, or undefined when it is unconfined. */
  programOf(cgroupPath: string): CompiledProgram | undefined {
    return this.containers.get(cgroupPath)?.applied?.program;
  }

  private serialize<T>(step: () => T | Promise<T>): Promise<T> {
    const next = this.chain.then(step);
    // A failed step must not stop the steps queued after it.
    this.chain = next.catch(() => undefined);
    return next;
  }

  private reconcileAll(): void {
    for (const state of this.containers.values()) this.reconcile(state);
  }

  /** Compiles and applies the current policies for one container. */
  private reconcile(state: ContainerState): void {
    const all = [...this.policies.values()].map((p) => p.policy);
    const selected = selectPolicies(all, state.container);
    state.desired = selected;
    const where = { namespace: state.container.namespace, pod: state.container.pod, container: state.container.container };

    if (selected.length === 0) {
      state.selected = [];
      state.error = undefined;
      this.unconfine(state);
      return;
    }
    if (selected.length > MAX_POLICIES) {
      state.error = `${selected.length} policies select container ${where.namespace}/${where.pod}/${where.container}, more than ${MAX_POLICIES}; merge some of them`;
      this.log.error({ ...where, policies: selected.length }, 'failed to compile: too many policies; the previous program stays in force');
      return;
    }

    const program = compileSelected(selected, where);
    if (state.applied?.program?.hash === program.hash) {
      // Same tables: only names or messages changed, which live in memory.
      state.applied.program = program;
      state.selected = selected;
      state.error = undefined;
      return;
    }

    try {
      this.apply(state, program);
      state.selected = selected;
      state.error = undefined;
      this.metrics?.applies.inc({ result: 'ok' });
      this.log.info(
        {
          ...where,
          cgroupId: state.id.toString(),
          hash: program.hash.slice(0, 12),
          hooks: program.hooks.map((h) => LSM_HOOK[h]),
          slot: state.applied?.slot,
        },
        'applied policies to container',
      );
    } catch (err) {
      state.error = `failed to apply the program: ${(err as Error).message}`;
      this.metrics?.applies.inc({ result: 'error' });
      this.log.error({ ...where, cgroupId: state.id.toString(), err }, 'failed to apply policies; the previous program stays in force');
    }
  }

  /** Writes the program under a new slot and switches the container to it. Throws with the kernel unchanged. */
  private apply(state: ContainerState, program: CompiledProgram): void {
    const slot = this.nextSlot++;
    const keys = writeSlot(this.kernel, program, slot);
    const config = Buffer.from(program.config);
    config.writeUInt32LE(slot, 0);

    // The node-wide hooks' programs are attached for every task at start.
    const cgroupHooks = program.hooks.filter((hook) => CGROUP_HOOKS.includes(hook));
    try {
      if (this.kernel.mode === 'global') {
        this.kernel.setConfig(state.id, config);
      } else if (!state.links) {
        // First program of this container: config first, then attach.
        this.kernel.setConfig(state.id, config);
        try {
          state.links = this.kernel.attachContainer(state.container.cgroupPath, cgroupHooks);
        } catch (err) {
          this.kernel.deleteConfig(state.id);
          throw err;
        }
      } else {
        // Hooks the new program adds run with the old config until the switch, which allows them.
        // NOTE: hooks a new program no longer needs stay attached until the container goes; their masks allow everything.
        const missing = cgroupHooks.filter((hook) => state.links?.links[hook] === undefined);
        if (missing.length > 0) {
          const added = this.kernel.attachContainer(state.container.cgroupPath, missing);
          Object.assign(state.links.links, added.links);
        }
        this.kernel.setConfig(state.id, config);
      }
    } catch (err) {
      deleteSlotKeys(this.kernel, keys);
      throw err;
    }

    const previous = state.applied;
    if (previous?.program) state.history = [{ program: previous.program, selected: state.selected }, ...state.history].slice(0, HISTORY);
    state.applied = { slot, program, keys };
    if (previous) deleteSlotKeys(this.kernel, previous.keys ?? findSlotKeys(this.kernel, previous.slot));
  }

  /** Detaches the container's programs, then removes its config and entries. */
  private unconfine(state: ContainerState): void {
    if (state.links) {
      try {
        this.kernel.detach(state.links);
      } catch (err) {
        // The cgroup may be gone already, which ends its links too.
        this.log.warn({ cgroupId: state.id.toString(), err }, 'failed to detach a container cleanly');
      }
      state.links = undefined;
    }
    if (state.applied) {
      this.kernel.deleteConfig(state.id);
      deleteSlotKeys(this.kernel, state.applied.keys ?? findSlotKeys(this.kernel, state.applied.slot));
      state.applied = undefined;
      this.log.info(
        { namespace: state.container.namespace, pod: state.container.pod, container: state.container.container },
        'container unconfined',
      );
    }
  }

  /**
   * Finds the container of a cgroup id. A process in a child cgroup of a
   * container reports the child's id, so an unknown id is resolved through
   * /proc/PID/cgroup to the nearest container cgroup above it.
   */
  private containerOf(event: SabpfEvent): ContainerState | undefined {
    const direct = this.byCgroupId.get(event.cgroupId);
    if (direct) return direct;
    let line: string | undefined;
    try {
      line = readFileSync(`/proc/${event.pid}/cgroup`, 'utf8')
        .split('\n')
        .find((l) => l.startsWith('0::'));
    } catch {
      return undefined; // the process has exited
    }
    if (!line) return undefined;
    let path = join(this.cgroupRoot, line.slice(3));
    while (path.startsWith(this.cgroupRoot) && path !== this.cgroupRoot) {
      const state = this.containers.get(path);
      if (state) return state;
      path = dirname(path);
    }
    return undefined;
  }

  private onKernelEvent(event: SabpfEvent): void {
    const state = this.containerOf(event);
    const program = state?.applied?.program;
    if (!state || !program) {
      // An event that raced a container's removal, or of a process that exited before it was resolved.
      this.log.warn(
        { cgroupId: event.cgroupId.toString(), comm: event.comm, path: event.path },
        'kernel event for a cgroup without a known program',
      );
      this.metrics?.unresolved.inc();
      return;
    }
    // Events decided just before a switch are read after it: resolve against the
    // newest program whose decision matches the kernel's, current one first.
    let resolved = resolveEvent(event, state.container, program, state.selected, this.options.node);
    for (const older of state.history) {
      if (!resolved?.mismatch) break;
      const candidate = resolveEvent(event, state.container, older.program, older.selected, this.options.node);
      if (candidate && !candidate.mismatch) resolved = candidate;
    }
    if (!resolved) {
      this.metrics?.unresolved.inc();
      return;
    }
    if (resolved.mismatch) {
      this.metrics?.mismatches.inc();
      this.log.error(
        { policy: resolved.record.policy, operation: resolved.record.operation, resource: resolved.record.resource },
        'kernel and reference decision disagree',
      );
    }

    const record = resolved.record;
    this.metrics?.decisions.inc({ decision: record.decision, enforced: String(record.enforced) });
    const policy = this.policies.get(record.policy);
    if (policy && record.decision === 'deny') {
      policy.denials++;
      policy.lastDenial = record;
    }
    if (this.options.audit) {
      this.options.audit.appendDecision(resolved.audit).catch((err: unknown) => {
        // Counted, and reported in the trail by the writer (see maxPending).
        if (err instanceof AuditBacklogFullError) return;
        this.log.error({ err }, 'failed to append an audit record');
      });
    }
    this.options.onDecision?.(record);
  }

  /** Reads kernel counters; lost ring-buffer records become `dropped` audit records. */
  private async pollCounters(): Promise<void> {
    let counters: ReturnType<KernelPort['counters']>;
    try {
      counters = this.kernel.counters();
    } catch (err) {
      this.log.error({ err }, 'failed to read kernel counters');
      return;
    }
    const readerLost = this.subscription?.stats().lost ?? this.readerLost;
    const dropped = counters.eventsDropped - this.lastCounters.eventsDropped + (readerLost - this.readerLost);
    this.readerLost = readerLost;
    const truncated = counters.pathTruncated - this.lastCounters.pathTruncated;
    const noConfig = counters.noConfig - this.lastCounters.noConfig;
    const cacheHits = counters.dirCacheHits - this.lastCounters.dirCacheHits;
    const cacheFills = counters.dirCacheFills - this.lastCounters.dirCacheFills;
    const fileHits = counters.fileCacheHits - this.lastCounters.fileCacheHits;
    this.lastCounters = {
      eventsDropped: counters.eventsDropped,
      pathTruncated: counters.pathTruncated,
      noConfig: counters.noConfig,
      dirCacheHits: counters.dirCacheHits,
      dirCacheFills: counters.dirCacheFills,
      fileCacheHits: counters.fileCacheHits,
    };

    if (dropped > 0n) {
      this.metrics?.kernelDropped.inc(Number(dropped));
      this.log.warn(
        { dropped: Number(dropped) },
        'ring-buffer records were lost (the kernel ring was full, or the reader stopped with its queue full): decisions were enforced but not recorded',
      );
      await this.options.audit?.appendDropped(Number(dropped), 'ring-buffer');
    }
    if (truncated > 0n) this.metrics?.pathTruncated.inc(Number(truncated));
    if (noConfig > 0n) this.metrics?.noConfig.inc(Number(noConfig));
    if (cacheHits > 0n) this.metrics?.dirCacheHits.inc(Number(cacheHits));
    if (cacheFills > 0n) this.metrics?.dirCacheFills.inc(Number(cacheFills));
    if (fileHits > 0n) this.metrics?.fileCacheHits.inc(Number(fileHits));
  }
}

function u64(id: bigint): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(id);
  return buffer;
}

function createMetrics(registry: Registry) {
  return {
    containers: new Gauge({
      name: 'sabpf_enforcer_containers',
      help: 'Containers the enforcer tracks on this node',
      registers: [registry],
    }),
    applies: new PromCounter({
      name: 'sabpf_enforcer_applies_total',
      help: 'Programs applied to containers, by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    policyUpdates: new PromCounter({
      name: 'sabpf_enforcer_policy_updates_total',
      help: 'Policy updates received, by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    decisions: new PromCounter({
      name: 'sabpf_decisions_total',
      help: 'Recorded decisions, by decision and whether the operation was blocked',
      labelNames: ['decision', 'enforced'],
      registers: [registry],
    }),
    kernelDropped: new PromCounter({
      name: 'sabpf_kernel_events_dropped_total',
      help: 'Decision records lost because the ring buffer was full',
      registers: [registry],
    }),
    pathTruncated: new PromCounter({
      name: 'sabpf_kernel_paths_truncated_total',
      help: 'Paths deeper than the BPF walk, decided by posture',
      registers: [registry],
    }),
    noConfig: new PromCounter({
      name: 'sabpf_kernel_no_config_total',
      help: 'Operations denied because an attached program found no config',
      registers: [registry],
    }),
    dirCacheHits: new PromCounter({
      name: 'sabpf_kernel_dir_cache_hits_total',
      help: 'File and exec checks decided from the cached state of the directory',
      registers: [registry],
    }),
    dirCacheFills: new PromCounter({
      name: 'sabpf_kernel_dir_cache_fills_total',
      help: 'Directory states cached after a full path walk',
      registers: [registry],
    }),
    fileCacheHits: new PromCounter({
      name: 'sabpf_kernel_file_cache_hits_total',
      help: 'File and exec checks decided from a file slot of the directory cache',
      registers: [registry],
    }),
    unresolved: new PromCounter({
      name: 'sabpf_events_unresolved_total',
      help: 'Kernel events that could not be tied to a container and policy',
      registers: [registry],
    }),
    mismatches: new PromCounter({
      name: 'sabpf_decision_mismatch_total',
      help: 'Kernel events whose policy differs from the reference decision',
      registers: [registry],
    }),
  };
}

/** Names of the hooks a program needs, for logs. */
export function hookNames(hooks: readonly HookName[]): string[] {
  return hooks.map((h) => LSM_HOOK[h]);
}
