import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DEFAULT_POD_CIDR, PodIPAllocator, cidrContainsIP, defaultRouterIP, parsePodCidr } from './pod-ip-allocator.js';

test('defaults: 10.200.0.0/16 with the router at its first address', () => {
  const a = new PodIPAllocator();
  assert.equal(a.cidr, DEFAULT_POD_CIDR);
  assert.equal(a.cidr, '10.200.0.0/16');
  assert.equal(a.routerIP, '10.200.0.1');
  assert.equal(defaultRouterIP(), '10.200.0.1');
  assert.equal(defaultRouterIP('10.99.4.0/22'), '10.99.4.1');
  assert.equal(a.capacity, 65536 - 3);
  // Network 10.200.0.0 and router 10.200.0.1 are skipped.
  assert.equal(a.allocate(), '10.200.0.2');
  assert.equal(a.allocate(), '10.200.0.3');
  assert.deepEqual(a.inUse(), ['10.200.0.2', '10.200.0.3']);
  assert.equal(a.available, a.capacity - 2);
});

test('skips network, router and broadcast, and runs out with a clear error', () => {
  // A /29: .0 network, .7 broadcast, router .1 by default: .2 … .6 are the pods'.
  const a = new PodIPAllocator({ cidr: '192.168.50.0/29' });
  assert.equal(a.capacity, 5);
  const got = [1, 2, 3, 4, 5].map(() => a.allocate());
  assert.deepEqual(got, ['192.168.50.2', '192.168.50.3', '192.168.50.4', '192.168.50.5', '192.168.50.6']);
  assert.equal(a.available, 0);
  assert.throws(() => a.allocate(), { message: 'no free address left in the pod CIDR 192.168.50.0/29 (5 addresses, all in use)' });

  // A router elsewhere in the range: the first address is a pod's then, the router's never.
  const b = new PodIPAllocator({ cidr: '192.168.50.0/29', routerIP: '192.168.50.4' });
  const all = [1, 2, 3, 4, 5].map(() => b.allocate());
  assert.deepEqual(all, ['192.168.50.1', '192.168.50.2', '192.168.50.3', '192.168.50.5', '192.168.50.6']);
  assert.throws(() => b.allocate(), /no free address left/);

  // The smallest range that holds a router and a pod.
  const c = new PodIPAllocator({ cidr: '10.0.0.0/30' });
  assert.equal(c.allocate(), '10.0.0.2');
  assert.throws(() => c.allocate(), /no free address left/);
});

test('seeded with the addresses in use, it never hands one out twice', () => {
  const seed = ['10.200.0.2', '10.200.0.4', '10.200.0.5'];
  const a = new PodIPAllocator({ inUse: seed });
  assert.deepEqual(a.inUse(), seed);
  assert.equal(a.allocate(), '10.200.0.3');
  assert.equal(a.allocate(), '10.200.0.6');
  // Seeding is idempotent; a claim of a used address is refused.
  a.markInUse('10.200.0.4');
  assert.throws(() => a.claim('10.200.0.5'), { message: '10.200.0.5 is already in use' });
  a.claim('10.200.9.9');
  assert.equal(a.isInUse('10.200.9.9'), true);
  assert.equal(a.isInUse('10.200.9.10'), false);

  // A full small range seeded from a "store": nothing left to give.
  const full = new PodIPAllocator({ cidr: '10.1.1.0/29', inUse: ['10.1.1.2', '10.1.1.3', '10.1.1.4', '10.1.1.5', '10.1.1.6'] });
  assert.throws(() => full.allocate(), /no free address left/);
  assert.equal(full.release('10.1.1.4'), true);
  assert.equal(full.allocate(), '10.1.1.4');
});

test('next-fit: a released address is the last one given again, the search wraps around', () => {
  const a = new PodIPAllocator({ cidr: '10.2.0.0/29' }); // pods .2 … .6
  assert.equal(a.allocate(), '10.2.0.2');
  assert.equal(a.allocate(), '10.2.0.3');
  assert.equal(a.release('10.2.0.2'), true);
  assert.equal(a.release('10.2.0.2'), false);
  assert.equal(a.allocate(), '10.2.0.4');
  assert.equal(a.allocate(), '10.2.0.5');
  assert.equal(a.allocate(), '10.2.0.6');
  // Wraps past the broadcast and the network address, skips the router and .3 (in use).
  assert.equal(a.allocate(), '10.2.0.2');
  assert.throws(() => a.allocate(), /no free address left/);
});

test('addresses that can never be a pod’s are refused with the reason', () => {
  const a = new PodIPAllocator();
  assert.equal(a.unusableReason('10.200.3.4'), undefined);
  assert.equal(a.unusableReason('10.200.0.0'), '10.200.0.0 is the network address of 10.200.0.0/16');
  assert.equal(a.unusableReason('10.200.255.255'), '10.200.255.255 is the broadcast address of 10.200.0.0/16');
  assert.equal(a.unusableReason('10.200.0.1'), '10.200.0.1 is the router IP');
  assert.equal(a.unusableReason('10.201.0.5'), '10.201.0.5 is outside the pod CIDR 10.200.0.0/16');
  assert.equal(a.unusableReason('fd00::5'), '"fd00::5" is not an IPv4 address');
  assert.equal(a.unusableReason('10.200.1'), '"10.200.1" is not an IPv4 address');
  assert.throws(() => a.claim('10.200.0.1'), { message: '10.200.0.1 is the router IP' });
  assert.throws(() => a.markInUse('192.0.2.7'), { message: '192.0.2.7 is outside the pod CIDR 10.200.0.0/16' });
  assert.throws(() => new PodIPAllocator({ inUse: ['10.200.255.255'] }), /broadcast address/);
  assert.equal(a.release('10.201.0.5'), false);
  assert.equal(a.release('not an address'), false);
});

test('pod CIDR and router IP are validated', () => {
  assert.deepEqual(
    (({ cidr, bits, network, broadcast }) => ({ cidr, bits, network, broadcast }))(parsePodCidr('10.200.0.0/16')),
    { cidr: '10.200.0.0/16', bits: 16, network: 0x0ac80000, broadcast: 0x0ac8ffff },
  );
  assert.throws(() => parsePodCidr('10.200.0.1/16'), { message: 'pod CIDR "10.200.0.1/16" has host bits set (did you mean 10.200.0.0/16?)' });
  assert.throws(() => parsePodCidr('10.200.0.0/31'), /too small/);
  assert.throws(() => parsePodCidr('fd00::/64'), /only IPv4/);
  assert.throws(() => parsePodCidr('10.200.0.0'), /is not a CIDR/);
  assert.throws(() => parsePodCidr('10.300.0.0/16'), /not a valid CIDR/);
  assert.throws(() => new PodIPAllocator({ routerIP: '10.201.0.1' }), /router IP 10\.201\.0\.1 is not a usable address of 10\.200\.0\.0\/16/);
  assert.throws(() => new PodIPAllocator({ routerIP: '10.200.0.0' }), /not a usable address/);
  assert.throws(() => new PodIPAllocator({ routerIP: 'router' }), /"router" is not an IPv4 address/);
  assert.equal(cidrContainsIP('10.200.0.0/16', '10.200.7.1'), true);
  assert.equal(cidrContainsIP('10.200.0.0/16', '10.20.7.1'), false);
  assert.equal(cidrContainsIP('10.200.0.0/16', 'fd00::1'), false);
});
