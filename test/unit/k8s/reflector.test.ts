import { strict as assert } from 'node:assert';

import { Reflector } from '../../../enforcer/k8s/reflector.js';
import type { KubeObject } from '../../../enforcer/k8s/objects.js';
import { capturingLogger, quietLogger } from './helpers.js';
import { events, expiredEvent, FakeApiServer, hang, httpGone, pod } from './fake-apiserver.js';

type Seen = { op: 'upsert' | 'delete'; name: string; resourceVersion?: string };

function recorder() {
  const seen: Seen[] = [];
  return {
    seen,
    handler: {
      upsert: (object: KubeObject): void => {
        seen.push({ op: 'upsert', name: object.metadata?.name ?? '', resourceVersion: object.metadata?.resourceVersion });
      },
      delete: (object: KubeObject): void => {
        seen.push({ op: 'delete', name: object.metadata?.name ?? '' });
      },
    },
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('k8s reflector against a scripted API server', function () {
  this.timeout(20_000);
  let server: FakeApiServer;
  let reflector: Reflector<KubeObject> | undefined;

  beforeEach(async function () {
    server = new FakeApiServer();
    await server.start();
  });

  afterEach(async function () {
    await reflector?.stop();
    reflector = undefined;
    await server.stop();
  });

  function start(handler: ReturnType<typeof recorder>['handler'], options: { stallTimeoutMs?: number; logger?: typeof quietLogger } = {}) {
    reflector = new Reflector<KubeObject>({
      resource: 'pods',
      api: server.api(),
      path: '/api/v1/pods',
      fieldSelector: 'spec.nodeName=node-a',
      handler,
      logger: options.logger ?? quietLogger,
      backoff: { initialMs: 20, maxMs: 100 },
      stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
      watchTimeoutSeconds: () => 300,
    });
    reflector.start();
    return reflector;
  }

  it('retries a failing initial list with backoff, without an unhandled rejection', async function () {
    const { logger, lines } = capturingLogger();
    server.items = [pod('web-1', '90')];
    server.failLists = 3;
    const { seen, handler } = recorder();
    const r = start(handler, { logger });
    assert.equal(await r.whenSynced(), true);
    assert.equal(server.lists().length, 4);
    assert.deepEqual(seen, [{ op: 'upsert', name: 'web-1', resourceVersion: '90' }]);
    const retries = lines.filter((l) => l.level === 40 && String(l.msg).startsWith('failed to list pods; retrying in'));
    assert.equal(retries.length, 3, 'each retry is logged');
    assert.deepEqual(
      retries.map((l) => l.attempt),
      [1, 2, 3],
    );
    assert.match(String(retries[0]?.err), /HTTP 500 InternalError: etcd is unhappy/);
    assert.equal(server.lists()[0]?.query.get('fieldSelector'), 'spec.nodeName=node-a');
  });

  it('asks for bookmarks and resumes from the last bookmark after a cut', async function () {
    server.items = [pod('web-1', '90')];
    server.watchScripts.push(
      events([
        { type: 'MODIFIED', object: pod('web-1', '101') },
        { type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: '120' } } },
      ]),
    );
    const { seen, handler } = recorder();
    const r = start(handler);
    await until(() => r.lastResourceVersion === '120', 'the bookmark');
    const first = server.watches()[0]?.query;
    assert.equal(first?.get('allowWatchBookmarks'), 'true');
    assert.equal(first?.get('resourceVersion'), '100');
    assert.equal(first?.get('timeoutSeconds'), '300');

    server.watchScripts.push(hang);
    server.cutConnections();
    await until(() => server.watches().length === 2, 'the second watch');
    assert.equal(server.watches()[1]?.query.get('resourceVersion'), '120', 'resumed where it left off');
    assert.equal(server.lists().length, 1, 'no list after a cut');
    assert.deepEqual(
      seen.map((s) => s.op),
      ['upsert', 'upsert'],
    );
  });

  it('relists on 410 ERROR event', async function () {
    server.items = [pod('web-1', '90'), pod('web-2', '91')];
    server.watchScripts.push(events([{ type: 'ADDED', object: pod('web-3', '101') }, expiredEvent]));
    const { seen, handler } = recorder();
    const r = start(handler);
    await r.whenSynced();
    // web-2 was deleted while the watch was behind; web-4 appeared.
    server.items = [pod('web-1', '90'), pod('web-3', '101'), pod('web-4', '140')];
    server.resourceVersion = '150';
    await until(() => server.lists().length === 2 && server.watches().length === 2, 'the relist');
    await until(() => seen.length === 5, 'the relist diff');
    assert.deepEqual(seen, [
      { op: 'upsert', name: 'web-1', resourceVersion: '90' },
      { op: 'upsert', name: 'web-2', resourceVersion: '91' },
      { op: 'upsert', name: 'web-3', resourceVersion: '101' },
      { op: 'upsert', name: 'web-4', resourceVersion: '140' },
      { op: 'delete', name: 'web-2' },
    ]);
    assert.equal(server.watches()[1]?.query.get('resourceVersion'), '150');
  });

  it('lists again on an HTTP 410 answer to the watch', async function () {
    server.items = [pod('web-1', '90')];
    server.watchScripts.push(httpGone);
    const { handler } = recorder();
    start(handler);
    await until(() => server.lists().length === 2, 'the relist');
  });

  it('reopens a watch that sends nothing within the stall timeout', async function () {
    const { logger, lines } = capturingLogger();
    server.items = [pod('web-1', '90')];
    server.watchScripts.push(hang, events([{ type: 'ADDED', object: pod('web-2', '101') }]));
    const { seen, handler } = recorder();
    const started = Date.now();
    start(handler, { stallTimeoutMs: 300, logger });
    await until(() => seen.length === 2, 'the event on the reopened watch');
    assert.ok(Date.now() - started >= 300, 'not before the stall timeout');
    assert.equal(server.watches().length, 2);
    assert.equal(server.lists().length, 1);
    assert.ok(lines.some((l) => l.level === 40 && String(l.msg).includes('watch sent no event or bookmark for 300 ms')));
  });

  it('keeps every object while the API server is unreachable', async function () {
    server.items = [pod('web-1', '90'), pod('web-2', '91')];
    server.watchScripts.push(events([]));
    const { seen, handler } = recorder();
    const r = start(handler);
    await r.whenSynced();
    await until(() => server.watches().length === 1, 'the watch');

    server.down = true;
    server.cutConnections();
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(seen.filter((s) => s.op === 'delete').length, 0);
    assert.equal(r.list().length, 2);

    // Back, but the watch window moved on: a relist, which still has both.
    server.watchScripts.push(httpGone);
    server.down = false;
    await until(() => server.lists().length === 2, 'the relist after recovery', 8000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(seen.filter((s) => s.op === 'delete').length, 0);
    assert.equal(r.list().length, 2);
  });

  it('freezes cached objects and survives a handler that throws', async function () {
    server.items = [pod('web-1', '90')];
    server.watchScripts.push(events([{ type: 'ADDED', object: pod('web-2', '101') }]));
    let calls = 0;
    const r = start({
      upsert: (object) => {
        calls++;
        if (object.metadata?.name === 'web-1') throw new Error('handler bug');
      },
      delete: () => undefined,
    });
    await until(() => calls === 2, 'both upserts');
    const cached = r.get('shop/web-1') as KubeObject;
    assert.throws(() => {
      (cached.metadata as { labels: Record<string, string> }).labels.app = 'changed';
    }, TypeError);
    assert.equal(r.get('shop/web-1')?.metadata?.labels?.app, 'web');
  });

  it('stops while the list is still failing, and whenSynced says so', async function () {
    server.failLists = 1000;
    const { handler } = recorder();
    const r = start(handler);
    await until(() => server.lists().length >= 2, 'a retry');
    const synced = r.whenSynced();
    await r.stop();
    assert.equal(await synced, false);
  });
});
