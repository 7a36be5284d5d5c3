/**
 * The console's shell: the views, the live feed, and the banners that say
 * when the agent is away (the page keeps what it has and reconnects) or the
 * link's token is stale (a new link is needed).
 */
import { lazy, Suspense, useEffect, useMemo, useState, useSyncExternalStore, type ReactElement } from 'react';
import type { flow as pb } from '@membrane/proto';
import { AgentDown, SessionError } from './api.js';
import { FlowFeed } from './feed.js';
import { FlowsView } from './FlowsView.js';
import { MapView } from './MapView.js';
import type { Draft, PolicyRef } from './PoliciesView.js';
import type { EdgeMark } from '../lib/preview-marks.js';
import { EndpointsView, IdentitiesView } from './TablesView.js';

// The editor (CodeMirror, the YAML parser, the preview) loads when first opened: the map and the table start sooner.
const PoliciesView = lazy(() => import('./PoliciesView.js').then((m) => ({ default: m.PoliciesView })));

const VIEWS = ['map', 'flows', 'endpoints', 'identities', 'policies'] as const;
type View = (typeof VIEWS)[number];

function viewOfPath(): View {
  const v = location.pathname.split('/')[1] as View;
  return VIEWS.includes(v) ? v : 'map';
}

export function App(): ReactElement {
  const feed = useMemo(() => new FlowFeed(), []);
  // The shell follows the feed's state only (views follow its flows themselves).
  useSyncExternalStore((l) => feed.subscribe(l), () => feed.state);
  const [view, setView] = useState<View>(viewOfPath());
  const [preset, setPreset] = useState<{ label: string; match: (f: pb.Flow) => boolean } | undefined>();
  const [policy, setPolicy] = useState<PolicyRef | undefined>();
  const [problem, setProblem] = useState<'stale' | 'down' | undefined>();
  const [marks, setMarks] = useState<Map<string, EdgeMark> | undefined>();
  const [draft, setDraft] = useState<Draft | undefined>();

  useEffect(() => {
    feed.start();
    const pop = () => setView(viewOfPath());
    addEventListener('popstate', pop);
    return () => {
      feed.stop();
      removeEventListener('popstate', pop);
    };
  }, [feed]);

  const go = (v: View) => {
    history.pushState(null, '', `/${v}`);
    setView(v);
  };
  const onError = (e: unknown) => setProblem(e instanceof SessionError ? 'stale' : e instanceof AgentDown ? 'down' : undefined);
  const state = feed.state === 'stale' || problem === 'stale' ? 'stale' : feed.state === 'agent-down' ? 'down' : undefined;

  return (
    <div className="app">
      <header>
        <strong>Membrane</strong>
        <nav>
          {VIEWS.map((v) => (
            <button key={v} className={v === view ? 'active' : ''} onClick={() => go(v)} data-testid={`nav-${v}`}>
              {v[0]!.toUpperCase() + v.slice(1)}
            </button>
          ))}
        </nav>
        <span className={`feed feed-${feed.state}`} data-testid="feed-state">{feed.state}</span>
      </header>
      {state === 'stale' && (
        <div className="banner stale" role="alert" data-testid="banner">
          This console link is not valid any more (its session token is stale or was replaced). Run <code>membrane ui</code> on the machine and open the new link.
        </div>
      )}
      {state === 'down' && (
        <div className="banner down" role="alert" data-testid="banner">
          The agent is not answering. What you see is what arrived before; the page reconnects by itself when the agent is back.
        </div>
      )}
      <main>
        {view === 'map' && <MapView feed={feed} {...(marks ? { marks } : {})} showFlows={(label, match) => { setPreset({ label, match }); go('flows'); }} />}
        {view === 'flows' && <FlowsView feed={feed} {...(preset ? { preset } : {})} clearPreset={() => setPreset(undefined)} openPolicy={(p) => { setPolicy({ ...p }); setDraft(undefined); go('policies'); }} />}
        {view === 'endpoints' && <EndpointsView onError={onError} />}
        {view === 'identities' && <IdentitiesView onError={onError} />}
        {view === 'policies' && (
          <Suspense fallback={<div className="empty">Loading the editor…</div>}>
            <PoliciesView feed={feed} {...(policy ? { open: policy } : {})} onError={onError} onMarks={setMarks} {...(draft ? { draft } : {})} onDraft={setDraft} />
          </Suspense>
        )}
      </main>
    </div>
  );
}
