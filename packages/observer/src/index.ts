export * from './flow-ring.js';
export * from './flow-filter.js';
export * from './flow-parser.js';
export * from './observer.js';
export * from './flow-query.js';
export * from './flow-printer.js';
export * from './flow-metrics.js';
