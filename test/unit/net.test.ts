import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cidrContains, cidrMatches, formatAddress, parseAddress, parseCidr, portRangeBlocks, alsoAddresses } from '../../compiler/net.js';

describe('parseCidr', () => {
  it('maps IPv4 into the IPv4-mapped IPv6 range', () => {
    const result = parseCidr('10.0.0.0/8');
    assert.ok(result.ok);
    assert.equal(result.cidr.prefixLength, 104);
    assert.equal(formatAddress(result.cidr.address), '10.0.0.0');
  });

  it('treats a bare address as a host route', () => {
    const v4 = parseCidr('192.0.2.7');
    const v6 = parseCidr('2001:db8::7');
    assert.ok(v4.ok && v6.ok);
    assert.equal(v4.cidr.prefixLength, 128);
    assert.equal(v6.cidr.prefixLength, 128);
  });

  it('parses IPv6 with an embedded IPv4 tail', () => {
    const result = parseCidr('::ffff:10.1.2.3');
    assert.ok(result.ok);
    assert.equal(formatAddress(result.cidr.address), '10.1.2.3');
  });

  const invalid: [string, RegExp][] = [
    ['10.0.0.0/33', /prefix length/u],
    ['fd00::/129', /prefix length/u],
    ['10.0.0.0/-1', /prefix length/u],
    ['10.0.0.0/8/8', /prefix length/u],
    ['10.0.0/8', /invalid IP address/u],
    ['example.com/32', /invalid IP address/u],
    ['10.1.0.0/8', /host bits/u],
    ['', /invalid IP address/u],
  ];
  for (const [text, problem] of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      const result = parseCidr(text);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.problem, problem);
    });
  }

  it('suggests the network address when host bits are set', () => {
    const result = parseCidr('10.1.2.3/8');
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.fix, /10\.0\.0\.0\/8/u);
  });
});

describe('cidr matching', () => {
  it('matches an IPv4-mapped IPv6 address against an IPv4 CIDR', () => {
    const cidr = parseCidr('127.0.0.0/8');
    const address = parseAddress('::ffff:127.0.0.1');
    assert.ok(cidr.ok && address);
    assert.ok(cidrMatches(cidr.cidr, address));
  });

  it('orders containment by prefix', () => {
    const wide = parseCidr('10.0.0.0/8');
    const narrow = parseCidr('10.1.0.0/16');
    assert.ok(wide.ok && narrow.ok);
    assert.ok(cidrContains(wide.cidr, narrow.cidr));
    assert.ok(!cidrContains(narrow.cidr, wide.cidr));
  });

  it('formats IPv6 with the longest zero run compressed', () => {
    assert.equal(formatAddress(parseAddress('2001:db8:0:0:1:0:0:1') as Uint8Array), '2001:db8::1:0:0:1');
    assert.equal(formatAddress(parseAddress('::1') as Uint8Array), '::1');
  });
});

describe('portRangeBlocks', () => {
  it('covers exactly the range, with no overlap (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
        const range = { port: Math.min(a, b), endPort: Math.max(a, b) };
        const blocks = portRangeBlocks(range);
        assert.ok(blocks.length <= 30, `${blocks.length} blocks`);
        let covered = 0;
        let next = range.port;
        for (const block of blocks) {
          const first = block.prefix << (16 - block.plen);
          const size = 1 << (16 - block.plen);
          assert.equal(first, next, 'blocks must be contiguous and ascending');
          next = first + size;
          covered += size;
        }
        assert.equal(covered, range.endPort - range.port + 1);
      }),
    );
  });

  it('gives one block for the whole port space', () => {
    assert.deepEqual(portRangeBlocks({ port: 0, endPort: 65535 }), [{ plen: 0, prefix: 0 }]);
  });
});

describe('alsoAddresses', () => {
  const also = (kind: 'connect' | 'bind', text: string): string[] =>
    alsoAddresses(kind, parseAddress(text) ?? new Uint8Array(0)).map((address) => formatAddress(address));

  it('adds loopback to a connect to the unspecified address', () => {
    assert.deepEqual(also('connect', '0.0.0.0'), ['127.0.0.1']);
    assert.deepEqual(also('connect', '::ffff:0.0.0.0'), ['127.0.0.1']);
    assert.deepEqual(also('connect', '::'), ['127.0.0.1', '::1']);
  });

  it('adds 0.0.0.0 to a bind to ::', () => {
    assert.deepEqual(also('bind', '::'), ['0.0.0.0']);
    assert.deepEqual(also('bind', '0.0.0.0'), []);
    assert.deepEqual(alsoAddresses('bind', new Uint8Array(16), true), []);
  });

  it('adds nothing for any other address', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.constantFrom('connect' as const, 'bind' as const), (bytes, kind) => {
        const mappedAny =
          bytes.subarray(0, 10).every((b) => b === 0) &&
          bytes[10] === 0xff &&
          bytes[11] === 0xff &&
          bytes.subarray(12).every((b) => b === 0);
        fc.pre(!bytes.every((b) => b === 0) && !mappedAny);
        assert.deepEqual(alsoAddresses(kind, bytes), []);
      }),
    );
  });
});
