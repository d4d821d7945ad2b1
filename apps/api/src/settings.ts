/** The API's settings: the shared ones plus the HTTP side's, read once from the environment and validated. */
import { randomBytes } from 'node:crypto';
import { readSharedSettings, SettingsError, type SharedSettings } from '@triage/queue';

type Env = Record<string, string | undefined>;

export interface DashboardSettings {
  user: string;
  password: string;
  readOnly: boolean;
}

export interface ApiSettings extends SharedSettings {
  host: string;
  port: number;
  /** Origins allowed to call the API from a browser; empty = same origin only. */
  corsOrigins: string[];
  /** Null when DASHBOARD_USER / DASHBOARD_PASSWORD are unset: the dashboard is not mounted. */
  dashboard: DashboardSettings | null;
  rateLimitPerMinute: number;
  maxActiveJobsPerUser: number;
  maxUploadBytes: number;
  /** Base URL clients reach this API at (signed local storage URLs point under it). */
  publicUrl: string;
  storageSigningKey: string;
  /** True when no STORAGE_SIGNING_KEY was given: signed URLs stop working when the process restarts. */
  ephemeralSigningKey: boolean;
  supabaseUrl: string | undefined;
  supabaseJwtSecret: string | undefined;
  logLevel: string;
}

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n >= min && n <= max)) {
    throw new SettingsError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new SettingsError(`${name} must be true or false, got "${env[name]}"`);
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

export function readApiSettings(env: Env = process.env): ApiSettings {
  const shared = readSharedSettings(env);
  const host = optional(env, 'HOST') ?? '127.0.0.1';
  const port = int(env, 'PORT', 8000, 0, 65535);
  const user = optional(env, 'DASHBOARD_USER');
  const password = optional(env, 'DASHBOARD_PASSWORD');
  if ((user === undefined) !== (password === undefined)) {
    throw new SettingsError('DASHBOARD_USER and DASHBOARD_PASSWORD must be set together (or both left unset to turn the dashboard off)');
  }
  const publicUrl = (optional(env, 'PUBLIC_URL') ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  try {
    new URL(publicUrl);
  } catch {
    throw new SettingsError(`PUBLIC_URL must be an absolute URL, got "${publicUrl}"`);
  }
  const supabaseUrl = optional(env, 'SUPABASE_URL');
  if (supabaseUrl !== undefined && !/^https?:\/\//.test(supabaseUrl)) {
    throw new SettingsError(`SUPABASE_URL must be an http(s) URL, got "${supabaseUrl}"`);
  }
  const corsOrigins = (optional(env, 'CORS_ORIGINS') ?? '')
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/]+$/.test(origin)) {
      throw new SettingsError(`CORS_ORIGINS holds "${origin}": give origins such as https://app.example.com, comma-separated`);
    }
  }
  const signingKey = optional(env, 'STORAGE_SIGNING_KEY');
  return {
    ...shared,
    host,
    port,
    corsOrigins,
    dashboard: user && password ? { user, password, readOnly: bool(env, 'DASHBOARD_READ_ONLY', true) } : null,
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 10, 1),
    maxActiveJobsPerUser: int(env, 'MAX_ACTIVE_JOBS_PER_USER', 3, 1),
    maxUploadBytes: int(env, 'MAX_UPLOAD_MB', 50, 1, 10_000) * 1024 * 1024,
    publicUrl,
    storageSigningKey: signingKey ?? randomBytes(32).toString('base64url'),
    ephemeralSigningKey: signingKey === undefined,
    supabaseUrl,
    supabaseJwtSecret: optional(env, 'SUPABASE_JWT_SECRET'),
    logLevel: optional(env, 'LOG_LEVEL') ?? 'info',
  };
}

/** Local mode (no token verification) is only safe where nobody else can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}
