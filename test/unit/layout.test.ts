// The TypeScript mirror of enforcer/bpf/sabpf.h must agree with the header
// byte for byte: this compiles a C program against the header and compares
// every size and offset it prints.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_OFFSET, EVENT_OFFSET, Hook, LSM_HOOK, SIZE } from '../../compiler/layout.js';
import { repositoryRoot } from '../../compiler/schema.js';

const program = `
#include <stddef.h>
#include <stdio.h>
#include "sabpf.h"
#define SIZE(name, type) printf("size %s %zu\\n", name, sizeof(type))
#define OFF(prefix, type, field) printf("%s %s %zu\\n", prefix, #field, offsetof(type, field))
int main(void) {
  SIZE("verdict", struct sabpf_verdict);
  SIZE("config", struct sabpf_config);
  SIZE("nodeKey", struct sabpf_node_key);
  SIZE("longNodeKey", struct sabpf_long_node_key);
  SIZE("node", struct sabpf_node);
  SIZE("sourceRootKey", struct sabpf_source_root_key);
  SIZE("netKey", struct sabpf_net_key);
  SIZE("netPrefix", struct sabpf_net_prefix);
  SIZE("portKey", struct sabpf_port_key);
  SIZE("event", struct sabpf_event);
  OFF("config", struct sabpf_config, slot); OFF("config", struct sabpf_config, hooks);
  OFF("config", struct sabpf_config, enforce); OFF("config", struct sabpf_config, policy_count);
  OFF("config", struct sabpf_config, file_root); OFF("config", struct sabpf_config, exec_root);
  OFF("config", struct sabpf_config, source_root); OFF("config", struct sabpf_config, flags);
  OFF("config", struct sabpf_config, posture_deny); OFF("config", struct sabpf_config, posture_audit);
  OFF("config", struct sabpf_config, raw_socket); OFF("config", struct sabpf_config, packet_socket);
  OFF("event", struct sabpf_event, time_boot_ns); OFF("event", struct sabpf_event, cgroup_id);
  OFF("event", struct sabpf_event, pid); OFF("event", struct sabpf_event, ppid);
  OFF("event", struct sabpf_event, uid); OFF("event", struct sabpf_event, hook);
  OFF("event", struct sabpf_event, access); OFF("event", struct sabpf_event, decision);
  OFF("event", struct sabpf_event, flags); OFF("event", struct sabpf_event, policy);
  OFF("event", struct sabpf_event, net_op); OFF("event", struct sabpf_event, port);
  OFF("event", struct sabpf_event, proto); OFF("event", struct sabpf_event, family);
  OFF("event", struct sabpf_event, addr); OFF("event", struct sabpf_event, comm);
  OFF("event", struct sabpf_event, path_len); OFF("event", struct sabpf_event, exe_len);
  OFF("event", struct sabpf_event, path); OFF("event", struct sabpf_event, exe);
  OFF("netKey", struct sabpf_net_key, addr);
  printf("hook fileOpen %d\\n", SABPF_HOOK_FILE_OPEN); printf("hook exec %d\\n", SABPF_HOOK_EXEC);
  printf("hook socketConnect %d\\n", SABPF_HOOK_SOCKET_CONNECT); printf("hook socketBind %d\\n", SABPF_HOOK_SOCKET_BIND);
  printf("hook socketCreate %d\\n", SABPF_HOOK_SOCKET_CREATE); printf("hook fileLink %d\\n", SABPF_HOOK_FILE_LINK);
  printf("hook socketSendmsg %d\\n", SABPF_HOOK_SOCKET_SENDMSG); printf("hook fileRename %d\\n", SABPF_HOOK_FILE_RENAME);
  printf("hook fileCreate %d\\n", SABPF_HOOK_FILE_CREATE); printf("hook fileMkdir %d\\n", SABPF_HOOK_FILE_MKDIR);
  printf("hook fileSymlink %d\\n", SABPF_HOOK_FILE_SYMLINK); printf("hook fileUnlink %d\\n", SABPF_HOOK_FILE_UNLINK);
  printf("hook fileRmdir %d\\n", SABPF_HOOK_FILE_RMDIR); printf("hook fileTruncate %d\\n", SABPF_HOOK_FILE_TRUNCATE);
  printf("hook fileChmod %d\\n", SABPF_HOOK_FILE_CHMOD);
  return 0;
}
`;

const camel = (name: string): string => name.replace(/_([a-z])/gu, (_, c: string) => c.toUpperCase());

describe('layout mirror of sabpf.h', () => {
  let printed: Map<string, number>;

  before(function () {
    this.timeout(30_000);
    const dir = mkdtempSync(join(tmpdir(), 'sabpf-layout-'));
    try {
      writeFileSync(join(dir, 'layout.c'), program);
      execFileSync('cc', ['-I', join(repositoryRoot(), 'enforcer/bpf'), '-o', join(dir, 'layout'), join(dir, 'layout.c')]);
      const output = execFileSync(join(dir, 'layout'), { encoding: 'utf8' });
      printed = new Map(
        output
          .trim()
          .split('\n')
          .map((line) => {
            const [kind, name, value] = line.split(' ');
            return [`${kind}.${name}`, Number(value)];
          }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const [name, size] of Object.entries(SIZE)) {
    if (name === 'sourceRoot') continue; // a plain __u32
    it(`has the size of ${name}`, () => {
      assert.equal(printed.get(`size.${name}`), size);
    });
  }

  for (const [name, offset] of Object.entries(CONFIG_OFFSET)) {
    it(`has the offset of config.${name}`, () => {
      const key = [...printed.keys()].find((k) => k.startsWith('config.') && camel(k.slice(7)) === name);
      assert.ok(key, `config.${name} not printed`);
      assert.equal(printed.get(key), offset);
    });
  }

  for (const [name, offset] of Object.entries(EVENT_OFFSET)) {
    it(`has the offset of event.${name}`, () => {
      const key = [...printed.keys()].find((k) => k.startsWith('event.') && camel(k.slice(6)) === name);
      assert.ok(key, `event.${name} not printed`);
      assert.equal(printed.get(key), offset);
    });
  }

  it('puts the net key address after 64 header bits', () => {
    assert.equal(printed.get('netKey.addr'), 12);
  });

  for (const [name, bit] of Object.entries(Hook)) {
    it(`has the bit of hook ${name}`, () => {
      assert.equal(printed.get(`hook.${name}`), bit);
    });
  }

  it('names an LSM hook for every hook bit', () => {
    assert.deepEqual(Object.keys(LSM_HOOK), Object.keys(Hook));
  });

  it('prints no hook that the mirror lacks', () => {
    const hooks = [...printed.keys()].filter((k) => k.startsWith('hook.')).map((k) => k.slice(5));
    assert.deepEqual(hooks.sort(), Object.keys(Hook).sort());
  });
});
