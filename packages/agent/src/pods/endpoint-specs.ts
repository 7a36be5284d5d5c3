/** A pod as the endpoint manager sees it: where it is, what its identity and named ports come from. */
import type { Pod } from '@membrane/api';
import type { EndpointSpec } from '@membrane/endpoint';
import { protoNumber, type NamedPort } from '@membrane/policy';
import type { PodRuntime } from './pod-runtime.js';

/** The pod's named container ports (`containers[].ports[].name`, TCP when no protocol is given). */
export function podNamedPorts(pod: Pod): NamedPort[] {
  const out: NamedPort[] = [];
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      if (p.name) out.push({ name: p.name, port: p.containerPort, proto: protoNumber(p.protocol ?? 'TCP')! });
    }
  }
  return out;
}

export function endpointSpec(rt: PodRuntime, namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>): EndpointSpec {
  return {
    name: `${rt.state.namespace}/${rt.state.name}`,
    epId: rt.state.epId,
    ifindex: rt.ifindex,
    ipv4: rt.state.ip,
    namespace: rt.state.namespace,
    podLabels: rt.manifest.metadata.labels ?? {},
    namespaceLabels: namespaceLabels.get(rt.state.namespace) ?? {},
    serviceAccount: rt.manifest.spec.serviceAccountName ?? 'default',
    namedPorts: podNamedPorts(rt.manifest),
  };
}
