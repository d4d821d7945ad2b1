/**
 * The contract's routes under /api/triage (see the API contract), plus the events stream: one plugin per
 * concern, all behind the identity hook (but /health).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { RedisClient } from '@triage/queue';
import type { Authenticator } from '../auth.js';
import { identity } from '../plugins/identity.js';
import type { TriageRouteOptions } from './common.js';
import { deleteRoute } from './delete.js';
import { eventsRoute } from './events.js';
import { proceedRoute } from './proceed.js';
import { resultsRoutes } from './results.js';
import { jobStatusRoute, statusRoutes } from './status.js';
import { submitRoutes } from './submit.js';

export interface TriageScopeOptions extends TriageRouteOptions {
  authenticator: Authenticator;
  /** The producer connection: a request fails at once with 503 while it is down. */
  redis: RedisClient;
}

export const triageRoutes: FastifyPluginAsync<TriageScopeOptions> = async (scope, opts) => {
  // The scope's own prefix is not its routes' (they would be under it twice).
  const { prefix: _prefix, authenticator, redis, ...routeOptions } = opts as TriageScopeOptions & { prefix?: string };
  await scope.register(identity, { authenticator, redis });
  for (const routes of [
    statusRoutes,
    submitRoutes,
    jobStatusRoute,
    eventsRoute,
    resultsRoutes,
    proceedRoute,
    deleteRoute,
  ]) {
    await scope.register(routes, routeOptions);
  }
};
