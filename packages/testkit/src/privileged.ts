/**
 * The gate of privileged tests (they run as root and otherwise skip loudly):
 * the one @membrane/datapath's own tests use, so every package skips alike.
 */
export { IS_ROOT, requireRoot } from '@membrane/datapath/testing';
