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
      const pos = err.linePos?.[0];
      const at = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
      const reason = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new ValidationError('MEMBRANE_E_YAML', ref, [{ path: '', reason: `YAML syntax error${at}: ${reason}` }]);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing ---)
    if (isPlainObject(value) && value['kind'] === 'List' && Array.isArray(value['items'])) {
      value['items'].forEach((item, j) => out.push({ ref: { source, label: `${ref.label} items[${j}]` }, value: item }));
      return;
    }
    out.push({ ref, value });
  });
  return out;
}
