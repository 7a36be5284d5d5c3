export * from './agent.js';
export * from './config.js';
export * from './lifecycle.js';
export * from './api/http-api.js';
export { runAgent } from './main.js';
