/**
 * The one gate of privileged tests. As root they run. Otherwise, outside CI
 * they skip loudly (the reason in the test report and on stderr); in CI
 * (CI set, as every CI service sets it) a privileged test that cannot run
 * fails, so a CI machine without root can never pass by skipping them all.
 */
import type { TestContext } from 'node:test';
import { NOT_ROOT_MESSAGE } from '../datapath-error.js';

export const IS_ROOT = process.geteuid?.() === 0;

/** Whether the environment says it is CI (CI=true, CI=1, ...; CI=false and CI=0 are not). */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env['CI'];
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/**
 * False (the test is skipped) when not root outside CI; throws in CI.
 * `what` says what needs root.
 */
export function requireRoot(t: TestContext, what: string, env: NodeJS.ProcessEnv = process.env, root = IS_ROOT): boolean {
  if (root) return true;
  const reason = `${NOT_ROOT_MESSAGE}: ${what}`;
  if (inCI(env)) throw new Error(`privileged test cannot run in CI without root (CI=${env['CI']}): ${reason}`);
  t.diagnostic(`SKIPPED (not root): ${reason}`);
  console.error(`SKIPPED (not root): ${t.name}: ${reason}`);
  t.skip(reason);
  return false;
}
