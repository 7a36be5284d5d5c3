/**
 * The file descriptor behind a Node socket or server, for the socket options
 * Node does not expose (native.ts: setSoMark, setIpTransparent,
 * getOriginalDst). Node keeps it on the internal libuv handle.
 */
import type { Server, Socket } from 'node:net';

export function socketFd(s: Socket | Server): number {
  const fd = (s as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new Error('socket has no file descriptor yet: use it once it is connected or listening');
  }
  return fd;
}
