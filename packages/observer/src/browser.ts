/**
 * What of the observer runs in a browser (the console): the one filter
 * implementation, Hubble's printers and the shared parts of flows. No
 * Node built-ins and no metrics library behind this entry.
 */
export * from './flow-filter.js';
export * from './flow-printer.js';
export { l4Summary, policyOf, tcpFlagsSummary } from './flow-parts.js';
