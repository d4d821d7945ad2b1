#!/usr/bin/env node
/** The API process: reads the settings once, connects Redis as a producer, listens; drains on SIGTERM/SIGINT. */
import { pino } from 'pino';
import {
  connectRedis,
  createHandOffQueue,
  createTriageQueue,
  describeRedis,
  LOG_LEVEL,
  RedisUnavailableError,
  TriageStore,
  warnAboutRedisConfig,
  type RedisClient,
} from '@triage/queue';
import { createStorageDriver, LocalStorage, type StorageDriver } from '@triage/storage';
import { redactUrl } from '@triage/core';
import { createPool, migrate, PgCreditLedger, readDatabaseSettings } from '@triage/db';
import { buildApp } from './app.js';
import { corsWarning } from './cors.js';
import { NO_LEDGER, startReconciler, workStateOf, type CreditLedger } from './credits.js';
import { createAuthenticator } from './auth.js';
import { DASHBOARD_PATH } from './paths.js';
import { STORAGE_ROUTE } from './routes/storage.js';
import { isLoopbackHost, readApiSettings, type ApiSettings } from './settings.js';

const log = pino({ level: LOG_LEVEL.read(process.env), base: { service: 'triage-api', pid: process.pid } });

async function main(): Promise<void> {
  const settings = readApiSettings();
  const authenticator = createAuthenticator({
    ...(settings.supabaseJwtSecret && { jwtSecret: settings.supabaseJwtSecret }),
    ...(settings.supabaseUrl && { supabaseUrl: settings.supabaseUrl }),
  });
  checkAuthMode(settings, authenticator.mode);
  const cors = corsWarning(settings.corsOrigins, authenticator.mode === 'local');
  if (cors) log.warn(cors);
  if (settings.ephemeralSigningKey) {
    log.warn(
      'STORAGE_SIGNING_KEY is not set: a random key signs storage URLs, so they stop working when the API restarts',
    );
  }
  const redis = await connectRedis(settings.redis, 'producer');
  await warnAboutRedisConfig(redis, log);
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error'));
  const store = new TriageStore(redis, { prefix: settings.prefix, retentionSeconds: settings.retentionSeconds });
  const queueOptions = { connection: redis, prefix: settings.prefix, retentionSeconds: settings.retentionSeconds };
  const queue = createTriageQueue(queueOptions);
  const handoffQueue = createHandOffQueue(settings.proceedQueue, queueOptions);
  for (const q of [queue, handoffQueue])
    q.on('error', (err: Error) => log.warn({ queue: q.name, err: err.message }, 'queue connection error'));
  const storage = await openStorage(settings, redis);
  const { credits, closeDatabase } = await connectDatabase(workStateOf(store, handoffQueue));
  const app = await buildApp({
    settings,
    redis,
    store,
    queue,
    handoffQueue,
    storage,
    authenticator,
    credits,
    logger: log,
  });
  stopOnSignals(async () => {
    await app.close();
    await Promise.allSettled([queue.close(), handoffQueue.close(), closeDatabase()]);
    await redis.quit().catch(() => redis.disconnect());
  });
  const address = await app.listen({ host: settings.host, port: settings.port });
  const base = settings.publicUrl;
  log.info(
    {
      api: `${base}/api/triage`,
      docs: `${base}/docs`,
      dashboard: settings.dashboard ? `${base}${DASHBOARD_PATH}` : 'off (set DASHBOARD_USER and DASHBOARD_PASSWORD)',
      redis: describeRedis(settings.redis),
      prefix: settings.prefix,
      auth: authenticator.mode,
      address,
    },
    `API listening at ${base}/api/triage, docs at ${base}/docs`,
  );
}

/** Local mode (no token verification) is for one machine: refused with a database or off loopback; said loudly. */
function checkAuthMode(settings: ApiSettings, mode: string): void {
  if (mode !== 'local') return;
  if (readDatabaseSettings()) {
    throw new Error(
      'DATABASE_URL is set, but no SUPABASE_JWT_SECRET or SUPABASE_URL: credits belong to Supabase users, so tokens ' +
        'must be verified (local mode has no such user). Set one of them, or unset DATABASE_URL.',
    );
  }
  if (!isLoopbackHost(settings.host)) {
    throw new Error(
      `HOST=${settings.host} is not a loopback address, but no SUPABASE_JWT_SECRET or SUPABASE_URL is set: ` +
        'without token verification the API may only listen on 127.0.0.1, ::1 or localhost',
    );
  }
  log.warn(
    '!!! LOCAL MODE: no SUPABASE_JWT_SECRET or SUPABASE_URL is set, so tokens are NOT verified and every request ' +
      `is the one local user. Listening on loopback (${settings.host}) only. Never expose this to a network. !!!`,
  );
}

/** The storage driver, checked: a wrong URL, key or bucket stops the API here, naming the setting, rather than answer "not found" later. */
async function openStorage(settings: ApiSettings, redis: RedisClient): Promise<StorageDriver> {
  // The local driver's signed URLs are served by this API; Supabase signs its own.
  const storage: StorageDriver =
    settings.storageDriver === 'local'
      ? new LocalStorage({
          root: settings.storageDir,
          readLatencyMs: settings.storageReadLatencyMs,
          publicUrl: `${settings.publicUrl}${STORAGE_ROUTE}`,
          signingKey: settings.storageSigningKey,
        })
      : createStorageDriver(settings);
  try {
    await storage.check?.(settings.bucket);
  } catch (err) {
    redis.disconnect();
    throw new Error(`storage check failed: ${(err as Error).message}`);
  }
  return storage;
}

/** On SIGTERM or SIGINT (the first one): no new requests, the ones in flight finished, then `close`; exit 1 if that takes over 10 s. */
function stopOnSignals(close: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: no new requests, finishing the ones in flight');
      setTimeout(() => process.exit(1), 10_000).unref();
      close().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'unclean shutdown');
          process.exit(1);
        },
      );
    });
  }
}

/** The credit ledger when DATABASE_URL is set (migrated first when asked), else none, said at start. */
async function connectDatabase(
  workState: Parameters<typeof startReconciler>[2],
): Promise<{ credits: CreditLedger; closeDatabase: () => Promise<void> }> {
  const database = readDatabaseSettings();
  if (!database) {
    log.warn(
      'DATABASE_URL is not set: no credits are charged (credits_deducted is 0) and proceed only queues the hand-off ' +
        'on PROCEED_QUEUE, which no worker here consumes',
    );
    return { credits: NO_LEDGER, closeDatabase: async () => {} };
  }
  const pool = createPool(database, 'photo-triage-api', (err) =>
    log.warn({ err: err.message }, 'database connection error'),
  );
  if (database.migrateOnStart) {
    const applied = await migrate(pool);
    log.info({ applied }, applied.length > 0 ? 'database migrated' : 'database schema up to date');
  }
  await pool.query('SELECT 1');
  const credits = new PgCreditLedger(pool);
  const stop = startReconciler(credits, database.holdTimeoutMs, workState, log);
  log.info({ database: redactUrl(database.url), poolMax: database.poolMax }, 'credits are charged from the database');
  return {
    credits,
    async closeDatabase() {
      stop();
      await pool.end();
    },
  };
}

main().catch((err: unknown) => {
  log.fatal({ err: (err as Error).message }, 'the API could not start');
  // 3: no Redis, as the `triage` command says it; 1: anything else.
  process.exit(err instanceof RedisUnavailableError ? 3 : 1);
});
