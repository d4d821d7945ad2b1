export * from './driver.js';
export * from './local.js';
export * from './supabase.js';
export * from './factory.js';
export * from './bounded.js';
