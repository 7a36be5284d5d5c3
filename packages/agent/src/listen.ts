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
