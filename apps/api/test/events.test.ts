/**
 * The event hub and what is built on it, over real Redis: a feed queues a channel's messages from the moment
 * it is subscribed; the events stream relays each status change and ends when the job ends, is deleted or the
 * client goes; DELETE's wait for a running job ends on the job's own cancelled status, or at its deadline.
 * Status changes are written through the store, as the worker would (no worker runs here).
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsChannel, redisConnection, TRIAGE_QUEUE, type TriageStatus } from '@triage/queue';
import { EventHub } from '../src/events.js';
import { eventually, setup, type Env } from './harness.js';

const USER = 'user-events';
/** Longer than any test here may run: a DELETE that returns was woken by the job's status, not by its deadline. */
const LONG_WAIT_MS = 250_000;

let env: Env;
let base: string;

beforeAll(async () => {
  env = await setup({}, { cancelWaitMs: LONG_WAIT_MS });
  base = await env.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await env?.close();
});

/** Subscribers of a channel, as Redis counts them (every connection of this process included). */
async function subscribers(channel: string): Promise<number> {
  const reply = (await (env.redis as Redis).pubsub('NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

async function accepted(target: Env = env): Promise<string> {
  const jobId = randomUUID();
  const files = await target.stage(USER, jobId, 3);
  const res = await target.app.inject({
    method: 'POST',
    url: '/api/triage/start-from-storage',
    headers: await target.auth(USER),
    payload: { job_id: jobId, files },
  });
  expect(res.statusCode, res.body).toBe(200);
  return jobId;
}

/**
 * A job a worker holds: taken from the queue by a real BullMQ worker (no processor: it only holds the lock,
 * so the queue cannot remove the job and DELETE must wait for it), and processing.
 */
async function running(target: Env = env): Promise<{ jobId: string; holder: Worker }> {
  await target.queue.drain(); // the other tests' jobs, still waiting: the holder must take this one
  const jobId = await accepted(target);
  const holder = new Worker(TRIAGE_QUEUE, null, {
    connection: redisConnection(target.settings.redis, 'worker'),
    prefix: target.prefix,
    lockDuration: LONG_WAIT_MS,
  });
  const job = await holder.getNextJob(randomUUID());
  expect(job?.id).toBe(jobId);
  expect(await target.store.start(jobId)).toBe(true);
  return { jobId, holder };
}

interface Block {
  event?: string;
  id?: string;
  data?: string;
  comment?: string;
}

/** Reads an SSE response block by block: `next()` is the next block, or null once the stream has ended. */
function sseReader(res: Response) {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return async function next(): Promise<Block | null> {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const lines = buffer.slice(0, end).split('\n');
        buffer = buffer.slice(end + 2);
        const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
        const comment = lines.find((l) => l.startsWith(': '))?.slice(2);
        return { event: field('event'), id: field('id'), data: field('data'), comment };
      }
      const { value, done } = await reader.read();
      if (done) return null;
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

/** The next status event, heartbeats and the `retry` line skipped. */
async function nextStatus(next: () => Promise<Block | null>): Promise<{ id: string; status: TriageStatus } | null> {
  for (;;) {
    const block = await next();
    if (block === null) return null;
    if (block.event === 'status') return { id: block.id!, status: JSON.parse(block.data!) as TriageStatus };
  }
}

async function openEvents(jobId: string, signal?: AbortSignal): Promise<Response> {
  const res = await fetch(`${base}/api/triage/${jobId}/events`, {
    headers: await env.auth(USER),
    ...(signal && { signal }),
  });
  expect(res.status).toBe(200);
  return res;
}

describe('the event hub', () => {
  it('a feed queues what is published once it is subscribed, in order; next() is null when nothing came or once closed', async () => {
    const hub = new EventHub(() => redisConnection(env.settings.redis, 'subscriber'));
    const channel = `${env.prefix}:hub-test:${randomUUID()}`;
    try {
      // Two feeds of one channel subscribed at once: each resolves only when Redis has the subscription.
      const [a, b] = await Promise.all([hub.feed(channel, 5000), hub.feed(channel, 5000)]);
      expect(await subscribers(channel)).toBe(1);
      for (const m of ['one', 'two']) await env.redis.publish(channel, m);
      expect(await a.next(LONG_WAIT_MS)).toBe('one');
      expect(await a.next(LONG_WAIT_MS)).toBe('two');
      expect(await b.next(LONG_WAIT_MS)).toBe('one');
      expect(await a.next(0)).toBeNull();
      const waiting = a.next(LONG_WAIT_MS);
      await a.close();
      expect(await waiting).toBeNull();
      expect(a.closed).toBe(true);
      // The channel stays subscribed for the other feed, and is dropped with the last one.
      expect(await subscribers(channel)).toBe(1);
      await env.redis.publish(channel, 'three');
      expect(await b.next(LONG_WAIT_MS)).toBe('two');
      expect(await b.next(LONG_WAIT_MS)).toBe('three');
      await b.close();
      expect(hub.channels).toBe(0);
      await eventually(async () => (await subscribers(channel)) === 0);
    } finally {
      hub.close();
    }
  });
});

describe('the events stream', () => {
  it('sends each status change once, numbered, and ends with the job', async () => {
    const jobId = await accepted();
    const next = sseReader(await openEvents(jobId));
    expect(await nextStatus(next)).toMatchObject({ id: '1', status: { job_id: jobId, status: 'pending' } });
    await env.store.start(jobId);
    expect(await nextStatus(next)).toMatchObject({ id: '2', status: { status: 'processing' } });
    await env.store.finish(jobId, { status: 'failed', errorMessage: 'stopped by the test' });
    expect(await nextStatus(next)).toMatchObject({
      id: '3',
      status: { status: 'failed', error_message: 'stopped by the test' },
    });
    expect(await next()).toBeNull(); // the stream ended by itself
    await eventually(async () => (await subscribers(eventsChannel(env.prefix, jobId))) === 0);
  });

  it('a job deleted while the stream is open: a heartbeat finds it gone, says so and ends the stream', async () => {
    const jobId = await accepted();
    const next = sseReader(await openEvents(jobId));
    expect(await nextStatus(next)).toMatchObject({ status: { status: 'pending' } });
    await env.store.forget(jobId, USER); // nothing is published: only the heartbeat's re-read can tell
    const blocks: Block[] = [];
    for (let b = await next(); b !== null; b = await next()) blocks.push(b);
    expect(blocks.some((b) => b.comment === 'heartbeat')).toBe(true);
    expect(blocks.at(-1)).toMatchObject({ event: 'gone', data: '{"detail":"Triage job not found"}' });
  });

  it('a client that goes away: its subscription is dropped', async () => {
    const jobId = await accepted();
    const channel = eventsChannel(env.prefix, jobId);
    const abort = new AbortController();
    const next = sseReader(await openEvents(jobId, abort.signal));
    expect(await nextStatus(next)).toMatchObject({ status: { status: 'pending' } });
    expect(await subscribers(channel)).toBe(1);
    abort.abort();
    await eventually(async () => (await subscribers(channel)) === 0);
  });
});

describe("DELETE's wait for a running job", () => {
  it('ends when the worker publishes the cancelled status, long before its deadline', async () => {
    const { jobId, holder } = await running();
    const began = Date.now();
    let settled = false;
    const deleting = env.app
      .inject({ method: 'DELETE', url: `/api/triage/${jobId}`, headers: await env.auth(USER) })
      .finally(() => (settled = true));
    // The DELETE has asked the worker to stop and subscribed to the job's events: it waits.
    await eventually(
      async () =>
        (await env.store.meta(jobId))?.cancelRequested && (await subscribers(eventsChannel(env.prefix, jobId))) === 1,
    );
    expect(settled).toBe(false);
    await env.store.finish(jobId, { status: 'cancelled' }); // as the worker does when it sees the cancel
    const res = await deleting;
    expect(res.statusCode, res.body).toBe(200);
    expect(Date.now() - began).toBeLessThan(LONG_WAIT_MS);
    expect(await env.store.meta(jobId)).toBeNull();
    expect(await subscribers(eventsChannel(env.prefix, jobId))).toBe(0);
    await holder.close(true);
  });

  it('a worker that never answers: DELETE goes on once cancelWaitMs have passed', async () => {
    const short = await setup({}, { cancelWaitMs: 300 });
    try {
      const { jobId, holder } = await running(short);
      const began = Date.now();
      const res = await short.app.inject({
        method: 'DELETE',
        url: `/api/triage/${jobId}`,
        headers: await short.auth(USER),
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(Date.now() - began).toBeGreaterThanOrEqual(300);
      expect(await short.store.meta(jobId)).toBeNull();
      await holder.close(true);
    } finally {
      await short.close();
    }
  });
});
