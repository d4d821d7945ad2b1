/** Handing a completed job's picks (all, or those asked for) to the next stage, charged per photo. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { loadSelection, type SelectedPhoto } from '@triage/queue';
import { HttpError } from '../errors.js';
import { ownedMeta } from '../jobs.js';
import { proceedWithCredits } from '../proceed.js';
import * as S from '../schemas.js';
import { security, tags, type TriageRouteOptions } from './common.js';

/** The old service's messages, which the webapp shows as they are. */
export const NOT_COMPLETE_PROCEED = 'Triage must be completed before proceeding to scoring';
export const NOTHING_TO_SCORE = 'No photos to score';

/** The picks asked for (all when `asked` is null); 400 naming the ids that are not picks. */
function chosenPicks(selection: SelectedPhoto[], asked: readonly (string | number)[] | null): SelectedPhoto[] {
  if (asked === null) return selection;
  const wanted = new Set(asked.map(String));
  const known = new Set(selection.map((p) => String(p.index)));
  const unknown = [...wanted].filter((id) => !known.has(id));
  if (unknown.length > 0)
    throw new HttpError(400, `Unknown photo ids (not among the selected photos): ${unknown.slice(0, 20).join(', ')}`);
  return selection.filter((p) => wanted.has(String(p.index)));
}

export const proceedRoute: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, opts) => {
  app.post(
    '/:job_id/proceed',
    {
      schema: {
        tags,
        security,
        summary: 'Hand the picks (all, or body {photo_ids}; a bare array too) to the next stage',
        params: S.JobParams,
        body: S.ProceedBody,
        response: { 200: S.ProceedReply, ...S.errors(400, 401, 402, 404, 503) },
      },
    },
    async (request) => {
      const { job_id } = request.params;
      const userId = request.identity.userId;
      const meta = await ownedMeta(opts.store, job_id, userId);
      if (meta.status !== 'completed') throw new HttpError(400, NOT_COMPLETE_PROCEED);
      const body = request.body;
      const asked = Array.isArray(body) ? body : (body?.photo_ids ?? null);
      const chosen = chosenPicks(await loadSelection(opts.store, job_id), asked);
      if (chosen.length === 0) throw new HttpError(400, NOTHING_TO_SCORE);
      return proceedWithCredits(opts, userId, meta.bucket, job_id, chosen);
    },
  );
};
