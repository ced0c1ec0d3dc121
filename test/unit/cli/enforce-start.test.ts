import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';

import { auditTrailSettings, checkTrailFolder, openAuditTrail } from '../../../cli/audit-options.js';
import { enforceKubernetesCommand, serveMetrics } from '../../../cli/commands/enforce-kubernetes.js';
import { startEnforcement } from '../../../cli/enforce-start.js';
import { UsageError } from '../../../cli/usage.js';
import { lockFolder, type FolderLock } from '../../../enforcer/kernel/index.js';
import { checkVerifyingKeys } from '../../../webhook/signing.js';

describe('start of sabpf enforce', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sabpf-start-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs fn with stderr and the logger captured. */
  async function captured<T>(fn: (logger: Logger) => Promise<T>): Promise<{ result: T; printed: string; logged: string }> {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const stderr = process.stderr.write;
    let printed = '';
    process.stderr.write = ((text: string) => {
      printed += text;
      return true;
    }) as typeof process.stderr.write;
    try {
      const result = await fn(pino({}, sink));
      return { result, printed, logged: lines.join('') };
    } finally {
      process.stderr.write = stderr;
    }
  }

  it('reports an audit folder it cannot create', async () => {
    writeFileSync(join(dir, 'file'), '');
    const trail = auditTrailSettings({ 'audit-dir': join(dir, 'file', 'trail') });
    const { result, printed, logged } = await captured((logger) => openAuditTrail(trail, 'node-1', new Registry(), logger));
    assert.equal(result, undefined);
    assert.match(
      printed,
      /^sabpf enforce: cannot open the audit trail in .*\/file\/trail: .*ENOTDIR.*; a part of the path is a file; pass a folder path\n$/u,
    );
    assert.match(logged, /"msg":"failed to open the audit trail"/u);
  });

  it('checks a usable folder without writing to it', async () => {
    const trail = auditTrailSettings({ 'audit-dir': join(dir, 'trail') });
    const { result, printed } = await captured((logger) => checkTrailFolder(trail, logger));
    assert.equal(result, true);
    assert.equal(printed, '');
    assert.deepEqual(readdirSync(join(dir, 'trail')), []);
  });

  for (const [name, setup, message] of [
    [
      'a path under a file',
      (): string => {
        writeFileSync(join(dir, 'f'), '');
        return join(dir, 'f', 'trail');
      },
      /ENOTDIR.*; a part of the path is a file/u,
    ],
    [
      'a file',
      (): string => {
        writeFileSync(join(dir, 'f'), '');
        return join(dir, 'f');
      },
      /EEXIST.*; the path is a file; pass a folder path/u,
    ],
    [
      'an active file that is a folder',
      (): string => {
        mkdirSync(join(dir, 'trail', 'audit.log'), { recursive: true });
        return join(dir, 'trail');
      },
      /audit\.log is not a regular file; move it away/u,
    ],
  ] as const)
    it(`rejects ${name} before the load`, async () => {
      const trail = auditTrailSettings({ 'audit-dir': setup() });
      const { result, printed } = await captured((logger) => checkTrailFolder(trail, logger));
      assert.equal(result, false);
      assert.match(printed, /^sabpf enforce: cannot open the audit trail in /u);
      assert.match(printed, message);
    });

  describe('locks', () => {
    const heldLocks: FolderLock[] = [];
    afterEach(() => heldLocks.splice(0).forEach((lock) => lock.release()));

    /** Locks folder as a running enforcer would. */
    function hold(folder: string): void {
      mkdirSync(folder, { recursive: true });
      const result = lockFolder(folder);
      assert.ok(result.locked, `failed to lock ${folder} for the test`);
      heldLocks.push(result.lock);
    }

    // The object folder is empty, so a start that gets as far as the load
    // fails there, before any bpf(2) call.
    const start = (logger: Logger, lockWaitMs = 0): Promise<unknown> =>
      startEnforcement({
        trail: auditTrailSettings({ 'audit-dir': join(dir, 'trail') }),
        load: { pinRoot: join(dir, 'pins'), objectDir: join(dir, 'objects') },
        node: 'node-1',
        registry: new Registry(),
        logger,
        lockWaitMs,
      });
    beforeEach(() => mkdirSync(join(dir, 'objects')));

    it('rejects a locked pin root first', async () => {
      hold(join(dir, 'pins'));
      const { result, printed, logged } = await captured(start);
      assert.equal(result, 1);
      assert.equal(
        printed,
        `sabpf enforce: another sabpf enforcer (pid ${process.pid}) runs with the pin root ${join(dir, 'pins')}, and two would fight over its links; stop it first\n`,
      );
      assert.match(logged, /"msg":"folder locked by another enforcer"/u);
      assert.deepEqual(readdirSync(dir).sort(), ['objects', 'pins']);
    });

    it('rejects a locked audit folder', async () => {
      hold(join(dir, 'trail'));
      const { result, printed } = await captured(start);
      assert.equal(result, 1);
      assert.match(
        printed,
        /writes the audit trail in .*\/trail, and two chains would interleave; stop it first, or pass another --audit-dir\n$/u,
      );
      const again = lockFolder(join(dir, 'pins'));
      assert.ok(again.locked, 'the failed start still holds the pin root');
      again.lock.release();
    });

    it('rejects one folder as pin root and trail', async () => {
      const { result, printed } = await captured((logger) =>
        startEnforcement({
          trail: auditTrailSettings({ 'audit-dir': join(dir, 'both') }),
          load: { pinRoot: join(dir, 'both', '.') },
          node: 'node-1',
          registry: new Registry(),
          logger,
        }),
      );
      assert.equal(result, 2);
      assert.match(printed, /^sabpf enforce: --audit-dir .*\/both is the pin root .*; give the audit trail a folder of its own\n$/u);
    });

    it('names the fix for a pin root that is a file', async () => {
      writeFileSync(join(dir, 'pins'), '');
      const { result, printed } = await captured((logger) => start(logger));
      assert.equal(result, 3);
      assert.match(
        printed,
        /^sabpf enforce: cannot create the pin root .*\/pins: EEXIST.*; the path is a file; pass a folder on bpffs as --pin-root\n$/u,
      );
    });

    it('lets go of both folders after a failed load', async () => {
      const { result, printed } = await captured((logger) => start(logger));
      assert.equal(result, 3);
      assert.match(printed, /^sabpf enforce: cannot enforce: /u);
      assert.deepEqual(readdirSync(join(dir, 'trail')), []);
      for (const folder of ['pins', 'trail']) {
        const again = lockFolder(join(dir, folder));
        assert.ok(again.locked, `the failed start still holds ${folder}`);
        again.lock.release();
      }
    });

    it('waits for a holder that lets go', async () => {
      hold(join(dir, 'pins'));
      setTimeout(() => heldLocks.splice(0).forEach((lock) => lock.release()), 300);
      const { result, logged } = await captured((logger) => start(logger, 5000));
      assert.equal(result, 3, 'the start did not get past the lock to the load');
      assert.match(logged, /"msg":"waiting for another enforcer to exit"/u);
    });

    it('gives up on a holder after the wait', async () => {
      hold(join(dir, 'pins'));
      const { result, printed } = await captured((logger) => start(logger, 300));
      assert.equal(result, 1);
      assert.match(printed, /runs with the pin root/u);
    });
  });

  it('rejects a missing signing key file', async () => {
    const args = ['--kubernetes', '--node-name', 'n1', '--signing-public-key', join(dir, 'none.pem')];
    await assert.rejects(enforceKubernetesCommand(args), (err: Error) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /^failed to read --signing-public-key .*none\.pem: ENOENT; check the path$/u);
      return true;
    });
  });

  it('rejects a signing key file without a key', async () => {
    writeFileSync(join(dir, 'key.pem'), '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n');
    const args = ['--kubernetes', '--node-name', 'n1', '--signing-public-key', join(dir, 'key.pem')];
    await assert.rejects(enforceKubernetesCommand(args), (err: Error) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /^invalid --signing-public-key .*key\.pem: no valid public key found/u);
      return true;
    });
  });

  it('rejects a busy metrics port', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    try {
      await assert.rejects(serveMetrics(new Registry(), port), /EADDRINUSE/u);
    } finally {
      busy.close();
    }
  });

  it('serves metrics on a free port', async () => {
    const registry = new Registry();
    const server = await serveMetrics(registry, 0);
    try {
      const { port } = server.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(response.status, 200);
    } finally {
      server.close();
    }
  });
});

describe('checkVerifyingKeys', () => {
  const pem = (type: 'ec' | 'rsa', curve = 'prime256v1'): { publicKey: string; privateKey: string } =>
    type === 'ec'
      ? generateKeyPairSync('ec', {
          namedCurve: curve,
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        })
      : generateKeyPairSync('rsa', {
          modulusLength: 2048,
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        });

  it('accepts a P-256 public key', () => assert.equal(checkVerifyingKeys(pem('ec').publicKey), undefined));

  it('accepts a file where one of several keys is usable', () => {
    const broken = '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n';
    assert.equal(checkVerifyingKeys(`${broken}${pem('ec').publicKey}`), undefined);
  });

  it('names the type of an RSA key', () =>
    assert.equal(checkVerifyingKeys(pem('rsa').publicKey), 'ES256 needs an EC P-256 public key, got rsa'));

  it('names the curve of a P-384 key', () =>
    assert.equal(checkVerifyingKeys(pem('ec', 'secp384r1').publicKey), 'ES256 needs an EC P-256 public key, got EC secp384r1'));

  it('rejects a private key', () =>
    assert.match(checkVerifyingKeys(pem('ec').privateKey) ?? '', /^it contains a private key; pass only the public half/u));

  it('rejects text without a key', () => assert.match(checkVerifyingKeys('hello') ?? '', /^no valid public key found/u));
});
