/**
 * The database settings of the API and the worker, read once from the environment and validated. Without
 * DATABASE_URL there is no database: no credits are charged and proceed only queues the hand-off.
 */
import { readSettings, setting, type Env } from '@triage/core';

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

export const DATABASE_SETTINGS = {
  poolMax: setting.whole('DATABASE_POOL_MAX', 10, { min: 1, max: 1000 }),
  statementTimeoutMs: setting.ms('DATABASE_STATEMENT_TIMEOUT_MS', 15_000, { min: 100, max: 3_600_000 }),
  connectTimeoutMs: setting.ms('DATABASE_CONNECT_TIMEOUT_MS', 10_000, { min: 100, max: 600_000 }),
  migrateOnStart: setting.flag('DATABASE_MIGRATE_ON_START', false),
  holdTimeoutMs: setting.ms('CREDIT_HOLD_TIMEOUT_MS', 60_000, { min: 100, max: 86_400_000 }),
};

/** Checked after the others, so that a bad value is refused even where no database is configured. */
const DATABASE_URL = setting.url('DATABASE_URL', undefined, ['postgres:', 'postgresql:'], (_, protocol) =>
  protocol
    ? `DATABASE_URL must start with postgres:// or postgresql://, got "${protocol}//..."`
    : 'DATABASE_URL must be a URL such as postgres://user:password@host:5432/database',
);

/** Null when DATABASE_URL is unset: the service runs without credits and without the scoring hand-off. */
export function readDatabaseSettings(env: Env = process.env): DatabaseSettings | null {
  const settings = readSettings(DATABASE_SETTINGS, env);
  const url = DATABASE_URL.read(env);
  return url === undefined ? null : { url, ...settings };
}
