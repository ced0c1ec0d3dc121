// Resolving kernel events into audit records: the rename cases, whose
// decision may come from rules below a moved directory rather than a rule
// the replay can find, and the node-wide path hooks, judged as writes.
import assert from 'node:assert/strict';

import { compileSelected } from '../../../compiler/compile.js';
import { EventFlag, Hook } from '../../../compiler/layout.js';
import { resolveEvent } from '../../../enforcer/core/records.js';
import { operationText } from '../../../enforcer/k8s/denial-message.js';
import type { NodeContainer } from '../../../enforcer/core/types.js';
import type { SabpfEvent } from '../../../enforcer/kernel/index.js';
import { policiesFrom, policyYaml } from '../helpers.js';

const web: NodeContainer = { namespace: 'shop', pod: 'web-1', container: 'nginx', labels: { app: 'web' }, cgroupPath: '/cg/web' };
const selected = policiesFrom(
  policyYaml(
    'deny-key',
    `  file:
    posture: allow
    rules:
      - paths: [/srv/secret/key]
        action: deny`,
  ),
);
const program = compileSelected(selected, { namespace: 'shop', pod: 'web-1', container: 'nginx' });

function renameEvent(path: string, flags: number, hook: number = Hook.fileRename): SabpfEvent {
  return {
    timeBootNs: 0n,
    cgroupId: 42n,
    pid: 7,
    ppid: 1,
    uid: 0,
    hook,
    access: 1,
    decision: 1,
    flags,
    policy: 0,
    netOp: 0,
    port: 0,
    proto: 0,
    family: 0,
    addr: new Uint8Array(16),
    comm: 'mv',
    path,
    exe: '/bin/busybox',
  } as SabpfEvent;
}

describe('resolveEvent for renames', () => {
  it('names a directory move denied for rules below', () => {
    const resolved = resolveEvent(renameEvent('/srv', EventFlag.rulesBelow | EventFlag.enforced), web, program, selected, 'n1');
    assert.ok(resolved, 'the event did not resolve');
    assert.equal(resolved.record.operation, 'file-rename');
    assert.equal(resolved.record.reason, 'rules-below');
    assert.equal(resolved.record.rule, 'rules-below');
    assert.equal(resolved.record.enforced, true);
    assert.deepEqual(resolved.record.resource, { path: '/srv' });
    assert.equal(resolved.mismatch, false);
  });

  it('finds the rule of a file move', () => {
    const resolved = resolveEvent(renameEvent('/srv/secret/key', EventFlag.enforced), web, program, selected, 'n1');
    assert.ok(resolved, 'the event did not resolve');
    assert.equal(resolved.record.reason, 'rule');
    assert.equal(resolved.record.rule, 'spec.file.rules[0]');
    assert.equal(resolved.record.access, 'write');
  });
});

describe('resolveEvent for the node-wide path hooks', () => {
  const cases: Array<[number, string, string]> = [
    [Hook.fileCreate, 'file-create', 'create'],
    [Hook.fileMkdir, 'file-mkdir', 'mkdir'],
    [Hook.fileSymlink, 'file-symlink', 'symlink'],
    [Hook.fileUnlink, 'file-unlink', 'unlink'],
    [Hook.fileRmdir, 'file-rmdir', 'rmdir'],
    [Hook.fileTruncate, 'file-truncate', 'truncate'],
    [Hook.fileChmod, 'file-chmod', 'chmod'],
  ];
  for (const [hook, operation, verb] of cases) {
    it(`records ${operation} as a write`, () => {
      const resolved = resolveEvent(renameEvent('/srv/secret/key', EventFlag.enforced, hook), web, program, selected, 'n1');
      assert.ok(resolved, 'the event did not resolve');
      assert.equal(resolved.record.operation, operation);
      assert.equal(resolved.record.access, 'write');
      assert.equal(resolved.record.rule, 'spec.file.rules[0]');
      assert.equal(operationText(resolved.record), `${verb} /srv/secret/key (write)`);
    });
  }
});
