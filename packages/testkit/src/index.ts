export * from '@membrane/cli/live';
export * from './safety.js';
export * from './pods.js';
export * from './pod-ips.js';
export * from './traffic.js';
export * from './live-scenario.js';
export * from './leaks.js';
export * from './privileged.js';
