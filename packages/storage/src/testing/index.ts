export * from './fake-supabase.js';
export * from './jpeg-like.js';
