// Admission benchmark: the real webhook (100 policies cached, Rego rules
// loaded) against a bare express handler that always allows, both over HTTPS
// on 127.0.0.1 in their own processes, driven by the same open-loop load in
// one run. Not a test: it prints numbers and asserts nothing.
//
//   make bench    or    node dist/bench/admission/run.js [--rate 500] [--seconds 10] [--slices 4]
//
// Open loop: request i is due at start + i/rate whether or not earlier ones
// have returned, so a slow server cannot slow the load down and hide its own
// latency. Latency is measured from the moment a request is written to the
// end of its response; "send lag" is how late the generator wrote requests.
// Server CPU per request (user + system time of the server process over the
// measured slices) does not depend on what else runs on the machine.

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { BENCH_NAMESPACE, POLICY_COUNT, podReviewTemplate, SELECTING_POLICIES } from './fixtures.js';

type Side = 'webhook' | 'bare';

interface Sample {
  latencyMs: number;
  sendLagMs: number;
  ok: boolean;
}

interface Server {
  port: number;
  child: ChildProcess;
}

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    slices: { type: 'string', default: '4' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const slices = Number(values.slices);
if (!(rate > 0 && seconds > 0 && Number.isInteger(slices) && slices > 0)) {
  process.stderr.write('usage: node dist/bench/admission/run.js [--rate REQUESTS_PER_SECOND] [--seconds PER_SIDE] [--slices N]\n');
  process.exit(2);
}

const WARMUP_SECONDS = 1;
const TARGET_P99_MS = 5;
const TARGET_RATIO = 2;

const dir = mkdtempSync(join(tmpdir(), 'sabpf-bench-admission-'));
const children: ChildProcess[] = [];
try {
  const { certPath, keyPath } = createCertificate(dir);
  const ca = readFileSync(certPath, 'utf8');
  const servers: Record<Side, Server> = {
    webhook: await startServer('webhook', certPath, keyPath),
    bare: await startServer('bare', certPath, keyPath),
  };
  const agents: Record<Side, Agent> = {
    webhook: new Agent({ keepAlive: true, maxSockets: 64, ca }),
    bare: new Agent({ keepAlive: true, maxSockets: 64, ca }),
  };
  const template = podReviewTemplate();

  // Both sides must admit the pod, or the comparison measures different work.
  for (const side of ['webhook', 'bare'] as const) {
    const check = await send(servers[side].port, agents[side], template.replace('"UID"', '"check"'));
    if (!check.ok) throw new Error(`failed to admit the benchmark pod on the ${side} side: ${check.body}`);
  }

  for (const side of ['webhook', 'bare'] as const) await runPhase(servers[side].port, agents[side], template, WARMUP_SECONDS * 1000);

  // Alternating slices spread any drift of the shared machine over both sides.
  const samples: Record<Side, Sample[]> = { webhook: [], bare: [] };
  const cpuMicroseconds: Record<Side, number> = { webhook: 0, bare: 0 };
  const sliceMs = (seconds * 1000) / slices;
  for (let slice = 0; slice < slices; slice += 1) {
    const order: Side[] = slice % 2 === 0 ? ['webhook', 'bare'] : ['bare', 'webhook'];
    for (const side of order) {
      const cpuBefore = await serverCpu(servers[side].child);
      samples[side].push(...(await runPhase(servers[side].port, agents[side], template, sliceMs)));
      cpuMicroseconds[side] += (await serverCpu(servers[side].child)) - cpuBefore;
    }
  }

  report(samples, cpuMicroseconds, Buffer.byteLength(template));
  for (const agent of Object.values(agents)) agent.destroy();
} finally {
  for (const child of children) child.kill();
  rmSync(dir, { recursive: true, force: true });
}

function createCertificate(directory: string): { certPath: string; keyPath: string } {
  const certPath = join(directory, 'tls.crt');
  const keyPath = join(directory, 'tls.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'pipe' },
  );
  return { certPath, keyPath };
}

function startServer(side: Side, certPath: string, keyPath: string): Promise<Server> {
  const script = fileURLToPath(new URL('./server.js', import.meta.url));
  const child = fork(script, [side, certPath, keyPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve({ port: (message as { port: number }).port, child }));
    child.once('exit', (code) => reject(new Error(`failed to start the ${side} server: it exited with code ${code}`)));
  });
}

/** Returns the user + system CPU time a server process has used so far, in microseconds. */
function serverCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve((message as { cpuMicroseconds: number }).cpuMicroseconds));
    child.send('cpu');
  });
}

function send(port: number, agent: Agent, body: string): Promise<{ ok: boolean; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/validate/pod',
        agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ ok: response.statusCode === 200 && text.includes('"allowed":true'), body: text }));
      },
    );
    req.on('error', (error) => resolve({ ok: false, body: error.message }));
    req.end(body);
  });
}

/** Sends rate × durationMs requests on a fixed schedule and resolves with one sample per request. */
function runPhase(port: number, agent: Agent, template: string, durationMs: number): Promise<Sample[]> {
  const total = Math.round((rate * durationMs) / 1000);
  const intervalMs = 1000 / rate;
  const samples: Sample[] = [];
  const start = performance.now();
  let due = 0;

  return new Promise((resolve) => {
    const fire = (index: number): void => {
      const sentAt = performance.now();
      const sendLagMs = sentAt - (start + index * intervalMs);
      void send(port, agent, template.replace('"UID"', `"req-${index}"`)).then(({ ok }) => {
        samples.push({ latencyMs: performance.now() - sentAt, sendLagMs, ok });
        if (samples.length === total) resolve(samples);
      });
    };
    const tick = (): void => {
      const now = performance.now();
      while (due < total && start + due * intervalMs <= now) {
        fire(due);
        due += 1;
      }
      if (due < total) setTimeout(tick, Math.max(0, start + due * intervalMs - performance.now()));
    };
    tick();
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function report(samples: Record<Side, Sample[]>, cpuMicroseconds: Record<Side, number>, bodyBytes: number): void {
  const rows = (['webhook', 'bare'] as const).map((side) => {
    const latencies = samples[side].map((s) => s.latencyMs).sort((a, b) => a - b);
    const lags = samples[side].map((s) => s.sendLagMs).sort((a, b) => a - b);
    return {
      side,
      requests: latencies.length,
      errors: samples[side].filter((s) => !s.ok).length,
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? Number.NaN,
      lagP99: percentile(lags, 99),
      cpuPerRequestMs: cpuMicroseconds[side] / 1000 / latencies.length,
    };
  });
  const [webhook, bare] = rows as [(typeof rows)[0], (typeof rows)[0]];
  const ms = (value: number) => value.toFixed(2).padStart(7);

  process.stdout.write(
    `admission benchmark: ${rate} requests/s open loop per side, ${slices} alternating slices of ${(seconds / slices).toFixed(1)} s per side, ` +
      `HTTPS keep-alive on 127.0.0.1, Node ${process.version}\n`,
  );
  process.stdout.write(
    `  webhook: ${POLICY_COUNT} policies cached in namespace ${BENCH_NAMESPACE}, ${SELECTING_POLICIES} selecting each of 3 containers, Rego wasm loaded; ` +
      `pod review ${(bodyBytes / 1024).toFixed(1)} KiB, admitted\n`,
  );
  process.stdout.write('  bare:    express.json + always allow\n\n');
  process.stdout.write('side      requests  errors   p50 ms   p90 ms   p99 ms   max ms  send lag p99 ms  server CPU ms/request\n');
  for (const row of rows) {
    process.stdout.write(
      `${row.side.padEnd(9)} ${String(row.requests).padStart(8)}  ${String(row.errors).padStart(6)}  ${ms(row.p50)}  ${ms(row.p90)}  ${ms(row.p99)}  ${ms(row.max)}  ${ms(row.lagP99).padStart(15)}  ${row.cpuPerRequestMs.toFixed(3).padStart(21)}\n`,
    );
  }
  const ratio = webhook.p99 / bare.p99;
  process.stdout.write(
    `\np99 ratio webhook/bare: ${ratio.toFixed(2)} (target <= ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? 'met' : 'missed'}); ` +
      `p50 ratio: ${(webhook.p50 / bare.p50).toFixed(2)}; ` +
      `webhook p99 ${webhook.p99.toFixed(2)} ms (target <= ${TARGET_P99_MS} ms: ${webhook.p99 <= TARGET_P99_MS ? 'met' : 'missed'})\n`,
  );
}
