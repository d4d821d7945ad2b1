/** The storage driver a deployment selects with STORAGE_DRIVER. */
import type { StorageDriver } from './driver.js';
import { LocalStorage } from './local.js';
import { SupabaseStorage } from './supabase.js';

export interface StorageSettings {
  storageDriver: 'local' | 'supabase';
  storageDir: string;
  storageReadLatencyMs?: number;
  supabaseUrl?: string | undefined;
  supabaseServiceRoleKey?: string | undefined;
}

export function createStorageDriver(settings: StorageSettings): StorageDriver {
  if (settings.storageDriver === 'supabase') {
    return new SupabaseStorage({
      url: settings.supabaseUrl ?? '',
      serviceRoleKey: settings.supabaseServiceRoleKey ?? '',
    });
  }
  return new LocalStorage({ root: settings.storageDir, readLatencyMs: settings.storageReadLatencyMs ?? 0 });
}
