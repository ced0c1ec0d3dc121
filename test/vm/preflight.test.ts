// The preemption check of the enforcer's startup, against a real kernel:
// Debian's 6.1 is built PREEMPT_DYNAMIC, so one boot with preempt=full on
// the command line shows the refusal, and switching the model at runtime
// through debugfs shows each source the check reads.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { runInVm, type VmRunResult } from './run.js';

// Busybox ash. preflight.js is the enforcer's own check, run as the CLI runs it.
const script = `
set -u
OUT=$SABPF_OUT
ROOT=$SABPF_SHARE
W=/tmp/sabpf
mkdir -p $W/policies /sys/fs/cgroup/web
PREEMPT=/sys/kernel/debug/sched/preempt
check() {
  node -e 'import("'$ROOT'/dist/enforcer/core/preflight.js").then((m) => { const r = m.preflight(); console.log(JSON.stringify({ ok: r.ok, preemption: r.preemption ?? null, problems: r.problems })) })'
}

cat >$W/containers.yaml <<YAML
node: vm-node
containers:
  - { namespace: shop, pod: web-1, container: nginx, labels: { app: web }, cgroupPath: /sys/fs/cgroup/web }
YAML
cat >$W/policies/web.yaml <<'YAML'
apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  mode: enforce
  file:
    posture: allow
    rules:
      - { name: secrets, paths: [/srv/secret/**], access: read, action: deny }
YAML

cat $PREEMPT >$OUT/preempt-boot
node $ROOT/dist/cli/main.js enforce --policies $W/policies --containers $W/containers.yaml --audit-dir $W/audit >$OUT/enforce.stdout 2>$OUT/enforce.stderr
echo $? >$OUT/enforce.rc

echo voluntary >$PREEMPT
cat $PREEMPT >$OUT/preempt-switched
check >$OUT/check-voluntary.json 2>&1

# Without debugfs, the command line's preempt=full is what the check can read.
umount /sys/kernel/debug
check >$OUT/check-cmdline.json 2>&1
`;

interface Check {
  ok: boolean;
  preemption: string | null;
  problems: string[];
}

describe('preemption check in a VM (Debian 6.1, booted with preempt=full)', function () {
  this.timeout(300_000);

  let result: VmRunResult;
  const out = async (name: string): Promise<string> => (await readFile(join(result.outputs, name), 'utf8')).trim();
  const check = async (name: string): Promise<Check> => JSON.parse(await out(name)) as Check;

  before(async function () {
    result = await runInVm({ script, kernelParams: ['preempt=full'], timeoutMs: 240_000 });
    assert.equal(result.exitCode, 0, `guest script failed; console in ${result.consoleLog}`);
  });

  it('boots the guest with full preemption', async function () {
    assert.equal(await out('preempt-boot'), 'none voluntary (full)');
  });

  it('rejects enforcing under full preemption', async function () {
    assert.equal(await out('enforce.rc'), '3', await out('enforce.stderr'));
    assert.match(
      await out('enforce.stderr'),
      /cannot enforce on this kernel:\n {2}- the kernel runs with full preemption \(\/sys\/kernel\/debug\/sched\/preempt\): .*with preempt=voluntary/u,
    );
  });

  it('passes after switching to voluntary', async function () {
    assert.equal(await out('preempt-switched'), 'none (voluntary) full');
    assert.deepEqual(await check('check-voluntary.json'), { ok: true, preemption: 'voluntary', problems: [] });
  });

  it('reads preempt= without debugfs', async function () {
    const reading = await check('check-cmdline.json');
    assert.equal(reading.ok, false);
    assert.equal(reading.preemption, 'full');
    assert.match(reading.problems.join('\n'), /full preemption \(preempt= in \/proc\/cmdline\)/u);
  });
});
