/**
 * The DNS proxy's judgement of one query, whatever carried it (UDP or TCP:
 * dns-transports.ts). A query the datapath sent here (its entry names DNS
 * rules) is decoded, its name judged by the client's DNS rules (matchName,
 * matchPattern: the engine's matcher), and then:
 *   - refused: answered REFUSED, as Cilium's DNS proxy does by default;
 *   - allowed: forwarded unchanged to the server the client asked, and its
 *     answer checked (same id, same question) and handed to `learn` (the
 *     agent makes the answer's addresses part of the toFQDNs selections)
 *     before it is released to the client, so the first connection after
 *     the lookup is already allowed.
 * Malformed input never reaches a server: a message whose header can be
 * read gets FORMERR (NOTIMP for an opcode other than QUERY), anything else
 * and any response (QR set) is dropped. An answer that does not decode,
 * does not match the query or does not come in time becomes SERVFAIL.
 * Every query ends in one event (query, rcode, addresses, verdict, rules).
 */
import * as dnsPacket from 'dns-packet';
import type { DnsEvent } from '@membrane/api';
import type { RuleOrigin } from '@membrane/policy';

export interface DnsEndpointRef {
  ip: string;
  port: number;
}

export interface DnsQueryContext {
  client: DnsEndpointRef;
  /** The server the client sent the query to (its original destination). */
  server: DnsEndpointRef;
  protocol: 'udp' | 'tcp';
}

export interface DnsJudgement {
  allowed: boolean;
  rules: RuleOrigin[];
  reason: string;
  srcIdentity: number;
  dstIdentity: number;
}

/** What an allowed answer taught: the names asked and answered, the addresses, their TTL (seconds). */
export interface DnsLesson {
  client: DnsEndpointRef;
  names: string[];
  ips: string[];
  ttl: number;
}

export type { DnsEvent };

export interface DnsProxyDeps {
  judge(ctx: DnsQueryContext, name: string): DnsJudgement;
  /** Sends the query to ctx.server and resolves with its answer; rejects on timeout or a transport error. */
  forward(ctx: DnsQueryContext, query: Buffer): Promise<Buffer>;
  /** Resolves once what the answer taught is in force. */
  learn(lesson: DnsLesson): Promise<void>;
  event(e: DnsEvent): void;
  /** Queries in flight beyond this are answered SERVFAIL at once (default 1024). */
  maxInflight?: number;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const RCODE_NAME = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const OPCODE_QUERY = 0;
const HEADER = 12;

function rcodeName(n: number): string {
  return RCODE_NAME[n] ?? `RCODE${n}`;
}

/** An answer carrying only the header of `wire` (id, opcode, RD) and the rcode, for a query that could not be decoded. */
function headerAnswer(wire: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER);
  wire.copy(out, 0, 0, 2);
  const opcodeRd = wire[2]! & 0x79; // opcode bits and RD
  out[2] = 0x80 | opcodeRd;
  out[3] = 0x80 | rcode; // RA
  return out;
}

/** The answer to `q` with `rcode` and no records: the question echoed, RD copied. */
export function errorAnswer(q: dnsPacket.DecodedPacket, rcode: number): Buffer {
  const flags = dnsPacket.RECURSION_AVAILABLE | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode;
  return dnsPacket.encode({ id: q.id ?? 0, type: 'response', flags, questions: q.questions ?? [] });
}

function sameQuestion(a: dnsPacket.Question | undefined, b: dnsPacket.Question | undefined): boolean {
  return !!a && !!b && a.name.toLowerCase() === b.name.toLowerCase() && a.type === b.type && (a.class ?? 'IN') === (b.class ?? 'IN');
}

const bare = (n: string) => n.toLowerCase().replace(/\.$/, '');

/**
 * What an answer says `qname` resolves to: the A records of qname and of
 * the names its CNAME chain leads to (records for other names are not
 * taken: a server cannot teach the proxy about names nobody asked), with
 * those names and the smallest TTL among them.
 */
export function answerAddresses(answer: dnsPacket.DecodedPacket, qname: string): { names: string[]; ips: string[]; ttl: number } {
  const records = (answer.answers ?? []).filter((a) => a.type === 'A' || a.type === 'CNAME');
  const names = new Set([bare(qname)]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const a of records) {
      if (a.type !== 'CNAME' || !names.has(bare(a.name)) || names.has(bare(a.data))) continue;
      names.add(bare(a.data));
      grew = true;
    }
  }
  const ips = new Set<string>();
  let ttl = Infinity;
  for (const a of records) {
    if (!names.has(bare(a.name))) continue;
    if (a.type === 'A') ips.add(a.data);
    ttl = Math.min(ttl, (a as { ttl?: number }).ttl ?? 0);
  }
  return { names: [...names], ips: [...ips], ttl: ips.size ? ttl : 0 };
}

export class DnsProxy {
  private inflight = 0;
  readonly stats = { queries: 0, forwarded: 0, refused: 0, servfail: 0, formerr: 0, dropped: 0 };

  constructor(private readonly d: DnsProxyDeps) {}

  /** The answer to send back to the client, or undefined to send nothing. Never rejects. */
  async handle(ctx: DnsQueryContext, wire: Buffer): Promise<Buffer | undefined> {
    this.stats.queries++;
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(wire);
    } catch {
      if (wire.length < HEADER || wire[2]! & 0x80) return this.drop();
      this.stats.formerr++;
      return headerAnswer(wire, RCODE.FORMERR);
    }
    if (q.type !== 'query') return this.drop();
    const opcode = ((q.flags ?? 0) >> 11) & 0xf;
    if (opcode !== OPCODE_QUERY) return errorAnswer(q, RCODE.NOTIMP);
    if ((q.questions ?? []).length !== 1) {
      this.stats.formerr++;
      return errorAnswer(q, RCODE.FORMERR);
    }
    const question = q.questions![0]!;
    const started = Date.now();
    const verdict = this.d.judge(ctx, question.name);
    const event = (rcode: string, v: DnsEvent['verdict'], extra: { ips?: string[]; ttl?: number; reason?: string } = {}) =>
      this.d.event({
        kind: 'dns',
        time: new Date(started).toISOString(),
        protocol: ctx.protocol,
        client: ctx.client,
        server: ctx.server,
        srcIdentity: verdict.srcIdentity,
        dstIdentity: verdict.dstIdentity,
        query: question.name,
        qtype: question.type,
        rcode,
        ips: extra.ips ?? [],
        ...(extra.ttl !== undefined ? { ttl: extra.ttl } : {}),
        verdict: v,
        rules: verdict.rules,
        reason: extra.reason ?? verdict.reason,
        latencyMs: Date.now() - started,
      });
    if (!verdict.allowed) {
      this.stats.refused++;
      event('REFUSED', 'refused');
      return errorAnswer(q, RCODE.REFUSED);
    }
    if (this.inflight >= (this.d.maxInflight ?? 1024)) {
      this.stats.servfail++;
      event('SERVFAIL', 'error', { reason: 'too many queries in flight' });
      return errorAnswer(q, RCODE.SERVFAIL);
    }
    this.inflight++;
    try {
      const raw = await this.d.forward(ctx, wire);
      let answer: dnsPacket.DecodedPacket;
      try {
        answer = dnsPacket.decode(raw);
      } catch {
        throw new Error('the server sent an answer that does not decode');
      }
      if (answer.type !== 'response' || answer.id !== q.id || !sameQuestion(answer.questions?.[0], question)) throw new Error('the server answered another question');
      const rcode = (answer.flags ?? 0) & 0xf;
      const learnt = answerAddresses(answer, question.name);
      if (learnt.ips.length) {
        await this.d.learn({ client: ctx.client, names: learnt.names, ips: learnt.ips, ttl: learnt.ttl }).catch(() => {
          // The answer still goes out: a connection the policy does not allow yet is dropped, never let through.
        });
      }
      this.stats.forwarded++;
      event(rcodeName(rcode), 'forwarded', { ips: learnt.ips, ttl: learnt.ttl });
      return raw;
    } catch (e) {
      this.stats.servfail++;
      event('SERVFAIL', 'error', { reason: e instanceof Error ? e.message : String(e) });
      return errorAnswer(q, RCODE.SERVFAIL);
    } finally {
      this.inflight--;
    }
  }

  private drop(): undefined {
    this.stats.dropped++;
    return undefined;
  }
}
