/**
 * Packet builders for BPF_PROG_TEST_RUN: Ethernet + IPv4 + TCP/UDP/ICMP with
 * correct lengths and checksums, so the programs see what a kernel would
 * hand them.
 */
import { ipv4ToNumber } from '../codecs.js';

export interface PacketSpec {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'sctp';
  sport?: number;
  dport?: number;
  /** TCP flags byte (SYN 0x02, ACK 0x10, FIN 0x01, RST 0x04). */
  flags?: number;
  icmpType?: number;
  icmpId?: number;
  payload?: Buffer;
  /** TCP options after the 20-byte header (a multiple of 4 bytes; the data offset follows). */
  tcpOptions?: Buffer;
  /** Override the IP protocol number (for unknown protocols). */
  ipProto?: number;
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

/** The Internet checksum of b (RFC 1071), started from initial; 0 over bytes that include a right checksum. */
export function checksum(b: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** The sum of the IPv4 pseudo header, to start a TCP or UDP checksum with. */
export function pseudo(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

export function buildPacket(p: PacketSpec): Buffer {
  const payload = p.payload ?? Buffer.alloc(0);
  let l4: Buffer;
  let protoNum: number;
  const src = ipv4ToNumber(p.src);
  const dst = ipv4ToNumber(p.dst);
  switch (p.proto) {
    case 'tcp': {
      protoNum = 6;
      const opts = p.tcpOptions ?? Buffer.alloc(0);
      if (opts.length % 4 !== 0 || opts.length > 40) throw new RangeError(`TCP options of ${opts.length} bytes: a multiple of 4, at most 40`);
      const hlen = 20 + opts.length;
      l4 = Buffer.alloc(hlen + payload.length);
      l4.writeUInt16BE(p.sport ?? 40000, 0);
      l4.writeUInt16BE(p.dport ?? 80, 2);
      l4.writeUInt32BE(1000, 4);
      l4.writeUInt32BE(p.flags !== undefined && p.flags & TCP.ACK ? 2000 : 0, 8);
      l4[12] = (hlen / 4) << 4;
      l4[13] = p.flags ?? TCP.SYN;
      l4.writeUInt16BE(65535, 14);
      opts.copy(l4, 20);
      payload.copy(l4, hlen);
      l4.writeUInt16BE(checksum(l4, pseudo(src, dst, 6, l4.length)), 16);
      break;
    }
    case 'udp':
    case 'sctp': {
      protoNum = p.proto === 'udp' ? 17 : 132;
      l4 = Buffer.alloc(8 + payload.length);
      l4.writeUInt16BE(p.sport ?? 40000, 0);
      l4.writeUInt16BE(p.dport ?? 53, 2);
      l4.writeUInt16BE(l4.length, 4);
      payload.copy(l4, 8);
      if (p.proto === 'udp') l4.writeUInt16BE(checksum(l4, pseudo(src, dst, 17, l4.length)) || 0xffff, 6);
      break;
    }
    case 'icmp': {
      protoNum = 1;
      l4 = Buffer.alloc(8 + payload.length);
      l4[0] = p.icmpType ?? 8;
      l4.writeUInt16BE(p.icmpId ?? 7, 4);
      l4.writeUInt16BE(1, 6);
      payload.copy(l4, 8);
      l4.writeUInt16BE(checksum(l4), 2);
      break;
    }
  }
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length, 2);
  ip.writeUInt16BE(1, 4);
  ip[8] = 64;
  ip[9] = p.ipProto ?? protoNum;
  ip.writeUInt32BE(src, 12);
  ip.writeUInt32BE(dst, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const eth = Buffer.alloc(14);
  Buffer.from([0x02, 0, 0, 0, 0, 2]).copy(eth, 0);
  Buffer.from([0x02, 0, 0, 0, 0, 1]).copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip, l4]);
}

/** The reply to a packet: addresses and ports swapped (ICMP echo → echo reply). */
export function replyTo(p: PacketSpec, flags = TCP.SYN | TCP.ACK): PacketSpec {
  const r: PacketSpec = { ...p, src: p.dst, dst: p.src, sport: p.dport, dport: p.sport, flags };
  if (p.proto === 'icmp') r.icmpType = 0;
  return r;
}
