/** Endpoints and identities, as `membrane endpoint list` and `identity list` show them. */
import { useEffect, useState, type ReactElement } from 'react';
import type { EndpointInfo, IdentityInfo } from '@membrane/api';
import { api } from './api.js';

function usePoll<T>(path: string, onError: (e: unknown) => void): T[] | undefined {
  const [data, setData] = useState<T[] | undefined>();
  useEffect(() => {
    let live = true;
    const load = () => api.get<T[]>(path).then((d) => live && setData(d), onError);
    void load();
    // Endpoints change with pods and policies; a cheap re-read when the page is looked at again.
    const again = () => document.visibilityState === 'visible' && void load();
    document.addEventListener('visibilitychange', again);
    return () => {
      live = false;
      document.removeEventListener('visibilitychange', again);
    };
  }, [path]); // eslint-disable-line react-hooks/exhaustive-deps
  return data;
}

export function EndpointsView({ onError }: { onError: (e: unknown) => void }): ReactElement {
  const eps = usePoll<EndpointInfo>('/v1/endpoints', onError);
  if (!eps) return <div className="empty">Loading…</div>;
  return (
    <table className="grid" data-testid="endpoints">
      <thead>
        <tr>
          <th>ENDPOINT</th>
          <th>POLICY (ingress) ENFORCEMENT</th>
          <th>POLICY (egress) ENFORCEMENT</th>
          <th>IDENTITY</th>
          <th>LABELS (source:key[=value])</th>
          <th>IPv4</th>
          <th>STATUS</th>
        </tr>
      </thead>
      <tbody>
        {eps.map((e) => (
          <tr key={e.id}>
            <td>{e.id} ({e.namespace}/{e.pod})</td>
            <td>{e.policyEnforcement.ingress ? 'Enabled' : 'Disabled'}</td>
            <td>{e.policyEnforcement.egress ? 'Enabled' : 'Disabled'}</td>
            <td>{e.identity}</td>
            <td className="labels">{e.labels.join('\n')}</td>
            <td>{e.ipv4}</td>
            <td>{e.state}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function IdentitiesView({ onError }: { onError: (e: unknown) => void }): ReactElement {
  const ids = usePoll<IdentityInfo>('/v1/identities', onError);
  if (!ids) return <div className="empty">Loading…</div>;
  return (
    <table className="grid" data-testid="identities">
      <thead>
        <tr>
          <th>ID</th>
          <th>LABELS</th>
          <th>ENDPOINTS</th>
        </tr>
      </thead>
      <tbody>
        {ids.map((i) => (
          <tr key={i.id}>
            <td>{i.id}</td>
            <td className="labels">{i.labels.join('\n')}</td>
            <td>{i.endpoints}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
