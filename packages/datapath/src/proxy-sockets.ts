/**
 * The L7 proxy's sockets, made by the addon (native/proxy-socket.c) and
 * handed to Node, which cannot set IP_TRANSPARENT before bind itself.
 *
 * The listener: the datapath assigns a redirected connection to it
 * (bpf_sk_assign, bpf/lib/proxy.h) whatever the connection's destination, so
 * an accepted socket's local address and port are the original destination
 * and its remote ones the client. `net.Server#listen({ fd })` adopts the
 * listening fd (libuv calls listen(2) again, which only sets the backlog).
 *
 * The upstream: a socket bound to the client's address (the server sees the
 * client, as without the proxy) and marked MARK_FROM_PROXY, so the datapath
 * judges it by policy but never redirects it again, and marks the replies
 * for local delivery (MBR_CT_F_PROXY_UPSTREAM). `new net.Socket({ fd })`
 * adopts the bound, unconnected fd and `.connect()` connects it (libuv
 * connects an fd it has as it is, without a new socket or bind). One
 * condition: connect in the same tick as the adoption. The adopted socket
 * starts reading at once, and an unconnected TCP socket polls as hung up,
 * which Node would take for the end of the stream; connectTransparent does
 * both in one call.
 */
import { Socket, type Server } from 'node:net';
import { MARK_FROM_PROXY } from './codecs.js';
import { native, type NativeBinding } from './native.js';

export interface TransparentListenOptions {
  /** The proxy's listener address (the datapath's ProxyConfig.listenerIP), e.g. 127.0.0.1. */
  address: string;
  /** The proxy port the policy entries name (0: the kernel picks one; read server.address()). */
  port: number;
  backlog?: number;
}

/** Makes `server` listen on a transparent listener; resolves once it listens. */
export function listenTransparent(server: Server, opts: TransparentListenOptions, nb: NativeBinding = native()): Promise<void> {
  const fd = nb.createTransparentListener(opts.address, opts.port, opts.backlog === undefined ? {} : { backlog: opts.backlog });
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      // Not adopted: the fd is still ours to close.
      if (!server.listening) {
        try {
          nb.closeFd(fd);
        } catch {
          // The handle took it after all and closed it.
        }
      }
      reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ fd });
  });
}

export interface TransparentConnectOptions {
  /** The source address, which need not be local: the client's, so the server sees the client. */
  source: string;
  host: string;
  port: number;
  /** SO_MARK of the socket; default MARK_FROM_PROXY. */
  mark?: number;
}

/**
 * A connection to host:port from `source` (port chosen by the kernel),
 * marked as the proxy's: the socket returned is connecting, as
 * net.connect()'s is ('connect' or 'error' follows).
 */
export function connectTransparent(opts: TransparentConnectOptions, nb: NativeBinding = native()): Socket {
  const fd = nb.createTransparentSocket(opts.source, opts.mark ?? MARK_FROM_PROXY);
  let socket: Socket;
  try {
    socket = new Socket({ fd });
  } catch (e) {
    nb.closeFd(fd);
    throw e;
  }
  // The same tick: see the file's comment.
  return socket.connect(opts.port, opts.host);
}
