/**
 * The editor's validation, by the same engine the agent applies with
 * (packages/policy runs in the browser): YAML → documents → translated
 * policies, each problem with the line it is at (the field's node in the
 * YAML, else the document's first line), so the editor marks it there and
 * refuses to apply. The agent checks again on apply; its message is shown
 * the same way (placeAgentError).
 */
import { parseAllDocuments, isMap, isSeq, type Document, type Node } from 'yaml';
import { MembraneError } from '@membrane/api';
import { parsePolicyDocument, type TranslatedPolicy } from '@membrane/policy';

export interface Problem {
  /** 1-based line. */
  line: number;
  message: string;
}

export interface Validated {
  documents: { value: unknown; label: string }[];
  policies: TranslatedPolicy[];
  problems: Problem[];
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The node at a field path (`spec.ingress[0].toPorts[0].ports[0].port`) of a YAML document. */
function nodeAt(doc: Document, path: string): Node | undefined {
  let node: unknown = doc.contents;
  let last: Node | undefined = doc.contents ?? undefined;
  for (const part of path.match(/[^.[\]]+/g) ?? []) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === part);
      if (!pair) break;
      node = pair.value ?? pair.key;
      last = (pair.value ?? pair.key) as Node;
    } else if (isSeq(node) && /^\d+$/.test(part)) {
      node = node.items[Number(part)];
      if (!node) break;
      last = node as Node;
    } else break;
  }
  return last;
}

/** The field path a message names (`… spec.ingress[0].toPorts: …`). */
export function pathOf(message: string): string | undefined {
  return /\b((?:spec|specs|metadata|kind|apiVersion)(?:[.[][^\s:]*)?):/.exec(message)?.[1];
}

function place(text: string, doc: Document | undefined, message: string): number {
  const path = pathOf(message);
  const node = doc && path ? nodeAt(doc, path) : undefined;
  const range = node?.range ?? (doc?.contents as Node | undefined)?.range;
  return range ? lineAt(text, range[0]) : 1;
}

export function validatePolicies(text: string, source = 'editor'): Validated {
  const out: Validated = { documents: [], policies: [], problems: [] };
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return out;
  docs.forEach((doc, i) => {
    const label = `document ${i + 1}`;
    for (const e of doc.errors) out.problems.push({ line: e.linePos?.[0].line ?? 1, message: `${label}: YAML: ${e.message.split('\n')[0]}` });
    if (doc.errors.length) return;
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) return;
    out.documents.push({ value, label });
    try {
      out.policies.push(parsePolicyDocument(value, { source, label }));
    } catch (e) {
      const msgs = e instanceof MembraneError && e.details.length > 1 ? e.details : [e instanceof Error ? e.message : String(e)];
      for (const m of msgs) out.problems.push({ line: place(text, doc, m), message: m });
    }
  });
  return out;
}

/** Where in the editor's text a message of the agent belongs (the field it names). */
export function placeAgentError(text: string, message: string): number {
  const docs = parseAllDocuments(text);
  const label = /document (\d+)/.exec(message);
  const doc = Array.isArray(docs) ? docs[label ? Number(label[1]) - 1 : 0] : undefined;
  return place(text, doc, message);
}
