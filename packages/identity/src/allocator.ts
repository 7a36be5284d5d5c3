/**
 * IdentityAllocator: label set → numeric identity, as Cilium allocates
 * security identities. Equal label sets share one identity; an identity
 * lives while something references it. Reserved identities are fixed;
 * cluster identities start at 256 and local CIDR identities at 2^24.
 * The state can be exported and restored, so a restarted agent gives every
 * label set the number it had (the datapath's maps still hold them).
 */
import {
  FIRST_CLUSTER_IDENTITY,
  FIRST_LOCAL_IDENTITY,
  LabelSet,
  cidrIdentityLabels,
  formatPrefix,
  parseLabel,
  identityOf,
  reservedIdentities,
  type Identity,
  type Prefix,
} from '@membrane/policy';

export interface IdentitySnapshot {
  /** id → label strings (`source:key=value`). */
  identities: { id: number; labels: string[] }[];
}

interface Slot {
  identity: Identity;
  refs: number;
}

export class IdentityAllocator {
  private readonly byLabels = new Map<string, Slot>();
  private readonly byId = new Map<number, Slot>();
  private nextCluster = FIRST_CLUSTER_IDENTITY;
  private nextLocal = FIRST_LOCAL_IDENTITY;
  /** Bumped on every allocation or release that changes the identity set. */
  revision = 0;

  constructor(snapshot?: IdentitySnapshot) {
    for (const r of reservedIdentities()) {
      const slot = { identity: r, refs: Infinity };
      this.byLabels.set(r.labels.toString(), slot);
      this.byId.set(r.id, slot);
    }
    for (const s of snapshot?.identities ?? []) {
      const labels = new LabelSet(s.labels.map(parseLabel));
      const identity = this.make(s.id, labels);
      const slot = { identity, refs: 0 };
      this.byLabels.set(labels.toString(), slot);
      this.byId.set(s.id, slot);
      if (s.id >= FIRST_LOCAL_IDENTITY) this.nextLocal = Math.max(this.nextLocal, s.id + 1);
      else this.nextCluster = Math.max(this.nextCluster, s.id + 1);
    }
  }

  private make(id: number, labels: LabelSet): Identity {
    return identityOf(id, labels);
  }

  /** The identity of a label set, allocating it if new; each call takes a reference. */
  allocate(labels: LabelSet): Identity {
    const key = labels.toString();
    let slot = this.byLabels.get(key);
    if (!slot) {
      const isCidr = labels.hasSource('cidr');
      const id = isCidr ? this.nextLocal++ : this.nextCluster++;
      if (!isCidr && id >= FIRST_LOCAL_IDENTITY) throw new Error('cluster identity space exhausted');
      slot = { identity: this.make(id, labels), refs: 0 };
      this.byLabels.set(key, slot);
      this.byId.set(id, slot);
      this.revision++;
    }
    slot.refs++;
    return slot.identity;
  }

  /** The CIDR identity of a prefix (labels `cidr:<prefix>` and `reserved:world`). */
  allocateCIDR(prefix: Prefix): Identity {
    return this.allocate(cidrIdentityLabels(formatPrefix(prefix)));
  }

  /** Drop one reference; the identity is freed when none is left. Returns true when freed. */
  release(id: number): boolean {
    const slot = this.byId.get(id);
    if (!slot || slot.refs === Infinity) return false;
    slot.refs--;
    if (slot.refs > 0) return false;
    this.byId.delete(id);
    this.byLabels.delete(slot.identity.labels.toString());
    this.revision++;
    return true;
  }

  /** An independent copy (same numbers, references and counters): plan on it, then keep it or drop it. */
  clone(): IdentityAllocator {
    const c = new IdentityAllocator();
    for (const [k, slot] of this.byLabels) {
      if (slot.refs === Infinity) continue;
      const copy = { identity: slot.identity, refs: slot.refs };
      c.byLabels.set(k, copy);
      c.byId.set(slot.identity.id, copy);
    }
    c.nextCluster = this.nextCluster;
    c.nextLocal = this.nextLocal;
    c.revision = this.revision;
    return c;
  }

  /**
   * Makes the references exactly what `wanted` says: each label set holds as
   * many references as it appears in `wanted` (allocated if new, keeping its
   * number otherwise), and every other non-reserved identity is freed. For an
   * owner that recomputes its whole demand each time (the endpoint manager):
   * a reference can then never leak, however often the same world is
   * computed again. Answers the identity of each wanted label set.
   */
  sync(wanted: Iterable<LabelSet>): Map<string, Identity> {
    const counts = new Map<string, { labels: LabelSet; n: number }>();
    for (const l of wanted) {
      const k = l.toString();
      const c = counts.get(k);
      if (c) c.n++;
      else counts.set(k, { labels: l, n: 1 });
    }
    const out = new Map<string, Identity>();
    for (const [k, c] of counts) {
      const id = this.allocate(c.labels);
      const slot = this.byLabels.get(k)!;
      if (slot.refs !== Infinity) slot.refs = c.n;
      out.set(k, id);
    }
    for (const [k, slot] of [...this.byLabels]) {
      if (slot.refs === Infinity || counts.has(k)) continue;
      this.byLabels.delete(k);
      this.byId.delete(slot.identity.id);
      this.revision++;
    }
    return out;
  }

  get(id: number): Identity | undefined {
    return this.byId.get(id)?.identity;
  }

  lookup(labels: LabelSet): Identity | undefined {
    return this.byLabels.get(labels.toString())?.identity;
  }

  /** Every live identity, reserved ones first, by number. */
  list(): Identity[] {
    return [...this.byId.values()].map((s) => s.identity).sort((a, b) => a.id - b.id);
  }

  /** Reference count of an identity (Infinity for reserved ones, 0 if unknown). */
  refs(id: number): number {
    return this.byId.get(id)?.refs ?? 0;
  }

  snapshot(): IdentitySnapshot {
    return {
      identities: [...this.byId.values()]
        .filter((s) => s.refs !== Infinity)
        .map((s) => ({ id: s.identity.id, labels: s.identity.labels.toStrings() }))
        .sort((a, b) => a.id - b.id),
    };
  }
}
