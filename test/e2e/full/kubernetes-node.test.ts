// sabpf end to end: a real kube-apiserver and etcd on the host, the
// admission webhook, and a QEMU VM with the Debian 6.1 kernel (BPF LSM) as
// node vm-node, running `sabpf enforce --kubernetes` and a test kubelet. The
// VM reaches only the API server, through one QEMU forward. Every check
// reads real kubectl output on the host, the containers' output captured in
// the VM, or the node's audit trail. One VM boot serves the whole scenario
// (scenario.ts, which `make demo` narrates), so the cases run in order.
//
// Needs: make build (BPF objects and the addon), make cluster-bins, and the
// VM kernel (bash test/vm/kernel.sh). Under TCG the run takes minutes.

import { strict as assert } from 'node:assert';
import { join } from 'node:path';

import { startNodeEnvironment, type NodeEnvironment } from './environment.js';
import { fileNarrator } from './narrator.js';
import { NodeScenario } from './scenario.js';

describe('sabpf on a Kubernetes node (API server on the host, node in a VM)', function () {
  // Per case; the before hook starts a cluster and boots the VM.
  this.timeout(20 * 60_000);

  let env: NodeEnvironment | undefined;
  let scenario: NodeScenario | undefined;

  const run = (): NodeScenario => {
    if (!scenario) throw new Error('the environment did not start; see the before all hook error');
    return scenario;
  };

  before(async function () {
    env = await startNodeEnvironment();
    // The narration of the run, for reading a failure: test/vm/out/runs/<run>/host/scenario.log.
    scenario = new NodeScenario(env, fileNarrator(join(env.runDir, 'host', 'scenario.log')));
  });

  after(async function () {
    await env?.stop();
  });

  describe('when the VM network is set up', () => {
    it('reaches nothing but the API server forward', () => {
      const markers = (env?.console.lines ?? []).map((line) => line.text).filter((text) => text.includes('SABPF-E2E network-'));
      assert.deepEqual(
        markers.map((text) => text.trim()),
        ['SABPF-E2E network-isolated'],
      );
    });
  });

  describe('when an invalid policy is applied', () => {
    it('rejects it with each field path and fix', () => run().rejectInvalidPolicy());
  });

  describe('when a valid policy is applied', () => {
    it('signs it, and the node reports it compiled', () => run().acceptValidPolicy());
  });

  describe('when a pod runs a command its policy denies', () => {
    it('rejects the pod at admission naming policy and rule', () => run().rejectDeniedEntrypoint());
  });

  describe('when a selected pod runs on the node', () => {
    it('denies the protected file with EPERM and reports the policy enforced on vm-node', () => run().denyInRunningPod());
  });

  describe('when a policy is edited behind the webhook', () => {
    it('rejects the new version and keeps enforcing the previous one', () => run().rejectTamperedPolicy());
  });

  describe('when the denial is reported', () => {
    it('shows a PolicyDenied event in kubectl describe pod', () => run().showDenialEvent());
    it("records it in the node's audit trail", () => run().showAuditTrail());
  });

  describe('when the node stops', () => {
    it('stops the enforcer with SIGTERM and powers off', async () => {
      await run().stopNode();
    });
    it('leaves an audit trail that verifies', () => run().verifyAuditTrail());
  });
});
