/**
 * A preview drawn on the map: per edge, how many of its flows the edited
 * policy would turn from denied to allowed and from allowed to denied.
 */
import type { ChangedFlow } from './preview.js';
import { classifyFlow } from './service-map.js';

export interface EdgeMark {
  toAllowed: number;
  toDenied: number;
}

export function previewMarks(changed: readonly Pick<ChangedFlow, 'flow' | 'before' | 'after'>[]): Map<string, EdgeMark> {
  const out = new Map<string, EdgeMark>();
  for (const c of changed) {
    const id = classifyFlow(c.flow).edgeId;
    const m = out.get(id) ?? { toAllowed: 0, toDenied: 0 };
    if (c.after === 'allowed') m.toAllowed++;
    else m.toDenied++;
    out.set(id, m);
  }
  return out;
}
