/**
 * `membrane proxy`: the L7 proxy as its own process, started and supervised
 * by the agent. It takes the connections the datapath steers to its
 * transparent listener, judges every HTTP request by the agent's policy
 * snapshot (long-polled from the agent's socket; it listens only once the
 * first one has arrived, so until then the datapath refuses the
 * connections it would take) and sends its events back in batches.
 *
 *   node packages/proxy/dist/main.js --socket <agent.sock> --port <port> [--listen 127.0.0.1]
 *
 * The upstream connection leaves from the client's address when the
 * destination is a local endpoint (its policy and its logs see the real
 * client, and its replies come back through the datapath to this process);
 * towards anything else it leaves from the host, as masqueraded traffic
 * would. Either way it is marked as the proxy's, so it is never steered back
 * here. SIGTERM closes the listener and lets open connections finish (2 s).
 */
import { parseArgs } from 'node:util';
import { connectTransparent, listenTransparent } from '@membrane/datapath';
import { AgentClient } from './agent-client.js';
import { EventBatcher } from './event-batcher.js';
import { createHttpProxy, type L7HttpEvent } from './http-proxy.js';
import { PolicyView, type ProxySnapshot } from './policy-view.js';

const { values } = parseArgs({ options: { socket: { type: 'string' }, port: { type: 'string' }, listen: { type: 'string', default: '127.0.0.1' } } });
if (!values.socket || !values.port || !/^\d+$/.test(values.port) || Number(values.port) < 1 || Number(values.port) > 65535) {
  process.stderr.write('usage: membrane proxy --socket <agent.sock> --port <1-65535> [--listen 127.0.0.1]\n');
  process.exit(2);
}
const port = Number(values.port);
const agent = new AgentClient(values.socket);
const log = (msg: string) => process.stdout.write(`${new Date().toISOString()} ${msg}\n`);

let view: PolicyView | undefined;
let stopping = false;
let firstView: () => void = () => {};
const hasView = new Promise<void>((r) => (firstView = r));

const batcher = new EventBatcher<L7HttpEvent>((b) => agent.call('POST', '/v1/proxy/events', b));

const server = createHttpProxy({
  view: () => {
    if (!view) throw new Error('no policy snapshot from the agent yet');
    return view;
  },
  upstream: (client, destination) => connectTransparent({ source: view?.endpoint(destination.ip) ? client.ip : '0.0.0.0', host: destination.ip, port: destination.port }),
  onEvent: (e) => batcher.push(e),
});

async function follow(): Promise<void> {
  let revision = 0;
  let failures = 0;
  while (!stopping) {
    try {
      const s = await agent.call<ProxySnapshot>('GET', `/v1/proxy/snapshot?after=${revision}`, undefined, 40_000);
      if (s.revision !== revision) {
        view = new PolicyView(s);
        firstView();
        if (revision === 0 || s.revision < revision) log(`policy snapshot ${s.revision} in force (${s.policies.length} policies, ${s.endpoints.length} endpoints)`);
        revision = s.revision;
      }
      failures = 0;
    } catch (e) {
      // The agent restarts: keep judging by the snapshot in force, ask again.
      if (failures++ === 0) log(`agent: ${e instanceof Error ? e.message : String(e)}; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(200 * failures, 1000)));
    }
  }
}

void follow();
// Listening only once there is a policy to judge by: until then the datapath refuses the connections (no listener), rather than this proxy answering every request 403.
await hasView;
await listenTransparent(server, { address: values.listen!, port });
log(`L7 proxy (pid ${process.pid}) listening on ${values.listen}:${port}`);

const stop = () => {
  if (stopping) return;
  stopping = true;
  log('stopping');
  server.close();
  server.closeIdleConnections();
  void batcher.flush().finally(() => setTimeout(() => process.exit(0), 2000).unref());
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
