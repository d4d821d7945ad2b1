/**
 * Rate limits, counted in Redis so that every API replica shares them: off by default, on for the routes that
 * create jobs, which share one budget per user (a per-route limit would give each route its own).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { RedisClient } from '@triage/queue';
import { HttpError } from '../errors.js';

export interface RateLimitOptions {
  redis: RedisClient;
  /** TRIAGE_PREFIX: the counters' keys are under it. */
  prefix: string;
}

export const rateLimits = fp<RateLimitOptions>(async (app, opts) => {
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    redis: opts.redis,
    nameSpace: `${opts.prefix}:ratelimit:`,
    // While Redis is away the identity hook answers 503 anyway; the limiter must not turn that into a 500.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new HttpError(
        429,
        `Too many triage jobs started: at most ${context.max} per minute. Try again in ${context.after}.`,
        {},
        {
          'retry-after': String(Math.ceil(context.ttl / 1000)),
        },
      ),
  });
});

/** The per-user budget of job creation, as a preHandler for each job-creating route (after `rateLimits`). */
export function jobCreationLimit(app: FastifyInstance, perMinute: number): preHandlerAsyncHookHandler {
  return app.rateLimit({
    max: perMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => `user:${(request as { identity?: { userId: string } }).identity?.userId ?? request.ip}`,
  });
}
