/** The API's settings: the shared ones plus the HTTP side's, read once from the environment and validated. */
import { randomBytes } from 'node:crypto';
import { readSettings, setting, SettingsError, type Env } from '@triage/core';
import { LOG_LEVEL, readSharedSettings, type SharedSettings } from '@triage/queue';

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

/** The API's own settings (SUPABASE_URL, which it also reads, is a shared one). */
export const API_SETTINGS = {
  host: setting.text('HOST', '127.0.0.1'),
  port: setting.whole('PORT', 8000, { min: 0, max: 65535 }),
  corsOrigins: setting.list('CORS_ORIGINS', [], {
    item: (origin) => origin.replace(/\/+$/, ''),
    pattern: /^(\*|https?:\/\/[^/]+)$/,
    message: (origin) =>
      `CORS_ORIGINS holds "${origin}": give origins such as https://app.example.com, comma-separated`,
  }),
  dashboardUser: setting.text('DASHBOARD_USER', undefined),
  dashboardPassword: setting.text('DASHBOARD_PASSWORD', undefined),
  dashboardReadOnly: setting.flag('DASHBOARD_READ_ONLY', true),
  rateLimitPerMinute: setting.whole('RATE_LIMIT_PER_MINUTE', 10, { min: 1 }),
  maxActiveJobsPerUser: setting.whole('MAX_ACTIVE_JOBS_PER_USER', 3, { min: 1 }),
  maxUploadMb: setting.whole('MAX_UPLOAD_MB', 50, { min: 1, max: 10_000 }),
  /** Unset: http://HOST:PORT. */
  publicUrl: setting.url(
    'PUBLIC_URL',
    undefined,
    ['http:', 'https:'],
    (v) => `PUBLIC_URL must be an absolute URL, got "${v}"`,
  ),
  /** Unset: a random key, so signed URLs stop working when the process restarts. */
  storageSigningKey: setting.text('STORAGE_SIGNING_KEY', undefined),
  supabaseJwtSecret: setting.text('SUPABASE_JWT_SECRET', undefined),
  logLevel: LOG_LEVEL,
};

export function readApiSettings(env: Env = process.env): ApiSettings {
  const shared = readSharedSettings(env);
  const {
    dashboardUser: user,
    dashboardPassword: password,
    dashboardReadOnly,
    maxUploadMb,
    storageSigningKey,
    ...s
  } = readSettings(API_SETTINGS, env);
  if ((user === undefined) !== (password === undefined)) {
    throw new SettingsError(
      'DASHBOARD_USER and DASHBOARD_PASSWORD must be set together (or both left unset to turn the dashboard off)',
    );
  }
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  // The URL made from HOST and PORT is checked as a given one would be.
  const publicUrl = s.publicUrl ?? API_SETTINGS.publicUrl.read({ PUBLIC_URL: `http://${host}:${s.port}` })!;
  return {
    ...shared,
    ...s,
    dashboard: user && password ? { user, password, readOnly: dashboardReadOnly } : null,
    maxUploadBytes: maxUploadMb * 1024 * 1024,
    publicUrl: publicUrl.replace(/\/+$/, ''),
    storageSigningKey: storageSigningKey ?? randomBytes(32).toString('base64url'),
    ephemeralSigningKey: storageSigningKey === undefined,
  };
}

/** Local mode (no token verification) is only safe where nobody else can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}
