export * from './flow-ring.js';
export * from './flow-filter.js';
