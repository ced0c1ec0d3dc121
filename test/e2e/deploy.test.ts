// The deployment manifests of deploy/ against a real kube-apiserver: the
// rendered kustomize base passes a server-side dry run, and the service
// accounts get the permissions they need and nothing beyond them.

import { strict as assert } from 'node:assert';
import { join } from 'node:path';

import { repositoryRoot } from '../../compiler/schema.js';
import { startCluster, type Cluster } from '../cluster/cluster.js';
import { deployFile } from './webhook/manifests.js';

const root = repositoryRoot();

interface Permission {
  verb: string;
  resource: string;
  /** Extra kubectl auth can-i arguments; cluster-wide (--all-namespaces) when absent. */
  scope?: string[];
}

const permission = (verb: string, resource: string, scope?: string[]): Permission => ({ verb, resource, ...(scope ? { scope } : {}) });

const webhookMay = [
  permission('get', 'containersecuritypolicies.sabpf.io'),
  permission('list', 'containersecuritypolicies.sabpf.io'),
  permission('watch', 'containersecuritypolicies.sabpf.io'),
  permission('list', 'pods'),
  permission('watch', 'pods'),
  permission('get', 'namespaces'),
  permission('list', 'namespaces'),
  permission('watch', 'namespaces'),
];
const webhookMayNot = [
  permission('get', 'secrets'),
  permission('list', 'secrets', ['-n', 'sabpf-system']),
  permission('delete', 'pods'),
  permission('create', 'pods'),
  permission('patch', 'pods'),
  permission('create', 'containersecuritypolicies.sabpf.io'),
  permission('update', 'containersecuritypolicies.sabpf.io'),
  permission('patch', 'containersecuritypolicies.sabpf.io', ['--subresource=status']),
  permission('create', 'events', ['-n', 'default']),
  permission('list', 'configmaps'),
  permission('create', 'validatingwebhookconfigurations.admissionregistration.k8s.io'),
];

const enforcerMay = [
  permission('get', 'containersecuritypolicies.sabpf.io'),
  permission('list', 'containersecuritypolicies.sabpf.io'),
  permission('watch', 'containersecuritypolicies.sabpf.io'),
  permission('get', 'containersecuritypolicies.sabpf.io', ['--all-namespaces', '--subresource=status']),
  permission('patch', 'containersecuritypolicies.sabpf.io', ['--all-namespaces', '--subresource=status']),
  permission('get', 'pods'),
  permission('list', 'pods'),
  permission('watch', 'pods'),
  permission('create', 'events', ['-n', 'shop']),
  permission('patch', 'events', ['-n', 'shop']),
];
const enforcerMayNot = [
  permission('get', 'secrets'),
  permission('delete', 'pods'),
  permission('create', 'pods'),
  permission('update', 'containersecuritypolicies.sabpf.io'),
  permission('patch', 'containersecuritypolicies.sabpf.io'),
  permission('delete', 'containersecuritypolicies.sabpf.io'),
  permission('list', 'namespaces'),
  permission('delete', 'events', ['-n', 'shop']),
  permission('patch', 'nodes'),
];

describe('deployment manifests against kube-apiserver', function () {
  this.timeout(240_000);

  let cluster: Cluster | undefined;

  const running = (): Cluster => {
    assert.ok(cluster, 'the cluster did not start; see the before all hook error');
    return cluster;
  };

  before(async function () {
    cluster = await startCluster();
    const crd = await cluster.kubectl(['apply', '-f', join(root, 'crds/sabpf.io_containersecuritypolicies.yaml')]);
    assert.equal(crd.code, 0, `failed to apply the CRD: ${crd.stderr}`);
    const established = await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/containersecuritypolicies.sabpf.io',
      '--timeout=60s',
    ]);
    assert.equal(established.code, 0, `the CRD did not become established: ${established.stderr}`);

    // Namespaced objects of a dry run need their namespace to exist for real.
    const namespace = await cluster.kubectl(['apply', '-f', deployFile('namespace.yaml')]);
    assert.equal(namespace.code, 0, `failed to create namespace sabpf-system: ${namespace.stderr}`);
  });

  after(async function () {
    await cluster?.stop();
  });

  describe('when the kustomize base is applied as a server dry run', () => {
    let output = { code: -1, stdout: '', stderr: '' };

    before(async function () {
      output = await running().kubectl(['apply', '--dry-run=server', '-k', join(root, 'deploy')]);
    });

    it('succeeds', () => {
      assert.equal(output.code, 0, output.stderr);
    });

    it('covers every object', () => {
      for (const object of [
        'namespace/sabpf-system',
        'customresourcedefinition.apiextensions.k8s.io/containersecuritypolicies.sabpf.io',
        'serviceaccount/sabpf-webhook',
        'serviceaccount/sabpf-enforcer',
        'clusterrole.rbac.authorization.k8s.io/sabpf-webhook',
        'clusterrole.rbac.authorization.k8s.io/sabpf-enforcer',
        'clusterrolebinding.rbac.authorization.k8s.io/sabpf-webhook',
        'clusterrolebinding.rbac.authorization.k8s.io/sabpf-enforcer',
        'service/sabpf-webhook',
        'deployment.apps/sabpf-webhook',
        'poddisruptionbudget.policy/sabpf-webhook',
        'daemonset.apps/sabpf-enforcer',
        'mutatingwebhookconfiguration.admissionregistration.k8s.io/sabpf',
        'validatingwebhookconfiguration.admissionregistration.k8s.io/sabpf',
      ]) {
        assert.match(
          output.stdout,
          new RegExp(`^${object.replaceAll('.', '\\.')} \\S+ \\(server dry run\\)$`, 'm'),
          `${object} missing in:\n${output.stdout}`,
        );
      }
    });

    it('passes Pod Security admission', () => {
      assert.doesNotMatch(output.stderr, /PodSecurity|would violate/);
    });

    it('stores nothing', async () => {
      const read = await running().kubectl(['get', 'deployment', 'sabpf-webhook', '-n', 'sabpf-system']);
      assert.notEqual(read.code, 0);
      assert.match(read.stderr, /NotFound|not found/);
    });
  });

  describe('when the RBAC objects are applied', () => {
    before(async function () {
      const applied = await running().kubectl(['apply', '-f', deployFile('rbac-webhook.yaml'), '-f', deployFile('rbac-enforcer.yaml')]);
      assert.equal(applied.code, 0, `failed to apply the RBAC objects: ${applied.stderr}`);
    });

    const canI = async (account: string, { verb, resource, scope }: Permission): Promise<string> => {
      const args = [
        'auth',
        'can-i',
        verb,
        resource,
        `--as=system:serviceaccount:sabpf-system:${account}`,
        ...(scope ?? ['--all-namespaces']),
      ];
      const result = await running().kubectl(args);
      return result.stdout.trim();
    };
    const describePermission = ({ verb, resource, scope }: Permission): string =>
      `${verb} ${resource}${scope ? ` ${scope.join(' ')}` : ''}`;

    for (const [account, allowed, denied] of [
      ['sabpf-webhook', webhookMay, webhookMayNot],
      ['sabpf-enforcer', enforcerMay, enforcerMayNot],
    ] as const) {
      for (const entry of allowed) {
        it(`lets ${account} ${describePermission(entry)}`, async () => {
          assert.equal(await canI(account, entry), 'yes');
        });
      }
      for (const entry of denied) {
        it(`forbids ${account} ${describePermission(entry)}`, async () => {
          assert.equal(await canI(account, entry), 'no');
        });
      }
    }
  });
});
