/** Operations: liveness, readiness, Prometheus metrics, and the local storage driver's signed URLs. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { RedisClient } from '@triage/queue';
import { contentTypeOf, InvalidPathError, LocalStorage, ObjectNotFoundError, type StorageDriver } from '@triage/storage';
import { HttpError, REDIS_DOWN, withDeadline } from '../errors.js';
import { ErrorReply } from '../schemas.js';

export interface OpsOptions {
  redis: RedisClient;
  storage: StorageDriver;
  bucket: string;
  metrics: { render(): Promise<string>; registry: { contentType: string } };
}

export const STORAGE_ROUTE = '/storage';

/** A storage check that passed is trusted this long by /readyz (it writes, reads and deletes an object). */
const STORAGE_CHECK_TTL_MS = 60_000;

export const opsRoutes: FastifyPluginAsyncTypebox<OpsOptions> = async (app, opts) => {
  const tags = ['operations'];
  let storageCheckedAt = -Infinity;
  async function checkStorage(): Promise<void> {
    const check = opts.storage.check?.bind(opts.storage);
    if (!check || Date.now() - storageCheckedAt < STORAGE_CHECK_TTL_MS) return;
    try {
      await withDeadline(check(opts.bucket), 10_000, 'checking storage');
    } catch (err) {
      throw new HttpError(503, `Storage not ready: ${(err as { reason?: string }).reason ?? (err as Error).message}`);
    }
    storageCheckedAt = Date.now();
  }
  app.get(
    '/healthz',
    { logLevel: 'warn', schema: { tags, summary: 'The process answers', response: { 200: Type.Object({ status: Type.String(), uptime_s: Type.Number() }) } } },
    async () => ({ status: 'ok', uptime_s: Math.round(process.uptime()) }),
  );

  app.get(
    '/readyz',
    {
      logLevel: 'warn',
      schema: {
        tags,
        summary: 'Redis answers, and storage is usable as configured',
        response: { 200: Type.Object({ status: Type.String(), redis: Type.String(), storage: Type.Optional(Type.String()) }), 503: ErrorReply },
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

  app.get('/metrics', { logLevel: 'warn', schema: { tags, summary: 'Prometheus metrics', produces: ['text/plain'] } }, async (_request, reply) => {
    const text = await withDeadline(opts.metrics.render(), 5000, 'collecting metrics');
    return reply.type(opts.metrics.registry.contentType).send(text);
  });

  // Signed URLs of the local driver point here; the signature is the authorisation. Other drivers sign their own.
  const local = opts.storage instanceof LocalStorage ? opts.storage : null;
  if (!local) return;
  app.get(
    `${STORAGE_ROUTE}/:bucket/*`,
    {
      schema: {
        tags,
        summary: 'An object of the local storage driver, by a signed URL',
        params: Type.Object({ bucket: Type.String(), '*': Type.String() }),
        querystring: Type.Object({ expires: Type.Integer(), signature: Type.String({ maxLength: 200 }) }),
        response: { 403: ErrorReply, 404: ErrorReply },
      },
    },
    async (request, reply) => {
      const { bucket, '*': path } = request.params;
      const { expires, signature } = request.query;
      let valid = false;
      try {
        valid = local.verifySignedUrl(bucket, path, expires, signature);
      } catch {
        valid = false;
      }
      if (!valid) throw new HttpError(403, 'Invalid or expired signature');
      try {
        const stream = await local.readStream(bucket, path);
        return reply.type(contentTypeOf(path)).header('cache-control', 'private, max-age=3600').send(stream as never);
      } catch (err) {
        if (err instanceof ObjectNotFoundError || err instanceof InvalidPathError) throw new HttpError(404, 'Object not found');
        throw err;
      }
    },
  );
};
