/**
 * `membrane demo starwars`: the walkthrough of Cilium's Star Wars guide in
 * one command — the agent up (if it is not), the Death Star (two replicas
 * behind the Service deathstar), a TIE fighter and an X-wing applied, all
 * Ready, and what to try next printed. `membrane demo deathstar-server` is
 * the Death Star's own process.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MembraneError, loadDocuments, type ApplyResponse, type StatusResponse } from '@membrane/api';
import { flag, parseArgs, usage } from '../args.js';
import { call } from '../client.js';
import { serveDeathstar } from '../demo/deathstar-server.js';
import type { Io } from '../io.js';
import { parseDuration, up } from './lifecycle-cmds.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const STARWARS_DIR = join(REPO, 'examples/starwars');
const MEMBRANE_BIN = join(REPO, 'bin/membrane');

export const demoHelp = `Usage: membrane demo starwars [--timeout 60s]
       membrane demo deathstar-server [--port 80]

starwars: starts the agent if it is not running, deploys Cilium's Star Wars
demo (examples/starwars/http-sw-app.yaml: a deathstar Deployment of 2 behind
the Service deathstar, the pods tiefighter and xwing), waits until every pod
is Ready and prints what to try next.`;

interface PodJson {
  metadata: { name: string };
  status?: { phase?: string; reason?: string; message?: string; conditions?: { type: string; status: string }[] };
}

/** `membrane` as the pods' PATH finds it, or this checkout's bin/membrane. */
function membraneCommand(): string {
  for (const d of (process.env['PATH'] ?? '').split(delimiter)) {
    try {
      accessSync(join(d, 'membrane'), constants.X_OK);
      return 'membrane';
    } catch {
      // not there
    }
  }
  return MEMBRANE_BIN;
}

export async function demo(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'timeout', value: true }, { name: 'port', value: true }]);
  const what = p.positionals[0];
  if (what === 'deathstar-server') return serveDeathstar(Number(flag(p, 'port') ?? 80), io.out);
  if (what !== 'starwars') throw usage(`unknown demo "${what ?? ''}" (try: membrane demo starwars)`);
  const t0 = performance.now();
  const timeoutMs = parseDuration(flag(p, 'timeout') ?? '60s');

  let running = true;
  try {
    await call<StatusResponse>('GET', '/v1/status', undefined, { timeoutMs: 3000 });
  } catch (e) {
    if (!(e instanceof MembraneError) || e.code !== 'MEMBRANE_E_AGENT_DOWN') throw e;
    running = false;
  }
  if (!running) {
    const code = await up([], io);
    if (code !== 0) return code;
  }

  const file = join(STARWARS_DIR, 'http-sw-app.yaml');
  const bin = membraneCommand();
  const documents = loadDocuments(readFileSync(file, 'utf8'), file).map((d) => {
    const value = JSON.parse(JSON.stringify(d.value)) as { kind: string; spec?: { template?: { spec?: { containers?: { command?: string[] }[] } } } };
    for (const c of value.spec?.template?.spec?.containers ?? []) if (c.command?.[0] === 'membrane') c.command[0] = bin;
    return { source: d.ref.source, label: d.ref.label, value };
  });
  const r = await call<ApplyResponse>('POST', '/v1/apply', { documents, defaultNamespace: 'default' });
  for (const x of r.results) io.out(`${x.kind.toLowerCase()}/${x.name} ${x.action}\n`);

  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const pods = await call<PodJson[]>('GET', '/v1/objects/Pod?namespace=default');
    const mine = pods.filter((x) => /^(deathstar-|tiefighter$|xwing$)/.test(x.metadata.name));
    const failed = mine.find((x) => x.status?.phase === 'Failed');
    if (failed) throw new MembraneError('MEMBRANE_E_INTERNAL', `pod ${failed.metadata.name} failed: ${failed.status?.reason ?? ''} ${failed.status?.message ?? ''}`.trim());
    const ready = mine.filter((x) => x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    const line = `${ready.length}/${Math.max(mine.length, 4)} pods ready`;
    if (line !== last) io.out(`  ${line}\n`);
    last = line;
    if (mine.length >= 4 && ready.length === mine.length) break;
    if (Date.now() > deadline) throw new MembraneError('MEMBRANE_E_INTERNAL', `the demo was not ready within ${timeoutMs / 1000}s (${line})`);
    await new Promise((res) => setTimeout(res, 100));
  }
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  const status = await call<StatusResponse>('GET', '/v1/status');
  const l7 = status.proxy.state === 'running' || status.proxy.state.startsWith('running ');
  io.out(`\nThe Star Wars demo is ready (${s}s). Try, as in Cilium's guide:

  membrane get pods
  membrane get svc
  membrane service list
  membrane exec xwing -- curl -s -XPOST deathstar.default.svc.cluster.local/v1/request-landing
  membrane exec tiefighter -- curl -s -XPOST deathstar.default.svc.cluster.local/v1/request-landing
  membrane endpoint list

Only Imperial ships may land (L3/L4):
  membrane apply -f ${join(STARWARS_DIR, 'rule1-l3l4.yaml')}
  membrane exec xwing -- curl -s -m 5 -XPOST deathstar.default.svc.cluster.local/v1/request-landing   # times out
  membrane exec tiefighter -- curl -s -XPUT deathstar.default.svc.cluster.local/v1/exhaust-port        # Panic: deathstar exploded

And only the landing request (L7${l7 ? ', judged by the L7 proxy' : `: the L7 proxy is ${status.proxy.state}, so HTTP rules hold at L3/L4 only`}):
  membrane apply -f ${join(STARWARS_DIR, 'rule1-l7.yaml')}
  membrane exec tiefighter -- curl -s -XPUT deathstar.default.svc.cluster.local/v1/exhaust-port        # Access denied

demo_ready_s=${s}
`);
  return 0;
}
