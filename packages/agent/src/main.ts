/**
 * `membrane agent`: the agent in the foreground. Progress lines go to
 * stdout (`membrane up` shows them); SIGTERM/SIGINT stop it cleanly, leaving
 * pods, programs and pinned maps in place (they keep enforcing); a shutdown
 * request with teardown (`membrane down`) removes everything.
 */
import { Agent } from './agent.js';
import { resolveConfig, type AgentConfig } from './config.js';

function flags(argv: readonly string[]): Partial<AgentConfig> {
  const out: Partial<AgentConfig> = {};
  for (let i = 0; i < argv.length; i++) {
    const [k, v0] = argv[i]!.split('=', 2);
    const v = v0 ?? argv[++i];
    if (v === undefined) throw new Error(`flag ${k} needs a value`);
    switch (k) {
      case '--state-dir': out.stateDir = v; break;
      case '--pod-cidr': out.podCIDR = v; break;
      case '--api-port': out.apiPort = Number(v); break;
      case '--pin-root': out.pinRoot = v; break;
      case '--socket': out.socketPath = v; break;
      default: throw new Error(`unknown flag ${k}`);
    }
  }
  return out;
}

export async function runAgent(argv: readonly string[]): Promise<number> {
  if (process.geteuid?.() !== 0) {
    process.stderr.write('membrane agent: needs root (CAP_BPF/CAP_NET_ADMIN): run as root [MEMBRANE_E_NOT_ROOT]\n');
    return 1;
  }
  const log = (m: string) => process.stdout.write(`${new Date().toISOString()} ${m}\n`);
  const agent = new Agent(resolveConfig(flags(argv)), log);
  try {
    await agent.start();
  } catch (e) {
    process.stderr.write(`membrane agent: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  log(`ready (pid ${process.pid}, state ${agent.config.stateDir})`);
  const signalled = new Promise<boolean>((resolve) => {
    process.once('SIGTERM', () => resolve(false));
    process.once('SIGINT', () => resolve(false));
  });
  const teardown = await Promise.race([agent.waitForShutdown(), signalled]);
  log(teardown ? 'stopping and removing everything (membrane down)' : 'stopping (pods and the datapath keep running)');
  try {
    await agent.stop(teardown);
  } catch (e) {
    process.stderr.write(`membrane agent: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  log('stopped');
  return 0;
}

if (import.meta.url.endsWith('/agent/dist/main.js') && process.argv[1]?.endsWith('/agent/dist/main.js')) {
  runAgent(process.argv.slice(2)).then((c) => process.exit(c), (e) => {
    process.stderr.write(`membrane agent: ${String(e)}\n`);
    process.exit(1);
  });
}
