/**
 * The policy editor: the policies in force; a YAML editor validated by the
 * engine as you type (a problem is marked at its line and the policy cannot
 * be applied); Preview, which replays the flows the page holds through the
 * engine with the edited policy and lists every flow whose verdict would
 * change (and those it cannot judge); Apply, live and all-or-nothing
 * through the agent (a refusal is shown at the field it names); Delete.
 */
import { useEffect, useMemo, useRef, useState, type ReactElement } from 'react';
import { stringify } from 'yaml';
import type { ApplyResponse, DeleteResponse } from '@membrane/api';
import { validatePolicies, placeAgentError, type Problem } from '../lib/policy-validate.js';
import { api, ApiRefused } from './api.js';
import { makeEditor, type Editor } from './editor.js';
import type { FlowFeed } from './feed.js';
import { PreviewPanel } from './PreviewPanel.js';
import { HistoryPanel } from './HistoryPanel.js';
import type { EdgeMark } from '../lib/preview-marks.js';

export interface PolicyRef {
  kind: string;
  namespace: string;
  name: string;
}

interface Stored {
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

const KINDS = ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'];
const NEW = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: new-policy
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: example
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
`;

const key = (p: PolicyRef) => `${p.kind}/${p.namespace}/${p.name}`;

/** A stored object as one would write it (what the agent adds is left out). */
function asYaml(o: Stored): string {
  const { creationTimestamp: _c, resourceVersion: _r, uid: _u, generation: _g, managedFields: _m, ...metadata } = o.metadata;
  const { status: _s, ...rest } = o;
  return stringify({ ...rest, metadata });
}

/** What the editor holds, kept by the shell while another view is looked at. */
export interface Draft {
  current?: PolicyRef;
  text: string;
  original: string;
}

export interface PoliciesViewProps {
  feed: FlowFeed;
  open?: PolicyRef;
  onError: (e: unknown) => void;
  onMarks?: (m: Map<string, EdgeMark> | undefined) => void;
  draft?: Draft;
  onDraft?: (d: Draft | undefined) => void;
}

export function PoliciesView({ feed, open, onError, onMarks, draft, onDraft }: PoliciesViewProps): ReactElement {
  const [list, setList] = useState<Stored[]>([]);
  const [current, setCurrent] = useState<PolicyRef | undefined>(open ?? draft?.current);
  const [text, setText] = useState(draft?.text ?? '');
  const [original, setOriginal] = useState(draft?.original ?? '');
  // Coming back to the editor: the draft stays (unless a flow's link opens another policy).
  const restoring = useRef(draft !== undefined && (!open || (draft.current !== undefined && key(open) === key(draft.current))));
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string; details?: string[] } | undefined>();
  const [preview, setPreview] = useState(false);
  const [applied, setApplied] = useState(0);
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<Editor>();
  const validated = useMemo(() => validatePolicies(text), [text]);

  const load = async (): Promise<Stored[]> => {
    const all = (await Promise.all(KINDS.map((k) => api.get<Stored[]>(`/v1/objects/${k}`)))).flat();
    setList(all);
    return all;
  };

  useEffect(() => {
    void load().catch(onError);
  }, []); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (!host.current || editor.current) return;
    editor.current = makeEditor(host.current, draft?.text ?? '', (t) => validatePolicies(t).problems, (t) => {
      setText(t);
      setPreview(false);
      onMarks?.(undefined);
    });
  }, []);

  // Open a policy (from the list, or linked from a flow).
  useEffect(() => {
    if (!current) return;
    const o = list.find((x) => key({ kind: x.kind, namespace: x.metadata.namespace ?? '', name: x.metadata.name }) === key(current));
    if (!o) return;
    if (restoring.current) {
      restoring.current = false;
      return;
    }
    const y = asYaml(o);
    editor.current?.setText(y);
    setText(y);
    setOriginal(y);
    setMessage(undefined);
    setPreview(false);
  }, [current && key(current), list.length]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (open) setCurrent(open);
  }, [open && key(open)]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    onDraft?.(text ? { ...(current ? { current } : {}), text, original } : undefined);
  }, [text, original, current && key(current)]); // eslint-disable-line react-hooks/exhaustive-deps

  const apply = async (docs = validated.documents) => {
    setMessage(undefined);
    try {
      const r = await api.post<ApplyResponse>('/v1/apply', { documents: docs.map((d) => ({ source: 'console', label: d.label, value: d.value })) });
      setMessage({ kind: 'ok', text: r.results.map((x) => `${x.kind.toLowerCase()}/${x.name} ${x.action}`).join(', ') });
      setOriginal(text);
      setApplied((n) => n + 1);
      onMarks?.(undefined);
      const first = r.results.find((x) => KINDS.includes(x.kind));
      if (first) setCurrent({ kind: first.kind, namespace: first.namespace ?? '', name: first.name });
      await load();
    } catch (e) {
      if (e instanceof ApiRefused) {
        const lines: Problem[] = [e.error.message, ...(e.error.details ?? [])].map((m) => ({ line: placeAgentError(text, m), message: `agent: ${m}` }));
        editor.current?.setExtra(lines);
        setMessage({ kind: 'error', text: e.error.message, ...(e.error.details ? { details: e.error.details } : {}) });
      } else onError(e);
    }
  };

  const remove = async () => {
    if (!current) return;
    try {
      const r = await api.post<DeleteResponse>('/v1/delete', { refs: [{ kind: current.kind, ...(current.namespace ? { namespace: current.namespace } : {}), name: current.name }] });
      setMessage({ kind: 'ok', text: r.results.map((x) => `${x.kind.toLowerCase()}/${x.name} ${x.action}`).join(', ') });
      setCurrent(undefined);
      editor.current?.setText('');
      await load();
    } catch (e) {
      if (e instanceof ApiRefused) setMessage({ kind: 'error', text: e.error.message });
      else onError(e);
    }
  };

  const blocked = validated.problems.length > 0 || validated.documents.length === 0;
  return (
    <div className="policies">
      <nav className="policy-list" data-testid="policy-list">
        <button onClick={() => { setCurrent(undefined); editor.current?.setText(NEW); setText(NEW); setOriginal(''); }}>New policy</button>
        {list.map((o) => {
          const ref = { kind: o.kind, namespace: o.metadata.namespace ?? '', name: o.metadata.name };
          return (
            <a key={key(ref)} href="#" className={current && key(current) === key(ref) ? 'selected' : ''} onClick={(e) => { e.preventDefault(); setCurrent(ref); }}>
              <span className="kind">{o.kind}</span> {ref.namespace ? `${ref.namespace}/` : ''}{ref.name}
            </a>
          );
        })}
      </nav>
      <div className="policy-edit">
        <div className="toolbar">
          <button onClick={() => setPreview(true)} disabled={blocked} data-testid="preview">Preview</button>
          <button onClick={() => void apply()} disabled={blocked} data-testid="apply">Apply</button>
          <button onClick={() => void remove()} disabled={!current}>Delete</button>
          <span className={blocked ? 'status error' : 'status'} data-testid="validation">
            {validated.problems.length ? `${validated.problems.length} problem(s): ${validated.problems[0]!.message} (line ${validated.problems[0]!.line})` : validated.documents.length ? 'valid' : 'empty'}
            {text !== original && !blocked ? ' · edited' : ''}
          </span>
        </div>
        <div className="editor" ref={host} data-testid="editor" />
        {message && (
          <div className={`message ${message.kind}`} role={message.kind === 'error' ? 'alert' : 'status'} data-testid="apply-message">
            {message.text}
            {message.details?.map((d, i) => <div key={i}>{d}</div>)}
          </div>
        )}
        {preview && <PreviewPanel feed={feed} edited={validated} editing={current} onError={onError} {...(onMarks ? { onMarks } : {})} />}
        {current && (
          <HistoryPanel
            policy={current}
            text={text}
            revision={applied}
            onError={onError}
            rollback={(y) => {
              editor.current?.setText(y);
              setText(y);
              const v = validatePolicies(y);
              if (v.problems.length === 0) void apply(v.documents);
            }}
          />
        )}
      </div>
    </div>
  );
}
