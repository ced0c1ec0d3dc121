import assert from 'node:assert/strict';

import { auditTrailSettings } from '../../../cli/audit-options.js';
import { enforceCommand, enforceHelp } from '../../../cli/commands/enforce.js';
import { enforceKubernetesCommand, enforceKubernetesHelp } from '../../../cli/commands/enforce-kubernetes.js';
import { parseCount, UsageError } from '../../../cli/usage.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_PENDING } from '../../../enforcer/audit/index.js';

describe('audit trail options of sabpf enforce', () => {
  it('keeps the writer defaults', () => {
    assert.deepEqual(auditTrailSettings({}), {
      directory: '/var/log/sabpf',
      maxBytes: DEFAULT_MAX_BYTES,
      maxFiles: DEFAULT_MAX_FILES,
      maxPending: DEFAULT_MAX_PENDING,
    });
  });

  it('passes flags to the writer', () => {
    const settings = auditTrailSettings({
      'audit-dir': '/tmp/trail',
      'audit-max-bytes': '4096',
      'audit-max-files': '2',
      'audit-max-pending': '50000',
    });
    assert.deepEqual(settings, { directory: '/tmp/trail', maxBytes: 4096, maxFiles: 2, maxPending: 50_000 });
  });

  for (const [flag, text, needs] of [
    ['audit-max-files', '1', /at least 2/u],
    ['audit-max-pending', '0', /at least 1/u],
    ['audit-max-bytes', '10MiB', /whole number/u],
    ['audit-max-bytes', '-5', /whole number/u],
    ['audit-max-pending', '1e6', /whole number/u],
    ['audit-max-bytes', '99999999999999999999', /whole number/u],
  ] as const)
    it(`rejects --${flag} ${text}`, () => {
      const err = thrown(() => auditTrailSettings({ [flag]: text }));
      assert.ok(err instanceof UsageError, String(err));
      assert.ok(err.message.includes(`--${flag} "${text}"`), err.message);
      assert.match(err.message, needs);
    });

  it('rejects before touching the kernel', async () => {
    await assert.rejects(
      enforceCommand(['--policies', 'policies', '--containers', 'none.yaml', '--audit-max-pending', 'many']),
      (err: Error) => err instanceof UsageError && /--audit-max-pending "many"/u.test(err.message),
    );
    await assert.rejects(
      enforceKubernetesCommand(['--kubernetes', '--node-name', 'n1', '--allow-unsigned', '--audit-max-files', '0']),
      (err: Error) => err instanceof UsageError && /--audit-max-files "0"/u.test(err.message),
    );
  });

  it('rejects a port above 65535', async () => {
    await assert.rejects(
      enforceKubernetesCommand(['--kubernetes', '--node-name', 'n1', '--allow-unsigned', '--metrics-port', '70000']),
      (err: Error) => err instanceof UsageError && /--metrics-port "70000": pass a whole number from 1 to 65535/u.test(err.message),
    );
  });

  it('aligns the flags in help', () => {
    for (const help of [enforceHelp, enforceKubernetesHelp]) {
      const lines = help.split('\n').filter((l) => /^ {6}--|^ {2}-h, /u.test(l));
      const columns = new Set(lines.map((l) => /^ +(?:-h, )?--\S+(?: [A-Z]+)? +/u.exec(l)?.[0].length));
      assert.equal(columns.size, 1, `options start at different columns:\n${lines.join('\n')}`);
      for (const flag of ['--audit-max-bytes N', '--audit-max-files N', '--audit-max-pending N']) assert.match(help, new RegExp(flag, 'u'));
    }
  });
});

/** Returns what fn throws, failing the test when it returns. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return assert.fail('expected an exception');
}

describe('parseCount', () => {
  it('returns the fallback or number', () => {
    assert.equal(parseCount('--n', undefined, 7, 1), 7);
    assert.equal(parseCount('--n', '65535', 7, 1, 65535), 65535);
  });

  for (const text of ['', '0', '65536', ' 80', '0x50'])
    it(`rejects port ${JSON.stringify(text)}`, () => {
      const err = thrown(() => parseCount('--metrics-port', text, 0, 1, 65535));
      assert.ok(err instanceof UsageError, String(err));
      assert.ok(err.message.includes(`--metrics-port ${JSON.stringify(text)}: pass a whole number from 1 to 65535`), err.message);
    });
});
