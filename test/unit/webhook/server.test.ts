import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';

import type { AdmissionRules, RulesInput } from '../../../webhook/admission-rules.js';
import { StaticClusterView } from '../../../webhook/cache/static-view.js';
import { WebhookMetrics } from '../../../webhook/metrics.js';
import { createApp, listenHttps, MAX_BODY_BYTES } from '../../../webhook/server.js';
import { PolicySigner } from '../../../webhook/signing.js';
import { ecKeyPair, podObject, policyObject } from './helpers.js';

interface Reply {
  status: number;
  body: string;
  json: () => Record<string, unknown>;
}

function send(port: number, method: string, path: string, body?: string, contentType = 'application/json'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> =
      body === undefined ? {} : { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) };
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function podReview(pod: Record<string, unknown>, uid = 'uid-1'): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object: pod },
  });
}

class SlowCluster extends StaticClusterView {
  override namespaceLabels(): Promise<Record<string, string> | undefined> {
    return new Promise(() => undefined);
  }
}

class UnsyncedCluster extends StaticClusterView {
  override synced(): boolean {
    return false;
  }
}

const noRules: AdmissionRules = { evaluate: () => [] };
const signer = PolicySigner.fromPem(ecKeyPair().privateKeyPem, 'test key');
const blockPackageManagers = policyObject('block', {
  exec: { posture: 'allow', rules: [{ paths: ['/usr/bin/apt-get'], action: 'deny' }] },
});

async function serve(
  options: { cluster?: StaticClusterView; rules?: AdmissionRules; timeoutMs?: number } = {},
): Promise<{ port: number; server: Server; metrics: WebhookMetrics }> {
  const cluster = options.cluster ?? new StaticClusterView({ policies: [blockPackageManagers], namespaces: { shop: {} } });
  const metrics = new WebhookMetrics(() => cluster.sizes(), { processMetrics: false });
  const app = createApp({
    cluster,
    rules: options.rules ?? noRules,
    signer,
    log: pino({ level: 'silent' }),
    metrics,
    timeoutMs: options.timeoutMs ?? 2000,
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server, metrics };
}

describe('webhook HTTP server', () => {
  let port = 0;
  let server: Server | undefined;

  before(async () => {
    ({ port, server } = await serve());
  });

  after(() => {
    server?.close();
  });

  describe('when an AdmissionReview is valid', () => {
    it('answers with the uid and verdict', async () => {
      const reply = await send(
        port,
        'POST',
        '/validate/pod',
        podReview(podObject('web-1', [{ name: 'a', command: ['/usr/bin/apt-get'] }]), 'abc'),
      );
      assert.equal(reply.status, 200);
      const response = reply.json().response as Record<string, unknown>;
      assert.equal(response.uid, 'abc');
      assert.equal(response.allowed, false);
      assert.match((response.status as { message: string }).message, /\[shop\/block\] container "a"/);
    });
  });

  describe('when the body is malformed', () => {
    it('answers 400 for invalid JSON', async () => {
      const reply = await send(port, 'POST', '/validate/pod', '{"apiVersion": "admission.k8s.io/v1", ');
      assert.equal(reply.status, 400);
      assert.match(reply.json().error as string, /^failed to parse the AdmissionReview: invalid JSON: /);
    });

    it('keeps stack traces out of the body', async () => {
      const reply = await send(port, 'POST', '/validate/pod', '{oops');
      assert.doesNotMatch(reply.body, /at .*\.js:\d+/);
    });

    it('answers 400 for a wrong apiVersion', async () => {
      const body = JSON.parse(podReview(podObject('p', [{ name: 'a' }]))) as Record<string, unknown>;
      body.apiVersion = 'admission.k8s.io/v1beta1';
      const reply = await send(port, 'POST', '/validate/pod', JSON.stringify(body));
      assert.equal(reply.status, 400);
      assert.match(reply.json().error as string, /unsupported AdmissionReview apiVersion/);
    });

    it('answers 400 for a wrong review kind', async () => {
      const reply = await send(port, 'POST', '/validate/pod', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }));
      assert.equal(reply.status, 400);
      assert.match(reply.json().error as string, /kind is "Pod", expected AdmissionReview/);
    });

    it('answers 400 for a Pod sent to /validate/csp', async () => {
      const reply = await send(port, 'POST', '/validate/csp', podReview(podObject('p', [{ name: 'a' }])));
      assert.equal(reply.status, 400);
      assert.match(reply.json().error as string, /\/validate\/csp admits ContainerSecurityPolicy.sabpf.io only/);
    });

    it('answers 400 for another content type', async () => {
      const reply = await send(port, 'POST', '/validate/pod', 'hello', 'text/plain');
      assert.equal(reply.status, 400);
      assert.match(reply.json().error as string, /expected a JSON body with Content-Type application\/json, got text\/plain/);
    });

    it('answers 413 above the size limit', async () => {
      const reply = await send(port, 'POST', '/validate/pod', JSON.stringify({ padding: 'x'.repeat(MAX_BODY_BYTES) }));
      assert.equal(reply.status, 413);
      assert.match(reply.json().error as string, /larger than \d+ bytes/);
    });

    it('answers 404 for an unknown path', async () => {
      const reply = await send(port, 'GET', '/validate/pod');
      assert.equal(reply.status, 404);
      assert.match(reply.json().error as string, /admission endpoints take POST/);
    });
  });

  describe('when health is probed', () => {
    it('answers /healthz', async () => {
      const reply = await send(port, 'GET', '/healthz');
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json(), { status: 'ok' });
    });

    it('answers /readyz when synced', async () => {
      assert.equal((await send(port, 'GET', '/readyz')).status, 200);
    });
  });

  describe('when metrics are scraped', () => {
    it('counts requests by endpoint and result', async () => {
      const reply = await send(port, 'GET', '/metrics');
      assert.equal(reply.status, 200);
      assert.match(reply.body, /sabpf_webhook_admission_requests_total\{endpoint="\/validate\/pod",result="denied"\} 1/);
      assert.match(reply.body, /sabpf_webhook_admission_requests_total\{endpoint="\/validate\/pod",result="bad_request"\} \d+/);
    });

    it('reports cache sizes', async () => {
      const reply = await send(port, 'GET', '/metrics');
      assert.match(reply.body, /sabpf_webhook_cache_objects\{kind="policies"\} 1/);
      assert.match(reply.body, /sabpf_webhook_cache_objects\{kind="namespaces"\} 1/);
    });

    it('has a latency histogram', async () => {
      const reply = await send(port, 'GET', '/metrics');
      assert.match(reply.body, /sabpf_webhook_admission_duration_seconds_bucket\{le="0.005",endpoint="\/validate\/pod"\}/);
    });
  });
});

describe('webhook HTTP server faults', () => {
  it('answers 500 when a handler throws', async () => {
    const rules: AdmissionRules = {
      evaluate(_input: RulesInput): string[] {
        throw new Error('secret internal detail');
      },
    };
    const { port, server } = await serve({ rules });
    try {
      const reply = await send(port, 'POST', '/validate/pod', podReview(podObject('p', [{ name: 'a' }])));
      assert.equal(reply.status, 500);
      assert.match(reply.json().error as string, /^failed to admit Pod shop\/: internal error, see the webhook log$/);
      assert.doesNotMatch(reply.body, /secret internal detail/);
    } finally {
      server.close();
    }
  });

  it('answers 500 after the deadline', async () => {
    const { port, server, metrics } = await serve({ cluster: new SlowCluster(), timeoutMs: 100 });
    try {
      const reply = await send(port, 'POST', '/validate/pod', podReview(podObject('p', [{ name: 'a' }])));
      assert.equal(reply.status, 500);
      assert.match(reply.json().error as string, /timed out after 100 ms/);
      assert.match(await metrics.registry.metrics(), /result="error"\} 1/);
    } finally {
      server.close();
    }
  });

  it('answers 503 on /readyz before sync', async () => {
    const { port, server } = await serve({ cluster: new UnsyncedCluster() });
    try {
      const reply = await send(port, 'GET', '/readyz');
      assert.equal(reply.status, 503);
      assert.match(reply.json().reason as string, /caches have not listed/);
    } finally {
      server.close();
    }
  });
});

describe('webhook HTTPS server', () => {
  let dir = '';
  let cert = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sabpf-webhook-tls-'));
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
        join(dir, 'tls.key'),
        '-out',
        join(dir, 'tls.crt'),
      ],
      { stdio: 'pipe' },
    );
    cert = readFileSync(join(dir, 'tls.crt'), 'utf8');
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  // SECLEVEL=0 lets this client offer TLS 1.1 at all (OpenSSL 3 refuses it
  // by default), so a refused TLS 1.1 handshake is the server's doing.
  const get = (port: number, maxVersion: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'): Promise<number> =>
    new Promise((resolve, reject) => {
      const tls = { maxVersion, minVersion: 'TLSv1' as const, ciphers: 'DEFAULT:@SECLEVEL=0' };
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca: cert, ...tls }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });

  it('serves TLS 1.2 and 1.3 and rejects 1.1', async () => {
    const cluster = new StaticClusterView();
    const metrics = new WebhookMetrics(() => cluster.sizes(), { processMetrics: false });
    const app = createApp({ cluster, rules: noRules, signer, log: pino({ level: 'silent' }), metrics, timeoutMs: 1000 });
    const tls = { cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) };
    const server = await listenHttps(app, tls, '127.0.0.1', 0, 1000);
    const port = (server.address() as AddressInfo).port;
    try {
      assert.equal(await get(port, 'TLSv1.3'), 200);
      assert.equal(await get(port, 'TLSv1.2'), 200);
      await assert.rejects(get(port, 'TLSv1.1'), /protocol version/);
    } finally {
      server.close();
    }
  });
});
