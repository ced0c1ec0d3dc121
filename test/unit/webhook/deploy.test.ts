// Static checks of deploy/: what kube-apiserver does not enforce but the
// deployment promises (security settings, failure policies, RBAC kept equal
// to the enforcer's own). test/e2e/deploy.test.ts checks the apiserver accepts it.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse, parseAllDocuments } from 'yaml';

import { repositoryRoot } from '../../../compiler/schema.js';

const root = repositoryRoot();

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(root, file), 'utf8')).map((document) => document.toJSON() as Manifest);
}

function find(file: string, kind: string, name: string): Manifest {
  const found = manifests(file).find((m) => m.kind === kind && m.metadata?.name === name);
  assert.ok(found, `${kind} ${name} not found in ${file}`);
  return found;
}

describe('deploy manifests', () => {
  describe('when the CRD copy is compared', () => {
    it('equals crds/ byte for byte', () => {
      const source = readFileSync(join(root, 'crds/sabpf.io_containersecuritypolicies.yaml'), 'utf8');
      const copy = readFileSync(join(root, 'deploy/crd.yaml'), 'utf8');
      assert.ok(copy === source, 'deploy/crd.yaml differs: run cp crds/sabpf.io_containersecuritypolicies.yaml deploy/crd.yaml');
    });
  });

  describe('when the kustomization is read', () => {
    it('lists every manifest of deploy/', () => {
      const kustomization = parse(readFileSync(join(root, 'deploy/kustomization.yaml'), 'utf8')) as { resources: string[] };
      const files = readdirSync(join(root, 'deploy')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
      assert.deepEqual([...kustomization.resources].sort(), files.sort());
    });
  });

  describe('when the webhook Deployment is read', () => {
    const deployment = find('deploy/webhook.yaml', 'Deployment', 'sabpf-webhook');
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];

    it('runs as non-root', () => {
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.ok(pod.securityContext.runAsUser > 0);
    });

    it('has a read-only root filesystem', () => {
      assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    });

    it('forbids privilege escalation', () => {
      assert.equal(container.securityContext.allowPrivilegeEscalation, false);
      assert.equal(container.securityContext.privileged, false);
    });

    it('drops all capabilities', () => {
      assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
    });

    it('sets requests and limits', () => {
      assert.ok(container.resources.requests.cpu, 'no CPU request');
      assert.ok(container.resources.requests.memory, 'no memory request');
      assert.ok(container.resources.limits.cpu, 'no CPU limit');
      assert.ok(container.resources.limits.memory, 'no memory limit');
    });

    it('probes /healthz and /readyz over HTTPS', () => {
      assert.deepEqual([container.livenessProbe.httpGet.path, container.livenessProbe.httpGet.scheme], ['/healthz', 'HTTPS']);
      assert.deepEqual([container.readinessProbe.httpGet.path, container.readinessProbe.httpGet.scheme], ['/readyz', 'HTTPS']);
    });

    it('answers before the pod webhooks time out', () => {
      const timeoutArg = (container.args as string[]).find((a) => a.startsWith('--request-timeout-ms='));
      assert.ok(timeoutArg, 'no --request-timeout-ms argument');
      const configurations = manifests('deploy/webhook-configurations.yaml').flatMap((c) => c.webhooks as Manifest[]);
      const smallest = Math.min(...configurations.map((w) => w.timeoutSeconds as number));
      assert.ok(Number(timeoutArg.split('=')[1]) < smallest * 1000);
    });
  });

  describe('when the webhook configurations are read', () => {
    const webhooks = manifests('deploy/webhook-configurations.yaml').flatMap((c) => c.webhooks as Manifest[]);
    const byName = (name: string): Manifest => {
      const found = webhooks.find((w) => w.name === name);
      assert.ok(found, `webhook ${name} not found`);
      return found;
    };

    it('declares no side effects', () => {
      for (const webhook of webhooks) assert.equal(webhook.sideEffects, 'None', webhook.name);
    });

    it('fails closed for policies', () => {
      assert.equal(byName('sign.csp.sabpf.io').failurePolicy, 'Fail');
      assert.equal(byName('csp.sabpf.io').failurePolicy, 'Fail');
    });

    it('fails closed for required namespaces only', () => {
      assert.equal(byName('pods-required.sabpf.io').failurePolicy, 'Fail');
      assert.equal(byName('pods.sabpf.io').failurePolicy, 'Ignore');
    });

    it('splits namespaces by the require-policy label', () => {
      const label = (w: Manifest) => (w.namespaceSelector.matchExpressions as Manifest[]).find((e) => e.key === 'sabpf.io/require-policy');
      assert.deepEqual(label(byName('pods-required.sabpf.io')), { key: 'sabpf.io/require-policy', operator: 'In', values: ['true'] });
      assert.deepEqual(label(byName('pods.sabpf.io')), { key: 'sabpf.io/require-policy', operator: 'NotIn', values: ['true'] });
    });

    it('never checks pods of kube-system', () => {
      for (const name of ['pods-required.sabpf.io', 'pods.sabpf.io']) {
        const exclusion = (byName(name).namespaceSelector.matchExpressions as Manifest[]).find(
          (e) => e.key === 'kubernetes.io/metadata.name',
        );
        assert.equal(exclusion?.operator, 'NotIn', name);
        assert.ok(exclusion?.values.includes('kube-system'), name);
        assert.ok(exclusion?.values.includes('sabpf-system'), name);
      }
    });

    it('points each webhook at its endpoint', () => {
      assert.equal(byName('sign.csp.sabpf.io').clientConfig.service.path, '/mutate/csp');
      assert.equal(byName('csp.sabpf.io').clientConfig.service.path, '/validate/csp');
      assert.equal(byName('pods-required.sabpf.io').clientConfig.service.path, '/validate/pod');
      assert.equal(byName('pods.sabpf.io').clientConfig.service.path, '/validate/pod');
    });

    it('re-signs after later mutations', () => {
      assert.equal(byName('sign.csp.sabpf.io').reinvocationPolicy, 'IfNeeded');
    });
  });

  describe('when the enforcer RBAC is compared', () => {
    it('equals the rules of enforcer/k8s/rbac.yaml', () => {
      const deployed = find('deploy/rbac-enforcer.yaml', 'ClusterRole', 'sabpf-enforcer');
      const enforcer = find('enforcer/k8s/rbac.yaml', 'ClusterRole', 'sabpf-enforcer');
      assert.deepEqual(deployed.rules, enforcer.rules);
    });
  });

  describe('when the enforcer DaemonSet is read', () => {
    const pod = find('deploy/enforcer.yaml', 'DaemonSet', 'sabpf-enforcer').spec.template.spec;
    const mounts = Object.fromEntries((pod.containers[0].volumeMounts as Manifest[]).map((m) => [m.mountPath, m]));

    it('mounts cgroup, securityfs and /boot read-only', () => {
      assert.equal(mounts['/sys/fs/cgroup']?.readOnly, true);
      assert.equal(mounts['/sys/kernel/security']?.readOnly, true);
      assert.equal(mounts['/boot']?.readOnly, true);
    });

    it('mounts bpffs and the audit trail writable', () => {
      assert.ok(mounts['/sys/fs/bpf'], 'no /sys/fs/bpf mount');
      assert.notEqual(mounts['/sys/fs/bpf'].readOnly, true);
      assert.ok(mounts['/var/log/sabpf'], 'no /var/log/sabpf mount');
      assert.notEqual(mounts['/var/log/sabpf'].readOnly, true);
    });

    it('uses the host PID namespace', () => {
      assert.equal(pod.hostPID, true);
    });
  });
});
