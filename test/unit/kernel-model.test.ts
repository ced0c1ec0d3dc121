// Property tests: for random policies and operations, the compiled tables
// (walked the way the BPF programs walk them) decide exactly what the
// policies say, whatever order the policies arrive in.

import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileContainer } from '../../compiler/compile.js';
import { decide, type Operation } from '../../compiler/decide.js';
import { parseAddress } from '../../compiler/net.js';
import { selectPolicies } from '../../compiler/selector.js';
import { KernelModel } from '../../compiler/simulate.js';
import { stringify } from 'yaml';
import { loadPolicies } from '../../compiler/load.js';
import { webContainer } from './helpers.js';

// 31 bytes is the longest name of sabpf_nodes; 32 and 40 go to sabpf_long_nodes.
const components = ['a', 'b', 'etc', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(40)];
const executables = ['/bin/sh', '/usr/bin/curl'];
// The unspecified and loopback entries exercise the extra addresses that
// 0.0.0.0 and :: reach (compiler/net.ts alsoAddresses).
const cidrs = [
  '10.0.0.0/8',
  '10.1.0.0/16',
  '10.1.2.3/32',
  '::/0',
  'fd00::/8',
  '0.0.0.0/0',
  '127.0.0.0/8',
  '::1/128',
  '0.0.0.0/32',
  '::/128',
];
const addresses = ['10.1.2.3', '10.9.9.9', '192.0.2.1', 'fd00::1', '::ffff:10.1.2.3', '2001:db8::1', '0.0.0.0', '::', '127.0.0.1', '::1'];

const pathArbitrary = fc.array(fc.constantFrom(...components), { minLength: 0, maxLength: 4 }).map((p) => `/${p.join('/')}`);
const patternArbitrary = fc
  .tuple(pathArbitrary, fc.constantFrom('', '/*', '/**'))
  .map(([path, suffix]) => (suffix === '' ? path : `${path === '/' ? '' : path}${suffix}`));
const actionArbitrary = fc.constantFrom('allow', 'deny', 'audit');
const sourcesArbitrary = fc.oneof(fc.constant([] as string[]), fc.subarray(executables, { minLength: 1 }));

const fileRule = fc.record({
  paths: fc.uniqueArray(patternArbitrary, { minLength: 1, maxLength: 3 }),
  access: fc.constantFrom('read', 'write', 'readwrite'),
  action: actionArbitrary,
  fromSource: sourcesArbitrary,
});
const execRule = fc.record({
  paths: fc.uniqueArray(patternArbitrary, { minLength: 1, maxLength: 3 }),
  action: actionArbitrary,
  fromSource: sourcesArbitrary,
});
const networkRule = fc.oneof(
  fc.record({
    operation: fc.constantFrom('connect', 'bind'),
    protocol: fc.constantFrom('tcp', 'udp', undefined),
    cidrs: fc.subarray(cidrs),
    ports: fc.array(
      fc.tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 40 })).map(([port, width]) => ({ port, endPort: port + width })),
      { maxLength: 2 },
    ),
    action: actionArbitrary,
  }),
  fc.record({ operation: fc.constantFrom('raw-socket', 'packet-socket'), action: actionArbitrary }),
);

const section = <T>(rule: fc.Arbitrary<T>) =>
  fc.option(fc.record({ posture: actionArbitrary, rules: fc.array(rule, { maxLength: 4 }) }), { nil: undefined });

const policyArbitrary = fc.record({
  mode: fc.constantFrom('enforce', 'audit'),
  file: section(fileRule),
  exec: section(execRule),
  network: section(networkRule),
});

/**
 * Loads generated policies; generated sets that validation rejects (for
 * example contradicting rules) are skipped with fc.pre.
 */
function load(yaml: string): ReturnType<typeof loadPolicies>['policies'] {
  const result = loadPolicies(yaml, 'generated.yaml');
  fc.pre(result.diagnostics.every((d) => d.severity !== 'error'));
  return result.policies;
}

/** Drops undefined fields and empty lists the schema would reject, and fixes what validation forbids. */
function toYaml(specs: unknown[]): string {
  return specs
    .map((spec, i) => {
      const clean = JSON.parse(JSON.stringify(spec)) as Record<string, Record<string, unknown>>;
      for (const name of ['file', 'exec', 'network']) {
        const s = clean[name];
        if (!s) continue;
        // posture allow with allow rules is rejected by validation: make it deny.
        const rules = (s.rules as Record<string, unknown>[]) ?? [];
        if (s.posture === 'allow' && rules.some((r) => r.action === 'allow')) s.posture = 'deny';
        for (const rule of rules) {
          for (const key of ['fromSource', 'cidrs', 'ports'])
            if (Array.isArray(rule[key]) && (rule[key] as unknown[]).length === 0) delete rule[key];
        }
      }
      if (!clean.file && !clean.exec && !clean.network) clean.file = { posture: 'audit' };
      return stringify({
        apiVersion: 'sabpf.io/v1alpha1',
        kind: 'ContainerSecurityPolicy',
        metadata: { name: `p${i}`, namespace: 'shop' },
        spec: { selector: { matchLabels: { app: 'web' } }, ...clean },
      });
    })
    .join('---\n');
}

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    kind: fc.constant('open' as const),
    path: pathArbitrary,
    access: fc.constantFrom('read' as const, 'write' as const),
    executable: fc.constantFrom(...executables, '/bin/other'),
  }),
  fc.record({ kind: fc.constant('exec' as const), path: pathArbitrary, executable: fc.constantFrom(...executables, '/bin/other') }),
  fc.record({
    kind: fc.constantFrom('connect' as const, 'bind' as const),
    protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    address: fc.constantFrom(...addresses).map((a) => parseAddress(a) as Uint8Array),
    port: fc.integer({ min: 0, max: 150 }),
  }),
  fc.constantFrom({ kind: 'raw-socket' as const }, { kind: 'packet-socket' as const }),
);

describe('compiled tables', () => {
  it('decide like the policies for random policies and operations', function () {
    this.timeout(120_000);
    fc.assert(
      fc.property(
        fc.array(policyArbitrary, { minLength: 1, maxLength: 4 }),
        fc.array(operationArbitrary, { minLength: 1, maxLength: 20 }),
        (specs, operations) => {
          const policies = load(toYaml(specs));
          const selected = selectPolicies(policies, webContainer);
          const program = compileContainer(policies, webContainer);
          assert.ok(program);
          const model = new KernelModel(program);
          for (const operation of operations) {
            const expected = decide(selected, operation);
            const actual = model.decide(operation);
            assert.equal(actual.allowed, !expected.enforced, `allowed for ${JSON.stringify(operation)}`);
            assert.equal(actual.recorded, expected.recorded, `recorded for ${JSON.stringify(operation)}`);
            if (expected.recorded) {
              assert.equal(
                selected[actual.policy] && `${selected[actual.policy]?.namespace}/${selected[actual.policy]?.name}`,
                expected.policy,
              );
              assert.equal(actual.posture, expected.reason === 'posture');
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('do not depend on the order policies arrive in', function () {
    this.timeout(120_000);
    fc.assert(
      fc.property(
        fc.array(policyArbitrary, { minLength: 2, maxLength: 4 }).chain((specs) =>
          fc.tuple(
            fc.constant(specs),
            fc.shuffledSubarray(
              specs.map((_, i) => i),
              { minLength: specs.length, maxLength: specs.length },
            ),
          ),
        ),
        ([specs, order]) => {
          const yaml = toYaml(specs);
          const policies = load(yaml);
          const shuffled = order.map((i) => policies[i] as (typeof policies)[number]);
          const a = compileContainer(policies, webContainer);
          const b = compileContainer(shuffled, webContainer);
          assert.ok(a && b);
          assert.equal(a.hash, b.hash);
          assert.deepEqual(a.nodes, b.nodes);
          assert.deepEqual(a.longNodes, b.longNodes);
          assert.deepEqual(a.config, b.config);
        },
      ),
      { numRuns: 100 },
    );
  });
});
