// Second part of `make demo` (scripts/demo.sh runs the CLI walkthrough
// first): the Kubernetes node scenario of scenario.ts, narrated with the
// real kubectl output. Exits 1 as soon as a step does not behave as
// narrated, and always stops the VM, the webhook and the cluster.
//
//   node dist/test/e2e/full/demo.js [--first-step N]

import { parseArgs } from 'node:util';

import { startNodeEnvironment, type NodeEnvironment } from './environment.js';
import { terminalNarrator } from './narrator.js';
import { NodeScenario } from './scenario.js';

const intro = `
Part 2: sabpf on a Kubernetes node.
A real kube-apiserver and etcd run on this machine's loopback, with the sabpf admission webhook. A QEMU VM with
Debian's 6.1 kernel (BPF LSM on) is the node "vm-node": it runs \`sabpf enforce --kubernetes\` and a test kubelet,
and its only network path is a QEMU forward to the API server. Starting everything takes a minute or two; the
VM runs under TCG emulation, so each step takes a few seconds.
`;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'first-step': { type: 'string', default: '1' } } });
  const narrator = terminalNarrator(process.stdout, Number(values['first-step']));
  // Ctrl-C: exit handlers kill QEMU and the cluster (runInVm and test/cluster register them).
  process.once('SIGINT', () => process.exit(130));

  process.stdout.write(intro);
  let env: NodeEnvironment;
  try {
    env = await startNodeEnvironment({ progress: (text) => narrator.note(`  - ${text}`) });
  } catch (err) {
    process.stderr.write(`\nfailed to start the demo's cluster and VM: ${(err as Error).message}\n`);
    return 1;
  }
  narrator.note(`  - node ${'vm-node'} is up; the VM's files are in ${env.runDir}`);

  const scenario = new NodeScenario(env, narrator);
  try {
    await scenario.rejectInvalidPolicy();
    await scenario.acceptValidPolicy();
    await scenario.rejectDeniedEntrypoint();
    await scenario.denyInRunningPod();
    await scenario.rejectTamperedPolicy();
    await scenario.showDenialEvent();
    await scenario.showAuditTrail();
    await scenario.stopNode();
    await scenario.verifyAuditTrail();
  } catch (err) {
    process.stderr.write(`\nThe demo stopped: the last step did not behave as narrated.\n${(err as Error).message}\n`);
    process.stderr.write(`Logs of the node (enforcer.log, kubelet.log, pods/): ${env.outputs}\n`);
    await env.stop();
    return 1;
  }
  narrator.note(`\nDone. The node's logs and audit trail stay in ${env.outputs}.`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
