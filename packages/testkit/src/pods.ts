/**
 * Pods for privileged tests, plumbed by the same code as the agent's
 * (@membrane/datapath PodNetwork, design.md section 3), under names that
 * carry the run: links `mbr<pid base 36>-…` (≤ 15 characters), namespaces
 * `mbrt<pid>-<id>`. This is the tests' form of it: the network's router link
 * and every pod's resources are registered in the Cleanup the test passes,
 * on the line after each is made.
 */
import { PodNetwork as DatapathPodNetwork, defaultRouterIP, type Cleanup, type Pod, type PodNetworkNames } from '@membrane/datapath';

import { POD_CIDR } from './safety.js';

export type { Pod } from '@membrane/datapath';

/** The router IP of the tests' pod CIDR (10.207.0.1). */
export const ROUTER_IP = defaultRouterIP(POD_CIDR);

/** The names one run (one process) uses; leak checks look for them. */
export interface RunNames extends PodNetworkNames {
  /** Every link of the run starts with this. */
  linkPrefix: string;
  /** Every namespace of the run starts with this. */
  netnsPrefix: string;
  /** Pin roots of the run start with this (under /sys/fs/bpf). */
  pinPrefix: string;
}

export function runNames(pid: number = process.pid): RunNames {
  return { linkPrefix: `mbr${pid.toString(36)}-`, netnsPrefix: `mbrt${pid}-`, pinPrefix: `/sys/fs/bpf/mbr-test-live-${pid}` };
}

export class PodNetwork {
  private constructor(
    readonly names: RunNames,
    /** The shared implementation, for what this thin form does not offer. */
    readonly net: DatapathPodNetwork,
  ) {}

  /**
   * The router link (the tests' pod CIDR), registered in `cleanup`. Refuses to
   * start when another link holds the router IP (another run or agent owns
   * the pod network).
   */
  static async create(cleanup: Cleanup, names: RunNames = runNames()): Promise<PodNetwork> {
    return new PodNetwork(names, await DatapathPodNetwork.open({ names, cleanup, cidr: POD_CIDR }));
  }

  get routerIf(): string {
    return this.net.routerIf;
  }

  /** A pod with `podIP`, its resources registered in `cleanup` (a scenario's own registry, say). */
  addPod(name: string, podIP: string, cleanup: Cleanup): Promise<Pod> {
    return this.net.addPod({ name, ip: podIP }, cleanup);
  }

  list(): Pod[] {
    return this.net.list();
  }
}
