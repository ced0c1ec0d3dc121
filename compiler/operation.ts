// Parsing of operation strings, as `sabpf explain --op` takes them:
//   open:/etc/shadow:read    exec:/usr/bin/curl
//   connect:tcp:10.0.0.1:443 connect:tcp:[::1]:443    bind:udp:0.0.0.0:53
//   raw-socket               packet-socket

import type { Operation } from './decide.js';
import { parseAddress } from './net.js';
import { normalizePattern } from './paths.js';

export type OperationResult = { ok: true; operations: Operation[] } | { ok: false; problem: string };

const SYNTAX = 'use open:PATH[:read|write|readwrite], exec:PATH, connect|bind:tcp|udp:ADDRESS:PORT, raw-socket or packet-socket';

/**
 * Parses an operation. open:PATH:readwrite gives two operations (read and
 * write), as the kernel checks an open for both.
 */
export function parseOperation(text: string, executable?: string): OperationResult {
  const colon = text.indexOf(':');
  const kind = colon === -1 ? text : text.slice(0, colon);
  const rest = colon === -1 ? '' : text.slice(colon + 1);

  switch (kind) {
    case 'raw-socket':
    case 'packet-socket':
      return { ok: true, operations: [{ kind }] };
    case 'open': {
      let path = rest;
      let accesses: ('read' | 'write')[] = ['read'];
      const match = /^(.*):(read|write|readwrite)$/u.exec(rest);
      if (match) {
        path = match[1] as string;
        accesses = match[2] === 'readwrite' ? ['read', 'write'] : [match[2] as 'read' | 'write'];
      }
      const normalized = checkPath(path);
      if (typeof normalized !== 'string') return normalized;
      return {
        ok: true,
        operations: accesses.map((access) => ({ kind: 'open', path: normalized, access, ...(executable ? { executable } : {}) })),
      };
    }
    case 'exec': {
      const normalized = checkPath(rest);
      if (typeof normalized !== 'string') return normalized;
      return { ok: true, operations: [{ kind: 'exec', path: normalized, ...(executable ? { executable } : {}) }] };
    }
    case 'connect':
    case 'bind': {
      const match = /^(tcp|udp):(\[[^\]]+\]|[^:]+):(\d{1,5})$/u.exec(rest);
      if (!match) return { ok: false, problem: `invalid ${kind} operation "${text}"; ${SYNTAX}` };
      const addressText = (match[2] as string).replace(/^\[|\]$/gu, '');
      const address = parseAddress(addressText);
      if (!address) return { ok: false, problem: `invalid IP address "${addressText}" in "${text}"` };
      const port = Number(match[3]);
      if (port > 65535) return { ok: false, problem: `invalid port ${port} in "${text}"; use 0 to 65535` };
      return { ok: true, operations: [{ kind, protocol: match[1] as 'tcp' | 'udp', address, port }] };
    }
    default:
      return { ok: false, problem: `unknown operation "${text}"; ${SYNTAX}` };
  }
}

function checkPath(path: string): string | { ok: false; problem: string } {
  const result = normalizePattern(path, false);
  if (!result.ok) return { ok: false, problem: `invalid path "${path}": ${result.problem}; ${result.fix}` };
  return result.pattern.path;
}
