import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { hostPrefix, parseScenario, prefixContains } from '@membrane/policy';
import { mapEndpointIPs } from './pod-ips.js';
import { ROUTER_IP } from './pods.js';
import { POD_CIDR } from './safety.js';

/** Containment as pod-ips decides it, with @membrane/policy's CIDR code (a bare address is a host). */
const contains = (outer: string, inner: string) => prefixContains(hostPrefix(outer)!, hostPrefix(inner)!);

const scenario = (endpoints: string) =>
  parseScenario(
    `
name: ips
endpoints:
${endpoints}
outside:
  - {name: ext, ip: 198.51.100.20}
policies: []
probes: []
`,
    'ips.yaml',
  );

test("10.0.A.B becomes 10.207.A.B (the tests' pod CIDR), pod-CIDR addresses stay", () => {
  const m = mapEndpointIPs(scenario('  - {name: a, ip: 10.0.4.10}\n  - {name: b, ip: 10.207.9.9}'));
  assert.deepEqual([...m.ips], [
    ['default/a', '10.207.4.10'],
    ['default/b', '10.207.9.9'],
  ]);
  assert.deepEqual(m.scenario.endpoints.map((e) => e.ip), ['10.207.4.10', '10.207.9.9']);
  assert.equal(m.original.get('default/a'), '10.0.4.10');
  // Outside peers keep their addresses.
  assert.equal(m.scenario.outside[0]!.ip, '198.51.100.20');
});

test('other addresses, missing ones, clashes and the router IP get free pod-CIDR addresses', () => {
  const m = mapEndpointIPs(
    scenario(
      [
        '  - {name: other-range, ip: 10.3.0.7}',
        '  - {name: none}',
        '  - {name: router, ip: 10.0.0.1}',
        '  - {name: first, ip: 10.0.1.1}',
        '  - {name: clash, ip: 10.207.1.1}',
      ].join('\n'),
    ),
  );
  assert.deepEqual([...m.ips].sort(), [
    ['default/clash', '10.207.240.4'],
    ['default/first', '10.207.1.1'],
    ['default/none', '10.207.240.2'],
    ['default/other-range', '10.207.240.1'],
    ['default/router', '10.207.240.3'],
  ]);
});

test('prefix containment', () => {
  assert.equal(POD_CIDR, '10.207.0.0/16', "the tests' own, never the agent's default");
  assert.equal(ROUTER_IP, '10.207.0.1');
  assert.equal(contains('10.200.0.0/16', '10.200.5.0/24'), true);
  assert.equal(contains('10.200.0.0/16', '10.200.5.7'), true);
  assert.equal(contains('10.200.0.0/16', '10.201.0.0/24'), false);
  assert.equal(contains('10.200.0.0/16', '10.0.0.0/8'), false);
  assert.equal(contains('0.0.0.0/0', '192.0.2.0/24'), true);
});
