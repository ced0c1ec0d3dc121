// Polls a server's health endpoint until it reports ready. It fails fast,
// quoting the server's log, when the process exits first.

import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

import type { ServerProcess } from './server-process.js';

// Probe result: true when ready, otherwise the reason (quoted on timeout).
export type ReadinessProbe = () => Promise<true | string>;

const pollIntervalMs = 250;
const probeTimeoutMs = 2_000;

export async function waitUntilReady(server: ServerProcess, endpoint: string, probe: ReadinessProbe, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.hasExited()) {
      const exit = await server.exited;
      throw new Error(
        `failed to start ${server.name}: it exited (code ${String(exit.code)}, signal ${String(exit.signal)}) ` +
          `before ${endpoint} was ready; last lines of ${server.logPath}:\n${server.logTail()}`,
      );
    }

    const result = await probe();
    if (result === true) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `failed to start ${server.name}: ${endpoint} not ready after ${timeoutMs / 1000}s ` +
          `(last probe result: ${result}); last lines of ${server.logPath}:\n${server.logTail()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
}

// etcd returns {"health":"true"} once it has a leader.
export function etcdHealthProbe(clientUrl: string): ReadinessProbe {
  return async () => {
    const response = await fetchText(() => httpGet(`${clientUrl}/health`, { timeout: probeTimeoutMs }));
    if (typeof response === 'string') return response;
    if (response.status === 200 && response.body.includes('"health":"true"')) return true;
    return `HTTP ${response.status}: ${response.body.trim()}`;
  };
}

// /readyz turns 200 only after every post-start hook has run (RBAC bootstrap
// roles included), which is what tests that create objects depend on.
export function apiServerReadyzProbe(apiServerUrl: string, caCert: string, token: string): ReadinessProbe {
  return async () => {
    const response = await fetchText(() =>
      httpsGet(`${apiServerUrl}/readyz`, {
        ca: caCert,
        headers: { Authorization: `Bearer ${token}` },
        timeout: probeTimeoutMs,
      }),
    );
    if (typeof response === 'string') return response;
    if (response.status === 200) return true;
    return `HTTP ${response.status}: ${lastLines(response.body, 5)}`;
  };
}

interface TextResponse {
  status: number;
  body: string;
}

// Resolves with the response, or with the connection error as a string,
// because a refused connection is normal while a server starts.
function fetchText(request: () => ReturnType<typeof httpGet>): Promise<TextResponse | string> {
  return new Promise((resolve) => {
    const req = request();
    req.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', (error) => resolve(error.message));
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${probeTimeoutMs}ms`)));
    req.on('error', (error) => resolve(error.message));
  });
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join(' | ');
}
