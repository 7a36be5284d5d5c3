/** Listening on a TCP address for the agent's servers (REST, Observer API, metrics): resolves with the port bound (0 asks the kernel for one). */
import type { AddressInfo } from 'node:net';

interface Listening {
  listen(port: number, host: string, cb: () => void): unknown;
  once(ev: 'error', cb: (e: Error) => void): unknown;
  off(ev: 'error', cb: (e: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

export function listenTcp(server: Listening, port: number, host: string, what: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const fail = (e: Error) => reject(new Error(`${what}: listen on ${host}:${port}: ${e.message}`));
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

interface Closing {
  closeAllConnections?(): void;
  close(cb: () => void): unknown;
}

/** Stops a server of the agent: its open connections (kept-alive, streams) closed too, so the stop never waits on a client. */
export async function closeServer(s: Closing | undefined): Promise<void> {
  if (!s) return;
  s.closeAllConnections?.();
  await new Promise<void>((r) => s.close(() => r()));
}
