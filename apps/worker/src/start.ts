/** Builds a worker from settings with the embedded defaults: local storage, the offline provider. */
import { pino, type Logger } from 'pino';
import { composeGrid, thumbnailFromDcScans, thumbnailFromEmbedded, thumbnailFromFile } from '@triage/images';
import { connectRedis, describeRedis, redisConnection, TriageStore, warnAboutRedisConfig } from '@triage/queue';
import { redactUrl } from '@triage/core';
import { createPool, PgCreditLedger, readDatabaseSettings, type Pool } from '@triage/db';
import { createStorageDriver } from '@triage/storage';
import { createVisionProvider } from '@triage/vision';
import type { WorkerSettings } from './config.js';
import { createHandOffWorker } from './handoff.js';
import { createTriageWorker, type TriageWorker } from './worker.js';

export interface RunningWorker extends TriageWorker {
  store: TriageStore;
  /** Closes the worker within its deadline, then every connection. */
  stop(): Promise<void>;
}

export async function startWorker(
  settings: WorkerSettings,
  log: Logger = pino({ level: settings.logLevel }),
): Promise<RunningWorker> {
  const { redis, subscriber } = await connectRedisPair(settings, log);
  const store = new TriageStore(redis, { prefix: settings.prefix, retentionSeconds: settings.retentionSeconds });
  const storage = createStorageDriver(settings);
  try {
    // A wrong URL, key or bucket stops the worker here, naming the setting, rather than fail every photo.
    await storage.check?.(settings.bucket);
  } catch (err) {
    subscriber.disconnect();
    redis.disconnect();
    throw new Error(`storage check failed: ${(err as Error).message}`);
  }
  const { database, pool, credits } = openDatabase(log);
  const worker = await createTriageWorker({
    connection: redis,
    subscriber,
    prefix: settings.prefix,
    store,
    storage,
    ...(credits && { credits }),
    vision: createVisionProvider(settings),
    storageTransforms: settings.storageTransforms,
    keepPerScene: settings.keepPerScene,
    concurrency: settings.concurrency,
    images: { thumbnail: thumbnailFromFile, thumbnailFromEmbedded, thumbnailFromDcScans, composeGrid },
    log,
    lockDurationMs: settings.lockDurationMs,
    sweepEveryMs: settings.sweepEveryMs,
    stalledIntervalMs: settings.stalledIntervalMs,
    outagePolicy: { limitMs: settings.storageOutageLimitMs },
  });
  // The scoring hand-off needs the database: without one, PROCEED_QUEUE is left to another consumer.
  const handoff =
    pool && credits
      ? createHandOffWorker({
          queue: settings.proceedQueue,
          connection: redis,
          prefix: settings.prefix,
          store,
          storage,
          pool,
          credits,
          log,
        })
      : null;
  logReady(settings, log, database, handoff !== null);
  return {
    ...worker,
    store,
    async stop() {
      await Promise.all([worker.close(settings.shutdownDeadlineMs), handoff?.close()]);
      await pool?.end();
      subscriber.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The worker's Redis connection and the one kept for cancel messages (a subscribed connection does nothing else). */
async function connectRedisPair(settings: WorkerSettings, log: Logger) {
  const redis = await connectRedis(settings.redis, 'worker', 3000, settings.redisFailoverTimeoutMs);
  await warnAboutRedisConfig(redis, log);
  const subscriber = redisConnection(settings.redis, 'subscriber', {
    failoverTimeoutMs: settings.redisFailoverTimeoutMs,
  });
  // Both reconnect by themselves; say so once per failure instead of letting ioredis print a stack.
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error; retrying'));
  subscriber.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis subscriber error; retrying'));
  return { redis, subscriber };
}

/** The credits database, when DATABASE_URL is set. */
function openDatabase(log: Logger) {
  const database = readDatabaseSettings();
  const pool: Pool | null = database
    ? createPool(database, 'photo-triage-worker', (err) => log.warn({ err: err.message }, 'database connection error'))
    : null;
  const credits = pool ? new PgCreditLedger(pool) : undefined;
  return { database, pool, credits };
}

/** What this worker runs with, once it is ready. */
function logReady(
  settings: WorkerSettings,
  log: Logger,
  database: ReturnType<typeof readDatabaseSettings>,
  handoff: boolean,
): void {
  if (!database)
    log.info(
      'DATABASE_URL is not set: no credits are refunded and PROCEED_QUEUE is not consumed (no scoring hand-off)',
    );
  log.info(
    {
      redis: describeRedis(settings.redis),
      database: database ? redactUrl(database.url) : 'none',
      handoff: handoff ? settings.proceedQueue : 'off',
      prefix: settings.prefix,
      storage: settings.storageDriver,
      transforms: settings.storageTransforms,
      vision: settings.visionProvider,
      concurrency: settings.concurrency,
      models: settings.visionProvider === 'anthropic' ? settings.visionModels : undefined,
    },
    'worker ready',
  );
}
