import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { PolicyManifest } from '@membrane/api';
import type { L7HttpEvent } from '@membrane/proxy';
import { ProxyHub } from './proxy-hub.js';

function hub(opts: { ringSize?: number; pollTimeoutMs?: number } = {}) {
  const state = { policies: [] as { manifest: PolicyManifest }[] };
  const h = new ProxyHub({ policies: () => state.policies, identities: () => [], ipcache: () => [], endpoints: () => [] }, { pollTimeoutMs: 50, ...opts });
  return { h, state };
}

const policy = (name: string) => ({ manifest: { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name }, spec: { endpointSelector: {} } } as unknown as PolicyManifest });

test('a new revision only when the snapshot changed; a poll for the current one waits for the next', async () => {
  const { h, state } = hub({ pollTimeoutMs: 5000 });
  const r0 = h.current().revision;
  assert.equal(h.refresh(), r0, 'nothing changed');
  const first = await h.poll(0);
  assert.equal(first.revision, r0, 'a proxy that has nothing gets the current one at once');
  const waiting = h.poll(r0);
  state.policies = [policy('a')];
  const r1 = h.refresh();
  assert.equal(r1, r0 + 1);
  const next = await waiting;
  assert.deepEqual([next.revision, next.policies.length], [r1, 1]);
});

test('a poll times out with the current snapshot; any other revision (an adopted proxy from an earlier agent) gets it at once', async () => {
  const { h } = hub();
  const r = h.current().revision;
  assert.equal((await h.poll(r)).revision, r);
  assert.equal((await h.poll(r + 1000)).revision, r, 'a number from another agent is not ours');
});

test('settle waits for the ack of the new revision, only when a proxy is connected, and gives up after its bound', async () => {
  const { h, state } = hub({ pollTimeoutMs: 5000 });
  state.policies = [policy('a')];
  assert.equal(await h.settle(20), true, 'no proxy has asked: nothing to wait for');
  void h.poll(h.current().revision); // the proxy has the current one in force
  state.policies = [policy('b')];
  const settled = h.settle(2000);
  const r = h.current().revision;
  setTimeout(() => void h.poll(r), 20); // the proxy puts it in force and asks for the next
  assert.equal(await settled, true);
  assert.equal(h.status().applied, r);
  state.policies = [policy('c')];
  assert.equal(await h.settle(30), false, 'no ack within the bound');
  h.close();
});

test('events: kept in a bounded ring, the evicted and the lost (reported by the proxy) counted, subscribers told', () => {
  const { h } = hub({ ringSize: 3 });
  const seen: string[] = [];
  const off = h.subscribe((e) => seen.push((e as L7HttpEvent).url));
  const ev = (url: string) => ({ url }) as L7HttpEvent;
  h.receive([ev('/1'), ev('/2')], 0);
  h.receive([ev('/3'), ev('/4')], 5);
  off();
  h.receive([ev('/5')]);
  assert.deepEqual(h.recent().map((e) => (e as L7HttpEvent).url), ['/3', '/4', '/5']);
  assert.deepEqual(h.status().events, { received: 5, lost: 5, evicted: 2 });
  assert.deepEqual(seen, ['/1', '/2', '/3', '/4']);
});
