/**
 * `membrane policy test --live`: what the command and its traffic agents
 * (probe-server, probe-client, run inside the private agent's pod namespaces;
 * the CLI's own copy, adapted from the testkit's dev-only agents) exchange: the probes a client makes, the ports a
 * server opens, and the outcome of each probe. Plain JSON over stdin/stdout.
 */

export interface LiveProbe {
  /** Chosen by the harness; outcomes carry it back. */
  id: number;
  protocol: 'TCP' | 'UDP' | 'ICMP';
  ip: string;
  /** TCP and UDP. */
  port?: number;
  /** ICMP: 8 (echo, sent by `ping`) or 13 (timestamp, sent through a raw socket). */
  icmpType?: number;
  /** TCP and UDP: bytes sent and expected back (default 32). */
  bytes?: number;
  /** TCP: one HTTP/1.1 request instead of the echo (the server answers it, the L7 proxy may first). */
  http?: { method: string; path: string; host?: string; headers?: Record<string, string> };
  /** UDP or TCP: one DNS query (type A) instead of the echo (the server answers it, the DNS proxy may first). */
  dns?: { query: string };
}

/** The probe server's answer to an HTTP request it receives (body), so a 200 from anything else is not taken for it. */
export const HTTP_PROBE_BODY = 'probe-server: request served';

export interface ServerPorts {
  tcp: number[];
  udp: number[];
  /** Of those, the ports that answer DNS queries (over UDP and over TCP); anything else sent there is echoed. */
  dns?: number[];
  /** The A records the DNS ports answer with (name → addresses); other names get NXDOMAIN. */
  names?: Record<string, string[]>;
}

/**
 * allowed: the connection carried the payload both ways (TCP, UDP) or the
 *          ICMP reply came back;
 * denied:  nothing came back before the timeout — what a drop looks like;
 * error:   anything else (refused, unreachable, a half-answered exchange):
 *          neither verdict, the harness or the plumbing is wrong.
 */
export type LiveOutcomeVerdict = 'allowed' | 'denied' | 'error';

export interface LiveOutcome {
  id: number;
  verdict: LiveOutcomeVerdict;
  /** What was observed: "echoed 32 bytes", "no SYN-ACK in 1500 ms", "EHOSTUNREACH". */
  detail: string;
  /** The error code when the verdict is error (EHOSTUNREACH, ECONNREFUSED ...). */
  code?: string;
  ms: number;
}

/** A dropped SYN is retransmitted after 1 s: 1.5 s sees the retry dropped as well. */
export const TCP_CONNECT_TIMEOUT_MS = 1500;
/** UDP datagrams are sent every UDP_RESEND_MS until the echo comes or this passes. */
export const UDP_TIMEOUT_MS = 1500;
export const UDP_RESEND_MS = 500;
/** `ping -W 1`. */
export const ICMP_TIMEOUT_S = 1;
/** The line a server prints once every listener is bound. */
export const SERVER_READY = 'probe-server ready';

export * from './outside-peers.js';
