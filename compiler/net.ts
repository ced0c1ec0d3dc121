// Address and CIDR handling for network rules. Every address is kept as 16
// bytes: IPv6 as is, IPv4 in its IPv4-mapped form ::ffff:a.b.c.d, which is
// also how the BPF programs look up AF_INET and mapped AF_INET6 addresses.

import { isIPv4, isIPv6 } from 'node:net';
import type { Cidr, PortRange } from './types.js';

export type CidrResult = { ok: true; cidr: Cidr } | { ok: false; problem: string; fix: string };

const IPV4_MAPPED_PREFIX = 96;

/** Parses "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128). */
export function parseCidr(text: string): CidrResult {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const lengthText = slash === -1 ? undefined : text.slice(slash + 1);

  const v4 = isIPv4(addressText);
  if (!v4 && !isIPv6(addressText)) {
    return {
      ok: false,
      problem: 'invalid IP address in CIDR',
      fix: 'write an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/8',
    };
  }
  const maxLength = v4 ? 32 : 128;
  let length = maxLength;
  if (lengthText !== undefined) {
    if (!/^\d{1,3}$/u.test(lengthText) || Number(lengthText) > maxLength) {
      return {
        ok: false,
        problem: `invalid prefix length "${lengthText}"`,
        fix: `use a prefix length from 0 to ${maxLength} for an ${v4 ? 'IPv4' : 'IPv6'} address`,
      };
    }
    length = Number(lengthText);
  }

  const address = v4 ? mapIPv4(parseIPv4(addressText)) : parseIPv6(addressText);
  const prefixLength = v4 ? IPV4_MAPPED_PREFIX + length : length;
  if (!hostBitsZero(address, prefixLength)) {
    const network = formatAddress(maskAddress(address, prefixLength));
    return {
      ok: false,
      problem: 'CIDR has host bits set',
      fix: `write the network address: ${network}/${length}`,
    };
  }
  return { ok: true, cidr: { text, address, prefixLength } };
}

/** The CIDR that matches every IPv4 and IPv6 address. */
export const ANY_ADDRESS: Cidr = { text: '::/0', address: new Uint8Array(16), prefixLength: 0 };

export function parseIPv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

export function mapIPv4(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

/** Parses an IPv6 address already checked by net.isIPv6 (so well formed). */
export function parseIPv6(text: string): Uint8Array {
  const zone = text.indexOf('%');
  const plain = zone === -1 ? text : text.slice(0, zone);
  const groups: number[] = [];
  const [head = '', tail] = plain.split('::');
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const v4 = parseIPv4(piece);
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const headGroups = parse(head);
  const tailGroups = tail === undefined ? [] : parse(tail);
  groups.push(...headGroups);
  for (let i = headGroups.length + tailGroups.length; i < 8; i++) groups.push(0);
  groups.push(...tailGroups);
  const out = new Uint8Array(16);
  groups.slice(0, 8).forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** Parses any IP address into the 16-byte form, or returns undefined. */
export function parseAddress(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return mapIPv4(parseIPv4(text));
  if (isIPv6(text)) return parseIPv6(text);
  return undefined;
}

/** 0.0.0.0 in its IPv4-mapped form, ::ffff:0.0.0.0. */
export const IPV4_ANY: Uint8Array = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);
const LOOPBACK4 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
const LOOPBACK6 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/**
 * Returns the other addresses an operation on the unspecified address
 * reaches, which the BPF programs judge too (net.bpf.c). A connect to 0.0.0.0
 * also reaches 127.0.0.1, and one to :: reaches ::1 and 127.0.0.1. A bind to
 * :: also takes 0.0.0.0, unless the socket set IPV6_V6ONLY.
 */
export function alsoAddresses(kind: 'connect' | 'bind', address: Uint8Array, v6only = false): Uint8Array[] {
  const mapped = isIPv4Mapped(address);
  if (address.subarray(mapped ? 12 : 0).some((byte) => byte !== 0)) return [];
  if (kind === 'connect') return mapped ? [LOOPBACK4] : [LOOPBACK4, LOOPBACK6];
  return mapped || v6only ? [] : [IPV4_ANY];
}

export function isIPv4Mapped(address: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (address[i] !== 0) return false;
  return address[10] === 0xff && address[11] === 0xff;
}

/** Formats a 16-byte address: dotted quad for IPv4-mapped, else compressed IPv6. */
export function formatAddress(address: Uint8Array): string {
  if (isIPv4Mapped(address)) return Array.from(address.subarray(12)).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((address[i] ?? 0) << 8) | (address[i + 1] ?? 0));
  // Compress the longest run of zero groups (RFC 5952).
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function maskAddress(address: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - 8 * i));
    out[i] = (address[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function hostBitsZero(address: Uint8Array, prefixLength: number): boolean {
  const masked = maskAddress(address, prefixLength);
  return masked.every((byte, i) => byte === address[i]);
}

/** Tells whether CIDR a contains CIDR b (or equals it). */
export function cidrContains(a: Cidr, b: Cidr): boolean {
  if (a.prefixLength > b.prefixLength) return false;
  const masked = maskAddress(b.address, a.prefixLength);
  return masked.every((byte, i) => byte === a.address[i]);
}

/** Tells whether an address lies in a CIDR; allocates nothing, as the webhook calls it per request. */
export function cidrMatches(cidr: Cidr, address: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, cidr.prefixLength - 8 * i));
    if (bits === 0) return true;
    const mask = (0xff << (8 - bits)) & 0xff;
    if (((address[i] ?? 0) & mask) !== (cidr.address[i] ?? 0)) return false;
  }
  return true;
}

/** A block of ports sharing their top `plen` bits: ports prefix << (16 - plen) and up. */
export interface PortBlock {
  plen: number;
  prefix: number;
}

/** Splits an inclusive port range into the fewest aligned blocks (at most 30). */
export function portRangeBlocks(range: PortRange): PortBlock[] {
  const blocks: PortBlock[] = [];
  let start = range.port;
  const end = range.endPort;
  while (start <= end) {
    // Largest aligned block starting at `start` that stays within `end`.
    let size = start === 0 ? 1 << 16 : start & -start;
    while (start + size - 1 > end) size >>= 1;
    const hostBits = Math.log2(size);
    blocks.push({ plen: 16 - hostBits, prefix: start >> hostBits });
    start += size;
  }
  return blocks;
}
