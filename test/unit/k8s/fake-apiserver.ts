// A scripted API server on 127.0.0.1 for list/watch recovery tests. Lists
// return a mutable item set, and each watch request runs the next scripted
// behaviour (send events, respond 410, hang, cut the connection).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { KubeConfig } from '@kubernetes/client-node';

import { createKubeApi, type KubeApi } from '../../../enforcer/k8s/api.js';
import type { KubeObject } from '../../../enforcer/k8s/objects.js';

export type WatchScript = (response: ServerResponse, query: URLSearchParams) => void;

export interface SeenRequest {
  watch: boolean;
  query: URLSearchParams;
}

export class FakeApiServer {
  items: KubeObject[] = [];
  resourceVersion = '100';
  /** Lists that fail with HTTP 500 before one succeeds. */
  failLists = 0;
  /** While true, every connection is reset at once, as an unreachable server. */
  down = false;
  readonly watchScripts: WatchScript[] = [];
  readonly seen: SeenRequest[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => this.handle(request, response));
    this.server.on('connection', (socket) => {
      if (this.down) {
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** Cuts every open connection (watches included). */
  cutConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  api(): KubeApi {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'tester', token: 'test-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'tester' }],
      currentContext: 'fake',
    });
    return createKubeApi(config);
  }

  watches(): SeenRequest[] {
    return this.seen.filter((s) => s.watch);
  }

  lists(): SeenRequest[] {
    return this.seen.filter((s) => !s.watch);
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const watch = url.searchParams.get('watch') === 'true';
    this.seen.push({ watch, query: url.searchParams });
    if (!watch) {
      if (this.failLists > 0) {
        this.failLists--;
        response.writeHead(500, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'InternalError', message: 'etcd is unhappy', code: 500 }));
        return;
      }
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(
        JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: this.resourceVersion }, items: this.items }),
      );
      return;
    }
    const script = this.watchScripts.shift() ?? hang;
    script(response, url.searchParams);
  }
}

export function pod(name: string, resourceVersion: string): KubeObject {
  return { metadata: { name, namespace: 'shop', uid: `uid-${name}`, resourceVersion, labels: { app: 'web' } } };
}

/** Sends headers and then nothing, like a stalled connection. */
export const hang: WatchScript = (response) => {
  response.writeHead(200, { 'Content-Type': 'application/json' });
  response.flushHeaders();
};

/** Sends these events, then keeps the stream open or ends it. */
export function events(list: { type: string; object: unknown }[], end: 'end' | 'open' = 'open'): WatchScript {
  return (response) => {
    response.writeHead(200, { 'Content-Type': 'application/json' });
    for (const event of list) response.write(`${JSON.stringify(event)}\n`);
    if (end === 'end') response.end();
  };
}

export const expiredEvent = {
  type: 'ERROR',
  object: {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'too old resource version: 1 (150)',
    reason: 'Expired',
    code: 410,
  },
};

export const httpGone: WatchScript = (response) => {
  response.writeHead(410, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Gone', message: 'too old resource version', code: 410 }));
};
