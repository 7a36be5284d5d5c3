/**
 * `membrane down`: every pod stopped and taken down, every kernel object of
 * the agent removed (programs, pinned maps, the pod network, its own safety
 * routes). The objects stay in the store, so the next `up` brings them back.
 */
import { Datapath, ServiceDatapath, removeMembraneSafetyRoutes, type PodNetwork } from '@membrane/datapath';
import type { EndpointManager } from '@membrane/endpoint';
import type { PodManager } from './pods/pod-manager.js';
import type { Store } from './store/index.js';
import type { PodEtcFiles } from './dns/netns-resolv-conf.js';

export interface TeardownDeps {
  store: Store;
  pods: PodManager;
  endpoints: EndpointManager;
  datapath: Datapath;
  serviceDatapath: ServiceDatapath;
  podNet: PodNetwork;
  pinRoot: string;
  /** The ranges this agent put rails on. */
  ownRails: readonly string[];
  /** The pods' /etc files, removed for every pod namespace of the agent's names. */
  etc: PodEtcFiles;
  netnsPrefix: string;
}

export async function teardown(d: TeardownDeps): Promise<string[]> {
  const problems: string[] = [];
  for (const rt of d.pods.endpoints()) problems.push(...(await d.pods.destroy(rt)));
  for (const k of await d.store.list('Pod')) await d.store.deleteState(`pod/${k.namespace}/${k.name}`);
  await d.store.deleteState('identities');
  d.endpoints.close();
  d.datapath.close();
  d.serviceDatapath.close();
  try {
    ServiceDatapath.teardown(d.pinRoot);
  } catch (e) {
    problems.push(`service load balancer: ${e instanceof Error ? e.message : String(e)}`);
  }
  Datapath.unpinAll(d.pinRoot);
  await d.podNet.destroy().catch((e: unknown) => problems.push(e instanceof Error ? e.message : String(e)));
  d.etc.removeAll(d.netnsPrefix);
  await removeMembraneSafetyRoutes(d.ownRails).catch((e: unknown) => problems.push(e instanceof Error ? e.message : String(e)));
  return problems;
}
