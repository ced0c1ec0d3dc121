import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Enforcer } from '../../../enforcer/core/enforcer.js';
import type { NodeContainer } from '../../../enforcer/core/types.js';
import { policiesFrom, policyYaml } from '../helpers.js';
import { FakeKernel } from './fake-kernel.js';

const logger = pino({ level: 'silent' });
const web: NodeContainer = { namespace: 'shop', pod: 'web-1', container: 'nginx', labels: { app: 'web' }, cgroupPath: '/cg/web' };
const webId = BigInt(web.cgroupPath.length);

const denyShadow = policiesFrom(
  policyYaml(
    'deny-shadow',
    `  file:
    posture: allow
    rules:
      - paths: [/etc/shadow]
        action: deny`,
  ),
)[0]!;
const denyTool = policiesFrom(
  policyYaml(
    'deny-tool',
    `  exec:
    posture: allow
    rules:
      - paths: [/srv/bin/tool]
        action: deny`,
  ),
)[0]!;

async function started(kernel = new FakeKernel()): Promise<{ kernel: FakeKernel; enforcer: Enforcer }> {
  const enforcer = new Enforcer({ kernel, node: 'n1', logger, cgroupIdOf: (path) => BigInt(path.length) });
  await enforcer.start();
  return { kernel, enforcer };
}

describe('Enforcer', () => {
  describe('when it starts in cgroup mode', () => {
    it('attaches the node-wide hooks first', async () => {
      const { kernel } = await started();
      assert.equal(kernel.calls[0], 'attach-global');
    });
  });

  describe('when a policy selects a new container', () => {
    it('writes entries, then the config, then attaches', async () => {
      const { kernel, enforcer } = await started();
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);

      const configAt = kernel.calls.findIndex((c) => c.startsWith('config'));
      const attachAt = kernel.calls.findIndex((c) => c.startsWith('attach '));
      const updateAt = kernel.calls.findIndex((c) => c.startsWith('update sabpf_nodes'));
      assert.ok(updateAt >= 0 && updateAt < configAt, kernel.calls.join('\n'));
      assert.ok(configAt < attachAt, kernel.calls.join('\n'));
      assert.equal(kernel.calls[attachAt], `attach ${webId} fileOpen,fileLink,fileRename`);
      assert.ok(enforcer.programOf(web.cgroupPath));
    });
  });

  describe('when the policies of a container change', () => {
    it('switches to a new slot and deletes the old one after', async () => {
      const { kernel, enforcer } = await started();
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      const firstSlot = kernel.configOf(webId)!.readUInt32LE(0);
      assert.ok(kernel.slotEntries(firstSlot) > 0);

      await enforcer.upsertPolicy({ policy: denyTool });
      const secondSlot = kernel.configOf(webId)!.readUInt32LE(0);
      assert.notEqual(secondSlot, firstSlot);
      assert.equal(kernel.slotEntries(firstSlot), 0);
      assert.ok(kernel.slotEntries(secondSlot) > 0);
      assert.ok(kernel.calls.includes(`attach ${webId} exec`), 'the exec hook was added');
    });

    it('rewrites nothing when the tables are unchanged', async () => {
      const { kernel, enforcer } = await started();
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      const before = kernel.calls.length;
      await enforcer.upsertPolicy({ policy: { ...denyShadow, spec: { ...denyShadow.spec, message: 'new text' } } });
      assert.equal(kernel.calls.length, before);
    });
  });

  describe('when a kernel update fails', () => {
    it('keeps the previous program and leaves no partial slot', async () => {
      const { kernel, enforcer } = await started();
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      const slot = kernel.configOf(webId)!.readUInt32LE(0);
      const entriesBefore = kernel.keys('sabpf_nodes').length;

      kernel.failNextUpdate = 'sabpf_nodes';
      await enforcer.upsertPolicy({ policy: denyTool });
      assert.equal(kernel.configOf(webId)!.readUInt32LE(0), slot);
      assert.equal(kernel.keys('sabpf_nodes').length, entriesBefore);
      const status = enforcer.status().find((s) => s.policy === 'shop/deny-tool');
      assert.equal(status?.enforced, false);
      assert.match(status?.error ?? '', /No space left on device/u);
    });
  });

  describe('when the last policy goes', () => {
    it('detaches before deleting the config', async () => {
      const { kernel, enforcer } = await started();
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      await enforcer.deletePolicy('shop', 'deny-shadow');
      const detachAt = kernel.calls.lastIndexOf(`detach ${webId}`);
      const deleteAt = kernel.calls.lastIndexOf(`delete-config ${webId}`);
      assert.ok(detachAt >= 0 && detachAt < deleteAt, kernel.calls.join('\n'));
      assert.equal(kernel.keys('sabpf_nodes').length, 0);
      assert.equal(enforcer.programOf(web.cgroupPath), undefined);
    });
  });

  describe('when an earlier process left pins', () => {
    it('adopts them for a declared container and replaces their slot', async () => {
      const first = await started();
      await first.enforcer.upsertPolicy({ policy: denyShadow });
      await first.enforcer.upsertContainer(web);
      const oldSlot = first.kernel.configOf(webId)!.readUInt32LE(0);
      first.kernel.calls.length = 0;

      // A new process on the same kernel state.
      const { kernel, enforcer } = await started(first.kernel);
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      await enforcer.finishInitialSync();
      assert.ok(kernel.calls.includes(`adopt ${webId}`));
      assert.ok(!kernel.calls.some((c) => c.startsWith('attach ')), 'no second attach of a pinned hook');
      const newSlot = kernel.configOf(webId)!.readUInt32LE(0);
      assert.ok(newSlot > oldSlot);
      assert.equal(kernel.slotEntries(oldSlot), 0);
    });

    it('detaches pins no source declared', async () => {
      const first = await started();
      await first.enforcer.upsertPolicy({ policy: denyShadow });
      await first.enforcer.upsertContainer(web);

      const { kernel, enforcer } = await started(first.kernel);
      await enforcer.finishInitialSync();
      assert.equal(kernel.pinned.size, 0);
      assert.equal(kernel.configOf(webId), undefined);
      assert.equal(kernel.keys('sabpf_nodes').length, 0);
    });

    it('deletes a config left without links', async () => {
      const first = await started();
      await first.enforcer.upsertPolicy({ policy: denyShadow });
      await first.enforcer.upsertContainer(web);
      first.kernel.pinned.clear();

      const { kernel, enforcer } = await started(first.kernel);
      await enforcer.finishInitialSync();
      assert.equal(kernel.configOf(webId), undefined);
      assert.equal(kernel.keys('sabpf_nodes').length, 0);
    });
  });

  describe('when a signature check rejects an update', () => {
    it('keeps the previous version of the policy', async () => {
      const kernel = new FakeKernel();
      const enforcer = new Enforcer({
        kernel,
        node: 'n1',
        logger,
        cgroupIdOf: (path) => BigInt(path.length),
        checkSignature: (update) => (update.signature === 'good' ? { ok: true } : { ok: false, reason: 'spec edited after signing' }),
      });
      await enforcer.start();
      await enforcer.upsertPolicy({ policy: denyShadow, signature: 'good' });
      await enforcer.upsertContainer(web);
      const hash = enforcer.programOf(web.cgroupPath)?.hash;

      const edited = { ...denyShadow, spec: { ...denyShadow.spec, mode: 'audit' as const } };
      await enforcer.upsertPolicy({ policy: edited, signature: 'forged' });
      assert.equal(enforcer.programOf(web.cgroupPath)?.hash, hash);
      const status = enforcer.status().find((s) => s.policy === 'shop/deny-shadow');
      assert.equal(status?.compiled, false);
      assert.match(status?.error ?? '', /spec edited after signing/u);
    });
  });

  describe('when more than 32 policies select a container', () => {
    it('keeps the previous program and reports the error', async () => {
      const { enforcer } = await started();
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      for (let i = 0; i < 31; i++) await enforcer.upsertPolicy({ policy: { ...denyTool, name: `extra-${String(i).padStart(2, '0')}` } });
      const hash = enforcer.programOf(web.cgroupPath)?.hash;
      assert.equal(enforcer.programOf(web.cgroupPath)?.policies.length, 32);

      await enforcer.upsertPolicy({ policy: { ...denyTool, name: 'extra-31' } });
      assert.equal(enforcer.programOf(web.cgroupPath)?.hash, hash);
      const status = enforcer.status().find((s) => s.policy === 'shop/deny-shadow');
      assert.match(status?.error ?? '', /33 policies select container shop\/web-1\/nginx/u);
    });
  });

  describe('in global mode', () => {
    it('attaches the global programs once and never per container', async () => {
      const { kernel, enforcer } = await started(new FakeKernel('global'));
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      assert.deepEqual(
        kernel.calls.filter((c) => c.startsWith('attach')),
        ['attach-global'],
      );
      assert.ok(kernel.configOf(webId));
    });

    it('unconfines a container of an earlier run that no source declares', async () => {
      const first = await started(new FakeKernel('global'));
      await first.enforcer.upsertPolicy({ policy: denyShadow });
      await first.enforcer.upsertContainer(web);
      assert.ok(first.kernel.configOf(webId));

      const { kernel, enforcer } = await started(first.kernel);
      await enforcer.finishInitialSync();
      assert.equal(kernel.configOf(webId), undefined);
      assert.equal(kernel.keys('sabpf_nodes').length, 0);
    });

    it('keeps a re-declared container confined under a new slot', async () => {
      const first = await started(new FakeKernel('global'));
      await first.enforcer.upsertPolicy({ policy: denyShadow });
      await first.enforcer.upsertContainer(web);
      const oldSlot = first.kernel.configOf(webId)!.readUInt32LE(0);

      const { kernel, enforcer } = await started(first.kernel);
      await enforcer.upsertPolicy({ policy: denyShadow });
      await enforcer.upsertContainer(web);
      await enforcer.finishInitialSync();
      assert.ok(kernel.configOf(webId)!.readUInt32LE(0) > oldSlot);
      assert.equal(kernel.slotEntries(oldSlot), 0);
    });
  });

  describe('when the kernel counters move', () => {
    /** Builds an enforcer whose counters are read only at stop. */
    const withMetrics = (kernel: FakeKernel, registry: Registry): Enforcer =>
      new Enforcer({ kernel, node: 'n1', logger, registry, counterIntervalMs: 3_600_000, cgroupIdOf: (path) => BigInt(path.length) });

    it('adds the directory cache counters to the metrics', async () => {
      const kernel = new FakeKernel();
      const registry = new Registry();
      const enforcer = withMetrics(kernel, registry);
      await enforcer.start();
      kernel.counterValues.dirCacheHits = 40n;
      kernel.counterValues.dirCacheFills = 3n;
      kernel.counterValues.fileCacheHits = 25n;
      await enforcer.stop();

      const value = async (name: string): Promise<number | undefined> => (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
      assert.equal(await value('sabpf_kernel_dir_cache_hits_total'), 40);
      assert.equal(await value('sabpf_kernel_dir_cache_fills_total'), 3);
      assert.equal(await value('sabpf_kernel_file_cache_hits_total'), 25);
    });

    it("counts records the reader lost with the kernel's drops", async () => {
      const kernel = new FakeKernel();
      const registry = new Registry();
      const enforcer = withMetrics(kernel, registry);
      await enforcer.start();
      kernel.counterValues.eventsDropped = 5n;
      kernel.readerLost = 2n;
      await enforcer.stop();

      const metric = await registry.getSingleMetric('sabpf_kernel_events_dropped_total')?.get();
      assert.equal(metric?.values[0]?.value, 7);
    });
  });

  describe('when a slot is left without a config', () => {
    it('deletes its entries at start', async () => {
      const kernel = new FakeKernel();
      const entry = (slot: number, parent: number): [Buffer, Buffer] => {
        const key = Buffer.alloc(40);
        key.writeUInt32LE(slot, 0);
        key.writeUInt32LE(parent, 4);
        return [key, Buffer.alloc(8)];
      };
      const config = Buffer.alloc(80);
      config.writeUInt32LE(3, 0);
      kernel.setConfig(7n, config);
      kernel.updateElems('sabpf_nodes', [entry(3, 1), entry(4, 1), entry(4, 2)]);

      await started(kernel);

      assert.equal(kernel.slotEntries(3), 1);
      assert.equal(kernel.slotEntries(4), 0);
    });
  });
});
