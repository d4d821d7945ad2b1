/**
 * DELETE: cancels the job, removes its stored photos, forgets it. A job no worker holds is simply taken off
 * the queue; a running one is waited for, briefly, on its events (the worker publishes the cancelled status).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Queue } from 'bullmq';
import { eventsChannel, storedObjects, type TriageJobData, type TriageStatus } from '@triage/queue';
import { withDeadline } from '../errors.js';
import { ownedMeta } from '../jobs.js';
import { refundUnserved } from '../proceed.js';
import * as S from '../schemas.js';
import { isTerminal, security, SUBSCRIBE_DEADLINE_MS, tags, type TriageRouteOptions } from './common.js';

/** Takes the job off the queue: 1 when it was there and no worker held it; 0 otherwise, or when Redis is slow. */
function removeFromQueue(queue: Queue<TriageJobData>, triageId: string): Promise<number> {
  return withDeadline(queue.remove(triageId), 5000, 'removing the job').catch(() => 0);
}

/**
 * Until the triage has ended (or is gone), or `cancelWaitMs` passed: subscribed first, then the status read,
 * then each published status in turn. The wait is best effort: if the subscription cannot be made in the
 * time left, the deletion goes on as it would once the time is up.
 */
async function waitUntilEnded(opts: TriageRouteOptions, triageId: string): Promise<void> {
  const deadline = Date.now() + opts.cancelWaitMs;
  const channel = eventsChannel(opts.store.prefix, triageId);
  const feed = await opts.events.feed(channel, Math.min(SUBSCRIBE_DEADLINE_MS, opts.cancelWaitMs)).catch(() => null);
  if (!feed) return;
  try {
    let status = await opts.store.status(triageId);
    while (status && !isTerminal(status.status)) {
      const message = await feed.next(deadline - Date.now());
      if (message === null) return;
      status = JSON.parse(message) as TriageStatus;
    }
  } finally {
    await feed.close();
  }
}

export const deleteRoute: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, opts) => {
  const { store } = opts;
  app.delete(
    '/:job_id',
    {
      schema: {
        tags,
        security,
        summary: 'Cancel the job (the worker stops within one photo), remove its stored photos, forget it',
        params: S.JobParams,
        response: { 200: S.MessageReply, ...S.errors(401, 404, 503) },
      },
    },
    async (request) => {
      const { job_id } = request.params;
      const meta = await ownedMeta(store, job_id, request.identity.userId);
      if (!isTerminal(meta.status)) {
        await store.requestCancel(job_id);
        if ((await removeFromQueue(opts.queue, job_id)) !== 1) await waitUntilEnded(opts, job_id);
      }
      await refundUnserved(opts, job_id, meta);
      // Only the triage's own objects: copies handed to scoring live outside its folder and stay.
      await opts.storage.remove(meta.bucket, await storedObjects(store, meta));
      await store.forget(job_id, meta.userId);
      await removeFromQueue(opts.queue, job_id);
      return { message: 'Triage job cancelled and deleted' };
    },
  );
};
