import assert from 'node:assert/strict';

import type { Verdict } from '../../../webhook/admission-review.js';
import type { AdmissionRules, RulesInput } from '../../../webhook/admission-rules.js';
import { StaticClusterView } from '../../../webhook/cache/static-view.js';
import { validatePod } from '../../../webhook/validate-pod.js';
import { admissionRequest, POD_GVK, podObject, policyObject, type TestContainer } from './helpers.js';

/** Admission rules that record their input and return fixed messages. */
class RecordingRules implements AdmissionRules {
  readonly inputs: RulesInput[] = [];
  constructor(private readonly messages: string[] = []) {}
  evaluate(input: RulesInput): string[] {
    this.inputs.push(input);
    return this.messages;
  }
}

const blockPackageManagers = policyObject('block-package-managers', {
  exec: { posture: 'allow', rules: [{ name: 'package-managers', paths: ['/usr/bin/apt-get', '/usr/bin/dpkg'], action: 'deny' }] },
});
const nginxAllowList = policyObject('nginx-allow-list', {
  containers: ['nginx'],
  exec: { posture: 'deny', rules: [{ paths: ['/docker-entrypoint.sh', '/usr/sbin/nginx'], action: 'allow' }] },
});
const auditOnly = policyObject('trial', {
  mode: 'audit',
  exec: { posture: 'allow', rules: [{ paths: ['/usr/bin/apt-get'], action: 'deny' }] },
});
const fileOnly = policyObject('protect-shadow', { file: { posture: 'allow', rules: [{ paths: ['/etc/shadow'], action: 'deny' }] } });

async function admit(
  containers: TestContainer[],
  policies: unknown[],
  options: {
    rules?: AdmissionRules;
    initContainers?: TestContainer[];
    labels?: Record<string, string>;
    operation?: 'CREATE' | 'UPDATE';
  } = {},
): Promise<Verdict> {
  const cluster = new StaticClusterView({ policies, namespaces: { shop: { team: 'shop' } } });
  const object = podObject('web-1', containers, {
    ...(options.initContainers ? { initContainers: options.initContainers } : {}),
    ...(options.labels ? { labels: options.labels } : {}),
  });
  const request = admissionRequest({ kind: POD_GVK, operation: options.operation ?? 'CREATE', object });
  return validatePod(request, { cluster, rules: options.rules ?? new RecordingRules() });
}

function denial(verdict: Verdict): { code: number; message: string } {
  assert.equal(verdict.allowed, false, `expected a denial, got ${JSON.stringify(verdict)}`);
  return verdict as { code: number; message: string };
}

describe('/validate/pod handler', () => {
  describe('when an enforce-mode rule denies the entrypoint', () => {
    const verdict = admit([{ name: 'tools', command: ['/usr/bin/apt-get', 'install', 'curl'] }], [blockPackageManagers]);

    it('rejects with 403', async () => {
      assert.equal(denial(await verdict).code, 403);
    });

    it('names policy, container, command and rule', async () => {
      assert.equal(
        denial(await verdict).message,
        '[shop/block-package-managers] container "tools" of pod web-1: the entrypoint /usr/bin/apt-get is denied by ' +
          'spec.exec.rules[0] "package-managers" (matches /usr/bin/apt-get); use another command or change the policy',
      );
    });
  });

  describe('when an allow-list does not list the entrypoint', () => {
    it('names the posture', async () => {
      const verdict = await admit([{ name: 'nginx', command: ['/bin/bash'] }], [nginxAllowList]);
      assert.match(
        denial(verdict).message,
        /^\[shop\/nginx-allow-list\] container "nginx" of pod web-1: the entrypoint \/bin\/bash is denied by spec.exec.posture \(deny\)/,
      );
    });

    it('skips containers the policy does not name', async () => {
      const verdict = await admit([{ name: 'sidecar', command: ['/bin/bash'] }], [nginxAllowList]);
      assert.equal(verdict.allowed, true);
    });
  });

  describe('when the entrypoint is allowed', () => {
    it('admits the pod', async () => {
      assert.deepEqual(await admit([{ name: 'nginx', command: ['/docker-entrypoint.sh'] }], [nginxAllowList, blockPackageManagers]), {
        allowed: true,
        warnings: [],
      });
    });
  });

  describe('when only an audit-mode policy denies', () => {
    it('admits the pod', async () => {
      const verdict = await admit([{ name: 'tools', command: ['/usr/bin/apt-get'] }], [auditOnly]);
      assert.equal(verdict.allowed, true);
    });
  });

  describe('when an init container is denied', () => {
    it('rejects and says init container', async () => {
      const verdict = await admit([{ name: 'app', command: ['/app'] }], [blockPackageManagers], {
        initContainers: [{ name: 'setup', command: ['/usr/bin/dpkg', '-i', 'x.deb'] }],
      });
      assert.match(denial(verdict).message, /init container "setup" of pod web-1: the entrypoint \/usr\/bin\/dpkg is denied/);
    });
  });

  describe('when several containers are denied', () => {
    it('gives one line each', async () => {
      const verdict = await admit(
        [
          { name: 'a', command: ['/usr/bin/apt-get'] },
          { name: 'b', command: ['/usr/bin/dpkg'] },
        ],
        [blockPackageManagers],
      );
      assert.equal(denial(verdict).message.split('\n').length, 2);
    });
  });

  describe('when a confined container may mount', () => {
    it('warns about a privileged container', async () => {
      const verdict = await admit([{ name: 'app', securityContext: { privileged: true } }], [fileOnly]);
      assert.equal(verdict.allowed, true);
      assert.deepEqual(verdict.warnings, [
        'container "app" of pod web-1 is privileged, so it may mount and reach files under paths that the path rules of ' +
          'shop/protect-shadow do not name; drop privileged and CAP_SYS_ADMIN to keep those rules whole',
      ]);
    });

    it('warns about an added CAP_SYS_ADMIN', async () => {
      const verdict = await admit([{ name: 'app', securityContext: { capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN'] } } }], [fileOnly]);
      assert.match(verdict.warnings?.[0] ?? '', /container "app" of pod web-1 adds CAP_SYS_ADMIN, so it may mount/u);
    });

    it('says nothing without mount rights', async () => {
      const verdict = await admit([{ name: 'app', securityContext: { capabilities: { add: ['NET_BIND_SERVICE'] } } }], [fileOnly]);
      assert.deepEqual(verdict.warnings ?? [], []);
    });

    it('says nothing for an audit-mode policy', async () => {
      const verdict = await admit([{ name: 'tools', command: ['/bin/true'], securityContext: { privileged: true } }], [auditOnly]);
      assert.deepEqual(verdict.warnings ?? [], []);
    });
  });

  describe('when the command cannot be checked', () => {
    it('warns about a relative command', async () => {
      const verdict = await admit([{ name: 'tools', command: ['apt-get'] }], [blockPackageManagers]);
      assert.equal(verdict.allowed, true);
      assert.match(
        verdict.warnings?.[0] ?? '',
        /container "tools" of pod web-1 has the relative command "apt-get".*shop\/block-package-managers/,
      );
    });

    it('warns about a missing command', async () => {
      const verdict = await admit([{ name: 'tools' }], [blockPackageManagers]);
      assert.match(verdict.warnings?.[0] ?? '', /has no command, so its image's ENTRYPOINT cannot be checked/);
    });

    it('normalizes the path before deciding', async () => {
      const verdict = await admit([{ name: 'tools', command: ['/usr//bin/./apt-get'] }], [blockPackageManagers]);
      assert.match(denial(verdict).message, /the entrypoint \/usr\/\/bin\/.\/apt-get is denied by spec.exec.rules\[0\]/);
    });
  });

  describe('when no policy has an exec section', () => {
    it('admits without warnings', async () => {
      assert.deepEqual(await admit([{ name: 'tools' }], [fileOnly]), { allowed: true, warnings: [] });
    });
  });

  describe('when the pod is not created', () => {
    it('allows an update unchecked', async () => {
      const rules = new RecordingRules(['would deny']);
      const verdict = await admit([{ name: 'tools', command: ['/usr/bin/apt-get'] }], [blockPackageManagers], {
        rules,
        operation: 'UPDATE',
      });
      assert.deepEqual(verdict, { allowed: true });
      assert.equal(rules.inputs.length, 0);
    });
  });

  describe('when the admission rules run', () => {
    it('gets each container with its policies', async () => {
      const rules = new RecordingRules();
      await admit([{ name: 'nginx', command: ['/docker-entrypoint.sh'] }], [nginxAllowList, auditOnly, fileOnly], {
        rules,
        initContainers: [{ name: 'setup', command: ['/setup'] }],
      });
      assert.deepEqual(rules.inputs, [
        {
          pod: { name: 'web-1', namespace: 'shop', labels: { app: 'web' } },
          namespace: { name: 'shop', labels: { team: 'shop' } },
          containers: [
            {
              name: 'setup',
              init: true,
              policies: [
                { name: 'shop/protect-shadow', mode: 'enforce' },
                { name: 'shop/trial', mode: 'audit' },
              ],
            },
            {
              name: 'nginx',
              init: false,
              policies: [
                { name: 'shop/nginx-allow-list', mode: 'enforce' },
                { name: 'shop/protect-shadow', mode: 'enforce' },
                { name: 'shop/trial', mode: 'audit' },
              ],
            },
          ],
        },
      ]);
    });

    it('rejects with their messages', async () => {
      const verdict = await admit([{ name: 'app', command: ['/app'] }], [], { rules: new RecordingRules(['rule one', 'rule two']) });
      assert.equal(denial(verdict).message, 'rule one\nrule two');
    });

    it('lists entrypoint denials first', async () => {
      const verdict = await admit([{ name: 'tools', command: ['/usr/bin/apt-get'] }], [blockPackageManagers], {
        rules: new RecordingRules(['rule one']),
      });
      const lines = denial(verdict).message.split('\n');
      assert.match(lines[0] ?? '', /^\[shop\/block-package-managers\]/);
      assert.equal(lines[1], 'rule one');
    });

    it('passes empty labels for an unknown namespace', async () => {
      const rules = new RecordingRules();
      const cluster = new StaticClusterView();
      const request = admissionRequest({ kind: POD_GVK, namespace: 'new', object: podObject('p', [{ name: 'a' }], { namespace: 'new' }) });
      await validatePod(request, { cluster, rules });
      assert.deepEqual(rules.inputs[0]?.namespace, { name: 'new', labels: {} });
    });
  });

  describe('when the pod name is generated', () => {
    it('names the generateName prefix', async () => {
      const object = podObject('x', [{ name: 'tools', command: ['/usr/bin/apt-get'] }]);
      (object.metadata as Record<string, unknown>).name = undefined;
      (object.metadata as Record<string, unknown>).generateName = 'web-7d9f-';
      const cluster = new StaticClusterView({ policies: [blockPackageManagers] });
      const verdict = await validatePod(admissionRequest({ kind: POD_GVK, object }), { cluster, rules: new RecordingRules() });
      assert.match(denial(verdict).message, /of pod web-7d9f-\*:/);
    });
  });
});
