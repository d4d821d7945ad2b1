/** Reading jobs: the API's liveness (no token), the caller's active jobs; one job's status. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { activeJobs } from '@triage/queue';
import { jobNotFound } from '../errors.js';
import * as S from '../schemas.js';
import { security, tags, type TriageRouteOptions } from './common.js';

export const statusRoutes: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, opts) => {
  const { store } = opts;

  app.get(
    '/health',
    {
      schema: { tags, summary: 'Liveness of the API (no auth)', response: { 200: S.HealthReply } },
      config: { public: true },
    },
    async () => ({ status: 'ok' as const, version: opts.version, service: 'photo-triage-api', auth: opts.authMode }),
  );

  app.get(
    '/active',
    {
      schema: {
        tags,
        security,
        summary: "The caller's pending and processing jobs, newest first",
        response: { 200: S.ActiveReply, ...S.errors(401, 503) },
      },
    },
    async (request) => ({ jobs: await activeJobs(store, request.identity.userId) }),
  );
};

/** Registered after the submit routes: the OpenAPI document lists the routes in the contract's order. */
export const jobStatusRoute: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, { store }) => {
  app.get(
    '/:job_id/status',
    { schema: { tags, security, params: S.JobParams, response: { 200: S.StatusReply, ...S.errors(401, 404, 503) } } },
    async (request) => {
      const { job_id } = request.params;
      const status = await store.ownedStatus(job_id, request.identity.userId);
      if (!status) throw jobNotFound();
      return status;
    },
  );
};
