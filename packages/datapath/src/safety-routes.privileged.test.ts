// The safety routes against the real kernel, as root: added (never
// replaced) with Membrane's protocol number, ranges the host routes left
// alone and reported, only this run's routes removed, and the routes a
// crashed agent left found and removed by `membrane down`'s function —
// without touching an unreachable route someone else added. No packet is
// sent. The links and routes the test makes to play "the host" are on
// this run's names (`mbr<pid base 36>-s…`) and the documentation ranges.
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

test('the default rail: the pod CIDR and the test ranges, each installed, already covered or reported', async (t) => {
  if (!requireRoot(t, 'adds and removes routes in the root namespace')) return;
  assert.deepEqual(safetyPrefixes(), ['10.200.0.0/16', ...TEST_RANGES]);
  assert.deepEqual(safetyPrefixes('10.77.0.0/16'), ['10.77.0.0/16', '192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']);
  const before = await routes();
  const s = await installSafetyRoutes();
  root.add('default safety routes', () => s.remove());
  for (const k of s.skipped) t.diagnostic(`NOT COVERED ${k.prefix}: ${k.reason}`);
  for (const prefix of safetyPrefixes()) {
    const exact = before.filter((r) => norm(r.dst) === prefix);
    if (exact.some((r) => r.type === 'unreachable')) assert.ok(s.alreadyCovered.includes(prefix), prefix);
    else if (exact.length > 0) {
      // The host's own route (on some machines 192.0.2.0/24 is the uplink) is left alone and reported.
      assert.ok(s.skipped.some((k) => k.prefix === prefix && k.reason.startsWith(`the host already routes ${prefix}`)), prefix);
      assert.deepEqual((await routes()).filter((r) => norm(r.dst) === prefix), exact, `the host's route to ${prefix} changed`);
    } else assert.ok(s.installed.includes(prefix), prefix);
  }
  // Each route this run added carries Membrane's protocol number.
  const ours = (await routes()).filter((r) => r.type === 'unreachable' && r.protocol === String(SAFETY_ROUTE_PROTOCOL)).map((r) => r.dst);
  for (const p of s.installed) assert.ok(ours.includes(p), `${p} lacks proto ${SAFETY_ROUTE_PROTOCOL}: ${ours.join(', ')}`);
  assert.deepEqual((await unreachableRoutes(s.installed)).sort(), [...s.installed].sort());

  // A second install finds them covered and adds nothing; its remove() removes nothing.
  const again = await installSafetyRoutes();
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
  await ip(['route', 'add', '198.51.100.0/24', 'dev', LINK], 'host route');
  await ip(['route', 'add', '203.0.113.64/26', 'dev', LINK], 'inner host route');

  const c = new Cleanup();
  try {
    // ownLinkPrefix names links that are not this run's, so LINK counts as the host's.
    const s = await installSafetyRoutes(['198.51.100.0/24', '203.0.113.0/24'], { ownLinkPrefix: 'mbr-none-', cleanup: c });
    assert.deepEqual(s.installed, ['203.0.113.0/24']);
    assert.deepEqual(s.skipped, [
      { prefix: '198.51.100.0/24', reason: `the host already routes 198.51.100.0/24 on ${LINK}; replacing that route could cut the machine off, so nothing may send to this range` },
      { prefix: '203.0.113.64/26', reason: `inside 203.0.113.0/24 but routed by the host on ${LINK}: the rail does not cover it` },
    ]);
    assert.match(await ip(['route', 'show', '198.51.100.0/24'], 'route'), new RegExp(`^198\\.51\\.100\\.0/24 dev ${LINK}`));
    const covered = await installSafetyRoutes(['203.0.113.0/24']);
    assert.deepEqual([covered.installed, covered.alreadyCovered], [[], ['203.0.113.0/24']]);
  } finally {
    // The registry removes what the install added.
    await c.run();
  }
  assert.deepEqual(await unreachableRoutes(['203.0.113.0/24']), []);
  // With the default, links starting with mbr are the project's own (pods' /32 routes): no report.
  const own = await installSafetyRoutes(['203.0.113.0/24']);
  try {
    assert.deepEqual([own.installed, own.skipped], [['203.0.113.0/24'], []]);
  } finally {
    await own.remove();
  }
  assert.deepEqual(await unreachableRoutes(['203.0.113.0/24']), []);
  assert.match(await ip(['route', 'show', '198.51.100.0/24'], 'route'), new RegExp(`dev ${LINK}`));
});

test('membrane down finds and removes the routes a crashed agent left, and only Membrane’s', async (t) => {
  if (!requireRoot(t, 'adds and removes routes in the root namespace')) return;
  // Someone else's unreachable route (no Membrane protocol number) in a test range.
  await ip(['route', 'add', 'unreachable', '198.51.100.128/25', 'proto', 'static'], "someone else's unreachable route");
  root.add("someone else's route", () => ip(['route', 'delete', 'unreachable', '198.51.100.128/25'], 'delete it').then(() => undefined));
  // A "previous agent run" that never removed its routes.
  const crashed = await installSafetyRoutes(['198.51.100.0/25', '203.0.113.0/24']);
  root.add('the crashed run', () => crashed.remove());
  assert.deepEqual(crashed.installed, ['198.51.100.0/25', '203.0.113.0/24']);

  const found = await findMembraneSafetyRoutes();
  for (const p of crashed.installed) assert.ok(found.includes(p), `${p} not found in ${found.join(', ')}`);
  assert.ok(!found.includes('198.51.100.128/25'));

  // Only the prefixes this test owns (a real `membrane down` passes none: all of Membrane's).
  const removed = await removeMembraneSafetyRoutes(['198.51.100.0/25', '203.0.113.0/24', '198.51.100.128/25']);
  assert.deepEqual(removed.sort(), ['198.51.100.0/25', '203.0.113.0/24']);
  assert.deepEqual(await unreachableRoutes(['198.51.100.0/25', '203.0.113.0/24']), []);
  assert.deepEqual(await unreachableRoutes(['198.51.100.128/25']), ['198.51.100.128/25']);
  assert.deepEqual(await removeMembraneSafetyRoutes(['198.51.100.0/25']), []);
  // The crashed run's own remove() finds nothing left and says nothing.
  await crashed.remove();
});

test('prefixes are checked before anything is added', async (t) => {
  if (!requireRoot(t, 'reads the routes of the root namespace')) return;
  await assert.rejects(() => installSafetyRoutes(['10.200.0.1/16']), { message: 'safety route: "10.200.0.1/16" has host bits set (did you mean 10.200.0.0/16?)' });
  await assert.rejects(() => installSafetyRoutes(['fd00::/64']), /not IPv4/);
  await assert.rejects(() => installSafetyRoutes(['203.0.113.0/24', 'nonsense']), /safety route: "nonsense" is not a CIDR/);
  assert.deepEqual(await unreachableRoutes(['203.0.113.0/24']), []);
});

test('leaves nothing behind', async (t) => {
  if (!requireRoot(t, 'inspects links and routes')) return;
  await root.run();
  const left = (await routes()).filter((r) => (r.dev ?? '').startsWith(LINK) || (r.type === 'unreachable' && ['198.51.100.128/25', '198.51.100.0/25'].includes(r.dst)));
  assert.deepEqual(left, []);
  const links = await ipJson<{ ifname: string }[]>(['link', 'show'], 'links');
  assert.deepEqual(links.filter((l) => l.ifname.startsWith(LINK)).map((l) => l.ifname), []);
});
