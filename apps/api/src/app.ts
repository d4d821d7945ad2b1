/**
 * The API as a Fastify instance built from injected dependencies: tests call `buildApp(deps)` and
 * `app.inject`, without a port; `server.ts` reads the settings, connects and listens.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queue } from 'bullmq';
import { redisConnection, type RedisClient } from '@triage/queue';
import type { Logger } from 'pino';
import { TriageInputError } from '@triage/core';
import type { HandOffJobData, TriageJobData, TriageStore } from '@triage/queue';
import { InvalidPathError, StorageRequestError, type StorageDriver } from '@triage/storage';
import { AuthError, type Authenticator, type Identity } from './auth.js';
import { allowedOrigins } from './cors.js';
import { NO_LEDGER, type CreditLedger } from './credits.js';
import { HttpError, isRedisDown, REDIS_DOWN } from './errors.js';
import { EventHub } from './events.js';
import { createMetrics } from './metrics.js';
import { opsRoutes } from './routes/ops.js';
import { triageRoutes } from './routes/triage.js';
import type { ApiSettings } from './settings.js';

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity;
  }
  interface FastifyContextConfig {
    /** A route of the /api/triage scope that needs no token (health). */
    public?: boolean;
  }
}

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

/** Log fields that may carry credentials. */
const REDACTED_LOG_PATHS = ['busboyOptions.headers', 'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie'];

/** Query parameters whose values are worth logging; every other value is masked. */
const LOGGED_QUERY_PARAMS = new Set(['include']);

/** A request URL fit for the logs: the path, and the query with every value but the harmless ones masked. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      return LOGGED_QUERY_PARAMS.has(name) ? pair : `${name}=[REDACTED]`;
    });
  return `${url.slice(0, q)}?${query.join('&')}`;
}

function serializeRequest(request: { method: string; url: string; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  return { method: request.method, url: loggableUrl(request.url), host: request.host, remoteAddress: request.ip, remotePort: request.socket?.remotePort };
}

/** A request taking longer than this is logged, except the routes that stream for as long as they must. */
const SLOW_REQUEST_MS = 2000;
const STREAMING_ROUTE = /\/(events|download)$|^\/storage\//;

/** Largest JSON body: 2,000 file entries with long names and paths fit easily. */
const JSON_BODY_LIMIT = 4 * 1024 * 1024;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { settings, redis, store } = deps;
  const app = Fastify({
    bodyLimit: JSON_BODY_LIMIT,
    // Requests carrying ids are traced in the logs by this id.
    requestIdHeader: 'x-request-id',
    // Two log lines per request cost a quarter of the status route's throughput; failures are logged by the
    // error handler, slow ones (warn) and all of them (debug) by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
    // Request URLs are logged with their query values masked (a signed storage URL's signature, or a token a
    // client put in the query, must never reach the logs), and request headers never: @fastify/multipart traces
    // the whole header set, Authorization included.
    ...(deps.logger
      ? {
          loggerInstance: deps.logger.child({}, {
            serializers: { req: serializeRequest },
            redact: { paths: REDACTED_LOG_PATHS, censor: '[REDACTED]' },
          }) as unknown as FastifyBaseLogger,
        }
      : { logger: false }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('identity', null as unknown as Identity);
  // Failures are logged by the error handler; a slow answer is worth a warning; every request is a debug
  // line (by its route pattern, never its URL: query strings carry signatures and tokens).
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? '';
    const ms = Math.round(reply.elapsedTime);
    const line = { method: request.method, route, status: reply.statusCode, ms };
    if (ms >= SLOW_REQUEST_MS && !STREAMING_ROUTE.test(route)) request.log.warn(line, 'slow request');
    else request.log.debug(line, 'request completed');
  });

  // Clients send DELETE and proceed with a JSON content type and no body: that is "no body", not a 400.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) return done(null, undefined);
    return json(request, body as string, done);
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).headers(error.headers).send({ detail: error.message, ...error.extra });
    }
    if (error instanceof AuthError) {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ detail: error.message });
    }
    if (error instanceof TriageInputError) return reply.code(400).send({ detail: error.message });
    const err = error as { validation?: unknown; statusCode?: number; message?: string };
    if (err.validation) return reply.code(400).send({ detail: `Invalid request: ${err.message}` });
    if (error instanceof StorageRequestError) {
      // The storage's own words (never a key or a URL): the operator's fix, or the outage, is in them.
      request.log.error({ err: error.reason, setting: error.details.setting }, 'storage request failed');
      return reply.code(error.kind === 'refused' ? 400 : 503).send({ detail: `Storage: ${error.reason}` });
    }
    if (error instanceof InvalidPathError) return reply.code(400).send({ detail: error.message });
    if (isRedisDown(error)) {
      request.log.warn({ err: (error as Error).message }, 'Redis unavailable');
      return reply.code(503).send({ detail: REDIS_DOWN });
    }
    const code = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (code >= 500) {
      request.log.error({ err: error }, 'request failed');
      return reply.code(code).send({ detail: 'Internal server error' });
    }
    return reply.code(code).send({ detail: err.message ?? 'Bad request' });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ detail: `Not found: ${request.method} ${request.url.split('?')[0]}` }));

  await app.register(swagger, {
    openapi: {
      info: { title: 'Photo triage API', version: VERSION, description: 'Picks the best photos of a set with a vision model, in two passes over labelled grids.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(cors, {
    origin: allowedOrigins(settings.corsOrigins, deps.authenticator.mode === 'local'),
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposedHeaders: ['Content-Disposition', 'Retry-After'],
    maxAge: 600,
  });

  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    redis,
    nameSpace: `${settings.prefix}:ratelimit:`,
    // While Redis is away the guard below answers 503 anyway; the limiter must not turn that into a 500.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new HttpError(429, `Too many triage jobs started: at most ${context.max} per minute. Try again in ${context.after}.`, {}, {
        'retry-after': String(Math.ceil(context.ttl / 1000)),
      }),
  });

  await app.register(multipart, {
    limits: { fileSize: settings.maxUploadBytes, files: 2_001, fields: 20, fieldSize: 10_000, parts: 2_100, headerPairs: 100 },
  });

  const events = new EventHub(() => redisConnection(settings.redis, 'subscriber', { failoverTimeoutMs: settings.redisFailoverTimeoutMs }));
  app.addHook('onClose', async () => events.close());

  const metrics = createMetrics({ store, queues: [deps.queue, deps.handoffQueue], triageQueue: deps.queue });
  await app.register(opsRoutes, { redis, storage: deps.storage, bucket: settings.bucket, metrics });

  if (settings.dashboard) {
    // Loaded only when configured: Bull Board is a tenth of the API's memory.
    const { dashboardPlugin, DASHBOARD_PATH } = await import('./dashboard.js');
    await app.register(dashboardPlugin, { prefix: DASHBOARD_PATH, settings: settings.dashboard, queues: [deps.queue, deps.handoffQueue] });
  }

  await app.register(
    async (scope) => {
      scope.addHook('onRequest', async (request) => {
        if (request.routeOptions.config.public) return;
        request.identity = await deps.authenticator.verify(request.headers.authorization);
        // Fail at once rather than queue behind a connection that is down.
        if (redis.status !== 'ready') throw new HttpError(503, REDIS_DOWN);
      });
      await scope.register(triageRoutes, {
        settings,
        store,
        queue: deps.queue,
        storage: deps.storage,
        credits: deps.credits ?? NO_LEDGER,
        handoffQueue: deps.handoffQueue,
        events,
        version: VERSION,
        authMode: deps.authenticator.mode,
        heartbeatMs: deps.heartbeatMs ?? 15_000,
        cancelWaitMs: deps.cancelWaitMs ?? 5_000,
        // One budget per user for both job-creating routes (a per-route limit would give each route its own).
        createLimit: app.rateLimit({
          max: settings.rateLimitPerMinute,
          timeWindow: 60_000,
          keyGenerator: (request) => `user:${(request as { identity?: Identity }).identity?.userId ?? request.ip}`,
        }),
      });
    },
    { prefix: API_PREFIX },
  );

  return app as unknown as FastifyInstance;
}
