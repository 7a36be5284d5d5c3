/**
 * `membrane agent`: the agent in the foreground. Progress lines go to
 * stdout (`membrane up` shows them); SIGTERM/SIGINT stop it cleanly, leaving
 * pods, programs and pinned maps in place (they keep enforcing); a shutdown
 * request with teardown (`membrane down`) removes everything.
 */
import { parseArgs } from 'node:util';
import { MembraneError } from '@membrane/api';
import { Agent } from './agent.js';
import { resolveConfig, type AgentConfig } from './config.js';

const FLAGS = {
  'state-dir': { type: 'string' },
  'pod-cidr': { type: 'string' },
  'service-cidr': { type: 'string' },
  'dns-upstream': { type: 'string' },
  'api-port': { type: 'string' },
  'pin-root': { type: 'string' },
  socket: { type: 'string' },
} as const;

/**
 * The agent's flags (`--flag value` or `--flag=value`; a repeated flag keeps
 * its last value). Throws MEMBRANE_E_USAGE naming the argument at fault.
 */
export function parseAgentFlags(argv: readonly string[]): Partial<AgentConfig> {
  const args = [...argv];
  let values: { [K in keyof typeof FLAGS]?: string };
  try {
    values = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const code: unknown = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw e;
    throw new MembraneError('MEMBRANE_E_USAGE', explain(args) ?? (e as Error).message, { cause: e });
  }
  const out: Partial<AgentConfig> = {};
  if (values['state-dir'] !== undefined) out.stateDir = values['state-dir'];
  if (values['pod-cidr'] !== undefined) out.podCIDR = values['pod-cidr'];
  if (values['service-cidr'] !== undefined) out.serviceCIDR = values['service-cidr'];
  if (values['dns-upstream'] !== undefined) out.dnsUpstreams = values['dns-upstream'].split(',').filter(Boolean);
  if (values['pin-root'] !== undefined) out.pinRoot = values['pin-root'];
  if (values.socket !== undefined) out.socketPath = values.socket;
  const port = values['api-port'];
  if (port !== undefined) {
    // 0 asks for a free port; Number() alone would take '', '1e3' and ' 80'.
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
      throw new MembraneError('MEMBRANE_E_USAGE', `flag --api-port: "${port}" is not a port number (0 to 65535)`);
    }
    out.apiPort = Number(port);
  }
  return out;
}

/** Our wording of the first problem strict parsing found, from the same arguments read leniently. */
function explain(args: string[]): string | undefined {
  const { tokens } = parseArgs({ args, options: FLAGS, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional') return `unexpected argument "${t.value}" (the agent takes only flags)`;
    if (t.kind !== 'option') continue;
    if (!Object.hasOwn(FLAGS, t.name)) return `unknown flag ${t.rawName.startsWith('--') ? t.rawName : args[t.index]}`;
    if (t.value === undefined) return `flag ${t.rawName} needs a value`;
    if (!t.inlineValue && t.value.startsWith('-')) return `flag ${t.rawName} needs a value (for one that starts with -, write ${t.rawName}=${t.value})`;
  }
  return undefined;
}

export async function runAgent(argv: readonly string[]): Promise<number> {
  if (process.geteuid?.() !== 0) {
    process.stderr.write('membrane agent: needs root (CAP_BPF/CAP_NET_ADMIN): run as root [MEMBRANE_E_NOT_ROOT]\n');
    return 1;
  }
  let flags: Partial<AgentConfig>;
  try {
    flags = parseAgentFlags(argv);
  } catch (e) {
    if (!(e instanceof MembraneError)) throw e;
    process.stderr.write(`membrane agent: ${e.toLine()}\n`);
    return 2;
  }
  const log = (m: string) => process.stdout.write(`${new Date().toISOString()} ${m}\n`);
  const agent = new Agent(resolveConfig(flags), log);
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
