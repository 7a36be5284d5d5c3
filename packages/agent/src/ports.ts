/**
 * The small interfaces through which the agent's parts reach the kernel and
 * the host: the real implementations are the datapath package's Datapath
 * and PodNetwork and the container processes; unit tests pass fakes.
 */
import type { DiscoveredPod, Pod as NetPod } from '@membrane/datapath';
import type { EndpointDatapath } from '@membrane/endpoint';
import type { ProcessRef, StartSpec, Started } from './workloads/container-process.js';

/** What the agent does with the endpoint programs, on top of regeneration. */
export interface AgentDatapath extends EndpointDatapath {
  attach(ifindex: number, name?: string): void;
  detach(ifindex: number): void;
  lostEvents(): bigint;
}

/** The pod network: a namespace, a veth pair and routes per pod. */
export interface PodNet {
  readonly routerIP: string;
  readonly cidr: string;
  addPod(spec: { id: string; name: string }): Promise<NetPod>;
  adoptPod(id: string, expect: { name?: string; ip?: string }): Promise<NetPod>;
  removePod(id: string): Promise<void>;
  discover(): Promise<DiscoveredPod[]>;
}

/** Containers as host processes. */
export interface ProcessRunner {
  resolveExecutable(cmd: string, pathEnv: string, cwd?: string): { path: string } | { error: string; code: 126 | 127 };
  start(spec: StartSpec): Started;
  stop(ref: ProcessRef, graceSeconds: number): Promise<void>;
  isAlive(ref: ProcessRef): boolean;
}
