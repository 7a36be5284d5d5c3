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
import { startTransition, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactElement } from 'react';
import type { flow as pb } from '@membrane/proto';
import type { EdgeMark } from '../lib/preview-marks.js';
import { flowsMatchingSelection, ServiceMap, type MapEdge, type MapSelection, type MapSnapshot } from '../lib/service-map.js';
import type { FlowFeed } from './feed.js';

// elkjs is CommonJS: its constructor is the module or its default, by bundler.
type ElkCtor = new (args?: ELKConstructorArguments) => ELK;
const ElkCtor = (elkBundled as unknown as { default?: ElkCtor }).default ?? (elkBundled as unknown as ElkCtor);
const elk = new ElkCtor();
// elkjs's first layout pays for its start-up: paid here, while the page waits for its first flows.
void elk.layout({ id: 'warm-up', children: [{ id: 'a', width: 10, height: 10 }, { id: 'b', width: 10, height: 10 }], edges: [{ id: 'e', sources: ['a'], targets: ['b'] }] });
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

/** One namespace's nodes laid out by elkjs (layered, in model order), with the edges inside it. */
interface GroupLayout {
  w: number;
  h: number;
  nodes: Map<string, { x: number; y: number }>;
}

const groupCache = new Map<string, GroupLayout>();

async function layoutGroup(nodeIds: readonly string[], edges: readonly MapEdge[]): Promise<GroupLayout> {
  const key = `${nodeIds.join('|')}#${edges.map((e) => e.id).join('|')}`;
  const hit = groupCache.get(key);
  if (hit) return hit;
  const graph: ElkNode = {
    id: 'group',
    layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'RIGHT', 'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES', 'elk.spacing.nodeNode': '26', 'elk.layered.spacing.nodeNodeBetweenLayers': '150', 'elk.padding': '[top=34,left=14,bottom=14,right=14]' },
    children: nodeIds.map((id) => ({ id, width: NODE_W, height: NODE_H })),
    edges: edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target] })),
  };
  const out = await elk.layout(graph);
  const g: GroupLayout = { w: out.width ?? NODE_W, h: out.height ?? NODE_H, nodes: new Map((out.children ?? []).map((n) => [n.id, { x: n.x ?? 0, y: n.y ?? 0 }])) };
  if (groupCache.size > 500) groupCache.clear();
  groupCache.set(key, g);
  return g;
}

/**
 * Each namespace is laid out on its own (a namespace whose nodes and edges
 * did not change keeps its layout), and the namespaces are placed in rows
 * in a stable order; edges between namespaces are drawn between their nodes.
 */
async function layout(s: MapSnapshot, key: string, maxWidth: number): Promise<Layout> {
  const groupOf = new Map<string, string>();
  for (const g of s.groups) for (const id of g.nodeIds) groupOf.set(id, g.namespace);
  const nodes = new Map<string, { x: number; y: number }>();
  const groups: Layout['groups'] = [];
  const edges = new Map<string, { points: { x: number; y: number }[] }>();
  let x = 0;
  let y = 0;
  let rowH = 0;
  let width = 0;
  const GAP = 40;
  const inner = new Map<string, MapEdge[]>();
  for (const e of s.edges) {
    const ns = groupOf.get(e.source);
    if (ns !== undefined && ns === groupOf.get(e.target)) inner.set(ns, [...(inner.get(ns) ?? []), e]);
  }
  const laid = await Promise.all(s.groups.map((g) => layoutGroup(g.nodeIds, inner.get(g.namespace) ?? [])));
  for (const [i, g] of s.groups.entries()) {
    const l = laid[i]!;
    if (x > 0 && x + l.w > maxWidth) {
      x = 0;
      y += rowH + GAP;
      rowH = 0;
    }
    groups.push({ namespace: g.namespace || '(not namespaced)', x, y, w: l.w, h: l.h });
    for (const [id, p] of l.nodes) nodes.set(id, { x: x + p.x, y: y + p.y });
    x += l.w + GAP;
    rowH = Math.max(rowH, l.h);
    width = Math.max(width, x);
  }
  for (const e of s.edges) {
    const a = nodes.get(e.source);
    const b = nodes.get(e.target);
    if (a && b) edges.set(e.id, { points: [{ x: a.x + NODE_W, y: a.y + NODE_H / 2 }, { x: b.x, y: b.y + NODE_H / 2 }] });
  }
  return { key, nodes, groups, edges, width: Math.max(width, 400), height: y + rowH + 10 };
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

/** A value that follows `v` at most every `ms` (the latest one wins). */
function useThrottled<T>(v: T, ms: number): T {
  const [shown, setShown] = useState(v);
  const last = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout>>();
  useEffect(() => {
    const wait = last.current + ms - Date.now();
    // A transition: React renders the redraw in slices between frames.
    if (wait <= 0) {
      last.current = Date.now();
      startTransition(() => setShown(v));
      return;
    }
    clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      last.current = Date.now();
      startTransition(() => setShown(v));
    }, wait);
  }, [v, ms]);
  useEffect(() => () => clearTimeout(timer.current), []);
  return shown;
}

export interface MapViewProps {
  feed: FlowFeed;
  /** The last preview of the editor, per edge (drawn until it is applied or left). */
  marks?: ReadonlyMap<string, EdgeMark>;
  showFlows: (label: string, match: (f: pb.Flow) => boolean) => void;
}

export function MapView({ feed, showFlows, marks }: MapViewProps): ReactElement {
  // Counts on the map change with every flow; redrawn at most twice a second (the table is the live view).
  const version = useThrottled(useSyncExternalStore((l) => feed.subscribe(l), () => feed.version), 500);
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
  const snap = useMemo(() => (chosen.length ? st.m.snapshot({ namespaces: chosen }) : all), [all, chosen.join(',')]); // eslint-disable-line react-hooks/exhaustive-deps
  const key = `${snap.nodes.map((n) => n.id).join('|')}#${snap.edges.map((e) => e.id).join('|')}`;
  // One layout at a time: its result is shown when it is done (nodes it did not place yet wait for
  // the next one), and a change meanwhile starts one more with the newest graph.
  const running = useRef(false);
  const mounted = useRef(true);
  const wanted = useRef<{ snap: MapSnapshot; key: string }>();
  wanted.current = { snap, key };
  useEffect(() => () => void (mounted.current = false), []);
  useEffect(() => {
    if (lay?.key === key || running.current) return;
    const run = (s: MapSnapshot, k: string) => {
      running.current = true;
      void layout(s, k, Math.max(900, window.innerWidth - 60)).then((l) => {
        running.current = false;
        if (!mounted.current) return;
        if (l.nodes.size && !performance.getEntriesByName('membrane:map-drawn').length) performance.mark('membrane:map-drawn');
        setLay(l);
        const w = wanted.current!;
        if (w.key !== k) run(w.snap, w.key);
      });
    };
    run(snap, key);
  }, [key]); // eslint-disable-line react-hooks/exhaustive-deps
  const namespaces = all.groups.map((g) => g.namespace).filter(Boolean);
  const pick = (sel: MapSelection, label: string) => showFlows(label, (f) => flowsMatchingSelection(sel, f));
  // A busy map labels the edges that need a look (drops, HTTP errors); every edge tells its figures on hover.
  const labelAll = snap.edges.length <= 80;
  // The drawing is made again only when the map or its layout changed (not on every flow).
  const drawing = useMemo(
    () =>
      lay && (
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
              <g key={e.id} className={`edge${e.hasDrops ? ' dropped' : ''}${e.forwarded ? ' forwarded' : ''}${marks?.get(e.id) ? ' previewed' : ''}`} data-preview={marks?.get(e.id) ? `${marks.get(e.id)!.toAllowed} to allowed, ${marks.get(e.id)!.toDenied} to denied` : undefined} data-testid="map-edge" data-source={e.source} data-target={e.target} data-dropped={e.dropped} data-forwarded={e.forwarded} onClick={() => pick({ kind: 'edge', id: e.id }, `flows of ${e.source} → ${e.target} ${e.port}/${e.protocol}`)}>
                <title>{edgeText(e)}</title>
                <path d={`M ${a.x} ${a.y} C ${mx} ${a.y}, ${mx} ${b.y}, ${b.x} ${b.y}`} markerEnd="url(#arrow)" />
                {(labelAll || e.hasDrops || (e.http?.errorShare ?? 0) > 0) && (
                  <text x={mx} y={(a.y + b.y) / 2 - 6} textAnchor="middle">{edgeText(e)}</text>
                )}
                {marks?.get(e.id) && (
                  <text className="preview-mark" x={mx} y={(a.y + b.y) / 2 + 12} textAnchor="middle">
                    preview: {marks.get(e.id)!.toAllowed ? `${marks.get(e.id)!.toAllowed} → allowed ` : ''}{marks.get(e.id)!.toDenied ? `${marks.get(e.id)!.toDenied} → denied` : ''}
                  </text>
                )}
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
      ),
    [lay, snap, marks], // eslint-disable-line react-hooks/exhaustive-deps
  );

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
      {drawing}
    </div>
  );
}
