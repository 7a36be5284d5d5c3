// The datapath's two-lookup LPM model must give, for every peer, protocol and
// port, the verdict the MapState gives (design.md section 3: "lookup order
// exact → identity-wildcard port → port-wildcard → all, deny wins").
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { decideDirection } from './decide.js';
import { compileHttpRule } from './l7/http.js';
import { DirectionPolicy } from './mapstate.js';
import { L7Parser, lookupPolicyMap, portBlocks, toPolicyMapEntries } from './policy-map.js';
import type { RuleOrigin } from './rule.js';

const origin = (i: number): RuleOrigin => ({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: `r${i}`, section: 'ingress', index: i });
const http = { http: [compileHttpRule({ method: 'GET' })] };

test('portBlocks covers a range exactly with aligned blocks', () => {
  assert.deepEqual(portBlocks(80, 80), [{ port: 80, bits: 16 }]);
  assert.deepEqual(portBlocks(0, 65535), [{ port: 0, bits: 0 }]);
  assert.deepEqual(portBlocks(8080, 8083), [{ port: 8080, bits: 14 }]);
  assert.deepEqual(portBlocks(1, 6), [{ port: 1, bits: 16 }, { port: 2, bits: 15 }, { port: 4, bits: 15 }, { port: 6, bits: 16 }]);
  for (const [lo, hi] of [[1, 65535], [1000, 2000], [3, 3], [65534, 65535]] as const) {
    const blocks = portBlocks(lo, hi);
    let next = lo;
    for (const b of blocks) {
      assert.equal(b.port, next);
      assert.equal(b.port % 2 ** (16 - b.bits), 0);
      next += 2 ** (16 - b.bits);
    }
    assert.equal(next, hi + 1);
  }
});

test('an L3 deny beats a more specific L4 allow of the same peer', () => {
  const dp = new DirectionPolicy('ingress', true, true);
  dp.add({ identity: 300, proto: 0, port: 0, endPort: 65535 }, true, origin(0), undefined);
  dp.add({ identity: 300, proto: 6, port: 80, endPort: 80 }, false, origin(1), undefined);
  const es = toPolicyMapEntries(dp);
  assert.equal(lookupPolicyMap(es, true, true, 300, 6, 80).allowed, false);
});

test('an L7-free allow from any peer frees a peer-specific L7 entry', () => {
  const dp = new DirectionPolicy('ingress', true, true);
  dp.add({ identity: 300, proto: 6, port: 80, endPort: 80 }, false, origin(0), http);
  dp.add({ identity: 0, proto: 6, port: 0, endPort: 65535 }, false, origin(1), undefined);
  dp.add({ identity: 301, proto: 6, port: 80, endPort: 80 }, false, origin(2), http);
  dp.add({ identity: 0, proto: 6, port: 80, endPort: 80 }, false, origin(3), http);
  const es = toPolicyMapEntries(dp);
  assert.equal(lookupPolicyMap(es, true, true, 300, 6, 80).l7, L7Parser.NONE);
});

// Random MapStates: the model of the BPF lookup agrees with decideDirection everywhere.
test('the two-lookup model agrees with the MapState on random policies', () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const ids = [0, 300, 301, 302];
  const protos = [0, 6, 17, 1];
  const ports = [0, 1, 53, 79, 80, 81, 443, 1024, 8080, 8081, 65535];
  for (let round = 0; round < 300; round++) {
    const dp = new DirectionPolicy('egress', true, rnd(4) !== 0);
    const n = 1 + rnd(7);
    for (let i = 0; i < n; i++) {
      const proto = protos[rnd(protos.length)]!;
      let port = 0;
      let endPort = 65535;
      if (proto !== 0 && rnd(3) !== 0) {
        port = ports[rnd(ports.length)]!;
        endPort = rnd(2) === 0 ? port : Math.min(65535, port + rnd(3000));
      }
      const deny = rnd(4) === 0;
      dp.add({ identity: ids[rnd(ids.length)]!, proto, port, endPort }, deny, origin(i), !deny && proto === 6 && rnd(2) === 0 ? http : undefined);
    }
    const es = toPolicyMapEntries(dp);
    for (const peer of [300, 301, 302, 999]) {
      for (const proto of [6, 17, 1]) {
        for (const port of ports) {
          const want = decideDirection(dp, 'ep', peer, proto, port);
          const got = lookupPolicyMap(es, dp.enforced, dp.defaultDeny, peer, proto, port);
          const ctx = `round ${round} peer ${peer} ${proto}/${port}: ${JSON.stringify(dp.entries.map((e) => [e.identity, e.proto, e.port, e.endPort, e.deny, e.l7 ? 'L7' : '-']))}`;
          assert.equal(got.allowed, want.allowed, ctx);
          if (want.allowed) assert.equal(got.l7 !== L7Parser.NONE, want.proxied, ctx);
        }
      }
    }
  }
});
