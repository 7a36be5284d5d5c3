/** The gate of privileged tests (one implementation, in the datapath's test helpers). */
export { IS_ROOT, inCI, requireRoot } from '@membrane/datapath/testing';
