// sabpf enforce: standalone mode. Loads the BPF programs, applies the
// policies of files or folders to the containers a containers file declares,
// and records decisions to the audit trail. Needs no cluster.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { hasErrors } from '../../compiler/diagnostics.js';
import type { Policy } from '../../compiler/types.js';
import { readContainersFile } from '../../enforcer/core/containers-file.js';
import { Enforcer } from '../../enforcer/core/enforcer.js';
import { preflight } from '../../enforcer/core/preflight.js';
import { MODE_OPTIONS, unloadAll, type FolderLock } from '../../enforcer/kernel/index.js';
import { auditTrailHelp, auditTrailOptions, auditTrailSettings } from '../audit-options.js';
import { PIN_ROOT_HINTS, START_FAILED, startEnforcement, takeLock } from '../enforce-start.js';
import { loadFiles, printDiagnostics } from '../io.js';
import { UsageError } from '../usage.js';

export const enforceHelp = `Usage: sabpf enforce --policies PATH... --containers FILE [options]
       sabpf enforce --kubernetes --node-name NAME [options]   (see sabpf enforce --kubernetes --help)
       sabpf enforce --unload [--pin-root DIR]

Loads the sabpf BPF LSM programs, attaches them to the cgroup of each
container declared in FILE, and enforces the policies that select it. Runs
until SIGTERM or SIGINT; SIGHUP re-reads the policies and containers. The
programs stay pinned when the enforcer exits, so enforcement continues and a
restarted enforcer adopts them.

Options:
      --policies PATH        policy file or folder of *.yaml files; repeat for several (required)
      --containers FILE      YAML list of containers: namespace, pod, container, labels, cgroupPath (required)
${auditTrailHelp(23)}
      --pin-root DIR         bpffs folder for pinned programs, maps and links (default /sys/fs/bpf/sabpf)
      --mode MODE            auto (default): cgroup on Linux 6.0+, global before;
                             cgroup: BPF_LSM_CGROUP programs on each container's cgroup (6.0+);
                             global: lsm/ programs for the node that find the container by cgroup id
                             (5.17+; on 5.8 to 5.16 this loads the legacy object);
                             legacy: global with the object for kernels without bpf_loop (5.8+),
                             which walks paths of up to 64 components
      --objects DIR          folder with sabpf.bpf.o, sabpf-global.bpf.o and sabpf-legacy.bpf.o (default enforcer/bpf)
      --node NAME            node name in audit records (default: the containers file's node, else the host name)
      --once                 apply, then exit and leave the programs enforcing
      --unload               detach every sabpf program and remove all pins, then exit
  -h, --help                 show this help

Exit status: 0 on a clean stop, 1 on invalid policies or containers, an
audit folder it cannot write, another enforcer on the same pin root or audit
folder, or a failed --unload, 2 on a usage error, 3 when a kernel feature is
missing, the pin root cannot be used or the programs do not load (the message
names why).`;

export async function enforceCommand(argv: string[]): Promise<number> {
  if (argv.includes('--kubernetes')) {
    const { enforceKubernetesCommand } = await import('./enforce-kubernetes.js');
    return enforceKubernetesCommand(argv);
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      policies: { type: 'string', multiple: true },
      containers: { type: 'string' },
      ...auditTrailOptions,
      'pin-root': { type: 'string', default: '/sys/fs/bpf/sabpf' },
      mode: { type: 'string', default: 'auto' },
      objects: { type: 'string' },
      node: { type: 'string' },
      once: { type: 'boolean' },
      unload: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${enforceHelp}\n`);
    return 0;
  }
  const logger = pino({ name: 'sabpf-enforcer' }, pino.destination(2));
  if (values.unload) {
    const pinRoot = values['pin-root'];
    // Unloading under a running enforcer would leave it reporting enforcement that has ended.
    let lock: FolderLock | undefined;
    if (existsSync(pinRoot)) {
      const pinLock = await takeLock(
        pinRoot,
        (holder) => `cannot unload: a sabpf enforcer (${holder}) runs with the pin root ${pinRoot}; stop it first`,
        { logger, errorStatus: START_FAILED, hints: PIN_ROOT_HINTS },
      );
      if (typeof pinLock === 'number') return pinLock;
      lock = pinLock;
    }
    try {
      await unloadAll(pinRoot);
    } catch (err) {
      logger.error({ pinRoot, err }, 'failed to end enforcement');
      process.stderr.write(`sabpf enforce: ${(err as Error).message}\n`);
      return 1;
    } finally {
      lock?.release();
    }
    logger.info({ pinRoot }, 'removed every sabpf pin and the kernel freed the programs: enforcement ended');
    return 0;
  }
  if (!values.policies?.length) throw new UsageError('missing --policies; give policy files or folders');
  if (!values.containers) throw new UsageError('missing --containers; give the containers file');
  const modeOption = MODE_OPTIONS.find((m) => m === values.mode);
  if (modeOption === undefined) throw new UsageError(`invalid --mode ${values.mode}; use ${MODE_OPTIONS.join(', ')}`);
  const trail = auditTrailSettings(values);

  const readPolicies = (): Policy[] | undefined => {
    const result = loadFiles(expandPolicyPaths(values.policies ?? []), true);
    printDiagnostics(result.diagnostics);
    return hasErrors(result.diagnostics) ? undefined : result.policies;
  };
  const policies = readPolicies();
  if (!policies) return 1;
  let declared;
  try {
    declared = readContainersFile(values.containers);
  } catch (err) {
    process.stderr.write(`sabpf enforce: ${(err as Error).message}\n`);
    return 1;
  }

  // Never report enforcement that is not happening: stop on a missing kernel feature.
  const checks = preflight();
  if (!checks.ok) {
    for (const problem of checks.problems) logger.error({ problem }, 'kernel feature missing');
    process.stderr.write(`sabpf enforce: cannot enforce on this kernel:\n${checks.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return 3;
  }
  logger.info({ kernel: checks.kernelRelease, object: checks.object, preemption: checks.preemption }, 'kernel checks passed');

  const node = values.node ?? declared.node ?? hostname();
  const registry = new Registry();
  const started = await startEnforcement({
    trail,
    load: { mode: modeOption, pinRoot: values['pin-root'], ...(values.objects ? { objectDir: values.objects } : {}) },
    node,
    registry,
    logger,
  });
  if (typeof started === 'number') return started;
  const { kernel, audit } = started;
  const enforcer = new Enforcer({ kernel, node, logger, audit, registry });
  await enforcer.start();

  let current = { policies, containers: declared.containers };
  for (const policy of policies) await enforcer.upsertPolicy({ policy });
  for (const container of declared.containers) await enforcer.upsertContainer(container);
  await enforcer.finishInitialSync();
  reportStatus(enforcer, logger);

  const shutdown = async (reason: string): Promise<void> => {
    await enforcer.stop();
    await audit.close(`enforcer stopped: ${reason}`);
  };
  if (values.once) {
    await shutdown('--once');
    return 0;
  }

  return new Promise<number>((resolve) => {
    process.on('SIGHUP', () => {
      void (async () => {
        const next = readPolicies();
        if (!next) {
          logger.error('reload rejected: invalid policies; the previous ones stay in force');
          return;
        }
        let containers;
        try {
          containers = readContainersFile(values.containers as string).containers;
        } catch (err) {
          logger.error({ err }, 'reload rejected: invalid containers file; the previous one stays in force');
          return;
        }
        await applyDiff(enforcer, current, { policies: next, containers });
        current = { policies: next, containers };
        reportStatus(enforcer, logger);
        logger.info('reloaded policies and containers');
      })();
    });
    const stop = (signal: string): void => {
      void shutdown(signal).then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    logger.info({ policies: policies.length, containers: declared.containers.length }, 'enforcing; send SIGHUP to reload, SIGTERM to stop');
  });
}

type Desired = { policies: Policy[]; containers: { cgroupPath: string }[] };

async function applyDiff(
  enforcer: Enforcer,
  before: Desired,
  after: Desired & { containers: Parameters<Enforcer['upsertContainer']>[0][] },
): Promise<void> {
  const keep = new Set(after.policies.map((p) => `${p.namespace}/${p.name}`));
  for (const policy of after.policies) await enforcer.upsertPolicy({ policy });
  for (const policy of before.policies)
    if (!keep.has(`${policy.namespace}/${policy.name}`)) await enforcer.deletePolicy(policy.namespace, policy.name);
  const paths = new Set(after.containers.map((c) => c.cgroupPath));
  for (const container of after.containers) await enforcer.upsertContainer(container);
  for (const container of before.containers) if (!paths.has(container.cgroupPath)) await enforcer.deleteContainer(container.cgroupPath);
}

function reportStatus(enforcer: Enforcer, logger: pino.Logger): void {
  for (const status of enforcer.status()) logger.info(status, 'policy status');
}

/** Expands folders into their *.yaml and *.yml files, sorted. */
function expandPolicyPaths(paths: string[]): string[] {
  return paths.flatMap((path) => {
    if (!statSync(path, { throwIfNoEntry: false })?.isDirectory()) return [path];
    return readdirSync(path)
      .filter((name) => /\.ya?ml$/u.test(name))
      .sort()
      .map((name) => join(path, name));
  });
}
