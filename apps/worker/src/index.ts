export * from './step.js';
export * from './worker.js';
export * from './config.js';
export * from './start.js';
export * from './expiry.js';
export * from './handoff.js';
export * from './gate.js';
