/** Operations: liveness, readiness, Prometheus metrics (no token: for the orchestrator and the scraper). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { RedisClient } from '@triage/queue';
import type { StorageDriver } from '@triage/storage';
import { HttpError, REDIS_DOWN, withDeadline } from '../errors.js';
import { ErrorReply } from '../schemas.js';

export interface OpsOptions {
  redis: RedisClient;
  storage: StorageDriver;
  bucket: string;
  metrics: { render(): Promise<string>; registry: { contentType: string } };
}

/** A storage check that passed is trusted this long by /readyz (it writes, reads and deletes an object). */
const STORAGE_CHECK_TTL_MS = 60_000;

/** The storage's own check, run at most once per TTL while it passes; 503 naming the storage's words when not. */
function storageCheck(storage: StorageDriver, bucket: string): () => Promise<void> {
  let checkedAt = -Infinity;
  return async () => {
    const check = storage.check?.bind(storage);
    if (!check || Date.now() - checkedAt < STORAGE_CHECK_TTL_MS) return;
    try {
      await withDeadline(check(bucket), 10_000, 'checking storage');
    } catch (err) {
      throw new HttpError(503, `Storage not ready: ${(err as { reason?: string }).reason ?? (err as Error).message}`);
    }
    checkedAt = Date.now();
  };
}

export const opsRoutes: FastifyPluginAsyncTypebox<OpsOptions> = async (app, opts) => {
  const tags = ['operations'];
  const checkStorage = storageCheck(opts.storage, opts.bucket);
  app.get(
    '/healthz',
    {
      logLevel: 'warn',
      schema: {
        tags,
        summary: 'The process answers',
        response: { 200: Type.Object({ status: Type.String(), uptime_s: Type.Number() }) },
      },
    },
    async () => ({ status: 'ok', uptime_s: Math.round(process.uptime()) }),
  );

  app.get(
    '/readyz',
    {
      logLevel: 'warn',
      schema: {
        tags,
        summary: 'Redis answers, and storage is usable as configured',
        response: {
          200: Type.Object({ status: Type.String(), redis: Type.String(), storage: Type.Optional(Type.String()) }),
          503: ErrorReply,
        },
      },
    },
    async () => {
      try {
        await withDeadline(opts.redis.ping(), 2000, 'PING');
      } catch {
        throw new HttpError(503, REDIS_DOWN);
      }
      if (!opts.storage.check) return { status: 'ready', redis: 'ok' };
      await checkStorage();
      return { status: 'ready', redis: 'ok', storage: 'ok' };
    },
  );

  app.get(
    '/metrics',
    { logLevel: 'warn', schema: { tags, summary: 'Prometheus metrics', produces: ['text/plain'] } },
    async (_request, reply) => {
      const text = await withDeadline(opts.metrics.render(), 5000, 'collecting metrics');
      return reply.type(opts.metrics.registry.contentType).send(text);
    },
  );
};
