/**
 * The database settings of the API and the worker, read once from the environment and validated. Without
 * DATABASE_URL there is no database: no credits are charged and proceed only queues the hand-off.
 */
export class DatabaseSettingsError extends Error {
  override name = 'SettingsError';
}

type Env = Record<string, string | undefined>;

export interface DatabaseSettings {
  /** A PostgreSQL connection string (a secret: it may carry a password; never logged as it is). */
  url: string;
  /** Connections per process at most. */
  poolMax: number;
  /** Server-side limit of one statement, ms. */
  statementTimeoutMs: number;
  /** How long to wait for a connection, ms. */
  connectTimeoutMs: number;
  /** Apply the migrations when the API starts. */
  migrateOnStart: boolean;
  /** A charge whose work was not queued within this long (the API died in between) is refunded, ms. */
  holdTimeoutMs: number;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n >= min && n <= max)) {
    throw new DatabaseSettingsError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function flag(env: Env, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return false;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new DatabaseSettingsError(`${name} must be true or false, got "${env[name]}"`);
}

/** Null when DATABASE_URL is unset: the service runs without credits and without the scoring hand-off. */
export function readDatabaseSettings(env: Env = process.env): DatabaseSettings | null {
  const url = env.DATABASE_URL?.trim();
  const settings = {
    poolMax: int(env, 'DATABASE_POOL_MAX', 10, 1, 1000),
    statementTimeoutMs: int(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 15_000, 100, 3_600_000),
    connectTimeoutMs: int(env, 'DATABASE_CONNECT_TIMEOUT_MS', 10_000, 100, 600_000),
    migrateOnStart: flag(env, 'DATABASE_MIGRATE_ON_START'),
    holdTimeoutMs: int(env, 'CREDIT_HOLD_TIMEOUT_MS', 60_000, 100, 86_400_000),
  };
  if (!url) return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatabaseSettingsError('DATABASE_URL must be a URL such as postgres://user:password@host:5432/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new DatabaseSettingsError(`DATABASE_URL must start with postgres:// or postgresql://, got "${parsed.protocol}//..."`);
  }
  return { url, ...settings };
}
