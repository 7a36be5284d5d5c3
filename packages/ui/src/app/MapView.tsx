/**
 * The service map: every namespace at once or a chosen set, grouped by
 * namespace; workloads, pods, world, host, FQDNs and CIDRs as nodes; edges
 * with forwarded and dropped counts, and for HTTP the request rate, error
 * share and p50/p99 latency; dropped edges stand out. Laid out by elkjs
 * (layered, in a stable model order) only when the set of nodes or edges
 * changes, so counts update in place and nodes do not jump. Clicking a
 * node or an edge shows its flows.
 */
import elkBundled from 'elkjs/lib/elk.bundled.js';
import type { ELK, ELKConstructorArguments, ElkNode } from 'elkjs/lib/elk-api.js';
import { useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactElement } from 'react';
import type { flow as pb } from '@membrane/proto';
import { flowsMatchingSelection, ServiceMap, type MapEdge, type MapSelection, type MapSnapshot } from '../lib/service-map.js';
import type { FlowFeed } from './feed.js';

// elkjs is CommonJS: its constructor is the module or its default, by bundler.
type ElkCtor = new (args?: ELKConstructorArguments) => ELK;
const ElkCtor = (elkBundled as unknown as { default?: ElkCtor }).default ?? (elkBundled as unknown as ElkCtor);
const elk = new ElkCtor();
const NODE_W = 170;
const NODE_H = 44;

interface Layout {
  key: string;
  nodes: Map<string, { x: number; y: number }>;
  groups: { namespace: string; x: number; y: number; w: number; h: number }[];
  edges: Map<string, { points: { x: number; y: number }[] }>;
  width: number;
  height: number;
}

async function layout(s: MapSnapshot, key: string): Promise<Layout> {
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'RIGHT', 'elk.hierarchyHandling': 'INCLUDE_CHILDREN', 'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES', 'elk.spacing.nodeNode': '28', 'elk.layered.spacing.nodeNodeBetweenLayers': '190', 'elk.padding': '[top=30,left=16,bottom=16,right=16]' },
    children: s.groups.map((g) => ({
      id: `group:${g.namespace || '(cluster)'}`,
      layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'RIGHT', 'elk.padding': '[top=30,left=14,bottom=14,right=14]', 'elk.spacing.nodeNode': '30', 'elk.layered.spacing.nodeNodeBetweenLayers': '190' },
      children: g.nodeIds.map((id) => ({ id, width: NODE_W, height: NODE_H })),
    })),
    edges: s.edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target] })),
  };
  const out = await elk.layout(graph);
  const nodes = new Map<string, { x: number; y: number }>();
  const groups: Layout['groups'] = [];
  for (const g of out.children ?? []) {
    groups.push({ namespace: g.id.slice('group:'.length), x: g.x ?? 0, y: g.y ?? 0, w: g.width ?? 0, h: g.height ?? 0 });
    for (const n of g.children ?? []) nodes.set(n.id, { x: (g.x ?? 0) + (n.x ?? 0), y: (g.y ?? 0) + (n.y ?? 0) });
  }
  const edges = new Map<string, { points: { x: number; y: number }[] }>();
  for (const e of s.edges) {
    const a = nodes.get(e.source);
    const b = nodes.get(e.target);
    if (a && b) edges.set(e.id, { points: [{ x: a.x + NODE_W, y: a.y + NODE_H / 2 }, { x: b.x, y: b.y + NODE_H / 2 }] });
  }
  return { key, nodes, groups, edges, width: out.width ?? 800, height: out.height ?? 600 };
}

function edgeText(e: MapEdge): string {
  const parts = [`${e.port ? `${e.port}/` : ''}${e.protocol}`, `${e.forwarded} fwd`];
  if (e.dropped) parts.push(`${e.dropped} dropped`);
  if (e.http) {
    parts.push(`${e.http.ratePerSec.toFixed(1)} req/s`, `${Math.round(e.http.errorShare * 100)}% err`);
    if (e.http.p50Ms !== null) parts.push(`p50 ${e.http.p50Ms.toFixed(1)} ms`, `p99 ${e.http.p99Ms!.toFixed(1)} ms`);
  }
  return parts.join(' · ');
}

export interface MapViewProps {
  feed: FlowFeed;
  showFlows: (label: string, match: (f: pb.Flow) => boolean) => void;
}

export function MapView({ feed, showFlows }: MapViewProps): ReactElement {
  const version = useSyncExternalStore((l) => feed.subscribe(l), () => feed.version);
  const map = useRef<{ m: ServiceMap; taken: number; first?: pb.Flow }>({ m: new ServiceMap(), taken: 0 });
  const [chosen, setChosen] = useState<string[]>([]);
  const [lay, setLay] = useState<Layout | undefined>();
  // Take in what arrived since last time (the feed drops its oldest: start over then).
  const st = map.current;
  if (st.first !== feed.flows[0] || st.taken > feed.flows.length) {
    st.m = new ServiceMap();
    st.taken = 0;
    st.first = feed.flows[0];
  }
  for (; st.taken < feed.flows.length; st.taken++) st.m.add(feed.flows[st.taken]!);
  const all = useMemo(() => st.m.snapshot(), [version]); // eslint-disable-line react-hooks/exhaustive-deps
  const snap = useMemo(() => st.m.snapshot(chosen.length ? { namespaces: chosen } : {}), [version, chosen.join(',')]); // eslint-disable-line react-hooks/exhaustive-deps
  const key = `${snap.nodes.map((n) => n.id).join('|')}#${snap.edges.map((e) => e.id).join('|')}`;
  useEffect(() => {
    if (lay?.key === key) return;
    let live = true;
    void layout(snap, key).then((l) => live && setLay(l));
    return () => {
      live = false;
    };
  }, [key]); // eslint-disable-line react-hooks/exhaustive-deps
  const namespaces = all.groups.map((g) => g.namespace).filter(Boolean);
  const pick = (sel: MapSelection, label: string) => showFlows(label, (f) => flowsMatchingSelection(sel, f));

  return (
    <div className="map">
      <div className="ns-picker" data-testid="ns-picker">
        Namespaces:
        {namespaces.map((ns) => (
          <label key={ns}>
            <input type="checkbox" checked={chosen.includes(ns)} onChange={(e) => setChosen(e.target.checked ? [...chosen, ns] : chosen.filter((x) => x !== ns))} /> {ns}
          </label>
        ))}
        <span className="hint">{chosen.length ? chosen.join(', ') : 'all namespaces'}</span>
      </div>
      {snap.nodes.length === 0 && <div className="empty">No flows yet.</div>}
      {lay && (
        <svg className="map-svg" width={lay.width} height={lay.height} data-testid="service-map" role="img" aria-label="service map">
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" className="arrow" />
            </marker>
          </defs>
          {lay.groups.map((g) => (
            <g key={g.namespace}>
              <rect className="ns-group" x={g.x} y={g.y} width={g.w} height={g.h} rx={8} />
              <text className="ns-label" x={g.x + 10} y={g.y + 19}>{g.namespace}</text>
            </g>
          ))}
          {snap.edges.map((e) => {
            const p = lay.edges.get(e.id);
            if (!p) return null;
            const [a, b] = p.points as [{ x: number; y: number }, { x: number; y: number }];
            const mx = (a.x + b.x) / 2;
            return (
              <g key={e.id} className={`edge${e.hasDrops ? ' dropped' : ''}${e.forwarded ? ' forwarded' : ''}`} data-testid="map-edge" data-source={e.source} data-target={e.target} data-dropped={e.dropped} data-forwarded={e.forwarded} onClick={() => pick({ kind: 'edge', id: e.id }, `flows of ${e.source} → ${e.target} ${e.port}/${e.protocol}`)}>
                <path d={`M ${a.x} ${a.y} C ${mx} ${a.y}, ${mx} ${b.y}, ${b.x} ${b.y}`} markerEnd="url(#arrow)" />
                <text x={mx} y={(a.y + b.y) / 2 - 6} textAnchor="middle">{edgeText(e)}</text>
              </g>
            );
          })}
          {snap.nodes.map((n) => {
            const p = lay.nodes.get(n.id);
            if (!p) return null;
            return (
              <g key={n.id} className={`node kind-${n.kind}`} transform={`translate(${p.x},${p.y})`} data-testid="map-node" data-id={n.id} onClick={() => pick({ kind: 'node', id: n.id }, `flows of ${n.label}`)}>
                <rect width={NODE_W} height={NODE_H} rx={6} />
                <text x={10} y={18}>{n.label}</text>
                <text x={10} y={34} className="sub">{n.kind}{n.services.length ? ` · svc ${n.services.join(', ')}` : ''}</text>
              </g>
            );
          })}
        </svg>
      )}
    </div>
  );
}
