// One measurement of the compile benchmark, run in its own process so that
// its peak memory (maxRSS) is its own. Mode "object" validates and compiles
// the policy object as the API server hands it to the webhook and enforcer
// (JSON, already parsed); mode "yaml" adds the YAML parsing of the CLI.
// Prints one JSON line.

import { performance } from 'node:perf_hooks';
import { compileContainer } from '../../compiler/compile.js';
import { loadPolicies, loadPolicyObject } from '../../compiler/load.js';
import { parse } from 'yaml';

const rules = Number(process.argv[2] ?? '10');
const repeats = Number(process.argv[3] ?? '5');
const mode = process.argv[4] === 'yaml' ? 'yaml' : 'object';

function policyText(count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    // A realistic mix: exact files, trees and one-level directories at depth 3-5.
    const pattern = i % 3 === 0 ? `/srv/app${i % 97}/data/file${i}` : i % 3 === 1 ? `/opt/tool${i}/lib/**` : `/var/lib/svc${i}/*`;
    lines.push(`      - {paths: ["${pattern}"], access: ${i % 2 ? 'read' : 'readwrite'}, action: ${i % 5 ? 'deny' : 'audit'}}`);
  }
  return `apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: {name: bench, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  file:
    posture: allow
    rules:
${lines.join('\n')}
`;
}

const text = policyText(rules);
// The object mode starts from JSON text, as an AdmissionReview or a watch event carries it.
const json = JSON.stringify(parse(text));
const container = { namespace: 'shop', pod: 'web-1', container: 'nginx', labels: { app: 'web' } };
const rssBefore = process.resourceUsage().maxRSS;

const loadMs: number[] = [];
const compileMs: number[] = [];
let entries = 0;
for (let i = 0; i < repeats; i++) {
  // The webhook and enforcer receive the object already parsed from JSON, so parsing is not timed.
  const object = mode === 'yaml' ? undefined : (JSON.parse(json) as unknown);
  const t0 = performance.now();
  const { policies, diagnostics } = mode === 'yaml' ? loadPolicies(text, 'bench.yaml') : loadPolicyObject(object, { inPlace: true });
  const t1 = performance.now();
  if (diagnostics.length > 0) throw new Error(`benchmark policy is invalid: ${diagnostics[0]?.problem}`);
  const program = compileContainer(policies, container);
  const t2 = performance.now();
  entries = (program?.nodes.length ?? 0) + (program?.longNodes.length ?? 0);
  loadMs.push(t1 - t0);
  compileMs.push(t2 - t1);
}

// Memory of one more run, measured on the V8 heap (run with --expose-gc):
// growth until the program exists, garbage included, and what stays live.
const gc = (globalThis as { gc?: () => void }).gc;
let heapGrowthMiB = NaN;
let retainedMiB = NaN;
if (gc) {
  const object = mode === 'yaml' ? undefined : (JSON.parse(json) as unknown);
  gc();
  const base = process.memoryUsage().heapUsed;
  const { policies } = mode === 'yaml' ? loadPolicies(text, 'bench.yaml') : loadPolicyObject(object, { inPlace: true });
  const program = compileContainer(policies, container);
  heapGrowthMiB = (process.memoryUsage().heapUsed - base) / 1048576;
  gc();
  retainedMiB = (process.memoryUsage().heapUsed - base) / 1048576;
  if (!program) throw new Error('the benchmark policy selected no container');
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
process.stdout.write(
  `${JSON.stringify({
    rules,
    mode,
    bytes: Buffer.byteLength(text),
    entries,
    validateMs: median(loadMs),
    compileMs: median(compileMs),
    totalMs: median(loadMs.map((v, i) => v + (compileMs[i] ?? 0))),
    heapGrowthMiB,
    retainedMiB,
    maxRssKb: process.resourceUsage().maxRSS,
    rssBeforeKb: rssBefore,
  })}\n`,
);
