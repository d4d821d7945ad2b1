export * from './provider.js';
export * from './offline.js';
