#!/usr/bin/env node
/** The API process: reads the settings once, connects Redis as a producer, listens; drains on SIGTERM/SIGINT. */
import { pino } from 'pino';
import { connectRedis, createHandOffQueue, createTriageQueue, describeRedis, RedisUnavailableError, TriageStore, warnAboutRedisConfig } from '@triage/queue';
import { createStorageDriver, LocalStorage } from '@triage/storage';
import { buildApp } from './app.js';
import { createAuthenticator } from './auth.js';
import { DASHBOARD_PATH } from './paths.js';
import { STORAGE_ROUTE } from './routes/ops.js';
import { isLoopbackHost, readApiSettings } from './settings.js';

const log = pino({ level: process.env.LOG_LEVEL?.trim() || 'info', base: { service: 'triage-api', pid: process.pid } });

async function main(): Promise<void> {
  const settings = readApiSettings();
  const authenticator = createAuthenticator({
    ...(settings.supabaseJwtSecret && { jwtSecret: settings.supabaseJwtSecret }),
    ...(settings.supabaseUrl && { supabaseUrl: settings.supabaseUrl }),
  });
  if (authenticator.mode === 'local') {
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
  if (settings.ephemeralSigningKey) {
    log.warn('STORAGE_SIGNING_KEY is not set: a random key signs storage URLs, so they stop working when the API restarts');
  }
  const redis = await connectRedis(settings.redis, 'producer');
  await warnAboutRedisConfig(redis, log);
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error'));
  const store = new TriageStore(redis, { prefix: settings.prefix, retentionSeconds: settings.retentionSeconds });
  const queueOptions = { connection: redis, prefix: settings.prefix, retentionSeconds: settings.retentionSeconds };
  const queue = createTriageQueue(queueOptions);
  const handoffQueue = createHandOffQueue(settings.proceedQueue, queueOptions);
  for (const q of [queue, handoffQueue]) q.on('error', (err: Error) => log.warn({ queue: q.name, err: err.message }, 'queue connection error'));
  // The local driver's signed URLs are served by this API; Supabase signs its own.
  const storage =
    settings.storageDriver === 'local'
      ? new LocalStorage({
          root: settings.storageDir,
          readLatencyMs: settings.storageReadLatencyMs,
          publicUrl: `${settings.publicUrl}${STORAGE_ROUTE}`,
          signingKey: settings.storageSigningKey,
        })
      : createStorageDriver(settings);
  const app = await buildApp({ settings, redis, store, queue, handoffQueue, storage, authenticator, logger: log });

  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: no new requests, finishing the ones in flight');
      setTimeout(() => process.exit(1), 10_000).unref();
      app
        .close()
        .then(() => Promise.allSettled([queue.close(), handoffQueue.close()]))
        .then(() => redis.quit().catch(() => redis.disconnect()))
        .then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err }, 'unclean shutdown');
            process.exit(1);
          },
        );
    });
  }

  await app.listen({ host: settings.host, port: settings.port });
  const base = settings.publicUrl;
  log.info(
    {
      api: `${base}/api/triage`,
      docs: `${base}/docs`,
      dashboard: settings.dashboard ? `${base}${DASHBOARD_PATH}` : 'off (set DASHBOARD_USER and DASHBOARD_PASSWORD)',
      redis: describeRedis(settings.redis),
      prefix: settings.prefix,
      auth: authenticator.mode,
    },
    `API listening at ${base}/api/triage, docs at ${base}/docs`,
  );
}

main().catch((err: unknown) => {
  log.fatal({ err: (err as Error).message }, 'the API could not start');
  // 3: no Redis, as the `triage` command says it; 1: anything else.
  process.exit(err instanceof RedisUnavailableError ? 3 : 1);
});
