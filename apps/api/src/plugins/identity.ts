/**
 * Who calls: every route of the scope it is registered in needs a verified bearer token (`request.identity`),
 * except those marked `config: { public: true }`; and a request fails at once with 503 while Redis is down,
 * rather than queue behind a connection that is away.
 */
import fp from 'fastify-plugin';
import type { RedisClient } from '@triage/queue';
import type { Authenticator, Identity } from '../auth.js';
import { HttpError, REDIS_DOWN } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity;
  }
  interface FastifyContextConfig {
    /** A route of the /api/triage scope that needs no token (health). */
    public?: boolean;
  }
}

export interface IdentityOptions {
  authenticator: Authenticator;
  /** The producer connection, whose state says whether Redis is up. */
  redis: RedisClient;
}

export const identity = fp<IdentityOptions>(async (app, opts) => {
  app.decorateRequest('identity', null as unknown as Identity);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public) return;
    request.identity = await opts.authenticator.verify(request.headers.authorization);
    if (opts.redis.status !== 'ready') throw new HttpError(503, REDIS_DOWN);
  });
});
