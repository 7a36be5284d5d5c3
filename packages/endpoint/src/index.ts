export * from './policy-writes.js';
export * from './endpoint-manager.js';
export * from './realizer.js';
export * from './ipcache-sync.js';
