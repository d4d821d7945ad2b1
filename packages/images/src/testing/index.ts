/**
 * `@triage/images/testing`: what the tests and the benchmark need to make photos, and nothing the worker
 * runs: hostile photos with what reading each must give, synthetic scenes, an EXIF writer, and the camera
 * flaws (defocus, shake, exposure, noise) the quality benchmark adds to real photographs.
 */
export * from './hostile.js';
export * from './fixtures.js';
export * from './exif-writer.js';
export * from './flaws.js';
