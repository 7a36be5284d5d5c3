#!/usr/bin/env node
// bench/console: the web console in Chromium (Debian's, by playwright-core),
// measured with the page's performance API: the time to first render (the
// service map drawn) and frame times while flows arrive at 1,000 a second
// from 200 workloads in 20 namespaces — on the map, then in the flow table
// once it holds 10,000 flows. The console is the real build (packages/ui)
// served by the agent's real console server; the flows come from a
// synthetic stream on its flow route (the same server-sent events the
// agent sends), so the figures are the page's, not the datapath's.
// Usage: bench/console [--quick]   (the last line is JSON)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ConsoleServer, SECURITY_HEADERS } from '../packages/agent/dist/console/console-server.js';
import { WEB_ROOT } from '../packages/agent/dist/console/console-cell.js';

const quick = process.argv.includes('--quick');
const RATE = 1000;
const NAMESPACES = 20;
const PER_NS = 10;
const TABLE_FLOWS = quick ? 3000 : 10_000;
const MEASURE_MS = quick ? 2000 : 5000;
const log = (s) => process.stderr.write(`console: ${s}\n`);

// 200 workloads; each talks to two others (its neighbours, some across namespaces): 400 edges.
const workloads = [];
for (let n = 0; n < NAMESPACES; n++) for (let w = 0; w < PER_NS; w++) workloads.push({ ns: `team-${n}`, name: `svc-${w}`, identity: 1000 + n * PER_NS + w });
const edges = [];
workloads.forEach((w, i) => {
  edges.push([w, workloads[(i + 1) % workloads.length]]);
  edges.push([w, workloads[(i + PER_NS + 3) % workloads.length]]);
});
const ep = (w, pod) => ({ ID: w.identity, identity: w.identity, namespace: w.ns, labels: [`k8s:app=${w.name}`, `k8s:io.kubernetes.pod.namespace=${w.ns}`], pod_name: `${w.name}-${pod}`, workloads: [{ name: w.name, kind: 'Deployment' }] });
let seq = 0;
function flowJson() {
  const [src, dst] = edges[seq % edges.length];
  const dropped = seq % 20 === 0;
  const http = seq % 4 === 1;
  const now = new Date().toISOString();
  const f = {
    time: now,
    uuid: `bench-${seq}`,
    verdict: dropped ? 'DROPPED' : 'FORWARDED',
    IP: { source: `10.200.${(src.identity >> 8) & 255}.${src.identity & 255}`, destination: `10.200.${(dst.identity >> 8) & 255}.${dst.identity & 255}`, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 30000 + (seq % 30000), destination_port: 8080, flags: { SYN: true } } },
    source: ep(src, 'a1b2c'),
    destination: ep(dst, 'd3e4f'),
    Type: http ? 'L7' : 'L3_L4',
    node_name: 'bench',
    traffic_direction: 'INGRESS',
    ...(http ? { l7: { type: 'RESPONSE', latency_ns: String(1_000_000 + (seq % 50) * 100_000), http: { code: seq % 40 === 1 ? 503 : 200, method: 'GET', url: `http://${dst.name}.${dst.ns}/api/items/${seq % 100}`, protocol: 'HTTP/1.1' } } } : {}),
    ...(dropped ? { drop_reason_desc: 'POLICY_DENIED', event_type: { type: 1, sub_type: 133 } } : { event_type: { type: 5 } }),
  };
  return `id: ${seq++}\nevent: flow\ndata: ${JSON.stringify(f)}\n\n`;
}

let sent = 0;
const streams = new Set();
const routes = [
  { method: 'GET', path: '/v1/status', handler: () => ({ agent: { state: 'ready' } }) },
  { method: 'GET', path: '/v1/endpoints', handler: () => [] },
  { method: 'GET', path: '/v1/identities', handler: () => [] },
  { method: 'GET', path: '/v1/objects/:kind', handler: () => [] },
  {
    method: 'GET',
    path: '/v1/flows/stream',
    handler: (r) => {
      r.res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
      r.res.write(': bench\n\n');
      // 1,000 flows a second, in ticks of 10 ms.
      const t0 = Date.now();
      let mine = 0;
      const timer = setInterval(() => {
        const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
        let out = '';
        for (; mine < due; mine++) out += flowJson();
        sent += due - mine;
        if (out) r.res.write(out);
      }, 10);
      streams.add(timer);
      r.raw.on('close', () => clearInterval(timer));
      return undefined;
    },
  },
];

const figures = {};
let exitCode = 0;
const server = new ConsoleServer({ address: '127.0.0.1', port: 0, token: () => 'bench-token', routes, webRoot: WEB_ROOT });
await server.start();
const profile = mkdtempSync(join(tmpdir(), 'mbr-bench-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const page = await context.newPage();
  const frames = async (ms) =>
    page.evaluate(
      (ms) =>
        new Promise((resolve) => {
          const deltas = [];
          let last = performance.now();
          const end = last + ms;
          const tick = (t) => {
            deltas.push(t - last);
            last = t;
            if (t < end) requestAnimationFrame(tick);
            else resolve(deltas);
          };
          requestAnimationFrame(tick);
        }),
      ms,
    );
  const p95 = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(0.95 * s.length))];
  };

  await page.goto(server.url());
  await page.locator('[data-testid=map-node]').first().waitFor({ timeout: 30_000 });
  const marks = await page.evaluate(() => Object.fromEntries(['membrane:first-flow', 'membrane:map-drawn'].map((n) => [n, performance.getEntriesByName(n)[0]?.startTime ?? -1])));
  const dcl = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd ?? -1);
  // From the navigation to the map's first layout in the page (the page's own mark).
  figures.first_render_ms = Math.round(marks['membrane:map-drawn']);
  log(`first render (the map drawn): ${figures.first_render_ms} ms (scripts run by ${Math.round(dcl)} ms, first flow at ${Math.round(marks['membrane:first-flow'])} ms)`);
  // Let every edge appear (400 edges at 1,000 flows/s), then measure the map while flows keep coming.
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=map-edge]').length >= n, edges.length, { timeout: 30_000 });
  figures.map_nodes = await page.locator('[data-testid=map-node]').count();
  const mapFrames = await frames(MEASURE_MS);
  figures.map_frame_p95_ms = +p95(mapFrames).toFixed(1);
  if (process.env.FRAMES) log(`map frames: ${mapFrames.map((x) => Math.round(x)).join(' ')}`);
  log(`map: ${figures.map_nodes} nodes, ${edges.length} edges; ${mapFrames.length} frames in ${MEASURE_MS} ms, p95 ${figures.map_frame_p95_ms} ms`);

  await page.click('[data-testid=nav-flows]');
  await page.waitForFunction((n) => Number(/(\d+) of/.exec(document.querySelector('.filters .count')?.textContent ?? '')?.[1] ?? 0) >= n, TABLE_FLOWS, { timeout: 60_000 });
  const tableFrames = await frames(MEASURE_MS);
  figures.table_flows = Number(/(\d+) of/.exec(await page.locator('.filters .count').innerText())?.[1] ?? 0);
  figures.table_frame_p95_ms = +p95(tableFrames).toFixed(1);
  log(`table: ${figures.table_flows} flows; ${tableFrames.length} frames in ${MEASURE_MS} ms, p95 ${figures.table_frame_p95_ms} ms`);
  figures.frame_p95_ms = Math.max(figures.map_frame_p95_ms, figures.table_frame_p95_ms);
  figures.flows_per_s = RATE;
} catch (e) {
  console.error(`bench/console: ${e instanceof Error ? e.stack : String(e)}`);
  exitCode = 1;
} finally {
  for (const t of streams) clearInterval(t);
  await context?.close();
  await server.stop();
  rmSync(profile, { recursive: true, force: true });
}
console.log(['MEASURE'.padEnd(40), 'VALUE'].join(''));
for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(40)}${v}`);
console.log(JSON.stringify({ bench: 'console', figures, config: { quick, rate_per_s: RATE, workloads: workloads.length, edges: edges.length, table_flows: TABLE_FLOWS, measure_ms: MEASURE_MS } }));
process.exit(exitCode);
