export * from './driver.js';
export * from './local.js';
