export * from './settings.js';
export * from './pool.js';
export * from './migrate.js';
export * from './ledger.js';
export * from './scoring.js';
