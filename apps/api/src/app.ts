/**
 * The API as a Fastify instance built from injected dependencies: tests call `buildApp(deps)` and
 * `app.inject`, without a port; `server.ts` reads the settings, connects and listens. Each concern is a
 * plugin of its own (`plugins/`: logging, error replies, docs, CORS, rate limits, bodies, identity;
 * `routes/`: operations, signed storage URLs, and the /api/triage routes), assembled here in order.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queue } from 'bullmq';
import { redisConnection, type RedisClient } from '@triage/queue';
import type { Logger } from 'pino';
import type { HandOffJobData, TriageJobData, TriageStore } from '@triage/queue';
import { LocalStorage, type StorageDriver } from '@triage/storage';
import type { Authenticator } from './auth.js';
import { NO_LEDGER, type CreditLedger } from './credits.js';
import { EventHub } from './events.js';
import { createMetrics } from './metrics.js';
import { bodies } from './plugins/bodies.js';
import { crossOrigin } from './plugins/cors.js';
import { docs } from './plugins/docs.js';
import { errorReplies } from './plugins/errors.js';
import { loggerOptions, requestLog } from './plugins/logging.js';
import { jobCreationLimit, rateLimits } from './plugins/rate-limit.js';
import { opsRoutes } from './routes/ops.js';
import { storageRoute } from './routes/storage.js';
import { triageRoutes } from './routes/triage.js';
import type { ApiSettings } from './settings.js';

export { loggableUrl } from './plugins/logging.js';

export const API_PREFIX = '/api/triage';
export const VERSION = '0.1.0';

export interface AppDeps {
  settings: ApiSettings;
  /** A producer connection (fails fast while Redis is away). */
  redis: RedisClient;
  store: TriageStore;
  queue: Queue<TriageJobData>;
  handoffQueue: Queue<HandOffJobData>;
  storage: StorageDriver;
  authenticator: Authenticator;
  credits?: CreditLedger;
  /** A pino logger, or false for none. */
  logger?: Logger | false;
  /** Events stream heartbeat, ms (default 15 s). */
  heartbeatMs?: number;
  /** How long DELETE waits for a running job to stop, ms (default 5 s). */
  cancelWaitMs?: number;
}

/** Largest JSON body: 2,000 file entries with long names and paths fit easily. */
const JSON_BODY_LIMIT = 4 * 1024 * 1024;

function createServer(logger: AppDeps['logger']) {
  return Fastify({
    bodyLimit: JSON_BODY_LIMIT,
    // Requests carrying ids are traced in the logs by this id.
    requestIdHeader: 'x-request-id',
    // Two log lines per request cost a quarter of the status route's throughput; failures are logged by the
    // error handler, slow ones (warn) and all of them (debug) by the request log plugin.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
    ...loggerOptions(logger),
  }).withTypeProvider<TypeBoxTypeProvider>();
}

/** The routes without a token: operations, and the local driver's signed URLs. */
async function registerOps(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { settings, storage } = deps;
  const metrics = createMetrics({
    store: deps.store,
    queues: [deps.queue, deps.handoffQueue],
    triageQueue: deps.queue,
  });
  await app.register(opsRoutes, { redis: deps.redis, storage, bucket: settings.bucket, metrics });
  if (storage instanceof LocalStorage) await app.register(storageRoute, { local: storage });
  if (settings.dashboard) {
    // Loaded only when configured: Bull Board is a tenth of the API's memory.
    const { dashboardPlugin, DASHBOARD_PATH } = await import('./dashboard.js');
    await app.register(dashboardPlugin, {
      prefix: DASHBOARD_PATH,
      settings: settings.dashboard,
      queues: [deps.queue, deps.handoffQueue],
    });
  }
}

/** The /api/triage routes, with one subscriber connection for their events, closed with the app. */
async function registerTriage(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { settings } = deps;
  const events = new EventHub(() =>
    redisConnection(settings.redis, 'subscriber', { failoverTimeoutMs: settings.redisFailoverTimeoutMs }),
  );
  app.addHook('onClose', async () => events.close());
  await app.register(triageRoutes, {
    prefix: API_PREFIX,
    settings,
    store: deps.store,
    queue: deps.queue,
    storage: deps.storage,
    credits: deps.credits ?? NO_LEDGER,
    handoffQueue: deps.handoffQueue,
    events,
    version: VERSION,
    authenticator: deps.authenticator,
    authMode: deps.authenticator.mode,
    redis: deps.redis,
    heartbeatMs: deps.heartbeatMs ?? 15_000,
    cancelWaitMs: deps.cancelWaitMs ?? 5_000,
    createLimit: jobCreationLimit(app, settings.rateLimitPerMinute),
  });
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { settings } = deps;
  const app = createServer(deps.logger) as unknown as FastifyInstance;
  await app.register(requestLog);
  await app.register(errorReplies);
  await app.register(docs, { version: VERSION });
  await app.register(crossOrigin, { origins: settings.corsOrigins, localMode: deps.authenticator.mode === 'local' });
  await app.register(rateLimits, { redis: deps.redis, prefix: settings.prefix });
  await app.register(bodies, { maxUploadBytes: settings.maxUploadBytes });
  await registerOps(app, deps);
  await registerTriage(app, deps);
  return app;
}
