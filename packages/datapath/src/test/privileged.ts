/**
 * The gate of privileged tests: as root they run; otherwise they skip
 * loudly, with the reason in the test report and on stderr.
 */
import type { TestContext } from 'node:test';
import { NOT_ROOT_MESSAGE } from '../datapath-error.js';

export const IS_ROOT = process.geteuid?.() === 0;

/** False (the test is skipped) when not root; `what` says what needs root. */
export function requireRoot(t: TestContext, what: string): boolean {
  if (IS_ROOT) return true;
  const reason = `${NOT_ROOT_MESSAGE}: ${what}`;
  t.diagnostic(`SKIPPED (not root): ${reason}`);
  console.error(`SKIPPED (not root): ${t.name}: ${reason}`);
  t.skip(reason);
  return false;
}
