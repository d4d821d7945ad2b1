export * from './contract.js';
export * from './store.js';
export * from './redis.js';
export * from './submit.js';
export * from './settings.js';
export * from './queries.js';
export * from './redis-check.js';
export * from './runtime.js';
