// The addon's wrapper without privileges: error messages say what failed and
// how to fix it, arguments are checked, and the pure helpers (ring buffer
// batches, __sk_buff contexts) round-trip.
import { strict as assert } from 'node:assert';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DatapathError, NOT_ROOT_MESSAGE } from './datapath-error.js';
import { DATAPATH_FEATURES, SOCKET_LB_FEATURES, kernelFeatureMessage, missingKernelFeatures, requireKernelFeatures } from './kernel-features.js';
import { BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP4_SENDMSG, explainNativeError, loadNative, native, type NativeBinding } from './native.js';
import { joinRecords, splitRecords } from './ringbuf-records.js';
import { decodeSkBuff, encodeSkBuff } from './sk-buff.js';

function systemError(code: string, errno: number, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${message}: ${code}`), { code, errno: -errno, syscall: 'bpf', ...extra });
}

test('a missing addon says where it should be and how to build it', () => {
  assert.throws(
    () => loadNative('/nonexistent/build/Release/membrane_bpf.node'),
    (e: unknown) => {
      assert.ok(e instanceof DatapathError);
      assert.equal(e.code, 'MEMBRANE_E_ADDON_MISSING');
      assert.match(e.message, /^the datapath addon is not built: \/nonexistent\/build\/Release\/membrane_bpf\.node is missing; run `npm ci` at the repository root/);
      assert.match(e.message, /apt-get install build-essential libbpf-dev libelf-dev zlib1g-dev/);
      assert.match(e.message, /nodedir=\/usr/);
      return true;
    },
  );
});

test('an addon that does not load says why and how to rebuild it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mbr-addon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bogus = join(dir, 'membrane_bpf.node');
  writeFileSync(bogus, 'not an ELF file');
  assert.throws(
    () => loadNative(bogus),
    (e: unknown) => {
      assert.ok(e instanceof DatapathError);
      assert.equal(e.code, 'MEMBRANE_E_ADDON_BROKEN');
      assert.ok(e.message.startsWith(`the datapath addon ${bogus} does not load (`), e.message);
      assert.match(e.message, /npm rebuild @membrane\/datapath/);
      assert.ok(e.cause instanceof Error);
      return true;
    },
  );
});

test('EPERM without root becomes "needs root", keeping errno and cause', () => {
  const original = systemError('EPERM', 1, 'create map mbr_ipcache (type lpm_trie, key 8, value 8, max entries 1024)');
  const explained = explainNativeError(original, { fn: 'mapCreate', euid: 1000 });
  assert.ok(explained instanceof DatapathError);
  assert.equal(explained.code, 'MEMBRANE_E_NOT_ROOT');
  assert.equal(
    explained.message,
    `${NOT_ROOT_MESSAGE} (create map mbr_ipcache (type lpm_trie, key 8, value 8, max entries 1024): EPERM) [MEMBRANE_E_NOT_ROOT]`,
  );
  assert.equal(explained.errno, -1);
  assert.equal(explained.syscall, 'bpf');
  assert.equal(explained.cause, original);
  // As root, EPERM is the kernel's real answer and passes through untouched.
  assert.equal(explainNativeError(original, { fn: 'mapCreate', euid: 0 }), original);
  // Errors that are not system errors are not touched either.
  const plain = new TypeError('fd must be a number');
  assert.equal(explainNativeError(plain, { fn: 'mapLookup', euid: 1000 }), plain);
});

test('a kernel without a feature is named with the fix', () => {
  const tc = explainNativeError(systemError('ENOENT', 2, 'attach from_container to mbr12 (ifindex 31) at tc ingress (creating the clsact qdisc)'), {
    fn: 'tcAttach',
    euid: 0,
  });
  assert.ok(tc instanceof DatapathError);
  assert.equal(tc.code, 'MEMBRANE_E_KERNEL_FEATURE');
  assert.match(tc.message, /^kernel lacks the clsact qdisc or the BPF classifier \(CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF\): run `modprobe sch_ingress cls_bpf`/);
  assert.match(tc.message, /\(attach from_container to mbr12 \(ifindex 31\) at tc ingress \(creating the clsact qdisc\): ENOENT\)/);

  const nosys = explainNativeError(systemError('ENOSYS', 38, 'create map x'), { fn: 'mapCreate', euid: 0 });
  assert.ok(nosys instanceof DatapathError);
  assert.match(nosys.message, /^kernel has no bpf\(\) system call: boot a kernel built with CONFIG_BPF_SYSCALL=y/);

  const helper = explainNativeError(
    systemError('EINVAL', 22, 'load BPF object bpf_lxc.o', { log: "libbpf: prog 'x': BPF program load failed\nunknown func bpf_ringbuf_reserve#131\n" }),
    { fn: 'loadObject', euid: 0 },
  );
  assert.ok(helper instanceof DatapathError);
  assert.match(helper.message, /^kernel lacks the BPF helper bpf_ringbuf_reserve#131 the program calls/);
  assert.equal((helper as DatapathError).log?.includes('unknown func'), true);

  const ringbuf = DATAPATH_FEATURES.find((f) => f.type === 'ringbuf')!;
  assert.equal(kernelFeatureMessage(ringbuf), 'kernel lacks BPF ring buffers (events): needs Linux 5.8 or newer built with CONFIG_BPF_SYSCALL=y; boot such a kernel');

  // mapCreate's EINVAL is a missing feature only when the probe says the type is absent.
  const fake = {
    mapTypes: { hash: 1, lpm_trie: 11, ringbuf: 27 },
    progTypes: { sched_cls: 3 },
    probeMapType: (type: number) => type !== 27,
    probeProgType: () => true,
  } as unknown as NativeBinding;
  const noRingbuf = explainNativeError(systemError('EINVAL', 22, 'create map mbr_events (type ringbuf, key 0, value 0, max entries 65536)'), {
    fn: 'mapCreate',
    args: [27],
    binding: fake,
    euid: 0,
  });
  assert.ok(noRingbuf instanceof DatapathError);
  assert.match(noRingbuf.message, /^kernel lacks BPF ring buffers \(events\): needs Linux 5\.8/);
  const badArgs = systemError('EINVAL', 22, 'create map x (type hash, key 0, value 4, max entries 1)');
  assert.equal(explainNativeError(badArgs, { fn: 'mapCreate', args: [1], binding: fake, euid: 0 }), badArgs);

  assert.deepEqual(
    missingKernelFeatures(fake, undefined, 0).map((f) => f.type),
    ['percpu_array', 'lru_hash', 'hash_of_maps', 'ringbuf'], // absent from the fake's tables, or probed absent
  );
  assert.throws(() => requireKernelFeatures(fake, undefined, 0), (e: unknown) => e instanceof DatapathError && e.code === 'MEMBRANE_E_KERNEL_FEATURE' && /BPF ring buffers/.test(e.message));
  // Unprivileged probes all fail: that is reported as such, not as a bare kernel.
  assert.throws(() => requireKernelFeatures(fake, undefined, 1000), {
    code: 'MEMBRANE_E_NOT_ROOT',
    message: `probe kernel features: ${NOT_ROOT_MESSAGE} (euid 1000) [MEMBRANE_E_NOT_ROOT]`,
  });
});

test('the addon reports system errors with what it was doing, code and errno', (t) => {
  const b = native();
  assert.throws(
    () => b.setSoMark(-1, 1),
    (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal(e.message, 'set SO_MARK 0x1 on fd -1: EBADF');
      assert.equal((e as NodeJS.ErrnoException).code, 'EBADF');
      assert.equal((e as NodeJS.ErrnoException).errno, -9);
      assert.equal((e as NodeJS.ErrnoException).syscall, 'setsockopt');
      return true;
    },
  );
  const fd = openSync('/dev/null', 'r');
  t.after(() => closeSync(fd));
  assert.throws(() => b.getSoMark(fd), { message: `get SO_MARK on fd ${fd}: ENOTSOCK`, code: 'ENOTSOCK' });
  // libbpf parses the ELF file in user space: no privilege needed to fail here.
  assert.throws(() => b.openObject('/nonexistent/fixture.o'), {
    message: 'open BPF object /nonexistent/fixture.o: ENOENT (libbpf: elf: failed to open /nonexistent/fixture.o: No such file or directory)',
    code: 'ENOENT',
  });
});

test('the addon checks its arguments', () => {
  const b = native();
  assert.throws(() => b.mapLookup('3' as unknown as number, Buffer.alloc(4)), { name: 'TypeError', message: 'fd must be a number', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => b.mapLookup(3, 'key' as unknown as Buffer), { name: 'TypeError', message: 'key must be a Buffer or Uint8Array' });
  assert.throws(() => b.mapUpdate(3.5, Buffer.alloc(4), Buffer.alloc(4)), { name: 'RangeError', message: 'fd must be an integer in [-2147483648, 2147483647], got 3.5' });
  assert.throws(() => b.tcAttach(1, 'sideways' as 'ingress', 0), { name: 'TypeError', message: 'attachPoint must be "ingress" or "egress", got "sideways"' });
  assert.throws(() => b.tcQuery(1, 'ingress', { handle: 0, priority: 1 }), { message: 'tcQuery needs options.handle and options.priority (the ones tcAttach returned)' });
  assert.throws(() => b.ringbufClose({} as never), { name: 'TypeError', message: 'expected a ring buffer handle' });
  assert.throws(() => b.closeObject({ kind: 'BPF object' } as never), { name: 'TypeError', message: 'expected a BPF object handle' });
  assert.throws(() => b.cgroupAttach(3, 7 as unknown as string, 10), { name: 'TypeError', message: 'cgroupPath must be a string' });
  assert.throws(() => b.cgroupQuery('/sys/fs/cgroup', -1), { name: 'RangeError', message: 'attachType must be an integer in [0, 4294967295], got -1' });
  // Opening the cgroup needs no privilege: a missing one fails before bpf(2) is asked.
  assert.throws(() => b.cgroupDetach(3, '/nonexistent/cgroup', 10), { message: 'detach: open cgroup /nonexistent/cgroup: ENOENT', code: 'ENOENT', syscall: 'open' });
  assert.equal(b.isCgroup2('/nonexistent/cgroup'), false);
});

test('cgroupAttach\'s EINVAL is a missing kernel feature only when the kernel has no cgroup socket-address programs', () => {
  const einval = systemError('EINVAL', 22, 'attach program sock4_connect (id 9) to cgroup /sys/fs/cgroup/unified at cgroup_inet4_connect (flags 0x2)');
  const kernel = (has: boolean) => ({ progTypes: { cgroup_sock_addr: 18 }, probeProgType: () => has }) as unknown as NativeBinding;
  const missing = explainNativeError(einval, { fn: 'cgroupAttach', binding: kernel(false), euid: 0 });
  assert.ok(missing instanceof DatapathError);
  assert.equal(missing.code, 'MEMBRANE_E_KERNEL_FEATURE');
  assert.match(missing.message, /^kernel lacks cgroup socket-address BPF programs .*needs Linux 5\.18 or newer built with CONFIG_BPF_SYSCALL=y, CONFIG_CGROUP_BPF/);
  assert.equal(explainNativeError(einval, { fn: 'cgroupAttach', binding: kernel(true), euid: 0 }), einval);
  assert.deepEqual(SOCKET_LB_FEATURES.map((f) => f.type), ['cgroup_sock_addr', 'hash', 'lru_hash']);
});

test('the addon names map, program and attach types as libbpf does', () => {
  const b = native();
  assert.equal(b.attachTypes.cgroup_inet4_connect, BPF_CGROUP_INET4_CONNECT);
  assert.equal(b.attachTypes.cgroup_udp4_sendmsg, BPF_CGROUP_UDP4_SENDMSG);
  assert.equal(b.attachTypes.cgroup_udp4_recvmsg, BPF_CGROUP_UDP4_RECVMSG);
  assert.equal(b.attachTypes.cgroup_inet4_getpeername, BPF_CGROUP_INET4_GETPEERNAME);
  assert.equal(b.progTypes.cgroup_sock_addr, 18);
  assert.match(b.libbpfVersion(), /^1\.\d+$/);
  assert.ok(b.numPossibleCpus() >= 1);
  assert.equal(b.mapTypes.hash, 1);
  assert.equal(b.mapTypes.lpm_trie, 11);
  assert.equal(b.mapTypes.hash_of_maps, 13);
  assert.equal(b.mapTypes.ringbuf, 27);
  assert.equal(b.progTypes.sched_cls, 3);
});

test('ring buffer batches: u32 little-endian length, then the record, unpadded', () => {
  const records = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello ring')];
  const batch = joinRecords(records);
  assert.equal(batch.length, 3 * 4 + 1 + 0 + 10);
  assert.deepEqual(batch.subarray(0, 5), Buffer.from([1, 0, 0, 0, 0x61]));
  assert.deepEqual(splitRecords(batch), records);
  assert.deepEqual(splitRecords(Buffer.alloc(0)), []);
  assert.throws(() => splitRecords(batch.subarray(0, batch.length - 1)), { message: 'ring buffer batch: record at offset 9 claims 10 bytes, 9 remain' });
  assert.throws(() => splitRecords(Buffer.from([1, 0, 0, 0, 0x61, 9])), { message: 'ring buffer batch: 1 stray byte(s) at offset 5 (a record header is 4)' });
});

test('__sk_buff contexts use the layout of <linux/bpf.h>', () => {
  const layout = native().skBuffLayout;
  assert.equal(layout.size, 192);
  assert.equal(layout.offsets.mark, 8);
  assert.equal(layout.offsets.ifindex, 40);
  assert.equal(layout.offsets.cb, 48);
  const ctx = encodeSkBuff({ mark: 0xa00, ifindex: 1, priority: 6, cb: [1, 2, 3], tstamp: 5n }, layout);
  assert.equal(ctx.length, 192);
  assert.equal(ctx.readUInt32LE(8), 0xa00);
  const back = decodeSkBuff(ctx, layout);
  assert.deepEqual(
    { mark: back.mark, ifindex: back.ifindex, priority: back.priority, cb: back.cb, tstamp: back.tstamp },
    { mark: 0xa00, ifindex: 1, priority: 6, cb: [1, 2, 3, 0, 0], tstamp: 5n },
  );
  assert.throws(() => encodeSkBuff({ cb: [1, 2, 3, 4, 5, 6] }, layout), { message: '__sk_buff.cb holds 5 words, got 6' });
});
