import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadPolicies, MAX_DOCUMENT_BYTES } from '../../compiler/load.js';
import { MAX_SOURCE_BYTES } from '../../compiler/source.js';

const header = `apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: {name: big, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  file:
    posture: allow
    rules:
`;

describe('loadPolicies on bad input', () => {
  it('rejects a 10 MB document with a size error', function () {
    this.timeout(60_000);
    const rule = '      - {paths: [/data/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa], action: deny}\n';
    const text = header + rule.repeat(Math.ceil((10 * 1024 * 1024) / rule.length));
    assert.ok(text.length >= 10 * 1024 * 1024);
    const result = loadPolicies(text, 'big.yaml');
    assert.equal(result.policies.length, 0);
    assert.equal(result.diagnostics.length, 1);
    assert.match(result.diagnostics[0]?.problem ?? '', /larger than the 1\.5 MiB Kubernetes stores per object/u);
  });

  it('rejects input over the file limit before parsing', () => {
    const result = loadPolicies('#'.repeat(MAX_SOURCE_BYTES + 1), 'huge.yaml');
    assert.equal(result.diagnostics.length, 1);
    assert.match(result.diagnostics[0]?.problem ?? '', /larger than the 16 MiB limit/u);
  });

  it('accepts a policy of 10,000 rules under the document limit', function () {
    this.timeout(60_000);
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) lines.push(`      - {paths: [/srv/${i}], action: deny}`);
    const text = `${header}${lines.join('\n')}\n`;
    assert.ok(text.length < MAX_DOCUMENT_BYTES);
    const result = loadPolicies(text, 'many.yaml');
    assert.deepEqual(result.diagnostics, []);
    assert.equal(result.policies[0]?.spec.file?.rules.length, 10_000);
  });

  it('reports binary garbage as invalid YAML', () => {
    const result = loadPolicies('\u0000\u0001\u0002: [', 'garbage.yaml');
    assert.ok(result.diagnostics.length > 0);
    assert.match(result.diagnostics[0]?.problem ?? '', /invalid YAML/u);
  });

  it('reports an alias bomb instead of expanding it', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 12; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      bomb.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const result = loadPolicies(bomb.join('\n'), 'bomb.yaml');
    assert.equal(result.policies.length, 0);
    assert.ok(result.diagnostics.length > 0);
    assert.match(result.diagnostics[0]?.problem ?? '', /invalid YAML/u);
  });

  it('reports a scalar document as not a Kubernetes object', () => {
    const result = loadPolicies('just a string', 'scalar.yaml');
    assert.match(result.diagnostics[0]?.problem ?? '', /not a Kubernetes object/u);
  });

  it('caps the diagnostics of one document', () => {
    const lines: string[] = [];
    for (let i = 0; i < 500; i++) lines.push(`      - {paths: [relative${i}], action: deny}`);
    const result = loadPolicies(`${header}${lines.join('\n')}\n`, 'errors.yaml');
    assert.equal(result.diagnostics.length, 201);
    assert.match(result.diagnostics[200]?.problem ?? '', /300 more problems not shown/u);
  });

  it('never throws on arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const result = loadPolicies(text, 'random.yaml');
        assert.ok(Array.isArray(result.diagnostics));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary JSON objects as a spec (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (spec) => {
        const text = JSON.stringify({ apiVersion: 'sabpf.io/v1alpha1', kind: 'ContainerSecurityPolicy', metadata: { name: 'x' }, spec });
        const result = loadPolicies(text, 'random.json');
        assert.ok(Array.isArray(result.diagnostics));
      }),
      { numRuns: 500 },
    );
  });
});
