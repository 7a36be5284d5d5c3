/**
 * The DNS proxy's UDP sockets (native/udp-socket.c), which Node's dgram
 * cannot make: it sets neither IP_TRANSPARENT nor SO_MARK, and it does not
 * tell a datagram's original destination.
 *
 * The listener, on the proxy's address (127.0.0.1) and port: the datapath
 * assigns each redirected query to it (bpf_sk_assign, bpf/lib/proxy.h)
 * whatever its destination, so every datagram arrives with the address and
 * port the client sent it to (IP_ORIGDSTADDR). An upstream socket, bound to
 * the client's address and marked MARK_FROM_PROXY: the server sees the
 * client, and the datapath delivers the server's answer back here rather
 * than to the client pod. And `sendUdpFrom`, which sends the answer to the
 * client from the address and port it asked.
 */
import { MARK_FROM_PROXY } from './codecs.js';
import { native, type NativeBinding, type UdpHandle } from './native.js';

export interface UdpDatagram {
  data: Buffer;
  /** The sender. */
  address: string;
  port: number;
  /** Where the sender sent it (for a redirected query: the server it asked). */
  destAddress: string;
  destPort: number;
}

export interface TransparentUdpOptions {
  address: string;
  /** 0: the kernel picks (read .port). */
  port: number;
  /** SO_MARK; 0 for none. The default is none: pass MARK_FROM_PROXY for an upstream socket. */
  mark?: number;
}

export class TransparentUdpSocket {
  readonly port: number;
  private handle: UdpHandle | undefined;

  constructor(opts: TransparentUdpOptions, onDatagram: (d: UdpDatagram) => void, private readonly nb: NativeBinding = native()) {
    this.handle = nb.udpOpen(opts.address, opts.port, opts.mark ? { mark: opts.mark } : undefined, (data, address, port, destAddress, destPort) => onDatagram({ data, address, port, destAddress, destPort }));
    this.port = opts.port || nb.udpLocalPort(this.handle);
  }

  /** Sends one datagram; throws (code EAGAIN, ENOBUFS, ...) when the kernel refuses it. */
  send(data: Uint8Array, address: string, port: number): void {
    if (!this.handle) throw new Error('send on a closed UDP socket');
    this.nb.udpSend(this.handle, data, address, port);
  }

  close(): void {
    if (this.handle) this.nb.udpClose(this.handle);
    this.handle = undefined;
  }
}

/** An upstream socket from `source` (port chosen by the kernel), marked as the proxy's. */
export function transparentUpstream(source: string, onDatagram: (d: UdpDatagram) => void, nb: NativeBinding = native()): TransparentUdpSocket {
  return new TransparentUdpSocket({ address: source, port: 0, mark: MARK_FROM_PROXY }, onDatagram, nb);
}

/** One datagram from from.address:from.port to to.address:to.port, whatever the sender's own addresses. */
export function sendUdpFrom(from: { address: string; port: number }, to: { address: string; port: number }, data: Uint8Array, nb: NativeBinding = native()): void {
  nb.udpSendFrom(from.address, from.port, to.address, to.port, data);
}
