/**
 * The Kubernetes resources Membrane serves, once, for discovery (aggregated
 * v2 and the legacy lists) and for routing: group, version, kind, plural,
 * short names, verbs, categories and subresources, as the apiserver
 * announces them.
 */
export interface KubeResource {
  group: string;
  version: string;
  kind: string;
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  verbs: string[];
  categories: string[];
  subresources: { name: string; kind: string; verbs: string[] }[];
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const R = ['get', 'list', 'watch'];

export const RESOURCES: KubeResource[] = [
  { group: '', version: 'v1', kind: 'Namespace', resource: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], categories: [], subresources: [{ name: 'status', kind: 'Namespace', verbs: ['get', 'patch', 'update'] }] },
  {
    group: '', version: 'v1', kind: 'Pod', resource: 'pods', singular: 'pod', namespaced: true, shortNames: ['po'], verbs: RW, categories: ['all'],
    subresources: [
      { name: 'exec', kind: 'PodExecOptions', verbs: ['create', 'get'] },
      { name: 'log', kind: 'Pod', verbs: ['get'] },
      { name: 'status', kind: 'Pod', verbs: ['get', 'patch', 'update'] },
    ],
  },
  { group: '', version: 'v1', kind: 'Service', resource: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], verbs: RW, categories: ['all'], subresources: [{ name: 'status', kind: 'Service', verbs: ['get', 'patch', 'update'] }] },
  { group: '', version: 'v1', kind: 'ServiceAccount', resource: 'serviceaccounts', singular: 'serviceaccount', namespaced: true, shortNames: ['sa'], verbs: RW, categories: [], subresources: [] },
  { group: '', version: 'v1', kind: 'Event', resource: 'events', singular: 'event', namespaced: true, shortNames: ['ev'], verbs: R, categories: [], subresources: [] },
  { group: 'apps', version: 'v1', kind: 'Deployment', resource: 'deployments', singular: 'deployment', namespaced: true, shortNames: ['deploy'], verbs: RW, categories: ['all'], subresources: [{ name: 'status', kind: 'Deployment', verbs: ['get', 'patch', 'update'] }] },
  { group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', resource: 'networkpolicies', singular: 'networkpolicy', namespaced: true, shortNames: ['netpol'], verbs: RW, categories: [], subresources: [] },
  { group: 'cilium.io', version: 'v2', kind: 'CiliumNetworkPolicy', resource: 'ciliumnetworkpolicies', singular: 'ciliumnetworkpolicy', namespaced: true, shortNames: ['cnp', 'ciliumnp'], verbs: RW, categories: ['cilium', 'ciliumpolicy'], subresources: [{ name: 'status', kind: 'CiliumNetworkPolicy', verbs: ['get', 'patch', 'update'] }] },
  { group: 'cilium.io', version: 'v2', kind: 'CiliumClusterwideNetworkPolicy', resource: 'ciliumclusterwidenetworkpolicies', singular: 'ciliumclusterwidenetworkpolicy', namespaced: false, shortNames: ['ccnp'], verbs: RW, categories: ['cilium', 'ciliumpolicy'], subresources: [{ name: 'status', kind: 'CiliumClusterwideNetworkPolicy', verbs: ['get', 'patch', 'update'] }] },
];

/** The group versions served, core first. */
export function groupVersions(): { group: string; version: string }[] {
  const seen = new Map<string, { group: string; version: string }>();
  for (const r of RESOURCES) seen.set(`${r.group}/${r.version}`, { group: r.group, version: r.version });
  return [...seen.values()];
}

export const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

function aggregatedResource(r: KubeResource) {
  return {
    resource: r.resource,
    responseKind: { group: r.group, version: r.version, kind: r.kind },
    scope: r.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: r.singular,
    verbs: r.verbs,
    ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    ...(r.categories.length ? { categories: r.categories } : {}),
    ...(r.subresources.length ? { subresources: r.subresources.map((s) => ({ subresource: s.name, responseKind: { group: r.group, version: r.version, kind: s.kind }, verbs: s.verbs })) } : {}),
  };
}

/** Aggregated discovery (apidiscovery.k8s.io/v2) of the core group (`/api`) or the named groups (`/apis`). */
export function aggregatedDiscovery(core: boolean) {
  const groups = [...new Set(RESOURCES.filter((r) => (r.group === '') === core).map((r) => r.group))];
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: 'apidiscovery.k8s.io/v2',
    metadata: {},
    items: groups.map((g) => ({
      metadata: { name: g, creationTimestamp: null },
      versions: groupVersions()
        .filter((gv) => gv.group === g)
        .map((gv) => ({ version: gv.version, resources: RESOURCES.filter((r) => r.group === g && r.version === gv.version).map(aggregatedResource), freshness: 'Current' })),
    })),
  };
}

/** Legacy discovery: the group-version's APIResourceList. */
export function resourceList(group: string, version: string) {
  const list = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (list.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: list.flatMap((r) => [
      { name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs, ...(r.shortNames.length ? { shortNames: r.shortNames } : {}), ...(r.categories.length ? { categories: r.categories } : {}) },
      ...r.subresources.map((s) => ({ name: `${r.resource}/${s.name}`, singularName: '', namespaced: r.namespaced, kind: s.kind, verbs: s.verbs })),
    ]),
  };
}

export function groupList() {
  const groups = [...new Set(RESOURCES.filter((r) => r.group !== '').map((r) => r.group))];
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups.map((g) => {
      const versions = groupVersions().filter((gv) => gv.group === g).map((gv) => ({ groupVersion: `${g}/${gv.version}`, version: gv.version }));
      return { name: g, versions, preferredVersion: versions[0] };
    }),
  };
}
