/**
 * The console as a cell of the agent: its session token (a root-only file
 * of the state directory, kept across restarts so an open page reconnects
 * after the agent comes back; `membrane ui --new-token` replaces it and
 * every page holding the old one is told its link is stale) and its server,
 * which `membrane ui --port N` moves.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MembraneError, type ConsoleInfo } from '@membrane/api';
import type { Route } from '../api/http-api.js';
import { ConsoleServer } from './console-server.js';

/** Where Vite puts the built console (packages/ui/dist-web), from this module in packages/agent/dist/console. */
export const WEB_ROOT = fileURLToPath(new URL('../../../ui/dist-web', import.meta.url));

export class ConsoleCell {
  private server?: ConsoleServer;
  private routes: readonly Route[] = [];
  private token = '';
  private readonly tokenFile: string;

  constructor(
    stateDir: string,
    private port: number,
    private readonly address = '127.0.0.1',
  ) {
    this.tokenFile = join(stateDir, 'console-token');
  }

  async start(routes: readonly Route[]): Promise<void> {
    this.routes = routes;
    if (!existsSync(this.tokenFile)) this.rotate();
    this.token = readFileSync(this.tokenFile, 'utf8').trim();
    await this.listen(this.port);
  }

  private rotate(): void {
    this.token = randomBytes(24).toString('base64url');
    writeFileSync(this.tokenFile, `${this.token}\n`, { mode: 0o600 });
  }

  private async listen(port: number): Promise<void> {
    const s = new ConsoleServer({ address: this.address, port, token: () => this.token, routes: this.routes, webRoot: WEB_ROOT });
    await s.start();
    this.server = s;
  }

  info(): ConsoleInfo | undefined {
    const s = this.server;
    return s ? { url: s.url(), address: this.address, port: s.port } : undefined;
  }

  /** `membrane ui [--port N] [--new-token]`: moves the server, replaces the token; answers the link. */
  async configure(req: { port?: number; newToken?: boolean }): Promise<ConsoleInfo> {
    if (req.port !== undefined && (!Number.isInteger(req.port) || req.port < 0 || req.port > 65535)) throw new MembraneError('MEMBRANE_E_USAGE', `port: ${req.port} is not a TCP port`);
    if (req.newToken) this.rotate();
    if (req.port !== undefined && req.port !== this.server?.port) {
      const old = this.server;
      try {
        await this.listen(req.port);
      } catch (e) {
        throw new MembraneError('MEMBRANE_E_USAGE', e instanceof Error ? e.message : String(e));
      }
      this.port = req.port;
      await old?.stop();
    }
    const i = this.info();
    if (!i) throw new MembraneError('MEMBRANE_E_AGENT_DOWN', 'the console is not running');
    return i;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }
}
