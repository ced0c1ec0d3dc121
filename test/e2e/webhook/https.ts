// Plain HTTPS requests to the webhook under test.

import { request } from 'node:https';

export interface HttpsReply {
  status: number;
  body: string;
}

export function httpsRequest(url: string, ca: string, method: string, body?: string): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> =
      body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    const req = request(url, { method, ca, headers, timeout: 10_000 }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after 10s waiting for ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls until check returns true, or throws with the last reason after timeoutMs. */
export async function eventually(what: string, check: () => Promise<true | string>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let reason = 'not checked yet';
  while (Date.now() < deadline) {
    const result = await check();
    if (result === true) return;
    reason = result;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting until ${what}; last result: ${reason}`);
}
