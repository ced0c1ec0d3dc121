// Kubernetes mode of the enforcer: informers on this node's pods and on every
// ContainerSecurityPolicy feed the enforcer core (a DesiredStateSink); the
// core's decisions come back as Events and policy status.
//
// Start-up order matters for confinement: policies are listed before pods,
// so that a restarted enforcer, which adopted the programs an earlier run
// left pinned, never sees a container without the policies that select it
// (which would loosen it). The sink's finishInitialSync, when it has one,
// runs only after both lists, since it detaches what no source declared.

import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';

import type { DecisionRecord, DesiredStateSink, PolicyNodeStatus } from '../core/types.js';
import { createKubeApi, loadKubeConfig, type KubeApi } from './api.js';
import type { BackoffOptions } from './backoff.js';
import { CgroupResolver, DEFAULT_CGROUP_ROOT, type LayoutChoice } from './cgroups.js';
import type { Clock } from './clock.js';
import { EventRecorder, type EventRecorderOptions } from './events.js';
import { createK8sMetrics } from './metrics.js';
import { CSP_COLLECTION_PATH, type PolicyObject, type Pod } from './objects.js';
import { PodController } from './pods.js';
import { PolicyController } from './policies.js';
import { Reflector } from './reflector.js';
import { SinkQueue } from './sink-queue.js';
import { StatusReporter } from './status.js';

/** The enforcer core as Kubernetes mode drives it. */
export interface KubernetesSink extends DesiredStateSink {
  /** Called once, after the first full list of policies and of pods was applied. */
  finishInitialSync?(): Promise<void>;
}

export interface KubernetesModeOptions {
  /** kubeconfig file; default: the pod's service account, else $KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  /** This node's name (spec.nodeName of its pods), usually from the downward API. */
  nodeName: string;
  /** Host cgroup v2 mount, as mounted in the enforcer's mount namespace. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Cgroup layout of the node's containers; auto probes systemd, cgroupfs, then flat. */
  layout?: LayoutChoice;
  sink: KubernetesSink;
  /** The core's per-policy status on this node, polled for CSP status. */
  statusProvider?: () => PolicyNodeStatus[];
  /** Called once when Kubernetes mode has stopped (after stop() flushed Events and status). */
  onStop?: () => void;
  /** Stops Kubernetes mode when aborted, as stop() does. */
  signal?: AbortSignal;
  logger?: Logger;
  registry?: Registry;
  /** API client; default one built from `kubeconfig`. Tests pass a counting wrapper. */
  api?: KubeApi;
  clock?: Clock;
  tuning?: KubernetesModeTuning;
}

export interface KubernetesModeTuning {
  backoff?: BackoffOptions;
  stallTimeoutMs?: number;
  watchTimeoutSeconds?: () => number;
  statusDebounceMs?: number;
  statusPollMs?: number;
  cgroupRetryMs?: number;
  events?: Pick<EventRecorderOptions, 'perObjectLimit' | 'globalLimit' | 'queueCapacity' | 'aggregateWindowMs' | 'warnIntervalMs'>;
}

export interface KubernetesMode {
  /** Feed every decision record here: denials become Events and status counts. Never blocks. */
  onDecision(record: DecisionRecord): void;
  /** Resolves true once policies and pods were listed and applied (and finishInitialSync ran); false if stopped first. */
  whenSynced(): Promise<boolean>;
  /** Stops the informers, flushes Events and status, waits for queued sink calls. Idempotent. */
  stop(): Promise<void>;
  /** For tests and diagnostics. */
  readonly policies: PolicyController;
  readonly pods: PodController;
  readonly events: EventRecorder;
  readonly status: StatusReporter;
  /** Resolves when queued sink calls have finished. */
  sinkIdle(): Promise<void>;
}

export function runKubernetesMode(options: KubernetesModeOptions): KubernetesMode {
  if (!options.nodeName)
    throw new Error('failed to start Kubernetes mode: the node name is empty; pass --node-name or set NODE_NAME from spec.nodeName');
  const logger = (options.logger ?? pino({ name: 'sabpf-enforcer' })).child({ node: options.nodeName });
  const api = options.api ?? createKubeApi(loadKubeConfig(options.kubeconfig));
  const metrics = createK8sMetrics(options.registry);
  const tuning = options.tuning ?? {};
  const resolver = new CgroupResolver(options.cgroupRoot ?? DEFAULT_CGROUP_ROOT, options.layout ?? 'auto');
  const sink = new SinkQueue(options.sink, logger);

  // The reporter and the controller refer to each other through callbacks,
  // which run only once the informers start, after both exist.
  const policies = new PolicyController({ sink, logger, onChange: (key) => reporter.policyChanged(key) });
  const reporter = new StatusReporter({
    api,
    node: options.nodeName,
    logger,
    view: (key) => policies.view(key),
    ...(options.statusProvider ? { statusProvider: options.statusProvider } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    metrics,
    ...(tuning.statusDebounceMs !== undefined ? { debounceMs: tuning.statusDebounceMs } : {}),
    ...(tuning.statusPollMs !== undefined ? { pollMs: tuning.statusPollMs } : {}),
  });

  const reflectorTuning = {
    logger,
    metrics,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(tuning.backoff ? { backoff: tuning.backoff } : {}),
    ...(tuning.stallTimeoutMs !== undefined ? { stallTimeoutMs: tuning.stallTimeoutMs } : {}),
    ...(tuning.watchTimeoutSeconds ? { watchTimeoutSeconds: tuning.watchTimeoutSeconds } : {}),
  };
  const policyReflector = new Reflector<PolicyObject>({
    resource: 'containersecuritypolicies',
    api,
    path: CSP_COLLECTION_PATH,
    handler: policies,
    ...reflectorTuning,
  });

  const pods: PodController = new PodController({
    sink,
    resolver,
    logger,
    lookup: (key): Pod | undefined => podCache.get(key),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(tuning.cgroupRetryMs !== undefined ? { retryMs: tuning.cgroupRetryMs } : {}),
  });
  const podCache: Reflector<Pod> = new Reflector<Pod>({
    resource: 'pods',
    api,
    path: '/api/v1/pods',
    fieldSelector: `spec.nodeName=${options.nodeName}`,
    handler: pods,
    ...reflectorTuning,
  });

  const events = new EventRecorder({
    api,
    node: options.nodeName,
    logger,
    metrics,
    ...(options.clock ? { clock: options.clock } : {}),
    policyUid: (key) => policies.uidOf(key),
    podUid: (namespace, name) => podCache.get(`${namespace}/${name}`)?.metadata?.uid,
    ...(tuning.events ?? {}),
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping Kubernetes mode');
      await Promise.all([policyReflector.stop(), podCache.stop()]);
      pods.stop();
      await Promise.all([events.stop(), reporter.stop()]);
      await sink.idle();
      logger.info('Kubernetes mode stopped');
      options.onStop?.();
    })();
    return stopping;
  };
  options.signal?.addEventListener('abort', () => void stop(), { once: true });

  const synced = (async (): Promise<boolean> => {
    policyReflector.start();
    reporter.start();
    if (!(await policyReflector.whenSynced())) return false;
    podCache.start();
    if (!(await podCache.whenSynced())) return false;
    await sink.idle();
    if (options.sink.finishInitialSync) {
      const finish = options.sink.finishInitialSync.bind(options.sink);
      sink.run(finish, 'failed to finish the initial sync');
      await sink.idle();
    }
    logger.info({ policies: policyReflector.list().length, pods: podCache.list().length }, 'initial sync done');
    return true;
  })().catch((err: unknown) => {
    logger.error({ err }, 'initial sync failed');
    return false;
  });

  logger.info({ cgroupRoot: resolver.root, layout: resolver.layout }, 'Kubernetes mode started');
  return {
    onDecision: (record) => {
      try {
        events.record(record);
        reporter.recordDenial(record);
      } catch (err) {
        // The kernel event path must never fail because of Kubernetes.
        logger.error({ err }, 'failed to record a decision for Kubernetes');
      }
    },
    whenSynced: () => synced,
    stop,
    policies,
    pods,
    events,
    status: reporter,
    sinkIdle: () => sink.idle(),
  };
}
