/**
 * The CLI's client of the agent API: JSON over the root-only unix socket.
 * A missing or silent socket means the agent is down, and the error says how
 * to start it.
 */
import { request } from 'node:http';
import { MembraneError, type ApiErrorBody, type ErrorCode } from '@membrane/api';

export const DEFAULT_SOCKET = '/var/lib/membrane/agent.sock';

export function socketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['MEMBRANE_SOCKET']) return env['MEMBRANE_SOCKET'];
  if (env['MEMBRANE_STATE_DIR']) return `${env['MEMBRANE_STATE_DIR']}/agent.sock`;
  return DEFAULT_SOCKET;
}

export const AGENT_DOWN = 'the Membrane agent is not running: start it with `membrane up` (as root)';

export async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, opts: { socket?: string; timeoutMs?: number } = {}): Promise<T> {
  const sock = opts.socket ?? socketPath();
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise<T>((resolve, reject) => {
    const r = request(
      { socketPath: sock, path, method, headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}, timeout: opts.timeoutMs ?? 600_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            reject(new MembraneError('MEMBRANE_E_INTERNAL', `the agent answered ${res.statusCode} with something that is not JSON`));
            return;
          }
          if ((res.statusCode ?? 500) >= 400) {
            const err = (json as ApiErrorBody | undefined)?.error;
            reject(new MembraneError((err?.code as ErrorCode) ?? 'MEMBRANE_E_INTERNAL', err?.message ?? `the agent answered ${res.statusCode}`, err?.details ? { details: err.details } : {}));
            return;
          }
          resolve(json as T);
        });
      },
    );
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new MembraneError('MEMBRANE_E_AGENT_DOWN', AGENT_DOWN));
      else if (e.code === 'EACCES') reject(new MembraneError('MEMBRANE_E_NOT_ROOT', `cannot reach the agent at ${sock}: permission denied (the agent socket is root-only: run as root)`));
      else reject(new MembraneError('MEMBRANE_E_INTERNAL', `agent request ${method} ${path}: ${e.message}`));
    });
    if (payload) r.write(payload);
    r.end();
  });
}

/** Stream a response body (logs -f) to a sink until the agent ends it. */
export function stream(path: string, sink: (chunk: Buffer) => void, opts: { socket?: string } = {}): Promise<void> {
  const sock = opts.socket ?? socketPath();
  return new Promise((resolve, reject) => {
    const r = request({ socketPath: sock, path, method: 'GET' }, (res) => {
      if ((res.statusCode ?? 500) >= 400) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const err = (JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as ApiErrorBody).error;
          reject(new MembraneError((err?.code as ErrorCode) ?? 'MEMBRANE_E_INTERNAL', err?.message ?? `HTTP ${res.statusCode}`));
        });
        return;
      }
      res.on('data', sink);
      res.on('end', () => resolve());
    });
    r.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? new MembraneError('MEMBRANE_E_AGENT_DOWN', AGENT_DOWN) : e));
    r.end();
  });
}
