export * from './allocator.js';
export * from './ipcache.js';
