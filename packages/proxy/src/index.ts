export * from './http-checks.js';
export * from './policy-view.js';
export * from './http-proxy.js';
export * from './dns-proxy.js';
export * from './dns-transports.js';
export type { L7Event } from '@membrane/api';
