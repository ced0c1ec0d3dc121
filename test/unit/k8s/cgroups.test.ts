import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  candidatePaths,
  CgroupResolver,
  parseContainerId,
  type CgroupLayout,
  type ContainerLocation,
  type Runtime,
} from '../../../enforcer/k8s/cgroups.js';
import type { QosClass } from '../../../enforcer/k8s/objects.js';

const uid = '6f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8';
const uidUnderscored = '6f1c2a3b_4d5e_6f70_8192_a3b4c5d6e7f8';
const id = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

function location(runtime: Runtime, qosClass: QosClass | undefined): ContainerLocation {
  return { runtime, id, podUid: uid, qosClass, containerName: 'nginx' };
}

// Every runtime × driver × QoS class, written out by hand from the kubelet's
// and the runtimes' naming, so a change in cgroups.ts cannot also change the expectation.
const table: { runtime: Runtime; layout: CgroupLayout; qos: QosClass; path: string }[] = [
  {
    runtime: 'containerd',
    layout: 'systemd',
    qos: 'Guaranteed',
    path: `kubepods.slice/kubepods-pod${uidUnderscored}.slice/cri-containerd-${id}.scope`,
  },
  {
    runtime: 'containerd',
    layout: 'systemd',
    qos: 'Burstable',
    path: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uidUnderscored}.slice/cri-containerd-${id}.scope`,
  },
  {
    runtime: 'containerd',
    layout: 'systemd',
    qos: 'BestEffort',
    path: `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uidUnderscored}.slice/cri-containerd-${id}.scope`,
  },
  { runtime: 'cri-o', layout: 'systemd', qos: 'Guaranteed', path: `kubepods.slice/kubepods-pod${uidUnderscored}.slice/crio-${id}.scope` },
  {
    runtime: 'cri-o',
    layout: 'systemd',
    qos: 'Burstable',
    path: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uidUnderscored}.slice/crio-${id}.scope`,
  },
  {
    runtime: 'cri-o',
    layout: 'systemd',
    qos: 'BestEffort',
    path: `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uidUnderscored}.slice/crio-${id}.scope`,
  },
  {
    runtime: 'docker',
    layout: 'systemd',
    qos: 'Burstable',
    path: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uidUnderscored}.slice/docker-${id}.scope`,
  },
  { runtime: 'containerd', layout: 'cgroupfs', qos: 'Guaranteed', path: `kubepods/pod${uid}/${id}` },
  { runtime: 'containerd', layout: 'cgroupfs', qos: 'Burstable', path: `kubepods/burstable/pod${uid}/${id}` },
  { runtime: 'containerd', layout: 'cgroupfs', qos: 'BestEffort', path: `kubepods/besteffort/pod${uid}/${id}` },
  { runtime: 'cri-o', layout: 'cgroupfs', qos: 'Guaranteed', path: `kubepods/pod${uid}/crio-${id}` },
  { runtime: 'cri-o', layout: 'cgroupfs', qos: 'Burstable', path: `kubepods/burstable/pod${uid}/crio-${id}` },
  { runtime: 'cri-o', layout: 'cgroupfs', qos: 'BestEffort', path: `kubepods/besteffort/pod${uid}/crio-${id}` },
  { runtime: 'docker', layout: 'cgroupfs', qos: 'BestEffort', path: `kubepods/besteffort/pod${uid}/${id}` },
  { runtime: 'containerd', layout: 'flat', qos: 'Burstable', path: `sabpf-test/${uid}/nginx` },
  { runtime: 'test', layout: 'flat', qos: 'BestEffort', path: `sabpf-test/${uid}/nginx` },
];

describe('k8s cgroup paths', function () {
  for (const row of table) {
    it(`${row.runtime} ${row.layout} ${row.qos}`, function () {
      assert.deepEqual(candidatePaths(location(row.runtime, row.qos), row.layout), [row.path]);
    });
  }

  it('tries every QoS class when qosClass is missing', function () {
    assert.deepEqual(candidatePaths(location('containerd', undefined), 'cgroupfs'), [
      `kubepods/pod${uid}/${id}`,
      `kubepods/burstable/pod${uid}/${id}`,
      `kubepods/besteffort/pod${uid}/${id}`,
    ]);
  });

  it('gives test:// containers no kubelet layout', function () {
    assert.deepEqual(candidatePaths(location('test', 'Burstable'), 'systemd'), []);
    assert.deepEqual(candidatePaths(location('test', 'Burstable'), 'cgroupfs'), []);
  });

  it('parses containerID prefixes', function () {
    assert.deepEqual(parseContainerId(`containerd://${id}`), { runtime: 'containerd', id });
    assert.deepEqual(parseContainerId(`cri-o://${id}`), { runtime: 'cri-o', id });
    assert.deepEqual(parseContainerId(`docker://${id}`), { runtime: 'docker', id });
    assert.deepEqual(parseContainerId('test://abc'), { runtime: 'test', id: 'abc' });
  });

  it('rejects unknown runtimes and path tricks', function () {
    assert.throws(() => parseContainerId(`rkt://${id}`), /failed to parse containerID "rkt:\/\/0123.*containerd, cri-o or docker/);
    assert.throws(() => parseContainerId('containerd://../../etc'), /failed to parse containerID/);
    assert.throws(() => parseContainerId(id), /expected <runtime>:\/\/<id>/);
  });
});

describe('k8s cgroup resolver', function () {
  let root = '';

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), 'sabpf-cgroups-'));
  });

  afterEach(function () {
    rmSync(root, { recursive: true, force: true });
  });

  for (const layout of ['systemd', 'cgroupfs'] as const) {
    for (const runtime of ['containerd', 'cri-o'] as const) {
      for (const qos of ['Guaranteed', 'Burstable', 'BestEffort'] as const) {
        it(`auto finds ${runtime} ${layout} ${qos}`, function () {
          const [relative] = candidatePaths(location(runtime, qos), layout) as [string];
          mkdirSync(join(root, relative), { recursive: true });
          assert.equal(new CgroupResolver(root, 'auto').resolve(location(runtime, qos)), join(root, relative));
          assert.equal(new CgroupResolver(root, layout).resolve(location(runtime, qos)), join(root, relative));
        });
      }
    }
  }

  it('finds the QoS class on disk when status has none', function () {
    const relative = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uidUnderscored}.slice/cri-containerd-${id}.scope`;
    mkdirSync(join(root, relative), { recursive: true });
    assert.equal(new CgroupResolver(root, 'auto').resolve(location('containerd', undefined)), join(root, relative));
  });

  it('finds test containers in the flat layout', function () {
    mkdirSync(join(root, 'sabpf-test', uid, 'nginx'), { recursive: true });
    assert.equal(new CgroupResolver(root, 'flat').resolve(location('test', 'BestEffort')), join(root, 'sabpf-test', uid, 'nginx'));
    assert.equal(new CgroupResolver(root, 'auto').resolve(location('test', 'BestEffort')), join(root, 'sabpf-test', uid, 'nginx'));
  });

  it('does not look outside the chosen layout', function () {
    mkdirSync(join(root, `kubepods/burstable/pod${uid}/${id}`), { recursive: true });
    assert.throws(() => new CgroupResolver(root, 'systemd').resolve(location('containerd', 'Burstable')), /failed to find the cgroup/);
  });

  it('names every tried path when none exists', function () {
    const resolver = new CgroupResolver(root, 'auto');
    assert.throws(
      () => resolver.resolve(location('cri-o', 'Burstable')),
      (err: Error) => {
        assert.match(err.message, /^failed to find the cgroup of container nginx \(cri-o:\/\/0123/);
        assert.ok(
          err.message.includes(
            join(root, `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uidUnderscored}.slice/crio-${id}.scope`),
          ),
        );
        assert.ok(err.message.includes(join(root, `kubepods/burstable/pod${uid}/crio-${id}`)));
        assert.ok(err.message.includes(join(root, `sabpf-test/${uid}/nginx`)));
        assert.match(err.message, /--cgroup-root .* --cgroup-layout/);
        return true;
      },
    );
  });

  it('ignores a file where a cgroup directory should be', function () {
    mkdirSync(join(root, `kubepods/burstable/pod${uid}`), { recursive: true });
    writeFileSync(join(root, `kubepods/burstable/pod${uid}/${id}`), '');
    assert.throws(() => new CgroupResolver(root, 'cgroupfs').resolve(location('containerd', 'Burstable')), /tried/);
  });

  it('rejects an unknown layout', function () {
    assert.throws(() => new CgroupResolver(root, 'hybrid' as never), /unknown layout "hybrid"; use auto, systemd, cgroupfs, flat/);
  });
});
