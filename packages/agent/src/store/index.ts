export * from './store.js';
export * from './store-error.js';
export { openSqliteStore, DATABASE_FILE, SCHEMA_VERSION, type SqliteStoreOptions } from './sqlite-store.js';
export { createMemoryStore } from './memory-store.js';
export type { SerialStoreOptions } from './serial-store.js';
