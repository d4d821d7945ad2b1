/**
 * Credits through the API on real PostgreSQL and Redis (each test its own database and key prefix): the
 * tier charged before a job is queued, 402 with nothing queued or charged, retries and double clicks charged
 * once, proceed charged per photo, and a DELETE before any grid was judged refunded once.
 */
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, PgCreditLedger } from '@triage/db';
import { createTestDatabase, creditsOf, seedCredits, type TestDatabase } from '@triage/db/testing';
import { BUCKET, setup, JPEG_BYTES, type Env } from './harness.js';

let env: Env;
let db: TestDatabase;

beforeEach(async () => {
  db = await createTestDatabase();
  await migrate(db.pool);
  env = await setup({}, { credits: new PgCreditLedger(db.pool) });
});

afterEach(async () => {
  await env?.close();
  await db?.drop();
});

async function start(userId: string, jobId: string, count: number) {
  const files = await env.stage(userId, jobId, count);
  return env.app.inject({
    method: 'POST',
    url: '/api/triage/start-from-storage',
    headers: await env.auth(userId),
    payload: { job_id: jobId, files },
  });
}

/** Finishes a pending job as the worker would, with one reviewed grid: picks the given indexes. */
async function complete(jobId: string, selected: number[], total: number) {
  await env.store.start(jobId);
  const verdicts = new Map(
    Array.from({ length: total }, (_, i) => [i, { votes: selected.includes(i) ? 1 : 0, reviewed: true, quality: 0.5 }]),
  );
  await env.store.recordGrid(
    jobId,
    {
      pass: 'coarse',
      grid: 0,
      photos: [...verdicts.keys()],
      labels: [],
      votes: {},
      reviewed: true,
      failures: [],
      usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 },
      asked: 1,
      models: [],
      durationMs: 1,
      finishedAt: Date.now(),
      worker: 'test',
      bytesRead: 0,
      sources: {},
      readMs: [],
    },
    verdicts,
    0,
  );
  const ranks = new Map(Array.from({ length: total }, (_, i) => [i, i + 1] as [number, number]));
  await env.store.finish(jobId, { status: 'completed', selected, ranks, pass1Survivors: selected.length });
}

describe('starting a triage', () => {
  it('charges the tier before queueing; a retried request charges nothing more', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 5);
    const jobId = randomUUID();
    const res = await start(user, jobId, 2);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ credits_deducted: 1, credits_required: 1, photo_count: 2 });
    expect(await env.queue.getJob(jobId)).toBeDefined();
    const again = await start(user, jobId, 2);
    expect(again.statusCode).toBe(409);
    expect(await creditsOf(db.pool, user)).toEqual({ balance: 4, movements: [{ amount: -1, type: 'inference' }] });
    const charge = await db.pool.query('SELECT state, amount FROM triage_charges WHERE key = $1', [`triage:${jobId}`]);
    expect(charge.rows).toEqual([{ state: 'settled', amount: 1 }]);
  });

  it('charges by photo count: 101 photos cost 3', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 3);
    const res = await start(user, randomUUID(), 101);
    expect(res.json()).toMatchObject({ credits_deducted: 3, credits_required: 3 });
    expect((await creditsOf(db.pool, user)).balance).toBe(0);
  });

  it('too few credits: 402 with the old message, nothing queued, nothing charged', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 2);
    const jobId = randomUUID();
    const res = await start(user, jobId, 101);
    expect(res.statusCode).toBe(402);
    expect(res.json()).toEqual({ detail: 'Insufficient credits: need 3, have 2' });
    expect(await env.store.meta(jobId)).toBeNull();
    expect(await env.queue.getJob(jobId)).toBeUndefined();
    expect(await creditsOf(db.pool, user)).toEqual({ balance: 2, movements: [] });
    expect((await db.pool.query('SELECT 1 FROM triage_charges')).rowCount).toBe(0);
  });

  it('the multipart upload is charged too, and refused uploads leave no files', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 1);
    const upload = async () => {
      const boundary = 'b0undary';
      const body = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
        ),
        JPEG_BYTES,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      return env.app.inject({
        method: 'POST',
        url: '/api/triage/start',
        headers: { ...(await env.auth(user)), 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: body,
      });
    };
    const first = await upload();
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ credits_deducted: 1 });
    const second = await upload();
    expect(second.statusCode).toBe(402);
    expect(second.json()).toEqual({ detail: 'Insufficient credits: need 1, have 0' });
    // Only the accepted upload's file is in storage: the refused one's was removed.
    const files = (
      await readdir(join(env.storageDir, BUCKET, 'triage', user), { recursive: true, withFileTypes: true })
    ).filter((e) => e.isFile());
    expect(files).toHaveLength(1);
    expect(await creditsOf(db.pool, user)).toEqual({ balance: 0, movements: [{ amount: -1, type: 'inference' }] });
  });
});

describe('DELETE and refunds', () => {
  it('a job deleted before any grid was judged is refunded, once', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 1);
    const jobId = randomUUID();
    expect((await start(user, jobId, 3)).statusCode).toBe(200);
    const res = await env.app.inject({ method: 'DELETE', url: `/api/triage/${jobId}`, headers: await env.auth(user) });
    expect(res.statusCode).toBe(200);
    const after = await creditsOf(db.pool, user);
    expect(after.balance).toBe(1);
    expect(after.movements).toEqual([
      { amount: -1, type: 'inference' },
      { amount: 1, type: 'refund' },
    ]);
  });

  it('a completed job is not refunded when deleted', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 1);
    const jobId = randomUUID();
    expect((await start(user, jobId, 3)).statusCode).toBe(200);
    await complete(jobId, [0], 3);
    expect(
      (await env.app.inject({ method: 'DELETE', url: `/api/triage/${jobId}`, headers: await env.auth(user) }))
        .statusCode,
    ).toBe(200);
    expect(await creditsOf(db.pool, user)).toEqual({ balance: 0, movements: [{ amount: -1, type: 'inference' }] });
  });
});

describe('a job id used again after its triage was deleted', () => {
  const del = async (user: string, jobId: string) =>
    env.app.inject({ method: 'DELETE', url: `/api/triage/${jobId}`, headers: await env.auth(user) });

  it('after a served triage: 409, nothing charged, and the old charge is never refunded by the new request', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 5);
    const jobId = randomUUID();
    expect((await start(user, jobId, 3)).statusCode).toBe(200);
    await complete(jobId, [0], 3);
    expect((await del(user, jobId)).statusCode).toBe(200);
    const again = await start(user, jobId, 3);
    expect(again.statusCode, again.body).toBe(409);
    expect(again.json()).toEqual({ detail: `Triage job ${jobId} already exists` });
    expect(await env.store.meta(jobId)).toBeNull();
    // Nothing to delete, so nothing to refund: the served triage keeps its charge.
    expect((await del(user, jobId)).statusCode).toBe(404);
    expect(await creditsOf(db.pool, user)).toEqual({ balance: 4, movements: [{ amount: -1, type: 'inference' }] });
    const charge = await db.pool.query('SELECT state FROM triage_charges WHERE key = $1', [`triage:${jobId}`]);
    expect(charge.rows).toEqual([{ state: 'settled' }]);
  });

  it('after a refunded triage (deleted before any grid was judged): charged again, as a new run', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 1);
    const jobId = randomUUID();
    expect((await start(user, jobId, 3)).statusCode).toBe(200);
    expect((await del(user, jobId)).statusCode).toBe(200);
    const again = await start(user, jobId, 3);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({ credits_deducted: 1 });
    expect(await creditsOf(db.pool, user)).toEqual({
      balance: 0,
      movements: [
        { amount: -1, type: 'inference' },
        { amount: 1, type: 'refund' },
        { amount: -1, type: 'inference' },
      ],
    });
  });
});

describe('proceed', () => {
  it('charges 1 per photo, once per photo however often it is asked, and 402 queues nothing', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 3);
    const jobId = randomUUID();
    expect((await start(user, jobId, 4)).statusCode).toBe(200);
    await complete(jobId, [3, 1], 4);
    const headers = await env.auth(user);
    // A double click: two requests at once.
    const [a, b] = await Promise.all(
      [1, 2].map(() => env.app.inject({ method: 'POST', url: `/api/triage/${jobId}/proceed`, headers })),
    );
    expect([a!.statusCode, b!.statusCode]).toEqual([200, 200]);
    expect([a!.json().credits_deducted, b!.json().credits_deducted].sort()).toEqual([0, 2]);
    expect(a!.json().queued_count).toBe(2);
    expect(await env.handoffQueue.getJobs(['waiting'], 0, -1)).toHaveLength(1);
    expect((await creditsOf(db.pool, user)).balance).toBe(0);
    // Balance 0 now: a proceed of the same photos costs nothing more and is accepted; nothing new is charged.
    const again = await env.app.inject({
      method: 'POST',
      url: `/api/triage/${jobId}/proceed`,
      headers,
      payload: { photo_ids: ['1'] },
    });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ queued_count: 1, credits_deducted: 0 });
  });

  it('too few credits for a proceed: 402, no hand-off queued', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 2);
    const jobId = randomUUID();
    expect((await start(user, jobId, 4)).statusCode).toBe(200);
    await complete(jobId, [0, 1, 2], 4);
    const res = await env.app.inject({
      method: 'POST',
      url: `/api/triage/${jobId}/proceed`,
      headers: await env.auth(user),
    });
    expect(res.statusCode).toBe(402);
    expect(res.json()).toEqual({ detail: 'Insufficient credits: need 3, have 1' });
    expect(await env.handoffQueue.getJobs(['waiting'], 0, -1)).toHaveLength(0);
    expect((await creditsOf(db.pool, user)).movements).toEqual([{ amount: -1, type: 'inference' }]);
  });
});
