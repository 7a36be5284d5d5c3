/**
 * Start-up: the policies the store holds, translated again by today's
 * engine. One that today's validation refuses (a newer Membrane is stricter)
 * is skipped and reported in `status`, so the agent still starts and
 * enforces every other policy.
 */
import { parseManifest, type PolicyManifest } from '@membrane/api';
import { Repository, translatePolicy, type TranslatedPolicy } from '@membrane/policy';
import type { StoreReader } from '../store/index.js';

export async function restorePolicies(store: StoreReader): Promise<{ repo: Repository; problems: string[] }> {
  const policies: TranslatedPolicy[] = [];
  const problems: string[] = [];
  for (const kind of ['CiliumClusterwideNetworkPolicy', 'CiliumNetworkPolicy', 'NetworkPolicy']) {
    for (const o of await store.list<PolicyManifest>(kind)) {
      const label = `${kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
      try {
        const m = parseManifest(o.body, { source: 'store', label }) as PolicyManifest;
        policies.push(translatePolicy(m, { source: 'store', label }));
      } catch (e) {
        problems.push(`stored ${label} is skipped (not enforced): ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  const repo = new Repository();
  repo.apply(policies);
  return { repo, problems };
}
