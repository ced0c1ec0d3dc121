// The cluster state and the requests of the admission benchmark. There are
// 100 policies in one namespace, and 20 of them select the benchmark pod. The
// pod has an init container and two containers whose entrypoints the
// policies allow, so each request runs every step of /validate/pod and is admitted.

export const BENCH_NAMESPACE = 'bench';
export const POLICY_COUNT = 100;
export const SELECTING_POLICIES = 20;

/** Namespace labels: require-policy is on, so the Rego rules have work to do. */
export const NAMESPACE_LABELS = { 'sabpf.io/require-policy': 'true', team: 'bench' };

export function benchPolicies(): Record<string, unknown>[] {
  const policies: Record<string, unknown>[] = [];
  for (let i = 0; i < POLICY_COUNT; i += 1) {
    const selects = i < SELECTING_POLICIES;
    policies.push({
      apiVersion: 'sabpf.io/v1alpha1',
      kind: 'ContainerSecurityPolicy',
      metadata: { name: `policy-${String(i).padStart(3, '0')}`, namespace: BENCH_NAMESPACE },
      spec: {
        selector: selects
          ? { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['frontend', 'edge'] }] }
          : { matchLabels: { app: `other-${i}` } },
        mode: i % 4 === 3 ? 'audit' : 'enforce',
        exec: {
          posture: 'allow',
          rules: [
            {
              name: 'package-managers',
              paths: ['/usr/bin/apt', '/usr/bin/apt-get', '/usr/bin/dpkg', '/sbin/apk', `/opt/tools-${i}/**`],
              action: 'deny',
            },
            { name: 'shells-from-web', paths: ['/bin/sh', '/bin/bash'], action: 'deny', fromSource: ['/usr/sbin/nginx'] },
          ],
        },
        file: {
          posture: 'allow',
          rules: [
            { paths: ['/etc/shadow', '/root/.ssh/**', `/var/secret-${i}/**`], access: 'readwrite', action: 'deny' },
            { paths: ['/etc/**'], access: 'write', action: 'deny' },
          ],
        },
        network: {
          posture: 'allow',
          rules: [{ operation: 'connect', cidrs: ['169.254.169.254/32'], action: 'deny' }],
        },
      },
    });
  }
  return policies;
}

/** Builds a Pod AdmissionReview body. The caller replaces "UID" in it per request. */
export function podReviewTemplate(): string {
  const container = (name: string, command: string[], image: string) => ({
    name,
    image,
    command,
    args: ['--config', `/etc/${name}/config.yaml`],
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'LOG_LEVEL', value: 'info' },
    ],
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    volumeMounts: [{ name: 'config', mountPath: `/etc/${name}`, readOnly: true }],
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    terminationMessagePath: '/dev/termination-log',
    imagePullPolicy: 'IfNotPresent',
  });
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'web-7d9f8c6b5-',
      namespace: BENCH_NAMESPACE,
      labels: { app: 'web', tier: 'frontend', 'pod-template-hash': '7d9f8c6b5' },
      annotations: { 'kubectl.kubernetes.io/default-container': 'nginx' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8c6b5', uid: '5c2b4f0e-0d7c-4bb0-9d52-3f0a8b9c1d2e', controller: true },
      ],
    },
    spec: {
      initContainers: [container('migrate', ['/usr/local/bin/migrate'], 'example/migrate:2.1')],
      containers: [
        container('nginx', ['/docker-entrypoint.sh'], 'nginx:1.27'),
        container('log-shipper', ['/fluent-bit/bin/fluent-bit'], 'fluent-bit:3'),
      ],
      volumes: [{ name: 'config', configMap: { name: 'web-config' } }],
      serviceAccountName: 'web',
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
      terminationGracePeriodSeconds: 30,
    },
  };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'UID',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: BENCH_NAMESPACE,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        groups: ['system:serviceaccounts', 'system:authenticated'],
      },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  });
}
