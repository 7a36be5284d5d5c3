// `membrane observe` after the seed's walkthrough (issue "Hubble-compatible
// observability", done-when 1): the X-wing's SYNs DROPPED with
// POLICY_DENIED, both pods and their labels, rule1 named as the policy
// behind the Death Star's default deny; the TIE fighter's PUT answered 403
// by the proxy, with method, URL and code and the L7 rule; compact lines as
// Hubble prints them; offline mode from a file of -o jsonpb lines, given
// with --input-file and on stdin; a bad filter exits 2 naming the field.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliAgent, MEMBRANE, REPO_ROOT } from './cli-agent.js';
import { requireRoot } from './privileged.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const lines = (s: string) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as any);

test('membrane observe after the walkthrough: drops with the rule behind the default deny, the 403 with its L7 rule, compact lines, offline mode', { timeout: 180_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent with pods')) return;
  const a = new CliAgent({ tag: 'obs', podCIDR: '10.220.0.0/24', serviceCIDR: '10.230.0.0/24' });
  const dir = mkdtempSync(join(tmpdir(), 'mbr-observe-'));
  t.after(() => {
    a.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(a.run('demo', 'starwars').status, 0);
  a.ok('apply', '-f', join(REPO_ROOT, 'examples/starwars/rule1-l7.yaml'));
  assert.equal(a.run('exec', 'xwing', '--', 'curl', '-s', '-m', '2', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing').status, 28);
  assert.equal(a.ok('exec', 'tiefighter', '--', 'curl', '-s', '-XPUT', 'deathstar.default.svc.cluster.local/v1/exhaust-port'), 'Access denied\r\n');
  await new Promise((r) => setTimeout(r, 600)); // the proxy's events reach the agent in batches

  const drops = lines(a.ok('observe', '--verdict', 'DROPPED', '--from-pod', 'default/xwing', '-o', 'json'));
  assert.ok(drops.length >= 1, 'the X-wing was dropped');
  const d = drops[0].flow;
  assert.deepEqual([d.verdict, d.drop_reason_desc, d.source.pod_name, d.traffic_direction], ['DROPPED', 'POLICY_DENIED', 'xwing', 'INGRESS']);
  assert.match(d.destination.pod_name, /^deathstar-/);
  assert.ok(d.source.labels.includes('k8s:class=xwing'));
  assert.equal(d.extensions['@type'], 'type.googleapis.com/membrane.v1.FlowExtension');
  assert.deepEqual(d.extensions.default_deny_by.map((p: any) => p.name), ['rule1'], 'rule1 behind the default deny');
  assert.deepEqual(d.destination_service, { name: 'deathstar', namespace: 'default' }, 'the Service the Death Star pod backs');
  assert.ok(drops[0].node_name && drops[0].time, 'a GetFlowsResponse a line');

  const denied = lines(a.ok('observe', '--http-status', '403', '-o', 'json'));
  assert.equal(denied.length, 1, JSON.stringify(denied));
  const h = denied[0].flow;
  assert.deepEqual([h.verdict, h.Type, h.l7.http.method, h.l7.http.code, h.l7.http.url], ['DROPPED', 'L7', 'PUT', 403, 'http://deathstar.default.svc.cluster.local/v1/exhaust-port']);
  assert.deepEqual(h.ingress_denied_by.map((p: any) => p.name), ['rule1']);
  assert.equal(h.source.pod_name, 'tiefighter');

  // Compact: Hubble's layout.
  const compact = a.ok('observe', '--verdict', 'DROPPED', '--pod', 'xwing', '--print-policy-names').trim().split('\n');
  assert.match(compact[0]!, /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: default\/xwing:\d+ \(ID:\d+\) <> default\/deathstar-[a-z0-9]+:80 \(ID:\d+\) Policy denied DROPPED BY rule1 \(CiliumNetworkPolicy\) \(TCP Flags: SYN\)$/);
  const http = a.ok('observe', '--type', 'l7', '--http-method', 'PUT').trim();
  assert.match(http, /: default\/tiefighter:\d+ \(ID:\d+\) -> default\/deathstar-[a-z0-9]+:80 \(ID:\d+\) http-request DROPPED \(HTTP\/1\.1 PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)$/);
  assert.match(a.ok('observe', '--http-status', '403', '--print-policy-names').trim(), / http-request DROPPED BY rule1 \(CiliumNetworkPolicy\) \(HTTP\/1\.1 PUT /, 'the L7 rule behind the 403');
  // --not: everything but the drops.
  assert.ok(lines(a.ok('observe', '--not', '--verdict', 'DROPPED', '--last', '100', '-o', 'jsonpb')).every((r) => r.flow.verdict !== 'DROPPED'));

  // Offline: a file of -o jsonpb lines, read with --input-file and from stdin.
  const all = a.ok('observe', '--last', '1000', '-o', 'jsonpb');
  writeFileSync(join(dir, 'flows.jsonl'), all);
  const fromFile = lines(a.ok('observe', '--input-file', join(dir, 'flows.jsonl'), '--verdict', 'DROPPED', '--from-pod', 'default/xwing', '-o', 'json'));
  assert.deepEqual(fromFile.map((r) => r.flow.uuid), drops.map((r) => r.flow.uuid));
  const fd = openSync(join(dir, 'flows.jsonl'), 'r');
  const stdin = spawnSync(MEMBRANE, ['observe', '--http-status', '4+', '-o', 'json'], { env: { ...a.env, MEMBRANE_SOCKET: join(dir, 'no-agent.sock') }, stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8' });
  closeSync(fd);
  assert.equal(stdin.status, 0, stdin.stderr);
  assert.deepEqual(lines(stdin.stdout).map((r) => r.flow.uuid), [h.uuid], 'stdin: no agent needed');

  // Hubble's metric families on /metrics.
  const metricsAt = a.json<{ observer: { metrics: string } }>('status').observer.metrics;
  const metrics = await (await fetch(`http://${metricsAt}/metrics`)).text();
  assert.match(metrics, /^hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} [1-9]\d*$/m);
  assert.match(metrics, /^hubble_flows_processed_total\{type="L7",subtype="HTTP",verdict="DROPPED"\} 1$/m);
  assert.match(metrics, /^hubble_http_responses_total\{method="PUT",status="403",reporter="server"\} 1$/m, 'judged by the Death Star\'s ingress rules: the server side reports it');
  assert.match(metrics, /^hubble_policy_verdicts_total\{direction="ingress",match="none",action="dropped"\} [1-9]\d*$/m, 'the X-wing, dropped by default deny');
  assert.match(metrics, /^hubble_tcp_flags_total\{flag="SYN",family="IPv4"\} [1-9]\d*$/m);
  assert.match(metrics, /^hubble_port_distribution_total\{protocol="TCP",port="80"\} [1-9]\d*$/m);

  // Bad input: exit 2, naming the field.
  const bad = a.run('observe', '--from-ip', '10.0.0.300');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /source_ip: "10\.0\.0\.300" is not an IP/);
  const badSince = a.run('observe', '--since', 'yesterday');
  assert.equal(badSince.status, 2);
  assert.match(badSince.stderr, /--since yesterday: an RFC 3339 time/);

  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
