// The addon against the real kernel, as root: the fixture classifier
// (bpf/test/fixture.c) loaded, its maps read and written one by one and in
// batches, pinned and reopened, run through BPF_PROG_TEST_RUN with its events
// read from the ring buffer, attached with tc in namespaces this test makes
// and exercised with real TCP traffic, plus socket options over loopback.
// Every kernel object is named after this run (mbrt<pid>, mbr-test-<pid>),
// registered for cleanup on the line after it is made, and the last test
// checks that none is left.
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Cleanup } from './cleanup.js';
import { NOT_ROOT_MESSAGE } from './datapath-error.js';
import { ipv4ToNumber, numberToIPv4 } from './codecs.js';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  TC_ACT_OK,
  TC_ACT_SHOT,
  native,
  type BpfObjectHandle,
  type LoadObjectOptions,
  type NativeBinding,
  type ObjectMap,
} from './native.js';
import { requireKernelFeatures } from './kernel-features.js';
import { splitRecords } from './ringbuf-records.js';
import { decodeSkBuff, encodeSkBuff } from './sk-buff.js';
import { socketFd } from './socket-fd.js';
import {
  FIXTURE_OBJECT,
  REJECTED_OBJECT,
  FX_EVENT_PACKET,
  FX_MAPS,
  FX_POLICY_ENDPOINT,
  FX_PROGRAM,
  FxCounter,
  FxMode,
  fxEventCodec,
  fxLpmKeyCodec,
  u16,
  u32,
  u64,
  type FxEvent,
} from './test/fixture-abi.js';
import { buildPacket } from './test/packets.js';

const execFileP = promisify(execFile);
const ROOT = process.geteuid?.() === 0;
/** Names of this run's namespaces and links (≤ 15 characters with a suffix). */
const RUN = `mbrt${process.pid}`;
const PIN_DIR = `/sys/fs/bpf/mbr-test-${process.pid}`;

function privileged(t: TestContext): boolean {
  if (ROOT) return true;
  t.diagnostic(`SKIPPED (not root): ${NOT_ROOT_MESSAGE}`);
  t.skip(`${NOT_ROOT_MESSAGE}: loads BPF programs, pins maps and creates network namespaces`);
  return false;
}

/** Undoes everything registered, newest first, when the test ends (pass or fail). */
function cleanupFor(t: TestContext): Cleanup {
  const c = new Cleanup();
  t.after(() => c.run());
  return c;
}

interface Fixture {
  b: NativeBinding;
  obj: BpfObjectHandle;
  prog: number;
  maps: Record<(typeof FX_MAPS)[keyof typeof FX_MAPS], ObjectMap>;
}

function loadFixture(c: Cleanup, options?: LoadObjectOptions): Fixture {
  assert.ok(existsSync(FIXTURE_OBJECT), `${FIXTURE_OBJECT} is missing: run \`npm run build\` (it compiles bpf/**/*.c)`);
  const b = native();
  const obj = b.openObject(FIXTURE_OBJECT);
  c.add('close the fixture object', () => b.closeObject(obj));
  b.loadObject(obj, options);
  const prog = b.objectPrograms(obj).find((p) => p.name === FX_PROGRAM);
  assert.ok(prog && prog.fd > 0, `${FX_PROGRAM} was not loaded`);
  const maps = Object.fromEntries(b.objectMaps(obj).map((m) => [m.name, m])) as Fixture['maps'];
  return { b, obj, prog: prog.fd, maps };
}

function counter(f: Fixture, key: number): bigint {
  return f.b.mapLookup(f.maps.mbr_fx_count.fd, u32(key))?.readBigUInt64LE() ?? 0n;
}

function setMode(f: Fixture, mode: number): void {
  f.b.mapUpdate(f.maps.mbr_fx_config.fd, u32(0), u32(mode));
}

/** Collects fixture events from the ring buffer as the event loop delivers them. */
function openEvents(f: Fixture, c: Cleanup): { events: FxEvent[]; batches: Buffer[]; ring: ReturnType<NativeBinding['ringbufOpen']> } {
  const events: FxEvent[] = [];
  const batches: Buffer[] = [];
  const ring = f.b.ringbufOpen(f.maps.mbr_fx_events.fd, (batch) => {
    batches.push(batch);
    for (const r of splitRecords(batch)) events.push(fxEventCodec.decode(r));
  });
  c.add('close the ring buffer', () => f.b.ringbufClose(ring));
  return { events, batches, ring };
}

/** Waits, without blocking the event loop, until get() returns something. */
async function until<T>(what: string, get: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP('ip', args, { encoding: 'utf8' });
    return stdout;
  } catch (e) {
    throw new Error(`ip ${args.join(' ')}: ${(e as { stderr?: string }).stderr?.trim() || String(e)}`);
  }
}

test('the fixture object lists its programs and maps', (t) => {
  if (!privileged(t)) return;
  requireKernelFeatures(native()); // this kernel has everything the datapath uses
  const c = cleanupFor(t);
  const f = loadFixture(c);
  const prog = f.b.objectPrograms(f.obj).find((p) => p.name === FX_PROGRAM)!;
  assert.deepEqual({ section: prog.section, typeName: prog.typeName }, { section: 'tc', typeName: 'sched_cls' });
  const shape = (m: ObjectMap) => ({ typeName: m.typeName, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags });
  assert.deepEqual(shape(f.maps.mbr_fx_count), { typeName: 'hash', keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 });
  assert.deepEqual(shape(f.maps.mbr_fx_lpm), { typeName: 'lpm_trie', keySize: 8, valueSize: 4, maxEntries: 64, flags: 1 });
  assert.deepEqual(shape(f.maps.mbr_fx_events), { typeName: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 65536, flags: 0 });
  assert.equal(f.maps.mbr_fx_policy.typeName, 'hash_of_maps');
  for (const m of Object.values(f.maps)) assert.ok(m.fd > 0, `${m.name} has no fd`);
  const info = f.b.mapInfo(f.maps.mbr_fx_lpm.fd);
  assert.deepEqual({ name: info.name, typeName: info.typeName, keySize: info.keySize }, { name: 'mbr_fx_lpm', typeName: 'lpm_trie', keySize: 8 });
  assert.equal(f.b.progInfo(f.prog).name, FX_PROGRAM);
  assert.match(f.b.progInfo(f.prog).tag, /^[0-9a-f]{16}$/);

  f.b.closeObject(f.obj);
  f.b.closeObject(f.obj); // idempotent
  assert.throws(() => f.b.objectMaps(f.obj), { code: 'MEMBRANE_E_CLOSED', message: `BPF object ${FIXTURE_OBJECT} is closed` });
});

test('a program the verifier rejects fails to load with the reason and the log', (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const b = native();
  const obj = b.openObject(REJECTED_OBJECT);
  c.add('close the rejected object', () => b.closeObject(obj));
  assert.throws(
    () => b.loadObject(obj),
    (e: NodeJS.ErrnoException & { log?: string }) => {
      assert.equal(e.code, 'EACCES');
      assert.equal(
        e.message,
        `load BPF object ${REJECTED_OBJECT}: EACCES (libbpf: prog 'mbr_fx_rejected': BPF program load failed: Permission denied; verifier: R1 offset is outside of the packet)`,
      );
      assert.match(e.log ?? '', /-- BEGIN PROG LOAD LOG --/);
      return true;
    },
  );
  assert.throws(() => b.loadObject(obj), { code: 'MEMBRANE_E_ALREADY_LOADED' });
});

test('hash map: lookup, update flags, delete, key iteration and batches', (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const f = loadFixture(c);
  const { b } = f;
  const fd = f.maps.mbr_fx_count.fd;

  assert.equal(b.mapLookup(fd, u32(7)), null);
  b.mapUpdate(fd, u32(7), u64(70), BPF_NOEXIST);
  assert.deepEqual(b.mapLookup(fd, u32(7)), u64(70));
  assert.throws(
    () => b.mapUpdate(fd, u32(7), u64(71), BPF_NOEXIST),
    (e: NodeJS.ErrnoException) => {
      assert.equal(e.message, `update key 07000000 in map mbr_fx_count (fd ${fd}): EEXIST`);
      assert.equal(e.code, 'EEXIST');
      assert.equal(e.errno, -17);
      return true;
    },
  );
  assert.throws(() => b.mapUpdate(fd, u32(8), u64(80), BPF_EXIST), { code: 'ENOENT' });
  b.mapUpdate(fd, u32(7), u64(77), BPF_EXIST);
  assert.deepEqual(b.mapLookup(fd, u32(7)), u64(77));
  assert.equal(b.mapDelete(fd, u32(7)), true);
  assert.equal(b.mapDelete(fd, u32(7)), false);
  assert.throws(() => b.mapLookup(fd, Buffer.alloc(2)), { name: 'RangeError', message: `look up a key in map mbr_fx_count (fd ${fd}): key is 2 bytes, the map's is 4` });
  assert.throws(() => b.mapUpdate(fd, u32(1), u32(1)), { message: `update map mbr_fx_count (fd ${fd}): value is 4 bytes, the map's is 8` });

  // Key iteration visits every key once.
  for (let k = 0; k < 10; k++) b.mapUpdate(fd, u32(k), u64(k * 10), BPF_ANY);
  const seen: number[] = [];
  for (let key = b.mapGetNextKey(fd, null); key; key = b.mapGetNextKey(fd, key)) seen.push(key.readUInt32LE());
  assert.deepEqual(seen.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

  // Batches: the kernel's commands on a hash map (max entries 16).
  const keys = Buffer.concat(Array.from({ length: 16 }, (_, i) => u32(100 + i)));
  const values = Buffer.concat(Array.from({ length: 16 }, (_, i) => u64(1000 + i)));
  assert.deepEqual(b.mapDeleteBatch(fd, Buffer.concat(seen.map(u32))), { count: 10, batched: true });
  assert.deepEqual(b.mapUpdateBatch(fd, keys, values), { count: 16, batched: true });
  const all = b.mapLookupBatch(fd, { batchSize: 5 });
  assert.equal(all.count, 16);
  assert.equal(all.batched, true);
  const read = new Map<number, bigint>();
  for (let i = 0; i < all.count; i++) read.set(all.keys.readUInt32LE(i * 4), all.values.readBigUInt64LE(i * 8));
  assert.deepEqual([...read.keys()].sort((x, y) => x - y), Array.from({ length: 16 }, (_, i) => 100 + i));
  assert.equal(read.get(105), 1005n);
  // A full map refuses a 17th key; the error says which entry failed and how many went in.
  assert.throws(() => b.mapUpdateBatch(fd, u32(999), u64(1)), (e: NodeJS.ErrnoException & { count?: number }) => {
    assert.equal(e.code, 'E2BIG');
    assert.match(e.message, /^update 1 entries of map mbr_fx_count \(fd \d+\): entry 0 \(key e7030000\): E2BIG$/);
    assert.equal(e.count, 0);
    return true;
  });
  // Missing keys in a delete batch are skipped.
  const del = b.mapDeleteBatch(fd, Buffer.concat([u32(100), u32(4242), u32(101), u32(4343)]));
  assert.deepEqual(del, { count: 2, batched: true });
  assert.equal(b.mapLookupBatch(fd).count, 14);
});

test('LPM trie: longest-prefix match, batch update, read and delete', (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const f = loadFixture(c);
  const { b } = f;
  const fd = f.maps.mbr_fx_lpm.fd;
  const key = (cidr: string) => {
    const [addr, len] = cidr.split('/');
    return fxLpmKeyCodec.encode({ prefixlen: Number(len ?? 32), addr: ipv4ToNumber(addr!) });
  };
  const prefixes: [string, number][] = [
    ['0.0.0.0/0', 2],
    ['10.200.0.0/16', 7],
    ['10.200.1.0/24', 9],
    ['10.200.1.7/32', 11],
  ];
  const res = b.mapUpdateBatch(fd, Buffer.concat(prefixes.map(([p]) => key(p))), Buffer.concat(prefixes.map(([, v]) => u32(v))));
  assert.equal(res.count, 4); // batched or not depends on the kernel (tries have batch commands since 6.x)
  const lookup = (addr: string) => b.mapLookup(fd, key(addr))?.readUInt32LE() ?? null;
  assert.equal(lookup('10.200.1.7'), 11);
  assert.equal(lookup('10.200.1.8'), 9);
  assert.equal(lookup('10.200.2.1'), 7);
  assert.equal(lookup('192.0.2.1'), 2);
  b.mapDelete(fd, key('0.0.0.0/0'));
  assert.equal(lookup('192.0.2.1'), null);

  const all = b.mapLookupBatch(fd);
  const got = Array.from({ length: all.count }, (_, i) => {
    const k = fxLpmKeyCodec.decode(all.keys, i * 8);
    return `${numberToIPv4(k.addr)}/${k.prefixlen}=${all.values.readUInt32LE(i * 4)}`;
  }).sort();
  assert.deepEqual(got, ['10.200.0.0/16=7', '10.200.1.0/24=9', '10.200.1.7/32=11']);
  assert.equal(b.mapDeleteBatch(fd, Buffer.concat([key('10.200.0.0/16'), key('10.9.0.0/16')])).count, 1);
  assert.equal(lookup('10.200.2.1'), null);
});

test('maps without batch commands (devmap_hash) are read, written and deleted one by one', (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const b = native();
  const fd = b.mapCreate(b.mapTypes.devmap_hash!, 'mbr_fx_devs', 4, 4, 8);
  c.add('close the devmap', () => b.closeFd(fd));
  // Values are ifindexes; lo (1) exists in every namespace.
  const keys = Buffer.concat([u32(3), u32(5), u32(7)]);
  assert.deepEqual(b.mapUpdateBatch(fd, keys, Buffer.concat([u32(1), u32(1), u32(1)])), { count: 3, batched: false });
  const all = b.mapLookupBatch(fd);
  assert.deepEqual({ count: all.count, batched: all.batched }, { count: 3, batched: false });
  assert.deepEqual([0, 1, 2].map((i) => all.keys.readUInt32LE(i * 4)).sort(), [3, 5, 7]);
  assert.deepEqual(b.mapDeleteBatch(fd, Buffer.concat([u32(5), u32(6)])), { count: 1, batched: false });
  assert.equal(b.mapLookupBatch(fd).count, 2);
  // A failing entry is named, with how many went in before it.
  assert.throws(() => b.mapUpdateBatch(fd, Buffer.concat([u32(9), u32(10)]), Buffer.concat([u32(1), u32(999999)])), (e: NodeJS.ErrnoException & { count?: number }) => {
    assert.match(e.message, /^update 2 entries of map mbr_fx_devs \(fd \d+\): entry 1 \(key 0a000000\) one by one: EINVAL$/);
    assert.equal(e.count, 1);
    return true;
  });
});

test(`pins under /sys/fs/bpf/mbr-test-<pid>: reuse on load, reopen by path, unpin`, (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const b = native();
  const { mounted } = b.ensureBpffs();
  if (mounted) t.diagnostic('mounted bpffs on /sys/fs/bpf (it was not mounted)');
  assert.equal(b.isBpffs('/sys/fs/bpf'), true);
  assert.equal(b.isBpffs('/tmp'), false);

  mkdirSync(PIN_DIR);
  c.add(`remove ${PIN_DIR}`, () => rmSync(PIN_DIR, { recursive: true, force: true }));
  const countPin = `${PIN_DIR}/count`;

  // The first load creates the map and pins it; the second reuses the pin.
  const first = loadFixture(c, { pinMaps: { [FX_MAPS.count]: countPin } });
  assert.deepEqual({ pinPath: first.maps.mbr_fx_count.pinPath, pinned: first.maps.mbr_fx_count.pinned }, { pinPath: countPin, pinned: true });
  b.mapUpdate(first.maps.mbr_fx_count.fd, u32(5), u64(55));
  const second = loadFixture(c, { pinMaps: { [FX_MAPS.count]: countPin } });
  const id = b.mapInfo(first.maps.mbr_fx_count.fd).id;
  assert.equal(b.mapInfo(second.maps.mbr_fx_count.fd).id, id);
  assert.deepEqual(b.mapLookup(second.maps.mbr_fx_count.fd, u32(5)), u64(55));
  // Other maps of the second object are its own.
  assert.notEqual(b.mapInfo(second.maps.mbr_fx_lpm.fd).id, b.mapInfo(first.maps.mbr_fx_lpm.fd).id);

  // reuseMaps shares a map by fd; an unknown map name is refused before loading.
  const third = loadFixture(c, { reuseMaps: { [FX_MAPS.lpm]: first.maps.mbr_fx_lpm.fd } });
  assert.equal(b.mapInfo(third.maps.mbr_fx_lpm.fd).id, b.mapInfo(first.maps.mbr_fx_lpm.fd).id);
  const obj = b.openObject(FIXTURE_OBJECT);
  c.add('close the object that was not loaded', () => b.closeObject(obj));
  assert.throws(() => b.loadObject(obj, { pinMaps: { mbr_nope: `${PIN_DIR}/nope` } }), {
    code: 'MEMBRANE_E_NO_SUCH_MAP',
    message: /^load BPF object .*fixture\.o: pinMaps names map "mbr_nope", which the object does not have \(it has: .*mbr_fx_count/,
  });

  // Pin by fd and reopen by path.
  const reopened = b.objGet(countPin);
  c.add('close the reopened map', () => b.closeFd(reopened));
  assert.equal(b.mapInfo(reopened).id, id);
  assert.deepEqual(b.mapLookup(reopened, u32(5)), u64(55));
  const lpmPin = `${PIN_DIR}/lpm`;
  b.objPin(first.maps.mbr_fx_lpm.fd, lpmPin);
  assert.throws(() => b.objPin(first.maps.mbr_fx_lpm.fd, lpmPin), { code: 'EEXIST', message: `pin fd ${first.maps.mbr_fx_lpm.fd} at ${lpmPin}: EEXIST` });
  const readOnly = b.objGet(lpmPin, { readOnly: true });
  c.add('close the read-only map', () => b.closeFd(readOnly));
  assert.equal(b.mapInfo(readOnly).id, b.mapInfo(first.maps.mbr_fx_lpm.fd).id);
  assert.throws(() => b.mapUpdate(readOnly, fxLpmKeyCodec.encode({ prefixlen: 8, addr: ipv4ToNumber('10.0.0.0') }), u32(1)), { code: 'EPERM' });

  // Unpinning is unlinking; the maps live on while fds hold them.
  rmSync(countPin);
  rmSync(lpmPin);
  assert.throws(() => b.objGet(countPin), { code: 'ENOENT', message: `open pinned object ${countPin}: ENOENT` });
  assert.deepEqual(b.mapLookup(reopened, u32(5)), u64(55));
  rmSync(PIN_DIR, { recursive: true });
  assert.equal(existsSync(PIN_DIR), false);
});

test('ensureBpffs mounts a BPF filesystem where there is none, once', async (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const b = native();
  const dir = join(tmpdir(), `mbr-test-${process.pid}-bpffs`);
  assert.equal(b.isBpffs(dir), false); // missing
  mkdirSync(dir);
  c.add(`remove ${dir}`, () => rmdirSync(dir));
  assert.equal(b.isBpffs(dir), false); // a plain directory
  assert.deepEqual(b.ensureBpffs(dir), { path: dir, mounted: true });
  c.add(`unmount ${dir}`, async () => void (await execFileP('umount', [dir])));
  assert.equal(b.isBpffs(dir), true);
  assert.deepEqual(b.ensureBpffs(dir), { path: dir, mounted: false });
  // Pinning works there like under /sys/fs/bpf.
  const fd = b.mapCreate(b.mapTypes.hash!, 'mbr_fx_tmp', 4, 4, 1);
  c.add('close the map', () => b.closeFd(fd));
  b.objPin(fd, join(dir, 'm'));
  const again = b.objGet(join(dir, 'm'));
  c.add('close the reopened map', () => b.closeFd(again));
  assert.equal(b.mapInfo(again).name, 'mbr_fx_tmp');
});

test('progTestRun: verdicts from maps, counters, __sk_buff context and ring buffer batches', async (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const f = loadFixture(c);
  const { b } = f;
  const { events, batches, ring } = openEvents(f, c);
  b.mapUpdate(f.maps.mbr_fx_lpm.fd, fxLpmKeyCodec.encode({ prefixlen: 24, addr: ipv4ToNumber('192.0.2.0') }), u32(4242));

  const spec = { src: '198.51.100.7', dst: '192.0.2.10', proto: 'tcp', sport: 40000, dport: 80 } as const;
  const syn = buildPacket(spec);
  const ctxIn = encodeSkBuff({ ifindex: 1, mark: 0x42, priority: 3 }, b.skBuffLayout);
  const allowed = b.progTestRun(f.prog, syn, { ctxIn });
  assert.equal(allowed.retval, TC_ACT_OK);
  assert.deepEqual(allowed.dataOut, syn);
  assert.ok(allowed.ctxOut);
  assert.deepEqual(
    (({ mark, priority }) => ({ mark, priority }))(decodeSkBuff(allowed.ctxOut, b.skBuffLayout)),
    { mark: 0x42, priority: 3 },
  );
  assert.deepEqual([counter(f, FxCounter.PACKETS), counter(f, FxCounter.IPV4), counter(f, FxCounter.TCP), counter(f, FxCounter.DROPPED)], [1n, 1n, 1n, 0n]);

  // The event arrives through the libuv poll, as the observer will get it.
  const first = await until('the ring buffer event of the first run', () => events[0]);
  assert.deepEqual(first, {
    kind: FX_EVENT_PACKET,
    ifindex: 1,
    len: syn.length,
    mark: 0x42,
    saddr: ipv4ToNumber('198.51.100.7'),
    daddr: ipv4ToNumber('192.0.2.10'),
    sport: 40000,
    dport: 80,
    proto: 6,
    verdict: TC_ACT_OK,
    pad: 0,
    identity: 4242,
  });

  // A map value flips the verdict.
  setMode(f, FxMode.DROP_ALL);
  assert.equal(b.progTestRun(f.prog, syn).retval, TC_ACT_SHOT);
  assert.equal(counter(f, FxCounter.DROPPED), 1n);

  // Per-port deny through an inner map created from user space.
  setMode(f, FxMode.POLICY);
  const inner = b.mapCreate(b.mapTypes.hash!, 'mbr_fx_ports', 2, 1, 64);
  c.add('close the inner map', () => b.closeFd(inner));
  b.mapUpdate(inner, u16(80), Buffer.from([1]));
  b.mapUpdate(f.maps.mbr_fx_policy.fd, u32(FX_POLICY_ENDPOINT), u32(inner));
  // Looking up an outer map from user space gives the inner map's id.
  assert.equal(b.mapLookup(f.maps.mbr_fx_policy.fd, u32(FX_POLICY_ENDPOINT))?.readUInt32LE(), b.mapInfo(inner).id);
  assert.equal(b.progTestRun(f.prog, syn).retval, TC_ACT_SHOT);
  assert.equal(b.progTestRun(f.prog, buildPacket({ ...spec, dport: 443 })).retval, TC_ACT_OK);
  assert.throws(() => b.mapCreate(b.mapTypes.hash_of_maps!, 'mbr_fx_bad', 4, 4, 8), { code: /^(EINVAL|EBADF)$/, message: /^create map mbr_fx_bad \(type hash_of_maps, key 4, value 4, max entries 8\): / }); // no inner map template

  await until('four events', () => (events.length >= 4 ? events : undefined));
  assert.deepEqual(
    events.map((e) => [e.dport, e.verdict]),
    [
      [80, TC_ACT_OK],
      [80, TC_ACT_SHOT],
      [80, TC_ACT_SHOT],
      [443, TC_ACT_OK],
    ],
  );

  // 50 runs, then one synchronous drain: one batch holding 50 records.
  batches.length = 0;
  events.length = 0;
  const run = b.progTestRun(f.prog, syn, { repeat: 50 });
  assert.equal(run.retval, TC_ACT_SHOT);
  assert.equal(b.ringbufConsume(ring), 50);
  assert.equal(batches.length, 1);
  assert.equal(batches[0]!.length, 50 * (4 + fxEventCodec.size));
  assert.equal(events.length, 50);
  assert.equal(counter(f, FxCounter.EVENTS_LOST), 0n);

  b.ringbufClose(ring);
  b.ringbufClose(ring); // idempotent
  assert.throws(() => b.ringbufConsume(ring), { code: 'MEMBRANE_E_CLOSED', message: 'ring buffer handle is closed' });

  // maxBatchBytes cuts batches: 50 records of 40 bytes (header included) in 200-byte batches.
  const recordBytes = 4 + fxEventCodec.size;
  const cut: Buffer[] = [];
  const small = b.ringbufOpen(f.maps.mbr_fx_events.fd, (batch) => cut.push(batch), { maxBatchBytes: 5 * recordBytes });
  c.add('close the small-batch ring buffer', () => b.ringbufClose(small));
  b.progTestRun(f.prog, syn, { repeat: 50 });
  assert.equal(b.ringbufConsume(small), 50);
  assert.deepEqual(
    cut.map((x) => splitRecords(x).length),
    Array.from({ length: 10 }, () => 5),
  );
  b.ringbufClose(small);

  // Closing from inside the callback stops delivery at once.
  let calls = 0;
  const selfClosing = b.ringbufOpen(
    f.maps.mbr_fx_events.fd,
    () => {
      calls++;
      b.ringbufClose(selfClosing);
    },
    { maxBatchBytes: recordBytes },
  );
  c.add('close the self-closing ring buffer', () => b.ringbufClose(selfClosing));
  b.progTestRun(f.prog, syn, { repeat: 3 });
  assert.equal(b.ringbufConsume(selfClosing), 1);
  await new Promise((r) => setTimeout(r, 50)); // the loop runs; nothing more arrives
  assert.equal(calls, 1);
});

test('tc attach/detach on a veth pair between two namespaces this test creates, with real TCP traffic', async (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const nsA = `${RUN}a`;
  const nsB = `${RUN}b`;
  const ifA = `${RUN}x`;
  const ifB = `${RUN}y`;
  await ip('netns', 'add', nsA);
  c.add(`netns ${nsA}`, async () => void (await ip('netns', 'del', nsA)));
  await ip('netns', 'add', nsB);
  c.add(`netns ${nsB}`, async () => void (await ip('netns', 'del', nsB)));
  await ip('link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
  c.add(`veth ${ifA}`, async () => void (await ip('-n', nsA, 'link', 'del', ifA)));
  for (const [ns, dev, addr] of [
    [nsA, ifA, '192.0.2.1/24'],
    [nsB, ifB, '192.0.2.2/24'],
  ] as const) {
    await ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
    await ip('-n', ns, 'link', 'set', dev, 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  const linkOf = async (ns: string, dev: string) => (JSON.parse(await ip('-j', '-n', ns, 'link', 'show', 'dev', dev)) as { ifindex: number; address: string }[])[0]!;
  const a = await linkOf(nsA, ifA);
  const bLink = await linkOf(nsB, ifB);
  // Static neighbours: a dropped ARP must not be what makes a connection fail.
  await ip('-n', nsA, 'neigh', 'replace', '192.0.2.2', 'lladdr', bLink.address, 'dev', ifA, 'nud', 'permanent');
  await ip('-n', nsB, 'neigh', 'replace', '192.0.2.1', 'lladdr', a.address, 'dev', ifB, 'nud', 'permanent');

  const f = loadFixture(c);
  const { b } = f;
  const { events } = openEvents(f, c);
  const netns = `/run/netns/${nsB}`;
  const filter = { netns, handle: 1, priority: 1 };

  const attached = b.tcAttach(bLink.ifindex, 'ingress', f.prog, filter);
  c.add(`clsact on ${ifB}`, () => void b.tcHookDestroy(bLink.ifindex, { netns }));
  assert.deepEqual(attached, { handle: 1, priority: 1, progId: b.progInfo(f.prog).id });
  assert.deepEqual(b.tcQuery(bLink.ifindex, 'ingress', filter), attached);
  assert.throws(
    () => b.tcAttach(bLink.ifindex, 'ingress', f.prog, filter),
    (e: NodeJS.ErrnoException) => {
      assert.equal(e.message, `attach ${FX_PROGRAM} to ${ifB} (ifindex ${bLink.ifindex}) at tc ingress in netns ${netns}: EEXIST`);
      assert.equal(e.code, 'EEXIST');
      assert.equal(e.errno, -17);
      return true;
    },
  );
  assert.deepEqual(b.tcAttach(bLink.ifindex, 'ingress', f.prog, { ...filter, replace: true, name: 'from-container' }), attached);
  // The other attach point, with a kernel-chosen priority.
  const egress = b.tcAttach(bLink.ifindex, 'egress', f.prog, { netns, handle: 1 });
  assert.ok(egress.priority > 0);
  assert.equal(b.tcDetach(bLink.ifindex, 'egress', { netns, handle: 1, priority: egress.priority }), true);

  const server = spawn(
    'ip',
    ['netns', 'exec', nsB, process.execPath, '-e', "require('net').createServer((s) => s.end('ok')).listen(8080, '192.0.2.2', () => console.log('listening'))"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  c.add(`server in ${nsB} (pid ${server.pid})`, async () => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    const exited = once(server, 'exit');
    server.kill();
    await exited;
  });
  await until('the server in the namespace to listen', () => ((server.stdout?.read() as Buffer | null)?.toString().includes('listening') ? true : undefined), 10000);

  const client = async (): Promise<string> => {
    const js =
      "const s = require('net').connect({ host: '192.0.2.2', port: 8080, timeout: 1500 });" +
      "s.on('data', (d) => { console.log('connected ' + d); s.destroy(); });" +
      "s.on('timeout', () => { console.log('timeout'); s.destroy(); });" +
      "s.on('error', (e) => console.log('error ' + e.code));";
    const { stdout } = await execFileP('ip', ['netns', 'exec', nsA, process.execPath, '-e', js], { encoding: 'utf8', timeout: 15000 });
    return stdout.trim();
  };
  const synsTo8080 = (verdict: number) => events.filter((e) => e.ifindex === bLink.ifindex && e.saddr === ipv4ToNumber('192.0.2.1') && e.proto === 6 && e.dport === 8080 && e.verdict === verdict);

  assert.equal(await client(), 'connected ok');
  await until('an allowed TCP event from the namespace', () => (synsTo8080(TC_ACT_OK).length > 0 ? true : undefined));

  setMode(f, FxMode.DROP_ALL);
  assert.equal(await client(), 'timeout');
  await until('a dropped TCP event', () => (synsTo8080(TC_ACT_SHOT).length > 0 ? true : undefined));
  assert.ok(counter(f, FxCounter.DROPPED) >= 1n);

  // Detached, the program no longer drops: the same client connects.
  assert.equal(b.tcDetach(bLink.ifindex, 'ingress', filter), true);
  assert.equal(b.tcQuery(bLink.ifindex, 'ingress', filter), null);
  assert.equal(b.tcDetach(bLink.ifindex, 'ingress', filter), false);
  assert.equal(await client(), 'connected ok');
  assert.equal(b.tcHookDestroy(bLink.ifindex, { netns }), true);
  assert.equal(b.tcHookDestroy(bLink.ifindex, { netns }), false);
  // No clsact qdisc at all any more: nothing to detach, not an error.
  assert.equal(b.tcDetach(bLink.ifindex, 'ingress', filter), false);
});

test('socket options on a TCP connection over loopback', async (t) => {
  if (!privileged(t)) return;
  const c = cleanupFor(t);
  const b = native();
  const accepted: Socket[] = [];
  const server = createServer((s) => {
    accepted.push(s);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  c.add('close the server', () => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  c.add('close the client', () => void client.destroy());
  await once(client, 'connect');

  const fd = socketFd(client);
  assert.equal(b.getSoMark(fd), 0);
  b.setSoMark(fd, 0x0a00);
  assert.equal(b.getSoMark(fd), 0x0a00);
  client.write('ping');
  const [echo] = (await once(client, 'data')) as [Buffer];
  assert.equal(echo.toString(), 'ping');

  const listener = socketFd(server);
  assert.equal(b.getIpTransparent(listener), false);
  b.setIpTransparent(listener, true);
  assert.equal(b.getIpTransparent(listener), true);
  b.setIpTransparent(listener, false);
  assert.equal(b.getIpTransparent(listener), false);

  // SO_ORIGINAL_DST answers only for connections netfilter conntrack tracked.
  const conn = await until('the accepted connection', () => accepted[0]);
  c.add('close the accepted connection', () => void conn.destroy());
  try {
    assert.deepEqual(b.getOriginalDst(socketFd(conn)), { address: '127.0.0.1', port, family: 4 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    assert.ok(err.code === 'ENOENT' || err.code === 'MEMBRANE_E_KERNEL_FEATURE', String(e));
    assert.match(err.message, /SO_ORIGINAL_DST/);
    t.diagnostic(`getOriginalDst without a conntrack entry: ${err.message}`);
  }
});

test('leaves nothing with this run’s prefix behind (netns, links, pins)', async (t) => {
  if (!privileged(t)) return;
  const namespaces = (await ip('netns', 'list')).split('\n').filter((l) => l.startsWith(RUN));
  assert.deepEqual(namespaces, []);
  const links = (await ip('-o', 'link', 'show')).split('\n').filter((l) => l.includes(RUN));
  assert.deepEqual(links, []);
  const pins = existsSync('/sys/fs/bpf') ? readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(`mbr-test-${process.pid}`)) : [];
  assert.deepEqual(pins, []);
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.includes(`mbr-test-${process.pid}`));
  assert.deepEqual(mounts, []);
});
