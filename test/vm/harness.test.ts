// Proves the VM harness and the kernel feature the enforcer relies on. One
// boot runs every scenario and leaves its observations in $SABPF_OUT, which
// the cases below read back on the host.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { vmCacheDir, vmSourceDir } from './paths.js';
import { runInVm, VmTimeoutError, type VmRunResult } from './run.js';

const execFileAsync = promisify(execFile);

// The script's last status is the marker for "the guest's exit code is the
// one runInVm returns", so it must be one no step inside produces by accident.
const finalStatus = 7;

// Busybox ash. Every observation goes to its own file so a failing case names
// exactly what differed. The probe is built on the host into test/vm/out/probe,
// which is inside the read-only project share.
const scenarioScript = `
out=$SABPF_OUT
probe=$SABPF_SHARE/test/vm/out/probe

cat /sys/kernel/security/lsm >$out/lsm
uname -r >$out/uname
cp /sys/kernel/btf/vmlinux $out/btf

mkdir -p /tmp/files
echo topsecret >/tmp/files/secret
echo public >/tmp/files/secrets

mkdir /sys/fs/cgroup/c1 /sys/fs/bpf/probe
$probe/probe-loader attach $probe/secret.bpf.o /sys/fs/cgroup/c1 /sys/fs/bpf/probe >$out/attach.log 2>&1
echo $? >$out/attach.rc

in_c1() {
  sh -c 'echo $$ >/sys/fs/cgroup/c1/cgroup.procs && exec "$@"' in_c1 "$@"
}

in_c1 cat /tmp/files/secret >$out/inside.stdout 2>$out/inside.stderr
echo $? >$out/inside.rc
in_c1 node -e 'try { require("fs").readFileSync("/tmp/files/secret"); console.log("read") } catch (e) { console.log(e.code) }' >$out/inside-node.stdout 2>&1
in_c1 cat /tmp/files/secrets >$out/inside-other.stdout 2>&1
echo $? >$out/inside-other.rc

cat /tmp/files/secret >$out/outside.stdout 2>$out/outside.stderr
echo $? >$out/outside.rc

$probe/probe-loader count /sys/fs/bpf/probe >$out/denials 2>&1

# The pinned link is the attachment's last reference: unpinning detaches.
rm /sys/fs/bpf/probe/link
in_c1 cat /tmp/files/secret >$out/detached.stdout 2>&1
echo $? >$out/detached.rc

node -e 'console.log(JSON.stringify({ version: process.version, sum: 40 + 2 }))' >$out/node.stdout 2>&1
echo $? >$out/node.rc

touch $SABPF_SHARE/written-by-guest 2>/dev/null
echo $? >$out/share-write.rc

exit ${finalStatus}
`;

async function readOut(result: VmRunResult, name: string): Promise<string> {
  return (await readFile(join(result.outputs, name), 'utf8')).trim();
}

describe('VM harness (Debian 6.1 guest, BPF LSM)', function () {
  // TCG boots in about 5 s on an idle machine; the margin covers shared cores.
  this.timeout(300_000);

  let result: VmRunResult;

  before(async function () {
    await execFileAsync('nice', ['-n', '10', join(vmSourceDir, 'probe', 'build.sh')]);
    result = await runInVm({ script: scenarioScript, timeoutMs: 240_000 });
  });

  it('returns the guest script exit status', function () {
    assert.equal(result.exitCode, finalStatus, `console:\n${result.console}`);
  });

  it('boots 6.1 with the BPF LSM', async function () {
    assert.match(await readOut(result, 'uname'), /^6\.1\./);
    const lsms = (await readOut(result, 'lsm')).split(',');
    assert.ok(lsms.includes('bpf'), `lsm list: ${lsms.join(',')}`);
  });

  it('caches the guest kernel BTF', async function () {
    const kver = (await readFile(join(vmCacheDir(), 'kernel', 'KVER'), 'utf8')).trim();
    const cached = await readFile(join(vmCacheDir(), `btf-${kver}`));
    const guest = await readFile(join(result.outputs, 'btf'));
    assert.ok(guest.length > 1_000_000, `guest BTF is only ${guest.length} bytes`);
    assert.ok(cached.equals(guest), 'cached BTF differs from /sys/kernel/btf/vmlinux');
  });

  it('attaches the probe to a cgroup', async function () {
    assert.equal(await readOut(result, 'attach.rc'), '0', await readOut(result, 'attach.log'));
  });

  it('denies secret inside the cgroup', async function () {
    assert.notEqual(await readOut(result, 'inside.rc'), '0');
    assert.equal(await readOut(result, 'inside.stdout'), '');
    assert.match(await readOut(result, 'inside.stderr'), /Operation not permitted/);
    assert.equal(await readOut(result, 'inside-node.stdout'), 'EPERM');
  });

  it('allows other names inside the cgroup', async function () {
    assert.equal(await readOut(result, 'inside-other.rc'), '0');
    assert.equal(await readOut(result, 'inside-other.stdout'), 'public');
  });

  it('allows secret outside the cgroup', async function () {
    assert.equal(await readOut(result, 'outside.rc'), '0', await readOut(result, 'outside.stderr'));
    assert.equal(await readOut(result, 'outside.stdout'), 'topsecret');
  });

  // Two denials: the cat and the node readFileSync of "secret" inside c1.
  it('counts each denial once', async function () {
    assert.equal(await readOut(result, 'denials'), '2');
  });

  it('detaches when the link is unpinned', async function () {
    assert.equal(await readOut(result, 'detached.rc'), '0');
    assert.equal(await readOut(result, 'detached.stdout'), 'topsecret');
  });

  it('runs the host node in the guest', async function () {
    assert.equal(await readOut(result, 'node.rc'), '0', await readOut(result, 'node.stdout'));
    const info = JSON.parse(await readOut(result, 'node.stdout')) as { version: string; sum: number };
    assert.equal(info.version, process.version);
    assert.equal(info.sum, 42);
  });

  it('mounts the project read-only', async function () {
    assert.notEqual(await readOut(result, 'share-write.rc'), '0');
  });

  it('kills the VM on timeout', async function () {
    const started = Date.now();
    await assert.rejects(runInVm({ script: 'echo waiting-forever; sleep 600\n', timeoutMs: 20_000 }), (err: unknown) => {
      assert.ok(err instanceof VmTimeoutError, `unexpected error: ${String(err)}`);
      assert.match(err.consoleTail, /waiting-forever/);
      return true;
    });
    assert.ok(Date.now() - started < 40_000, 'runInVm did not return soon after the timeout');
  });
});
