/**
 * Writes through the Kubernetes API: create (POST), replace (PUT), patch
 * (PATCH: JSON patch, JSON merge patch, strategic merge patch for the core
 * kinds, server-side apply) and delete. Each one computes the object the
 * write asks for and hands it to the agent's applier — the one that serves
 * `membrane apply` — so validation, atomicity and enforcement are the same;
 * nothing here writes the store. What the apiserver checks before that is
 * checked here: the object exists (or not), the namespace in the body is the
 * path's, a resourceVersion precondition holds, who manages which field
 * (managedFields, apply conflicts). `dryRun=All` (kubectl diff) validates the
 * result exactly as an apply would and answers it without writing.
 */
import { MembraneError, ValidationError, loadDocuments, type ApplyRequest, type ApplyResponse, type DeleteRequest, type DeleteResponse } from '@membrane/api';
import { parseDocuments } from '../apply/validate.js';
import { withServerFields } from '../apply/server-fields.js';
import type { KubeCache, KubeObject } from './kube-cache.js';
import type { KubeResource } from './kube-resources.js';
import { PatchError, jsonMergePatch, jsonPatch, strategicMergePatch } from './kube-merge.js';
import { conflictCauses, conflictMessage, recordUpdate, serverSideApply } from './kube-fields.js';

export interface KubeWriteDeps {
  cache: KubeCache;
  /** The stored manifest (what was applied, without status). */
  stored(kind: string, namespace: string, name: string): Promise<Record<string, unknown> | undefined>;
  apply(req: ApplyRequest): Promise<ApplyResponse>;
  delete(req: DeleteRequest): Promise<DeleteResponse>;
}

export interface WriteTarget {
  resource: KubeResource;
  namespace?: string;
  name?: string;
}

/** A write's answer: the HTTP code and the object (or a Status). */
export interface WriteResult {
  code: number;
  body: unknown;
}

export class KubeStatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  status() {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details ? { details: this.details } : {}), code: this.code };
  }
}

type Obj = Record<string, unknown> & { metadata?: Record<string, unknown> };

const CRD_GROUPS = new Set(['cilium.io']);

/** `ciliumnetworkpolicies.cilium.io "rule1"`, as the apiserver names an object in messages. */
function qualified(r: KubeResource, name: string): string {
  return `${r.resource}${r.group ? `.${r.group}` : ''} "${name}"`;
}

function details(r: KubeResource, name: string, extra: Record<string, unknown> = {}) {
  return { name, ...(r.group ? { group: r.group } : {}), kind: r.resource, ...extra };
}

function notFound(r: KubeResource, name: string): KubeStatusError {
  return new KubeStatusError(404, 'NotFound', `${qualified(r, name)} not found`, details(r, name));
}

function apiVersionOf(r: KubeResource): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** The manifest to apply from an object as the API shows it: no status, no server-kept metadata. */
function manifestOf(o: Obj): Obj {
  const { status: _s, ...rest } = JSON.parse(JSON.stringify(o)) as Obj;
  const metadata = { ...(rest.metadata ?? {}) };
  for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'selfLink']) delete metadata[k];
  return { ...rest, metadata };
}

export class KubeWriter {
  constructor(private readonly d: KubeWriteDeps) {}

  async create(t: WriteTarget, body: unknown, q: URLSearchParams): Promise<WriteResult> {
    const r = t.resource;
    const o = this.ownObject(t, body, undefined);
    const name = String(o.metadata!['name'] ?? '');
    if (this.d.cache.get(r.kind, r.namespaced ? this.namespaceOf(t, o) : undefined, name) || (await this.stored(t, o))) {
      throw new KubeStatusError(409, 'AlreadyExists', `${qualified(r, name)} already exists`, details(r, name));
    }
    o.metadata!['managedFields'] = recordUpdate({ before: undefined, after: o, kind: r.kind, apiVersion: apiVersionOf(r), manager: manager(q, 'kubectl-create'), now: now() });
    return this.write(t, o, q, 201);
  }

  async replace(t: WriteTarget, body: unknown, q: URLSearchParams): Promise<WriteResult> {
    const r = t.resource;
    const o = this.ownObject(t, body, t.name);
    const live = this.d.cache.get(r.kind, r.namespaced ? t.namespace : undefined, t.name!);
    const before = await this.stored(t, o);
    if (!live || !before) throw notFound(r, t.name!);
    const want = o.metadata!['resourceVersion'];
    if (want !== undefined && want !== '' && String(want) !== live.metadata.resourceVersion) throw this.modified(r, t.name!);
    o.metadata!['managedFields'] = recordUpdate({ before, after: o, kind: r.kind, apiVersion: apiVersionOf(r), manager: manager(q, 'kubectl-replace'), now: now() });
    return this.write(t, o, q, 200);
  }

  async patch(t: WriteTarget, contentType: string, raw: string, q: URLSearchParams): Promise<WriteResult> {
    const r = t.resource;
    const type = contentType.split(';')[0]!.trim();
    const before = await this.d.stored(r.kind, r.namespaced ? t.namespace ?? 'default' : '', t.name!);
    if (type === 'application/apply-patch+yaml') return this.serverSideApply(t, raw, before, q);
    if (!before) throw notFound(r, t.name!);
    const patch = parseJson(raw);
    let after: unknown;
    try {
      if (type === 'application/json-patch+json') after = jsonPatch(before, patch);
      else if (type === 'application/merge-patch+json') after = jsonMergePatch(before, patch);
      else if (type === 'application/strategic-merge-patch+json' && !CRD_GROUPS.has(r.group)) after = strategicMergePatch(before, patch, r.kind);
      else throw new KubeStatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml${CRD_GROUPS.has(r.group) ? '' : ', application/strategic-merge-patch+json'}`);
    } catch (e) {
      if (e instanceof PatchError) throw new KubeStatusError(e.reason === 'Invalid' ? 422 : 400, e.reason, e.message);
      throw e;
    }
    const o = this.ownObject(t, after, t.name);
    o.metadata!['managedFields'] = recordUpdate({ before, after: o, kind: r.kind, apiVersion: apiVersionOf(r), manager: manager(q, 'kubectl-patch'), now: now() });
    return this.write(t, o, q, 200);
  }

  async delete(t: WriteTarget, q: URLSearchParams): Promise<WriteResult> {
    const r = t.resource;
    const ns = r.namespaced ? t.namespace ?? 'default' : undefined;
    const live = this.d.cache.get(r.kind, ns, t.name!);
    if (!live) throw notFound(r, t.name!);
    if (q.get('dryRun') === 'All') return { code: 200, body: live };
    const out = await this.d.delete({ refs: [{ kind: r.kind, ...(ns ? { namespace: ns } : {}), name: t.name! }] });
    if (out.results.every((x) => x.action === 'not found')) throw notFound(r, t.name!);
    await this.d.cache.settled();
    if (CRD_GROUPS.has(r.group)) return { code: 200, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: details(r, t.name!, { uid: live.metadata.uid }) } };
    return { code: 200, body: live };
  }

  private async serverSideApply(t: WriteTarget, raw: string, before: Obj | undefined, q: URLSearchParams): Promise<WriteResult> {
    const r = t.resource;
    const fieldManager = q.get('fieldManager');
    if (!fieldManager) throw new KubeStatusError(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch', { causes: [{ reason: 'FieldValueRequired', message: 'Required value: is required for apply patch', field: 'fieldManager' }] });
    const docs = loadDocuments(raw, 'apply patch');
    if (docs.length !== 1 || typeof docs[0]!.value !== 'object' || docs[0]!.value === null) throw new KubeStatusError(400, 'BadRequest', 'error decoding YAML: the apply patch must be one object');
    const applied = this.ownObject(t, docs[0]!.value, t.name);
    const force = q.get('force') === 'true';
    const out = serverSideApply({ live: before, applied, kind: r.kind, apiVersion: apiVersionOf(r), manager: fieldManager, force, now: now() });
    if (out.conflicts.length) {
      throw new KubeStatusError(409, 'Conflict', conflictMessage(out.conflicts, apiVersionOf(r)), { ...details(r, t.name!), causes: conflictCauses(out.conflicts, apiVersionOf(r)) });
    }
    return this.write(t, this.ownObject(t, out.object, t.name), q, before ? 200 : 201);
  }

  /** Validate (dry run) or apply through the agent; answer the object as the API now shows it. */
  private async write(t: WriteTarget, o: Obj, q: URLSearchParams, code: number): Promise<WriteResult> {
    const r = t.resource;
    const ns = r.namespaced ? this.namespaceOf(t, o) : undefined;
    const name = String(o.metadata!['name']);
    const doc = { source: 'kubectl', label: `${r.kind} ${ns ? `${ns}/` : ''}${name}`, value: manifestOf(o) };
    try {
      if (q.get('dryRun') === 'All') {
        parseDocuments([doc], ns);
        return { code, body: this.dryRunView(t, o, name) };
      }
      await this.d.apply({ documents: [doc], ...(ns ? { defaultNamespace: ns } : {}) });
    } catch (e) {
      throw kubeError(r, name, e);
    }
    await this.d.cache.settled();
    return { code, body: this.d.cache.get(r.kind, ns, name) ?? o };
  }

  private dryRunView(t: WriteTarget, o: Obj, name: string): unknown {
    const r = t.resource;
    const live = this.d.cache.get(r.kind, r.namespaced ? this.namespaceOf(t, o) : undefined, name);
    const { body } = withServerFields(manifestOf(o), live ? manifestOf(live) : undefined);
    const metadata = { ...body.metadata, ...(live ? { uid: live.metadata.uid, resourceVersion: live.metadata.resourceVersion, creationTimestamp: live.metadata.creationTimestamp } : { creationTimestamp: now() }) };
    return { apiVersion: apiVersionOf(r), kind: r.kind, ...body, metadata, ...(live && 'status' in live ? { status: live['status'] } : {}) };
  }

  private async stored(t: WriteTarget, o: Obj): Promise<Obj | undefined> {
    const r = t.resource;
    return this.d.stored(r.kind, r.namespaced ? this.namespaceOf(t, o) : '', String(o.metadata!['name']));
  }

  private namespaceOf(t: WriteTarget, o: Obj): string {
    return String(o.metadata?.['namespace'] ?? t.namespace ?? 'default');
  }

  private modified(r: KubeResource, name: string): KubeStatusError {
    return new KubeStatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r, name)}: the object has been modified; please apply your changes to the latest version and try again`, details(r, name));
  }

  /** The body as an object of this path's kind, namespace and name (the apiserver refuses a mismatch). */
  private ownObject(t: WriteTarget, body: unknown, name: string | undefined): Obj {
    const r = t.resource;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new KubeStatusError(400, 'BadRequest', `the body of the request must be a ${r.kind} object`);
    const o = JSON.parse(JSON.stringify(body)) as Obj;
    o['apiVersion'] ??= apiVersionOf(r);
    o['kind'] ??= r.kind;
    if (o['kind'] !== r.kind || o['apiVersion'] !== apiVersionOf(r)) {
      throw new KubeStatusError(400, 'BadRequest', `the API version in the data (${String(o['apiVersion'])}) does not match the expected API version (${apiVersionOf(r)}) or the kind (${String(o['kind'])}) is not ${r.kind}`);
    }
    const metadata = (o.metadata ??= {});
    if (typeof metadata !== 'object') throw new KubeStatusError(400, 'BadRequest', 'metadata must be an object');
    if (!metadata['name'] && typeof metadata['generateName'] === 'string' && name === undefined) {
      metadata['name'] = `${metadata['generateName']}${Math.random().toString(36).slice(2, 7)}`;
    }
    delete metadata['generateName'];
    if (name !== undefined) {
      if (metadata['name'] === undefined) metadata['name'] = name;
      else if (metadata['name'] !== name) throw new KubeStatusError(400, 'BadRequest', `the name of the object (${String(metadata['name'])}) does not match the name on the URL (${name})`);
    }
    if (!metadata['name']) throw new KubeStatusError(422, 'Invalid', `${r.kind} "" is invalid: metadata.name: Required value: name or generateName is required`, { causes: [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }] });
    if (r.namespaced && t.namespace !== undefined) {
      if (metadata['namespace'] === undefined) metadata['namespace'] = t.namespace;
      else if (metadata['namespace'] !== t.namespace) throw new KubeStatusError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    return o;
  }
}

function manager(q: URLSearchParams, fallback: string): string {
  return q.get('fieldManager') || fallback;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (e) {
    throw new KubeStatusError(400, 'BadRequest', `error decoding patch: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * The applier's refusal as the apiserver words it. A validation problem is
 * `Invalid` with one cause per field, each with the path and reason exactly
 * as `membrane apply` prints them.
 */
export function kubeError(r: KubeResource, name: string, e: unknown): Error {
  if (e instanceof KubeStatusError) return e;
  if (!(e instanceof MembraneError)) return e instanceof Error ? e : new Error(String(e));
  const problems = problemsOf(e);
  if (problems) {
    const causes = problems.map((p) => ({ reason: 'FieldValueInvalid', message: `Invalid value: ${p.reason}`, field: p.path }));
    const text = problems.map((p) => `${p.path ? `${p.path}: ` : ''}Invalid value: ${p.reason}`);
    const message = `${r.kind}${r.group ? `.${r.group}` : ''} "${name}" is invalid: ${text.length === 1 ? text[0] : `[${text.join(', ')}]`}`;
    return new KubeStatusError(422, 'Invalid', message, { ...details(r, name), causes });
  }
  if (e.code === 'MEMBRANE_E_NOT_FOUND') {
    const ns = /namespace "([^"]+)" not found/.exec(e.message);
    if (ns) return new KubeStatusError(404, 'NotFound', `namespaces "${ns[1]}" not found`, { name: ns[1], kind: 'namespaces' });
    return new KubeStatusError(404, 'NotFound', e.message, details(r, name));
  }
  if (e.code === 'MEMBRANE_E_CONFLICT') return new KubeStatusError(409, 'Conflict', e.message, details(r, name));
  if (e.code === 'MEMBRANE_E_IP_EXHAUSTED') return new KubeStatusError(422, 'Invalid', e.message, details(r, name));
  return new KubeStatusError(500, 'InternalError', `Internal error occurred: ${e.message}`, { causes: [{ message: e.message }] });
}

/** A validation error's field problems (one error, or several combined). */
function problemsOf(e: MembraneError): { path: string; reason: string }[] | undefined {
  if (e instanceof ValidationError) return e.problems;
  if (e.cause instanceof ValidationError && e.details.length) {
    // combineErrors keeps each problem as "<document>: <path>: <reason>"; the document is this object.
    return e.details.map((d) => {
      const rest = d.replace(/^.*?\)\: /, '');
      const m = /^([\w.[\]"-]+): (.*)$/.exec(rest);
      return m ? { path: m[1]!, reason: m[2]! } : { path: '', reason: rest };
    });
  }
  if (e.code === 'MEMBRANE_E_MANIFEST_INVALID' || e.code === 'MEMBRANE_E_POLICY_INVALID') return [{ path: '', reason: e.message.replace(/^.*?\)\: /, '') }];
  return undefined;
}
