/**
 * Splits multi-document YAML (or JSON) into documents, each with the label
 * messages use to name it. Syntax errors name the document, line and column.
 */
import { parseAllDocuments } from 'yaml';
import { ValidationError, type DocumentRef } from './errors.js';
import { isPlainObject } from './schema.js';

export interface LoadedDocument {
  ref: DocumentRef;
  value: unknown;
}

export interface LoadOptions {
  /** How documents are named: `document` gives `document 1`, `document 2`... */
  labelPrefix?: string;
  /** Label to use when the text holds exactly one document (e.g. `policies[2]`). */
  singleLabel?: string;
}

export function loadDocuments(text: string, source: string, opts: LoadOptions = {}): LoadedDocument[] {
  const docs = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: LoadedDocument[] = [];
  const label = (n: number) =>
    opts.singleLabel !== undefined ? (list.length === 1 ? opts.singleLabel : `${opts.singleLabel} document ${n}`) : `${opts.labelPrefix ?? 'document'} ${n}`;
  list.forEach((doc, i) => {
    const ref: DocumentRef = { source, label: label(i + 1) };
    const err = doc.errors[0];
    if (err) {
      const { line, col } = lineCol(text, err.pos[0]);
      let reason = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      if (err.code === 'DUPLICATE_KEY') reason = `duplicate key ${JSON.stringify(keyAt(text, err.pos[0]))}`;
      throw new ValidationError('MEMBRANE_E_YAML', ref, [{ path: '', reason: `YAML syntax error at line ${line}, column ${col}: ${reason}` }]);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      const why = e instanceof Error && /alias/i.test(e.message) ? 'the document expands too many aliases (possible alias bomb)' : String(e);
      throw new ValidationError('MEMBRANE_E_YAML', ref, [{ path: '', reason: `YAML error: ${why}` }]);
    }
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing ---)
    if (isPlainObject(value) && value['kind'] === 'List' && Array.isArray(value['items'])) {
      value['items'].forEach((item, j) => out.push({ ref: { source, label: `${ref.label} items[${j}]` }, value: item }));
      return;
    }
    out.push({ ref, value });
  });
  return out;
}

/** 1-based line and column of a character offset. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      start = i + 1;
    }
  }
  return { line, col: offset - start + 1 };
}

/** The mapping key written at an offset (for duplicate-key messages). */
function keyAt(text: string, offset: number): string {
  const m = /^\s*["']?([^"':\n]*)/.exec(text.slice(offset));
  return (m?.[1] ?? '').trim();
}
