import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatPattern, normalizePattern, patternMatches, PATH_MAX } from '../../compiler/paths.js';

describe('normalizePattern', () => {
  const accepted: [string, string, string][] = [
    ['/etc/shadow', '/etc/shadow', 'exact'],
    ['//etc///shadow', '/etc/shadow', 'exact'],
    ['/etc/./shadow', '/etc/shadow', 'exact'],
    ['/etc/*', '/etc', 'children'],
    ['/etc/**', '/etc', 'subtree'],
    ['/**', '/', 'subtree'],
    ['/*', '/', 'children'],
    ['/', '/', 'exact'],
    ['/opt/My App/run.sh', '/opt/My App/run.sh', 'exact'],
    ['/data/ünïcode/файл', '/data/ünïcode/файл', 'exact'],
  ];
  for (const [raw, path, scope] of accepted) {
    it(`normalizes ${raw}`, () => {
      const result = normalizePattern(raw);
      assert.ok(result.ok, `rejected: ${JSON.stringify(result)}`);
      assert.equal(result.pattern.path, path);
      assert.equal(result.pattern.scope, scope);
    });
  }

  const rejected: [string, RegExp][] = [
    ['etc/shadow', /relative/u],
    ['', /relative/u],
    ['/etc/../shadow', /"\.\."/u],
    ['/etc/', /trailing slash/u],
    ['/etc/*/x', /wildcard/u],
    ['/etc/sh*dow', /wildcard/u],
    ['/etc/\u0000', /control character U\+0000/u],
    ['/etc/\n', /control character U\+000A/u],
    ['/etc/\u007f', /control character U\+007F/u],
    [`/${'a'.repeat(256)}`, /NAME_MAX/u],
  ];
  for (const [raw, problem] of rejected) {
    it(`rejects ${JSON.stringify(raw).slice(0, 40)}`, () => {
      const result = normalizePattern(raw);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.problem, problem);
    });
  }

  it('accepts a path of exactly PATH_MAX - 1 bytes', () => {
    const path = `${`/${'a'.repeat(99)}`.repeat(40)}/${'b'.repeat(94)}`;
    const result = normalizePattern(path);
    assert.ok(result.ok);
    assert.equal(Buffer.byteLength(result.pattern.path), PATH_MAX - 1);
  });

  it('rejects a path of PATH_MAX bytes', () => {
    const path = `${`/${'a'.repeat(99)}`.repeat(40)}/${'b'.repeat(95)}`;
    assert.equal(Buffer.byteLength(path), PATH_MAX);
    const result = normalizePattern(path);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.problem, /PATH_MAX/u);
  });

  it('accepts a path 1,000 levels deep', () => {
    const result = normalizePattern('/d'.repeat(1000));
    assert.ok(result.ok);
    assert.equal(result.pattern.path.split('/').length - 1, 1000);
  });

  describe('when given arbitrary input (property)', () => {
    const segment = fc.constantFrom('a', 'b', '.', '', 'etc', 'x y', 'ü');
    const rawPath = fc.array(segment, { maxLength: 8 }).map((parts) => `/${parts.join('/')}`);

    it('is idempotent: normalizing the formatted result changes nothing', () => {
      fc.assert(
        fc.property(rawPath, fc.constantFrom('', '/*', '/**'), (path, suffix) => {
          const first = normalizePattern(`${path.replace(/\/+$/u, '')}${suffix}`);
          if (!first.ok) return;
          const second = normalizePattern(formatPattern(first.pattern));
          assert.ok(second.ok);
          assert.deepEqual(second.pattern, first.pattern);
        }),
      );
    });

    it('never leaves "//", "/./" or a trailing slash', () => {
      fc.assert(
        fc.property(rawPath, (path) => {
          const result = normalizePattern(path);
          if (!result.ok) return;
          assert.ok(!result.pattern.path.includes('//'));
          assert.ok(!result.pattern.path.split('/').includes('.'));
          assert.ok(result.pattern.path === '/' || !result.pattern.path.endsWith('/'));
        }),
      );
    });

    it('never throws on any string', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
          const result = normalizePattern(text);
          assert.equal(typeof result.ok, 'boolean');
        }),
      );
    });
  });
});

describe('patternMatches', () => {
  const cases: [string, string, boolean][] = [
    ['/etc/shadow', '/etc/shadow', true],
    ['/etc/shadow', '/etc/shadow.bak', false],
    ['/etc/**', '/etc', true],
    ['/etc/**', '/etc/ssl/certs/ca.pem', true],
    ['/etc/**', '/etcetera', false],
    ['/etc/*', '/etc/passwd', true],
    ['/etc/*', '/etc', false],
    ['/etc/*', '/etc/ssl/certs', false],
    ['/**', '/anything/at/all', true],
    ['/*', '/bin', true],
    ['/*', '/bin/sh', false],
  ];
  for (const [pattern, path, expected] of cases) {
    it(`${expected ? 'matches' : 'does not match'} ${path} with ${pattern}`, () => {
      const normalized = normalizePattern(pattern);
      assert.ok(normalized.ok);
      assert.equal(patternMatches(normalized.pattern, path), expected);
    });
  }
});
