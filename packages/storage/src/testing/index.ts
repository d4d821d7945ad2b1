export * from './fake-supabase.js';
