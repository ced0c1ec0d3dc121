// End-to-end check of the test control plane: a real kube-apiserver and etcd
// on 127.0.0.1, driven through the built kubectl and through plain HTTPS.

import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startCluster, type Cluster } from '../cluster/cluster.js';

interface HttpsResponse {
  status: number;
  body: string;
}

function httpsGet(url: string, ca: string, token?: string): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
    const req = request(url, { method: 'GET', ca, headers, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after 10s waiting for ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('test control plane (etcd + kube-apiserver on loopback)', function () {
  // The first kube-apiserver start on two shared cores takes 20 to 40 seconds.
  this.timeout(180_000);

  let cluster: Cluster | undefined;
  let caCert = '';

  const running = (): Cluster => {
    assert.ok(cluster, 'the cluster did not start; see the before all hook error');
    return cluster;
  };

  before(async function () {
    cluster = await startCluster();
    caCert = await readFile(cluster.caCertPath, 'utf8');
  });

  after(async function () {
    await cluster?.stop();
  });

  it('reports server version v1.34', async function () {
    const result = await running().kubectl(['version', '-o', 'json']);
    assert.equal(result.code, 0, `kubectl version failed: ${result.stderr}`);

    const version = JSON.parse(result.stdout) as {
      clientVersion?: { gitVersion?: string };
      serverVersion?: { gitVersion?: string };
    };
    assert.match(version.serverVersion?.gitVersion ?? '', /^v1\.34\./);
    assert.match(version.clientVersion?.gitVersion ?? '', /^v1\.34\./);
  });

  it('applies and reads a namespace', async function () {
    const manifest = [
      'apiVersion: v1',
      'kind: Namespace',
      'metadata:',
      '  name: sabpf-cluster-test',
      '  labels:',
      '    sabpf.io/purpose: cluster-test',
      '',
    ].join('\n');

    const applied = await running().kubectl(['apply', '-f', '-'], manifest);
    assert.equal(applied.code, 0, `kubectl apply failed: ${applied.stderr}`);
    assert.match(applied.stdout, /namespace\/sabpf-cluster-test (created|configured)/);

    const read = await running().kubectl(['get', 'namespace', 'sabpf-cluster-test', '-o', 'json']);
    assert.equal(read.code, 0, `kubectl get failed: ${read.stderr}`);
    const namespace = JSON.parse(read.stdout) as {
      metadata: { name: string; uid?: string; labels?: Record<string, string> };
      status?: { phase?: string };
    };
    assert.equal(namespace.metadata.name, 'sabpf-cluster-test');
    assert.equal(namespace.metadata.labels?.['sabpf.io/purpose'], 'cluster-test');
    assert.ok(namespace.metadata.uid, 'a stored object has a uid assigned by the apiserver');
    assert.equal(namespace.status?.phase, 'Active');
  });

  it('rejects anonymous and unknown tokens', async function () {
    const url = `${running().apiServerUrl}/api/v1/namespaces`;

    // The control: the same request with the admin token succeeds, so the
    // refusals below come from authentication and RBAC, not from the URL.
    const admin = await httpsGet(url, caCert, running().adminToken);
    assert.equal(admin.status, 200, admin.body);

    // Anonymous requests authenticate as system:anonymous, which RBAC denies.
    const anonymous = await httpsGet(url, caCert);
    assert.ok([401, 403].includes(anonymous.status), `anonymous got HTTP ${anonymous.status}: ${anonymous.body}`);

    const unknownToken = await httpsGet(url, caCert, 'not-a-token-the-apiserver-knows');
    assert.equal(unknownToken.status, 401, unknownToken.body);
  });

  it('stop removes servers and directory', async function () {
    const { apiServerUrl, dataDir } = running();
    assert.ok(existsSync(dataDir));

    await running().stop();

    assert.equal(existsSync(dataDir), false, `${dataDir} still exists after stop()`);
    await assert.rejects(httpsGet(`${apiServerUrl}/readyz`, caCert), /ECONNREFUSED/);
  });
});

describe('test control plane start failures', function () {
  this.timeout(120_000);

  it('quotes apiserver log on exit', async function () {
    let dataDir = '';
    await assert.rejects(startCluster({ extraApiServerArgs: ['--sabpf-no-such-flag'] }), (error: Error) => {
      assert.match(error.message, /failed to start kube-apiserver: it exited \(code 1/);
      assert.match(error.message, /unknown flag: --sabpf-no-such-flag/);
      dataDir = /last lines of (\S+)\/kube-apiserver\.log/.exec(error.message)?.[1] ?? '';
      return true;
    });
    assert.notEqual(dataDir, '', 'the error names the log file');
    assert.equal(existsSync(dataDir), false, `${dataDir} still exists after a failed start`);
  });
});

describe('test control plane without built binaries', function () {
  it('names missing binary and fix', async function () {
    const emptyCache = await mkdtemp(join(tmpdir(), 'sabpf-empty-cache-'));
    const previous = process.env.SABPF_CACHE;
    process.env.SABPF_CACHE = emptyCache;
    try {
      await assert.rejects(startCluster(), (error: Error) => {
        assert.match(error.message, new RegExp(`${emptyCache}/bin/kube-apiserver-v1\\.34\\.`));
        assert.match(error.message, /test\/cluster\/build\.sh/);
        assert.match(error.message, /make cluster-bins/);
        return true;
      });
    } finally {
      if (previous === undefined) delete process.env.SABPF_CACHE;
      else process.env.SABPF_CACHE = previous;
      await rm(emptyCache, { recursive: true, force: true });
    }
  });
});
