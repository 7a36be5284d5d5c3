/**
 * Manifests: dispatch a document on apiVersion and kind to its schema and
 * return the typed object, or throw a ValidationError naming the document,
 * the field and the reason.
 */
import { ciliumNetworkPolicy, type CiliumNetworkPolicy } from './cilium-network-policy.js';
import { ValidationError, type DocumentRef, type ErrorCode } from './errors.js';
import { networkPolicy, type NetworkPolicy } from './network-policy.js';
import { deploymentSchema, namespaceSchema, podSchema, serviceAccountSchema, serviceSchema, type Deployment, type Namespace, type Pod, type Service, type ServiceAccount } from './workloads.js';
import { Problems, isPlainObject, typeName, type Schema } from './schema.js';
import { loadDocuments, type LoadOptions } from './yaml-documents.js';

export type PolicyManifest = CiliumNetworkPolicy | NetworkPolicy;
export type WorkloadManifest = Namespace | ServiceAccount | Pod | Deployment | Service;
export type Manifest = PolicyManifest | WorkloadManifest;

interface KindInfo {
  apiVersion: string;
  schema: Schema<Manifest>;
  namespaced: boolean;
  code: ErrorCode;
}

const KINDS: Record<string, KindInfo> = {
  CiliumNetworkPolicy: {
    apiVersion: 'cilium.io/v2',
    schema: ciliumNetworkPolicy('CiliumNetworkPolicy'),
    namespaced: true,
    code: 'MEMBRANE_E_POLICY_INVALID',
  },
  CiliumClusterwideNetworkPolicy: {
    apiVersion: 'cilium.io/v2',
    schema: ciliumNetworkPolicy('CiliumClusterwideNetworkPolicy'),
    namespaced: false,
    code: 'MEMBRANE_E_POLICY_INVALID',
  },
  NetworkPolicy: {
    apiVersion: 'networking.k8s.io/v1',
    schema: networkPolicy,
    namespaced: true,
    code: 'MEMBRANE_E_POLICY_INVALID',
  },
  Namespace: { apiVersion: 'v1', schema: namespaceSchema as Schema<Manifest>, namespaced: false, code: 'MEMBRANE_E_MANIFEST_INVALID' },
  ServiceAccount: { apiVersion: 'v1', schema: serviceAccountSchema as Schema<Manifest>, namespaced: true, code: 'MEMBRANE_E_MANIFEST_INVALID' },
  Pod: { apiVersion: 'v1', schema: podSchema as Schema<Manifest>, namespaced: true, code: 'MEMBRANE_E_MANIFEST_INVALID' },
  Deployment: { apiVersion: 'apps/v1', schema: deploymentSchema as Schema<Manifest>, namespaced: true, code: 'MEMBRANE_E_MANIFEST_INVALID' },
  Service: { apiVersion: 'v1', schema: serviceSchema as Schema<Manifest>, namespaced: true, code: 'MEMBRANE_E_MANIFEST_INVALID' },
};

/** Every kind `membrane apply` accepts, in the order objects are applied (namespaces first). */
export const APPLY_ORDER = ['Namespace', 'ServiceAccount', 'CiliumClusterwideNetworkPolicy', 'CiliumNetworkPolicy', 'NetworkPolicy', 'Service', 'Deployment', 'Pod'] as const;

export function isNamespacedKind(kind: string): boolean {
  return KINDS[kind]?.namespaced ?? true;
}

export const POLICY_KINDS = ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'] as const;

export function isPolicyManifest(m: Manifest): m is PolicyManifest {
  return (POLICY_KINDS as readonly string[]).includes(m.kind);
}

/** `Kind namespace/name` or `Kind name` for messages. */
export function objectName(kind: string, meta: { name?: unknown; namespace?: unknown } | undefined, defaultNamespace?: string): string {
  const name = typeof meta?.name === 'string' ? meta.name : '?';
  const ns = typeof meta?.namespace === 'string' ? meta.namespace : defaultNamespace;
  return ns ? `${kind} ${ns}/${name}` : `${kind} ${name}`;
}

export interface ParseOptions {
  /** Namespace for namespaced objects that name none (kubectl's current namespace). */
  defaultNamespace?: string;
  /** Kinds accepted here; others are rejected with the list. */
  kinds?: readonly string[];
}

export function parseManifest(value: unknown, ref: DocumentRef, opts: ParseOptions = {}): Manifest {
  const accepted = opts.kinds ?? Object.keys(KINDS);
  const fail = (code: ErrorCode, path: string, reason: string): never => {
    throw new ValidationError(code, ref, [{ path, reason }]);
  };
  if (!isPlainObject(value)) fail('MEMBRANE_E_MANIFEST_INVALID', '', `a manifest must be a mapping, not ${typeName(value)}`);
  const doc = value as Record<string, unknown>;
  const kind = doc['kind'];
  const apiVersion = doc['apiVersion'];
  if (kind === undefined || kind === null || kind === '') fail('MEMBRANE_E_MANIFEST_INVALID', 'kind', 'is required');
  if (typeof kind !== 'string') fail('MEMBRANE_E_MANIFEST_INVALID', 'kind', `must be a string, not ${typeName(kind)}`);
  const info = KINDS[kind as string];
  if (!info || !accepted.includes(kind as string)) {
    fail('MEMBRANE_E_MANIFEST_INVALID', 'kind', `"${kind as string}" is not a supported kind (supported: ${accepted.join(', ')})`);
  }
  const meta = isPlainObject(doc['metadata']) ? doc['metadata'] : undefined;
  const withObject: DocumentRef = {
    ...ref,
    object: objectName(kind as string, meta, info!.namespaced ? opts.defaultNamespace ?? 'default' : undefined),
  };
  if (apiVersion === undefined || apiVersion === null) {
    throw new ValidationError(info!.code, withObject, [{ path: 'apiVersion', reason: `is required (use ${info!.apiVersion})` }]);
  }
  if (apiVersion !== info!.apiVersion) {
    throw new ValidationError(info!.code, withObject, [
      { path: 'apiVersion', reason: `"${String(apiVersion)}" does not serve kind ${kind as string} (use ${info!.apiVersion})` },
    ]);
  }
  const problems = new Problems();
  const parsed = info!.schema(doc, '', problems);
  if (!problems.ok || !parsed) {
    throw new ValidationError(info!.code, withObject, problems.list.length ? problems.list : [{ path: '', reason: 'invalid' }]);
  }
  if (info!.namespaced) {
    parsed.metadata.namespace ??= opts.defaultNamespace ?? 'default';
  } else if (parsed.metadata.namespace !== undefined) {
    throw new ValidationError(info!.code, withObject, [
      { path: 'metadata.namespace', reason: `a ${kind as string} is cluster-scoped and takes no namespace` },
    ]);
  }
  return parsed;
}

/** Parse every document of a YAML/JSON text. Fails on the first invalid document; returns nothing partial. */
export function parseManifests(text: string, source: string, opts: ParseOptions & LoadOptions = {}): { ref: DocumentRef; manifest: Manifest }[] {
  return loadDocuments(text, source, opts).map(({ ref, value }) => {
    const manifest = parseManifest(value, ref, opts);
    return { ref: { ...ref, object: objectName(manifest.kind, manifest.metadata) }, manifest };
  });
}
