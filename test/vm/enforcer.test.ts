// End-to-end test of standalone enforcement in a real kernel: `sabpf enforce`
// compiles policies, attaches the BPF LSM programs to two containers'
// cgroups, and real commands inside and outside them succeed or fail with
// EPERM; the audit trail records each decision with its policy and rule.
// One VM boot per kernel runs test/vm/scenarios/enforcer-guest.sh; the cases
// below read what it observed. On Debian 6.1, auto mode attaches per cgroup
// (BPF_LSM_CGROUP), and so on Debian 6.12, whose verifier is stricter. On
// Debian 5.10 it picks the legacy global object (no BPF_LSM_CGROUP, no
// bpf_loop), which must pass the same cases.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { vmSourceDir } from './paths.js';
import { runInVm, type KernelLine, type VmRunResult } from './run.js';

interface Probe {
  rc: number;
  out: string;
}

const EPERM_TEXT = /Operation not permitted|EPERM|permission denied/iu;

const kernels: { line: KernelLine; mode: string; object: string }[] = [
  { line: '6.1', mode: 'cgroup', object: 'cgroup' },
  { line: '5.10', mode: 'global', object: 'legacy' },
  { line: '6.12', mode: 'cgroup', object: 'cgroup' },
];

for (const kernel of kernels)
  describe(`sabpf enforce in a VM (Debian ${kernel.line}, ${kernel.object} object)`, function () {
    this.timeout(900_000);
    let run: VmRunResult;
    const probes = new Map<string, Probe>();
    let audit: Record<string, unknown>[] = [];
    let started: Record<string, unknown> | undefined;

    before(async () => {
      run = await runInVm({ script: `sh ${vmSourceDir}/scenarios/enforcer-guest.sh`, timeoutMs: 840_000, kernel: kernel.line });
      const enforcerLog = await readFile(join(run.outputs, 'enforcer1.log'), 'utf8').catch(() => '');
      started = enforcerLog
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((r) => r.msg === 'enforcer started');
      const text = await readFile(join(run.outputs, 'results.txt'), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        const match = /^(\S+) rc=(\d+) out=(.*)$/u.exec(line);
        if (match) probes.set(match[1] as string, { rc: Number(match[2]), out: match[3] as string });
      }
      const log = await readFile(join(run.outputs, 'audit.log'), 'utf8').catch(() => '');
      audit = log
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    });

    const probe = (name: string): Probe => {
      const found = probes.get(name);
      assert.ok(found, `probe ${name} did not run; guest exit ${run.exitCode}, console tail:\n${run.console.slice(-3000)}`);
      return found;
    };
    const denied = (name: string): void => {
      const p = probe(name);
      assert.notEqual(p.rc, 0, `${name} succeeded: ${p.out}`);
      assert.match(p.out, EPERM_TEXT, `${name} failed for another reason: ${p.out}`);
    };
    const allowed = (name: string): void => {
      const p = probe(name);
      assert.equal(p.rc, 0, `${name} failed: ${p.out}`);
    };
    const records = (filter: Record<string, unknown>): Record<string, unknown>[] =>
      audit.filter((r) => Object.entries(filter).every(([k, v]) => JSON.stringify(r[k]) === JSON.stringify(v)));

    it(`picks the ${kernel.object} object in auto mode`, () => {
      assert.ok(started, `no "enforcer started" log line; guest exit ${run.exitCode}`);
      assert.equal(started.mode, kernel.mode);
      assert.equal(started.object, kernel.object);
    });

    describe('file_open', () => {
      it('denies reading a protected file', () => denied('web_read_secret'));
      it('denies writing a protected file', () => denied('web_write_secret'));
      it('allows an unprotected file', () => allowed('web_read_data'));
      it('denies through a symlink', () => denied('web_symlink'));
      it('denies a relative path after chdir', () => denied('web_relative'));
      it('denies a path through ..', () => denied('web_dotdot'));
      it('leaves an unconfined process alone', () => allowed('host_read_secret'));
    });

    describe('path_link', () => {
      it('denies linking a protected file', () => denied('web_hardlink'));
      it('leaves no alias to read the secret through', () => {
        const p = probe('web_hardlink_read');
        assert.notEqual(p.rc, 0, p.out);
        assert.match(p.out, /No such file/u);
      });
      it('lets an unconfined process make the link', () => allowed('host_hardlink'));
      // Path rules name paths, not inodes: a link made outside is the known limit.
      it('reads through an outside-made link', () => allowed('web_read_host_hardlink'));
    });

    describe('path_rename', () => {
      it('denies moving a protected file out', () => denied('web_rename'));
      it('leaves nothing at the new name', () => {
        const p = probe('web_rename_read');
        assert.notEqual(p.rc, 0, p.out);
        assert.match(p.out, /No such file/u);
      });
      it('denies moving a directory above a rule', () => denied('web_rename_parent'));
    });

    describe('node-wide path hooks', () => {
      it('denies removing a protected file', () => denied('web_unlink'));
      it('denies truncating it', () => denied('web_truncate'));
      it('denies changing its mode', () => denied('web_chmod'));
      it('leaves it intact', () => {
        const p = probe('host_secret_intact');
        assert.equal(p.rc, 0, p.out);
        assert.match(p.out, /s3cret/u, 'the file was emptied');
      });
    });

    describe('bprm_check_security', () => {
      it('denies the binary', () => denied('web_exec_tool'));
      it('denies a symlink to the binary', () => denied('web_exec_link'));
      it('denies a script whose interpreter is denied', () => denied('web_exec_script'));
      it('leaves an unconfined process alone', () => {
        allowed('host_exec_tool');
        allowed('host_exec_script');
      });
    });

    describe('socket hooks', () => {
      it('denies connect to a denied IPv4 address and port', () => {
        const p = probe('web_connect_v4');
        assert.notEqual(p.rc, 0);
        assert.match(p.out, /EPERM|EACCES/u);
      });
      it('denies connect to the IPv4-mapped IPv6 form', () => {
        const p = probe('web_connect_mapped');
        assert.notEqual(p.rc, 0);
        assert.match(p.out, /EPERM|EACCES/u);
      });
      it('lets an unconfined process connect', () => {
        const p = probe('host_connect');
        assert.equal(p.rc, 0, p.out);
        assert.match(p.out, /connected/u);
      });
      it('denies a raw socket', () => {
        const p = probe('web_raw_socket');
        assert.notEqual(p.rc, 0, p.out);
        assert.match(p.out, /permission denied/u);
      });
      it('lets an unconfined process open a raw socket', () => allowed('host_raw_socket'));
    });

    describe('audit mode', () => {
      it('allows what the policy would deny', () => allowed('db_read_data'));
      it('records the would-be denial', () => {
        const found = records({ pod: 'db-1', operation: 'file-open', decision: 'deny', enforced: false, mode: 'audit' });
        assert.ok(
          found.some((r) => (r.resource as { path?: string }).path === '/srv/data/a'),
          `no audit-mode record for /srv/data/a among ${found.length}`,
        );
      });
    });

    describe('policy replacement and restarts', () => {
      it('applies a reloaded policy', () => denied('web_read_data_after_reload'));
      it('keeps enforcing while the enforcer is dead', () => {
        denied('web_read_secret_enforcer_dead');
        denied('web_exec_tool_enforcer_dead');
      });
      it('keeps enforcing after a restart', () => denied('web_read_secret_restarted'));
      it('applies a policy change after a restart', () => allowed('web_read_data_after_second_reload'));
      it('never let the running workload read the secret', () => {
        const [ok, attempts] = probe('loop').out.trim().split(' ').map(Number);
        assert.ok((attempts ?? 0) > 100, `the loop ran only ${attempts} times`);
        assert.equal(ok, 0);
      });
      describe('a second enforcer beside it', () => {
        const rejected = (name: string, message: RegExp): void => {
          const p = probe(name);
          assert.equal(p.rc, 1, `${name} exited ${p.rc}: ${p.out}`);
          const holder = probe('running_enforcer').out.trim();
          assert.match(p.out, message);
          assert.ok(p.out.includes(`(pid ${holder})`), `${name} does not name the running enforcer, pid ${holder}: ${p.out}`);
        };
        it('is rejected on the same pin root', () =>
          rejected(
            'second_same_pins',
            /^sabpf enforce: another sabpf enforcer \(pid \d+\) runs with the pin root \/sys\/fs\/bpf\/sabpf, /u,
          ));
        it('is rejected before creating a trail', () => allowed('second_made_no_trail'));
        it('pins nothing under its own pin root', () => allowed('second_pinned_nothing'));
        it('is rejected on the same audit folder', () =>
          rejected('second_same_trail', /^sabpf enforce: another sabpf enforcer \(pid \d+\) writes the audit trail in \S+\/audit, /u));
        it('cannot unload under it', () =>
          rejected('unload_while_running', /^sabpf enforce: cannot unload: a sabpf enforcer \(pid \d+\) runs with the pin root /u));
        it('leaves it enforcing', () => denied('web_read_secret_beside_second'));
      });
      it('stops cleanly on SIGTERM', () => assert.equal(probe('enforcer_exit').rc, 0));
      it('leaves the programs enforcing after a stop', () => denied('web_read_secret_after_stop'));
      it('ends enforcement on --unload', () => allowed('web_read_secret_unloaded'));
    });

    describe('audit trail', () => {
      it('verifies', () => {
        const p = probe('audit_verify');
        assert.equal(p.rc, 0, p.out);
      });
      it('records a file denial with policy and rule', () => {
        const found = records({ pod: 'web-1', container: 'nginx', operation: 'file-open', decision: 'deny', enforced: true });
        const record = found.find((r) => (r.resource as { path?: string }).path === '/srv/secret/key');
        assert.ok(record, 'no record for /srv/secret/key');
        assert.equal(record.policy, 'shop/web-lockdown');
        assert.equal(record.rule, 'spec.file.rules[0]');
        assert.equal(record.mode, 'enforce');
        assert.equal(record.node, 'vm-node');
        assert.equal(record.severity, 'high');
      });
      it('records a file-link denial with its rule', () => {
        const found = records({ pod: 'web-1', operation: 'file-link', decision: 'deny', enforced: true });
        const record = found.find((r) => (r.resource as { path?: string }).path === '/srv/secret/key');
        assert.ok(record, `no file-link record for /srv/secret/key among ${found.length}`);
        assert.equal(record.access, 'read');
        assert.equal(record.policy, 'shop/web-lockdown');
        assert.equal(record.rule, 'spec.file.rules[0]');
        assert.match(String(record.executable), /busybox$/u);
      });
      it('records a file-rename denial with its rule', () => {
        const found = records({ pod: 'web-1', operation: 'file-rename', decision: 'deny', enforced: true });
        const record = found.find((r) => (r.resource as { path?: string }).path === '/srv/secret/key');
        assert.ok(record, `no file-rename record for /srv/secret/key among ${found.length}`);
        assert.equal(record.access, 'read');
        assert.equal(record.rule, 'spec.file.rules[0]');
      });
      it('records a directory move denied for the rules below', () => {
        const found = records({ pod: 'web-1', operation: 'file-rename', reason: 'rules-below', enforced: true });
        const record = found.find((r) => (r.resource as { path?: string }).path === '/srv');
        assert.ok(record, `no rules-below record for /srv among ${found.length}`);
        assert.equal(record.access, 'write');
        assert.equal(record.rule, 'rules-below');
      });
      it('records a file-unlink denial with its rule', () => {
        const found = records({ pod: 'web-1', operation: 'file-unlink', decision: 'deny', enforced: true });
        const record = found.find((r) => (r.resource as { path?: string }).path === '/srv/secret/key');
        assert.ok(record, `no file-unlink record for /srv/secret/key among ${found.length}`);
        assert.equal(record.access, 'write');
        assert.equal(record.rule, 'spec.file.rules[0]');
      });
      it('records an exec denial with the resolved binary', () => {
        const found = records({ pod: 'web-1', operation: 'exec', decision: 'deny' });
        assert.ok(found.some((r) => (r.resource as { path?: string }).path === '/srv/bin/true'));
        assert.ok(
          found.some((r) => (r.resource as { path?: string }).path === '/srv/bin/sh'),
          'the script interpreter was recorded',
        );
        assert.ok(found.every((r) => r.rule === 'spec.exec.rules[0]'));
      });
      it('records a connect denial with address and port', () => {
        const found = records({ pod: 'web-1', operation: 'connect', decision: 'deny' });
        assert.ok(found.length > 0, 'no connect record');
        assert.deepEqual(found[0]?.resource, { address: '127.0.0.1', port: 9000, protocol: 'tcp' });
        assert.equal(found[0]?.rule, 'spec.network.rules[0]');
      });
      it('records only decisions of confined containers', () => {
        const decisions = audit.filter((r) => r.kind === 'decision');
        assert.ok(decisions.length > 0);
        assert.deepEqual([...new Set(decisions.map((r) => r.pod))].sort(), ['db-1', 'web-1']);
      });
      it('records ring-buffer losses while the enforcer was dead', () => {
        assert.equal(probe('web_flood_enforcer_dead').out.trim(), '1500');
        const dropped = audit.filter((r) => r.kind === 'dropped' && r.source === 'ring-buffer');
        assert.ok(dropped.length > 0, 'no dropped record');
        const lost = dropped.reduce((sum, r) => sum + (r.count as number), 0);
        // A 4 MiB ring holds at most 505 records of 8,288 bytes plus an 8-byte header.
        assert.ok(lost >= 1500 - 505, `only ${lost} losses recorded for 1,500 denials into a ring of at most 505 records`);
      });
    });
  });
