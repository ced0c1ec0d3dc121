import assert from 'node:assert/strict';
import { compileContainer } from '../../compiler/compile.js';
import { decide } from '../../compiler/decide.js';
import { parseAddress } from '../../compiler/net.js';
import { selectPolicies } from '../../compiler/selector.js';
import { KernelModel } from '../../compiler/simulate.js';
import { policiesFrom, policyYaml, webContainer } from './helpers.js';

const denyShadow = policyYaml(
  'a-deny-shadow',
  `  file:
    posture: allow
    rules:
      - paths: [/etc/shadow]
        action: deny`,
);
const allowListEtc = policyYaml(
  'b-allow-etc',
  `  file:
    posture: deny
    rules:
      - paths: [/etc/**]
        access: read
        action: allow`,
);
const auditTmp = policyYaml(
  'c-audit-everything',
  `  file:
    posture: audit`,
  'audit',
);

describe('combining policies', () => {
  describe('when one policy denies and another allows', () => {
    const policies = selectPolicies(policiesFrom(denyShadow + allowListEtc), webContainer);

    it('denies: a deny wins over an allow', () => {
      const decision = decide(policies, { kind: 'open', path: '/etc/shadow', access: 'read' });
      assert.equal(decision.decision, 'deny');
      assert.equal(decision.enforced, true);
      assert.equal(decision.policy, 'shop/a-deny-shadow');
      assert.equal(decision.rule, 'spec.file.rules[0]');
    });

    it('allows what every policy allows', () => {
      const decision = decide(policies, { kind: 'open', path: '/etc/hostname', access: 'read' });
      assert.equal(decision.decision, 'allow');
      assert.equal(decision.recorded, false);
    });

    it('denies by the allow-list posture what no rule allows', () => {
      const decision = decide(policies, { kind: 'open', path: '/etc/hostname', access: 'write' });
      assert.equal(decision.enforced, true);
      assert.equal(decision.policy, 'shop/b-allow-etc');
      assert.equal(decision.reason, 'posture');
    });
  });

  describe('when two allow-lists select one container', () => {
    const policies = selectPolicies(
      policiesFrom(
        allowListEtc +
          policyYaml(
            'd-allow-app',
            `  file:
    posture: deny
    rules:
      - paths: [/app/**]
        action: allow`,
          ),
      ),
      webContainer,
    );

    it('allows only what both allow', () => {
      assert.equal(decide(policies, { kind: 'open', path: '/etc/hosts', access: 'read' }).enforced, true);
      assert.equal(decide(policies, { kind: 'open', path: '/app/main.js', access: 'read' }).enforced, true);
    });
  });

  describe('when a policy is in audit mode', () => {
    const policies = selectPolicies(policiesFrom(auditTmp + denyShadow.replace('mode: enforce', 'mode: audit')), webContainer);

    it('records a would-be denial without enforcing it', () => {
      const decision = decide(policies, { kind: 'open', path: '/etc/shadow', access: 'read' });
      assert.equal(decision.decision, 'deny');
      assert.equal(decision.enforced, false);
      assert.equal(decision.recorded, true);
      assert.equal(decision.mode, 'audit');
    });

    it('records an audit posture as an allow', () => {
      const decision = decide(policies, { kind: 'open', path: '/tmp/x', access: 'write' });
      assert.equal(decision.decision, 'allow');
      assert.equal(decision.recorded, true);
      assert.equal(decision.policy, 'shop/c-audit-everything');
    });
  });

  describe('when policies arrive in another order', () => {
    it('compiles to the same hash', () => {
      const forward = compileContainer(policiesFrom(denyShadow + allowListEtc + auditTmp), webContainer);
      const backward = compileContainer(policiesFrom(auditTmp + allowListEtc + denyShadow), webContainer);
      assert.ok(forward && backward);
      assert.equal(forward.hash, backward.hash);
    });
  });

  describe('when a policy selects another container', () => {
    it('leaves this container unconfined', () => {
      const other = policiesFrom(denyShadow.replace('matchLabels: {app: web}', 'matchLabels: {app: db}'));
      assert.equal(compileContainer(other, webContainer), undefined);
    });
  });
});

describe('compileContainer', () => {
  describe('when only the message of a policy changes', () => {
    it('keeps the hash: only decision tables count', () => {
      const a = compileContainer(policiesFrom(denyShadow), webContainer);
      const b = compileContainer(policiesFrom(denyShadow.replace('  mode: enforce', '  mode: enforce\n  message: changed')), webContainer);
      assert.ok(a && b);
      assert.equal(a.hash, b.hash);
    });
  });

  describe('when a rule changes', () => {
    it('changes the hash', () => {
      const a = compileContainer(policiesFrom(denyShadow), webContainer);
      const b = compileContainer(policiesFrom(denyShadow.replace('/etc/shadow', '/etc/gshadow')), webContainer);
      assert.ok(a && b);
      assert.notEqual(a.hash, b.hash);
    });
  });

  describe('when only file rules exist', () => {
    it('needs only the file hooks', () => {
      const program = compileContainer(policiesFrom(denyShadow), webContainer);
      assert.deepEqual(program?.hooks, [
        'fileOpen',
        'fileLink',
        'fileRename',
        'fileCreate',
        'fileMkdir',
        'fileSymlink',
        'fileUnlink',
        'fileRmdir',
        'fileTruncate',
        'fileChmod',
      ]);
    });
  });

  describe('when network rules nest CIDRs', () => {
    const policies = policiesFrom(
      policyYaml(
        'net',
        `  network:
    posture: allow
    rules:
      - operation: connect
        cidrs: [10.0.0.0/8]
        ports: [{port: 443}]
        action: deny
      - operation: connect
        protocol: tcp
        cidrs: [10.1.0.0/16]
        ports: [{port: 80, endPort: 90}]
        action: audit`,
      ),
    );
    const program = compileContainer(policies, webContainer);
    const model = new KernelModel(program as NonNullable<typeof program>);
    const address = parseAddress('10.1.2.3') as Uint8Array;

    it('denies 0.0.0.0 and :: by loopback deny rules', () => {
      const loopbackOnly = policiesFrom(
        policyYaml(
          'loopback',
          `  network:
    posture: allow
    rules:
      - operation: connect
        cidrs: [127.0.0.0/8, '::1/128']
        action: deny`,
        ),
      );
      const loopbackModel = new KernelModel(compileContainer(loopbackOnly, webContainer) as NonNullable<typeof program>);
      for (const text of ['0.0.0.0', '::ffff:0.0.0.0', '::']) {
        const operation = { kind: 'connect', protocol: 'tcp', address: parseAddress(text) as Uint8Array, port: 6379 } as const;
        assert.equal(decide(loopbackOnly, operation).decision, 'deny', text);
        assert.equal(loopbackModel.decide(operation).allowed, false, text);
      }
    });

    it('does not allow 0.0.0.0 by an allow rule for 127.0.0.1 alone', () => {
      const allowLoopback = policiesFrom(
        policyYaml(
          'allow-loopback',
          `  network:
    posture: deny
    rules:
      - operation: connect
        cidrs: [127.0.0.0/8]
        action: allow
      - operation: connect
        cidrs: [0.0.0.0, 127.0.0.0/8]
        ports: [{port: 8080}]
        action: allow`,
        ),
      );
      const allowModel = new KernelModel(compileContainer(allowLoopback, webContainer) as NonNullable<typeof program>);
      const connect = (port: number) =>
        ({ kind: 'connect', protocol: 'tcp', address: parseAddress('0.0.0.0') as Uint8Array, port }) as const;

      // 0.0.0.0 may reach the pod's own address, so both must be allowed.
      assert.equal(decide(allowLoopback, connect(6379)).decision, 'deny');
      assert.equal(allowModel.decide(connect(6379)).allowed, false);
      assert.equal(decide(allowLoopback, connect(8080)).decision, 'allow');
      assert.equal(allowModel.decide(connect(8080)).allowed, true);
    });

    it('applies IPv4 deny rules to a dual-stack bind to ::', () => {
      const bindRules = policiesFrom(
        policyYaml(
          'bind',
          `  network:
    posture: deny
    rules:
      - operation: bind
        cidrs: [0.0.0.0/0]
        ports: [{port: 53}]
        action: deny
      - operation: bind
        cidrs: ['::/0']
        ports: [{port: 53}, {port: 8080}]
        action: allow
      - operation: bind
        cidrs: [0.0.0.0/0]
        ports: [{port: 9090}]
        action: allow`,
        ),
      );
      const bindModel = new KernelModel(compileContainer(bindRules, webContainer) as NonNullable<typeof program>);
      const bind = (port: number) => ({ kind: 'bind', protocol: 'udp', address: new Uint8Array(16), port }) as const;

      // 53: the IPv4 deny wins over the IPv6 allow. 8080: IPv6 allow only.
      // 9090: an IPv4 allow does not allow the IPv6 side.
      for (const [port, want] of [
        [53, 'deny'],
        [8080, 'allow'],
        [9090, 'deny'],
      ] as const) {
        assert.equal(decide(bindRules, bind(port)).decision, want, `decide, port ${port}`);
        assert.equal(bindModel.decide(bind(port)).allowed, want === 'allow', `kernel model, port ${port}`);
      }

      // IPV6_V6ONLY keeps the bind off IPv4, so only the IPv6 allow applies.
      const v6only = { ...bind(53), v6only: true };
      assert.equal(decide(bindRules, v6only).decision, 'allow');
      assert.equal(decide(bindRules, v6only).perPolicy[0]?.by, 'spec.network.rules[1]');
      assert.equal(bindModel.decide(v6only).allowed, true);
    });

    it('folds the enclosing CIDR into the longer prefix', () => {
      const decision = model.decide({ kind: 'connect', protocol: 'tcp', address, port: 443 });
      assert.equal(decision.allowed, false);
    });

    it('applies the longer prefix rule on its own ports', () => {
      const decision = model.decide({ kind: 'connect', protocol: 'tcp', address, port: 85 });
      assert.equal(decision.allowed, true);
      assert.equal(decision.recorded, true);
    });

    it('matches an IPv4-mapped IPv6 address like IPv4', () => {
      const mapped = parseAddress('::ffff:10.1.2.3') as Uint8Array;
      assert.equal(model.decide({ kind: 'connect', protocol: 'udp', address: mapped, port: 443 }).allowed, false);
    });

    it('ignores other addresses', () => {
      const outside = parseAddress('192.0.2.1') as Uint8Array;
      assert.equal(model.decide({ kind: 'connect', protocol: 'tcp', address: outside, port: 443 }).recorded, false);
    });
  });
});
