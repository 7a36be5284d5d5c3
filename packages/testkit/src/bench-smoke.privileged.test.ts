// Smoke runs of the privileged benchmarks: their output contract
// (shared/spec/cli.md, Benchmarks) and one figure each bounded far from
// today's value, so a run that measures nothing, or a datapath that got
// several times slower, fails. The real figures come from full runs.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { REPO_ROOT as repoRoot } from './cli-agent.js';
import { requireRoot } from './privileged.js';

test('bench/datapath --quick prints the figures cli.md names, last line JSON', { timeout: 180_000 }, (t) => {
  if (!requireRoot(t, 'bench/datapath loads BPF programs')) return;
  const r = spawnSync(`${repoRoot}/bench/datapath`, ['--quick'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bench: string; figures: Record<string, number> };
  assert.equal(j.bench, 'datapath');
  for (const k of ['rr_latency_ratio', 'rr_p99_ratio', 'conn_rate_ratio', 'apply_to_enforced_ms_1', 'apply_to_enforced_ms_100', 'apply_to_enforced_ms_1000']) {
    assert.equal(typeof j.figures[k], 'number', k);
    assert.ok(j.figures[k]! > 0, `${k} = ${j.figures[k]}`);
  }
  assert.equal(j.figures['events_lost'], 0);
  // Today ~1.04 and ~0.96: twice as slow, or half the connection rate, is a regression no noise explains.
  assert.ok(j.figures['rr_latency_ratio']! < 2, `rr_latency_ratio ${j.figures['rr_latency_ratio']}`);
  assert.ok(j.figures['conn_rate_ratio']! > 0.5, `conn_rate_ratio ${j.figures['conn_rate_ratio']}`);
});

test('bench/agent --quick prints the figures cli.md names, last line JSON', { timeout: 300_000 }, (t) => {
  if (!requireRoot(t, 'bench/agent runs an agent')) return;
  const r = spawnSync(`${repoRoot}/bench/agent`, ['--quick'], { encoding: 'utf8', timeout: 280_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /left behind/);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bench: string; figures: Record<string, number>; config: Record<string, unknown> };
  assert.equal(j.bench, 'agent');
  for (const k of ['pods_started_per_s', 'agent_rss_mb_per_100_endpoints', 'apply_to_enforced_ms_1', 'apply_to_enforced_ms_100', 'apply_to_enforced_ms_1000']) {
    assert.equal(typeof j.figures[k], 'number', k);
    assert.ok(Number.isFinite(j.figures[k]), `${k} = ${j.figures[k]}`);
  }
  for (const k of ['pods_started_per_s', 'apply_to_enforced_ms_1', 'apply_to_enforced_ms_100', 'apply_to_enforced_ms_1000']) assert.ok(j.figures[k]! > 0, `${k} = ${j.figures[k]}`);
  // `membrane apply -o json` carries the agent's own enforcement time.
  for (const n of [1, 100, 1000]) assert.ok(j.figures[`agent_enforced_ms_${n}`]! > 0, `agent_enforced_ms_${n}`);
  assert.equal(j.config['quick'], true);
  // Today ~16 pods/s: under 2 means pods start several times slower than they do.
  assert.ok(j.figures['pods_started_per_s']! > 2, `pods_started_per_s ${j.figures['pods_started_per_s']}`);
});

test('bench/services --quick prints the figures cli.md names, last line JSON', { timeout: 300_000 }, (t) => {
  if (!requireRoot(t, 'bench/services runs an agent')) return;
  const r = spawnSync(`${repoRoot}/bench/services`, ['--quick'], { encoding: 'utf8', timeout: 280_000 });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bench: string; figures: Record<string, number> };
  assert.equal(j.bench, 'services');
  for (const k of ['clusterip_rr_latency_ratio', 'clusterip_conn_rate_ratio', 'dns_queries_per_s', 'dns_p99_ms', 'demo_ready_s']) {
    assert.equal(typeof j.figures[k], 'number', k);
    assert.ok(j.figures[k]! > 0, `${k} = ${j.figures[k]}`);
  }
  // Today ~1.0, ~60,000/s and ~1.5 s: far from these bounds is a regression, not noise.
  assert.ok(j.figures['clusterip_rr_latency_ratio']! < 1.5, `clusterip_rr_latency_ratio ${j.figures['clusterip_rr_latency_ratio']}`);
  assert.ok(j.figures['dns_queries_per_s']! > 5000, `dns_queries_per_s ${j.figures['dns_queries_per_s']}`);
  assert.ok(j.figures['demo_ready_s']! < 15, `demo_ready_s ${j.figures['demo_ready_s']}`);
  assert.equal(j.figures['dns_errors'], 0);
});
