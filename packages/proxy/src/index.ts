export * from './http-checks.js';
export * from './policy-view.js';
export * from './http-proxy.js';
export * from './dns-proxy.js';
export * from './dns-transports.js';
export type L7Event = import('./http-proxy.js').L7HttpEvent | import('./dns-proxy.js').DnsEvent;
