export * from './datapath-error.js';
export * from './kernel-features.js';
export * from './native.js';
export * from './ringbuf-records.js';
export * from './sk-buff.js';
export * from './socket-fd.js';
