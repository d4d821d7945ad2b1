/** A finished job's answer: its picks with signed URLs (and, asked, every photo's fate), and a ZIP of the picks. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { JobStatus } from '@triage/core';
import { loadSelection, photoFates, type PhotoFate } from '@triage/queue';
import { zipSelection } from '../download.js';
import { HttpError } from '../errors.js';
import { ownedMeta } from '../jobs.js';
import { signPicks } from '../signing.js';
import * as S from '../schemas.js';
import { security, tags, type TriageRouteOptions } from './common.js';

/** The old service's messages, which the webapp shows as they are. */
export const NOT_COMPLETE_DOWNLOAD = 'Triage must be completed before downloading';
export const NOTHING_TO_DOWNLOAD = 'No photos to download';

function notComplete(status: JobStatus): HttpError {
  return new HttpError(400, `Triage not complete. Status: ${status}`);
}

/** A photo of `?include=all`: what became of it, and why. */
function photoRow(f: PhotoFate) {
  return {
    id: String(f.index),
    original_filename: f.name,
    storage_path: f.path,
    fate: f.selected
      ? ('selected' as const)
      : f.coarse?.failure || f.fine?.failure
        ? ('failed' as const)
        : f.coarse
          ? ('not_selected' as const)
          : ('not_reviewed' as const),
    reason: f.reason,
    rank: f.rank,
    coarse_votes: f.coarse ? f.coarse.votes : null,
    fine_votes: f.fine ? f.fine.votes : null,
    quality: f.fine?.quality ?? f.coarse?.quality ?? null,
    group: f.group && { id: String(f.group.id), size: f.group.size, picked: f.group.picked },
    signals: f.signals,
    flaw: f.flaw,
  };
}

/** The answer of `/results`: an ended job's picks with signed URLs, and with `everyPhoto` each photo's fate. */
async function jobResults(opts: TriageRouteOptions, job_id: string, userId: string, everyPhoto: boolean) {
  const { store, storage } = opts;
  const meta = await ownedMeta(store, job_id, userId);
  if (meta.status !== 'completed' && meta.status !== 'failed') throw notComplete(meta.status);
  const status = (await store.status(job_id))!;
  const selection = meta.status === 'completed' ? await loadSelection(store, job_id) : [];
  const selected_photos = await signPicks(storage, meta.bucket, selection, opts.settings.storageTransforms);
  const { total_input, pass1_survivors, final_selected, target, criteria, error_message, photos_failed } = status;
  const reply = {
    job_id,
    status: status.status,
    selected_photos,
    total_input,
    pass1_survivors,
    final_selected,
    target,
    criteria,
    error_message,
    photos_failed,
  };
  if (!everyPhoto) return reply;
  return { ...reply, photos: (await photoFates(store, job_id)).map(photoRow) };
}

export const resultsRoutes: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, opts) => {
  const { store, storage } = opts;

  app.get(
    '/:job_id/results',
    {
      schema: {
        tags,
        security,
        summary: 'The picks in rank order with signed URLs; ?include=all adds every photo with its fate and reason',
        params: S.JobParams,
        querystring: S.ResultsQuery,
        response: { 200: S.ResultsReply, ...S.errors(400, 401, 404, 503) },
      },
    },
    async (request) =>
      jobResults(opts, request.params.job_id, request.identity.userId, request.query.include === 'all'),
  );

  app.get(
    '/:job_id/download',
    {
      schema: {
        tags,
        security,
        summary: 'A ZIP of the selected originals, streamed',
        params: S.JobParams,
        produces: ['application/zip'],
        response: {
          200: { type: 'string', format: 'binary', description: 'application/zip' },
          ...S.errors(400, 401, 404, 503),
        },
      },
    },
    async (request, reply) => {
      const { job_id } = request.params;
      const meta = await ownedMeta(store, job_id, request.identity.userId);
      if (meta.status !== 'completed') throw new HttpError(400, NOT_COMPLETE_DOWNLOAD);
      const selection = await loadSelection(store, job_id);
      // An empty ZIP would look like a download that worked.
      if (selection.length === 0) throw new HttpError(400, NOTHING_TO_DOWNLOAD);
      const zip = await zipSelection(storage, meta.bucket, selection);
      return reply
        .type('application/zip')
        .header('content-disposition', `attachment; filename=triage_${job_id.slice(0, 8)}_selected.zip`)
        .header('cache-control', 'no-store')
        .send(zip as never);
    },
  );
};
