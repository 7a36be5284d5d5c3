// Finding the cgroup v2 hierarchy to attach to, without root.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { MEMBRANE_CGROUP2_MOUNT, cgroup2Mounts, resolveCgroup2 } from './cgroup2.js';

const HYBRID = `tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
cgroup2 /mnt/with\\040space cgroup2 rw 0 0
`;

test('cgroup2 mounts are read from /proc/mounts in order, escapes undone; cgroup v1 is not one', () => {
  assert.deepEqual(cgroup2Mounts(HYBRID), ['/sys/fs/cgroup/unified', '/mnt/with space']);
  assert.deepEqual(cgroup2Mounts('cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n'), []);
});

test('the first mount that is cgroup v2 is used; with none, Membrane mounts its own and says so', () => {
  const mountedAt: string[] = [];
  const nb = {
    isCgroup2: (p: string) => p === '/sys/fs/cgroup/unified',
    mountCgroup2: (p: string) => {
      mountedAt.push(p);
      return { path: p, mounted: true };
    },
  };
  assert.deepEqual(resolveCgroup2(nb, undefined, HYBRID), { path: '/sys/fs/cgroup/unified', mounted: false });
  assert.deepEqual(resolveCgroup2(nb, undefined, 'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n'), { path: MEMBRANE_CGROUP2_MOUNT, mounted: true });
  assert.deepEqual(mountedAt, ['/run/membrane/cgroup2']);
  assert.deepEqual(resolveCgroup2(nb, '/sys/fs/cgroup/unified'), { path: '/sys/fs/cgroup/unified', mounted: false });
  assert.throws(() => resolveCgroup2(nb, '/sys/fs/cgroup/cpu'), {
    code: 'MEMBRANE_E_DATAPATH',
    message: /^\/sys\/fs\/cgroup\/cpu is not a cgroup v2 directory: the socket load balancer attaches to the cgroup v2 hierarchy/,
  });
});
