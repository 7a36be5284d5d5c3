/**
 * The socket load balancer's programs (bpf/bpf_sock.c) as they sit in a pin
 * root: one pin per hook, `<pinRoot>/mbr_sock_<hook>`, naming the program
 * attached to the cgroup v2 root, and `<pin>_next` while one is being swapped
 * in (bpffs refuses names with a dot). A pin is how an agent knows its
 * programs from anybody else's, so removing one without detaching its
 * program would leave that program translating with nobody able to find
 * it: every remover of pins goes through detachPinnedSockPrograms.
 */
import { existsSync, rmSync } from 'node:fs';
import { resolveCgroup2, type Cgroup2Root } from './cgroup2.js';
import { BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP4_SENDMSG, type NativeBinding } from './native.js';

export type SockHook = 'connect4' | 'sendmsg4' | 'recvmsg4' | 'getpeername4';

/** The programs of bpf_sock.c: where each attaches and the name it is pinned under. */
export const SOCK_PROGRAMS: readonly { hook: SockHook; program: string; attachType: number; pin: string }[] = [
  { hook: 'connect4', program: 'sock4_connect', attachType: BPF_CGROUP_INET4_CONNECT, pin: 'mbr_sock_connect4' },
  { hook: 'sendmsg4', program: 'sock4_sendmsg', attachType: BPF_CGROUP_UDP4_SENDMSG, pin: 'mbr_sock_sendmsg4' },
  { hook: 'recvmsg4', program: 'sock4_recvmsg', attachType: BPF_CGROUP_UDP4_RECVMSG, pin: 'mbr_sock_recvmsg4' },
  { hook: 'getpeername4', program: 'sock4_getpeer', attachType: BPF_CGROUP_INET4_GETPEERNAME, pin: 'mbr_sock_getpeername4' },
];

/** The suffix of a program's pin while it is being swapped in. */
export const SOCK_NEXT_SUFFIX = '_next';

/** A program pinned under a pin root (attached or not). */
export interface PinnedSockProgram {
  hook: SockHook;
  attachType: number;
  pin: string;
  progId: number;
}

/** Every pin path a pin root may hold for the socket load balancer's programs. */
export function sockProgramPins(pinRoot: string): string[] {
  return SOCK_PROGRAMS.flatMap((p) => [`${pinRoot}/${p.pin}`, `${pinRoot}/${p.pin}${SOCK_NEXT_SUFFIX}`]);
}

/** The programs pinned under pinRoot, each with an fd the caller closes. */
export function openPinnedSockPrograms(nb: NativeBinding, pinRoot: string): (PinnedSockProgram & { fd: number })[] {
  const out: (PinnedSockProgram & { fd: number })[] = [];
  for (const p of SOCK_PROGRAMS) {
    for (const pin of [`${pinRoot}/${p.pin}`, `${pinRoot}/${p.pin}${SOCK_NEXT_SUFFIX}`]) {
      if (!existsSync(pin)) continue;
      const fd = nb.objGet(pin);
      try {
        out.push({ hook: p.hook, attachType: p.attachType, pin, progId: nb.progInfo(fd).id, fd });
      } catch (e) {
        nb.closeFd(fd);
        throw e;
      }
    }
  }
  return out;
}

export interface DetachReport {
  cgroup: Cgroup2Root;
  /** Program ids detached from the cgroup. */
  detached: number[];
  /** Pins removed. */
  unpinned: string[];
  /** What failed, one line each (the pin is kept then, so a later try finds the program). */
  errors: string[];
}

/**
 * Detaches each program pinned under pinRoot from the cgroup (default: the
 * root of the cgroup v2 hierarchy, where ServiceDatapath attaches) and
 * removes its pin. A program that is not attached there only loses its pin.
 */
export function detachPinnedSockPrograms(nb: NativeBinding, pinRoot: string, cgroupPath?: string): DetachReport {
  const cgroup = resolveCgroup2(nb, cgroupPath);
  const report: DetachReport = { cgroup, detached: [], unpinned: [], errors: [] };
  for (const p of openPinnedSockPrograms(nb, pinRoot)) {
    try {
      if (nb.cgroupDetach(p.fd, cgroup.path, p.attachType)) report.detached.push(p.progId);
      rmSync(p.pin, { force: true });
      report.unpinned.push(p.pin);
    } catch (e) {
      report.errors.push(`${p.pin}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      nb.closeFd(p.fd);
    }
  }
  return report;
}
