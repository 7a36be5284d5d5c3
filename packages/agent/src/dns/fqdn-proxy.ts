/**
 * The agent's DNS proxy (Cilium's lives in its agent too): the queries the
 * datapath sends to the DNS proxy port are judged by the policy in force
 * (the proxy snapshot, resolved by PolicyView), and what allowed answers
 * teach goes into the toFQDNs cache; a new name/address pair regenerates
 * the endpoints (the address gets a CIDR identity, the toFQDNs selections
 * take it in) before the answer is released. Pairs expire with their TTL
 * (then the endpoints are regenerated without them). The cache is saved in
 * the store, so a restarted agent keeps the addresses it had learnt.
 */
import { DnsProxy, DnsProxyServer, PolicyView, type DnsEvent, type DnsLesson, type ProxySnapshot } from '@membrane/proxy';
import { FqdnCache, type FqdnCacheEntry } from './fqdn-cache.js';

export interface FqdnProxyDeps {
  address: string;
  port: number;
  minTtl: number;
  snapshot: () => ProxySnapshot;
  /** Brings the kernel to the current world (on the agent's queue). */
  regenerate: () => Promise<void>;
  load: () => Promise<FqdnCacheEntry[] | undefined>;
  save: (entries: FqdnCacheEntry[]) => Promise<void>;
  event: (e: DnsEvent) => void;
  problem: (what: string) => void;
}

export interface FqdnProxyStatus {
  state: 'running' | 'stopped';
  listener: string;
  stats: DnsProxy['stats'];
  cache: { entries: number; nextExpiry?: string };
}

export class FqdnProxy {
  readonly cache: FqdnCache;
  private view?: PolicyView;
  private server?: DnsProxyServer;
  private proxy?: DnsProxy;
  private expiryTimer?: NodeJS.Timeout;

  constructor(private readonly d: FqdnProxyDeps) {
    this.cache = new FqdnCache({ minTtl: d.minTtl });
  }

  /** The cache as saved by the previous agent (before the first regeneration, so its addresses stay selected). */
  async restore(): Promise<void> {
    this.cache.restore((await this.d.load()) ?? []);
  }

  async start(): Promise<void> {
    const proxy: DnsProxy = (this.proxy = new DnsProxy({
      judge: (ctx, name) => this.policy().decideDns(ctx.client.ip, ctx.server.ip, ctx.protocol, ctx.server.port, name),
      forward: (ctx, q): Promise<Buffer> => server.forward(ctx, q),
      learn: (l) => this.learn(l),
      event: (e) => this.d.event(e),
    }));
    const server: DnsProxyServer = new DnsProxyServer({ address: this.d.address, port: this.d.port, proxy, isLocalEndpoint: (ip) => this.policy().endpoint(ip) !== undefined, problem: this.d.problem });
    await server.start();
    this.server = server;
    this.armExpiry();
  }

  async stop(): Promise<void> {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    await this.server?.stop();
    this.server = undefined;
  }

  /** Adds names → addresses as an answer would (the pre-cache: `POST /v1/fqdn/cache`), in force when it resolves. */
  async preload(entries: readonly { name: string; ips: string[]; ttl: number }[]): Promise<void> {
    let changed = false;
    for (const e of entries) changed = this.cache.learn([e.name], e.ips, e.ttl) || changed;
    if (changed) await this.commit();
  }

  /** Forgets every name (`DELETE /v1/fqdn/cache`, as `cilium fqdn cache clean`), in force when it resolves. */
  async clear(): Promise<void> {
    if (this.cache.clear()) await this.commit();
  }

  status(): FqdnProxyStatus {
    const next = this.cache.nextExpiry();
    return {
      state: this.server ? 'running' : 'stopped',
      listener: `${this.d.address}:${this.server?.port ?? this.d.port}`,
      stats: this.proxy?.stats ?? { queries: 0, forwarded: 0, refused: 0, servfail: 0, formerr: 0, dropped: 0 },
      cache: { entries: this.cache.size, ...(next !== undefined ? { nextExpiry: new Date(next).toISOString() } : {}) },
    };
  }

  private policy(): PolicyView {
    const s = this.d.snapshot();
    if (this.view?.revision !== s.revision) this.view = new PolicyView(s);
    return this.view;
  }

  private async learn(l: DnsLesson): Promise<void> {
    if (this.cache.learn(l.names, l.ips, l.ttl)) await this.commit();
    else this.armExpiry();
  }

  /** The cache changed: regenerate (the answer waits for it), save, and re-arm the expiry. */
  private async commit(): Promise<void> {
    try {
      await this.d.regenerate();
    } finally {
      this.armExpiry();
      await this.d.save(this.cache.list()).catch((e: unknown) => this.d.problem(`save the toFQDNs cache: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const next = this.cache.nextExpiry();
    if (next === undefined) return;
    // setTimeout's bound (about 24.8 days): a longer wait is taken in steps.
    const wait = Math.min(Math.max(0, next - Date.now()) + 10, 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      if (!this.cache.expire()) return this.armExpiry();
      this.commit().catch((e: unknown) => this.d.problem(`toFQDNs expiry: ${e instanceof Error ? e.message : String(e)}`));
    }, wait);
    this.expiryTimer.unref();
  }
}
