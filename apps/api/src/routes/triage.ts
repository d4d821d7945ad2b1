/** The contract's routes under /api/triage (see the API contract), plus the events stream. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Queue } from 'bullmq';
import type { preHandlerAsyncHookHandler } from 'fastify';
import {
  storedObjects,
  activeJobs,
  eventsChannel,
  loadSelection,
  photoFates,
  type HandOffJobData,
  type TriageStatus,
} from '@triage/queue';
import type { StorageDriver } from '@triage/storage';
import { TERMINAL_STATUSES, type JobStatus } from '@triage/core';
import { proceedWithCredits, refundUnserved } from '../proceed.js';
import { zipSelection } from '../download.js';
import { HttpError, jobNotFound, withDeadline } from '../errors.js';
import type { EventHub } from '../events.js';
import { acceptTriage, assertOwner, ownedMeta, type JobDeps } from '../jobs.js';
import { signPicks } from '../signing.js';
import { acceptUpload } from '../uploads.js';
import * as S from '../schemas.js';

export interface TriageRouteOptions extends JobDeps {
  storage: StorageDriver;
  handoffQueue: Queue<HandOffJobData>;
  events: EventHub;
  version: string;
  authMode: string;
  /** Comment lines keep an idle events stream open through proxies. */
  heartbeatMs: number;
  /** How long DELETE waits for a running job's worker to stop. */
  cancelWaitMs: number;
  /** The per-user rate limit of job creation, shared by the job-creating routes (a preHandler hook). */
  createLimit: preHandlerAsyncHookHandler;
}

function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

function notComplete(status: JobStatus): HttpError {
  return new HttpError(400, `Triage not complete. Status: ${status}`);
}

/** The old service's messages, which the webapp shows as they are (download and proceed). */
export const NOT_COMPLETE_DOWNLOAD = 'Triage must be completed before downloading';
export const NOT_COMPLETE_PROCEED = 'Triage must be completed before proceeding to scoring';
export const NOTHING_TO_DOWNLOAD = 'No photos to download';
export const NOTHING_TO_SCORE = 'No photos to score';

export const triageRoutes: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, opts) => {
  const { store, storage } = opts;
  const tags = ['triage'];
  const security = [{ bearer: [] }];

  app.get(
    '/health',
    { schema: { tags, summary: 'Liveness of the API (no auth)', response: { 200: S.HealthReply } }, config: { public: true } },
    async () => ({ status: 'ok' as const, version: opts.version, service: 'photo-triage-api', auth: opts.authMode }),
  );

  app.get(
    '/active',
    { schema: { tags, security, summary: "The caller's pending and processing jobs, newest first", response: { 200: S.ActiveReply, ...S.errors(401, 503) } } },
    async (request) => ({ jobs: await activeJobs(store, request.identity.userId) }),
  );

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

  app.get(
    '/:job_id/events',
    {
      schema: {
        tags,
        security,
        summary: 'Server-sent events: the status object whenever it changes; the stream ends when the job ends',
        params: S.JobParams,
        produces: ['text/event-stream'],
        response: { ...S.errors(401, 404, 503) },
      },
    },
    async (request, reply) => {
      const { job_id } = request.params;
      await assertOwner(store, job_id, request.identity.userId);
      let last = '';
      let open = true;
      let ready = false;
      const pending: string[] = [];
      const raw = reply.raw;
      let sequence = 0;
      const send = (json: string) => {
        if (!open || json === last) return;
        last = json;
        raw.write(`event: status\nid: ${++sequence}\ndata: ${json}\n\n`);
        if (isTerminal((JSON.parse(json) as TriageStatus).status)) finish();
      };
      const onMessage = (json: string) => (ready ? send(json) : pending.push(json));
      // Subscribe before reading the status, so that no change falls between the two.
      const unsubscribe = await withDeadline(opts.events.subscribe(eventsChannel(store.prefix, job_id), onMessage), 5000, 'subscribing');
      let heartbeat: NodeJS.Timeout | undefined;
      function finish() {
        if (!open) return;
        open = false;
        clearInterval(heartbeat);
        void unsubscribe();
        raw.end();
      }
      let status: TriageStatus | null;
      try {
        status = await store.status(job_id);
      } catch (err) {
        await unsubscribe();
        throw err;
      }
      if (!status) {
        await unsubscribe();
        throw jobNotFound();
      }
      reply.hijack();
      raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.write(`retry: 2000\n\n`);
      request.raw.on('close', finish);
      send(JSON.stringify(status));
      ready = true;
      for (const json of pending.splice(0)) send(json);
      // The heartbeat also re-reads the status: a missed message, or a job deleted meanwhile, still ends the stream.
      heartbeat = setInterval(() => {
        if (!open) return;
        raw.write(': heartbeat\n\n');
        store.status(job_id).then(
          (s) => {
            if (!s) {
              raw.write('event: gone\ndata: {"detail":"Triage job not found"}\n\n');
              finish();
            } else send(JSON.stringify(s));
          },
          () => {},
        );
      }, opts.heartbeatMs);
    },
  );

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
    async (request) => {
      const { job_id } = request.params;
      const meta = await ownedMeta(store, job_id, request.identity.userId);
      if (meta.status !== 'completed' && meta.status !== 'failed') throw notComplete(meta.status);
      const status = (await store.status(job_id))!;
      const selection = meta.status === 'completed' ? await loadSelection(store, job_id) : [];
      const selected_photos = await signPicks(storage, meta.bucket, selection, opts.settings.storageTransforms);
      const reply = {
        job_id,
        status: status.status,
        selected_photos,
        total_input: status.total_input,
        pass1_survivors: status.pass1_survivors,
        final_selected: status.final_selected,
        target: status.target,
        criteria: status.criteria,
        error_message: status.error_message,
        photos_failed: status.photos_failed,
      };
      if (request.query.include !== 'all') return reply;
      const fates = await photoFates(store, job_id);
      return {
        ...reply,
        photos: fates.map((f) => ({
          id: String(f.index),
          original_filename: f.name,
          storage_path: f.path,
          fate: f.selected ? ('selected' as const) : f.coarse?.failure || f.fine?.failure ? ('failed' as const) : f.coarse ? ('not_selected' as const) : ('not_reviewed' as const),
          reason: f.reason,
          rank: f.rank,
          coarse_votes: f.coarse ? f.coarse.votes : null,
          fine_votes: f.fine ? f.fine.votes : null,
          quality: f.fine?.quality ?? f.coarse?.quality ?? null,
          group: f.group && { id: String(f.group.id), size: f.group.size, picked: f.group.picked },
          signals: f.signals,
          flaw: f.flaw,
        })),
      };
    },
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
        response: { 200: { type: 'string', format: 'binary', description: 'application/zip' }, ...S.errors(400, 401, 404, 503) },
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
      const meta = await ownedMeta(store, job_id, userId);
      if (meta.status !== 'completed') throw new HttpError(400, NOT_COMPLETE_PROCEED);
      const body = request.body;
      const asked = Array.isArray(body) ? body : (body?.photo_ids ?? null);
      const selection = await loadSelection(store, job_id);
      let chosen = selection;
      if (asked !== null) {
        const wanted = new Set(asked.map(String));
        const known = new Set(selection.map((p) => String(p.index)));
        const unknown = [...wanted].filter((id) => !known.has(id));
        if (unknown.length > 0) throw new HttpError(400, `Unknown photo ids (not among the selected photos): ${unknown.slice(0, 20).join(', ')}`);
        chosen = selection.filter((p) => wanted.has(String(p.index)));
      }
      if (chosen.length === 0) throw new HttpError(400, NOTHING_TO_SCORE);
      return proceedWithCredits(opts, userId, meta.bucket, job_id, chosen);
    },
  );

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
        // A job no worker holds is simply taken off the queue; a running one is waited for, briefly.
        const removed = await withDeadline(opts.queue.remove(job_id), 5000, 'removing the job').catch(() => 0);
        if (removed !== 1) await waitUntilEnded(job_id, opts.cancelWaitMs);
      }
      await refundUnserved(opts, job_id, meta);
      // Only the triage's own objects: copies handed to scoring live outside its folder and stay.
      await storage.remove(meta.bucket, await storedObjects(store, meta));
      await store.forget(job_id, meta.userId);
      await withDeadline(opts.queue.remove(job_id), 5000, 'removing the job').catch(() => 0);
      return { message: 'Triage job cancelled and deleted' };
    },
  );

  async function waitUntilEnded(triageId: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const status = await store.status(triageId);
      if (!status || isTerminal(status.status)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

};
