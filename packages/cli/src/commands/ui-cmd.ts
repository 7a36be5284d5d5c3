/** `membrane ui`: the web console's link (the agent serves the console). */
import type { ConsoleInfo } from '@membrane/api';
import { boolFlag, flag, outputFormat, parseArgs, usage } from '../args.js';
import { call } from '../client.js';
import type { Io } from '../io.js';

export const uiHelp = `Usage: membrane ui [--port PORT] [--new-token] [-o json]

Prints the link to the web console the agent serves on 127.0.0.1 (the
service map, live flows with their L7 detail and the rule behind each,
endpoints, identities, and the policy editor with its preview). The link
carries the session token: opening it sets a cookie (SameSite=Strict) and
every read and change needs it. Keep the link to yourself.

  --port PORT     serve the console on this port from now on (default 12000, MEMBRANE_UI_PORT)
  --new-token     replace the session token: pages opened with the old link are told it is stale
  -o json         {url, address, port}`;

export async function ui(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'port', value: true }, { name: 'new-token' }, { name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['text', 'json'] as const, 'text');
  const portText = flag(p, 'port');
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw usage(`--port ${portText}: a TCP port (1-65535)`);
  const newToken = boolFlag(p, 'new-token');
  const info = port !== undefined || newToken ? await call<ConsoleInfo>('POST', '/v1/console', { ...(port !== undefined ? { port } : {}), ...(newToken ? { newToken } : {}) }) : await call<ConsoleInfo>('GET', '/v1/console');
  if (fmt === 'json') io.out(JSON.stringify(info, null, 2) + '\n');
  else io.out(`Membrane console: ${info.url}\n`);
  return 0;
}
