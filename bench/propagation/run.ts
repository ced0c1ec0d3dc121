// Propagation benchmark: how long a ContainerSecurityPolicy change takes from
// `kubectl apply` on the host to enforcement in the node's kernel. It starts
// what the Kubernetes node scenario runs on (test/e2e/full/environment.ts: a
// real kube-apiserver, the admission webhook, and a QEMU VM as node vm-node
// running `sabpf enforce --kubernetes`). It runs probe.ts as a pod on the
// node. Then it applies a policy that alternately denies and allows the file
// the probe opens every few milliseconds.
//
//   make build cluster-bins && bash test/vm/kernel.sh
//   node dist/bench/propagation/run.js [--applies 20] [--interval-ms 5] [--settle-ms 1000]
//
// One clock: the host reads performance.now() before spawning kubectl and
// when the probe's console line about the flip arrives. A sample therefore
// includes kubectl's own start, both admission webhooks, the API server, the
// watch to the guest, the enforcer's validation, signature check, compile and
// map writes, the probe's polling interval, and the serial console's delivery
// (bounded above by the ping round trip it reports). It is an upper bound.

import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { startNodeEnvironment, NODE_NAME, type NodeEnvironment } from '../../test/e2e/full/environment.js';
import { summarize, type Summary } from './stats.js';

type ProbeState = 'allowed' | 'denied';

interface Sample {
  apply: number;
  to: ProbeState;
  /** From spawning kubectl apply to the probe's console line. */
  fromApplyMs: number;
  /** From kubectl apply's exit (the API server stored the change) to the console line. */
  fromStoredMs: number;
  kubectlMs: number;
}

const NS = 'shop';
const TARGET = '/srv/bench/target';
const FLIP_TIMEOUT_MS = 120_000;

/** The benchmark policy: its one rule denies the probe's file, or a file the probe never opens. */
function benchPolicy(state: ProbeState): string {
  const path = state === 'denied' ? TARGET : '/srv/bench/other';
  return JSON.stringify({
    apiVersion: 'sabpf.io/v1alpha1',
    kind: 'ContainerSecurityPolicy',
    metadata: { name: 'bench-propagation', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'bench' } },
      mode: 'enforce',
      file: { posture: 'allow', rules: [{ name: 'target', paths: [path], access: 'read', action: 'deny' }] },
    },
  });
}

function probePod(root: string, intervalMs: number): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bench-probe', namespace: NS, labels: { app: 'bench' } },
    spec: {
      nodeName: NODE_NAME,
      restartPolicy: 'Never',
      containers: [
        {
          name: 'probe',
          image: 'registry.invalid/probe:1',
          command: ['/usr/bin/node', `${root}/dist/bench/propagation/probe.js`, TARGET, String(intervalMs)],
        },
      ],
    },
  });
}

async function mustApply(env: NodeEnvironment, description: string, manifest: string): Promise<void> {
  const result = await env.kubectl(['apply', '-f', '-'], manifest);
  if (result.code !== 0) throw new Error(`failed to apply ${description}: ${result.stderr}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Round trips host file -> probe (polling every interval) -> console -> host: an upper bound on console delivery. */
async function pingRoundTrips(env: NodeEnvironment, count: number): Promise<number[]> {
  const trips: number[] = [];
  for (let id = 1; id <= count; id++) {
    const since = env.console.lines.length;
    const sent = performance.now();
    await writeFile(join(env.runDir, `bench-ping-${id}`), '');
    const line = await env.console.waitFor(new RegExp(`SABPF-BENCH pong ${id}$`), FLIP_TIMEOUT_MS, since);
    trips.push(line.at - sent);
    await sleep(100);
  }
  return trips;
}

async function measure(env: NodeEnvironment, applies: number, settleMs: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let apply = 1; apply <= applies; apply++) {
    const to: ProbeState = apply % 2 === 1 ? 'denied' : 'allowed';
    // Lets the status writes and Events of the previous flip go out first.
    await sleep(settleMs);

    const since = env.console.lines.length;
    const started = performance.now();
    const result = await env.kubectl(['apply', '-f', '-'], benchPolicy(to));
    const stored = performance.now();
    if (result.code !== 0) throw new Error(`failed to apply the benchmark policy (apply ${apply}): ${result.stderr}`);

    const line = await env.console.waitFor(/SABPF-BENCH state /, FLIP_TIMEOUT_MS, since);
    if (!line.text.includes(`state ${to} `)) {
      throw new Error(`failed to measure apply ${apply}: the probe reported "${line.text.trim()}" instead of state ${to}`);
    }
    samples.push({ apply, to, fromApplyMs: line.at - started, fromStoredMs: line.at - stored, kubectlMs: stored - started });
    process.stdout.write(`apply ${apply} -> ${to}: ${(line.at - started).toFixed(0)} ms\n`);
  }
  return samples;
}

function row(name: string, summary: Summary): string {
  const cells = [summary.p50Ms, summary.p99Ms, summary.minMs, summary.maxMs].map((ms) => `${ms} ms`.padStart(10));
  return `${name.padEnd(34)}${String(summary.count).padStart(4)}${cells.join('')}`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      applies: { type: 'string', default: '20' },
      'interval-ms': { type: 'string', default: '5' },
      'settle-ms': { type: 'string', default: '1000' },
      pings: { type: 'string', default: '10' },
    },
  });
  const applies = Number(values.applies);
  const intervalMs = Number(values['interval-ms']);
  const settleMs = Number(values['settle-ms']);
  const pings = Number(values.pings);
  const loadBefore = loadavg()[0] as number;

  // The audit trail goes to the guest's tmpfs: while the probe is denied it
  // causes one record per attempt, which the 9p share would slow down.
  const env = await startNodeEnvironment({
    guestEnv: { SABPF_E2E_AUDIT_DIR: '/var/log/sabpf' },
    progress: (text) => process.stdout.write(`- ${text}\n`),
  });
  let samples: Sample[];
  let trips: number[];
  try {
    await mustApply(env, 'the benchmark policy', benchPolicy('allowed'));
    await mustApply(env, 'the probe pod', probePod(env.root, intervalMs));
    await env.console.waitFor(/SABPF-BENCH state allowed/, 600_000);
    process.stdout.write('- the probe runs on the node\n');
    trips = await pingRoundTrips(env, pings);
    samples = await measure(env, applies, settleMs);
  } finally {
    await env.stop();
  }
  const loadAfter = loadavg()[0] as number;

  const result = {
    settings: { applies, intervalMs, settleMs, pings },
    hostLoad: { before: Number(loadBefore.toFixed(2)), after: Number(loadAfter.toFixed(2)) },
    fromApply: summarize(samples.map((s) => s.fromApplyMs)),
    fromApplyToDenied: summarize(samples.filter((s) => s.to === 'denied').map((s) => s.fromApplyMs)),
    fromApplyToAllowed: summarize(samples.filter((s) => s.to === 'allowed').map((s) => s.fromApplyMs)),
    fromStored: summarize(samples.map((s) => s.fromStoredMs)),
    kubectl: summarize(samples.map((s) => s.kubectlMs)),
    consolePing: summarize(trips),
    samples: samples.map((s) => ({
      ...s,
      fromApplyMs: Math.round(s.fromApplyMs),
      fromStoredMs: Math.round(s.fromStoredMs),
      kubectlMs: Math.round(s.kubectlMs),
    })),
  };
  const out = join(env.runDir, 'host', 'propagation.json');
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);

  process.stdout.write(`\n${''.padEnd(34)}${'n'.padStart(4)}${['p50', 'p99', 'min', 'max'].map((h) => h.padStart(10)).join('')}\n`);
  process.stdout.write(`${row('kubectl apply -> kernel (all)', result.fromApply)}\n`);
  process.stdout.write(`${row('  ... to denied', result.fromApplyToDenied)}\n`);
  process.stdout.write(`${row('  ... to allowed', result.fromApplyToAllowed)}\n`);
  process.stdout.write(`${row('kubectl exit -> kernel', result.fromStored)}\n`);
  process.stdout.write(`${row('kubectl apply itself', result.kubectl)}\n`);
  process.stdout.write(`${row('console ping round trip', result.consolePing)}\n`);
  process.stdout.write(`\nhost load (1 min) ${result.hostLoad.before} before, ${result.hostLoad.after} after; JSON in ${out}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/propagation: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
