// The machine's own traffic is never touched (issue "The agent as
// controllers", item 4): with an agent up, and while `membrane policy test
// --live` runs, `ip route get` answers for every address outside the pod
// CIDRs exactly as before — the uplink's range, the package registries'
// range, the resolver, loopback and the documentation ranges among them.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent, MEMBRANE, REPO_ROOT } from './cli-agent.js';
import { requireRoot } from './privileged.js';

/** Addresses the machine itself may use, and the documentation ranges. */
function probeAddresses(): string[] {
  const out = new Set(['1.1.1.1', '8.8.8.8', '127.0.0.1', '192.0.2.1', '192.0.2.77', '192.0.2.254', '198.51.100.7', '203.0.113.5', '203.0.113.200', '10.0.0.1', '10.255.255.53', '172.16.0.1']);
  for (const l of readFileSync('/etc/resolv.conf', 'utf8').split('\n')) {
    const m = /^nameserver\s+(\d+\.\d+\.\d+\.\d+)/.exec(l);
    if (m) out.add(m[1]!);
  }
  const gw = /default via (\S+)/.exec(spawnSync('ip', ['route', 'show', 'default'], { encoding: 'utf8' }).stdout)?.[1];
  if (gw) out.add(gw);
  return [...out];
}

function routeGet(addr: string): string {
  const r = spawnSync('ip', ['route', 'get', addr], { encoding: 'utf8' });
  // The first line: destination, type, via, dev, src (the rest is per-lookup cache detail).
  return (r.stdout.split('\n')[0] ?? '').trim() || `error: ${r.stderr.trim()}`;
}

function routesNow(addrs: readonly string[]): Record<string, string> {
  return Object.fromEntries(addrs.map((a) => [a, routeGet(a)]));
}

test('ip route get for addresses outside the pod CIDRs answers as before: agent up, during a live run, after down', { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t, 'starts an agent and a live run')) return;
  const addrs = probeAddresses();
  const before = routesNow(addrs);
  assert.ok(Object.values(before).every((v) => !v.startsWith('error')), JSON.stringify(before));

  const a = new CliAgent({ tag: 'route', podCIDR: '10.205.0.0/24', serviceCIDR: '10.215.0.0/24' });
  t.after(() => a.cleanup());
  a.up();
  writeFileSync(join(a.dir, 'pods.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, command: [sleep, infinity]}]}\n');
  a.ok('apply', '-f', join(a.dir, 'pods.yaml'));
  assert.deepEqual(routesNow(addrs), before, 'with the agent up');

  // During a live run: sample while its private agent's pods exist.
  const live = spawn(MEMBRANE, ['policy', 'test', '--live', join(REPO_ROOT, 'examples/policy/icmp-rules.yaml'), join(REPO_ROOT, 'examples/policy/entities-and-cidr.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  live.stdout.on('data', (d: Buffer) => (out += d.toString()));
  live.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => live.on('exit', (code) => resolve(code ?? 1)));
  let samplesWithPods = 0;
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    const podsUp = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').some((l) => /^mbrl\w{4}_pod_/.test(l));
    const now = routesNow(addrs);
    if (podsUp) {
      samplesWithPods++;
      assert.deepEqual(now, before, 'during the live run');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await exited, 0, out);
  assert.ok(samplesWithPods > 0, 'the live run was sampled while its pods were up');

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(routesNow(addrs), before, 'after down');
  assert.deepEqual(a.leaks(), []);
});
