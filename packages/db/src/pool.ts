/**
 * The PostgreSQL connection pool (node-postgres): bounded, with a statement timeout set on every
 * connection, and one helper for transactions. node-postgres sends unnamed statements, so it also works
 * through Supabase's transaction-mode pooler.
 */
import pg from 'pg';
import type { DatabaseSettings } from './settings.js';

export type Pool = pg.Pool;
export type Client = pg.PoolClient;

export function createPool(
  settings: DatabaseSettings,
  applicationName: string,
  onError?: (err: Error) => void,
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.poolMax,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: settings.statementTimeoutMs,
    // A connection left inside a transaction (a bug, a hung client) must not hold row locks for long.
    idle_in_transaction_session_timeout: settings.statementTimeoutMs * 2,
    // The client's own limit, a little above the server's, for a server that does not answer at all.
    query_timeout: settings.statementTimeoutMs + 5_000,
    application_name: applicationName,
  });
  // An idle connection that the server closes must not crash the process; the next query reconnects.
  pool.on('error', (err) => onError?.(err));
  return pool;
}

/** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
