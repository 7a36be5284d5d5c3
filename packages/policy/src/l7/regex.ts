/**
 * Cilium hands HTTP path/method/host patterns to Envoy as RE2 expressions
 * matched against the whole value. The matching engine lives in re2.ts: a
 * linear-time RE2 implementation (no backtracking, so a rule cannot be made
 * to hang on an attacker-chosen path) that accepts RE2's syntax and rejects
 * what RE2 rejects (lookaround, backreferences, atomic groups, ...), so a
 * policy that Cilium would refuse is refused here too, and one it accepts
 * means the same thing.
 */
import { compileRE2 } from './re2.js';

/** An invalid pattern; the message is a short lower-case reason. */
export class RegexError extends Error {}

/** A compiled pattern that must match the whole value. */
export interface FullMatcher {
  test(input: string): boolean;
}

/** Compiles an RE2 pattern that must match the whole value. Throws RegexError with a readable reason. */
export function compileFullMatch(pattern: string): FullMatcher {
  return compileRE2(pattern);
}
