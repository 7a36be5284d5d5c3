// Loading the datapath where it cannot work fails with a message that says
// what is missing and how to get it (issue: bad input of the datapath).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Datapath } from './datapath.js';
import { requireRoot } from './test/privileged.js';
import { missingKernelFeatures, requireKernelFeatures } from './kernel-features.js';
import type { NativeBinding } from './native.js';

test('without the compiled programs: says to build them and which packages clang needs', (t) => {
  if (!requireRoot(t, 'the not-built check comes after the root check')) return;
  assert.throws(() => Datapath.open({ objectPath: '/nonexistent/bpf_lxc.o', pinRoot: '/sys/fs/bpf/mbr-never' }), (e: Error) => {
    assert.match(e.message, /the endpoint programs are not built \(\/nonexistent\/bpf_lxc\.o is missing\): run `npm run build`.*apt-get install clang llvm libbpf-dev.*\[MEMBRANE_E_NOT_BUILT\]/);
    return true;
  });
});

test('without root: says it needs root (checked in-process with another effective uid, from any checkout)', (t) => {
  t.mock.method(process as unknown as { geteuid(): number }, 'geteuid', () => 65534);
  assert.throws(() => Datapath.open({ pinRoot: '/sys/fs/bpf/mbr-never' }), {
    message: 'load the datapath: needs root (CAP_BPF/CAP_NET_ADMIN): run as root (euid 65534) [MEMBRANE_E_NOT_ROOT]',
  });
});

test('a kernel without ring buffers or LPM tries: names each missing feature and how to get it', () => {
  const fake = {
    mapTypes: { hash: 1, lpm_trie: 11, ringbuf: 27, percpu_array: 6, lru_hash: 9, hash_of_maps: 13 },
    progTypes: { sched_cls: 3 },
    probeMapType: (t: number) => t !== 27 && t !== 11,
    probeProgType: () => true,
  } as unknown as NativeBinding;
  assert.deepEqual(missingKernelFeatures(fake, undefined, 0).map((f) => f.type), ['lpm_trie', 'ringbuf']);
  assert.throws(
    () => requireKernelFeatures(fake, undefined, 0),
    /kernel lacks LPM trie BPF maps \(ipcache\): needs Linux 4\.11 or newer built with CONFIG_BPF_SYSCALL=y; boot such a kernel; kernel lacks BPF ring buffers \(events\): needs Linux 5\.8 or newer.*\[MEMBRANE_E_KERNEL_FEATURE\]/,
  );
});
