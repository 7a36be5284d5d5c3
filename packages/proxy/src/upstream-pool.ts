/**
 * Idle upstream connections kept for the next client connection from the
 * same client address to the same destination (as Envoy pools upstream
 * connections per original source): a client that opens a connection per
 * request then costs the proxy no upstream connect, and the proxy does not
 * leave a TIME_WAIT behind for every one (with thousands of them on one
 * address pair, finding a free port for the next connect grows slow).
 *
 * Only a connection that is between responses comes back here; while idle
 * it is watched: bytes from the server (nothing was asked), its end or an
 * error remove it. Bounded per key and in all; an idle one goes after
 * IDLE_MS.
 */
import type { Socket } from 'node:net';

/** Below Node's default keep-alive timeout (5 s), so the server rarely closes one just as it is taken. */
const IDLE_MS = 4000;

interface Idle {
  socket: Socket;
  timer: NodeJS.Timeout;
  drop: () => void;
}

export class UpstreamPool {
  private readonly idle = new Map<string, Idle[]>();
  private count = 0;

  constructor(private readonly opts: { perKey?: number; total?: number; idleMs?: number } = {}) {}

  static key(client: { ip: string }, destination: { ip: string; port: number }): string {
    return `${client.ip}>${destination.ip}:${destination.port}`;
  }

  /** An idle connection for this key, its watchers removed; undefined when there is none. */
  take(key: string): Socket | undefined {
    const list = this.idle.get(key);
    while (list?.length) {
      const i = list.pop()!;
      this.forget(key, i);
      if (!i.socket.destroyed && i.socket.readyState === 'open') return i.socket;
      i.socket.destroy();
    }
    return undefined;
  }

  /** Keeps a connection that is between responses (its caller's listeners already removed), or closes it when full. */
  give(key: string, socket: Socket): void {
    const list = this.idle.get(key) ?? [];
    if (socket.destroyed || list.length >= (this.opts.perKey ?? 8) || this.count >= (this.opts.total ?? 1024)) {
      socket.destroy();
      return;
    }
    const i: Idle = {
      socket,
      timer: setTimeout(() => i.drop(), this.opts.idleMs ?? IDLE_MS),
      drop: () => {
        this.forget(key, i);
        const l = this.idle.get(key);
        const at = l?.indexOf(i) ?? -1;
        if (at >= 0) l!.splice(at, 1);
        if (l && l.length === 0) this.idle.delete(key);
        socket.destroy();
      },
    };
    i.timer.unref();
    socket.on('data', i.drop);
    socket.on('end', i.drop);
    socket.on('error', i.drop);
    socket.on('close', i.drop);
    list.push(i);
    this.idle.set(key, list);
    this.count++;
  }

  get size(): number {
    return this.count;
  }

  /** Closes every idle connection (shutdown). */
  clear(): void {
    for (const [key, list] of [...this.idle]) for (const i of [...list]) this.forget(key, i) && i.socket.destroy();
    this.idle.clear();
  }

  private forget(key: string, i: Idle): boolean {
    const socket = i.socket;
    if (!socket.listeners('close').includes(i.drop)) return false;
    clearTimeout(i.timer);
    for (const ev of ['data', 'end', 'error', 'close'] as const) socket.off(ev, i.drop);
    this.count--;
    const list = this.idle.get(key);
    if (list && list.length === 0) this.idle.delete(key);
    return true;
  }
}
