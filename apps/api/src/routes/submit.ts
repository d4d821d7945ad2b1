/** Starting a triage: over photos already in storage, or (legacy) over photos uploaded in the request. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { acceptTriage } from '../jobs.js';
import { acceptUpload } from '../uploads.js';
import * as S from '../schemas.js';
import { security, tags, type TriageRouteOptions } from './common.js';

export const submitRoutes: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, opts) => {
  app.post(
    '/start-from-storage',
    {
      preHandler: opts.createLimit,
      schema: {
        tags,
        security,
        summary: 'Start a triage over photos the browser already uploaded to storage',
        body: S.StartFromStorageBody,
        response: { 200: S.StartReply, ...S.errors(400, 401, 402, 403, 409, 429, 503) },
      },
    },
    async (request) => {
      const { job_id, files, target, criteria, passes } = request.body;
      return acceptTriage(opts, request.identity.userId, {
        jobId: job_id,
        photos: files.map((f) => ({
          name: f.original_name,
          path: f.storage_path,
          ...(f.size !== undefined && { size: f.size }),
          ...(f.thumbnail_path !== undefined && { thumbnailPath: f.thumbnail_path }),
        })),
        target,
        criteria,
        passes,
      });
    },
  );

  app.post(
    '/start',
    {
      preHandler: opts.createLimit,
      schema: {
        tags,
        security,
        summary: 'Legacy: upload photos as multipart "files" parts (+ target, criteria, passes fields) and start',
        consumes: ['multipart/form-data'],
        response: { 200: S.StartReply, ...S.errors(400, 401, 402, 413, 429, 503) },
      },
    },
    async (request) => acceptUpload(opts, request, request.identity.userId),
  );
};
