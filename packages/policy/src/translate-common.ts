/** Pieces shared by the CNP and NetworkPolicy translators. */
import { Problems, join } from '@membrane/api';
import { parsePrefix, prefixContains, type Prefix } from './cidr.js';
import { isServiceName } from './ports.js';
import type { PeerSelector, PortSpec } from './rule.js';

export { Problems, join };

/** A CIDR peer; `bare` lets a lone address stand for its host prefix (fromCIDR/toCIDR). */
export function cidrPeer(cidr: string, except: string[], path: string, exceptPath: string, problems: Problems, bare: boolean): PeerSelector | undefined {
  const p = parsePrefix(cidr, { allowBare: bare });
  if (typeof p === 'string') {
    problems.add(path, p);
    return undefined;
  }
  const ex: Prefix[] = [];
  let bad = false;
  except.forEach((e, i) => {
    const q = parsePrefix(e);
    if (typeof q === 'string') {
      problems.add(join(exceptPath, i), q);
      bad = true;
      return;
    }
    if (!prefixContains(p, q)) {
      problems.add(join(exceptPath, i), `${e} is not within ${cidr}`);
      bad = true;
      return;
    }
    ex.push(q);
  });
  if (bad) return undefined;
  return { kind: 'cidr', cidr: p, except: ex, text: except.length ? `${cidr} except ${except.join(',')}` : cidr };
}

/**
 * A port as written: a number 0-65535 (0 = every port), or an IANA service
 * name (a named port). Returns the spec without protocol, or undefined.
 */
export function parsePort(port: string | undefined, endPort: number | undefined, path: string, problems: Problems): Pick<PortSpec, 'port' | 'endPort' | 'name'> | undefined {
  if (port === undefined || port === '') {
    if (endPort !== undefined) {
      problems.add(join(path, 'endPort'), 'needs a port');
      return undefined;
    }
    return { port: 0, endPort: 65535 };
  }
  if (/^[0-9]+$/.test(port)) {
    const n = Number(port);
    if (n > 65535) {
      problems.add(join(path, 'port'), `${port} is not a valid port number (0-65535)`);
      return undefined;
    }
    if (endPort !== undefined && endPort !== 0) {
      if (n === 0) {
        problems.add(join(path, 'endPort'), 'needs a non-zero port');
        return undefined;
      }
      if (endPort < n) {
        problems.add(join(path, 'endPort'), `${endPort} is below port ${n}`);
        return undefined;
      }
      return { port: n, endPort };
    }
    return n === 0 ? { port: 0, endPort: 65535 } : { port: n, endPort: n };
  }
  const name = port.toLowerCase();
  if (!isServiceName(name)) {
    problems.add(join(path, 'port'), `"${port}" is not a port number or a valid port name (IANA service name: up to 15 letters, digits and '-', with at least one letter)`);
    return undefined;
  }
  if (endPort !== undefined && endPort !== 0) {
    problems.add(join(path, 'endPort'), `cannot be used with the named port "${port}"`);
    return undefined;
  }
  return { port: 0, endPort: 0, name };
}
