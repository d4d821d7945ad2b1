/**
 * `@triage/images/testing`: what the tests and the benchmark need to make photos, and nothing the worker
 * runs: hostile photos with what reading each must give, synthetic scenes, and an EXIF writer.
 */
export * from './hostile.js';
export * from './fixtures.js';
export * from './exif-writer.js';
