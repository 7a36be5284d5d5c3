/** `membrane endpoint list` and `identity list`: what the kernel enforces, per endpoint and per identity. */
import type { EndpointInfo, IdentityInfo } from '@membrane/api';
import type { EndpointManager } from '@membrane/endpoint';
import type { PodManager } from '../pods/pod-manager.js';

export function endpointList(pods: PodManager, endpoints: EndpointManager, inKernel: (ifindex: number) => boolean): EndpointInfo[] {
  return pods.list().map((rt) => {
    const identity = endpoints.identityOf(rt.state.epId);
    return {
      id: rt.state.epId,
      pod: rt.state.name,
      namespace: rt.state.namespace,
      identity: identity?.id ?? 0,
      labels: identity?.labels?.toStrings() ?? [],
      ipv4: rt.state.ip,
      policyEnforcement: endpoints.enforcement(rt.state.epId),
      state: inKernel(rt.ifindex) ? (rt.state.phase === 'Running' ? 'ready' : rt.state.phase.toLowerCase()) : 'not-ready',
      hostInterface: rt.hostIf,
    };
  });
}

export function identityList(endpoints: EndpointManager): IdentityInfo[] {
  const counts = endpoints.endpointsPerIdentity();
  return endpoints.identities.list().map((i) => ({ id: i.id, labels: i.labels.toStrings(), endpoints: counts.get(i.id) ?? 0 }));
}
