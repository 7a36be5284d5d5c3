/**
 * The first step of every change: every document parsed and validated, and
 * every reference checked, before anything is planned. All problems are
 * collected and reported together (one error, every problem in its details).
 */
import {
  MembraneError,
  ValidationError,
  combineErrors,
  isPolicyManifest,
  objectName,
  parseManifest,
  type ApiDocument,
  type Manifest,
} from '@membrane/api';
import { translatePolicy, type TranslatedPolicy } from '@membrane/policy';

export const CLUSTER_SCOPED = new Set(['Namespace', 'CiliumClusterwideNetworkPolicy']);

export interface ParsedDocument {
  manifest: Manifest;
  policy?: TranslatedPolicy;
  /** `file: document N` for messages. */
  where: string;
  kind: string;
  /** '' for cluster-scoped kinds. */
  namespace: string;
  name: string;
}

export function objectKeyOf(kind: string, namespace: string | undefined, name: string): { kind: string; namespace: string; name: string } {
  return { kind, namespace: CLUSTER_SCOPED.has(kind) ? '' : namespace ?? 'default', name };
}

export function describeObject(kind: string, namespace: string, name: string): string {
  return `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
}

/** Parse and validate every document; throws one error carrying every problem found. */
export function parseDocuments(documents: readonly ApiDocument[], defaultNamespace?: string): ParsedDocument[] {
  const out: ParsedDocument[] = [];
  const errors: MembraneError[] = [];
  const seen = new Set<string>();
  for (const d of documents) {
    const ref = { source: d.source, label: d.label };
    try {
      const m = parseManifest(d.value, ref, defaultNamespace ? { defaultNamespace } : {});
      const k = objectKeyOf(m.kind, m.metadata.namespace, m.metadata.name);
      const id = `${k.kind}/${k.namespace}/${k.name}`;
      if (seen.has(id)) throw new ValidationError('MEMBRANE_E_MANIFEST_INVALID', { ...ref, object: objectName(m.kind, m.metadata) }, [{ path: 'metadata.name', reason: 'the same object appears twice in this apply' }]);
      seen.add(id);
      const policy = isPolicyManifest(m) ? translatePolicy(m, { ...ref, object: objectName(m.kind, m.metadata) }) : undefined;
      out.push({ manifest: m, ...(policy ? { policy } : {}), where: `${d.source}: ${d.label}`, ...k });
    } catch (e) {
      if (e instanceof MembraneError) errors.push(e);
      else throw e;
    }
  }
  if (errors.length) throw combineErrors(errors);
  return out;
}
