/** `membrane fqdn cache list|clean`: the toFQDNs cache, as `cilium fqdn cache list|clean`. */
import type { FqdnCacheInfo } from '@membrane/api';
import { outputFormat, parseArgs } from '../args.js';
import { call } from '../client.js';
import { renderTable } from '../printers/table.js';
import type { Io } from '../io.js';

export const fqdnListHelp = `Usage: membrane fqdn cache list [-o json]

The names the DNS proxy saw resolved in allowed answers, the addresses they
resolved to (what toFQDNs selectors select) and when each expires (the
answer's TTL, at least MEMBRANE_TOFQDNS_MIN_TTL).`;

export async function fqdnList(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', value: true }]);
  const fmt = outputFormat(p, ['table', 'json'] as const, 'table');
  const list = await call<FqdnCacheInfo[]>('GET', '/v1/fqdn/cache');
  if (fmt === 'json') {
    io.out(JSON.stringify(list, null, 2) + '\n');
    return 0;
  }
  const byName = new Map<string, FqdnCacheInfo[]>();
  for (const e of list) byName.set(e.name, [...(byName.get(e.name) ?? []), e]);
  const rows = [...byName].map(([name, es]) => {
    const last = es.map((e) => e.expiresAt).sort().at(-1)!;
    const ttl = Math.max(0, Math.round((Date.parse(last) - Date.now()) / 1000));
    return [name, String(ttl), last, es.map((e) => e.ip).join(',')];
  });
  io.out(renderTable(['FQDN', 'TTL', 'ExpirationTime', 'IPs'], rows));
  return 0;
}

export const fqdnCleanHelp = `Usage: membrane fqdn cache clean

Forgets every name of the toFQDNs cache: the addresses leave the toFQDNs
selections (established connections carry on) until looked up again.`;

export async function fqdnClean(argv: readonly string[], io: Io): Promise<number> {
  parseArgs(argv, []);
  await call('DELETE', '/v1/fqdn/cache');
  io.out('toFQDNs cache cleaned\n');
  return 0;
}
