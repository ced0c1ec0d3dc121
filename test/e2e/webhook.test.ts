// End-to-end tests of the admission webhook against a real kube-apiserver and
// etcd: the webhook runs in-process on 127.0.0.1 with its own CA, with the
// RBAC of deploy/ (a token of its service account), and the apiserver calls
// it through the webhook configurations of deploy/ pointed at that URL.

import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { pino } from 'pino';

import { repositoryRoot } from '../../compiler/schema.js';
import { startCluster, type Cluster } from '../cluster/cluster.js';
import { SIGNATURE_ANNOTATION, verifyPolicySignature } from '../../webhook/signing.js';
import { startWebhook, type RunningWebhook } from '../../webhook/webhook.js';
import { eventually, httpsRequest } from './webhook/https.js';
import { deployFile, toYaml, webhookConfigurationsForUrl } from './webhook/manifests.js';
import { createWebhookPki, type WebhookPki } from './webhook/pki.js';
import { serviceAccountKubeconfig } from './webhook/service-account.js';

const execFileAsync = promisify(execFile);
const root = repositoryRoot();

const namespaces = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Namespace
metadata:
  name: vault
  labels:
    sabpf.io/require-policy: "true"
`;

function pod(name: string, namespace: string, app: string, command: string[]): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app } },
    spec: { containers: [{ name: 'main', image: 'example/app:1', command }] },
  });
}

function policy(name: string, namespace: string, app: string, spec: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'sabpf.io/v1alpha1',
    kind: 'ContainerSecurityPolicy',
    metadata: { name, namespace },
    spec: { selector: { matchLabels: { app } }, mode: 'enforce', ...spec },
  });
}

const protectShadow = { file: { posture: 'allow', rules: [{ paths: ['/etc/shadow'], action: 'deny' }] } };

describe('admission webhook against kube-apiserver', function () {
  // A cold apiserver start takes 20 to 40 seconds on two shared cores.
  this.timeout(240_000);

  let cluster: Cluster | undefined;
  let webhook: RunningWebhook | undefined;
  let pki: WebhookPki | undefined;

  const running = (): { cluster: Cluster; webhook: RunningWebhook; pki: WebhookPki } => {
    assert.ok(cluster, 'the cluster did not start; see the before all hook error');
    assert.ok(webhook, 'the webhook did not start; see the before all hook error');
    assert.ok(pki, 'the webhook certificates were not created; see the before all hook error');
    return { cluster, webhook, pki };
  };
  const kubectl = async (args: string[], input?: string) => running().cluster.kubectl(args, input);
  const webhookUrl = (path: string): string => `https://127.0.0.1:${running().webhook.port}${path}`;

  // /readyz before the CRD existed: the policy list fails until it does.
  let readyzWithoutCrd = 0;

  before(async function () {
    // The rules under test are compiled from the Rego in the tree, never a stale file.
    await execFileAsync('bash', [join(root, 'policies/admission/build.sh')]);
    cluster = await startCluster();

    // The webhook's namespace, service account and RBAC, exactly as deployed.
    const rbac = await cluster.kubectl(['apply', '-f', deployFile('namespace.yaml'), '-f', deployFile('rbac-webhook.yaml')]);
    assert.equal(rbac.code, 0, `failed to apply the webhook RBAC: ${rbac.stderr}`);
    const kubeconfig = await serviceAccountKubeconfig(cluster, 'sabpf-system', 'sabpf-webhook');

    // The webhook starts before the CRD exists, as it can in a real rollout,
    // so its caches must retry the failed policy list.
    pki = await createWebhookPki(join(cluster.dataDir, 'webhook-pki'));
    const log = pino({ level: 'debug' }, createWriteStream(join(cluster.dataDir, 'webhook.log')));
    webhook = await startWebhook(
      {
        host: '127.0.0.1',
        port: 0,
        tlsCertFile: pki.servingCertPath,
        tlsKeyFile: pki.servingKeyPath,
        signingKeyFile: pki.signingKeyPath,
        rulesWasm: join(root, 'policies/admission/require_policy.wasm'),
        kubeconfig,
        requestTimeoutMs: 2500,
        tlsReloadIntervalMs: 60_000,
        logLevel: 'debug',
      },
      log,
    );
    const ca = pki.caCertPem;
    await new Promise((resolve) => setTimeout(resolve, 500));
    readyzWithoutCrd = (await httpsRequest(webhookUrl('/readyz'), ca, 'GET')).status;

    const crd = await cluster.kubectl(['apply', '-f', join(root, 'crds/sabpf.io_containersecuritypolicies.yaml')]);
    assert.equal(crd.code, 0, `failed to apply the CRD: ${crd.stderr}`);
    const established = await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/containersecuritypolicies.sabpf.io',
      '--timeout=60s',
    ]);
    assert.equal(established.code, 0, `the CRD did not become established: ${established.stderr}`);
    await eventually(
      'the webhook is ready',
      async () => {
        const reply = await httpsRequest(webhookUrl('/readyz'), ca, 'GET');
        return reply.status === 200 ? true : `HTTP ${reply.status} ${reply.body}`;
      },
      60_000,
    );

    const created = await cluster.kubectl(['apply', '-f', '-'], namespaces);
    assert.equal(created.code, 0, `failed to create the test namespaces: ${created.stderr}`);

    const registered = await cluster.kubectl(['apply', '-f', '-'], toYaml(webhookConfigurationsForUrl(webhook.port, pki.caCertPem)));
    assert.equal(registered.code, 0, `failed to register the webhooks: ${registered.stderr}`);

    // The apiserver picks up new webhook configurations asynchronously.
    await eventually('the apiserver calls the webhook', async () => {
      const probe = await kubectl(
        ['apply', '--dry-run=server', '-f', '-'],
        policy('probe', 'shop', 'probe', { file: { posture: 'allow', rules: [{ paths: ['relative'], action: 'deny' }] } }),
      );
      return probe.code !== 0 && probe.stderr.includes('sign.csp.sabpf.io') ? true : `exit ${probe.code}: ${probe.stderr}`;
    });
  });

  after(async function () {
    await webhook?.stop();
    await cluster?.stop();
  });

  describe('when the webhook starts before the CRD', () => {
    it('is not ready without it', () => {
      assert.equal(readyzWithoutCrd, 503);
    });
  });

  describe('when an invalid policy is applied', () => {
    it('rejects it with every field path', async () => {
      const file = join(root, 'test/unit/corpus/invalid/38-many-errors-at-once.yaml');
      const expected = (await readFile(file, 'utf8'))
        .split('\n')
        .filter((line) => line.startsWith('# expect: '))
        .map((line) => line.replace(/^# expect: \d+:\d+: error: /, ''));
      assert.equal(expected.length, 5, 'the corpus file lists five problems');

      const result = await kubectl(['apply', '-f', file]);
      assert.notEqual(result.code, 0, 'kubectl apply of an invalid policy must fail');
      assert.match(result.stderr, /admission webhook "sign.csp.sabpf.io" denied the request/);
      for (const line of expected) {
        const field = /^\[shop\/p\] (\S+):/.exec(line)?.[1];
        assert.ok(field, `no field path in ${line}`);
        assert.ok(result.stderr.includes(`[shop/p] ${field}:`), `missing ${field} in:\n${result.stderr}`);
        assert.ok(result.stderr.includes(line), `missing the line\n  ${line}\nin:\n${result.stderr}`);
      }
    });

    it('rejects a generated name', async () => {
      // The signature covers the name, which the apiserver generates only after admission.
      const object = JSON.parse(policy('ignored', 'shop', 'web', protectShadow)) as { metadata: Record<string, unknown> };
      object.metadata = { generateName: 'generated-', namespace: 'shop' };
      const result = await kubectl(['create', '-f', '-'], JSON.stringify(object));
      assert.notEqual(result.code, 0, 'a policy with generateName must be rejected');
      assert.match(result.stderr, /\[shop\/\?\] metadata.name: missing name/);
    });

    it('stores nothing', async () => {
      const result = await kubectl(['get', 'csp', 'p', '-n', 'shop']);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /NotFound|not found/);
    });
  });

  describe('when a valid policy is applied', () => {
    const read = async (): Promise<Record<string, unknown>> => {
      const result = await kubectl(['get', 'csp', 'block-package-managers', '-n', 'shop', '-o', 'json']);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout) as Record<string, unknown>;
    };
    const signatureOf = (object: Record<string, unknown>): string | undefined =>
      ((object.metadata as { annotations?: Record<string, string> }).annotations ?? {})[SIGNATURE_ANNOTATION];

    it('accepts it', async () => {
      const result = await kubectl(['apply', '-f', join(root, 'policies/examples/block-package-managers.yaml')]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /containersecuritypolicy.sabpf.io\/block-package-managers created/);
    });

    it('stores a signature that verifies', async () => {
      const object = await read();
      assert.ok(signatureOf(object), `no ${SIGNATURE_ANNOTATION} annotation`);
      assert.deepEqual(verifyPolicySignature(object, running().webhook.signer.publicKeyPem), { ok: true });
    });

    it('re-signs after a spec patch', async () => {
      const before = await read();
      const patched = await kubectl([
        'patch',
        'csp',
        'block-package-managers',
        '-n',
        'shop',
        '--type',
        'merge',
        '-p',
        '{"spec":{"severity":"low"}}',
      ]);
      assert.equal(patched.code, 0, patched.stderr);

      const after = await read();
      assert.equal((after.spec as { severity: string }).severity, 'low');
      assert.notEqual(signatureOf(after), signatureOf(before));
      assert.deepEqual(verifyPolicySignature(after, running().webhook.signer.publicKeyPem), { ok: true });

      // The old signature on the new spec is what an attacker editing etcd would leave behind.
      const stale = structuredClone(after);
      (stale.metadata as { annotations: Record<string, string> }).annotations[SIGNATURE_ANNOTATION] = signatureOf(before) as string;
      assert.equal(verifyPolicySignature(stale, running().webhook.signer.publicKeyPem).ok, false);
    });

    it('keeps the signature on a label change', async () => {
      const before = await read();
      const labelled = await kubectl(['label', 'csp', 'block-package-managers', '-n', 'shop', 'team=shop']);
      assert.equal(labelled.code, 0, labelled.stderr);
      assert.equal(signatureOf(await read()), signatureOf(before));
    });

    it('restores a removed signature', async () => {
      const removed = await kubectl(['annotate', 'csp', 'block-package-managers', '-n', 'shop', `${SIGNATURE_ANNOTATION}-`]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual(verifyPolicySignature(await read(), running().webhook.signer.publicKeyPem), { ok: true });
    });

    it('rejects a forged signature', async () => {
      const forged = await kubectl([
        'annotate',
        '--overwrite',
        'csp',
        'block-package-managers',
        '-n',
        'shop',
        `${SIGNATURE_ANNOTATION}=eyJhbGciOiJub25lIn0.e30.`,
      ]);
      assert.equal(forged.code, 0, forged.stderr);
      // The mutating webhook replaced the forgery with a real signature.
      assert.deepEqual(verifyPolicySignature(await read(), running().webhook.signer.publicKeyPem), { ok: true });
    });
  });

  describe('when a pod runs a denied entrypoint', () => {
    it('rejects it naming policy and rule', async () => {
      let result = { code: 0, stdout: '', stderr: '' };
      await eventually('the pod is rejected', async () => {
        result = await kubectl(['create', '-f', '-'], pod('installer', 'shop', 'web', ['/usr/bin/apt-get', 'install', '-y', 'curl']));
        return result.code !== 0 ? true : `exit 0: ${result.stdout}`;
      });
      assert.match(result.stderr, /admission webhook "pods.sabpf.io" denied the request/);
      assert.match(
        result.stderr,
        /\[shop\/block-package-managers\] container "main" of pod installer: the entrypoint \/usr\/bin\/apt-get is denied by spec.exec.rules\[0\] "package-managers"/,
      );
    });

    it('admits an allowed entrypoint', async () => {
      const result = await kubectl(['create', '-f', '-'], pod('web-1', 'shop', 'web', ['/usr/sbin/nginx']));
      assert.equal(result.code, 0, result.stderr);
    });

    it('warns about a relative command', async () => {
      const result = await kubectl(['create', '-f', '-'], pod('web-2', 'shop', 'web', ['nginx']));
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /Warning: container "main" of pod web-2 has the relative command "nginx"/);
    });
  });

  describe('when a namespace requires policies', () => {
    it('rejects a pod no policy selects', async () => {
      const result = await kubectl(['create', '-f', '-'], pod('api-1', 'vault', 'api', ['/app']));
      assert.notEqual(result.code, 0, 'the pod must be rejected');
      assert.match(result.stderr, /admission webhook "pods-required.sabpf.io" denied the request/);
      assert.match(
        result.stderr,
        /container "main" of pod "api-1" is not selected by any ContainerSecurityPolicy; namespace "vault" has label sabpf.io\/require-policy=true/,
      );
    });

    it('rejects a pod only audit policies select', async () => {
      const applied = await kubectl(['apply', '-f', '-'], policy('trial', 'vault', 'batch', { ...protectShadow, mode: 'audit' }));
      assert.equal(applied.code, 0, applied.stderr);
      await eventually('the audit-only pod is rejected for its mode', async () => {
        const result = await kubectl(['create', '--dry-run=server', '-f', '-'], pod('batch-1', 'vault', 'batch', ['/app']));
        return /only by audit-mode policies \(vault\/trial\)/.test(result.stderr) ? true : `exit ${result.code}: ${result.stderr}`;
      });
    });

    it('admits it once a policy selects it', async () => {
      const applied = await kubectl(['apply', '-f', '-'], policy('lock-api', 'vault', 'api', protectShadow));
      assert.equal(applied.code, 0, applied.stderr);
      await eventually('the pod is admitted', async () => {
        const result = await kubectl(['create', '-f', '-'], pod('api-1', 'vault', 'api', ['/app']));
        return result.code === 0 ? true : `exit ${result.code}: ${result.stderr}`;
      });
    });
  });

  describe('when a new policy would break running pods', () => {
    it('warns naming pod and command', async () => {
      const created = await kubectl(['create', '-f', '-'], pod('shopfront-1', 'shop', 'shopfront', ['/docker-entrypoint.sh']));
      assert.equal(created.code, 0, created.stderr);
      await eventually('the webhook caches the pod', async () =>
        running()
          .webhook.cluster.podsIn('shop')
          .some((p) => (p.metadata as { name?: string }).name === 'shopfront-1')
          ? true
          : 'not cached',
      );

      const allowList = { exec: { posture: 'deny', rules: [{ paths: ['/usr/sbin/nginx'], action: 'allow' }] } };
      const result = await kubectl(['apply', '-f', '-'], policy('shopfront-allow-list', 'shop', 'shopfront', allowList));
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        /Warning: \[shop\/shopfront-allow-list\] spec.exec.posture \(deny\) denies the entrypoint \/docker-entrypoint.sh of container "main" in pod shopfront-1/,
      );
    });
  });

  describe('when requests are dry runs', () => {
    it('signs without storing a policy', async () => {
      const result = await kubectl(
        ['apply', '--dry-run=server', '-o', 'json', '-f', '-'],
        policy('dry-run-only', 'shop', 'web', protectShadow),
      );
      assert.equal(result.code, 0, result.stderr);
      const object = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.deepEqual(verifyPolicySignature(object, running().webhook.signer.publicKeyPem), { ok: true });

      const read = await kubectl(['get', 'csp', 'dry-run-only', '-n', 'shop']);
      assert.notEqual(read.code, 0, 'a dry run must store nothing');
      assert.match(read.stderr, /NotFound|not found/);
    });

    it('still rejects a denied pod', async () => {
      const result = await kubectl(['create', '--dry-run=server', '-f', '-'], pod('dry-installer', 'shop', 'web', ['/usr/bin/apt-get']));
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /denied by spec.exec.rules\[0\]/);
    });

    it('creates no pod', async () => {
      const result = await kubectl(['create', '--dry-run=server', '-f', '-'], pod('dry-web', 'shop', 'web', ['/usr/sbin/nginx']));
      assert.equal(result.code, 0, result.stderr);
      const read = await kubectl(['get', 'pod', 'dry-web', '-n', 'shop']);
      assert.notEqual(read.code, 0, 'a dry run must store nothing');
    });
  });

  describe('when the webhook is called directly', () => {
    it('answers 400 to malformed JSON', async () => {
      const reply = await httpsRequest(
        webhookUrl('/validate/pod'),
        running().pki.caCertPem,
        'POST',
        '{"apiVersion": "admission.k8s.io/v1",',
      );
      assert.equal(reply.status, 400);
      const body = JSON.parse(reply.body) as { error: string };
      assert.match(body.error, /^failed to parse the AdmissionReview: invalid JSON/);
    });

    it('answers 400 to a wrong apiVersion', async () => {
      const review = { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } };
      const reply = await httpsRequest(webhookUrl('/validate/csp'), running().pki.caCertPem, 'POST', JSON.stringify(review));
      assert.equal(reply.status, 400);
      assert.match(reply.body, /unsupported AdmissionReview apiVersion/);
    });

    it('reports metrics of the run', async () => {
      const reply = await httpsRequest(webhookUrl('/metrics'), running().pki.caCertPem, 'GET');
      assert.equal(reply.status, 200);
      assert.match(reply.body, /sabpf_webhook_admission_requests_total\{endpoint="\/mutate\/csp",result="denied"\} [1-9]/);
      assert.match(reply.body, /sabpf_webhook_admission_requests_total\{endpoint="\/validate\/pod",result="denied"\} [1-9]/);
      assert.match(reply.body, /sabpf_webhook_admission_requests_total\{endpoint="\/validate\/csp",result="allowed"\} [1-9]/);
      assert.match(reply.body, /sabpf_webhook_cache_objects\{kind="policies"\} [1-9]/);
    });
  });
});
