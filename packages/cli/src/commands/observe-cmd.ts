/**
 * `membrane observe`: `hubble observe` against the agent's Observer API (or
 * offline, from a file of `-o jsonpb` lines: `--input-file FILE|-`, or a
 * file on stdin), with hubble's flags and outputs. Flags build Hubble
 * FlowFilters the way the hubble CLI does: a `--from-`/`--to-` flag sets one
 * side; `--pod`, `--namespace`, `--label`, `--ip`, `--port`, `--fqdn`,
 * `--identity` match either side (one filter per side, ORed); every other
 * flag narrows all of them; `--not` puts the flag after it in the blacklist.
 * Filters are compiled by the observer's own implementation, here for files
 * and in the agent for live flows, so a bad one fails the same way (exit 2,
 * naming the field).
 */
import { fstatSync, readFileSync } from 'node:fs';
import { create, createRegistry, fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { MembraneError, type StatusResponse } from '@membrane/api';
import { compactLine, compileFilters, dictBlock, FilterError, flowType, hostNames, queryFlows, ringSource, stampMilli, verdictText, FlowRing } from '@membrane/observer';
import { flow as pb, membranev1, observer as obs } from '@membrane/proto';
import { boolFlag, flag, outputFormat, parseArgs, usage, type FlagSpec, type Parsed } from '../args.js';
import { call } from '../client.js';
import type { Io } from '../io.js';
import { renderTable } from '../printers/table.js';

export const observeHelp = `Usage: membrane observe [FLAGS]

Flows from the agent's Observer API (Hubble's), printed as hubble observe prints them.

  -f, --follow                 keep printing new flows
      --last N | --first N     the last (first) N matching flows (default: the last 20, unless --follow)
      --since T, --until T     a window: RFC 3339 or a duration before now (5m, 1h30m); --since works with --follow
      --from-pod, --to-pod, --pod [NS/]POD     pod name prefixes (--pod: either side)
      --from-namespace, --to-namespace, -n, --namespace NS
      --from-label, --to-label, -l, --label SELECTOR   label selectors (app=x, k8s:class in (a,b), !canary)
      --from-ip, --to-ip, --ip IP|CIDR     --from-port, --to-port, --port PORT
      --from-fqdn, --to-fqdn, --fqdn PATTERN    --from-identity, --to-identity, --identity N
      --verdict FORWARDED|DROPPED|AUDIT|REDIRECTED|ERROR     --protocol tcp|udp|icmp|http|dns
      --http-method M  --http-path RE2  --http-status 404|4+     --type trace|drop|l7|policy-verdict
      --traffic-direction ingress|egress
      --not                        the next filter flag excludes instead
      --print-policy-names         the policies behind each verdict (default-deny drops too)
      --print-node-name
  -o, --output compact|json|jsonpb|dict|table   (json and jsonpb: one GetFlowsResponse a line, proto field names)
      --input-file FILE|-          read -o jsonpb lines instead of asking the agent
      --server HOST:PORT           the Observer API (default: the agent's, from its status)`;

const FILTER_FLAGS: FlagSpec[] = [
  ...['from-pod', 'to-pod', 'pod', 'from-namespace', 'to-namespace', 'namespace', 'from-label', 'to-label', 'label', 'from-ip', 'to-ip', 'ip', 'from-port', 'to-port', 'port', 'from-fqdn', 'to-fqdn', 'fqdn', 'from-identity', 'to-identity', 'identity', 'verdict', 'protocol', 'http-method', 'http-path', 'http-status', 'type', 'traffic-direction'].map((name) => ({ name, value: true, multiple: true })),
  { name: 'namespace', short: 'n', value: true, multiple: true },
  { name: 'label', short: 'l', value: true, multiple: true },
];
const SPECS: FlagSpec[] = [
  ...FILTER_FLAGS.filter((f, i, all) => all.findIndex((g) => g.name === f.name) === i && !(f.name === 'namespace' || f.name === 'label')),
  { name: 'namespace', short: 'n', value: true, multiple: true },
  { name: 'label', short: 'l', value: true, multiple: true },
  { name: 'follow', short: 'f' },
  { name: 'last', value: true },
  { name: 'first', value: true },
  { name: 'since', value: true },
  { name: 'until', value: true },
  { name: 'not', multiple: true },
  { name: 'print-policy-names' },
  { name: 'print-node-name' },
  { name: 'output', short: 'o', value: true },
  { name: 'input-file', value: true },
  { name: 'server', value: true },
];
const FILTER_NAMES = new Set(FILTER_FLAGS.map((f) => f.name).concat(['n', 'l']));

/** argv split at each `--not`: the flag right after one goes to the blacklist. */
function splitNot(argv: readonly string[]): { keep: string[]; negated: string[] } {
  const keep: string[] = [];
  const negated: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--not') {
      keep.push(argv[i]!);
      continue;
    }
    const next = argv[i + 1];
    const name = next?.replace(/^--?/, '').split('=')[0];
    if (!next || !name || !FILTER_NAMES.has(name)) throw usage('--not must come before a filter flag (e.g. --not --verdict FORWARDED)');
    negated.push(next);
    if (!next.includes('=') && !/^-[nl].+/.test(next)) negated.push(argv[i + 2] ?? '');
    i += next.includes('=') || /^-[nl].+/.test(next) ? 1 : 2;
  }
  return { keep, negated };
}

const VERDICTS: Record<string, pb.Verdict> = { FORWARDED: pb.Verdict.FORWARDED, DROPPED: pb.Verdict.DROPPED, AUDIT: pb.Verdict.AUDIT, REDIRECTED: pb.Verdict.REDIRECTED, ERROR: pb.Verdict.ERROR, TRACED: pb.Verdict.TRACED, TRANSLATED: pb.Verdict.TRANSLATED };
const TYPES: Record<string, number> = { trace: 4, drop: 1, l7: 129, 'policy-verdict': 5 };

/** The FlowFilters of one set of flags (the whitelist's, or the blacklist's). */
export function filtersOf(p: Parsed): pb.FlowFilter[] {
  const vals = (n: string) => p.flags.get(n) ?? [];
  const base: Record<string, unknown> = {};
  const put = (field: string, v: unknown[]) => {
    if (v.length) base[field] = [...((base[field] as unknown[]) ?? []), ...v];
  };
  const ns = (v: string[]) => v.map((x) => (x.endsWith('/') ? x : `${x}/`));
  put('sourcePod', [...vals('from-pod'), ...ns(vals('from-namespace'))]);
  put('destinationPod', [...vals('to-pod'), ...ns(vals('to-namespace'))]);
  put('sourceLabel', vals('from-label'));
  put('destinationLabel', vals('to-label'));
  put('sourceIp', vals('from-ip'));
  put('destinationIp', vals('to-ip'));
  put('sourcePort', vals('from-port'));
  put('destinationPort', vals('to-port'));
  put('sourceFqdn', vals('from-fqdn'));
  put('destinationFqdn', vals('to-fqdn'));
  put('sourceIdentity', vals('from-identity').map(Number));
  put('destinationIdentity', vals('to-identity').map(Number));
  put('verdict', vals('verdict').map((v) => {
    const x = VERDICTS[v.toUpperCase()];
    if (x === undefined) throw usage(`--verdict ${v}: one of ${Object.keys(VERDICTS).join(', ')}`);
    return x;
  }));
  put('protocol', vals('protocol'));
  put('httpMethod', vals('http-method'));
  put('httpPath', vals('http-path'));
  put('httpStatusCode', vals('http-status'));
  put('eventType', vals('type').map((t) => {
    const x = TYPES[t];
    if (x === undefined) throw usage(`--type ${t}: one of ${Object.keys(TYPES).join(', ')}`);
    return { type: x };
  }));
  put('trafficDirection', vals('traffic-direction').map((d) => {
    const x = d.toLowerCase() === 'ingress' ? pb.TrafficDirection.INGRESS : d.toLowerCase() === 'egress' ? pb.TrafficDirection.EGRESS : undefined;
    if (x === undefined) throw usage(`--traffic-direction ${d}: ingress or egress`);
    return x;
  }));
  let filters: Record<string, unknown>[] = [base];
  const either: [string, string, string, (v: string[]) => unknown[]][] = [
    ['pod', 'sourcePod', 'destinationPod', (v) => v],
    ['namespace', 'sourcePod', 'destinationPod', ns],
    ['label', 'sourceLabel', 'destinationLabel', (v) => v],
    ['ip', 'sourceIp', 'destinationIp', (v) => v],
    ['port', 'sourcePort', 'destinationPort', (v) => v],
    ['fqdn', 'sourceFqdn', 'destinationFqdn', (v) => v],
    ['identity', 'sourceIdentity', 'destinationIdentity', (v) => v.map(Number)],
  ];
  for (const [name, src, dst, map] of either) {
    const v = map(vals(name));
    if (!v.length) continue;
    filters = filters.flatMap((f) => [
      { ...f, [src]: [...((f[src] as unknown[]) ?? []), ...v] },
      { ...f, [dst]: [...((f[dst] as unknown[]) ?? []), ...v] },
    ]);
  }
  const empty = filters.length === 1 && Object.keys(filters[0]!).length === 0;
  return empty ? [] : filters.map((f) => create(pb.FlowFilterSchema, f));
}

/** RFC 3339, or a duration before now (`5m`, `1h30m`, `90s`). */
export function parseWhen(flagName: string, v: string, now = Date.now()): number {
  if (/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    return now - ms;
  }
  const t = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(v) || Number.isNaN(t)) throw usage(`--${flagName} ${v}: an RFC 3339 time (2026-12-02T10:00:00Z) or a duration (5m, 1h30m)`);
  return t;
}

const registry = createRegistry(membranev1.FlowExtensionSchema);

export async function observe(argv: readonly string[], io: Io): Promise<number> {
  const { keep, negated } = splitNot(argv);
  const p = parseArgs(keep, SPECS);
  if (p.positionals.length) throw usage(`observe takes no arguments (got ${p.positionals.join(' ')})`);
  const neg = parseArgs(negated, SPECS);
  const fmt = outputFormat(p, ['compact', 'json', 'jsonpb', 'dict', 'table'] as const, 'compact');
  const whitelist = filtersOf(p);
  const blacklist = filtersOf(neg);
  const follow = boolFlag(p, 'follow');
  const count = (n: string) => {
    const v = flag(p, n);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw usage(`--${n} ${v}: a number of flows`);
    return Number(v);
  };
  const last = count('last');
  const first = count('first');
  if (last !== undefined && first !== undefined) throw usage('--last and --first cannot be combined');
  const since = flag(p, 'since') !== undefined ? parseWhen('since', flag(p, 'since')!) : undefined;
  const until = flag(p, 'until') !== undefined ? parseWhen('until', flag(p, 'until')!) : undefined;
  const number = first ?? last ?? (follow || since !== undefined || until !== undefined ? undefined : 20);
  const printOpts = { policyNames: boolFlag(p, 'print-policy-names'), nodeName: boolFlag(p, 'print-node-name') };
  const printer = makePrinter(fmt, printOpts, io);
  const input = flag(p, 'input-file') ?? (stdinIsFile() ? '-' : undefined);
  try {
    if (input !== undefined) {
      await offline(input, { whitelist, blacklist, number, first: first !== undefined, since, until }, printer);
    } else {
      await live(flag(p, 'server'), create(obs.GetFlowsRequestSchema, { number: BigInt(number ?? 0), first: first !== undefined, follow, whitelist, blacklist, ...(since !== undefined ? { since: timestampFromMs(since) } : {}), ...(until !== undefined ? { until: timestampFromMs(until) } : {}) }), printer);
    }
  } catch (e) {
    if (e instanceof FilterError) throw new MembraneError('MEMBRANE_E_USAGE', e.message);
    if (e instanceof ConnectError) throw new MembraneError(e.code === 3 ? 'MEMBRANE_E_USAGE' : 'MEMBRANE_E_AGENT_DOWN', `the Observer API: ${e.rawMessage}`);
    throw e;
  }
  printer.end();
  return 0;
}

function stdinIsFile(): boolean {
  try {
    return fstatSync(0).isFile();
  } catch {
    return false;
  }
}

interface Printer {
  response(r: obs.GetFlowsResponse): void;
  end(): void;
}

function makePrinter(fmt: 'compact' | 'json' | 'jsonpb' | 'dict' | 'table', o: { policyNames: boolean; nodeName: boolean }, io: Io): Printer {
  const rows: string[][] = [];
  let n = 0;
  return {
    response(r) {
      if (fmt === 'json' || fmt === 'jsonpb') {
        io.out(JSON.stringify(toJson(obs.GetFlowsResponseSchema, r, { useProtoFieldName: true, registry })) + '\n');
        return;
      }
      if (r.responseTypes.case === 'lostEvents') {
        const l = r.responseTypes.value;
        io.err(`EVENTS LOST: ${pb.LostEventSource[l.source]} ${l.numEventsLost}\n`);
        return;
      }
      if (r.responseTypes.case !== 'flow') return;
      const f = r.responseTypes.value;
      if (fmt === 'compact') io.out(compactLine(f, o) + '\n');
      else if (fmt === 'dict') io.out(`${n++ ? '------------\n' : ''}${dictBlock(f, o)}\n`);
      else {
        const [src, dst] = hostNames(f);
        rows.push([stampMilli(f.time), ...(o.nodeName ? [f.nodeName] : []), src, dst, flowType(f), verdictText(f, o), f.Summary]);
      }
    },
    end() {
      if (fmt === 'table') io.out(renderTable(['TIMESTAMP', ...(o.nodeName ? ['NODE'] : []), 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'], rows));
    },
  };
}

async function live(server: string | undefined, req: obs.GetFlowsRequest, printer: Printer): Promise<void> {
  let address = server;
  if (!address) {
    const s = await call<StatusResponse>('GET', '/v1/status');
    address = s.observer.hubble;
    if (!address) throw new MembraneError('MEMBRANE_E_AGENT_DOWN', 'the agent serves no Observer API yet');
  }
  const client = createClient(obs.Observer, createGrpcTransport({ baseUrl: `http://${address}` }));
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  try {
    for await (const r of client.getFlows(req, { signal: ac.signal })) printer.response(r);
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    process.off('SIGINT', stop);
  }
}

async function offline(file: string, q: { whitelist: pb.FlowFilter[]; blacklist: pb.FlowFilter[]; number: number | undefined; first: boolean; since: number | undefined; until: number | undefined }, printer: Printer): Promise<void> {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  const lines = text.split('\n').filter((l) => l.trim());
  const ring = new FlowRing<pb.Flow>(Math.max(1, lines.length));
  lines.forEach((l, i) => {
    let r: obs.GetFlowsResponse;
    try {
      r = fromJson(obs.GetFlowsResponseSchema, JSON.parse(l) as JsonValue, { registry, ignoreUnknownFields: true });
    } catch (e) {
      throw new MembraneError('MEMBRANE_E_USAGE', `${file === '-' ? 'stdin' : file}: line ${i + 1}: not a GetFlowsResponse (-o jsonpb): ${e instanceof Error ? e.message : String(e)}`);
    }
    if (r.responseTypes.case === 'flow') ring.push(r.responseTypes.value);
  });
  const predicate = compileFilters(q.whitelist, q.blacklist);
  const noLoss = { onLost: () => () => {} };
  const source = ringSource(ring);
  for await (const item of queryFlows(source, noLoss, { ...(q.number !== undefined ? { number: q.number } : {}), first: q.first, ...(q.since !== undefined ? { since: q.since } : {}), ...(q.until !== undefined ? { until: q.until } : {}), predicate })) {
    const f = 'seq' in item ? source.flow(item.seq) : undefined;
    if (f) printer.response(create(obs.GetFlowsResponseSchema, { responseTypes: { case: 'flow', value: f }, nodeName: f.nodeName, time: f.time }));
  }
}
