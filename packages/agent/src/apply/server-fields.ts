/**
 * The metadata the server owns. A manifest may carry what `get -o yaml`
 * printed (resourceVersion, creationTimestamp, uid, selfLink): the store
 * keeps its own and never the client's copy, so re-applying a printed
 * object is `unchanged`. `generation` counts changes of everything but
 * metadata and status (1 at creation), as the apiserver counts it.
 * `managedFields` comes from the Kubernetes API's writes (who set which
 * field); a write that brings none (membrane apply) keeps the object's.
 */
import { canonicalJSON } from '@membrane/policy';

const CLIENT_COPIES = ['resourceVersion', 'creationTimestamp', 'selfLink', 'uid', 'generation'];

type Body = { metadata?: Record<string, unknown>; [k: string]: unknown };

function content(b: Body): string {
  const { metadata: _m, status: _s, ...rest } = b;
  return canonicalJSON(rest);
}

/** The body to store for a manifest, given what is stored; `same` when nothing would change. */
export function withServerFields(manifest: unknown, previous: unknown): { body: Body; same: boolean } {
  const body = JSON.parse(JSON.stringify(manifest)) as Body;
  const meta = (body.metadata ??= {});
  for (const k of CLIENT_COPIES) delete meta[k];
  const prev = previous as Body | undefined;
  const prevMeta = prev?.metadata ?? {};
  if (meta['managedFields'] === undefined && prevMeta['managedFields'] !== undefined) meta['managedFields'] = prevMeta['managedFields'];
  const prevGeneration = typeof prevMeta['generation'] === 'number' ? prevMeta['generation'] : 1;
  meta['generation'] = prev === undefined ? 1 : content(prev) === content(body) ? prevGeneration : prevGeneration + 1;
  if (prev !== undefined && prevMeta['generation'] === undefined) {
    // Stored before generations were kept: compare without it, so an unchanged apply stays unchanged.
    const { generation: _g, ...m } = meta;
    return { body, same: canonicalJSON({ ...body, metadata: m }) === canonicalJSON(prev) };
  }
  return { body, same: prev !== undefined && canonicalJSON(body) === canonicalJSON(prev) };
}
