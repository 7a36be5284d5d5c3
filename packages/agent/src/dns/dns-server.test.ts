// The cluster DNS server on loopback with a fake upstream: cluster names,
// NXDOMAIN and NODATA, pod names, forwarding (and what a bad upstream
// gets), truncation and TCP, and a fuzz run of thousands of malformed
// messages after which the server still answers.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { lookupCluster, podResolvConf, type ClusterView } from './cluster-names.js';
import { DnsServer } from './dns-server.js';

let view: ClusterView = {
  services: new Map([['deathstar.default', '10.96.0.20'], ['api.prod', '10.96.0.21']]),
  pods: new Set(['10.200.0.7 default']),
  namespaces: new Set(['default', 'prod', 'kube-system']),
};

describe('lookupCluster', () => {
  test('services, pods, NXDOMAIN, NODATA and what is forwarded', () => {
    assert.deepEqual(lookupCluster(view, 'deathstar.default.svc.cluster.local', 'A'), { kind: 'records', a: ['10.96.0.20'] });
    assert.deepEqual(lookupCluster(view, 'DeathStar.Default.SVC.cluster.local.', 'A'), { kind: 'records', a: ['10.96.0.20'] });
    assert.deepEqual(lookupCluster(view, 'deathstar.default.svc.cluster.local', 'AAAA'), { kind: 'records', a: [] });
    assert.deepEqual(lookupCluster(view, 'nothere.default.svc.cluster.local', 'A'), { kind: 'nxdomain' });
    assert.deepEqual(lookupCluster(view, 'deathstar.default.svc.cluster.local.default.svc.cluster.local', 'A'), { kind: 'nxdomain' }, 'a search-path miss');
    assert.deepEqual(lookupCluster(view, '10-200-0-7.default.pod.cluster.local', 'A'), { kind: 'records', a: ['10.200.0.7'] });
    assert.deepEqual(lookupCluster(view, '10-200-0-7.prod.pod.cluster.local', 'A'), { kind: 'nxdomain' }, 'pods verified: the namespace must hold that IP');
    assert.deepEqual(lookupCluster(view, '10-200-0-999.default.pod.cluster.local', 'A'), { kind: 'nxdomain' });
    assert.deepEqual(lookupCluster(view, 'default.svc.cluster.local', 'A'), { kind: 'records', a: [] });
    assert.deepEqual(lookupCluster(view, 'nowhere.svc.cluster.local', 'A'), { kind: 'nxdomain' });
    assert.deepEqual(lookupCluster(view, 'cluster.local', 'SOA'), { kind: 'records', a: [] });
    assert.deepEqual(lookupCluster(view, 'example.com', 'A'), { kind: 'forward' });
    assert.deepEqual(lookupCluster(view, 'notcluster.local', 'A'), { kind: 'forward' });
  });

  test('a pod resolv.conf has the Kubernetes search path', () => {
    assert.equal(podResolvConf('prod', '10.96.0.10').split('\n').slice(1).join('\n'), 'search prod.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  });
});

describe('DnsServer', () => {
  let server: DnsServer;
  let upstream: Socket;
  let upstreamMode: 'answer' | 'garbage' | 'silent' | 'big' | 'wrong-question' = 'answer';
  let client: Socket;

  before(async () => {
    upstream = createSocket('udp4');
    upstream.on('message', (msg, r) => {
      const q = dnsPacket.decode(msg);
      const name = q.questions![0]!.name;
      if (upstreamMode === 'silent') return;
      if (upstreamMode === 'garbage') return void upstream.send(Buffer.concat([msg.subarray(0, 2), randomBytes(40)]), r.port, r.address);
      const answers = upstreamMode === 'big' ? Array.from({ length: 60 }, (_, i) => ({ type: 'A' as const, name, ttl: 60, data: `203.0.113.${i + 1}` })) : [{ type: 'A' as const, name, ttl: 60, data: '203.0.113.77' }];
      const questions = upstreamMode === 'wrong-question' ? [{ type: 'A' as const, name: 'other.example' }] : q.questions;
      upstream.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions, answers }), r.port, r.address);
    });
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
    server = new DnsServer({ address: '127.0.0.1', port: 0, view: () => view, upstreams: [`127.0.0.1:${upstream.address().port}`], timeoutMs: 300 });
    await server.start();
    client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  });
  after(async () => {
    await server.stop();
    upstream.close();
    client.close();
  });

  let nextId = 1;
  function ask(name: string, type: dnsPacket.RecordType = 'A', extra: Partial<dnsPacket.Packet> = {}): Promise<dnsPacket.DecodedPacket> {
    const id = nextId++;
    return raw(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }], ...extra }), id);
  }
  function raw(msg: Buffer, id?: number, timeoutMs = 1000): Promise<dnsPacket.DecodedPacket> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        client.off('message', on);
        reject(new Error('no answer'));
      }, timeoutMs);
      const on = (m: Buffer) => {
        const a = dnsPacket.decode(m);
        if (id !== undefined && a.id !== id) return;
        clearTimeout(t);
        client.off('message', on);
        resolve(a);
      };
      client.on('message', on);
      client.send(msg, server.boundPort, '127.0.0.1');
    });
  }
  const rcode = (a: dnsPacket.DecodedPacket) => (a.flags ?? 0) & 0xf;

  test('a Service name: its ClusterIP, authoritative, with the TTL', async () => {
    const a = await ask('deathstar.default.svc.cluster.local');
    assert.equal(rcode(a), 0);
    assert.deepEqual(a.answers!.map((x) => [x.type, (x as { data: string }).data, (x as { ttl: number }).ttl]), [['A', '10.96.0.20', 5]]);
    assert.equal(a.flag_aa, true);
  });

  test('unknown cluster names are NXDOMAIN, existing ones without the type NODATA', async () => {
    assert.equal(rcode(await ask('nope.default.svc.cluster.local')), 3);
    const aaaa = await ask('deathstar.default.svc.cluster.local', 'AAAA');
    assert.equal(rcode(aaaa), 0);
    assert.deepEqual(aaaa.answers, []);
  });

  test('other names go upstream and come back with the client id', async () => {
    upstreamMode = 'answer';
    const a = await ask('www.example.com');
    assert.equal(rcode(a), 0);
    assert.equal((a.answers![0] as { data: string }).data, '203.0.113.77');
  });

  test('an upstream that answers garbage, the wrong question or nothing: SERVFAIL', async () => {
    for (const mode of ['garbage', 'wrong-question', 'silent'] as const) {
      upstreamMode = mode;
      assert.equal(rcode(await ask(`x-${mode}.example.com`)), 2, mode);
    }
    upstreamMode = 'answer';
  });

  test('an answer too long for UDP is truncated; over TCP it comes whole', async () => {
    upstreamMode = 'big';
    const a = await ask('big.example.com');
    assert.equal(a.flag_tc, true);
    assert.deepEqual(a.answers, []);
    const tcp = await new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
      const s = connect(server.boundPort, '127.0.0.1');
      s.on('error', reject);
      s.write(dnsPacket.streamEncode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'big.example.com' }] }));
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          s.destroy();
          resolve(dnsPacket.decode(buf.subarray(2)));
        }
      });
    });
    assert.equal(tcp.id, 4242);
    assert.equal(tcp.answers!.length, 60);
    upstreamMode = 'answer';
  });

  test('malformed queries: FORMERR or NOTIMP when the header reads, silence otherwise', async () => {
    const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    const truncated = Buffer.concat([header, Buffer.from([7, 0x65, 0x78])]);
    const a = await raw(truncated, 0x1234);
    assert.equal(rcode(a), 1);
    const two = dnsPacket.encode({ type: 'query', id: 77, questions: [{ type: 'A', name: 'a.example' }, { type: 'A', name: 'b.example' }] });
    assert.equal(rcode(await raw(two, 77)), 1, 'two questions');
    const notify = dnsPacket.encode({ type: 'query', id: 78, flags: 4 << 11, questions: [{ type: 'SOA', name: 'cluster.local' }] });
    assert.equal(rcode(await raw(notify, 78)), 4, 'opcode NOTIFY is not implemented');
    const response = dnsPacket.encode({ type: 'response', id: 79, questions: [{ type: 'A', name: 'a.example' }] });
    await assert.rejects(raw(response, 79, 300), /no answer/, 'a response sent to the server is dropped');
    await assert.rejects(raw(Buffer.from([1, 2, 3]), undefined, 300), /no answer/, 'no header: dropped');
  });

  test('fuzz: 5,000 random and mutated messages, then it still answers', async () => {
    const valid = dnsPacket.encode({ type: 'query', id: 9, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'deathstar.default.svc.cluster.local' }] });
    const sink = createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
    let answered = 0;
    sink.on('message', () => answered++);
    for (let i = 0; i < 5000; i++) {
      let m: Buffer;
      switch (i % 5) {
        case 0:
          m = randomBytes(1 + (i % 600));
          break;
        case 1: {
          m = Buffer.from(valid);
          for (let k = 0; k < 3; k++) m[(i * 7 + k * 13) % m.length] = (i * 31 + k) & 0xff;
          break;
        }
        case 2:
          m = valid.subarray(0, i % valid.length);
          break;
        case 3: {
          // A compression pointer loop in the question name.
          m = Buffer.concat([valid.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
          break;
        }
        default:
          m = Buffer.concat([valid, randomBytes(i % 5000)]);
      }
      sink.send(m, server.boundPort, '127.0.0.1');
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 300));
    sink.close();
    assert.ok(answered > 0, 'some were answered (FORMERR or data)');
    const a = await ask('deathstar.default.svc.cluster.local');
    assert.equal((a.answers![0] as { data: string }).data, '10.96.0.20');
    assert.ok(server.stats.formerr > 0 && server.stats.dropped > 0, JSON.stringify(server.stats));
  });

  test('a repeated query is answered from the cache, and a new view answers anew', async () => {
    const before = server.stats.cluster;
    for (let i = 0; i < 3; i++) assert.equal((((await ask('api.prod.svc.cluster.local')).answers![0]) as { data: string }).data, '10.96.0.21');
    assert.equal(server.stats.cluster - before, 3);
    const old = view;
    view = { ...old, services: new Map([...old.services, ['api.prod', '10.96.0.99']]) };
    try {
      const a = await ask('api.prod.svc.cluster.local');
      assert.equal((a.answers![0] as { data: string }).data, '10.96.0.99', 'a changed Service answers its new ClusterIP at once');
      assert.equal(a.id, nextId - 1, 'the cached answer carries the query id');
    } finally {
      view = old;
    }
  });

  test('an upstream that is the server itself is never used (no loop)', async () => {
    const self = new DnsServer({ address: '127.0.0.1', port: 0, view: () => view, upstreams: [], timeoutMs: 300 });
    await self.start();
    try {
      const looping = new DnsServer({ address: '127.0.0.1', port: self.boundPort, view: () => view, upstreams: [`127.0.0.1:${self.boundPort}`] });
      assert.equal((looping as unknown as { upstreams: unknown[] }).upstreams.length, 0);
    } finally {
      await self.stop();
    }
  });
});
