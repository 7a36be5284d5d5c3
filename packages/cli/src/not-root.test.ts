// Commands that need root refuse without it, with the exit code and the
// whole message (checked in-process under another effective uid, so the
// test runs from any checkout, whoever can read it).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { main } from './main.js';

function capture(): { out: string[]; err: string[]; io: { out(s: string): void; err(s: string): void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s) => void out.push(s), err: (s) => void err.push(s) } };
}

for (const argv of [['up'], ['down'], ['agent']]) {
  test(`membrane ${argv.join(' ')} without root: exit 2 and says it needs root`, async (t) => {
    t.mock.method(process as unknown as { geteuid(): number }, 'geteuid', () => 65534);
    const c = capture();
    const code = await main(argv, c.io);
    assert.equal(code, 2, c.err.join(''));
    assert.match(c.err.join(''), /^membrane: (membrane )?\w+ needs root \(CAP_BPF\/CAP_NET_ADMIN\): run as root \[MEMBRANE_E_NOT_ROOT\]\n$/);
  });
}

test('membrane policy test --live without root: exit 2 and says why, before anything starts', async (t) => {
  t.mock.method(process as unknown as { geteuid(): number }, 'geteuid', () => 65534);
  const c = capture();
  const code = await main(['policy', 'test', '--live', new URL('../../../examples/policy/icmp-rules.yaml', import.meta.url).pathname], c.io);
  assert.equal(code, 2);
  assert.equal(c.err.join(''), 'membrane: policy test --live needs root (it runs a private agent: CAP_BPF/CAP_NET_ADMIN): run as root [MEMBRANE_E_NOT_ROOT]\n');
});
