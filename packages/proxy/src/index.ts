export * from './http-checks.js';
export * from './policy-view.js';
export * from './http-proxy.js';
