/**
 * Scenario files (shared/spec/policy-scenarios.md): a small world of
 * namespaces, endpoints and outside peers, the policies applied to it, and
 * probes with their expected verdicts.
 */
import {
  MembraneError,
  Problems,
  ValidationError,
  arr,
  checkDns1123Label,
  checkLabelKey,
  checkLabelValue,
  int,
  isPlainObject,
  join,
  loadDocuments,
  obj,
  str,
  strMap,
  typeName,
  type DocumentRef,
  type Schema,
} from '@membrane/api';
import { parseIP } from './cidr.js';
import { isServiceName, protoNumber, type NamedPort } from './ports.js';
import { parsePolicyDocument, type TranslatedPolicy } from './repository.js';

export interface ScenarioEndpoint {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ip?: string;
  serviceAccount?: string;
  /** Its containers' named ports (`containers[].ports[].name` of a pod): `http: 8080`, `dns: 53/UDP`. */
  ports?: NamedPort[];
}

export interface ScenarioOutside {
  name: string;
  ip?: string;
  entity?: string;
  fqdns?: string[];
}

export interface ScenarioProbe {
  index: number;
  from: string;
  to: string;
  port?: number;
  protocol: 'TCP' | 'UDP' | 'SCTP' | 'ICMP';
  icmp?: { type: number; code?: number };
  http?: { method?: string; path?: string; host?: string; headers?: Record<string, string> };
  dns?: { query: string };
  expect?: 'allowed' | 'denied';
}

export interface Scenario {
  source: string;
  name: string;
  namespaces: Record<string, { labels: Record<string, string> }>;
  endpoints: ScenarioEndpoint[];
  outside: ScenarioOutside[];
  policies: TranslatedPolicy[];
  probes: ScenarioProbe[];
}

const ENTITIES = ['host', 'remote-node', 'world', 'cluster', 'init', 'health', 'unmanaged', 'kube-apiserver', 'ingress', 'all'];

const ipString: Schema<string> = str({ check: (s) => (parseIP(s) ? undefined : `"${s}" is not an IP address`) });
const labels = strMap(checkLabelKey, str({ check: checkLabelValue }));

/** `name: 8080` (TCP) or `name: "53/UDP"`, as a container port named in a pod spec. */
const namedPorts: Schema<NamedPort[]> = (v: unknown, path: string, problems: Problems) => {
  if (!isPlainObject(v)) {
    problems.add(path, `must be a mapping of port names to ports (http: 8080, dns: 53/UDP), not ${typeName(v)}`);
    return undefined;
  }
  const out: NamedPort[] = [];
  for (const [name, val] of Object.entries(v)) {
    const at = join(path, name);
    if (!isServiceName(name)) {
      problems.add(at, `"${name}" is not a port name (an IANA service name: lowercase letters, digits and "-", at most 15, at least one letter)`);
      continue;
    }
    const m = typeof val === 'number' ? [String(val), String(val), 'TCP'] : typeof val === 'string' ? /^(\d+)(?:\/(TCP|UDP|SCTP))?$/.exec(val) : null;
    const port = m ? Number(m[1]) : NaN;
    if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
      problems.add(at, `must be a port number from 1 to 65535, optionally with /TCP, /UDP or /SCTP (got ${JSON.stringify(val)})`);
      continue;
    }
    out.push({ name, port, proto: protoNumber(m[2] ?? 'TCP')! });
  }
  return out;
};

const scenarioSchema = obj(
  {
    name: str({ nonEmpty: true }),
    namespaces: (v: unknown, path: string, problems: Problems) => {
      if (!isPlainObject(v)) {
        problems.add(path, `must be a mapping of namespace names, not ${typeName(v)}`);
        return undefined;
      }
      const out: Record<string, { labels: Record<string, string> }> = {};
      for (const [k, val] of Object.entries(v)) {
        const why = checkDns1123Label(k);
        if (why) {
          problems.add(join(path, k), why);
          continue;
        }
        const r = obj({ labels })(val ?? {}, join(path, k), problems);
        if (r) out[k] = { labels: r.labels ?? {} };
      }
      return out;
    },
    endpoints: arr(
      obj(
        {
          name: str({ nonEmpty: true, check: checkDns1123Label }),
          namespace: str({ nonEmpty: true, check: checkDns1123Label }),
          labels,
          ip: ipString,
          serviceAccount: str({ nonEmpty: true }),
          ports: namedPorts,
        },
        { required: ['name'] },
      ),
    ),
    outside: arr(
      obj(
        {
          name: str({ nonEmpty: true }),
          ip: ipString,
          entity: str({ oneOf: ENTITIES }),
          fqdns: arr(str({ nonEmpty: true })),
        },
        { required: ['name'] },
      ),
    ),
    policies: arr((v: unknown) => v),
    probes: arr(
      obj(
        {
          from: str({ nonEmpty: true }),
          to: str({ nonEmpty: true }),
          port: int({ min: 1, max: 65535 }),
          protocol: str({ oneOf: ['TCP', 'UDP', 'SCTP', 'ICMP'] }),
          icmp: obj({ type: int({ min: 0, max: 255 }), code: int({ min: 0, max: 255 }) }),
          http: obj({ method: str({ nonEmpty: true }), path: str({ nonEmpty: true }), host: str(), headers: strMap(() => undefined, str()) }),
          dns: obj({ query: str({ nonEmpty: true }) }, { required: ['query'] }),
          expect: str({ oneOf: ['allowed', 'denied'] }),
        },
        { required: ['from', 'to'] },
      ),
    ),
  },
  { required: ['name', 'endpoints', 'policies', 'probes'] },
);

/** Parses and validates a scenario file's text. Throws ValidationError (exit 2 at the CLI). */
export function parseScenario(text: string, source: string): Scenario {
  const docs = loadDocuments(text, source, { singleLabel: 'scenario' });
  if (docs.length !== 1) {
    throw new MembraneError('MEMBRANE_E_SCENARIO_INVALID', `${source}: a scenario file holds exactly one YAML document (found ${docs.length})`);
  }
  const doc = docs[0]!;
  const ref: DocumentRef = { source, label: 'scenario' };
  const problems = new Problems();
  const raw = scenarioSchema(doc.value, '', problems);
  if (!raw || !problems.ok) throw new ValidationError('MEMBRANE_E_SCENARIO_INVALID', ref, problems.list);

  const endpoints: ScenarioEndpoint[] = (raw.endpoints ?? []).map((e) => ({
    name: e.name!,
    namespace: e.namespace ?? 'default',
    labels: e.labels ?? {},
    ...(e.ip ? { ip: e.ip } : {}),
    ...(e.serviceAccount ? { serviceAccount: e.serviceAccount } : {}),
    ...(e.ports?.length ? { ports: e.ports } : {}),
  }));
  const outside: ScenarioOutside[] = (raw.outside ?? []).map((o) => ({
    name: o.name!,
    ...(o.ip ? { ip: o.ip } : {}),
    ...(o.entity ? { entity: o.entity } : {}),
    ...(o.fqdns ? { fqdns: o.fqdns } : {}),
  }));

  const names = new Set<string>();
  endpoints.forEach((e, i) => {
    const k = `${e.namespace}/${e.name}`;
    if (names.has(k)) problems.add(`endpoints[${i}]`, `duplicate endpoint ${k}`);
    names.add(k);
  });
  const ips = new Map<string, string>();
  endpoints.forEach((e, i) => {
    if (!e.ip) return;
    const other = ips.get(e.ip);
    if (other) problems.add(`endpoints[${i}].ip`, `${e.ip} is already the IP of ${other}`);
    ips.set(e.ip, `${e.namespace}/${e.name}`);
  });
  outside.forEach((o, i) => {
    if (names.has(o.name)) problems.add(`outside[${i}].name`, `duplicate peer name ${o.name}`);
    names.add(o.name);
    if (!o.ip && !o.entity) problems.add(`outside[${i}]`, 'needs an ip or an entity');
    if (o.ip && ips.has(o.ip)) problems.add(`outside[${i}].ip`, `${o.ip} is already the IP of ${ips.get(o.ip)}`);
  });
  const probes: ScenarioProbe[] = (raw.probes ?? []).map((p, i) => {
    const at = `probes[${i}]`;
    const protocol = (p.protocol ?? 'TCP') as ScenarioProbe['protocol'];
    for (const side of ['from', 'to'] as const) {
      const v = p[side]!;
      if (!names.has(v) && !names.has(`default/${v}`)) problems.add(join(at, side), `"${v}" is neither an endpoint (namespace/name) nor an outside peer`);
    }
    if (protocol === 'ICMP') {
      if (p.port !== undefined) problems.add(join(at, 'port'), 'ICMP probes take no port (use icmp.type)');
    } else if (p.port === undefined) problems.add(join(at, 'port'), `is required for ${protocol}`);
    if (p.http && protocol !== 'TCP') problems.add(join(at, 'http'), 'HTTP probes are TCP');
    if (p.http && p.dns) problems.add(at, 'a probe has http or dns, not both');
    if (p.icmp && protocol !== 'ICMP') problems.add(join(at, 'icmp'), 'only for protocol ICMP');
    return {
      index: i,
      from: p.from!,
      to: p.to!,
      ...(p.port !== undefined ? { port: p.port } : {}),
      protocol,
      ...(protocol === 'ICMP' ? { icmp: { type: p.icmp?.type ?? 8, ...(p.icmp?.code !== undefined ? { code: p.icmp.code } : {}) } } : {}),
      ...(p.http ? { http: p.http as ScenarioProbe['http'] } : {}),
      ...(p.dns ? { dns: { query: p.dns.query! } } : {}),
      ...(p.expect ? { expect: p.expect as 'allowed' | 'denied' } : {}),
    };
  });
  if (!problems.ok) throw new ValidationError('MEMBRANE_E_SCENARIO_INVALID', ref, problems.list);

  // Policies: each item is one YAML document as a user would apply it (or an already-structured mapping).
  const policies: TranslatedPolicy[] = [];
  (raw.policies ?? []).forEach((item, i) => {
    const label = `policies[${i}]`;
    if (typeof item === 'string') {
      for (const d of loadDocuments(item, source, { singleLabel: label })) policies.push(parsePolicyDocument(d.value, d.ref));
    } else {
      policies.push(parsePolicyDocument(item, { source, label }));
    }
  });
  const seen = new Map<string, string>();
  policies.forEach((p, i) => {
    const k = `${p.ref.kind}/${p.ref.namespace ?? ''}/${p.ref.name}`;
    if (seen.has(k)) {
      throw new ValidationError('MEMBRANE_E_POLICY_INVALID', { source, label: `policies[${i}]`, object: `${p.ref.kind} ${p.ref.namespace ? p.ref.namespace + '/' : ''}${p.ref.name}` }, [
        { path: 'metadata.name', reason: `the same policy is already defined by ${seen.get(k)}` },
      ]);
    }
    seen.set(k, `policies[${i}]`);
  });

  const namespaces: Scenario['namespaces'] = { ...(raw.namespaces ?? {}) };
  for (const e of endpoints) namespaces[e.namespace] ??= { labels: {} };
  for (const p of policies) if (p.ref.namespace) namespaces[p.ref.namespace] ??= { labels: {} };
  return { source, name: raw.name!, namespaces, endpoints, outside, policies, probes };
}
