/**
 * The versions of a policy that were applied or deleted: each with a diff
 * against the editor's text, and a rollback (the old version applied, all
 * or nothing, as any apply).
 */
import { useEffect, useState, type ReactElement } from 'react';
import { stringify } from 'yaml';
import type { PolicyVersion } from '@membrane/api';
import { lineDiff } from '../lib/line-diff.js';
import { api } from './api.js';

export function versionYaml(v: PolicyVersion): string {
  return v.body ? stringify(v.body) : '';
}

export function HistoryPanel({ policy, text, revision, rollback, onError }: { policy: { kind: string; namespace: string; name: string }; text: string; revision: number; rollback: (yaml: string) => void; onError: (e: unknown) => void }): ReactElement {
  const [versions, setVersions] = useState<PolicyVersion[]>([]);
  const [open, setOpen] = useState<number | undefined>();
  useEffect(() => {
    const q = new URLSearchParams({ kind: policy.kind, namespace: policy.namespace, name: policy.name });
    api.get<PolicyVersion[]>(`/v1/policy-history?${q}`).then(setVersions, onError);
  }, [policy.kind, policy.namespace, policy.name, revision]); // eslint-disable-line react-hooks/exhaustive-deps
  const shown = versions.find((v) => v.id === open);
  return (
    <div className="history" data-testid="history">
      <h4>History</h4>
      {versions.length === 0 && <div className="empty">No version applied from here yet.</div>}
      {versions.map((v) => (
        <div key={v.id} className={`version${v.id === open ? ' selected' : ''}`}>
          <a href="#" onClick={(e) => { e.preventDefault(); setOpen(v.id === open ? undefined : v.id); }} data-testid="history-version">
            #{v.id} {v.action} {new Date(v.time).toLocaleString()}
          </a>
          {v.body !== null && (
            <button onClick={() => rollback(versionYaml(v))} data-testid="rollback">
              Roll back to this
            </button>
          )}
        </div>
      ))}
      {shown && (
        <pre className="diff" data-testid="history-diff">
          {lineDiff(versionYaml(shown), text).map((l, i) => (
            <div key={i} className={l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}>
              {l.op} {l.text}
            </div>
          ))}
        </pre>
      )}
    </div>
  );
}
