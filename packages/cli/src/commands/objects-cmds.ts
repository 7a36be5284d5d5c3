/** `membrane apply`, `delete`, `get`, `endpoint list`, `identity list`, `wait`. */
import { stringify } from 'yaml';
import { MembraneError, combineErrors, loadDocuments, type ApiDocument, type ApplyResponse, type DeleteResponse, type EndpointInfo, type IdentityInfo, type ServiceListEntry } from '@membrane/api';
import { boolFlag, flag, outputFormat, parseArgs, usage } from '../args.js';
import { call } from '../client.js';
import { collectFiles, readText } from '../files.js';
import { renderTable } from '../printers/table.js';
import { describe } from '../printers/describe.js';
import type { Io } from '../io.js';
import { parseDuration } from './lifecycle-cmds.js';

/** Every document of every file; the problems of all files are reported together. */
function readDocuments(files: readonly string[]): ApiDocument[] {
  const out: ApiDocument[] = [];
  const errors: MembraneError[] = [];
  for (const f of collectFiles(files)) {
    try {
      for (const d of loadDocuments(readText(f), f)) out.push({ source: d.ref.source, label: d.ref.label, value: d.value });
    } catch (e) {
      if (!(e instanceof MembraneError)) throw e;
      errors.push(e);
    }
  }
  if (errors.length) throw combineErrors(errors);
  if (out.length === 0) throw new MembraneError('MEMBRANE_E_USAGE', `no objects in ${files.join(', ')}`);
  return out;
}

const lower = (k: string) => k.toLowerCase();

export const applyHelp = `Usage: membrane apply -f FILE|DIR|- [-n NS] [-o json]

Creates or updates the objects of multi-document YAML/JSON manifests and
returns once the change is in force (pods started, policies enforced).
-o json prints the agent's answer: {"results": [{kind, namespace, name,
action}], "enforcedMs": time in the agent from the request to in force}.`;

export async function apply(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'filename', short: 'f', value: true, multiple: true }, { name: 'namespace', short: 'n', value: true }, { name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'json'] as const, 'table');
  const files = p.flags.get('filename') ?? [];
  if (files.length === 0) throw usage('apply needs -f FILE|DIR|-');
  const documents = readDocuments(files);
  const ns = flag(p, 'namespace');
  const r = await call<ApplyResponse>('POST', '/v1/apply', { documents, ...(ns ? { defaultNamespace: ns } : {}) });
  if (fmt === 'json') {
    io.out(JSON.stringify(r, null, 2) + '\n');
    return 0;
  }
  for (const x of r.results) io.out(`${lower(x.kind)}/${x.name} ${x.action}\n`);
  return 0;
}

export const deleteHelp = `Usage: membrane delete -f FILE|DIR|- | KIND NAME [-n NS] [--ignore-not-found]`;

export async function del(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'filename', short: 'f', value: true, multiple: true },
    { name: 'namespace', short: 'n', value: true },
    { name: 'ignore-not-found' },
  ]);
  const ns = flag(p, 'namespace');
  const files = p.flags.get('filename') ?? [];
  const body: Record<string, unknown> = { ignoreNotFound: boolFlag(p, 'ignore-not-found'), ...(ns ? { defaultNamespace: ns } : {}) };
  if (files.length) body['documents'] = readDocuments(files);
  else {
    if (p.positionals.length !== 2) throw usage('delete takes -f FILE or KIND NAME');
    body['refs'] = [{ kind: kindOf(p.positionals[0]!), name: p.positionals[1]!, ...(ns ? { namespace: ns } : {}) }];
  }
  const r = await call<DeleteResponse>('POST', '/v1/delete', body);
  for (const x of r.results) io.out(x.action === 'deleted' ? `${lower(x.kind)} "${x.name}" deleted\n` : `${lower(x.kind)} "${x.name}" not found (ignored)\n`);
  // The objects are gone; what the kernel kept of them is said, never hidden.
  for (const problem of r.problems ?? []) io.err(`membrane: ${problem} [MEMBRANE_E_POD_NETWORK]\n`);
  return r.problems?.length ? 1 : 0;
}

const KIND_ALIASES: Record<string, string> = {
  pod: 'Pod', pods: 'Pod', po: 'Pod',
  deployment: 'Deployment', deployments: 'Deployment', deploy: 'Deployment',
  service: 'Service', services: 'Service', svc: 'Service',
  namespace: 'Namespace', namespaces: 'Namespace', ns: 'Namespace',
  serviceaccount: 'ServiceAccount', serviceaccounts: 'ServiceAccount', sa: 'ServiceAccount',
  cnp: 'CiliumNetworkPolicy', ciliumnetworkpolicy: 'CiliumNetworkPolicy', ciliumnetworkpolicies: 'CiliumNetworkPolicy',
  ccnp: 'CiliumClusterwideNetworkPolicy', ciliumclusterwidenetworkpolicy: 'CiliumClusterwideNetworkPolicy', ciliumclusterwidenetworkpolicies: 'CiliumClusterwideNetworkPolicy',
  netpol: 'NetworkPolicy', networkpolicy: 'NetworkPolicy', networkpolicies: 'NetworkPolicy',
};

export function kindOf(s: string): string {
  const k = KIND_ALIASES[s.toLowerCase()];
  if (!k) throw usage(`unknown kind "${s}" (known: pods, deployments, services, namespaces, serviceaccounts, cnp, ccnp, netpol, endpoints, identities)`);
  return k;
}

function age(ts: string | undefined): string {
  if (!ts) return '-';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
}

type K8sObject = { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; creationTimestamp?: string }; spec?: Record<string, unknown>; status?: Record<string, unknown> };

export const getHelp = `Usage: membrane get KIND [NAME] [-n NS | -A] [-o wide|json|yaml]

KIND: pods, deployments, services, namespaces, serviceaccounts, cnp, ccnp, netpol, endpoints, identities`;

export async function get(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'namespace', short: 'n', value: true }, { name: 'all-namespaces', short: 'A' }, { name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'wide', 'json', 'yaml'] as const, 'table');
  if (p.positionals.length < 1) throw usage('get needs a KIND');
  const what = p.positionals[0]!.toLowerCase();
  if (what === 'endpoints' || what === 'endpoint' || what === 'ep') return endpointList(fmt === 'wide' ? [] : fmt === 'table' ? [] : ['-o', 'json'], io);
  if (what === 'identities' || what === 'identity') return identityList(fmt === 'table' || fmt === 'wide' ? [] : ['-o', 'json'], io);
  const kind = kindOf(what);
  const name = p.positionals[1];
  const all = boolFlag(p, 'all-namespaces');
  const ns = all ? undefined : flag(p, 'namespace') ?? 'default';
  const q = new URLSearchParams();
  if (ns !== undefined) q.set('namespace', ns);
  if (name) q.set('name', name);
  const items = await call<K8sObject[]>('GET', `/v1/objects/${kind}?${q}`);
  if (fmt === 'json' || fmt === 'yaml') {
    const doc = name ? items[0] : { apiVersion: 'v1', kind: 'List', items };
    io.out(fmt === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc));
    return 0;
  }
  if (items.length === 0) {
    io.err(`No resources found${ns ? ` in ${ns} namespace` : ''}.\n`);
    return 0;
  }
  const nsCol = all && kind !== 'Namespace' && kind !== 'CiliumClusterwideNetworkPolicy';
  const rows = items.map((o) => {
    const st = o.status ?? {};
    let cols: string[];
    switch (kind) {
      case 'Pod': {
        const cs = (st['containerStatuses'] as { ready: boolean; restartCount: number }[] | undefined) ?? [];
        cols = [o.metadata.name, `${cs.filter((c) => c.ready).length}/${cs.length}`, String(st['reason'] && st['phase'] === 'Failed' ? st['reason'] : st['phase'] ?? 'Pending'), String(cs.reduce((a, c) => a + c.restartCount, 0)), age(o.metadata.creationTimestamp)];
        if (fmt === 'wide') cols.push(String(st['podIP'] ?? '<none>'), (st['message'] as string | undefined) ?? '');
        break;
      }
      case 'Deployment':
        cols = [o.metadata.name, `${st['readyReplicas'] ?? 0}/${(o.spec?.['replicas'] as number | undefined) ?? 1}`, String(st['replicas'] ?? 0), age(o.metadata.creationTimestamp)];
        break;
      case 'Service': {
        const ports = ((o.spec?.['ports'] as { port: number; protocol?: string }[] | undefined) ?? []).map((x) => `${x.port}/${x.protocol ?? 'TCP'}`).join(',');
        cols = [o.metadata.name, String(o.spec?.['type'] ?? 'ClusterIP'), String(o.spec?.['clusterIP'] ?? '<pending>'), '<none>', ports, age(o.metadata.creationTimestamp)];
        if (fmt === 'wide') {
          const sel = o.spec?.['selector'] as Record<string, string> | undefined;
          cols.push(sel && Object.keys(sel).length ? Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',') : '<none>');
        }
        break;
      }
      case 'Namespace':
        cols = [o.metadata.name, 'Active', age(o.metadata.creationTimestamp)];
        break;
      default:
        cols = [o.metadata.name, age(o.metadata.creationTimestamp)];
    }
    return nsCol ? [o.metadata.namespace ?? '', ...cols] : cols;
  });
  const headers: Record<string, string[]> = {
    Pod: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(fmt === 'wide' ? ['IP', 'MESSAGE'] : [])],
    Deployment: ['NAME', 'READY', 'AVAILABLE', 'AGE'],
    Service: ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE', ...(fmt === 'wide' ? ['SELECTOR'] : [])],
    Namespace: ['NAME', 'STATUS', 'AGE'],
  };
  const h = headers[kind] ?? ['NAME', 'AGE'];
  io.out(renderTable(nsCol ? ['NAMESPACE', ...h] : h, rows));
  return 0;
}

export const endpointListHelp = `Usage: membrane endpoint list [-o json]

The 'cilium endpoint list' table.`;

export async function endpointList(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'json'] as const, 'table');
  const eps = await call<EndpointInfo[]>('GET', '/v1/endpoints');
  if (fmt === 'json') {
    io.out(JSON.stringify(eps, null, 2) + '\n');
    return 0;
  }
  const en = (b: boolean) => (b ? 'Enabled' : 'Disabled');
  io.out(
    renderTable(
      ['ENDPOINT', 'POLICY (ingress)\nENFORCEMENT', 'POLICY (egress)\nENFORCEMENT', 'IDENTITY', 'LABELS (source:key[=value])', 'IPv6', 'IPv4', 'STATUS'],
      eps.map((e) => [String(e.id), en(e.policyEnforcement.ingress), en(e.policyEnforcement.egress), String(e.identity), e.labels.join('\n'), '', e.ipv4, e.state]),
    ),
  );
  return 0;
}

export const serviceListHelp = `Usage: membrane service list [-o json]

The 'cilium service list' table: every frontend (ClusterIP:port/protocol) of
every Service with the backends new connections are balanced over.`;

export async function serviceList(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'json'] as const, 'table');
  const list = await call<ServiceListEntry[]>('GET', '/v1/services');
  if (fmt === 'json') {
    io.out(JSON.stringify(list, null, 2) + '\n');
    return 0;
  }
  io.out(
    renderTable(
      ['ID', 'Frontend', 'Service Type', 'Backend'],
      list.map((s) => [String(s.id), s.frontend.replace(/\/(TCP|UDP|SCTP)$/, '/$1'), s.type, s.backends.length ? s.backends.map((b, i) => `${i + 1} => ${b.address} (${b.state})`).join('\n') : '']),
    ),
  );
  return 0;
}

export async function identityList(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'json'] as const, 'table');
  const ids = await call<IdentityInfo[]>('GET', '/v1/identities');
  if (fmt === 'json') {
    io.out(JSON.stringify(ids, null, 2) + '\n');
    return 0;
  }
  io.out(renderTable(['ID', 'LABELS'], ids.map((i) => [String(i.id), i.labels.join('\n')])));
  return 0;
}

export const waitHelp = `Usage: membrane wait --for=condition=Ready pod/NAME [-n NS] [--timeout 30s]`;

export async function wait(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'for', value: true }, { name: 'namespace', short: 'n', value: true }, { name: 'timeout', value: true }]);
  const cond = flag(p, 'for');
  if (cond !== 'condition=Ready') throw usage('wait supports --for=condition=Ready');
  if (p.positionals.length !== 1 || !p.positionals[0]!.includes('/')) throw usage('wait needs pod/NAME');
  const [k, name] = p.positionals[0]!.split('/') as [string, string];
  if (kindOf(k) !== 'Pod') throw usage('wait supports pods');
  const ns = flag(p, 'namespace') ?? 'default';
  const deadline = Date.now() + parseDuration(flag(p, 'timeout') ?? '30s');
  for (;;) {
    const [pod] = await call<K8sObject[]>('GET', `/v1/objects/Pod?${new URLSearchParams({ namespace: ns, name })}`);
    const ready = ((pod?.status?.['conditions'] as { type: string; status: string }[] | undefined) ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    if (ready) {
      io.out(`pod/${name} condition met\n`);
      return 0;
    }
    if (Date.now() > deadline) {
      io.err(`membrane: timed out waiting for the condition on pods/${name}\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const describeHelp = `Usage: membrane describe KIND NAME [-n NS]

The object as 'kubectl describe' shows it (for a CiliumNetworkPolicy, as 'kubectl describe cnp').`;

export async function describeCmd(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'namespace', short: 'n', value: true }]);
  if (p.positionals.length !== 2) throw usage('describe needs KIND NAME');
  const kind = kindOf(p.positionals[0]!);
  const ns = flag(p, 'namespace') ?? 'default';
  const [o] = await call<K8sObject[]>('GET', `/v1/objects/${kind}?${new URLSearchParams({ namespace: ns, name: p.positionals[1]! })}`);
  io.out(describe(o as unknown as Parameters<typeof describe>[0]));
  return 0;
}
