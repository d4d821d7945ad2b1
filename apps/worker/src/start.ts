/** Builds a worker from settings with the embedded defaults: local storage, the offline provider. */
import { pino, type Logger } from 'pino';
import { composeGrid, thumbnailFromDcScans, thumbnailFromEmbedded, thumbnailFromFile } from '@triage/images';
import { connectRedis, describeRedis, redisConnection, TriageStore, warnAboutRedisConfig } from '@triage/queue';
import { createStorageDriver } from '@triage/storage';
import { createVisionProvider } from '@triage/vision';
import type { WorkerSettings } from './config.js';
import { createTriageWorker, type TriageWorker } from './worker.js';

export interface RunningWorker extends TriageWorker {
  store: TriageStore;
  /** Closes the worker within its deadline, then every connection. */
  stop(): Promise<void>;
}

export async function startWorker(settings: WorkerSettings, log: Logger = pino({ level: settings.logLevel })): Promise<RunningWorker> {
  const redis = await connectRedis(settings.redis, 'worker', 3000, settings.redisFailoverTimeoutMs);
  await warnAboutRedisConfig(redis, log);
  const subscriber = redisConnection(settings.redis, 'subscriber', { failoverTimeoutMs: settings.redisFailoverTimeoutMs });
  // Both reconnect by themselves; say so once per failure instead of letting ioredis print a stack.
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error; retrying'));
  subscriber.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis subscriber error; retrying'));
  const store = new TriageStore(redis, { prefix: settings.prefix, retentionSeconds: settings.retentionSeconds });
  const worker = await createTriageWorker({
    connection: redis,
    subscriber,
    prefix: settings.prefix,
    store,
    storage: createStorageDriver(settings),
    vision: createVisionProvider(settings),
    storageTransforms: settings.storageTransforms,
    images: { thumbnail: thumbnailFromFile, thumbnailFromEmbedded, thumbnailFromDcScans, composeGrid },
    log,
    lockDurationMs: settings.lockDurationMs,
    sweepEveryMs: settings.sweepEveryMs,
    stalledIntervalMs: settings.stalledIntervalMs,
  });
  log.info(
    {
      redis: describeRedis(settings.redis),
      prefix: settings.prefix,
      storage: settings.storageDriver,
      transforms: settings.storageTransforms,
      vision: settings.visionProvider,
      models: settings.visionProvider === 'anthropic' ? settings.visionModels : undefined,
    },
    'worker ready',
  );
  return {
    ...worker,
    store,
    async stop() {
      await worker.close(settings.shutdownDeadlineMs);
      subscriber.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
