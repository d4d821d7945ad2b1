/**
 * The events stream: the job's status as server-sent events whenever it changes, until the job ends.
 *
 * Built on the event hub: the route subscribes to the triage's channel (a `Feed`, which queues what comes)
 * before it reads the status, so that no change falls between the two; then one loop takes each message in
 * turn, and writes a heartbeat (re-reading the status) whenever `heartbeatMs` pass, until the job ends, is
 * deleted, or the client goes.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { eventsChannel, type TriageStatus, type TriageStore } from '@triage/queue';
import { jobNotFound } from '../errors.js';
import type { Feed } from '../events.js';
import { assertOwner } from '../jobs.js';
import * as S from '../schemas.js';
import { isTerminal, security, SUBSCRIBE_DEADLINE_MS, tags, type TriageRouteOptions } from './common.js';

/** The SSE framing of one stream: each distinct status once, numbered; heartbeats; the job's removal. */
class StatusStream {
  private last = '';
  private sequence = 0;
  ended = false;

  constructor(private readonly raw: ServerResponse) {}

  /** Sends a status (its JSON) unless it is the last one sent again; a terminal status ends the stream. */
  status(json: string): void {
    if (json === this.last) return;
    this.last = json;
    this.write(`event: status\nid: ${++this.sequence}\ndata: ${json}\n\n`);
    if (isTerminal((JSON.parse(json) as TriageStatus).status)) this.ended = true;
  }

  heartbeat(): void {
    this.write(': heartbeat\n\n');
  }

  gone(): void {
    this.write('event: gone\ndata: {"detail":"Triage job not found"}\n\n');
    this.ended = true;
  }

  /** Nothing is written once the client has gone (a status read in flight may still come back then). */
  private write(text: string): void {
    if (!this.raw.destroyed) this.raw.write(text);
  }
}

function openStream(reply: FastifyReply): ServerResponse {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  raw.write(`retry: 2000\n\n`);
  return raw;
}

/**
 * Writes the feed's statuses to `stream` until the job ends or the feed is closed (the client went). Every
 * `heartbeatMs` a heartbeat, and a re-read of the status: a missed message, or a job deleted meanwhile, still
 * ends the stream.
 */
async function relay(
  stream: StatusStream,
  feed: Feed,
  read: () => Promise<TriageStatus | null>,
  heartbeatMs: number,
): Promise<void> {
  let beat = Date.now() + heartbeatMs;
  while (!stream.ended && !feed.closed) {
    const message = await feed.next(beat - Date.now());
    if (message !== null) {
      stream.status(message);
      continue;
    }
    if (feed.closed) return;
    beat += heartbeatMs;
    stream.heartbeat();
    const status = await read().catch(() => undefined);
    if (status === null) stream.gone();
    else if (status) stream.status(JSON.stringify(status));
  }
}

/** The triage's status with the feed open, or the feed closed and the failure (or 404) thrown. */
async function firstStatus(store: TriageStore, triageId: string, feed: Feed): Promise<TriageStatus> {
  try {
    const status = await store.status(triageId);
    if (!status) throw jobNotFound();
    return status;
  } catch (err) {
    await feed.close();
    throw err;
  }
}

export const eventsRoute: FastifyPluginAsyncTypebox<TriageRouteOptions> = async (app, opts) => {
  const { store } = opts;
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
      const feed = await opts.events.feed(eventsChannel(store.prefix, job_id), SUBSCRIBE_DEADLINE_MS);
      const status = await firstStatus(store, job_id, feed);
      const raw = openStream(reply);
      request.raw.on('close', () => void feed.close());
      const stream = new StatusStream(raw);
      stream.status(JSON.stringify(status));
      relay(stream, feed, () => store.status(job_id), opts.heartbeatMs)
        .catch((err: unknown) => request.log.warn({ err }, 'events stream failed'))
        .finally(() => {
          void feed.close();
          raw.end();
        });
    },
  );
};
