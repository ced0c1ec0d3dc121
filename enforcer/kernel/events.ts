// Decoding of ring-buffer records. Mirrors struct sabpf_event of
// enforcer/bpf/sabpf.h, through the offsets in compiler/layout.ts (which a
// unit test checks against the header).
import { EVENT_OFFSET, SIZE } from '../../compiler/layout.js';

export interface SabpfEvent {
  timeBootNs: bigint;
  cgroupId: bigint;
  pid: number;
  ppid: number;
  uid: number;
  /** enum sabpf_hook bit. */
  hook: number;
  /** enum sabpf_access (file hooks), 0 otherwise. */
  access: number;
  /** 0 allow, 1 deny: what the policies reached, enforced or not. */
  decision: number;
  /** SABPF_EVENT_* bits. */
  flags: number;
  /** Bit index of the deciding policy. */
  policy: number;
  netOp: number;
  port: number;
  /** IPPROTO_* for connect/bind, the socket type for socket_create. */
  proto: number;
  family: number;
  /** IPv6 or IPv4-mapped address, network byte order. */
  addr: Uint8Array;
  comm: string;
  path: string;
  exe: string;
}

function cString(buffer: Buffer, offset: number, max: number): string {
  const bytes = buffer.subarray(offset, offset + max);
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? max : end).toString('utf8');
}

export function decodeEvent(buffer: Buffer): SabpfEvent {
  if (buffer.length !== SIZE.event) {
    throw new Error(
      `failed to decode a sabpf event of ${buffer.length} bytes: struct sabpf_event is ${SIZE.event} bytes; the BPF object and compiler/layout.ts disagree, rebuild both`,
    );
  }
  const o = EVENT_OFFSET;
  const pathLen = buffer.readUInt16LE(o.pathLen);
  const exeLen = buffer.readUInt16LE(o.exeLen);
  return {
    timeBootNs: buffer.readBigUInt64LE(o.timeBootNs),
    cgroupId: buffer.readBigUInt64LE(o.cgroupId),
    pid: buffer.readUInt32LE(o.pid),
    ppid: buffer.readUInt32LE(o.ppid),
    uid: buffer.readUInt32LE(o.uid),
    hook: buffer.readUInt32LE(o.hook),
    access: buffer.readUInt32LE(o.access),
    decision: buffer.readUInt32LE(o.decision),
    flags: buffer.readUInt32LE(o.flags),
    policy: buffer.readUInt32LE(o.policy),
    netOp: buffer.readUInt32LE(o.netOp),
    port: buffer.readUInt16LE(o.port),
    proto: buffer.readUInt8(o.proto),
    family: buffer.readUInt8(o.family),
    addr: new Uint8Array(buffer.subarray(o.addr, o.addr + 16)),
    comm: cString(buffer, o.comm, 16),
    // The lengths exclude the NUL, and the kernel does not clear the bytes after it.
    path: buffer.subarray(o.path, o.path + Math.min(pathLen, 4095)).toString('utf8'),
    exe: buffer.subarray(o.exe, o.exe + Math.min(exeLen, 4095)).toString('utf8'),
  };
}
