/**
 * The live flow table: Hubble UI's columns, the observer's filters, a
 * detail panel with every field, the HTTP request as captured and the
 * policy and rule behind the verdict (linked to the editor), and exports.
 * Rows are virtualised (only those in view are in the DOM), so 10,000
 * flows scroll smoothly. Every value is rendered as text.
 */
import { useMemo, useRef, useState, useSyncExternalStore, type ReactElement } from 'react';
import type { flow as pb } from '@membrane/proto';
import { formPredicate, type FlowForm } from '../lib/flow-form.js';
import { exportJson, exportJsonpb, flowJson, flowPolicies, flowRow } from '../lib/flow-view.js';
import type { FlowFeed } from './feed.js';

const ROW = 26;

function useFeed(feed: FlowFeed): number {
  return useSyncExternalStore((l) => feed.subscribe(l), () => feed.version);
}

function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export interface FlowsViewProps {
  feed: FlowFeed;
  /** A selection made elsewhere (the map): only flows it matches. */
  preset?: { label: string; match: (f: pb.Flow) => boolean };
  clearPreset: () => void;
  openPolicy: (p: { kind: string; namespace: string; name: string }) => void;
}

export function FlowsView({ feed, preset, clearPreset, openPolicy }: FlowsViewProps): ReactElement {
  const version = useFeed(feed);
  const [form, setForm] = useState<FlowForm>({});
  const [selected, setSelected] = useState<pb.Flow | undefined>();
  const [scroll, setScroll] = useState(0);
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLDivElement>(null);
  let filterError = '';
  let predicate: (f: pb.Flow) => boolean = () => true;
  try {
    predicate = formPredicate(form);
  } catch (e) {
    filterError = e instanceof Error ? e.message : String(e);
  }
  const rows = useMemo(() => feed.flows.filter((f) => predicate(f) && (!preset || preset.match(f))).reverse(), [version, JSON.stringify(form), preset]); // eslint-disable-line react-hooks/exhaustive-deps
  const height = box.current?.clientHeight ?? 600;
  const first = follow ? 0 : Math.floor(scroll / ROW);
  const visible = rows.slice(first, first + Math.ceil(height / ROW) + 2);
  const set = (k: keyof FlowForm) => (e: { target: { value: string } }) => setForm({ ...form, [k]: k === 'namespaces' ? e.target.value.split(',').map((s) => s.trim()).filter(Boolean) : e.target.value });

  return (
    <div className="flows">
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <input placeholder="namespaces (a,b)" aria-label="namespace" onChange={set('namespaces')} />
        <input placeholder="[ns/]pod" aria-label="pod" onChange={set('pod')} />
        <input placeholder="label (app=x)" aria-label="label" onChange={set('label')} />
        <select aria-label="verdict" onChange={set('verdict')} defaultValue="">
          <option value="">any verdict</option>
          {['FORWARDED', 'DROPPED', 'REDIRECTED', 'AUDIT', 'ERROR'].map((v) => (
            <option key={v}>{v}</option>
          ))}
        </select>
        <input placeholder="port" aria-label="port" size={6} onChange={set('port')} />
        <input placeholder="HTTP method" aria-label="http method" size={8} onChange={set('httpMethod')} />
        <input placeholder="HTTP path (RE2)" aria-label="http path" onChange={set('httpPath')} />
        <input placeholder="status (403, 5+)" aria-label="http status" size={8} onChange={set('httpStatus')} />
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> newest first, live
        </label>
        <button type="button" onClick={() => download('flows.json', exportJson(rows), 'application/json')}>Export JSON</button>
        <button type="button" onClick={() => download('flows.jsonl', exportJsonpb([...rows].reverse()), 'application/x-ndjson')}>Export jsonpb</button>
        <span className="count">
          {rows.length} of {feed.flows.length} flows{feed.lost ? `, ${feed.lost} lost` : ''}
        </span>
      </form>
      {filterError && <div className="error" role="alert">{filterError}</div>}
      {preset && (
        <div className="preset">
          {preset.label} <button onClick={clearPreset}>show all</button>
        </div>
      )}
      <div className="table-head row">
        <span>Source</span>
        <span>Destination</span>
        <span>Port</span>
        <span>L7</span>
        <span>Verdict</span>
        <span>Time</span>
      </div>
      <div className="table-body" ref={box} onScroll={(e) => { setScroll(e.currentTarget.scrollTop); if (e.currentTarget.scrollTop > 0) setFollow(false); }} data-testid="flow-table">
        <div style={{ height: rows.length * ROW, position: 'relative' }}>
          {visible.map((f, i) => {
            const r = flowRow(f);
            return (
              <div key={f.uuid || first + i} className={`row verdict-${r.verdict.toLowerCase()}${selected === f ? ' selected' : ''}`} style={{ position: 'absolute', top: (first + i) * ROW, height: ROW }} onClick={() => setSelected(f)} data-testid="flow-row">
                <span>{r.source}</span>
                <span>{r.destination}</span>
                <span>{r.port}</span>
                <span>{r.l7}</span>
                <span className="verdict">{r.verdict}</span>
                <span>{r.time}</span>
              </div>
            );
          })}
        </div>
      </div>
      {selected && <FlowDetail flow={selected} close={() => setSelected(undefined)} openPolicy={openPolicy} />}
    </div>
  );
}

function FlowDetail({ flow, close, openPolicy }: { flow: pb.Flow; close: () => void; openPolicy: FlowsViewProps['openPolicy'] }): ReactElement {
  const p = flowPolicies(flow);
  const http = flow.l7?.record.case === 'http' ? flow.l7.record.value : undefined;
  return (
    <aside className="detail" data-testid="flow-detail">
      <button className="close" onClick={close} aria-label="close">×</button>
      <h3>{flowRow(flow).verdict} {flow.l7 ? 'L7' : 'L3/L4'} flow</h3>
      {http && (
        <section>
          <h4>HTTP</h4>
          <div data-testid="http-summary">{http.method} {http.url} → {http.code}</div>
          <table className="headers">
            <tbody>
              {http.headers.map((h, i) => (
                <tr key={i}>
                  <td>{h.key}</td>
                  <td>{h.value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <section>
        <h4>Policy</h4>
        {p.policies.length === 0 && <div>no policy named (allowed without enforcement, or a drop of another reason)</div>}
        {p.policies.map((x, i) => (
          <div key={i}>
            {x.role}:{' '}
            <a href="#" onClick={(e) => { e.preventDefault(); openPolicy(x); }} data-testid="policy-link">
              {x.kind} {x.namespace ? `${x.namespace}/` : ''}{x.name}
            </a>
          </div>
        ))}
        {p.rules.map((r, i) => (
          <div key={i} className="rule" data-testid="rule">{r}</div>
        ))}
        {p.reason && <div className="reason" data-testid="reason">{p.reason}</div>}
      </section>
      <section>
        <h4>Every field</h4>
        <pre>{JSON.stringify(flowJson(flow), null, 2)}</pre>
      </section>
    </aside>
  );
}
