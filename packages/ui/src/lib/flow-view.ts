/**
 * What the console shows of a flow, as text: the table's cells (Hubble
 * UI's columns), the rules behind its verdict, and the exports (a JSON
 * array, or `hubble observe -o jsonpb` lines that `membrane observe
 * --input-file` and Hubble read back).
 */
import { createRegistry, toJson, type JsonValue } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { hostNames, stampMilli } from '@membrane/observer/browser';
import { flow as pb, membranev1 } from '@membrane/proto';

const registry = createRegistry(membranev1.FlowExtensionSchema);

export interface FlowRow {
  source: string;
  destination: string;
  port: string;
  l7: string;
  verdict: string;
  time: string;
}

function port(f: pb.Flow): string {
  const p = f.l4?.protocol;
  if (!p) return '';
  if (p.case === 'TCP' || p.case === 'UDP' || p.case === 'SCTP') return `${p.value.destinationPort}/${p.case}`;
  return p.case ?? '';
}

/** The L7 column: the request and its answer. */
export function l7Summary(f: pb.Flow): string {
  const r = f.l7?.record;
  if (r?.case === 'http') return `${r.value.method} ${r.value.url}${r.value.code ? ` → ${r.value.code}` : ''}`;
  if (r?.case === 'dns') return `DNS ${r.value.query}${r.value.ips.length ? ` → ${r.value.ips.join(', ')}` : ''}`;
  return '';
}

export function flowRow(f: pb.Flow): FlowRow {
  const [src, dst] = hostNames(f);
  return { source: src, destination: dst, port: port(f), l7: l7Summary(f), verdict: pb.Verdict[f.verdict] ?? String(f.verdict), time: stampMilli(f.time) };
}

export interface FlowPolicyRef {
  kind: string;
  namespace: string;
  name: string;
  /** allowed or denied by it, in which direction; or the policy behind a default deny. */
  role: 'ingress allowed' | 'egress allowed' | 'ingress denied' | 'egress denied' | 'default deny';
}

/** The policies behind the verdict, and the engine's rule texts and reason (Membrane's extension). */
export function flowPolicies(f: pb.Flow): { policies: FlowPolicyRef[]; rules: string[]; reason: string } {
  const out: FlowPolicyRef[] = [];
  const add = (list: readonly pb.Policy[], role: FlowPolicyRef['role']) => {
    for (const p of list) out.push({ kind: p.kind, namespace: p.namespace, name: p.name, role });
  };
  add(f.ingressAllowedBy, 'ingress allowed');
  add(f.egressAllowedBy, 'egress allowed');
  add(f.ingressDeniedBy, 'ingress denied');
  add(f.egressDeniedBy, 'egress denied');
  let rules: string[] = [];
  let reason = '';
  if (f.extensions) {
    try {
      const ext = anyUnpack(f.extensions, membranev1.FlowExtensionSchema);
      if (ext) {
        add(ext.defaultDenyBy, 'default deny');
        rules = [...ext.rules];
        reason = ext.reason;
      }
    } catch {
      // an extension of another kind: nothing of ours in it
    }
  }
  return { policies: out, rules, reason };
}

/** The flow in Hubble's JSON (proto field names, as `observe -o json`). */
export function flowJson(f: pb.Flow): JsonValue {
  return toJson(pb.FlowSchema, f, { useProtoFieldName: true, registry });
}

/** The flows as one JSON array. */
export function exportJson(flows: readonly pb.Flow[]): string {
  return JSON.stringify(flows.map(flowJson), null, 2) + '\n';
}

/** The flows as `hubble observe -o jsonpb` lines: one GetFlowsResponse each. */
export function exportJsonpb(flows: readonly pb.Flow[]): string {
  return flows.map((f) => JSON.stringify({ flow: flowJson(f), node_name: f.nodeName, ...(f.time ? { time: (flowJson(f) as { time?: string }).time } : {}) })).join('\n') + (flows.length ? '\n' : '');
}
