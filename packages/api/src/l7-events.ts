/**
 * A datapath event as the agent reads it from the kernel ring buffer (the
 * C struct mbr_event of packages/datapath/bpf/lib/abi.h, decoded by the
 * datapath's eventCodec): what the observer makes a flow of.
 */
export type DatapathEventRecord = {
  ts_ns: bigint;
  /** 1 a new connection forwarded (after its policy verdict), 2 a drop. */
  type: number;
  /** 0 ingress, 1 egress (of the endpoint ep_id). */
  direction: number;
  proto: number;
  tcp_flags: number;
  verdict: number;
  is_reply: number;
  l7: number;
  pad: number;
  drop_reason: number;
  proxy_port: number;
  ep_id: number;
  /** The identities of the packet's source and destination. */
  src_identity: number;
  dst_identity: number;
  /** IPv4 addresses as host-order numbers. */
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
  ifindex: number;
  /** The policy-map entry that decided (1-based; 0 none). */
  cookie: number;
  len: number;
};

/**
 * What the L7 proxies report for every request and DNS answer: the
 * contract between the proxies (packages/proxy, which make them), the agent
 * (which gathers them) and the observer (which makes Hubble flows of them).
 */

/** A rule as the policy engine names it (structurally the engine's RuleOrigin). */
export interface RuleRef {
  kind: string;
  namespace?: string;
  name: string;
  spec?: number;
  section: string;
  index: number;
}

export interface L7Endpoint {
  ip: string;
  port: number;
}

/** One HTTP request, judged (and forwarded or answered) by the HTTP proxy. */
export interface L7HttpEvent {
  time: string;
  source: L7Endpoint;
  destination: L7Endpoint;
  srcIdentity: number;
  dstIdentity: number;
  srcEndpoint?: string;
  dstEndpoint?: string;
  verdict: 'FORWARDED' | 'DENIED' | 'ERROR';
  method: string;
  url: string;
  host: string;
  protocol: string;
  code: number;
  latencyNs: number;
  /** Secrets redacted at capture. */
  requestHeaders: [string, string][];
  responseHeaders: [string, string][];
  rules: RuleRef[];
  reason: string;
}

/** One DNS query, judged by the DNS proxy (and its answer, when forwarded). */
export interface DnsEvent {
  /** Tells a DNS event from an HTTP one. */
  kind: 'dns';
  time: string;
  protocol: 'udp' | 'tcp';
  client: L7Endpoint;
  server: L7Endpoint;
  srcIdentity: number;
  dstIdentity: number;
  query: string;
  qtype: string;
  /** NOERROR, NXDOMAIN, REFUSED (the proxy's), SERVFAIL, FORMERR... */
  rcode: string;
  ips: string[];
  ttl?: number;
  verdict: 'forwarded' | 'refused' | 'error';
  rules: RuleRef[];
  reason: string;
  latencyMs: number;
}

export type L7Event = L7HttpEvent | DnsEvent;

/** The size of one mbr_event record in the kernel ring buffer. */
export const DATAPATH_EVENT_BYTES = 56;

/**
 * Where each field of an mbr_event record lies, in bytes (little-endian but
 * for saddr, daddr, sport and dport, which are in network order). The
 * observer reads records in place with these; the datapath's eventCodec
 * must lay them out the same (a datapath test holds the two together).
 */
export const DatapathEventOffsets = {
  ts_ns: 0,
  type: 8,
  direction: 9,
  proto: 10,
  tcp_flags: 11,
  verdict: 12,
  is_reply: 13,
  l7: 14,
  pad: 15,
  drop_reason: 16,
  proxy_port: 18,
  ep_id: 20,
  src_identity: 24,
  dst_identity: 28,
  saddr: 32,
  daddr: 36,
  sport: 40,
  dport: 42,
  ifindex: 44,
  cookie: 48,
  len: 52,
} as const;
