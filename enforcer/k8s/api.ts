// A small client for the API server: JSON requests and watch streams over
// node:https, with the credentials and CA of a kubeconfig (or the in-cluster
// service account) applied by @kubernetes/client-node's KubeConfig.
//
// Why not the library's Watch and ListWatch: its watch cannot be aborted
// before the response headers arrive (a hung connect hangs the informer), it
// has no timeout, ignores malformed lines, and ListWatch stops for good on the
// first error. Here every request is abortable at any time and every error
// reaches the caller, which owns the retry policy (reflector.ts).

import type { Agent, IncomingMessage, RequestOptions } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

import { KubeConfig } from '@kubernetes/client-node';

export type Query = Record<string, string | number | boolean | undefined>;

export interface ApiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the server URL, such as /api/v1/namespaces/shop/events. */
  path: string;
  query?: Query;
  body?: unknown;
  /** Content type of the body; PATCH defaults to a JSON merge patch. */
  contentType?: string;
  signal?: AbortSignal;
  /** Default 30 s. */
  timeoutMs?: number;
}

/** One line of a watch stream. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, unknown>;
}

export interface KubeApi {
  /** Sends a request and parses the JSON response. Throws ApiError on a non-2xx status. */
  request<T = unknown>(request: ApiRequest): Promise<T>;
  /**
   * Opens a watch and calls `onEvent` for each line until the server ends the
   * stream (resolves) or an error or abort ends it (rejects). `onOpen` runs
   * once the server responded 200, before the first event.
   */
  watch(path: string, query: Query, onEvent: (event: WatchEvent) => void, signal: AbortSignal, onOpen?: () => void): Promise<void>;
}

/** A non-2xx response of the API server, with the reason of its Status body. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** metav1.Status reason, such as Conflict, NotFound, Expired, Gone. */
    readonly reason: string | undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isApiError(err: unknown, status?: number): err is ApiError {
  return err instanceof ApiError && (status === undefined || err.status === status);
}

const defaultTimeoutMs = 30_000;

/**
 * Loads credentials: the given kubeconfig file; else, inside a pod, the
 * service account; else $KUBECONFIG or ~/.kube/config.
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const config = new KubeConfig();
  try {
    if (path !== undefined) config.loadFromFile(path);
    else config.loadFromDefault();
  } catch (err) {
    throw new Error(
      `failed to load kubeconfig ${path ?? '(in-cluster or $KUBECONFIG)'}: ${(err as Error).message}; pass --kubeconfig FILE or run in a pod with a service account`,
      { cause: err },
    );
  }
  if (!config.getCurrentCluster()) {
    throw new Error(`failed to load kubeconfig ${path ?? '(default)'}: it names no current cluster; set current-context`);
  }
  return config;
}

export function createKubeApi(config: KubeConfig): KubeApi {
  return new HttpKubeApi(config);
}

class HttpKubeApi implements KubeApi {
  private readonly server: string;
  // KubeConfig builds a new agent on every call; one is kept so that TLS
  // settings are computed once and idle sockets are shared.
  private agent: Agent | undefined;

  constructor(private readonly config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('failed to create API client: the kubeconfig names no current cluster');
    this.server = cluster.server.replace(/\/+$/u, '');
  }

  async request<T>(request: ApiRequest): Promise<T> {
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    const contentType = request.contentType ?? (request.method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const response = await this.open(request.method, request.path, request.query ?? {}, headers, body, request.signal, request.timeoutMs);
    const text = await readAll(response);
    const status = response.statusCode ?? 0;
    if (status < 200 || status > 299) throw apiError(request.method, request.path, status, text);
    return (text.length === 0 ? undefined : JSON.parse(text)) as T;
  }

  async watch(path: string, query: Query, onEvent: (event: WatchEvent) => void, signal: AbortSignal, onOpen?: () => void): Promise<void> {
    // No timeout: a watch is silent for long stretches by design. The caller
    // detects a stalled stream and aborts it through `signal`.
    const response = await this.open('GET', path, { ...query, watch: true }, { Accept: 'application/json' }, undefined, signal, 0);
    const status = response.statusCode ?? 0;
    if (status !== 200) {
      throw apiError('WATCH', path, status, await readAll(response));
    }
    onOpen?.();
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffered += chunk;
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
          if (line.length === 0) continue;
          let event: WatchEvent;
          try {
            event = JSON.parse(line) as WatchEvent;
          } catch {
            // A cut or garbled line means the stream cannot be trusted from here on.
            response.destroy(new Error(`failed to parse a watch event of ${path}: ${line.slice(0, 120)}`));
            return;
          }
          onEvent(event);
        }
      });
      const cut = (): Error =>
        new Error(signal.aborted ? `watch of ${path} aborted` : `watch of ${path} was cut before the server ended it`);
      response.once('end', () => resolve());
      response.once('error', (err) => reject(signal.aborted ? cut() : err));
      response.once('aborted', () => reject(cut()));
      response.once('close', () => {
        if (!response.complete) reject(cut());
      });
    });
  }

  private async open(
    method: string,
    path: string,
    query: Query,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
    timeoutMs = defaultTimeoutMs,
  ): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }

    const options: RequestOptions & { agent?: Agent } = { method, headers: { ...headers } };
    // Adds Authorization (token, exec plugin, ...) and the TLS material.
    await this.config.applyToHTTPSOptions(options as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
    this.agent ??= options.agent;
    options.agent = this.agent;
    signal?.throwIfAborted();

    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { ...options, ...(signal ? { signal } : {}) }, resolve);
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      }
      req.once('error', (err) => reject(new Error(`failed to ${method} ${url.pathname}: ${err.message}`, { cause: err })));
      if (body !== undefined) req.write(body);
      req.end();
    });
  }
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      text += chunk;
    });
    response.once('end', () => resolve(text));
    response.once('error', reject);
  });
}

function apiError(method: string, path: string, status: number, text: string): ApiError {
  let reason: string | undefined;
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { reason?: string; message?: string };
    reason = parsed.reason;
    if (parsed.message) message = parsed.message;
  } catch {
    // Not a Status object (a proxy's HTML page, say): the raw text is kept.
  }
  return new ApiError(`failed to ${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`, status, reason);
}
