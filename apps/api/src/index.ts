export * from './app.js';
export * from './settings.js';
export * from './credits.js';
export * from './errors.js';
export * from './jobs.js';
export * from './uploads.js';
export * from './download.js';
export * from './dashboard.js';
