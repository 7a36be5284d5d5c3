#!/usr/bin/env node
// bench/policy-scale: time to resolve the MapState of every endpoint for
// 10 .. 10,000 CiliumNetworkPolicies against 100 and 1,000 identities, and the
// growth between sizes (10x more rules should cost about 10x more time).
// Usage: bench/policy-scale [--quick]   (last line: JSON, see shared/spec/cli.md)
import { performance } from 'node:perf_hooks';
import {
  FIRST_CLUSTER_IDENTITY,
  endpointIdentityLabels,
  reservedIdentities,
  cidrIdentity,
  FIRST_LOCAL_IDENTITY,
  parsePolicyDocument,
  resolveAll,
} from '@membrane/policy';

const quick = process.argv.includes('--quick');
const RULES = quick ? [10, 100, 1000] : [10, 100, 1000, 10000];
const IDS = [100, 1000];
const REPS = quick ? 3 : 5;
const NS = 10;

function identities(m) {
  const out = reservedIdentities();
  for (let i = 0; i < m; i++) {
    out.push({
      id: FIRST_CLUSTER_IDENTITY + i,
      labels: endpointIdentityLabels({
        namespace: `ns-${i % NS}`,
        namespaceLabels: { zone: `z${i % 3}` },
        podLabels: { app: `svc-${i}`, tier: ['web', 'api', 'db', 'cache', 'batch'][i % 5], team: `t${i % 20}` },
      }),
    });
  }
  for (let i = 0; i < 50; i++) out.push(cidrIdentity(FIRST_LOCAL_IDENTITY + i, `198.51.100.${i + 1}`));
  return out;
}

// A mix that looks like a real cluster's: L3/L4 allows between teams, tiers
// across namespaces, L7 HTTP rules, deny rules, CIDR and entity egress.
function policy(j, m) {
  const ns = `ns-${j % NS}`;
  const subject = { matchLabels: { app: `svc-${j % m}` } };
  const port = String(1000 + (j % 500));
  const kind = j % 10;
  let spec;
  if (kind < 4) {
    spec = { endpointSelector: subject, ingress: [{ fromEndpoints: [{ matchLabels: { team: `t${j % 20}` } }], toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }] };
  } else if (kind < 6) {
    spec = {
      endpointSelector: subject,
      ingress: [{
        fromEndpoints: [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }, { key: 'k8s:io.kubernetes.pod.namespace', operator: 'Exists' }] }],
        toPorts: [{ ports: [{ port, protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: `/api/v${j % 3}/.*` }, { method: 'POST', path: '/submit' }] } }],
      }],
    };
  } else if (kind < 7) {
    spec = { endpointSelector: subject, ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: `svc-${(j * 7) % m}` } }] }] };
  } else if (kind < 8) {
    spec = { endpointSelector: subject, egress: [{ toCIDRSet: [{ cidr: '198.51.100.0/24', except: [`198.51.100.${j % 50}/32`] }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }] };
  } else if (kind < 9) {
    spec = { endpointSelector: { matchLabels: { tier: 'db' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: `svc-${(j * 13) % m}` } }] }] };
  } else {
    spec = { endpointSelector: subject, egress: [{ toEntities: ['cluster'] }, { toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } }], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] }] };
  }
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: `p-${j}`, namespace: ns }, spec };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const figures = {};
const rows = [];
let growthMax = 0;
for (const m of IDS) {
  const ids = identities(m);
  const subjects = ids.filter((i) => i.id >= FIRST_CLUSTER_IDENTITY && i.id < FIRST_LOCAL_IDENTITY);
  let prev;
  for (const n of RULES) {
    process.stderr.write(`policy-scale: ${n} rules x ${m} identities ...\n`);
    const t0 = performance.now();
    const rules = [];
    for (let j = 0; j < n; j++) rules.push(...parsePolicyDocument(policy(j, m), { source: 'bench', label: `policy ${j}` }).rules);
    const parseMs = performance.now() - t0;
    resolveAll(rules, { identities: ids }, subjects); // warm-up
    const times = [];
    let entries = 0;
    for (let r = 0; r < REPS; r++) {
      // Each run starts from a collected heap, so one run's garbage is not billed to the next.
      globalThis.gc?.();
      const t = performance.now();
      const res = resolveAll(rules, { identities: ids }, subjects);
      times.push(performance.now() - t);
      if (r === 0) for (const p of res.values()) entries += p.ingress.entries.length + p.egress.entries.length;
    }
    const ms = median(times);
    figures[`resolve_ms_${n}x${m}`] = Number(ms.toFixed(2));
    const growth = prev ? ms / prev : undefined;
    if (growth !== undefined) growthMax = Math.max(growthMax, growth);
    rows.push([`${n}`, `${m}`, ms.toFixed(2), growth ? growth.toFixed(2) : '-', parseMs.toFixed(1), String(entries)]);
    prev = ms;
  }
}
figures.growth_ratio_max = Number(growthMax.toFixed(2));

const header = ['RULES', 'IDENTITIES', 'RESOLVE (ms, median)', 'GROWTH (x10 rules)', 'PARSE (ms)', 'MAPSTATE ENTRIES'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
console.log(header.map((h, i) => h.padEnd(widths[i])).join('  '));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
console.log(JSON.stringify({ bench: 'policy-scale', figures, config: { rules: RULES, identities: IDS, repetitions: REPS, quick, node: process.version } }));
