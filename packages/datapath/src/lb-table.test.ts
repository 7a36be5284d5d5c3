// The table of frontends and backends the ServiceDatapath mirrors
// (lb-table.ts), without a kernel: ids shared and never reused at once, the
// invariant held across frontends at every write, the table rebuilt from map
// entries, and what a crash half-way leaves repaired.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ipv4ToNumber, type LB4Backend, type LB4Key, type LB4Service } from './codecs.js';
import { checkServiceSpec, serviceSpecProblems, type ServiceFrontend, type ServiceSpec } from './lb-map.js';
import { slotProblems } from './lb-slot-plan.js';
import { LBTable, lbKey, protocolNumber, type LBChange } from './lb-table.js';

const F1: ServiceFrontend = { ip: '10.217.0.10', port: 80, protocol: 'TCP' };
const F2: ServiceFrontend = { ip: '10.217.0.11', port: 53, protocol: 'UDP' };
const F3: ServiceFrontend = { ip: '10.217.0.12', port: 80, protocol: 'TCP' };

const be = (n: number, port = 8080) => ({ ip: `10.213.0.${n}`, port });

/** Applies a change write by write, checking every frontend's invariant after each. */
function applyChecked(t: LBTable, c: LBChange, frontends: readonly ServiceFrontend[] = [F1, F2, F3]): void {
  for (const w of c.writes) {
    t.apply(c, w);
    for (const f of frontends) {
      const s = t.slotsOf(f);
      if (s) assert.deepEqual(slotProblems(s, (id) => t.backend(id) !== undefined), [], `${JSON.stringify(f)} after ${JSON.stringify(w)}`);
    }
  }
}

function upsert(t: LBTable, svc: ServiceSpec): LBChange {
  checkServiceSpec(svc);
  const c = t.planUpsert(svc);
  applyChecked(t, c);
  return c;
}

test('a backend address has one id, shared by the frontends that name it, deleted with the last', () => {
  const t = new LBTable();
  upsert(t, { id: 1, frontend: F1, backends: [be(2), be(3)] });
  upsert(t, { id: 3, frontend: F3, backends: [be(3), be(4)] });
  const [s1, s3] = t.list();
  assert.deepEqual(s1!.backends.map((b) => [b.ip, b.backendId, b.slot]), [['10.213.0.2', 1, 1], ['10.213.0.3', 2, 2]]);
  assert.deepEqual(s3!.backends.map((b) => [b.ip, b.backendId, b.slot]), [['10.213.0.3', 2, 1], ['10.213.0.4', 3, 2]]);
  // Same address, other protocol: another backend.
  upsert(t, { id: 2, frontend: F2, backends: [be(3)] });
  assert.equal(t.list()[1]!.backends[0]!.backendId, 4);

  // F1 stops naming 10.213.0.3: F3 still does, so the backend stays.
  const c = t.planUpsert({ id: 1, frontend: F1, backends: [be(2)] });
  assert.ok(!c.writes.some((w) => w.op === 'delete-backend'), JSON.stringify(c.writes));
  applyChecked(t, c);
  assert.ok(t.backend(2));
  // Deleting F3 releases 10.213.0.3 and 10.213.0.4 (ids 2 and 3): no other frontend names them now.
  const d = t.planDelete(F3)!;
  assert.deepEqual(d.writes.filter((w) => w.op === 'delete-backend').map((w) => (w as { backendId: number }).backendId), [2, 3]);
  applyChecked(t, d);
  assert.equal(t.backend(2), undefined);
  assert.equal(t.planDelete(F3), undefined);
  assert.deepEqual(t.size, { frontends: 2, backends: 2 });
});

test('upserting the same spec twice writes nothing the second time', () => {
  const t = new LBTable();
  const spec: ServiceSpec = { id: 1, frontend: F1, backends: [be(2), be(3), be(4)] };
  assert.equal(upsert(t, spec).writes.length, 7);
  assert.deepEqual(t.planUpsert(spec).writes, []);
  // Order does not matter: the slots are a set.
  assert.deepEqual(t.planUpsert({ ...spec, backends: [be(4), be(2), be(3)] }).writes, []);
});

test('an id freed a moment ago is not handed out again', () => {
  const t = new LBTable();
  upsert(t, { id: 1, frontend: F1, backends: [be(2)] });
  upsert(t, { id: 1, frontend: F1, backends: [be(3)] });
  upsert(t, { id: 1, frontend: F1, backends: [be(2)] });
  assert.deepEqual(t.list()[0]!.backends.map((b) => b.backendId), [3]);
});

test('random changes over three frontends keep every invariant at every write', () => {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const t = new LBTable();
  const fs = [F1, F2, F3];
  for (let round = 0; round < 400; round++) {
    const f = fs[rand(3)]!;
    if (rand(6) === 0) {
      const d = t.planDelete(f);
      if (d) applyChecked(t, d);
      continue;
    }
    const backends = [...new Set(Array.from({ length: rand(6) }, () => 2 + rand(8)))].map((n) => be(n));
    upsert(t, { id: 1 + fs.indexOf(f), frontend: f, backends });
    const got = t.list().find((s) => s.frontend.ip === f.ip)!;
    assert.deepEqual(got.backends.map((b) => b.ip).sort(), backends.map((b) => b.ip).sort());
  }
  // Every backend the table holds is named by some frontend: none leaks.
  const named = new Set(t.list().flatMap((s) => s.backends.map((b) => b.backendId)));
  for (const s of t.list()) for (const b of s.backends) assert.ok(t.backend(b.backendId));
  assert.equal(t.size.backends, named.size);
});

/** The entries the kernel would hold for this table's frontends (as the maps are read back). */
function entries(t: LBTable): { services: { key: LB4Key; value: LB4Service }[]; backends: { id: number; value: LB4Backend }[] } {
  const services: { key: LB4Key; value: LB4Service }[] = [];
  const backends = new Map<number, LB4Backend>();
  for (const s of t.list()) {
    services.push({ key: lbKey(s.frontend, 0), value: { backend_id: 0, service_id: s.id, count: s.backends.length, flags: 0, pad: 0 } });
    for (const b of s.backends) {
      services.push({ key: lbKey(s.frontend, b.slot), value: { backend_id: b.backendId, service_id: s.id, count: 0, flags: 0, pad: 0 } });
      backends.set(b.backendId, { address: ipv4ToNumber(b.ip), port: b.port, proto: protocolNumber(s.frontend.protocol), flags: 0 });
    }
  }
  return { services, backends: [...backends].map(([id, value]) => ({ id, value })) };
}

test('a table rebuilt from the map entries lists the same and continues the ids', () => {
  const t = new LBTable();
  upsert(t, { id: 1, frontend: F1, backends: [be(2), be(3)] });
  upsert(t, { id: 2, frontend: F2, backends: [] });
  const e = entries(t);
  const { table, problems } = LBTable.fromEntries(e.services, e.backends);
  assert.deepEqual(problems, []);
  assert.deepEqual(table.list(), t.list());
  assert.deepEqual(table.planRepairs(), []);
  // Same specs: nothing to write; a new backend gets an id after the highest in use.
  assert.deepEqual(table.planUpsert({ id: 1, frontend: F1, backends: [be(3), be(2)] }).writes, []);
  const c = table.planUpsert({ id: 1, frontend: F1, backends: [be(2), be(3), be(9)] });
  assert.deepEqual(c.writes[0], { op: 'put-backend', backendId: 3 });
});

test('what a crash half-way leaves is found and repaired, the invariant held meanwhile', () => {
  const svc = (f: ServiceFrontend, slot: number, v: Partial<LB4Service>) => ({ key: lbKey(f, slot), value: { backend_id: 0, service_id: 1, count: 0, flags: 0, pad: 0, ...v } });
  const backend = (id: number, n: number) => ({ id, value: { address: ipv4ToNumber(`10.213.0.${n}`), port: 8080, proto: 6, flags: 0 } });
  const { table, problems } = LBTable.fromEntries(
    [
      // F1: a shrink to 1 stopped before its slot 2 was deleted.
      svc(F1, 0, { count: 1 }),
      svc(F1, 1, { backend_id: 1 }),
      svc(F1, 2, { backend_id: 2 }),
      // F3: a delete stopped after the master went.
      svc(F3, 1, { backend_id: 3 }),
      // Not ours to read.
      { key: { ...lbKey(F1, 0), proto: 132 }, value: { backend_id: 0, service_id: 9, count: 0, flags: 0, pad: 0 } },
    ],
    [backend(1, 2), backend(2, 3), backend(3, 4), backend(4, 5)],
  );
  assert.deepEqual(problems, ['frontend 10.217.0.10:80 has protocol 132, not TCP or UDP']);
  const repairs = table.planRepairs();
  assert.deepEqual(repairs.map((r) => r.reason), ['10.217.0.10:80/TCP: 1 slot(s) beyond its count of 1', '10.217.0.12:80/TCP: 1 slot(s) without a master entry', 'backend(s) 4 named by no slot']);
  for (const r of repairs) applyChecked(table, r);
  assert.deepEqual(table.planRepairs(), []);
  assert.deepEqual(table.size, { frontends: 1, backends: 1 });
  assert.deepEqual(table.list(), [{ id: 1, frontend: F1, flags: 0, backends: [{ ip: '10.213.0.2', port: 8080, backendId: 1, slot: 1 }] }]);
});

test('a live slot naming a missing backend is compacted away, the master first', () => {
  const { table } = LBTable.fromEntries(
    [
      { key: lbKey(F1, 0), value: { backend_id: 0, service_id: 1, count: 2, flags: 0, pad: 0 } },
      { key: lbKey(F1, 1), value: { backend_id: 7, service_id: 1, count: 0, flags: 0, pad: 0 } },
      { key: lbKey(F1, 2), value: { backend_id: 8, service_id: 1, count: 0, flags: 0, pad: 0 } },
    ],
    [{ id: 8, value: { address: ipv4ToNumber('10.213.0.8'), port: 8080, proto: 6, flags: 0 } }],
  );
  const [r] = table.planRepairs();
  assert.equal(r!.reason, '10.217.0.10:80/TCP: slot 1 names backend 7, which is missing');
  assert.deepEqual(r!.writes, [{ op: 'put-master', count: 1 }, { op: 'put-slot', slot: 1, backendId: 8 }, { op: 'delete-slot', slot: 2 }]);
});

test('specs are checked whole before anything is planned', () => {
  assert.deepEqual(serviceSpecProblems({ id: 1, frontend: F1, backends: [be(2)] }), []);
  const bad = { id: 0, frontend: { ip: '10.217.0', port: 0, protocol: 'SCTP' }, backends: [be(2), { ip: '127.0.0.1', port: 70000 }, be(2)] } as unknown as ServiceSpec;
  assert.deepEqual(serviceSpecProblems(bad), [
    'id: 0 is not an integer from 1 to 4294967295',
    'frontend.ip: "10.217.0" is not an IPv4 address',
    'frontend.port: 0 is not a port number (1-65535)',
    'frontend.protocol: "SCTP" is not TCP or UDP',
    'backends[1].ip: 127.0.0.1 is a loopback address',
    'backends[1].port: 70000 is not a port number (1-65535)',
    'backends[2]: 10.213.0.2:8080 is backends[0] again',
  ]);
  assert.throws(() => checkServiceSpec(bad), (e: Error & { code?: string; details?: string[] }) => {
    assert.equal(e.code, 'MEMBRANE_E_USAGE');
    assert.equal(e.message, 'service 0 (10.217.0:0/SCTP): id: 0 is not an integer from 1 to 4294967295 (and 6 more problems)');
    assert.equal(e.details?.length, 7);
    return true;
  });
  assert.deepEqual(serviceSpecProblems({ id: 1, frontend: { ip: '0.0.0.0', port: 1, protocol: 'UDP' }, backends: [{ ip: '224.0.0.1', port: 1 }] }), [
    'frontend.ip: 0.0.0.0 is the unspecified address',
    'backends[0].ip: 224.0.0.1 is a multicast or reserved address',
  ]);
  assert.deepEqual(serviceSpecProblems({ id: 1, frontend: F1, backends: Array.from({ length: 1025 }, (_, i) => ({ ip: `10.213.${i >> 8}.${i & 255 || 1}`, port: 1 + i })) }).slice(0, 1), ['backends: 1025 backends, more than the 1024 a frontend can have']);
});
