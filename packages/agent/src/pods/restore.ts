/**
 * Start-up: the pods the store holds are taken over as a previous agent
 * left them (same namespace, veth, address and processes: adopted, not
 * restarted). A pod whose plumbing is gone or damaged is made again; a pod
 * the store holds no longer (its agent died half-way through a change) is
 * removed; a stored pod that today's validation refuses is reported and
 * left alone.
 */
import { parseManifest, type Pod } from '@membrane/api';
import type { PodNet } from '../ports.js';
import type { StoreWriter } from '../store/index.js';
import { ownerOf } from '../controllers/deployment-controller.js';
import type { PodManager } from './pod-manager.js';
import type { PodRuntime } from './pod-runtime.js';
import type { PodState } from './pod-state.js';
import type { PodEtcFiles } from '../dns/netns-resolv-conf.js';

export interface RestoreResult {
  /** Pods made again (their containers start once their policy is in force). */
  recreated: PodRuntime[];
  problems: string[];
}

export async function restorePods(store: StoreWriter, pods: PodManager, net: PodNet, log: (m: string) => void, etc?: PodEtcFiles): Promise<RestoreResult> {
  const recreated: PodRuntime[] = [];
  const problems: string[] = [];
  const known = new Set<string>();
  for (const o of await store.list<Pod>('Pod')) {
    let pod: Pod;
    try {
      pod = parseManifest(o.body, { source: 'store', label: `Pod ${o.namespace}/${o.name}` }) as Pod;
    } catch (e) {
      problems.push(`stored Pod ${o.namespace}/${o.name} is skipped: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    const key = `pod/${o.namespace}/${o.name}`;
    const s = await store.getState<PodState>(key);
    if (s) {
      known.add(s.podId);
      try {
        await pods.adopt(pod, s);
        continue;
      } catch (e) {
        log(`pod ${o.namespace}/${o.name}: cannot adopt (${e instanceof Error ? e.message : String(e)}); making it again`);
        await net.removePod(s.podId).catch(() => undefined);
      }
    }
    const rt = await pods.prepare(pod, { ...(ownerOf(pod) ? { owner: ownerOf(pod)! } : {}), ...(s?.template ? { template: s.template } : {}) });
    known.add(rt.state.podId);
    pods.attach(rt);
    pods.activate(rt);
    await store.setState(key, rt.state);
    recreated.push(rt);
  }
  await store.setState('nextEndpointId', pods.nextEpId);
  for (const d of await net.discover()) {
    if (known.has(d.id)) continue;
    log(`removing pod plumbing ${d.netns} that no stored pod owns`);
    etc?.remove(d.netns);
    await net.removePod(d.id).catch((e: unknown) => problems.push(`leftover pod ${d.id}: ${e instanceof Error ? e.message : String(e)}`));
  }
  return { recreated, problems };
}
