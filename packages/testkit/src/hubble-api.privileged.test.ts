// Hubble's Observer gRPC API as an independent client sees it (@grpc/grpc-js
// and @grpc/proto-loader over the repository's own .proto files, not the
// generated code): after the Star Wars rule1, the X-wing's SYNs to the Death
// Star are DROPPED flows with POLICY_DENIED, both pods and their labels, and
// rule1 named as the policy behind the default deny (membrane.v1 in
// extensions); the TIE fighter's connections are FORWARDED, allowed by
// rule1; a follower gets new flows as they come and stops cleanly when it
// cancels; since with follow gives the window, then what comes; followers
// that cancel or whose connection is cut leave no subscription behind;
// whitelist/blacklist; a bad filter is InvalidArgument naming the
// field; ServerStatus, GetNodes, GetNamespaces and Peer.Notify answer.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import http2 from 'node:http2';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CliAgent, REPO_ROOT } from './cli-agent.js';
import { requireRoot } from './privileged.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Client = any;

function clients(address: string): { observer: Client; peer: Client; ext: any } {
  const def = protoLoader.loadSync(['observer/observer.proto', 'peer/peer.proto', 'membrane/v1/flow.proto'], { includeDirs: [join(REPO_ROOT, 'proto')], keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const creds = grpc.credentials.createInsecure();
  return { observer: new pkg.observer.Observer(address, creds), peer: new pkg.peer.Peer(address, creds), ext: def['membrane.v1.FlowExtension'] };
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const unary = (c: Client, method: string, req: object) => new Promise<any>((res, rej) => c[method](req, (e: Error | null, r: any) => (e ? rej(e) : res(r))));

function flows(c: Client, req: object, max = Infinity): Promise<any[]> {
  return new Promise((res, rej) => {
    const out: any[] = [];
    const call = c.GetFlows(req);
    call.on('data', (d: any) => {
      out.push(d);
      if (out.length >= max) call.cancel();
    });
    call.on('end', () => res(out));
    call.on('error', (e: any) => (e.code === grpc.status.CANCELLED ? res(out) : rej(e)));
  });
}

test("Hubble's Observer API from an independent gRPC client: the walkthrough's flows with the rule behind each, follow, filters, status", { timeout: 180_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent with pods')) return;
  const a = new CliAgent({ tag: 'hub', podCIDR: '10.219.0.0/24', serviceCIDR: '10.229.0.0/24' });
  t.after(() => a.cleanup());
  assert.equal(a.run('demo', 'starwars').status, 0);
  a.ok('apply', '-f', join(REPO_ROOT, 'examples/starwars/rule1-l3l4.yaml'));
  assert.equal(a.run('exec', 'xwing', '--', 'curl', '-s', '-m', '2', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing').status, 28);
  assert.equal(a.ok('exec', 'tiefighter', '--', 'curl', '-s', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing'), 'Ship landed\n');
  const address = a.json<{ observer: { hubble: string } }>('status').observer.hubble;
  assert.match(address, /^127\.0\.0\.1:\d+$/);
  const { observer, peer } = clients(address);
  t.after(() => {
    observer.close();
    peer.close();
  });

  // The X-wing's SYNs, dropped by the Death Star's default deny, rule1 behind it.
  const dropped = (await flows(observer, { number: 50, whitelist: [{ verdict: ['DROPPED'], source_pod: ['default/xwing'] }] })).map((r) => r.flow);
  assert.ok(dropped.length >= 1, 'the X-wing was dropped');
  const d = dropped[0];
  assert.equal(d.drop_reason_desc, 'POLICY_DENIED');
  assert.equal(d.traffic_direction, 'INGRESS');
  assert.equal(d.source.pod_name, 'xwing');
  assert.match(d.destination.pod_name, /^deathstar-/);
  assert.ok(d.source.labels.includes('k8s:class=xwing') && d.destination.labels.includes('k8s:class=deathstar'), JSON.stringify([d.source.labels, d.destination.labels]));
  assert.equal(d.l4.TCP.destination_port, 80);
  assert.equal(d.l4.TCP.flags.SYN, true);
  assert.equal(d.extensions.type_url, 'type.googleapis.com/membrane.v1.FlowExtension');
  const def = protoLoader.loadSync('membrane/v1/flow.proto', { includeDirs: [join(REPO_ROOT, 'proto')], keepCase: true });
  const ext = (grpc.loadPackageDefinition(def) as any).membrane.v1.FlowExtension;
  const decoded = ext.deserialize(d.extensions.value);
  assert.deepEqual(decoded.default_deny_by?.map((p: any) => [p.kind, p.namespace, p.name]), [['CiliumNetworkPolicy', 'default', 'rule1']]);

  // The TIE fighter's landing: forwarded, allowed by rule1.
  const forwarded = (await flows(observer, { number: 50, whitelist: [{ source_pod: ['default/tiefighter'], destination_port: ['80'], traffic_direction: ['INGRESS'] }], blacklist: [{ verdict: ['DROPPED'] }] })).map((r) => r.flow);
  assert.ok(forwarded.length >= 1);
  assert.ok(forwarded.every((f) => f.verdict === 'FORWARDED'));
  assert.deepEqual(forwarded[0].ingress_allowed_by?.map((p: any) => p.name), ['rule1'], JSON.stringify(forwarded[0]));

  // Follow: the next drop arrives on the open stream; cancelling ends it.
  const following = flows(observer, { follow: true, whitelist: [{ verdict: ['DROPPED'], source_pod: ['default/xwing'] }] }, 1);
  await new Promise((r) => setTimeout(r, 300));
  a.run('exec', 'xwing', '--', 'curl', '-s', '-m', '1', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing');
  const [live] = await following;
  assert.equal(live.flow.verdict, 'DROPPED');

  // since + follow (cilium/hubble#363): the window first, then what comes.
  const xwingDrops = { verdict: ['DROPPED'], source_pod: ['default/xwing'] };
  const earlier = (await flows(observer, { whitelist: [xwingDrops] })).map((r) => r.flow.uuid);
  const windowed = flows(observer, { since: { seconds: Math.floor(Date.now() / 1000) - 3600, nanos: 0 }, follow: true, whitelist: [xwingDrops] }, earlier.length + 1);
  await new Promise((r) => setTimeout(r, 300));
  a.run('exec', 'xwing', '--', 'curl', '-s', '-m', '1', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing');
  const got = (await windowed).map((r) => r.flow.uuid);
  assert.deepEqual(got.slice(0, earlier.length), earlier, 'the window, as it was');
  assert.ok(!earlier.includes(got[earlier.length]), 'then the new drop');

  // Followers that go away mid-stream (cancelled, or their connection cut) leave nothing behind in the agent.
  const followers = () => a.json<{ observer: { followers: number } }>('status').observer.followers;
  await until('the earlier followers (cancelled after what they wanted) to be gone', () => followers() === 0);
  const cancelled = [0, 1].map(() => observer.GetFlows({ follow: true }));
  for (const c of cancelled) c.on('error', () => {});
  const session = http2.connect(`http://${address}`);
  session.on('error', () => {});
  const cut = session.request({ ':method': 'POST', ':path': '/observer.Observer/GetFlows', 'content-type': 'application/grpc', te: 'trailers' });
  cut.on('error', () => {});
  cut.end(Buffer.from([0, 0, 0, 0, 2, 0x18, 0x01])); // GetFlowsRequest{follow: true}
  await until('three followers', () => followers() === 3);
  for (const c of cancelled) c.cancel();
  session.destroy();
  await until('no followers left', () => followers() === 0);

  // A bad filter: InvalidArgument naming the field.
  await assert.rejects(flows(observer, { whitelist: [{ source_ip: ['10.0.0.300'] }] }), (e: any) => e.code === grpc.status.INVALID_ARGUMENT && /whitelist\[0\]\.source_ip/.test(e.details));
  await assert.rejects(flows(observer, { first: true, follow: true }), (e: any) => e.code === grpc.status.INVALID_ARGUMENT && /first/.test(e.details));

  const status = await unary(observer, 'ServerStatus', {});
  assert.ok(status.num_flows > 0 && status.seen_flows >= status.num_flows && status.max_flows === 65535, JSON.stringify(status));
  const nodes = await unary(observer, 'GetNodes', {});
  assert.equal(nodes.nodes.length, 1);
  assert.equal(nodes.nodes[0].state, 'NODE_CONNECTED');
  const ns = await unary(observer, 'GetNamespaces', {});
  assert.ok(ns.namespaces.some((n: any) => n.namespace === 'default'));
  const notified = await new Promise<any>((res, rej) => {
    const call = peer.Notify({});
    call.on('data', (d: any) => {
      call.cancel();
      res(d);
    });
    call.on('error', (e: any) => e.code !== grpc.status.CANCELLED && rej(e));
  });
  assert.deepEqual([notified.type, notified.address], ['PEER_ADDED', address]);
  const s = a.json<{ observer: { flowsSeen: number; lostEvents: number } }>('status').observer;
  assert.ok(s.flowsSeen > 0);
  assert.equal(s.lostEvents, 0);

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
