/**
 * Scenario endpoints get IPs anywhere in 10.0.0.0/8 (the simulator sends
 * nothing); a live run needs them in the pod CIDR (design.md section 8).
 * Addresses already in the tests' pod CIDR (POD_CIDR, 10.207.0.0/16) are
 * kept, 10.0.A.B becomes 10.207.A.B, anything else (another 10.x range, an
 * endpoint without an IP, a clash) gets a free address from 10.207.240.0
 * upwards. The rewritten scenario is what
 * both the simulator and the live run use, so they judge the same world.
 */
import { formatIP, hostPrefix, parsePrefix, prefixContains, type Prefix, type Scenario } from '@membrane/policy';
import { POD_CIDR } from './safety.js';
import { ROUTER_IP } from './pods.js';

export interface MappedScenario {
  scenario: Scenario;
  /** endpoint `namespace/name` → its address in the pod CIDR */
  ips: Map<string, string>;
  /** endpoint `namespace/name` → the address the file gave it (if any) */
  original: Map<string, string | undefined>;
}

function toIP(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function toNumber(ip: string): number {
  const b = hostPrefix(ip)!.bytes;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function mapEndpointIPs(s: Scenario, reserved: readonly string[] = [ROUTER_IP]): MappedScenario {
  const cidr = parsePrefix(POD_CIDR) as Prefix;
  const net = `${cidr.bytes[0]}.${cidr.bytes[1]}`;
  const taken = new Set<string>([...reserved, formatIP(4, cidr.bytes), ...s.outside.map((o) => o.ip).filter((x): x is string => !!x)]);
  const ips = new Map<string, string>();
  const original = new Map<string, string | undefined>();

  const direct = (ip: string | undefined): string | undefined => {
    if (!ip || !/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return undefined;
    const host = hostPrefix(ip);
    if (host && prefixContains(cidr, host)) return ip;
    const m = /^10\.0\.(\d+)\.(\d+)$/.exec(ip);
    return m ? `${net}.${m[1]}.${m[2]}` : undefined;
  };
  // First the addresses that map directly, so an allocated one never takes theirs.
  for (const e of s.endpoints) {
    const key = `${e.namespace}/${e.name}`;
    original.set(key, e.ip);
    const ip = direct(e.ip);
    if (ip && !taken.has(ip)) {
      taken.add(ip);
      ips.set(key, ip);
    }
  }
  let next = toNumber(`${net}.240.1`);
  const last = toNumber(`${net}.255.254`);
  for (const e of s.endpoints) {
    const key = `${e.namespace}/${e.name}`;
    if (ips.has(key)) continue;
    for (; next <= last; next++) {
      const low = next & 255;
      if (low === 0 || low === 255) continue;
      if (!taken.has(toIP(next))) break;
    }
    if (next > last) throw new Error(`${s.source}: no free address left in ${POD_CIDR} for ${key}`);
    const ip = toIP(next++);
    taken.add(ip);
    ips.set(key, ip);
  }
  const scenario: Scenario = { ...s, endpoints: s.endpoints.map((e) => ({ ...e, ip: ips.get(`${e.namespace}/${e.name}`)! })) };
  return { scenario, ips, original };
}
