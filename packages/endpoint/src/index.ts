export * from './policy-writes.js';
export * from './realizer.js';
