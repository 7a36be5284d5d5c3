/**
 * `/openapi/v3`: the root lists one document per group-version, each named
 * with a hash of its content (clients cache by it); a document declares the
 * paths of every kind with their operations, the query parameters the
 * apiserver takes — `fieldValidation` among them, which is how kubectl tells
 * that the server validates fields itself (without it kubectl's default
 * validation fails) — and a schema per kind marked with
 * `x-kubernetes-group-version-kind`. The schemas name the top-level fields;
 * the content is checked by the agent's own validation when written, so
 * spec is left open here rather than described twice.
 */
import { createHash } from 'node:crypto';
import { RESOURCES, groupVersions, type KubeResource } from './kube-resources.js';

const QUERY = ['dryRun', 'fieldManager', 'fieldValidation', 'pretty', 'labelSelector', 'fieldSelector', 'limit', 'continue', 'resourceVersion', 'resourceVersionMatch', 'watch', 'allowWatchBookmarks', 'sendInitialEvents', 'timeoutSeconds', 'propagationPolicy', 'gracePeriodSeconds', 'force'];

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function schemaName(r: KubeResource): string {
  return r.group ? `io.membrane.${r.group}.${r.version}.${r.kind}` : `io.k8s.api.core.${r.version}.${r.kind}`;
}

function gvk(r: KubeResource) {
  return { group: r.group, kind: r.kind, version: r.version };
}

function operation(r: KubeResource, verb: string, id: string, withBody: boolean) {
  const ref = { $ref: `#/components/schemas/${schemaName(r)}` };
  const content = { 'application/json': { schema: ref } };
  return {
    operationId: `${id}${r.kind}`,
    'x-kubernetes-action': verb,
    'x-kubernetes-group-version-kind': gvk(r),
    parameters: QUERY.map((name) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } })),
    ...(withBody ? { requestBody: { content: verb === 'patch' ? { 'application/json-patch+json': { schema: { type: 'object' } }, 'application/merge-patch+json': { schema: { type: 'object' } }, 'application/strategic-merge-patch+json': { schema: { type: 'object' } }, 'application/apply-patch+yaml': { schema: { type: 'object' } } } : content, required: true } } : {}),
    responses: { '200': { description: 'OK', content } },
  };
}

function paths(r: KubeResource) {
  const base = `/${gvPath(r.group, r.version)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.resource}`;
  const out: Record<string, unknown> = {};
  const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } };
  const nsParam = { name: 'namespace', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } };
  const common = r.namespaced ? [nsParam] : [];
  const writable = r.verbs.includes('create');
  out[base] = { parameters: common, get: operation(r, 'list', 'list', false), ...(writable ? { post: operation(r, 'post', 'create', true) } : {}) };
  out[`${base}/{name}`] = {
    parameters: [...common, nameParam],
    get: operation(r, 'get', 'read', false),
    ...(writable ? { put: operation(r, 'put', 'replace', true), patch: operation(r, 'patch', 'patch', true), delete: operation(r, 'delete', 'delete', false) } : {}),
  };
  return out;
}

function schema(r: KubeResource) {
  return {
    type: 'object',
    description: `${r.kind} (${r.group || 'core'}/${r.version}), as Membrane serves it.`,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      ...(r.kind === 'Event' ? {} : { status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } }),
    },
    'x-kubernetes-preserve-unknown-fields': true,
    'x-kubernetes-group-version-kind': [gvk(r)],
  };
}

/** The OpenAPI v3 document of one group-version, or undefined when none is served. */
export function openApiDocument(group: string, version: string) {
  const list = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (!list.length) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Membrane', version: `${group || 'core'}/${version}` },
    paths: Object.assign({}, ...list.map(paths)) as Record<string, unknown>,
    components: { schemas: Object.fromEntries(list.map((r) => [schemaName(r), schema(r)])) },
  };
}

const hashes = new Map<string, string>();

function hashOf(group: string, version: string): string {
  const k = `${group}/${version}`;
  let h = hashes.get(k);
  if (!h) hashes.set(k, (h = createHash('sha512').update(JSON.stringify(openApiDocument(group, version))).digest('hex').slice(0, 128).toUpperCase()));
  return h;
}

export function openApiRoot() {
  return {
    paths: Object.fromEntries(groupVersions().map((gv) => [gvPath(gv.group, gv.version), { serverRelativeURL: `/openapi/v3/${gvPath(gv.group, gv.version)}?hash=${hashOf(gv.group, gv.version)}` }])),
  };
}

/** `/openapi/v3/api/v1` or `/openapi/v3/apis/G/V` → the group-version. */
export function openApiTarget(path: string): { group: string; version: string } | undefined {
  const m = /^\/openapi\/v3\/api\/([^/]+)$/.exec(path);
  if (m) return { group: '', version: m[1]! };
  const n = /^\/openapi\/v3\/apis\/([^/]+)\/([^/]+)$/.exec(path);
  return n ? { group: n[1]!, version: n[2]! } : undefined;
}
