/**
 * The gate of privileged tests: they run as root and otherwise skip loudly,
 * with the reason in the test report and on stderr.
 */
import type { TestContext } from 'node:test';
import { NOT_ROOT_MESSAGE } from '@membrane/datapath';

export const IS_ROOT = process.geteuid?.() === 0;

export function requireRoot(t: TestContext, what: string): boolean {
  if (IS_ROOT) return true;
  const reason = `${NOT_ROOT_MESSAGE}: ${what}`;
  t.diagnostic(`SKIPPED (not root): ${reason}`);
  console.error(`SKIPPED (not root): ${t.name}: ${reason}`);
  t.skip(reason);
  return false;
}
