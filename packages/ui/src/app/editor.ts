/** The YAML editor (CodeMirror 6) with the engine's problems marked at their lines. */
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { yaml } from '@codemirror/lang-yaml';
import { bracketMatching, indentOnInput } from '@codemirror/language';
import { forceLinting, linter, lintGutter, type Diagnostic } from '@codemirror/lint';
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers } from '@codemirror/view';
import type { Problem } from '../lib/policy-validate.js';

export interface Editor {
  view: EditorView;
  text(): string;
  setText(t: string): void;
  /** Problems of the agent, shown until the next edit. */
  setExtra(p: Problem[]): void;
}

export function makeEditor(parent: HTMLElement, initial: string, validate: (text: string) => Problem[], onChange: (text: string) => void): Editor {
  let extra: Problem[] = [];
  const diagnostics = (view: EditorView): Diagnostic[] => {
    const doc = view.state.doc;
    return [...validate(doc.toString()), ...extra].map((p) => {
      const line = doc.line(Math.min(Math.max(1, p.line), doc.lines));
      return { from: line.from, to: Math.max(line.from, line.to), severity: 'error', message: p.message };
    });
  };
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: initial,
      extensions: [
        lineNumbers(),
        history(),
        indentOnInput(),
        bracketMatching(),
        yaml(),
        keymap.of([...defaultKeymap, ...historyKeymap]),
        lintGutter(),
        // The styles CodeMirror makes carry the page's nonce (the console's CSP allows no other inline style).
        EditorView.cspNonce.of(document.querySelector<HTMLMetaElement>('meta[name="membrane-style-nonce"]')?.content ?? ''),
        linter(diagnostics, { delay: 250 }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) {
            extra = [];
            onChange(u.state.doc.toString());
          }
        }),
      ],
    }),
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    setText: (t) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t } }),
    setExtra: (p) => {
      extra = p;
      forceLinting(view);
    },
  };
}
