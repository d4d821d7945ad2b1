export * from './geometry.js';
export * from './target.js';
export * from './prompt.js';
export * from './ranking.js';
export * from './progress.js';
export * from './plan.js';
export * from './profiles.js';
export * from './image-size.js';
