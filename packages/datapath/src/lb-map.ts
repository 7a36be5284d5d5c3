/**
 * What the agent writes to the socket load balancer, and the port it codes
 * against: LBMap (Cilium's name for the same thing, pkg/loadbalancer's
 * LBMap). ServiceDatapath is the kernel's implementation; a test fakes it
 * with a plain object. The specs are checked here, all problems at once,
 * before anything is written.
 */
import { MembraneError } from '@membrane/api';
import { LB_MAX_BACKENDS, ipv4ToNumber } from './codecs.js';

export type ServiceProtocol = 'TCP' | 'UDP';

/** A ClusterIP frontend: address, port and protocol. */
export interface ServiceFrontend {
  ip: string;
  port: number;
  protocol: ServiceProtocol;
}

/** A backend (a pod's address and target port); its protocol is the frontend's. */
export interface ServiceBackend {
  ip: string;
  port: number;
}

export interface ServiceSpec {
  /**
   * The agent's id of the service (Cilium's rev_nat_index), 1 to 2^32-1. The
   * frontends of one Service (one per port) may share it.
   */
  id: number;
  frontend: ServiceFrontend;
  /** At most LB_MAX_BACKENDS, no two alike. None: connections to the frontend are refused (ECONNREFUSED). */
  backends: readonly ServiceBackend[];
}

/** A frontend as the kernel holds it (`membrane service list`). */
export interface InstalledService {
  id: number;
  frontend: ServiceFrontend;
  flags: number;
  /** In slot order; each backend with the id the datapath gave it. */
  backends: (ServiceBackend & { backendId: number; slot: number })[];
}

/**
 * The socket load balancer as the agent sees it. Every call is synchronous
 * and complete when it returns: the next connect() sees the change.
 */
export interface LBMap {
  /**
   * Creates or updates a frontend to exactly these backends (idempotent).
   * Established connections keep their backend, whatever the change.
   */
  upsertService(svc: ServiceSpec): void;
  /** Removes a frontend; false when it was none. Connections to it then go where routing sends them. */
  deleteService(frontend: ServiceFrontend): boolean;
  /** Every frontend the kernel holds, sorted by address, port and protocol. */
  listServices(): InstalledService[];
  /** Releases handles; the translation stays in force. */
  close(): void;
}

/** "10.217.0.10:80/TCP": how messages (and maps keyed by frontend) name one. */
export function frontendName(f: ServiceFrontend): string {
  return `${f.ip}:${f.port}/${f.protocol}`;
}

function ipProblem(ip: unknown, what: string): string | undefined {
  if (typeof ip !== 'string') return `${what}: ${JSON.stringify(ip)} is not an IPv4 address`;
  let n: number;
  try {
    n = ipv4ToNumber(ip);
  } catch {
    return `${what}: "${ip}" is not an IPv4 address`;
  }
  if (ip !== `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`) return `${what}: "${ip}" is not in dotted-decimal form`;
  if (n === 0) return `${what}: 0.0.0.0 is the unspecified address`;
  if (n >>> 24 === 127) return `${what}: ${ip} is a loopback address`;
  if (n >>> 28 >= 14) return `${what}: ${ip} is a multicast or reserved address`;
  return undefined;
}

function portProblem(port: unknown, what: string): string | undefined {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return `${what}: ${JSON.stringify(port)} is not a port number (1-65535)`;
  return undefined;
}

/** Every problem of a frontend, "frontend.ip: ..." first. */
export function frontendProblems(f: ServiceFrontend, at = 'frontend'): string[] {
  const problems: string[] = [];
  if (typeof f !== 'object' || f === null) return [`${at}: must be an object`];
  const ip = ipProblem(f.ip, `${at}.ip`);
  if (ip) problems.push(ip);
  const port = portProblem(f.port, `${at}.port`);
  if (port) problems.push(port);
  if (f.protocol !== 'TCP' && f.protocol !== 'UDP') problems.push(`${at}.protocol: ${JSON.stringify(f.protocol)} is not TCP or UDP`);
  return problems;
}

/** Every problem of a spec, each with the field it is about; empty when it can be installed. */
export function serviceSpecProblems(svc: ServiceSpec): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(svc.id) || svc.id < 1 || svc.id > 0xffffffff) problems.push(`id: ${JSON.stringify(svc.id)} is not an integer from 1 to 4294967295`);
  problems.push(...frontendProblems(svc.frontend));
  if (!Array.isArray(svc.backends)) {
    problems.push('backends: must be an array');
    return problems;
  }
  if (svc.backends.length > LB_MAX_BACKENDS) problems.push(`backends: ${svc.backends.length} backends, more than the ${LB_MAX_BACKENDS} a frontend can have`);
  const seen = new Map<string, number>();
  svc.backends.forEach((b, i) => {
    const at = `backends[${i}]`;
    if (typeof b !== 'object' || b === null) {
      problems.push(`${at}: must be an object`);
      return;
    }
    const ip = ipProblem(b.ip, `${at}.ip`);
    if (ip) problems.push(ip);
    const port = portProblem(b.port, `${at}.port`);
    if (port) problems.push(port);
    const key = `${b.ip}:${b.port}`;
    const first = seen.get(key);
    if (first !== undefined) problems.push(`${at}: ${key} is backends[${first}] again`);
    else seen.set(key, i);
  });
  return problems;
}

/** Throws MEMBRANE_E_USAGE naming every problem of the spec (nothing has been written then). */
export function checkServiceSpec(svc: ServiceSpec): void {
  const problems = serviceSpecProblems(svc);
  if (problems.length === 0) return;
  const name = typeof svc.frontend === 'object' && svc.frontend !== null ? frontendName(svc.frontend) : 'a frontend';
  throw new MembraneError('MEMBRANE_E_USAGE', `service ${svc.id} (${name}): ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : ''}`, { details: problems });
}

/** Throws MEMBRANE_E_USAGE naming every problem of the frontend. */
export function checkFrontend(f: ServiceFrontend): void {
  const problems = frontendProblems(f);
  if (problems.length === 0) return;
  throw new MembraneError('MEMBRANE_E_USAGE', `frontend ${typeof f === 'object' && f !== null ? frontendName(f) : JSON.stringify(f)}: ${problems.join('; ')}`, { details: problems });
}

/** Frontends in listing order: address, then port, then protocol. */
export function compareFrontends(a: ServiceFrontend, b: ServiceFrontend): number {
  return ipv4ToNumber(a.ip) - ipv4ToNumber(b.ip) || a.port - b.port || a.protocol.localeCompare(b.protocol);
}
