/**
 * Every contract route and error through `app.inject`, with real Redis, the local storage driver and the
 * real token verification. No worker consumes the queue here, so accepted jobs stay pending (finished
 * states are written through the store, as the worker would).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFLINE_PROFILE } from '@triage/core';
import { prepareTriage, userJobsKey } from '@triage/queue';
import { isLoopbackHost, readApiSettings } from '../src/settings.js';
import { BUCKET, PUBLIC_URL, setup, type Env } from './harness.js';

let env: Env;
const A = 'user-a';
const B = 'user-b';

beforeAll(async () => {
  env = await setup({ DASHBOARD_USER: 'admin', DASHBOARD_PASSWORD: 'pw', CORS_ORIGINS: 'https://app.example.com' });
});
afterAll(async () => {
  await env?.close();
});

async function start(userId: string, body: Record<string, unknown>) {
  return env.app.inject({
    method: 'POST',
    url: '/api/triage/start-from-storage',
    headers: await env.auth(userId),
    payload: body,
  });
}

/** Accepts a job of `count` staged photos for `userId`. */
async function accepted(userId: string, count = 5, extra: Record<string, unknown> = {}) {
  const jobId = randomUUID();
  const files = await env.stage(userId, jobId, count);
  const res = await start(userId, { job_id: jobId, files, ...extra });
  expect(res.statusCode, res.body).toBe(200);
  return { jobId, files, reply: res.json() };
}

/** Finishes a pending job as the worker would: picks the given indexes, best first. */
async function complete(jobId: string, selected: number[], total: number) {
  await env.store.start(jobId);
  const ranks = new Map(Array.from({ length: total }, (_, i) => [i, i + 1] as [number, number]));
  // Every photo was looked at in the coarse pass; the picks got a vote.
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
      usage: { inputTokens: 10, outputTokens: 2, costUsd: 0 },
      asked: 1,
      models: [],
      durationMs: 5,
      finishedAt: Date.now(),
      worker: 'test',
      bytesRead: 0,
      sources: {},
      readMs: [],
    },
    verdicts,
    0,
  );
  await env.store.finish(jobId, { status: 'completed', selected, ranks, pass1Survivors: selected.length });
}

describe('settings', () => {
  it('defaults, validation, and what counts as loopback for local mode', () => {
    const s = readApiSettings({});
    expect(s).toMatchObject({
      host: '127.0.0.1',
      port: 8000,
      corsOrigins: [],
      dashboard: null,
      rateLimitPerMinute: 10,
      maxActiveJobsPerUser: 3,
      proceedQueue: 'triage-proceed',
      maxUploadBytes: 50 * 1024 * 1024,
      publicUrl: 'http://127.0.0.1:8000',
      ephemeralSigningKey: true,
    });
    expect(
      readApiSettings({ DASHBOARD_USER: 'a', DASHBOARD_PASSWORD: 'b', DASHBOARD_READ_ONLY: 'false' }).dashboard,
    ).toEqual({ user: 'a', password: 'b', readOnly: false });
    expect(() => readApiSettings({ DASHBOARD_USER: 'a' })).toThrow(
      /DASHBOARD_USER and DASHBOARD_PASSWORD must be set together/,
    );
    expect(() => readApiSettings({ PORT: 'x' })).toThrow(/PORT must be a whole number/);
    expect(() => readApiSettings({ CORS_ORIGINS: 'app.example.com' })).toThrow(/CORS_ORIGINS/);
    for (const h of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.1.2.3']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.2', 'example.com']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('health and auth', () => {
  it('GET /api/triage/health needs no token', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/api/triage/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', version: expect.any(String) });
  });

  it('a missing or bad token is 401 with WWW-Authenticate: Bearer and a detail', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-a-token' }, { authorization: 'Basic abc' }]) {
      const res = await env.app.inject({ method: 'GET', url: '/api/triage/active', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.json().detail).toEqual(expect.any(String));
    }
  });
});

describe('POST /api/triage/start-from-storage', () => {
  it('accepts a job: the contract fields, cost by tier, nothing deducted, grids from the real plan', async () => {
    const { jobId, reply } = await accepted(A, 5, { target: '20%', passes: 2 });
    const plan = prepareTriage(
      {
        triageId: jobId,
        userId: A,
        bucket: BUCKET,
        photos: Array.from({ length: 5 }, () => ({ name: 'x', path: 'x' })),
        target: '20%',
        passes: 2,
      },
      OFFLINE_PROFILE,
      env.settings.layouts,
    );
    expect(reply).toMatchObject({
      job_id: jobId,
      status: 'processing',
      photo_count: 5,
      credits_deducted: 0,
      credits_required: 1,
      estimated_grids: plan.estimatedGrids,
    });
    expect(await env.queue.getJob(jobId)).toBeTruthy();
  });

  it('refuses bad input with the contract messages', async () => {
    const jobId = randomUUID();
    const files = await env.stage(A, jobId, 2);
    const cases: [Record<string, unknown>, number, string | RegExp][] = [
      [{ job_id: jobId, files: [] }, 400, 'No files provided'],
      [
        {
          job_id: jobId,
          files: Array.from({ length: 2001 }, (_, i) => ({
            original_name: `${i}.jpg`,
            storage_path: `triage/${A}/${jobId}/${i}.jpg`,
            size: 1,
          })),
        },
        400,
        'Maximum 2000 photos allowed per triage',
      ],
      [{ job_id: jobId, files, passes: 3 }, 400, 'Passes must be 1 or 2'],
      [{ job_id: jobId, files, passes: 0 }, 400, 'Passes must be 1 or 2'],
      [{ job_id: jobId, files, target: 'abc' }, 400, /^Invalid target "abc"/],
      [{ job_id: jobId, files, target: '0%' }, 400, /^Invalid target "0%"/],
      [{ job_id: jobId, files, target: '150%' }, 400, /^Invalid target "150%"/],
      [{ job_id: jobId, files, target: '5' }, 400, /cannot keep 5 of 2 photos/],
      [{ job_id: 'not-a-uuid', files }, 400, 'job_id must be a UUID'],
    ];
    for (const [body, code, detail] of cases) {
      const res = await start(A, body);
      expect(res.statusCode, JSON.stringify(body).slice(0, 80)).toBe(code);
      if (typeof detail === 'string') expect(res.json().detail).toBe(detail);
      else expect(res.json().detail).toMatch(detail);
    }
    expect(await env.store.meta(jobId)).toBeNull();
  });

  it('refuses any storage path outside triage/{caller}/{job_id}/ with 403, escapes included', async () => {
    const jobId = randomUUID();
    const [file] = await env.stage(A, jobId, 1);
    const bad = [
      `triage/${B}/${jobId}/x.jpg`,
      `triage/${A}/${randomUUID()}/x.jpg`,
      `triage/${A}/${jobId}/../../${B}/x.jpg`,
      `triage/${A}/${jobId}/%2e%2e/x.jpg`,
      `triage/${A}/${jobId}/..%2fx.jpg`,
      `triage/${A}/${jobId}/`,
      `/triage/${A}/${jobId}/x.jpg`,
      `triage/${A}/${jobId}//x.jpg`,
      `triage/${A}/${jobId}/a\\..\\..\\x.jpg`,
      `other/${A}/${jobId}/x.jpg`,
    ];
    for (const storage_path of bad) {
      const res = await start(A, { job_id: jobId, files: [file, { original_name: 'x.jpg', storage_path }] });
      expect(res.statusCode, storage_path).toBe(403);
      expect(res.json()).toEqual({ detail: 'Invalid storage path - must be in user/job folder' });
      // A client thumbnail obeys the same rule.
      const thumb = await start(A, { job_id: jobId, files: [{ ...file, thumbnail_path: storage_path }] });
      expect(thumb.statusCode, `thumbnail ${storage_path}`).toBe(403);
    }
    expect(await env.store.meta(jobId)).toBeNull();
  });

  it('accepts a client thumbnail beside the original and passes it on to the worker', async () => {
    const jobId = randomUUID();
    const [file] = await env.stage(A, jobId, 1);
    const thumbnail_path = `triage/${A}/${jobId}/thumbs/x.jpg`;
    const res = await start(A, { job_id: jobId, files: [{ ...file, thumbnail_path }] });
    expect(res.statusCode).toBe(200);
    const [photo] = await env.store.photos(jobId, [0]);
    expect(photo!.thumbnailPath).toBe(thumbnail_path);
  });

  it('names the files missing from storage (400), and a reused job_id is 409, not 500', async () => {
    const jobId = randomUUID();
    const files = await env.stage(A, jobId, 2);
    const missing = { original_name: 'gone.jpg', storage_path: `triage/${A}/${jobId}/gone.jpg`, size: 3 };
    const res = await start(A, { job_id: jobId, files: [...files, missing] });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toBe('Files not found in storage: gone.jpg');

    expect((await start(A, { job_id: jobId, files })).statusCode).toBe(200);
    const again = await start(A, { job_id: jobId, files });
    expect(again.statusCode).toBe(409);
    expect(again.json().detail).toBe(`Triage job ${jobId} already exists`);
  });

  it('a malformed body is a 400 with a detail', async () => {
    const res = await start(A, { files: 'nope' });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatch(/^Invalid request/);
  });
});

describe('status, active, results, download, proceed, delete', () => {
  it('status answers the contract shape with the extra fields; unknown is 404', async () => {
    const { jobId } = await accepted(A, 3);
    const res = await env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/status`, headers: await env.auth(A) });
    expect(res.statusCode).toBe(200);
    const s = res.json();
    expect(Object.keys(s)).toEqual(
      expect.arrayContaining([
        'job_id',
        'status',
        'progress',
        'total_input',
        'pass1_survivors',
        'final_selected',
        'error_message',
        'created_at',
        'completed_at',
      ]),
    );
    expect(s).toMatchObject({
      job_id: jobId,
      status: 'pending',
      progress: null,
      total_input: 3,
      photos_failed: 0,
      grids_done: 0,
      tokens: { input: 0, output: 0 },
    });

    await env.store.start(jobId);
    const processing = (
      await env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/status`, headers: await env.auth(A) })
    ).json();
    expect(processing.progress).toEqual({
      phase: 'coarse_pass',
      current_step: 0,
      total_steps: 1,
      percentage: 0,
      message: 'Coarse selection: grid 0/1',
    });

    const unknown = await env.app.inject({
      method: 'GET',
      url: `/api/triage/${randomUUID()}/status`,
      headers: await env.auth(A),
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ detail: 'Triage job not found' });
  });

  it('active lists only the caller’s pending and processing jobs, newest first, and drops expired ids', async () => {
    const user = `user-active-${randomUUID().slice(0, 6)}`;
    const first = await accepted(user, 2);
    await new Promise((r) => setTimeout(r, 5));
    const second = await accepted(user, 2);
    const done = await accepted(user, 2);
    await complete(done.jobId, [0], 2);
    await env.redis.zadd(userJobsKey(env.prefix, user), Date.now() + 1000, 'expired-id');
    const res = await env.app.inject({ method: 'GET', url: '/api/triage/active', headers: await env.auth(user) });
    expect(res.statusCode).toBe(200);
    const jobs = res.json().jobs;
    expect(jobs.map((j: { job_id: string }) => j.job_id)).toEqual([second.jobId, first.jobId]);
    expect(jobs[0]).toMatchObject({
      status: 'pending',
      total_input: 2,
      progress_percentage: 0,
      created_at: expect.any(String),
    });
    expect(await env.redis.zscore(userJobsKey(env.prefix, user), 'expired-id')).toBeNull();
  });

  it('results, download and proceed are 400 until the job is complete, with the old service’s messages', async () => {
    const { jobId } = await accepted(A, 2);
    const headers = await env.auth(A);
    const expected = {
      results: 'Triage not complete. Status: pending',
      download: 'Triage must be completed before downloading',
      proceed: 'Triage must be completed before proceeding to scoring',
    };
    for (const [method, url] of [
      ['GET', 'results'],
      ['GET', 'download'],
      ['POST', 'proceed'],
    ] as const) {
      const res = await env.app.inject({ method, url: `/api/triage/${jobId}/${url}`, headers });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toEqual({ detail: expected[url] });
    }
  });

  it('results: picks in rank order with signed thumbnail URLs; ?include=all gives every photo’s fate', async () => {
    const { jobId, files } = await accepted(A, 4);
    await complete(jobId, [2, 0], 4);
    const headers = await env.auth(A);
    const res = await env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/results`, headers });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      job_id: jobId,
      status: 'completed',
      total_input: 4,
      final_selected: 2,
      pass1_survivors: 2,
      target: '10%',
      criteria: 'standout',
    });
    expect(body.selected_photos.map((p: { id: string }) => p.id)).toEqual(['2', '0']);
    expect(body.selected_photos[0]).toMatchObject({
      original_filename: files[2]!.original_name,
      storage_path: files[2]!.storage_path,
    });
    expect(body.selected_photos[0].thumbnail_url).toMatch(
      new RegExp(`^${PUBLIC_URL}/storage/photos/triage/.+\\?expires=\\d+&signature=`),
    );
    expect(body.photos).toBeUndefined();

    // The signed URL serves the object; a tampered one is refused.
    const url = new URL(body.selected_photos[0].thumbnail_url);
    const ok = await env.app.inject({ method: 'GET', url: url.pathname + url.search });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['content-type']).toBe('image/jpeg');
    // Its first character flipped to another one, so the tampered URL always differs from the good one.
    const signature = url.searchParams.get('signature')!;
    url.searchParams.set('signature', (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1));
    expect(url.searchParams.get('signature')).not.toBe(signature);
    const bad = await env.app.inject({ method: 'GET', url: url.pathname + url.search });
    expect(bad.statusCode).toBe(403);

    const all = (
      await env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/results?include=all`, headers })
    ).json();
    expect(all.photos).toHaveLength(4);
    expect(all.photos.map((p: { fate: string }) => p.fate)).toEqual([
      'selected',
      'not_selected',
      'selected',
      'not_selected',
    ]);
    expect(all.photos[1].reason).toBe('not picked in the coarse pass');
    expect(all.photos[2].reason).toBe('selected (rank 3)');
  });

  it('a failed job has results (no picks) but no download', async () => {
    const { jobId } = await accepted(A, 2);
    await env.store.finish(jobId, { status: 'failed', errorMessage: 'Triage failed: boom' });
    const headers = await env.auth(A);
    const res = await env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/results`, headers });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'failed', selected_photos: [], error_message: 'Triage failed: boom' });
    const dl = await env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/download`, headers });
    expect(dl.statusCode).toBe(400);
    expect(dl.json().detail).toBe('Triage must be completed before downloading');
  });

  it('download: a ZIP with the contract file name; clashing names are made unique', async () => {
    const jobId = randomUUID();
    const files = (await env.stage(A, jobId, 3)).map((f) => ({ ...f, original_name: 'same.jpg' }));
    expect((await start(A, { job_id: jobId, files })).statusCode).toBe(200);
    await complete(jobId, [0, 1, 2], 3);
    const res = await env.app.inject({
      method: 'GET',
      url: `/api/triage/${jobId}/download`,
      headers: await env.auth(A),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    expect(res.headers['content-disposition']).toBe(`attachment; filename=triage_${jobId.slice(0, 8)}_selected.zip`);
    expect(centralDirectoryNames(res.rawPayload)).toEqual(['same.jpg', 'same (2).jpg', 'same (3).jpg']);
  });

  it('proceed hands all picks, a {photo_ids} subset or a bare array to the configured queue', async () => {
    const { jobId } = await accepted(A, 4);
    await complete(jobId, [3, 1], 4);
    const headers = await env.auth(A);
    const all = await env.app.inject({ method: 'POST', url: `/api/triage/${jobId}/proceed`, headers });
    expect(all.statusCode, all.body).toBe(200);
    expect(all.json()).toEqual({ queued_count: 2, credits_deducted: 0, credits_required: 2 });
    const subset = await env.app.inject({
      method: 'POST',
      url: `/api/triage/${jobId}/proceed`,
      headers,
      payload: { photo_ids: ['1'] },
    });
    expect(subset.json()).toMatchObject({ queued_count: 1, credits_deducted: 0 });
    const bare = await env.app.inject({
      method: 'POST',
      url: `/api/triage/${jobId}/proceed`,
      headers,
      payload: ['3', '1'],
    });
    expect(bare.json()).toMatchObject({ queued_count: 2 });
    const unknown = await env.app.inject({
      method: 'POST',
      url: `/api/triage/${jobId}/proceed`,
      headers,
      payload: { photo_ids: ['0'] },
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().detail).toBe('Unknown photo ids (not among the selected photos): 0');

    // The bare array names the same photos as "all": one hand-off for both (a repeated proceed adds no job).
    const jobs = await env.handoffQueue.getJobs(['waiting'], 0, -1);
    expect(jobs).toHaveLength(2);
    const data = jobs.find((j) => j.data.photos.length === 1)!.data;
    expect(data).toEqual({
      triageId: jobId,
      userId: A,
      bucket: BUCKET,
      photos: [{ id: '1', name: 'IMG_0001.jpg', path: expect.stringMatching(/^triage\//) }],
    });
    expect(JSON.stringify(jobs.map((j) => j.data))).not.toMatch(/signature|https?:/);
  });

  it('DELETE removes a pending job, its queue entry and its photos; a second DELETE is 404', async () => {
    const { jobId, files } = await accepted(A, 3);
    const headers = await env.auth(A);
    const res = await env.app.inject({ method: 'DELETE', url: `/api/triage/${jobId}`, headers });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ message: 'Triage job cancelled and deleted' });
    expect(await env.store.meta(jobId)).toBeNull();
    expect(await env.queue.getJob(jobId)).toBeUndefined();
    for (const f of files) expect(await env.storage.stat(BUCKET, f.storage_path)).toBeNull();
    const again = await env.app.inject({
      method: 'DELETE',
      url: `/api/triage/${jobId}`,
      headers: { ...headers, 'content-type': 'application/json' },
    });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ detail: 'Triage job not found' });
  });
});

describe('owner scoping', () => {
  it('user B gets 404 on every route of user A’s job, and A’s job is untouched', async () => {
    const { jobId, files } = await accepted(A, 2);
    await complete(jobId, [0], 2);
    const b = await env.auth(B);
    for (const [method, path] of [
      ['GET', 'status'],
      ['GET', 'events'],
      ['GET', 'results'],
      ['GET', 'download'],
      ['POST', 'proceed'],
      ['DELETE', ''],
    ] as const) {
      const res = await env.app.inject({ method, url: `/api/triage/${jobId}${path ? `/${path}` : ''}`, headers: b });
      expect(res.statusCode, `${method} ${path}`).toBe(404);
      expect(res.json()).toEqual({ detail: 'Triage job not found' });
    }
    expect((await env.store.status(jobId))?.status).toBe('completed');
    expect(await env.storage.stat(BUCKET, files[0]!.storage_path)).not.toBeNull();
    const active = (await env.app.inject({ method: 'GET', url: '/api/triage/active', headers: b })).json();
    expect(active.jobs.map((j: { job_id: string }) => j.job_id)).not.toContain(jobId);
  });
});

describe('limits', () => {
  it('caps active jobs per user and rate-limits job creation (429 with clear messages)', async () => {
    const limited = await setup({ RATE_LIMIT_PER_MINUTE: '3', MAX_ACTIVE_JOBS_PER_USER: '2' });
    try {
      const user = 'user-limits';
      const go = async () => {
        const jobId = randomUUID();
        const files = await limited.stage(user, jobId, 1);
        return limited.app.inject({
          method: 'POST',
          url: '/api/triage/start-from-storage',
          headers: await limited.auth(user),
          payload: { job_id: jobId, files },
        });
      };
      expect((await go()).statusCode).toBe(200);
      expect((await go()).statusCode).toBe(200);
      const capped = await go();
      expect(capped.statusCode).toBe(429);
      expect(capped.json().detail).toBe(
        'Too many active triage jobs: you have 2 pending or processing (the limit is 2). Wait for one to finish or cancel it.',
      );
      const limitedRes = await go();
      expect(limitedRes.statusCode).toBe(429);
      expect(limitedRes.json().detail).toMatch(/^Too many triage jobs started: at most 3 per minute\. Try again in/);
      expect(limitedRes.headers['retry-after']).toBeDefined();
      // Another user has their own budget.
      const other = randomUUID();
      const files = await limited.stage('user-other', other, 1);
      const res = await limited.app.inject({
        method: 'POST',
        url: '/api/triage/start-from-storage',
        headers: await limited.auth('user-other'),
        payload: { job_id: other, files },
      });
      expect(res.statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('operations', () => {
  it('healthz, readyz, metrics, docs', async () => {
    expect((await env.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ready = await env.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', redis: 'ok' });
    const metrics = await env.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/triage_queue_jobs\{queue="triage",state="waiting"\} \d+/);
    expect(metrics.body).toMatch(/triage_api_process_resident_memory_bytes/);
    const docs = await env.app.inject({ method: 'GET', url: '/docs/json' });
    expect(docs.statusCode).toBe(200);
    const paths = Object.keys(docs.json().paths);
    for (const p of [
      '/api/triage/start-from-storage',
      '/api/triage/start',
      '/api/triage/{job_id}/status',
      '/api/triage/{job_id}/events',
      '/api/triage/{job_id}/results',
      '/api/triage/{job_id}/download',
      '/api/triage/{job_id}/proceed',
      '/api/triage/{job_id}',
      '/api/triage/active',
      '/api/triage/health',
    ]) {
      expect(paths).toContain(p);
    }
    expect((await env.app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('CORS answers configured origins only', async () => {
    const ok = await env.app.inject({
      method: 'OPTIONS',
      url: '/api/triage/active',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
    });
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const other = await env.app.inject({
      method: 'GET',
      url: '/api/triage/health',
      headers: { origin: 'https://evil.example.com' },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('the dashboard answers 401 without credentials and serves its page and assets with them', async () => {
    const none = await env.app.inject({ method: 'GET', url: '/admin/queues' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic/);
    const wrong = await env.app.inject({
      method: 'GET',
      url: '/admin/queues',
      headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` },
    });
    expect(wrong.statusCode).toBe(401);
    const authorization = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
    const page = await env.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<html/i);
    const relative = /src="(static\/js\/[^"]+\.js)"/.exec(page.body)?.[1];
    expect(relative).toBeDefined();
    const asset = `/admin/queues/${relative}`;
    expect((await env.app.inject({ method: 'GET', url: asset, headers: { authorization } })).statusCode).toBe(200);
    expect((await env.app.inject({ method: 'GET', url: asset })).statusCode).toBe(401);
    const queues = await env.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization } });
    expect(queues.statusCode).toBe(200);
    expect(JSON.stringify(queues.json())).toMatch(/"readOnlyMode":true/);
  });

  it('unknown routes answer {detail}', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json().detail).toMatch(/Not found/);
  });
});

/** File names from a ZIP's central directory. */
export function centralDirectoryNames(zip: Buffer): string[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  let count = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  const names: string[] = [];
  while (count-- > 0) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error('bad central directory entry');
    const nameLength = zip.readUInt16LE(offset + 28);
    const extra = zip.readUInt16LE(offset + 30);
    const comment = zip.readUInt16LE(offset + 32);
    names.push(zip.toString('utf8', offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extra + comment;
  }
  return names;
}
