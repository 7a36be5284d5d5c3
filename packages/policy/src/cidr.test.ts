// Addresses and prefixes, and CIDR peers.
// Sources: Go net/netip (ParseAddr, ParsePrefix; IPv6 text form RFC 4291
// section 2.2, canonical output RFC 5952 section 4.2); Cilium docs "Layer 3
// policies > IP/CIDR based" ("CIDR rules do not apply to traffic where both
// sides of the connection are either managed by Cilium or use an IP belonging
// to a node in the cluster"; fromCIDRSet `except`); cilium/cilium
// pkg/policy/api/rule_validation.go CIDRRule.sanitize (except within cidr).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { Problems } from '@membrane/api';
import { formatIP, formatPrefix, hostPrefix, parseIP, parsePrefix, prefixContains, type Prefix } from './cidr.js';
import { FIRST_CLUSTER_IDENTITY, FIRST_LOCAL_IDENTITY, cidrIdentity, endpointIdentityLabels, reservedIdentity, type Identity } from './identity.js';
import type { PeerSelector } from './rule.js';
import { peerMatches } from './selector-cache.js';
import { cidrPeer } from './translate-common.js';

function prefix(s: string): Prefix {
  const p = parsePrefix(s);
  if (typeof p === 'string') throw new Error(p);
  return p;
}

const bytes = (s: string) => Array.from(parseIP(s)?.bytes ?? []);

describe('parseIP: IPv4', () => {
  test('dotted quads', () => {
    assert.deepEqual(parseIP('10.1.2.3'), { family: 4, bytes: new Uint8Array([10, 1, 2, 3]) });
    assert.deepEqual(bytes('0.0.0.0'), [0, 0, 0, 0]);
    assert.deepEqual(bytes('255.255.255.255'), [255, 255, 255, 255]);
  });

  test('invalid inputs', () => {
    for (const s of ['', '256.0.0.1', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '1.2.3.-1', '01.2.3.4', '1.2.3.4 ', '1..2.3']) {
      assert.equal(parseIP(s), undefined, JSON.stringify(s));
    }
  });
});

describe('parseIP: IPv6', () => {
  test('`::` and its compressed forms', () => {
    assert.deepEqual(bytes('::'), new Array(16).fill(0));
    assert.deepEqual(bytes('::1'), [...new Array(15).fill(0), 1]);
    assert.deepEqual(bytes('2001:db8::'), [0x20, 0x01, 0x0d, 0xb8, ...new Array(12).fill(0)]);
    assert.deepEqual(bytes('fe80::1:2'), [0xfe, 0x80, ...new Array(10).fill(0), 0, 1, 0, 2]);
    assert.deepEqual(bytes('1:2:3:4:5:6:7::'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
  });

  test('full form, upper case, and an embedded IPv4 tail', () => {
    assert.deepEqual(bytes('1:2:3:4:5:6:7:8'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual(bytes('2001:DB8::A'), bytes('2001:db8::a'));
    assert.deepEqual(bytes('::ffff:192.0.2.1'), [...new Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1]);
    assert.equal(parseIP('::1')?.family, 6);
  });

  test('invalid inputs', () => {
    for (const s of [':', ':1', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::', '12345::', 'g::1', '::1.2.3', '::ffff:256.0.0.1']) {
      assert.equal(parseIP(s), undefined, JSON.stringify(s));
    }
  });
});

describe('parsePrefix', () => {
  test('host bits are masked off, at byte and non-byte boundaries', () => {
    assert.equal(formatPrefix(prefix('10.1.2.3/8')), '10.0.0.0/8');
    assert.equal(formatPrefix(prefix('10.255.255.255/12')), '10.240.0.0/12');
    assert.equal(formatPrefix(prefix('192.168.1.129/25')), '192.168.1.128/25');
    assert.equal(formatPrefix(prefix('192.168.1.1/32')), '192.168.1.1/32');
    assert.equal(formatPrefix(prefix('1.2.3.4/0')), '0.0.0.0/0');
    assert.equal(formatPrefix(prefix('2001:db8:abcd:ffff::/36')), '2001:db8:a000::/36');
    assert.equal(formatPrefix(prefix('2001:db8::1/128')), '2001:db8::1/128');
  });

  test('a bare address is a host prefix only when allowed (fromCIDR/toCIDR)', () => {
    assert.equal(parsePrefix('10.0.0.1'), '"10.0.0.1" is not a CIDR (expected address/prefix-length, e.g. 10.0.0.0/8)');
    const v4 = parsePrefix('10.0.0.1', { allowBare: true });
    assert.ok(typeof v4 !== 'string');
    assert.equal(formatPrefix(v4), '10.0.0.1/32');
    const v6 = parsePrefix('2001:db8::1', { allowBare: true });
    assert.ok(typeof v6 !== 'string');
    assert.equal(v6.bits, 128);
    assert.equal(parsePrefix('nope', { allowBare: true }), '"nope" is not an IP address or CIDR');
    assert.equal(formatPrefix(hostPrefix('192.0.2.9')!), '192.0.2.9/32');
    assert.equal(hostPrefix('192.0.2.300'), undefined);
  });

  test('invalid prefixes name the reason', () => {
    assert.equal(parsePrefix('10.0.0.0/33'), '"10.0.0.0/33" is not a valid CIDR: prefix length must be 0-32');
    assert.equal(parsePrefix('::/129'), '"::/129" is not a valid CIDR: prefix length must be 0-128');
    assert.equal(parsePrefix('10.0.0.0/'), '"10.0.0.0/" is not a valid CIDR: prefix length must be 0-32');
    assert.equal(parsePrefix('10.0.0.0/-1'), '"10.0.0.0/-1" is not a valid CIDR: prefix length must be 0-32');
    assert.equal(parsePrefix('10.0.0.0/08'), '"10.0.0.0/08" is not a valid CIDR: prefix length must be 0-32');
    assert.equal(parsePrefix('300.0.0.0/8'), '"300.0.0.0/8" is not a valid CIDR: bad address');
  });
});

describe('prefixContains', () => {
  test('byte boundaries', () => {
    assert.equal(prefixContains(prefix('10.0.0.0/8'), prefix('10.255.0.0/16')), true);
    assert.equal(prefixContains(prefix('10.0.0.0/8'), prefix('11.0.0.0/16')), false);
    assert.equal(prefixContains(prefix('10.0.0.0/8'), prefix('10.0.0.0/8')), true);
    assert.equal(prefixContains(prefix('10.0.0.0/16'), prefix('10.0.0.0/8')), false, 'a narrower prefix does not contain a broader one');
  });

  test('non-byte boundaries', () => {
    assert.equal(prefixContains(prefix('172.16.0.0/12'), prefix('172.31.255.255/32')), true);
    assert.equal(prefixContains(prefix('172.16.0.0/12'), prefix('172.32.0.0/32')), false);
    assert.equal(prefixContains(prefix('172.16.0.0/12'), prefix('172.15.255.255/32')), false);
    assert.equal(prefixContains(prefix('198.51.100.128/25'), prefix('198.51.100.200/32')), true);
    assert.equal(prefixContains(prefix('198.51.100.128/25'), prefix('198.51.100.127/32')), false);
    assert.equal(prefixContains(prefix('2001:db8::/33'), prefix('2001:db8:7fff::1/128')), true);
    assert.equal(prefixContains(prefix('2001:db8::/33'), prefix('2001:db8:8000::1/128')), false);
  });

  test('/0 contains its whole family and only it', () => {
    assert.equal(prefixContains(prefix('0.0.0.0/0'), prefix('203.0.113.9/32')), true);
    assert.equal(prefixContains(prefix('::/0'), prefix('2001:db8::1/128')), true);
    assert.equal(prefixContains(prefix('0.0.0.0/0'), prefix('2001:db8::1/128')), false);
    assert.equal(prefixContains(prefix('::/0'), prefix('10.0.0.1/32')), false);
  });
});

describe('formatIP (RFC 5952 section 4.2)', () => {
  test('compresses the longest run of zero groups, the first on a tie, never a single group', () => {
    assert.equal(formatIP(6, parseIP('::')!.bytes), '::');
    assert.equal(formatIP(6, parseIP('::1')!.bytes), '::1');
    assert.equal(formatIP(6, parseIP('2001:0db8:0000:0000:0000:0000:0000:0001')!.bytes), '2001:db8::1');
    assert.equal(formatIP(6, parseIP('1:0:0:2:0:0:0:3')!.bytes), '1:0:0:2::3');
    assert.equal(formatIP(6, parseIP('1:0:0:2:0:0:3:4')!.bytes), '1::2:0:0:3:4');
    assert.equal(formatIP(6, parseIP('1:0:2:3:4:5:6:7')!.bytes), '1:0:2:3:4:5:6:7');
    assert.equal(formatIP(4, parseIP('192.0.2.1')!.bytes), '192.0.2.1');
  });
});

describe('CIDR peers select only identities outside the cluster (selector-cache peerMatches)', () => {
  const ctx = { identities: [] };
  const peer = (cidr: string, except: string[] = []): PeerSelector => {
    const problems = new Problems();
    const p = cidrPeer(cidr, except, 'cidr', 'except', problems, true);
    assert.deepEqual(problems.list, []);
    assert.ok(p);
    return p;
  };
  const inside = cidrIdentity(FIRST_LOCAL_IDENTITY, '198.51.100.5')!;
  const excepted = cidrIdentity(FIRST_LOCAL_IDENTITY + 1, '198.51.100.200')!;
  const outside = cidrIdentity(FIRST_LOCAL_IDENTITY + 2, '192.0.2.9')!;
  const v6 = cidrIdentity(FIRST_LOCAL_IDENTITY + 3, '2001:db8::5')!;
  const world = reservedIdentity('world');
  const pod: Identity = { id: FIRST_CLUSTER_IDENTITY, labels: endpointIdentityLabels({ namespace: 'default', podLabels: { app: 'web' } }) };

  test('cidr with except', () => {
    const p = peer('198.51.100.0/24', ['198.51.100.128/25']);
    assert.equal(peerMatches(p, inside, ctx), true);
    assert.equal(peerMatches(p, excepted, ctx), false);
    assert.equal(peerMatches(p, outside, ctx), false);
    assert.equal(peerMatches(p, v6, ctx), false);
    assert.equal(peerMatches(p, world, ctx), false, 'world (0.0.0.0/0) is broader than the rule');
  });

  test('0.0.0.0/0 selects world and every IPv4 CIDR identity', () => {
    const p = peer('0.0.0.0/0');
    assert.equal(peerMatches(p, world, ctx), true);
    assert.equal(peerMatches(p, inside, ctx), true);
    assert.equal(peerMatches(p, v6, ctx), false);
  });

  test('a bare address is its host prefix', () => {
    const p = peer('198.51.100.5');
    assert.equal(peerMatches(p, inside, ctx), true);
    assert.equal(peerMatches(p, excepted, ctx), false);
  });

  test('CIDR peers never match endpoint or node identities, even with an IP inside the CIDR', () => {
    const p = peer('0.0.0.0/0');
    assert.equal(peerMatches(p, pod, ctx), false);
    const podWithPrefix: Identity = { ...pod, prefix: hostPrefix('198.51.100.5')! };
    assert.equal(peerMatches(peer('198.51.100.0/24'), podWithPrefix, ctx), false);
    assert.equal(peerMatches(p, reservedIdentity('host'), ctx), false);
    assert.equal(peerMatches(p, reservedIdentity('remote-node'), ctx), false);
  });

  test('except must lie within the cidr (rule_validation.go CIDRRule.sanitize)', () => {
    const problems = new Problems();
    assert.equal(cidrPeer('10.0.0.0/8', ['11.0.0.0/16', '10.0.0.0/8x'], 'spec.cidr', 'spec.except', problems, false), undefined);
    assert.deepEqual(problems.list, [
      { path: 'spec.except[0]', reason: '11.0.0.0/16 is not within 10.0.0.0/8' },
      { path: 'spec.except[1]', reason: '"10.0.0.0/8x" is not a valid CIDR: prefix length must be 0-32' },
    ]);
  });
});
