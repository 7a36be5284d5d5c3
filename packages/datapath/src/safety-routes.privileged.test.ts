// The safety routes against the real kernel, as root: added (never
// replaced) with Membrane's protocol number and metric, ranges the host
// routes left alone and reported, only this run's routes removed, and the
// routes a crashed agent left found and removed by `membrane down`'s
// function — without touching an unreachable route someone else added. No
// packet is sent. Rails cover a pod CIDR of this test's own (10.206/16) and
// single /32 addresses in 198.51.100.0/24, never a whole documentation range
// (the machine's uplink and package registries live in some). The links and
// routes the test makes to play "the host" are on this run's names
// (`mbr<pid base 36>-s…`).
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { Cleanup } from './cleanup.js';
import { ip, ipJson, linkDelete } from './netlink.js';
import {
  SAFETY_ROUTE_PROTOCOL,
  TEST_RANGES,
  findMembraneSafetyRoutes,
  installSafetyRoutes,
  removeMembraneSafetyRoutes,
  safetyPrefixes,
  testHostRails,
  unreachableRoutes,
} from './safety-routes.js';
import { requireRoot } from './test/privileged.js';

const LINK = `mbr${process.pid.toString(36)}-s`;
const PEER = `mbr${process.pid.toString(36)}-sx`;
const root = new Cleanup();
after(() => root.run());

interface RouteJson {
  type?: string;
  dst: string;
  dev?: string;
  protocol?: string;
}

const routes = () => ipJson<RouteJson[]>(['route', 'show', 'table', 'main'], 'routes');
const norm = (dst: string) => (dst === 'default' ? '0.0.0.0/0' : dst.includes('/') ? dst : `${dst}/32`);

const POD_CIDR = '10.206.0.0/16';

test('an agent rails only what it owns; a run rails exactly the /32s of its test hosts', () => {
  assert.deepEqual(safetyPrefixes(), ['10.200.0.0/16']);
  assert.deepEqual(safetyPrefixes('10.77.0.0/16', '10.96.0.0/16'), ['10.77.0.0/16', '10.96.0.0/16']);
  assert.deepEqual(testHostRails(['198.51.100.7', '203.0.113.5', '198.51.100.7']), ['198.51.100.7/32', '203.0.113.5/32']);
  for (const r of TEST_RANGES) assert.ok(!safetyPrefixes().includes(r));
});

test('the rail of a pod CIDR and of test host addresses: installed, already covered or reported', async (t) => {
  if (!requireRoot(t, 'adds and removes routes in the root namespace')) return;
  const wanted = [...safetyPrefixes(POD_CIDR), ...testHostRails(['198.51.100.7', '198.51.100.9'])];
  const before = await routes();
  const s = await installSafetyRoutes(wanted);
  root.add('default safety routes', () => s.remove());
  for (const k of s.skipped) t.diagnostic(`NOT COVERED ${k.prefix}: ${k.reason}`);
  for (const prefix of wanted) {
    const exact = before.filter((r) => norm(r.dst) === prefix);
    if (exact.some((r) => r.type === 'unreachable')) assert.ok(s.alreadyCovered.includes(prefix), prefix);
    else if (exact.length > 0) {
      // The host's own route (on some machines 192.0.2.0/24 is the uplink) is left alone and reported.
      assert.ok(s.skipped.some((k) => k.prefix === prefix && k.reason.startsWith(`the host already routes ${prefix}`)), prefix);
      assert.deepEqual((await routes()).filter((r) => norm(r.dst) === prefix), exact, `the host's route to ${prefix} changed`);
    } else assert.ok(s.installed.includes(prefix), prefix);
  }
  // Each route this run added carries Membrane's protocol number.
  const ours = (await routes()).filter((r) => r.type === 'unreachable' && r.protocol === String(SAFETY_ROUTE_PROTOCOL)).map((r) => norm(r.dst));
  for (const p of s.installed) assert.ok(ours.includes(p), `${p} lacks proto ${SAFETY_ROUTE_PROTOCOL}: ${ours.join(', ')}`);
  assert.deepEqual((await unreachableRoutes(s.installed)).sort(), [...s.installed].sort());

  // A test host's /32 route (metric 0) wins over the rail at its address while it exists.
  await ip(['link', 'add', LINK, 'type', 'veth', 'peer', 'name', PEER], `create ${LINK}`);
  root.add(`link ${LINK}`, () => linkDelete(LINK));
  await ip(['link', 'set', LINK, 'up'], `up ${LINK}`);
  await ip(['route', 'add', '198.51.100.7/32', 'dev', LINK], 'test host route');
  assert.match(await ip(['route', 'get', '198.51.100.7'], 'route get'), new RegExp(`dev ${LINK}`));
  assert.match(await ip(['route', 'get', '198.51.100.9'], 'route get').catch((e: Error) => e.message), /unreachable|No route to host/);
  await linkDelete(LINK);
  assert.match(await ip(['route', 'get', '198.51.100.7'], 'route get').catch((e: Error) => e.message), /unreachable|No route to host/, 'the rail takes over again');

  // A second install finds them covered and adds nothing; its remove() removes nothing.
  const again = await installSafetyRoutes(wanted);
  assert.deepEqual(again.installed, []);
  for (const p of s.installed) assert.ok(again.alreadyCovered.includes(p));
  await again.remove();
  assert.deepEqual((await unreachableRoutes(s.installed)).sort(), [...s.installed].sort());

  await s.remove();
  assert.deepEqual(await unreachableRoutes(s.installed), []);
  await s.remove(); // once is enough; again is not an error
});

test('a range the host routes is never replaced; host routes inside a covered range are reported', async (t) => {
  if (!requireRoot(t, 'adds links and routes in the root namespace')) return;
  // "The host": a link of this run with routes in two documentation ranges (nothing is sent).
  await ip(['link', 'add', LINK, 'type', 'veth', 'peer', 'name', PEER], `create ${LINK}`);
  root.add(`link ${LINK}`, () => linkDelete(LINK));
  await ip(['link', 'set', LINK, 'up'], `up ${LINK}`);
  await ip(['route', 'add', '198.51.100.16/30', 'dev', LINK], 'host route');
  await ip(['route', 'add', '198.51.100.33/32', 'dev', LINK], 'inner host route');

  const c = new Cleanup();
  try {
    // ownLinkPrefix names links that are not this run's, so LINK counts as the host's.
    const s = await installSafetyRoutes(['198.51.100.16/30', '198.51.100.32/30'], { ownLinkPrefix: 'mbr-none-', cleanup: c });
    assert.deepEqual(s.installed, ['198.51.100.32/30']);
    assert.deepEqual(s.skipped, [
      { prefix: '198.51.100.16/30', reason: `the host already routes 198.51.100.16/30 on ${LINK}; replacing that route could cut the machine off, so nothing may send to this range` },
      { prefix: '198.51.100.33/32', reason: `inside 198.51.100.32/30 but routed by the host on ${LINK}: the rail does not cover it` },
    ]);
    assert.match(await ip(['route', 'show', '198.51.100.16/30'], 'route'), new RegExp(`^198\\.51\\.100\\.16/30 dev ${LINK}`));
    const covered = await installSafetyRoutes(['198.51.100.32/30']);
    assert.deepEqual([covered.installed, covered.alreadyCovered], [[], ['198.51.100.32/30']]);
  } finally {
    // The registry removes what the install added.
    await c.run();
  }
  assert.deepEqual(await unreachableRoutes(['198.51.100.32/30']), []);
  // With the default, links starting with mbr are the project's own (pods' /32 routes): no report.
  const own = await installSafetyRoutes(['198.51.100.32/30']);
  try {
    assert.deepEqual([own.installed, own.skipped], [['198.51.100.32/30'], []]);
  } finally {
    await own.remove();
  }
  assert.deepEqual(await unreachableRoutes(['198.51.100.32/30']), []);
  assert.match(await ip(['route', 'show', '198.51.100.16/30'], 'route'), new RegExp(`dev ${LINK}`));
});

test('membrane down finds and removes the routes a crashed agent left, and only Membrane’s', async (t) => {
  if (!requireRoot(t, 'adds and removes routes in the root namespace')) return;
  // Someone else's unreachable route (no Membrane protocol number) in a test range.
  await ip(['route', 'add', 'unreachable', '198.51.100.40/32', 'proto', 'static'], "someone else's unreachable route");
  root.add("someone else's route", () => ip(['route', 'delete', 'unreachable', '198.51.100.40/32'], 'delete it').then(() => undefined));
  // A "previous agent run" that never removed its routes.
  const crashed = await installSafetyRoutes([POD_CIDR, '198.51.100.41/32']);
  root.add('the crashed run', () => crashed.remove());
  assert.deepEqual(crashed.installed, [POD_CIDR, '198.51.100.41/32']);

  const found = await findMembraneSafetyRoutes();
  for (const p of crashed.installed) assert.ok(found.includes(p), `${p} not found in ${found.join(', ')}`);
  assert.ok(!found.includes('198.51.100.40/32'));

  // Only the prefixes this test owns (a real `membrane down` passes its own).
  const removed = await removeMembraneSafetyRoutes([POD_CIDR, '198.51.100.41/32', '198.51.100.40/32']);
  assert.deepEqual(removed.sort(), [POD_CIDR, '198.51.100.41/32'].sort());
  assert.deepEqual(await unreachableRoutes([POD_CIDR, '198.51.100.41/32']), []);
  assert.deepEqual(await unreachableRoutes(['198.51.100.40/32']), ['198.51.100.40/32']);
  assert.deepEqual(await removeMembraneSafetyRoutes(['198.51.100.41/32']), []);
  // The crashed run's own remove() finds nothing left and says nothing.
  await crashed.remove();
});

test('prefixes are checked before anything is added', async (t) => {
  if (!requireRoot(t, 'reads the routes of the root namespace')) return;
  await assert.rejects(() => installSafetyRoutes(['10.200.0.1/16']), { message: 'safety route: "10.200.0.1/16" has host bits set (did you mean 10.200.0.0/16?)' });
  await assert.rejects(() => installSafetyRoutes(['fd00::/64']), /not IPv4/);
  await assert.rejects(() => installSafetyRoutes(['198.51.100.50/32', 'nonsense']), /safety route: "nonsense" is not a CIDR/);
  assert.deepEqual(await unreachableRoutes(['198.51.100.50/32']), []);
});

test('leaves nothing behind', async (t) => {
  if (!requireRoot(t, 'inspects links and routes')) return;
  await root.run();
  const left = (await routes()).filter((r) => (r.dev ?? '').startsWith(LINK) || (r.type === 'unreachable' && ['198.51.100.128/25', '198.51.100.0/25'].includes(r.dst)));
  assert.deepEqual(left, []);
  const links = await ipJson<{ ifname: string }[]>(['link', 'show'], 'links');
  assert.deepEqual(links.filter((l) => l.ifname.startsWith(LINK)).map((l) => l.ifname), []);
});
