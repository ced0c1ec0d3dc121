import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';

import { auditTrailSettings, openAuditTrail } from '../../../cli/audit-options.js';
import { enforceKubernetesCommand, serveMetrics } from '../../../cli/commands/enforce-kubernetes.js';
import { UsageError } from '../../../cli/usage.js';

describe('start of sabpf enforce', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sabpf-start-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reports an audit folder it cannot create', async () => {
    writeFileSync(join(dir, 'file'), '');
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({}, sink);
    const stderr = process.stderr.write;
    let printed = '';
    process.stderr.write = ((text: string) => {
      printed += text;
      return true;
    }) as typeof process.stderr.write;
    try {
      const trail = auditTrailSettings({ 'audit-dir': join(dir, 'file', 'trail') });
      assert.equal(await openAuditTrail(trail, 'node-1', new Registry(), logger), undefined);
    } finally {
      process.stderr.write = stderr;
    }
    assert.match(
      printed,
      /^sabpf enforce: cannot open the audit trail in .*\/file\/trail: .*ENOTDIR.*; a part of the path is a file; pass a folder path\n$/u,
    );
    assert.match(lines.join(''), /"msg":"failed to open the audit trail"/u);
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
