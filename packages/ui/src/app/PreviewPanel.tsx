/**
 * Preview: the flows this page holds, replayed through the engine (in the
 * browser) with the policies in force and with the edited ones; every flow
 * whose verdict would change, and those it cannot judge and why.
 */
import { useEffect, useState, type ReactElement } from 'react';
import type { EndpointInfo } from '@membrane/api';
import { isPreviewErrors, previewPolicies, type PreviewReport } from '../lib/preview.js';
import { flowRow } from '../lib/flow-view.js';
import { previewMarks, type EdgeMark } from '../lib/preview-marks.js';
import type { Validated } from '../lib/policy-validate.js';
import { api } from './api.js';
import type { FlowFeed } from './feed.js';

interface Stored {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

const KINDS = ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'];

function strip(o: Stored): unknown {
  const { metadata, ...rest } = o as Stored & { status?: unknown };
  delete (rest as { status?: unknown }).status;
  return { ...rest, metadata: { name: metadata.name, ...(metadata.namespace ? { namespace: metadata.namespace } : {}), ...(metadata.labels ? { labels: metadata.labels } : {}) } };
}

export function PreviewPanel({ feed, edited, onError, onMarks }: { feed: FlowFeed; edited: Validated; editing?: { kind: string; namespace: string; name: string } | undefined; onError: (e: unknown) => void; onMarks?: (m: Map<string, EdgeMark> | undefined) => void }): ReactElement {
  const [report, setReport] = useState<PreviewReport | undefined>();
  const [errors, setErrors] = useState<string[]>([]);
  useEffect(() => {
    let live = true;
    void (async () => {
      const [endpoints, namespaces, ...policies] = await Promise.all([api.get<EndpointInfo[]>('/v1/endpoints'), api.get<Stored[]>('/v1/objects/Namespace'), ...KINDS.map((k) => api.get<Stored[]>(`/v1/objects/${k}`))]);
      const r = previewPolicies({
        state: { namespaces: namespaces.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels ?? {} })), endpoints },
        current: policies.flat().map(strip),
        edited: edited.documents.map((d) => d.value),
        flows: feed.flows,
      });
      if (!live) return;
      if (isPreviewErrors(r)) setErrors(r.errors.map((e) => `${e.set}: ${e.line}`));
      else {
        setReport(r);
        onMarks?.(previewMarks(r.changed));
      }
    })().catch(onError);
    return () => {
      live = false;
    };
  }, [edited]); // eslint-disable-line react-hooks/exhaustive-deps

  if (errors.length) return <div className="preview error" data-testid="preview-result">{errors.map((e, i) => <div key={i}>{e}</div>)}</div>;
  if (!report) return <div className="preview">Replaying {feed.flows.length} flows…</div>;
  return (
    <div className="preview" data-testid="preview-result">
      <div data-testid="preview-summary">
        {report.changed.length} flow(s) would change verdict (drawn on the map); {report.unchanged} unchanged; {report.unjudged.length} cannot be judged; {report.replies} replies (ride on their connection).
      </div>
      {report.changed.map((c) => {
        const r = flowRow(c.flow);
        return (
          <div key={c.uuid} className="change" data-testid="preview-change">
            {c.before} → {c.after}: {r.source} → {r.destination} {r.l7 || r.port} ({c.reasonAfter})
          </div>
        );
      })}
      {report.unjudged.length > 0 && (
        <details>
          <summary>Flows it cannot judge ({report.unjudged.length})</summary>
          {report.unjudged.slice(0, 200).map((u) => {
            const r = flowRow(u.flow);
            return (
              <div key={u.uuid} className="unjudged" data-testid="preview-unjudged">
                {r.source} → {r.destination} {r.port}: {u.reason}
              </div>
            );
          })}
        </details>
      )}
    </div>
  );
}
