/** `membrane status`: the agent, the datapath and what they hold. */
import { readFileSync } from 'node:fs';
import type { StatusResponse } from '@membrane/api';
import { native } from '@membrane/datapath';

export const VERSION = '0.1.0';

export interface StatusInputs {
  agent: StatusResponse['agent'];
  api: StatusResponse['api'];
  podCIDR: string;
  pinRoot: string;
  lostEvents: number;
  endpoints: { total: number; ready: number };
  policies: { total: number; revision: number };
  identities: number;
  services: StatusResponse['services'];
  problems: readonly string[];
  proxy: StatusResponse['proxy'];
  dnsProxy: StatusResponse['dnsProxy'];
  observer: StatusResponse['observer'];
}

export function statusView(s: StatusInputs): StatusResponse {
  let libbpf = '?';
  try {
    libbpf = native().libbpfVersion();
  } catch {
    // The datapath reports a missing addon itself.
  }
  return {
    agent: s.agent,
    api: s.api,
    datapath: { pinRoot: s.pinRoot, podCIDR: s.podCIDR, programs: 'from-container, to-container, from-hairpin, from-outside', lostEvents: s.lostEvents },
    endpoints: s.endpoints,
    policies: s.policies,
    identities: { total: s.identities },
    services: s.services,
    observer: s.observer,
    proxy: s.proxy,
    dnsProxy: s.dnsProxy,
    problems: [...s.problems],
    versions: { membrane: VERSION, node: process.version, kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), libbpf },
  };
}
