// Ports, protocols, named ports and ICMP types.
// Sources: cilium/cilium pkg/policy/api/rule_validation.go PortProtocol.sanitize
// (a port is a number or an IANA service name, lower-cased; port 0 = every
// port), pkg/iana/svcname.go IsSvcName (RFC 6335 section 5.1: 1-15 characters,
// letters, digits and hyphens, at least one letter, no leading, trailing or
// double hyphen), pkg/policy/api/l4.go (protocol ANY = TCP, UDP and SCTP;
// endPort range inclusive), pkg/policy/api/icmp.go (ICMP type names);
// Kubernetes docs, NetworkPolicy "Targeting a range of ports" (endPort >= port).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { Problems } from '@membrane/api';
import { ANY_L4_PROTOCOLS, Proto, icmpType, isServiceName, protoName, protoNumber } from './ports.js';
import { parsePort } from './translate-common.js';

describe('protocols', () => {
  test('names to numbers, case-insensitive', () => {
    assert.equal(protoNumber('TCP'), 6);
    assert.equal(protoNumber('tcp'), 6);
    assert.equal(protoNumber('UDP'), 17);
    assert.equal(protoNumber('SCTP'), 132);
    assert.equal(protoNumber('ANY'), 0);
    assert.equal(protoNumber('ICMP'), 1);
    assert.equal(protoNumber('ICMPv6'), 58);
    assert.equal(protoNumber('GRE'), undefined);
  });

  test('numbers to names', () => {
    assert.equal(protoName(Proto.TCP), 'TCP');
    assert.equal(protoName(Proto.ICMPv6), 'ICMPv6');
    assert.equal(protoName(0), 'ANY');
    assert.equal(protoName(47), '47');
  });

  test('ANY stands for TCP, UDP and SCTP (not ICMP)', () => {
    assert.deepEqual([...ANY_L4_PROTOCOLS], [6, 17, 132]);
  });
});

describe('isServiceName (pkg/iana/svcname.go, RFC 6335)', () => {
  test('valid names', () => {
    for (const s of ['http', 'http-alt', 'h2c', 'dns-tcp', 'a', 'x'.repeat(15), '8080a']) assert.equal(isServiceName(s), true, s);
  });
  test('invalid names', () => {
    for (const s of ['', 'x'.repeat(16), '8080', '-http', 'http-', 'ht--tp', 'my_port', 'my.port']) {
      assert.equal(isServiceName(s), false, s);
    }
  });
});

describe('parsePort', () => {
  const parse = (port: string | undefined, endPort?: number) => {
    const problems = new Problems();
    const r = parsePort(port, endPort, 'p', problems);
    return { r, problems: problems.list };
  };

  test('a number is a single port', () => {
    assert.deepEqual(parse('80'), { r: { port: 80, endPort: 80 }, problems: [] });
    assert.deepEqual(parse('65535'), { r: { port: 65535, endPort: 65535 }, problems: [] });
  });

  test('0 or no port means every port', () => {
    assert.deepEqual(parse('0'), { r: { port: 0, endPort: 65535 }, problems: [] });
    assert.deepEqual(parse(undefined), { r: { port: 0, endPort: 65535 }, problems: [] });
    assert.deepEqual(parse(''), { r: { port: 0, endPort: 65535 }, problems: [] });
  });

  test('endPort gives an inclusive range; endPort 0 or equal to port is a single port', () => {
    assert.deepEqual(parse('8000', 8080), { r: { port: 8000, endPort: 8080 }, problems: [] });
    assert.deepEqual(parse('80', 80), { r: { port: 80, endPort: 80 }, problems: [] });
    assert.deepEqual(parse('80', 0), { r: { port: 80, endPort: 80 }, problems: [] });
  });

  test('rejected numbers and ranges', () => {
    assert.deepEqual(parse('65536'), { r: undefined, problems: [{ path: 'p.port', reason: '65536 is not a valid port number (0-65535)' }] });
    assert.deepEqual(parse('80', 79), { r: undefined, problems: [{ path: 'p.endPort', reason: '79 is below port 80' }] });
    assert.deepEqual(parse('0', 10), { r: undefined, problems: [{ path: 'p.endPort', reason: 'needs a non-zero port' }] });
    assert.deepEqual(parse(undefined, 10), { r: undefined, problems: [{ path: 'p.endPort', reason: 'needs a port' }] });
  });

  test('a service name is a named port, lower-cased', () => {
    assert.deepEqual(parse('http'), { r: { port: 0, endPort: 0, name: 'http' }, problems: [] });
    assert.deepEqual(parse('HTTP-Alt'), { r: { port: 0, endPort: 0, name: 'http-alt' }, problems: [] });
  });

  test('an invalid name or a name with endPort is rejected', () => {
    assert.deepEqual(parse('http--x'), {
      r: undefined,
      problems: [{ path: 'p.port', reason: `"http--x" is not a port number or a valid port name (IANA service name: up to 15 letters, digits and '-', with at least one letter)` }],
    });
    assert.deepEqual(parse('web_port'), {
      r: undefined,
      problems: [{ path: 'p.port', reason: `"web_port" is not a port number or a valid port name (IANA service name: up to 15 letters, digits and '-', with at least one letter)` }],
    });
    assert.deepEqual(parse('http', 90), { r: undefined, problems: [{ path: 'p.endPort', reason: 'cannot be used with the named port "http"' }] });
  });
});

describe('icmpType (pkg/policy/api/icmp.go)', () => {
  test('numbers and names, per family', () => {
    assert.equal(icmpType(8, 'IPv4'), 8);
    assert.equal(icmpType('8', 'IPv4'), 8);
    assert.equal(icmpType('EchoRequest', 'IPv4'), 8);
    assert.equal(icmpType('EchoReply', 'IPv4'), 0);
    assert.equal(icmpType('EchoRequest', 'IPv6'), 128);
    assert.equal(icmpType('NeighborSolicitation', 'IPv6'), 135);
  });

  test('out of range or unknown', () => {
    assert.equal(icmpType(256, 'IPv4'), 'ICMP type 256 is out of range 0-255');
    assert.equal(icmpType('Bogus', 'IPv4'), '"Bogus" is not an ICMP type name (e.g. EchoReply, DestinationUnreachable, Redirect)');
    assert.equal(icmpType('Bogus', 'IPv6'), '"Bogus" is not an ICMPv6 type name (e.g. DestinationUnreachable, PacketTooBig, TimeExceeded)');
    assert.equal(typeof icmpType('NeighborSolicitation', 'IPv4'), 'string', 'an ICMPv6-only name is not an ICMP name');
  });
});
