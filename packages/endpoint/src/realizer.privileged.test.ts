// The policy engine end to end in the kernel: every scenario file of the
// shared conformance corpus and of examples/policy is resolved by the
// simulator, each endpoint's policy is installed by the EndpointRealizer into
// the real endpoint programs, and the first packet of every probe is run
// through BPF_PROG_TEST_RUN — from_container for the sender's egress,
// to_container for the receiver's ingress. The kernel must give each side the
// verdict the simulator gives it. Then random MapStates, probed everywhere,
// against decideDirection.
//
// The skb of a test run sits on lo, so whichever endpoint's side is judged is
// realized at ifindex 1 just before its packet; conntrack is emptied before
// every probe so each is a new connection. Maps are pinned under this run's
// pin root and removed when the test ends, pass or fail.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Cleanup, Datapath, MARK_TO_PROXY, NOT_ROOT_MESSAGE, TC_ACT_OK, TC_ACT_SHOT, type DatapathEvent } from '@membrane/datapath';
import { LO_IFINDEX, LxcHarness, leftoverPins, requireRoot, type LxcProgram, type PacketSpec } from '@membrane/datapath/testing';
import {
  DirectionPolicy,
  L7Parser,
  Proto,
  buildWorld,
  compileDnsMatcher,
  compileHttpRule,
  decideDirection,
  evaluateProbe,
  lookupPolicyMap,
  parseScenario,
  type DirectionVerdict,
  type EndpointPolicy,
  type RuleOrigin,
  type ScenarioProbe,
  type SideSummary,
  type World,
  type WorldPeer,
} from '@membrane/policy';
import { policyMapWrites } from './policy-writes.js';
import { EndpointRealizer, type RealizedEndpoint } from './realizer.js';

const PIN_PREFIX = 'mbr-test-realizer-';
const PIN_ROOT = `/sys/fs/bpf/${PIN_PREFIX}${process.pid}`;
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CORPORA = [join(REPO, '../shared/conformance/policy'), join(REPO, 'examples/policy')];
const PROXY = { http: 15001, dns: 15053 };

after(() => Datapath.unpinAll(PIN_ROOT));

function privileged(t: TestContext): boolean {
  return requireRoot(t, `loads bpf_lxc.o and pins its maps under ${PIN_ROOT}`);
}

/** bpf_lxc.o with fresh maps, and the test's cleanup (undone newest first when the test ends). */
function openLxc(t: TestContext): { h: LxcHarness; c: Cleanup } {
  const c = new Cleanup();
  t.after(() => c.run());
  c.add(`unpin ${PIN_ROOT}`, () => Datapath.unpinAll(PIN_ROOT));
  // A small conntrack table: emptying it before every probe walks every bucket.
  const h = LxcHarness.open({ pinRoot: PIN_ROOT, maxEntries: { mbr_ct: 1024 } });
  c.add('close the datapath', () => h.dp.close());
  return { h, c };
}

const proxyMark = (port: number): number => ((port << 16) | MARK_TO_PROXY) >>> 0;

function isIPv4(ip: string | undefined): ip is string {
  return !!ip && /^\d+\.\d+\.\d+\.\d+$/.test(ip);
}

function findPeer(world: World, name: string): WorldPeer {
  const p = world.peers.get(name) ?? world.peers.get(`default/${name}`);
  if (!p) throw new Error(`unknown peer ${name}`);
  return p;
}

/** The first packet of a probe. */
function probePacket(probe: ScenarioProbe, src: string, dst: string): PacketSpec {
  const sport = 20000 + probe.index;
  switch (probe.protocol) {
    case 'TCP':
      return { src, dst, proto: 'tcp', sport, dport: probe.port!, flags: 0x02 };
    case 'UDP':
      return { src, dst, proto: 'udp', sport, dport: probe.port! };
    case 'SCTP':
      return { src, dst, proto: 'sctp', sport, dport: probe.port! };
    case 'ICMP':
      return { src, dst, proto: 'icmp', icmpType: probe.icmp?.type ?? 8, icmpId: 1 + probe.index };
  }
}

function describeProbe(p: ScenarioProbe): string {
  const what = p.protocol === 'ICMP' ? `ICMP type ${p.icmp?.type ?? 8}` : `${p.port}/${p.protocol}`;
  const l7 = p.http ? ` HTTP ${p.http.method ?? 'GET'} ${p.http.path ?? '/'}` : p.dns ? ` DNS ${p.dns.query}` : '';
  return `probe ${p.index} ${p.from} → ${p.to} ${what}${l7}`;
}

interface ScenarioCounts {
  probes: number;
  sides: number;
  l7: string[];
  skipped: string[];
  mismatches: string[];
}

/**
 * Runs one scenario file in the kernel. Each endpoint side of each probe is
 * compared with the simulator: the verdict (an L7 probe only at L4: the
 * connection passes iff the side allows or leaves the decision to the proxy),
 * the drop reason, the peer identity the program saw, and the proxy mark.
 */
async function runScenario(h: LxcHarness, file: string, firstEpId: number): Promise<ScenarioCounts> {
  const s = parseScenario(readFileSync(file, 'utf8'), file);
  const world = buildWorld(s);
  const counts: ScenarioCounts = { probes: s.probes.length, sides: 0, l7: [], skipped: [], mismatches: [] };
  const c = new Cleanup();
  try {
    // Addresses: the scenario's, or (an entity without an address) one from 100.64.0.0/10 the scenario does not use.
    const used = new Set([...world.peers.values()].map((p) => p.ip));
    let synthetic = 1;
    const ipOf = new Map<WorldPeer, string | undefined>();
    for (const p of world.peers.values()) {
      if (p.ip) {
        ipOf.set(p, isIPv4(p.ip) ? p.ip : undefined);
        continue;
      }
      let ip: string;
      do ip = `100.64.${synthetic >> 8}.${synthetic++ & 0xff}`;
      while (used.has(ip));
      ipOf.set(p, ip);
    }
    const endpoints = new Map<WorldPeer, RealizedEndpoint>();
    let epId = firstEpId;
    for (const p of world.peers.values()) {
      const ip = ipOf.get(p);
      if (!ip) continue;
      if (p.kind === 'endpoint') endpoints.set(p, { ifindex: LO_IFINDEX, epId: epId++, ipv4: ip, identity: p.identity.id });
      h.dp.ipcacheUpsert(`${ip}/32`, p.identity.id, endpoints.get(p)?.epId ?? 0);
      c.add(`ipcache ${ip}`, () => void h.dp.ipcacheDelete(`${ip}/32`));
    }
    const realizer = new EndpointRealizer(h.dp, PROXY);
    for (const ep of endpoints.values()) c.add(`endpoint ${ep.epId}`, () => realizer.remove(ep));

    for (const probe of s.probes) {
      const name = describeProbe(probe);
      const from = findPeer(world, probe.from);
      const to = findPeer(world, probe.to);
      const src = ipOf.get(from);
      const dst = ipOf.get(to);
      if (!src || !dst) {
        counts.skipped.push(`${name}: an IPv6 peer (the programs judge IPv4 only)`);
        continue;
      }
      const { result, verdict } = evaluateProbe(world, probe);
      const l7 = !!(probe.http || probe.dns);
      if (l7) counts.l7.push(name);
      const sides: { prog: LxcProgram; subject: WorldPeer; peer: WorldPeer; summary: SideSummary | undefined; decided: DirectionVerdict | undefined }[] = [
        { prog: 'from_container', subject: from, peer: to, summary: result.egress, decided: verdict.egress },
        { prog: 'to_container', subject: to, peer: from, summary: result.ingress, decided: verdict.ingress },
      ];
      let judged = 0;
      for (const side of sides) {
        const ep = endpoints.get(side.subject);
        if (!ep) continue; // an outside peer (or the host): no endpoint program judges its side
        const want = side.summary!;
        const decided = side.decided!;
        // A local destination's ingress L7 entry sends the connection to the proxy from the client's veth (PEER_L7): its
        // map must be in force too. First, so that the subject's endpoint record (every endpoint here is on lo) is the one left.
        const peerEp = side.prog === 'from_container' ? endpoints.get(side.peer) : undefined;
        if (peerEp && peerEp !== ep) realizer.realize(peerEp, world.endpointPolicies.get(side.peer.name) ?? world.policies.get(peerEp.identity)!);
        realizer.realize(ep, world.endpointPolicies.get(side.subject.name) ?? world.policies.get(ep.identity)!);
        h.clearConntrack();
        const r = h.run(side.prog, probePacket(probe, src, dst), { ctx: { mark: 0 } });
        judged++;
        counts.sides++;
        const dir = side.prog === 'from_container' ? 'egress' : 'ingress';
        const wantAllowed = want.verdict === 'allowed' || want.stage === 'l7';
        const gotAllowed = r.retval === TC_ACT_OK;
        const problems: string[] = [];
        if (r.retval !== TC_ACT_OK && r.retval !== TC_ACT_SHOT) problems.push(`retval ${r.retval}`);
        if (gotAllowed !== wantAllowed) problems.push(`kernel ${gotAllowed ? 'allowed' : 'dropped'}, simulator ${want.verdict} at ${want.stage} (${want.reason})`);
        const ev: DatapathEvent | undefined = r.events[0];
        if (r.events.length !== 1) problems.push(`${r.events.length} events`);
        else {
          const peerSeen = dir === 'egress' ? ev!.dst_identity : ev!.src_identity;
          if (peerSeen !== side.peer.identity.id) problems.push(`the program saw peer identity ${peerSeen}, the world says ${side.peer.identity.id}`);
          if (!gotAllowed && ev!.drop_reason !== decided.dropReason) problems.push(`drop reason ${ev!.drop_reason}, simulator ${decided.dropReason}`);
        }
        if (gotAllowed) {
          const peerProxied = !!peerEp && peerEp !== ep && probe.protocol === 'TCP' && !!result.ingress?.proxied;
          const proxied = want.proxied || peerProxied;
          const mark = r.mark ?? -1;
          const marks = proxied ? (peerProxied && !want.proxied ? [proxyMark(PROXY.http), proxyMark(PROXY.dns)] : probe.dns ? [proxyMark(PROXY.dns)] : probe.http ? [proxyMark(PROXY.http)] : [proxyMark(PROXY.http), proxyMark(PROXY.dns)]) : [0];
          if (!marks.includes(mark)) problems.push(`mark 0x${mark.toString(16)}, expected ${marks.map((m) => `0x${m.toString(16)}`).join(' or ')} (${proxied ? 'to the proxy' : 'L7-free'})`);
        }
        if (problems.length) counts.mismatches.push(`${basename(file)} ${name} [${dir} of ${side.subject.name}]: ${problems.join('; ')}`);
      }
      if (judged === 0) counts.skipped.push(`${name}: neither side is an endpoint`);
    }
  } finally {
    h.clearConntrack();
    await c.run();
  }
  return counts;
}

test('every probe of the conformance corpus and examples/policy: the kernel judges each endpoint side as the simulator does', async (t) => {
  if (!privileged(t)) return;
  const { h } = openLxc(t);
  const files = CORPORA.filter((d) => {
    if (!existsSync(d)) t.diagnostic(`no scenarios at ${d}`);
    return existsSync(d);
  }).flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(d, f)));
  assert.ok(existsSync(CORPORA[1]!), `${CORPORA[1]} is part of the repository`);
  const total: ScenarioCounts = { probes: 0, sides: 0, l7: [], skipped: [], mismatches: [] };
  let epId = 1000;
  for (const file of files) {
    await t.test(basename(file), async (st) => {
      const n = await runScenario(h, file, epId);
      epId += 1000;
      st.diagnostic(`${n.probes} probes, ${n.sides} endpoint sides judged in the kernel, ${n.l7.length} with L7 (judged at L4 only), ${n.skipped.length} skipped`);
      for (const x of n.l7) st.diagnostic(`L7, L4 part only: ${x}`);
      for (const x of n.skipped) st.diagnostic(`skipped: ${x}`);
      total.probes += n.probes;
      total.sides += n.sides;
      total.l7.push(...n.l7);
      total.skipped.push(...n.skipped);
      total.mismatches.push(...n.mismatches);
      assert.deepEqual(n.mismatches, []);
    });
  }
  t.diagnostic(`${files.length} scenario files, ${total.probes} probes, ${total.sides} endpoint sides judged by the kernel as the simulator judges them; ${total.l7.length} L7 probes at L4 only; ${total.skipped.length} probes skipped`);
  assert.ok(files.length >= 12 && total.sides >= 150, `only ${files.length} files and ${total.sides} sides`);
  assert.deepEqual(h.dp.ctEntries(), []);
  assert.deepEqual(h.dp.listEndpoints(), [], 'every realized endpoint was removed');
});

// Random MapStates (as in packages/policy/src/policy-map.test.ts), realized
// into the kernel and probed for every peer, protocol and port.
test('random MapStates realized in the kernel agree with decideDirection for every peer, protocol and port', (t) => {
  if (!privileged(t)) return;
  const { h, c } = openLxc(t);
  // mulberry32: a fixed seed, so a failure replays.
  let seed = 20240607;
  const rnd = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return (((x ^ (x >>> 14)) >>> 0) % n);
  };
  const origin = (i: number): RuleOrigin => ({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: `r${i}`, section: 'ingress', index: i });
  const httpL7 = { http: [compileHttpRule({ method: 'GET' })] };
  const dnsL7 = { dns: [compileDnsMatcher({ matchPattern: '*.example.com' })] };
  const ep: RealizedEndpoint = { ifindex: LO_IFINDEX, epId: 77, ipv4: '10.201.0.100', identity: 1000 };
  // Peers: three the policies name, one they do not, and world (an address the ipcache does not know).
  const peers = [
    { identity: 300, ip: '10.201.0.1' },
    { identity: 301, ip: '10.201.0.2' },
    { identity: 302, ip: '10.201.0.3' },
    { identity: 999, ip: '10.201.0.4' },
    { identity: 2, ip: '198.51.100.77' },
  ];
  for (const p of peers) if (p.identity !== 2) h.dp.ipcacheUpsert(`${p.ip}/32`, p.identity);
  const realizer = new EndpointRealizer(h.dp, PROXY);
  c.add(`endpoint ${ep.epId}`, () => realizer.remove(ep));

  const ids = [0, 300, 301, 302, 2];
  const protos = [0, Proto.TCP, Proto.UDP, Proto.ICMP, Proto.SCTP];
  const ports = [1, 53, 79, 80, 81, 443, 1024, 8080, 8081, 65535];
  const icmpTypes = [0, 3, 8, 11, 13];
  const ROUNDS = 200;
  let runs = 0;
  let allowed = 0;
  let proxied = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const direction = rnd(2) === 0 ? 'ingress' : 'egress';
    const dp = new DirectionPolicy(direction, rnd(10) !== 0, rnd(4) !== 0);
    const n = 1 + rnd(8);
    for (let i = 0; i < n; i++) {
      const proto = protos[rnd(protos.length)]!;
      let port = 0;
      let endPort = 65535;
      if (proto !== 0 && rnd(3) !== 0) {
        if (proto === Proto.ICMP) {
          port = icmpTypes[rnd(icmpTypes.length)]!;
          endPort = rnd(2) === 0 ? port : Math.min(255, port + rnd(10));
        } else {
          port = ports[rnd(ports.length)]!;
          endPort = rnd(2) === 0 ? port : Math.min(65535, port + rnd(3000));
        }
      }
      const deny = rnd(4) === 0;
      const l7 = deny || (proto !== Proto.TCP && proto !== Proto.UDP) ? undefined : [undefined, httpL7, httpL7, dnsL7][rnd(4)];
      dp.add({ identity: ids[rnd(ids.length)]!, proto, port, endPort }, deny, origin(i), l7);
    }
    const policy: EndpointPolicy = {
      identity: ep.identity,
      ingress: direction === 'ingress' ? dp : new DirectionPolicy('ingress'),
      egress: direction === 'egress' ? dp : new DirectionPolicy('egress'),
    };
    realizer.realize(ep, policy);
    const model = policyMapWrites(policy, PROXY).entries.filter((e) => e.direction === direction);
    const prog: LxcProgram = direction === 'egress' ? 'from_container' : 'to_container';
    const state = () => JSON.stringify({ enforced: dp.enforced, defaultDeny: dp.defaultDeny, entries: dp.entries.map((e) => [e.identity, e.proto, e.port, e.endPort, e.deny ? 'deny' : 'allow', e.l7 ? (e.l7.dns.length ? 'DNS' : 'HTTP') : '-']) });
    for (const peer of peers) {
      for (const proto of [Proto.TCP, Proto.UDP, Proto.SCTP, Proto.ICMP]) {
        for (const port of proto === Proto.ICMP ? icmpTypes : ports) {
          const want = decideDirection(dp, 'ep', peer.identity, proto, port);
          const [src, dst] = direction === 'egress' ? [ep.ipv4, peer.ip] : [peer.ip, ep.ipv4];
          const spec: PacketSpec =
            proto === Proto.ICMP
              ? { src, dst, proto: 'icmp', icmpType: port, icmpId: 1 + runs }
              : { src, dst, proto: proto === Proto.TCP ? 'tcp' : proto === Proto.UDP ? 'udp' : 'sctp', sport: 30000 + (runs % 30000), dport: port, flags: 0x02 };
          const r = h.run(prog, spec, { ctx: { mark: 0 } });
          runs++;
          const ctx = `round ${round} ${direction} peer ${peer.identity} proto ${proto} port ${port}: ${state()}`;
          assert.equal(r.retval, want.allowed ? TC_ACT_OK : TC_ACT_SHOT, ctx);
          if (want.allowed) {
            allowed++;
            const m = lookupPolicyMap(model, dp.enforced, dp.defaultDeny, peer.identity, proto, port);
            assert.equal(m.l7 !== L7Parser.NONE, want.proxied, `model: ${ctx}`);
            const mark = want.proxied ? proxyMark(m.l7 === L7Parser.DNS ? PROXY.dns : PROXY.http) : 0;
            assert.equal(r.mark, mark, ctx);
            if (want.proxied) proxied++;
            h.clearConntrack();
          } else {
            assert.equal(r.events[0]?.drop_reason, want.dropReason, ctx);
          }
        }
      }
    }
  }
  t.diagnostic(`${ROUNDS} random MapStates, ${runs} packets: ${allowed} allowed (${proxied} to the proxy), ${runs - allowed} dropped, each as decideDirection says`);
  assert.ok(allowed > runs / 10 && runs - allowed > runs / 10 && proxied > 0, 'the random policies exercise allows, denies and redirects');
});

test('leaves no pin root of these tests behind', (t) => {
  if (!privileged(t)) return;
  assert.deepEqual(leftoverPins(PIN_PREFIX), []);
});
