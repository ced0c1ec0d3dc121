import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatDiagnostic } from '../../compiler/diagnostics.js';
import { loadPolicies } from '../../compiler/load.js';
import { repositoryRoot } from '../../compiler/schema.js';

const corpus = join(repositoryRoot(), 'test/unit/corpus/invalid');

describe('validation corpus', () => {
  const files = readdirSync(corpus)
    .filter((f) => f.endsWith('.yaml'))
    .sort();

  it('has at least 30 invalid policies', () => {
    assert.ok(files.length >= 30, `only ${files.length} corpus files`);
  });

  for (const file of files) {
    it(`reports exactly the expected errors for ${file}`, () => {
      const text = readFileSync(join(corpus, file), 'utf8');
      const expected = text
        .split('\n')
        .filter((line) => line.startsWith('# expect: '))
        .map((line) => line.slice('# expect: '.length));
      assert.ok(expected.length > 0, `${file} has no "# expect:" lines`);

      const result = loadPolicies(text, file, { policiesOnly: true });
      const actual = result.diagnostics.map((d) => formatDiagnostic(d).slice(file.length + 1));
      assert.deepEqual(actual, expected);
      assert.equal(result.policies.length, 0, 'an invalid policy must not be returned');
    });
  }
});

describe('valid example policies', () => {
  const examples = join(repositoryRoot(), 'policies/examples');
  const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));

  it('has at least 8 examples', () => {
    assert.ok(files.length >= 8);
  });

  for (const file of files) {
    it(`accepts ${file} without errors`, () => {
      const result = loadPolicies(readFileSync(join(examples, file), 'utf8'), file, { policiesOnly: true });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic(d)),
        [],
      );
      assert.equal(result.policies.length, 1);
    });
  }
});

describe('loadPolicies', () => {
  describe('when a document has defaults to apply', () => {
    it('fills mode, severity and access', () => {
      const result = loadPolicies(
        `apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: {name: p}
spec:
  selector: {matchLabels: {app: web}}
  file:
    posture: allow
    rules:
      - paths: [/etc/shadow]
        action: deny
`,
        'p.yaml',
      );
      const policy = result.policies[0];
      assert.ok(policy);
      assert.equal(policy.namespace, 'default');
      assert.equal(policy.spec.mode, 'enforce');
      assert.equal(policy.spec.severity, 'medium');
      assert.equal(policy.spec.file?.rules[0]?.access, 'readwrite');
    });
  });

  describe('when several documents are in one file', () => {
    it('reports errors of every document with its index', () => {
      const bad = `apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: {name: p}
spec:
  selector: {matchLabels: {app: web}}
  exec: {posture: allow, rules: [{paths: [x], action: deny}]}
`;
      const result = loadPolicies(`${bad}---\n${bad}`, 'two.yaml');
      assert.equal(result.diagnostics.length, 2);
      assert.equal(result.diagnostics[0]?.document, 0);
      assert.equal(result.diagnostics[1]?.document, 1);
      assert.equal(result.diagnostics[1]?.line, 13);
    });
  });

  describe('when a policy warns', () => {
    it('keeps the policy and reports a warning for posture deny without allow rules', () => {
      const result = loadPolicies(
        `apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: {name: p}
spec:
  selector: {matchLabels: {app: web}}
  exec: {posture: deny, rules: [{paths: [/bin/sh], action: deny}]}
`,
        'warn.yaml',
      );
      assert.equal(result.policies.length, 1);
      assert.equal(result.diagnostics.length, 1);
      assert.equal(result.diagnostics[0]?.severity, 'warning');
      assert.equal(result.diagnostics[0]?.field, 'spec.exec.posture');
    });
  });
});
