/**
 * Repository: the policies in force, by policy key, translated to Rules.
 * Changes are all-or-nothing: a batch is fully translated before anything in
 * the repository changes, so an invalid document leaves the previous state.
 */
import { isPlainObject, parseManifest, type DocumentRef, type PolicyManifest } from '@membrane/api';
import type { PolicyRef, Rule } from './rule.js';
import { policyKey } from './rule.js';
import { translateCiliumPolicy } from './translate-cilium.js';
import { translateNetworkPolicy } from './translate-k8s.js';

export interface TranslatedPolicy {
  ref: PolicyRef;
  manifest: PolicyManifest;
  rules: Rule[];
  /** Canonical JSON of the manifest, to recognise a re-apply of the same object. */
  fingerprint: string;
}

export function translatePolicy(manifest: PolicyManifest, ref: DocumentRef): TranslatedPolicy {
  const rules = manifest.kind === 'NetworkPolicy' ? translateNetworkPolicy(manifest, ref) : translateCiliumPolicy(manifest, ref);
  const pref: PolicyRef = {
    kind: manifest.kind,
    name: manifest.metadata.name,
    ...(manifest.kind !== 'CiliumClusterwideNetworkPolicy' ? { namespace: manifest.metadata.namespace ?? 'default' } : {}),
  };
  return { ref: pref, manifest, rules, fingerprint: canonicalJSON({ kind: manifest.kind, metadata: { name: manifest.metadata.name, namespace: manifest.metadata.namespace }, spec: (manifest as { spec?: unknown }).spec, specs: (manifest as { specs?: unknown }).specs }) };
}

/** Parse and translate one document (a value already loaded from YAML). */
export function parsePolicyDocument(value: unknown, ref: DocumentRef, defaultNamespace?: string): TranslatedPolicy {
  const manifest = parseManifest(value, ref, {
    kinds: ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'],
    ...(defaultNamespace ? { defaultNamespace } : {}),
  }) as PolicyManifest;
  return translatePolicy(manifest, { ...ref, object: `${manifest.kind} ${manifest.metadata.namespace ? manifest.metadata.namespace + '/' : ''}${manifest.metadata.name}` });
}

export function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(',')}]`;
  if (isPlainObject(v)) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export interface ApplyResult {
  created: PolicyRef[];
  configured: PolicyRef[];
  unchanged: PolicyRef[];
}

export class Repository {
  private readonly policies = new Map<string, TranslatedPolicy>();
  private rulesCache: Rule[] | undefined;
  revision = 0;

  /** Replace or add every policy of the batch at once. Duplicate names in one batch are an error. */
  apply(batch: readonly TranslatedPolicy[]): ApplyResult {
    const seen = new Set<string>();
    for (const p of batch) {
      const k = policyKey(p.ref);
      if (seen.has(k)) throw new Error(`${p.ref.kind} ${p.ref.namespace ? p.ref.namespace + '/' : ''}${p.ref.name} appears twice in one apply`);
      seen.add(k);
    }
    const result: ApplyResult = { created: [], configured: [], unchanged: [] };
    for (const p of batch) {
      const k = policyKey(p.ref);
      const old = this.policies.get(k);
      if (old && old.fingerprint === p.fingerprint) {
        result.unchanged.push(p.ref);
        continue;
      }
      (old ? result.configured : result.created).push(p.ref);
      this.policies.set(k, p);
    }
    if (result.created.length + result.configured.length > 0) this.bump();
    return result;
  }

  delete(refs: readonly PolicyRef[]): PolicyRef[] {
    const gone = refs.filter((r) => this.policies.delete(policyKey(r)));
    if (gone.length > 0) this.bump();
    return gone;
  }

  /** An independent copy at the same revision: change it to preview a batch, keep it to commit. */
  clone(): Repository {
    const c = new Repository();
    for (const [k, p] of this.policies) c.policies.set(k, p);
    c.revision = this.revision;
    return c;
  }

  get(ref: PolicyRef): TranslatedPolicy | undefined {
    return this.policies.get(policyKey(ref));
  }

  list(): TranslatedPolicy[] {
    return [...this.policies.values()];
  }

  rules(): Rule[] {
    this.rulesCache ??= this.list().flatMap((p) => p.rules);
    return this.rulesCache;
  }

  private bump(): void {
    this.revision++;
    this.rulesCache = undefined;
  }
}
