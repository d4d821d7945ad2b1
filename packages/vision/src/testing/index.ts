export * from './fake-anthropic.js';
