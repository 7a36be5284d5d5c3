/** L4 protocols, port ranges, named ports and ICMP types. */

export const Proto = { ANY: 0, ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58, SCTP: 132 } as const;
export type ProtoName = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6';

const NAMES: Record<number, string> = { 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

export function protoName(n: number): string {
  return NAMES[n] ?? String(n);
}

export function protoNumber(name: string): number | undefined {
  switch (name.toUpperCase()) {
    case 'ANY': return Proto.ANY;
    case 'TCP': return Proto.TCP;
    case 'UDP': return Proto.UDP;
    case 'SCTP': return Proto.SCTP;
    case 'ICMP': return Proto.ICMP;
    case 'ICMPV6': return Proto.ICMPv6;
    default: return undefined;
  }
}

/** The protocols that `protocol: ANY` (or an omitted protocol in a CNP) stands for. */
export const ANY_L4_PROTOCOLS = [Proto.TCP, Proto.UDP, Proto.SCTP] as const;

/**
 * An IANA service name (RFC 6335): at most 15 characters of lower-case
 * letters, digits and hyphens, at least one letter, no leading, trailing or
 * double hyphen. Such a port refers to a container port by name.
 */
export function isServiceName(s: string): boolean {
  return s.length >= 1 && s.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes('--');
}

export interface NamedPort {
  name: string;
  port: number;
  proto: number;
}

const ICMPV4_TYPES: Record<string, number> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

const ICMPV6_TYPES: Record<string, number> = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MulticastListenerQuery: 130,
  MulticastListenerReport: 131,
  MulticastListenerDone: 132,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  RedirectMessage: 137,
  RouterRenumbering: 138,
  ICMPNodeInformationQuery: 139,
  ICMPNodeInformationResponse: 140,
  InverseNeighborDiscoverySolicitation: 141,
  InverseNeighborDiscoveryAdvertisement: 142,
  HomeAgentAddressDiscoveryRequest: 144,
  HomeAgentAddressDiscoveryReply: 145,
  MobilePrefixSolicitation: 146,
  MobilePrefixAdvertisement: 147,
  DuplicateAddressRequestCodeSuffix: 157,
  DuplicateAddressConfirmationCodeSuffix: 158,
  ExtendedEchoRequest: 160,
  ExtendedEchoReply: 161,
};

/** An ICMP type given as a number or by name; returns the reason when invalid. */
export function icmpType(t: number | string, family: 'IPv4' | 'IPv6'): number | string {
  if (typeof t === 'number' || /^[0-9]+$/.test(t)) {
    const n = Number(t);
    if (!Number.isInteger(n) || n < 0 || n > 255) return `ICMP type ${t} is out of range 0-255`;
    return n;
  }
  const table = family === 'IPv6' ? ICMPV6_TYPES : ICMPV4_TYPES;
  const n = table[t];
  if (n === undefined) return `"${t}" is not an ${family === 'IPv6' ? 'ICMPv6' : 'ICMP'} type name (e.g. ${Object.keys(table).slice(0, 3).join(', ')})`;
  return n;
}
