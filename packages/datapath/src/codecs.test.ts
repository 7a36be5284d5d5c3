// Every codec's size and offsets equal the C layout of bpf/lib/abi.h and
// bpf/lib/abi_lb.h,
// compiled here with the host C compiler (same ABI as the BPF target for
// these fixed-width fields).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { DATAPATH_EVENT_BYTES, DatapathEventOffsets } from '@membrane/api';
import { fileURLToPath } from 'node:url';
import { ALL_CODECS, MARK_FROM_PROXY, MARK_MASK, MARK_TO_PROXY, configCodec, endpointCodec, eventCodec, ipv4ToNumber, lb4BackendCodec, lb4KeyCodec, lb4RevNatKeyCodec, macToNumber, numberToIPv4, numberToMac, proxyMark } from './codecs.js';

const bpfDir = resolve(dirname(fileURLToPath(import.meta.url)), '../bpf');

test('codec layouts match bpf/lib/abi.h and bpf/lib/abi_lb.h', (t) => {
  const cc = spawnSync('cc', ['--version']);
  if (cc.status !== 0) {
    t.skip('SKIPPED: no C compiler (apt-get install build-essential)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'mbr-abi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  for (const c of ALL_CODECS) {
    lines.push(`printf("${c.name} size %zu\\n", sizeof(struct ${c.name}));`);
    for (const f of Object.keys(c.offsets)) lines.push(`printf("${c.name}.${f} %zu\\n", offsetof(struct ${c.name}, ${f}));`);
  }
  writeFileSync(join(dir, 'abi.c'), `#include <stdio.h>\n#include <stddef.h>\n#include "lib/abi.h"\n#include "lib/abi_lb.h"\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`);
  const build = spawnSync('cc', ['-I', bpfDir, '-o', join(dir, 'abi'), join(dir, 'abi.c')], { encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  const out = spawnSync(join(dir, 'abi'), { encoding: 'utf8' }).stdout;
  const want = new Map(out.trim().split('\n').map((l) => l.split(' ') as [string, string, string?]).map((p) => (p.length === 3 ? [p[0], Number(p[2])] : [p[0], Number(p[1])])));
  for (const c of ALL_CODECS) {
    assert.equal(c.size, want.get(c.name), `sizeof(struct ${c.name})`);
    for (const [f, off] of Object.entries(c.offsets)) assert.equal(off, want.get(`${c.name}.${f}`), `offsetof(${c.name}, ${f})`);
  }
});

test('codecs round-trip and keep network order where abi.h says so', () => {
  const b = endpointCodec.encode({ ep_id: 7, ipv4: ipv4ToNumber('10.200.0.9'), identity: 300, flags: 3 });
  assert.deepEqual([...b.subarray(4, 8)], [10, 200, 0, 9]);
  assert.deepEqual(endpointCodec.decode(b), { ep_id: 7, ipv4: ipv4ToNumber('10.200.0.9'), identity: 300, flags: 3 });
  assert.equal(numberToIPv4(ipv4ToNumber('198.51.100.200')), '198.51.100.200');
  const e = eventCodec.decode(eventCodec.encode({ ts_ns: 5n, type: 2, direction: 1, proto: 6, tcp_flags: 2, verdict: 2, is_reply: 0, l7: 0, pad: 0, drop_reason: 181, proxy_port: 0, ep_id: 3, src_identity: 256, dst_identity: 2, saddr: 1, daddr: 2, sport: 1234, dport: 80, ifindex: 9, cookie: 11, len: 60 }));
  assert.equal(e.drop_reason, 181);
  assert.equal(e.ts_ns, 5n);
  assert.equal(e.dport, 80);
});

test("the event record's layout in @membrane/api (the observer reads records in place) is the codec's", () => {
  assert.equal(eventCodec.size, DATAPATH_EVENT_BYTES);
  assert.deepEqual(eventCodec.offsets, DatapathEventOffsets);
});

test('socket load balancer keys: addresses and ports in network order, slots and ids in host order', () => {
  const k = lb4KeyCodec.encode({ address: ipv4ToNumber('10.217.0.10'), dport: 80, backend_slot: 3, proto: 6, pad1: 0, pad2: 0 });
  assert.deepEqual([...k], [10, 217, 0, 10, 0, 80, 3, 0, 6, 0, 0, 0]);
  const b = lb4BackendCodec.encode({ address: ipv4ToNumber('10.213.0.2'), port: 8080, proto: 17, flags: 0 });
  assert.deepEqual([...b], [10, 213, 0, 2, 0x1f, 0x90, 17, 0]);
  const r = lb4RevNatKeyCodec.decode(lb4RevNatKeyCodec.encode({ cookie: 0x1122334455667788n, address: 1, port: 53, pad: 0 }));
  assert.equal(r.cookie, 0x1122334455667788n);
  assert.equal(r.port, 53);
});

test('the proxy config holds the router MAC as six bytes in order and the listener in network order; the marks keep their bits apart', () => {
  const c = { flags: 0, wakeup_bytes: 65536, router_ifindex: 31, router_mac: macToNumber('02:ab:cd:ef:01:23'), pad: 0, proxy_listener: ipv4ToNumber('127.0.0.1') };
  const b = configCodec.encode(c);
  assert.equal(b.length, 24);
  assert.deepEqual([...b.subarray(12, 18)], [0x02, 0xab, 0xcd, 0xef, 0x01, 0x23]);
  assert.deepEqual([...b.subarray(20, 24)], [127, 0, 0, 1]);
  assert.deepEqual(configCodec.decode(b), c);
  assert.equal(numberToMac(c.router_mac), '02:ab:cd:ef:01:23');
  assert.throws(() => macToNumber('02:ab:cd:ef:01'), /not an Ethernet address/);
  assert.equal(proxyMark(15001), 0x3a990a00);
  assert.equal(proxyMark(65535), 0xffff0a00, 'unsigned');
  assert.equal(proxyMark(15001) & MARK_MASK, MARK_TO_PROXY);
  assert.notEqual(MARK_FROM_PROXY & MARK_MASK, MARK_TO_PROXY);
});
