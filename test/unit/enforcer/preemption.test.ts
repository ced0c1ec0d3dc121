import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';

import {
  parseCmdlinePreempt,
  parseConfigPreempt,
  parseDebugfsPreempt,
  preemptionProblem,
  readKernelText,
  readPreemptModel,
  type PreemptionPaths,
} from '../../../enforcer/core/preemption.js';

const PATHS: PreemptionPaths = {
  debugfs: '/sys/kernel/debug/sched/preempt',
  cmdline: '/proc/cmdline',
  configs: ['/boot/config-6.1.0-57-amd64', '/proc/config.gz'],
};

const DYNAMIC = '#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)';

/** Returns a file reader over a fixed set of files, which fails for any other path. */
function files(contents: Record<string, string>): (path: string) => string | undefined {
  return (path) => contents[path];
}

describe('preemption model', () => {
  it('reads the bracketed debugfs model', () => {
    assert.equal(parseDebugfsPreempt('none (voluntary) full\n'), 'voluntary');
    assert.equal(parseDebugfsPreempt('none voluntary (full) lazy\n'), 'full');
    assert.equal(parseDebugfsPreempt('none voluntary full\n'), 'unknown');
    assert.equal(parseDebugfsPreempt('none voluntary full (laziest)\n'), 'unknown');
  });

  it('takes the last command-line preempt=', () => {
    assert.equal(parseCmdlinePreempt('ro preempt=full quiet preempt=none'), 'none');
    assert.equal(parseCmdlinePreempt('ro quiet -- preempt=full'), undefined);
    assert.equal(parseCmdlinePreempt('ro preempt=bogus'), undefined);
    assert.equal(parseCmdlinePreempt('ro preempt=full preempt=bogus'), 'full');
    assert.equal(parseCmdlinePreempt('ro preempt="full"'), 'full');
    assert.equal(parseCmdlinePreempt('ro "preempt=full" quiet'), 'full');
  });

  it('reads the kernel config default', () => {
    assert.equal(parseConfigPreempt('CONFIG_PREEMPT_VOLUNTARY=y\nCONFIG_PREEMPT_DYNAMIC=y\n'), 'voluntary');
    assert.equal(parseConfigPreempt('CONFIG_PREEMPT=y\nCONFIG_PREEMPT_RT=y\n'), 'rt');
    assert.equal(parseConfigPreempt('# CONFIG_PREEMPT is not set\nCONFIG_PREEMPT_NONE=y\n'), 'none');
    assert.equal(parseConfigPreempt('CONFIG_PREEMPT=y\n'), 'full');
    assert.equal(parseConfigPreempt('CONFIG_PREEMPTION=y\n'), undefined);
  });

  it('trusts uname for static builds', () => {
    const none = files({});
    assert.equal(readPreemptModel('#1 SMP PREEMPT_RT Debian', none, PATHS).model, 'rt');
    assert.equal(readPreemptModel('#1 SMP PREEMPT Tue Jan 2', none, PATHS).model, 'full');
    assert.equal(readPreemptModel('#1 SMP Debian 5.10.0-46', none, PATHS).model, 'voluntary');
  });

  it('orders the sources of dynamic builds', () => {
    const all = {
      [PATHS.debugfs]: 'none voluntary (full)\n',
      [PATHS.cmdline]: 'ro preempt=none',
      '/boot/config-6.1.0-57-amd64': 'CONFIG_PREEMPT_VOLUNTARY=y\n',
    };
    assert.deepEqual(readPreemptModel(DYNAMIC, files(all), PATHS), { model: 'full', source: PATHS.debugfs });

    const noDebugfs = { ...all, [PATHS.debugfs]: undefined } as Record<string, string>;
    assert.equal(readPreemptModel(DYNAMIC, files(noDebugfs), PATHS).model, 'none');

    const onlyConfig = { '/boot/config-6.1.0-57-amd64': 'CONFIG_PREEMPT_VOLUNTARY=y\n', [PATHS.cmdline]: 'ro quiet' };
    const reading = readPreemptModel(DYNAMIC, files(onlyConfig), PATHS);
    assert.equal(reading.model, 'voluntary');
    assert.match(reading.source, /config-6\.1\.0-57-amd64/u);

    assert.equal(readPreemptModel(DYNAMIC, files({}), PATHS).model, undefined);
  });

  it('reads a gzipped config', () => {
    const data = gzipSync(Buffer.from('CONFIG_PREEMPT=y\n'));
    assert.equal(
      readKernelText('/proc/config.gz', () => data),
      'CONFIG_PREEMPT=y\n',
    );
    const missing = (): Buffer => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    };
    assert.equal(readKernelText('/boot/config-x', missing), undefined);
  });

  it('rejects all but none and voluntary', () => {
    assert.equal(preemptionProblem({ model: 'none', source: 'x' }, PATHS), undefined);
    assert.equal(preemptionProblem({ model: 'voluntary', source: 'x' }, PATHS), undefined);
    for (const model of ['full', 'lazy'] as const) {
      assert.match(
        preemptionProblem({ model, source: 'preempt= in /proc/cmdline' }, PATHS) ?? '',
        new RegExp(`runs with ${model} preemption \\(preempt= in /proc/cmdline\\).*with preempt=voluntary`, 'u'),
      );
    }
    assert.match(preemptionProblem({ model: 'rt', source: 'uname -v' }, PATHS) ?? '', /real-time \(PREEMPT_RT\).*without PREEMPT_RT/u);
    assert.match(preemptionProblem({ model: 'full', source: 'uname -v' }, PATHS) ?? '', /older than its uname -v shows, mount debugfs/u);
    assert.match(preemptionProblem({ model: undefined, source: '' }, PATHS) ?? '', /cannot tell.*gave a model; mount debugfs/u);
  });

  it('rejects a debugfs model it does not know', () => {
    const reading = readPreemptModel(DYNAMIC, files({ [PATHS.debugfs]: 'none voluntary (laziest)\n' }), PATHS);
    assert.equal(reading.model, undefined);
    assert.match(preemptionProblem(reading, PATHS) ?? '', /cannot tell .*names no known model: none voluntary \(laziest\)/u);
  });

  it('reads old dynamic builds through their config', () => {
    const oldDynamic = '#1 SMP PREEMPT Debian 5.15.0';
    const config = { '/boot/config-6.1.0-57-amd64': 'CONFIG_PREEMPT_VOLUNTARY=y\nCONFIG_PREEMPT_DYNAMIC=y\n' };
    assert.equal(readPreemptModel(oldDynamic, files(config), PATHS).model, 'voluntary');
    assert.equal(readPreemptModel(oldDynamic, files({ ...config, [PATHS.cmdline]: 'preempt=full' }), PATHS).model, 'full');
    assert.equal(readPreemptModel(oldDynamic, files({}), PATHS).model, 'full');
  });
});
