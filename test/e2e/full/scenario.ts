// The Kubernetes node scenario, step by step: what `make demo` narrates and
// what test/e2e/full/kubernetes-node.test.ts asserts. Each step runs real
// kubectl commands against the API server on the host, narrates them with
// their output, and throws (an AssertionError) when something does not
// behave as narrated. Steps build on each other and must run in order.
//
// The story: an invalid policy is rejected at admission; a valid one is
// signed, compiled and, once a selected pod runs on vm-node, enforced there;
// a pod whose entrypoint a policy denies is rejected; the pod that runs
// cannot read the secret (EPERM from the kernel); a policy changed behind the
// webhook's back is rejected by the node, which keeps enforcing the previous
// version; `kubectl describe pod` shows the denial and the node's audit
// trail contains it and verifies.

import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';

import { SIGNATURE_ANNOTATION, verifyPolicySignature } from '../../../webhook/signing.js';
import type { KubectlResult } from '../../cluster/cluster.js';
import { eventually } from '../webhook/https.js';
import { NODE_NAME, type NodeEnvironment, type NodeStopReport } from './environment.js';
import type { Narrator } from './narrator.js';

const NS = 'shop';
const POLICY = 'protect-secrets';
const INVALID_POLICY = 'test/unit/corpus/invalid/38-many-errors-at-once.yaml';
const MANIFESTS = 'test/e2e/full/manifests';
const EPERM = "cat: can't open '/srv/secret/key': Operation not permitted";
const DENIAL_MESSAGE = `open /srv/secret/key (read) denied by ${NS}/${POLICY} rule spec.file.rules[0] in container main`;

// Under TCG a pod start (node in the guest, the enforcer's compile and
// attach) takes seconds to tens of seconds on a loaded machine.
const POD_TIMEOUT_MS = 300_000;
const STATUS_TIMEOUT_MS = 180_000;

// Narrows the rule so that /srv/secret/key would be readable if a node applied it.
const TAMPERED_SPEC = JSON.stringify({
  spec: { file: { rules: [{ name: 'secrets', paths: ['/srv/secret/public/**'], access: 'readwrite', action: 'deny' }] } },
});

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface PolicyJson {
  metadata: { annotations?: Record<string, string> };
  status?: { enforcedNodes?: string[]; conditions?: Condition[]; denials?: number; lastDenial?: { resource?: string } };
}

interface EventJson {
  type: string;
  message: string;
  involvedObject: { kind: string; name: string };
  source: { component?: string; host?: string };
}

export class NodeScenario {
  private stopReport: NodeStopReport | undefined;

  constructor(
    private readonly env: NodeEnvironment,
    private readonly narrator: Narrator,
  ) {}

  async rejectInvalidPolicy(): Promise<void> {
    this.narrator.step(
      'An invalid policy is rejected at admission',
      'The admission webhook validates every ContainerSecurityPolicy before the API server stores it and lists every\nproblem with its field path and fix: the same file that `sabpf validate` rejected above.',
    );
    const expected = (await readFile(this.path(INVALID_POLICY), 'utf8'))
      .split('\n')
      .filter((line) => line.startsWith('# expect: '))
      .map((line) => line.replace(/^# expect: \d+:\d+: error: /, ''));
    assert.equal(expected.length, 5, `${INVALID_POLICY} lists five problems`);

    const result = await this.kubectl(['apply', '-f', this.path(INVALID_POLICY)]);
    assert.notEqual(result.code, 0, 'kubectl apply of an invalid policy must fail');
    assert.match(result.stderr, /admission webhook "sign.csp.sabpf.io" denied the request/);
    for (const line of expected) assert.ok(result.stderr.includes(line), `missing the line\n  ${line}\nin:\n${result.stderr}`);

    const stored = await this.kubectl(['get', 'csp', 'p', '-n', NS], { show: false });
    assert.match(stored.stderr, /NotFound|not found/, 'the rejected policy must not be stored');
  }

  async acceptValidPolicy(): Promise<void> {
    this.narrator.step(
      'A valid policy is accepted, signed, and compiled by the node',
      'The webhook signs what it admits (annotation sabpf.io/signature). The enforcer in the VM receives the policy through\nits watch, checks the signature and compiles it; it reports Compiled=True in the policy status.',
    );
    const file = this.path(`${MANIFESTS}/${POLICY}.yaml`);
    this.narrator.shell(`cat ${this.display(file)}`, await readFile(file, 'utf8'));
    const applied = await this.kubectl(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /containersecuritypolicy.sabpf.io\/protect-secrets created/);

    const printed = await this.kubectl(['get', 'csp', POLICY, '-n', NS, '-o', 'jsonpath={.metadata.annotations.sabpf\\.io/signature}']);
    const policy = await this.policy();
    const signature = policy.metadata.annotations?.[SIGNATURE_ANNOTATION];
    assert.ok(signature, `no ${SIGNATURE_ANNOTATION} annotation on ${NS}/${POLICY}`);
    assert.equal(printed.stdout.trim(), signature);
    assert.deepEqual(verifyPolicySignature(policy as unknown as Record<string, unknown>, this.env.signingPublicKeyPem), { ok: true });

    const compiled = await this.kubectl([
      'wait',
      '--for=condition=Compiled',
      `csp/${POLICY}`,
      '-n',
      NS,
      `--timeout=${STATUS_TIMEOUT_MS / 1000}s`,
    ]);
    assert.equal(compiled.code, 0, `the node did not report Compiled=True: ${compiled.stderr}`);
    await this.kubectl(['get', 'csp', '-n', NS]);
    assert.equal(condition(await this.policy(), 'Compiled')?.reason, 'Compiled');
  }

  async rejectDeniedEntrypoint(): Promise<void> {
    this.narrator.step(
      'A pod whose entrypoint a policy denies is rejected at admission',
      "policies/examples/block-package-managers.yaml denies package managers in the web pods. The webhook decides each\ncontainer's command[0] the way the kernel would, so a pod that could never start is rejected before it is stored.",
    );
    const policy = this.path('policies/examples/block-package-managers.yaml');
    const applied = await this.kubectl(['apply', '-f', policy]);
    assert.equal(applied.code, 0, applied.stderr);

    // The webhook's policy cache follows a watch: wait until it has cached the new policy.
    const pod = this.path(`${MANIFESTS}/installer.yaml`);
    await eventually(
      'the webhook rejects the installer pod',
      async () => {
        const dryRun = await this.kubectl(['apply', '--dry-run=server', '-f', pod], { show: false });
        return dryRun.code !== 0 ? true : `admitted: ${dryRun.stdout}`;
      },
      60_000,
    );

    const result = await this.kubectl(['apply', '-f', pod]);
    assert.notEqual(result.code, 0, 'the installer pod must be rejected');
    assert.match(result.stderr, /admission webhook "pods.sabpf.io" denied the request/);
    assert.ok(
      result.stderr.includes(
        '[shop/block-package-managers] container "main" of pod installer: the entrypoint /usr/bin/apt-get is denied by spec.exec.rules[0] "package-managers"',
      ),
      `the rejection does not name the policy and rule:\n${result.stderr}`,
    );
    const stored = await this.kubectl(['get', 'pod', 'installer', '-n', NS], { show: false });
    assert.match(stored.stderr, /NotFound|not found/, 'the rejected pod must not be stored');
  }

  async denyInRunningPod(): Promise<void> {
    this.narrator.step(
      "The policy confines a running pod in the node's kernel",
      `The pod is bound to ${NODE_NAME}. The test kubelet in the VM starts its command in the container's cgroup (there is no
container runtime; the image is never pulled), and the enforcer attaches the BPF LSM programs to that cgroup. Reading
/srv/data/a works; reading /srv/secret/key fails with EPERM. The policy status then names the node that enforces it.`,
    );
    const file = this.path(`${MANIFESTS}/web-1.yaml`);
    this.narrator.shell(`cat ${this.display(file)}`, await readFile(file, 'utf8'));
    const applied = await this.kubectl(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);

    const running = await this.kubectl([
      'wait',
      '--for=jsonpath={.status.phase}=Running',
      'pod/web-1',
      '-n',
      NS,
      `--timeout=${POD_TIMEOUT_MS / 1000}s`,
    ]);
    assert.equal(running.code, 0, `pod web-1 did not run on ${NODE_NAME}: ${running.stderr}`);
    const output = await this.podOutput('web-1');
    assert.match(output, /^data$/m, `reading /srv/data/a did not work:\n${output}`);
    assert.ok(output.includes(EPERM), `reading /srv/secret/key did not fail with EPERM:\n${output}`);
    assert.match(output, /^cat exited with 1$/m);

    const enforced = await this.kubectl([
      'wait',
      '--for=condition=Enforced',
      `csp/${POLICY}`,
      '-n',
      NS,
      `--timeout=${STATUS_TIMEOUT_MS / 1000}s`,
    ]);
    assert.equal(enforced.code, 0, `the policy status did not reach Enforced=True: ${enforced.stderr}`);
    await this.kubectl(['get', 'csp', '-n', NS]);
    assert.deepEqual((await this.policy()).status?.enforcedNodes, [NODE_NAME]);
  }

  async rejectTamperedPolicy(): Promise<void> {
    this.narrator.step(
      "A policy changed behind the webhook's back is rejected by the node",
      `Someone with write access to the API removes the webhook registrations and narrows the rule so that
/srv/secret/key would be readable. The stored signature no longer matches the spec: the enforcer rejects the new
version (Compiled=False) and keeps enforcing the previous one, as a new pod shows.`,
    );
    await this.kubectl(['delete', 'mutatingwebhookconfiguration', 'sabpf']);
    await this.kubectl(['delete', 'validatingwebhookconfiguration', 'sabpf']);

    // The API server drops webhook registrations asynchronously. Until it
    // does, the mutating webhook would re-sign the edit and make it legitimate.
    const patch = ['patch', 'csp', POLICY, '-n', NS, '--type', 'merge', '-p', TAMPERED_SPEC];
    await eventually(
      'the API server stops calling the webhook',
      async () => {
        const dryRun = await this.kubectl([...patch, '--dry-run=server', '-o', 'json'], { show: false });
        if (dryRun.code !== 0) return `exit ${dryRun.code}: ${dryRun.stderr}`;
        const signed = verifyPolicySignature(JSON.parse(dryRun.stdout) as Record<string, unknown>, this.env.signingPublicKeyPem);
        return signed.ok ? 'the webhook still signs the edit' : true;
      },
      60_000,
    );

    const patched = await this.kubectl(patch);
    assert.equal(patched.code, 0, patched.stderr);
    const verdict = verifyPolicySignature((await this.policy()) as unknown as Record<string, unknown>, this.env.signingPublicKeyPem);
    assert.equal(verdict.ok, false, 'the edited policy must carry a signature that no longer verifies');

    let compiled: Condition | undefined;
    await eventually(
      'the node reports Compiled=False',
      async () => {
        compiled = condition(await this.policy(), 'Compiled');
        return compiled?.status === 'False' ? true : `Compiled is ${JSON.stringify(compiled)}`;
      },
      STATUS_TIMEOUT_MS,
    );
    await this.kubectl([
      'get',
      'csp',
      POLICY,
      '-n',
      NS,
      '-o',
      'jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\\n"}{end}',
    ]);
    assert.match(
      compiled?.message ?? '',
      /signature/,
      `the Compiled condition does not give the signature as the reason: ${compiled?.message}`,
    );
    const log = await readFile(join(this.env.outputs, 'enforcer.log'), 'utf8');
    assert.ok(log.includes('rejected a policy whose signature does not verify'), 'the enforcer did not log the rejected signature');

    await this.env.registerWebhooks();
    this.narrator.note('\n(The webhook registrations are restored.)');
    const file = this.path(`${MANIFESTS}/web-2.yaml`);
    const applied = await this.kubectl(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    const output = await this.podOutput('web-2');
    assert.ok(output.includes(EPERM), `the previous version of ${POLICY} is not enforced any more:\n${output}`);
  }

  async showDenialEvent(): Promise<void> {
    this.narrator.step(
      'kubectl describe pod shows the denial',
      'Each denial becomes a Warning Event on the pod and on the policy, naming the operation, the file, the policy and\nits rule. Repeats are folded into one Event with a count, and the policy status counts every denial.',
    );
    let described: KubectlResult | undefined;
    await eventually(
      'the PolicyDenied Event reaches the pod',
      async () => {
        described = await this.kubectl(['describe', 'pod', 'web-1', '-n', NS], { show: false });
        return described.stdout.includes(DENIAL_MESSAGE) ? true : `no Event with "${DENIAL_MESSAGE}" yet`;
      },
      STATUS_TIMEOUT_MS,
    );
    this.narrator.shell(`kubectl describe pod web-1 -n ${NS}`, described?.stdout ?? '');
    assert.match(described?.stdout ?? '', new RegExp(`Warning\\s+PolicyDenied\\s+.*${escape(DENIAL_MESSAGE)}`));

    // The Event as stored, against docs/kubernetes.md: involved object, reason and source.
    const listed = await this.kubectl(
      ['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=web-1,reason=PolicyDenied', '-o', 'json'],
      {
        show: false,
      },
    );
    assert.equal(listed.code, 0, listed.stderr);
    const event = (JSON.parse(listed.stdout) as { items: EventJson[] }).items.find((e) => e.message.startsWith(DENIAL_MESSAGE));
    assert.ok(event, `no PolicyDenied Event on pod web-1 starts with "${DENIAL_MESSAGE}"`);
    assert.equal(event.type, 'Warning');
    assert.equal(event.involvedObject.kind, 'Pod');
    assert.equal(event.source.component, 'sabpf-enforcer');
    assert.equal(event.source.host, NODE_NAME);

    // The policy status counts the denials of web-1 and web-2.
    let policy: PolicyJson | undefined;
    await eventually(
      `the status of ${POLICY} counts both denials`,
      async () => {
        policy = await this.policy();
        return (policy.status?.denials ?? 0) >= 2 ? true : `denials: ${policy.status?.denials}`;
      },
      STATUS_TIMEOUT_MS,
    );
    await this.kubectl(['get', 'csp', '-n', NS]);
    assert.equal(policy?.status?.lastDenial?.resource, '/srv/secret/key');
  }

  async showAuditTrail(): Promise<void> {
    this.narrator.step(
      "The node's audit trail contains the denial",
      "The enforcer appends every recorded decision to a hash-chained JSON-lines trail (here in the VM run's output\ndirectory, so the host can read it).",
    );
    const result = await this.sabpf(['audit', 'tail', '-n', '3', '--pod', 'web-1', '--decision', 'deny', this.auditDir()]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.includes('/srv/secret/key'), `no denial of /srv/secret/key in:\n${result.stdout}`);
    assert.ok(result.stdout.includes(`${NS}/${POLICY}`), `the records do not name ${NS}/${POLICY}:\n${result.stdout}`);
  }

  async stopNode(): Promise<NodeStopReport> {
    this.narrator.step(
      'The node stops cleanly',
      'The enforcer gets SIGTERM (its pinned programs would keep enforcing), then the VM powers off.',
    );
    this.stopReport = await this.env.stop();
    const { vm, enforcerExit, stoppedCleanly } = this.stopReport;
    if (vm instanceof Error) throw new Error(`failed to stop the VM cleanly: ${vm.message}`);
    this.narrator.note(`sabpf enforce exited with ${enforcerExit}; the VM powered off with status ${vm.exitCode}.`);
    assert.ok(stoppedCleanly, 'the VM had to be killed');
    assert.equal(enforcerExit, 0, 'sabpf enforce --kubernetes must exit 0 on SIGTERM');
    assert.equal(vm.exitCode, 0, `the guest script failed; console tail:\n${vm.console.slice(-3000)}`);
    return this.stopReport;
  }

  async verifyAuditTrail(): Promise<void> {
    this.narrator.step('The audit trail verifies', "sabpf audit verify recomputes every record's hash and follows the chain.");
    const verified = await this.sabpf(['audit', 'verify', this.auditDir()]);
    assert.equal(verified.code, 0, `sabpf audit verify failed:\n${verified.stdout}${verified.stderr}`);

    const records = (await readFile(join(this.auditDir(), 'audit.log'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const denial = records.find(
      (r) => r.kind === 'decision' && r.pod === 'web-1' && (r.resource as { path?: string } | undefined)?.path === '/srv/secret/key',
    );
    assert.ok(denial, 'no audit record of the denied read of /srv/secret/key in pod web-1');
    assert.equal(denial.decision, 'deny');
    assert.equal(denial.enforced, true);
    assert.equal(denial.policy, `${NS}/${POLICY}`);
    assert.equal(denial.rule, 'spec.file.rules[0]');
    assert.equal(denial.node, NODE_NAME);
    assert.equal(denial.container, 'main');
  }

  /** Returns the node's audit trail directory, which guest-node.sh writes into the run's output directory. */
  auditDir(): string {
    return join(this.env.outputs, 'audit');
  }

  private async kubectl(args: string[], options: { show?: boolean } = {}): Promise<KubectlResult> {
    const result = await this.env.kubectl(args);
    if (options.show !== false)
      this.narrator.shell(`kubectl ${args.map((arg) => this.display(arg)).join(' ')}`, result.stderr + result.stdout);
    return result;
  }

  /** Runs the sabpf CLI on the host and narrates it. */
  private sabpf(args: string[]): Promise<KubectlResult> {
    return new Promise((resolve) => {
      execFile(process.execPath, [this.path('dist/cli/main.js'), ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        let code = 0;
        if (error) code = typeof error.code === 'number' ? error.code : 1;
        this.narrator.shell(`sabpf ${args.map((arg) => this.display(arg)).join(' ')}`, stderr + stdout);
        resolve({ code, stdout, stderr });
      });
    });
  }

  private async policy(): Promise<PolicyJson> {
    const result = await this.kubectl(['get', 'csp', POLICY, '-n', NS, '-o', 'json'], { show: false });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PolicyJson;
  }

  /** Waits until the pod's command printed its last line, then narrates and returns everything it printed. */
  private async podOutput(pod: string): Promise<string> {
    const file = join(this.env.outputs, 'pods', `${NS}_${pod}.out`);
    let output = '';
    try {
      await eventually(
        `pod ${pod} prints "cat exited with"`,
        async () => {
          output = await readFile(file, 'utf8').catch(() => '');
          return /cat exited with \d+/.test(output) ? true : `output so far: ${JSON.stringify(output)}`;
        },
        POD_TIMEOUT_MS,
      );
    } catch (err) {
      const kubeletLog = await readFile(join(this.env.outputs, 'pods', `${NS}_${pod}.kubelet.log`), 'utf8').catch(() => '(none)');
      throw new Error(`${(err as Error).message}\ntest kubelet log:\n${kubeletLog}`, { cause: err });
    }
    this.narrator.note(`\nThe container's output, as the test kubelet in the VM captured it:`);
    this.narrator.shell(`cat ${this.display(file)}`, output);
    return output;
  }

  private path(relativePath: string): string {
    return join(this.env.root, relativePath);
  }

  /** Formats an argument as a reader types it: paths relative to the repository, quoted when the shell needs it. */
  private display(arg: string): string {
    const shown = isAbsolute(arg) && arg.startsWith(this.env.root) ? relative(this.env.root, arg) : arg;
    return /^[A-Za-z0-9_./:=@,+-]+$/.test(shown) ? shown : `'${shown.replaceAll("'", `'\\''`)}'`;
  }
}

function condition(policy: PolicyJson, type: string): Condition | undefined {
  return policy.status?.conditions?.find((c) => c.type === type);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
