import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { DnsProxy, answerAddresses, type DnsEvent, type DnsLesson, type DnsProxyDeps, type DnsQueryContext } from './dns-proxy.js';

const CTX: DnsQueryContext = { client: { ip: '10.0.0.10', port: 40000 }, server: { ip: '10.0.0.53', port: 53 }, protocol: 'udp' };
const ORIGIN = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'dns', section: 'egress', index: 0 } as never;

function query(name: string, o: { id?: number; type?: dnsPacket.RecordType; opcode?: number; questions?: number } = {}): Buffer {
  const questions = Array.from({ length: o.questions ?? 1 }, () => ({ type: o.type ?? 'A', name }));
  const flags = dnsPacket.RECURSION_DESIRED | ((o.opcode ?? 0) << 11);
  return dnsPacket.encode({ type: 'query', id: o.id ?? 7, flags, questions });
}

function answerTo(q: Buffer, answers: dnsPacket.Answer[], o: { id?: number; rcode?: number } = {}): Buffer {
  const d = dnsPacket.decode(q);
  return dnsPacket.encode({ type: 'response', id: o.id ?? d.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (o.rcode ?? 0), questions: d.questions, answers });
}

function world(o: { allow?: (name: string) => boolean; answer?: (q: Buffer) => Buffer | Promise<Buffer>; learn?: (l: DnsLesson) => Promise<void> } = {}) {
  const events: DnsEvent[] = [];
  const lessons: DnsLesson[] = [];
  const forwarded: Buffer[] = [];
  const deps: DnsProxyDeps = {
    judge: (_ctx, name) => {
      const allowed = (o.allow ?? (() => true))(name);
      return { allowed, rules: [ORIGIN], reason: allowed ? 'allowed' : 'refused', srcIdentity: 1000, dstIdentity: 1001 };
    },
    forward: async (_ctx, q) => {
      forwarded.push(q);
      return (o.answer ?? ((x) => answerTo(x, [{ type: 'A', name: dnsPacket.decode(x).questions![0]!.name, ttl: 30, data: '203.0.113.11' }])))(q);
    },
    learn: async (l) => {
      lessons.push(l);
      await o.learn?.(l);
    },
    event: (e) => events.push(e),
  };
  return { proxy: new DnsProxy(deps), events, lessons, forwarded };
}

const rcodeOf = (b: Buffer | undefined) => (dnsPacket.decode(b!).flags ?? 0) & 0xf;

test('an allowed query is forwarded unchanged; its answer is released only once what it taught is in force', async () => {
  let release!: () => void;
  const w = world({ learn: () => new Promise<void>((r) => (release = r)) });
  const q = query('www.example.com');
  let answered: Buffer | undefined;
  const pending = w.proxy.handle(CTX, q).then((a) => (answered = a));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(w.forwarded, [q]);
  assert.deepEqual(w.lessons, [{ client: CTX.client, names: ['www.example.com'], ips: ['203.0.113.11'], ttl: 30 }]);
  assert.equal(answered, undefined, 'held until learn resolves');
  release();
  await pending;
  assert.equal(rcodeOf(answered), 0);
  assert.deepEqual(dnsPacket.decode(answered!).answers?.map((a) => (a as { data?: unknown }).data), ['203.0.113.11']);
  assert.deepEqual(w.events.map((e) => [e.query, e.verdict, e.rcode, e.ips, e.ttl, e.srcIdentity, e.dstIdentity]), [['www.example.com', 'forwarded', 'NOERROR', ['203.0.113.11'], 30, 1000, 1001]]);
});

test('a refused name gets REFUSED with its question and RD echoed, and never reaches the server', async () => {
  const w = world({ allow: (n) => n !== 'example.com' });
  const a = await w.proxy.handle(CTX, query('example.com', { id: 4242 }));
  const d = dnsPacket.decode(a!);
  assert.deepEqual([d.id, d.type, rcodeOf(a), d.questions?.[0]?.name, (d.flags ?? 0) & dnsPacket.RECURSION_DESIRED], [4242, 'response', 5, 'example.com', dnsPacket.RECURSION_DESIRED]);
  assert.deepEqual(w.forwarded, []);
  assert.deepEqual(w.events.map((e) => [e.verdict, e.rcode, e.rules]), [['refused', 'REFUSED', [ORIGIN]]]);
});

test('NXDOMAIN and answers without addresses pass through and teach nothing', async () => {
  const w = world({ answer: (q) => answerTo(q, [], { rcode: 3 }) });
  assert.equal(rcodeOf(await w.proxy.handle(CTX, query('nothing.example.com'))), 3);
  assert.deepEqual(w.lessons, []);
  assert.equal(w.events[0]?.rcode, 'NXDOMAIN');
});

test('malformed input: FORMERR when the header reads, dropped otherwise; responses dropped; other opcodes NOTIMP; two questions FORMERR', async () => {
  const w = world();
  const garbage = Buffer.concat([query('x.example.com').subarray(0, 12), Buffer.from([0xff, 0xff, 0xff])]);
  assert.equal(garbage[2]! & 0x80, 0);
  const formerr = await w.proxy.handle(CTX, garbage);
  assert.deepEqual([formerr?.readUInt16BE(0), formerr![3]! & 0xf, formerr![2]! & 0x80], [7, 1, 0x80]);
  assert.equal(await w.proxy.handle(CTX, Buffer.from([1, 2, 3])), undefined);
  assert.equal(await w.proxy.handle(CTX, answerTo(query('a.example.com'), [])), undefined, 'a response sent to the proxy');
  assert.equal(rcodeOf(await w.proxy.handle(CTX, query('a.example.com', { opcode: 2 }))), 4);
  assert.equal(rcodeOf(await w.proxy.handle(CTX, query('a.example.com', { questions: 2 }))), 1);
  assert.deepEqual(w.forwarded, [], 'none of them reached the server');
});

test('an answer with another id or question, one that does not decode, or none at all becomes SERVFAIL and teaches nothing', async () => {
  for (const answer of [
    (q: Buffer) => answerTo(q, [{ type: 'A', name: 'www.example.com', ttl: 5, data: '203.0.113.9' }], { id: 999 }),
    () => answerTo(query('other.example.com'), [{ type: 'A', name: 'other.example.com', ttl: 5, data: '203.0.113.9' }]),
    () => Buffer.from([0, 7, 0x81, 0x80, 0, 1]),
    () => Promise.reject(new Error('timed out')),
  ]) {
    const w = world({ answer });
    assert.equal(rcodeOf(await w.proxy.handle(CTX, query('www.example.com'))), 2);
    assert.deepEqual(w.lessons, []);
    assert.equal(w.events[0]?.verdict, 'error');
  }
});

test("what an answer teaches: the name asked and its CNAME chain, never records for names nobody asked; the chain's smallest TTL", () => {
  const answer = dnsPacket.decode(
    dnsPacket.encode({
      type: 'response',
      id: 1,
      questions: [{ type: 'A', name: 'WWW.Example.com' }],
      answers: [
        { type: 'CNAME', name: 'www.example.com', ttl: 300, data: 'edge.cdn.test' },
        { type: 'A', name: 'edge.cdn.test', ttl: 20, data: '203.0.113.20' },
        { type: 'A', name: 'edge.cdn.test', ttl: 60, data: '203.0.113.21' },
        { type: 'A', name: 'bank.test', ttl: 1, data: '203.0.113.66' },
      ],
    }),
  );
  assert.deepEqual(answerAddresses(answer, 'WWW.Example.com.'), { names: ['www.example.com', 'edge.cdn.test'], ips: ['203.0.113.20', '203.0.113.21'], ttl: 20 });
});

test('fuzz: thousands of random and mutated messages never throw, and only well-formed queries reach the server', async () => {
  const w = world();
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const base = query('fuzz.example.com');
  for (let i = 0; i < 3000; i++) {
    const b = i % 2 ? Buffer.from(base) : Buffer.alloc(Math.floor(rnd() * 64));
    for (let j = 0; j < b.length; j++) if (i % 2 === 0 || rnd() < 0.05) b[j] = Math.floor(rnd() * 256);
    await w.proxy.handle(CTX, b);
  }
  for (const f of w.forwarded) {
    const d = dnsPacket.decode(f);
    assert.equal(d.type, 'query');
    assert.equal(d.questions?.length, 1);
  }
  assert.equal(w.proxy.stats.queries, 3000);
});
