export * from './provider.js';
export * from './offline.js';
export * from './anthropic.js';
export * from './factory.js';
