// A policy change never opens a window: while another process swaps an
// endpoint between two policies thousands of times (entries and enforcement
// flags both changing), packets that both policies deny are never let
// through, and packets that both allow are never dropped.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Datapath, native, TC_ACT_OK, TC_ACT_SHOT } from '@membrane/datapath';
import { buildPacket, requireRoot } from '@membrane/datapath/testing';


test('policy swaps under load: denied-by-both never passes, allowed-by-both never drops', { timeout: 120_000 }, async (t) => {
  if (!requireRoot(t, 'loads BPF programs and swaps policies under load')) return;
  const pinRoot = `/sys/fs/bpf/mbr-test-nowin-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'mbr-nowin-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
    Datapath.unpinAll(pinRoot);
  });
  const dp = Datapath.open({ pinRoot });
  t.after(() => dp.close());
  dp.ipcacheUpsert('10.200.0.20/32', 301);
  dp.ipcacheUpsert('10.200.0.10/32', 300, 9);

  const done = join(dir, 'done');
  const flipper = join(dir, 'flipper.mjs');
  const swaps = 400;
  writeFileSync(
    flipper,
    `
import { writeFileSync } from 'node:fs';
import { Datapath } from ${JSON.stringify(fileURLToPath(new URL('../../datapath/dist/index.js', import.meta.url)))};
import { EndpointRealizer } from ${JSON.stringify(fileURLToPath(new URL('./index.js', import.meta.url)))};
import { DirectionPolicy } from ${JSON.stringify(fileURLToPath(new URL('../../policy/dist/index.js', import.meta.url)))};
const o = (name) => ({ kind: 'CiliumNetworkPolicy', namespace: 'default', name, section: 'ingress', index: 0 });
function policy(which) {
  const ingress = new DirectionPolicy('ingress', true, true);
  const egress = new DirectionPolicy('egress', which === 'A', which === 'A');
  if (which === 'A') {
    ingress.add({ identity: 301, proto: 6, port: 80, endPort: 80 }, false, o('a80'));
    ingress.add({ identity: 301, proto: 6, port: 443, endPort: 443 }, false, o('a443'));
    egress.add({ identity: 301, proto: 6, port: 5432, endPort: 5432 }, false, o('a-egress'));
  } else {
    ingress.add({ identity: 0, proto: 6, port: 443, endPort: 443 }, false, o('b443'));
    ingress.add({ identity: 301, proto: 6, port: 8080, endPort: 8080 }, false, o('b8080'));
    ingress.add({ identity: 301, proto: 6, port: 22, endPort: 22 }, true, o('b22-deny'));
    ingress.add({ identity: 301, proto: 0, port: 0, endPort: 65535 }, false, o('b-l3'));
    ingress.add({ identity: 301, proto: 6, port: 900, endPort: 1023 }, true, o('b-low-deny'));
  }
  return { identity: 300, ingress, egress };
}
const dp = Datapath.open({ pinRoot: ${JSON.stringify(pinRoot)} });
const r = new EndpointRealizer(dp);
const ep = { ifindex: 1, epId: 9, ipv4: '10.200.0.10', identity: 300 };
for (let i = 0; i < ${swaps}; i++) r.realize(ep, policy(i % 2 ? 'B' : 'A'));
dp.close();
writeFileSync(${JSON.stringify(done)}, 'done');
`,
  );
  const nb = native();
  // Start from policy A so the first packets are judged by a policy.
  const child = spawn(process.execPath, [flipper], { stdio: ['ignore', 'inherit', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const synIn = (dport: number, sport: number) => buildPacket({ src: '10.200.0.20', dst: '10.200.0.10', proto: 'tcp', sport, dport });
  const synOut = (dport: number, sport: number) => buildPacket({ src: '10.200.0.10', dst: '10.200.0.20', proto: 'tcp', sport, dport });
  let probes = 0;
  const leaks: string[] = [];
  let started = false;
  const deadline = Date.now() + 60_000;
  while (!existsSync(done) && Date.now() < deadline) {
    if (!dp.getEndpoint(1) || !dp.hasPolicy(9)) continue; // the flipper has not installed the first policy yet
    started = true;
    const sport = 20000 + (probes % 40000);
    // Denied by both: A has no allow for 22 (default deny), B denies 22 explicitly.
    if (nb.progTestRun(dp.progs.toContainer, synIn(22, sport)).retval !== TC_ACT_SHOT) leaks.push(`ingress 22 passed at probe ${probes}`);
    // Denied by both: 1000 from 301 — A has no allow for it, B's low-port deny beats its L3 allow.
    if (nb.progTestRun(dp.progs.toContainer, synIn(1000, sport)).retval !== TC_ACT_SHOT) leaks.push(`ingress 1000 passed at probe ${probes}`);
    // Allowed by both: 443 (A: 301 on 443; B: any peer on 443).
    if (nb.progTestRun(dp.progs.toContainer, synIn(443, sport)).retval !== TC_ACT_OK) leaks.push(`ingress 443 dropped at probe ${probes}`);
    // Egress: A enforces egress (5432 only); B does not enforce egress. 5432 allowed by both.
    if (nb.progTestRun(dp.progs.fromContainer, synOut(5432, sport)).retval !== TC_ACT_OK) leaks.push(`egress 5432 dropped at probe ${probes}`);
    probes++;
  }
  await new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', () => resolve())));
  assert.ok(started, 'the flipper never installed the endpoint');
  assert.ok(existsSync(done), 'the flipper did not finish its swaps in time');
  assert.equal(child.exitCode, 0);
  assert.ok(probes >= 500, `only ${probes} probe rounds overlapped the ${swaps} swaps`);
  assert.deepEqual(leaks.slice(0, 5), [], `${leaks.length} of ${probes * 4} probes saw neither the old nor the new policy`);
  t.diagnostic(`${probes} probe rounds (x4 packets) during ${swaps} policy swaps: no window`);
});
