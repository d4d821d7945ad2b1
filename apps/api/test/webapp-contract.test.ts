/**
 * What the existing webapp reads and shows, checked from the outside (`app.inject`, and the API as its own
 * process for its start-up warnings): never-null phase and counters, a progress message that names the grid
 * its step counts, the old service's messages, CORS for a dev server on loopback, the per-user cap on active
 * jobs under concurrent starts, and a dashboard that asks no other server for anything.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userJobsKey } from '@triage/queue';
import { createAuthenticator } from '../src/auth.js';
import { REDIS_URL, setup, type Env } from './harness.js';

const SERVER = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/server.js');
const A = 'user-webapp';

let env: Env;

beforeAll(async () => {
  env = await setup({ DASHBOARD_USER: 'admin', DASHBOARD_PASSWORD: 'pw' });
});
afterAll(async () => {
  await env?.close();
});

async function accepted(userId: string, count: number, target = env) {
  const jobId = randomUUID();
  const files = await target.stage(userId, jobId, count);
  const res = await target.app.inject({
    method: 'POST',
    url: '/api/triage/start-from-storage',
    headers: await target.auth(userId),
    payload: { job_id: jobId, files },
  });
  expect(res.statusCode, res.body).toBe(200);
  return jobId;
}

async function get(url: string, userId = A) {
  return env.app.inject({ method: 'GET', url: `/api/triage${url}`, headers: await env.auth(userId) });
}

describe('what the webapp reads', () => {
  it('/active: phase is "pending" before the first grid, then the phase; never null', async () => {
    const user = `u-active-${randomUUID().slice(0, 6)}`;
    const waiting = await accepted(user, 2);
    const running = await accepted(user, 2);
    await env.store.start(running);
    const { jobs } = (await get('/active', user)).json<{ jobs: { job_id: string; phase: unknown }[] }>();
    const phases = Object.fromEntries(jobs.map((j) => [j.job_id, j.phase]));
    expect(phases).toEqual({ [waiting]: 'pending', [running]: 'coarse_pass' });
  });

  it('/status: pass1_survivors and final_selected are 0 until known; message and step name the same grid', async () => {
    const jobId = await accepted(A, 3);
    const pending = (await get(`/${jobId}/status`)).json();
    expect([pending.pass1_survivors, pending.final_selected]).toEqual([0, 0]);
    await env.store.start(jobId);
    const processing = (await get(`/${jobId}/status`)).json();
    expect([processing.pass1_survivors, processing.final_selected]).toEqual([0, 0]);
    // The webapp shows `message` over "Step {current_step} / {total_steps} ({percentage}%)".
    const p = processing.progress;
    expect(p.message).toBe(`Coarse selection: grid ${p.current_step}/${p.total_steps}`);
    expect(p.percentage).toBe((100 * p.current_step) / p.total_steps);
    await env.store.finish(jobId, { status: 'completed', selected: [], pass1Survivors: 0 });
    const done = (await get(`/${jobId}/status`)).json();
    expect([done.pass1_survivors, done.final_selected]).toEqual([0, 0]);
  });

  it('a completed job with no picks: download is 400 "No photos to download", proceed 400 "No photos to score"', async () => {
    const jobId = await accepted(A, 2);
    await env.store.start(jobId);
    await env.store.finish(jobId, { status: 'completed', selected: [], pass1Survivors: 0 });
    const dl = await get(`/${jobId}/download`);
    expect([dl.statusCode, dl.json()]).toEqual([400, { detail: 'No photos to download' }]);
    expect(dl.headers['content-type']).not.toMatch(/zip/);
    const proceed = await env.app.inject({
      method: 'POST',
      url: `/api/triage/${jobId}/proceed`,
      headers: await env.auth(A),
    });
    expect([proceed.statusCode, proceed.json()]).toEqual([400, { detail: 'No photos to score' }]);
  });

  it('proceed with ids that leave nothing to score is the old service’s 400', async () => {
    const jobId = await accepted(A, 2);
    await env.store.start(jobId);
    await env.store.finish(jobId, { status: 'completed', selected: [1], pass1Survivors: 1 });
    const res = await env.app.inject({
      method: 'POST',
      url: `/api/triage/${jobId}/proceed`,
      headers: await env.auth(A),
      payload: { photo_ids: [] },
    });
    expect([res.statusCode, res.json()]).toEqual([400, { detail: 'No photos to score' }]);
  });
});

describe('the per-user cap on active jobs', () => {
  it('holds under 50 concurrent starts by one user: exactly MAX_ACTIVE_JOBS_PER_USER accepted, the rest 429', async () => {
    const capped = await setup({ MAX_ACTIVE_JOBS_PER_USER: '3' });
    try {
      const user = `u-cap-${randomUUID().slice(0, 6)}`;
      const headers = await capped.auth(user);
      const bodies = [];
      for (let i = 0; i < 50; i++) {
        const jobId = randomUUID();
        bodies.push({ job_id: jobId, files: await capped.stage(user, jobId, 1) });
      }
      const replies = await Promise.all(
        bodies.map((payload) =>
          capped.app.inject({ method: 'POST', url: '/api/triage/start-from-storage', headers, payload }),
        ),
      );
      const codes = replies.map((r) => r.statusCode);
      expect(codes.filter((c) => c === 200)).toHaveLength(3);
      expect(codes.filter((c) => c === 429)).toHaveLength(47);
      for (const r of replies.filter((x) => x.statusCode === 429)) {
        expect(r.json().detail).toMatch(
          /^Too many active triage jobs: you have \d+ pending or processing \(the limit is 3\)/,
        );
      }
      // Nothing half-accepted: exactly three triages stored for the user, and three jobs queued.
      expect(await capped.redis.zcard(userJobsKey(capped.prefix, user))).toBe(3);
      expect(await capped.queue.getJobCountByTypes('wait', 'delayed', 'active', 'prioritized')).toBe(3);
    } finally {
      await capped.close();
    }
  });
});

describe('CORS', () => {
  const preflight = (target: Env, origin: string) =>
    target.app.inject({
      method: 'OPTIONS',
      url: '/api/triage/active',
      headers: { origin, 'access-control-request-method': 'GET' },
    });

  it('in local mode, allows browser origins on loopback (any port) by default, and nothing else', async () => {
    const local = await setup({ SUPABASE_JWT_SECRET: '' }, { authenticator: createAuthenticator({}) });
    try {
      for (const origin of [
        'http://localhost:5173',
        'http://127.0.0.1:3000',
        'http://[::1]:5173',
        'http://localhost',
      ]) {
        expect((await preflight(local, origin)).headers['access-control-allow-origin'], origin).toBe(origin);
      }
      for (const origin of [
        'https://app.example.com',
        'http://localhost.example.com',
        'http://127.0.0.1.example.com:80',
        'null',
      ]) {
        expect((await preflight(local, origin)).headers['access-control-allow-origin'], origin).toBeUndefined();
      }
      // And a real call from the dev server's origin is answered with the header the browser needs.
      const res = await local.app.inject({
        method: 'GET',
        url: '/api/triage/active',
        headers: { origin: 'http://localhost:5173' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    } finally {
      await local.close();
    }
  });

  it('with tokens verified, loopback is not allowed unless listed in CORS_ORIGINS', async () => {
    expect((await preflight(env, 'http://localhost:5173')).headers['access-control-allow-origin']).toBeUndefined();
    const listed = await setup({ CORS_ORIGINS: 'https://app.example.com,http://localhost:5173' });
    try {
      expect((await preflight(listed, 'http://localhost:5173')).headers['access-control-allow-origin']).toBe(
        'http://localhost:5173',
      );
      expect((await preflight(listed, 'http://127.0.0.1:5173')).headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await listed.close();
    }
  });

  /** Starts the API process and collects its log until it listens; then stops it. */
  async function startupLog(extra: Record<string, string>): Promise<string> {
    const child = spawn(process.execPath, [SERVER], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL,
        PORT: '0',
        TRIAGE_PREFIX: `apitest-cors-${randomUUID().slice(0, 8)}`,
        STORAGE_DIR: env.storageDir,
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise((r) => child.once('exit', r));
    await new Promise<void>((resolvePromise, reject) => {
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes('API listening')) resolvePromise();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`the API exited (${code}) before listening:\n${out}`)));
    });
    child.kill('SIGTERM');
    await exited;
    return out;
  }

  it('warns at start when tokens are verified and CORS_ORIGINS is empty; not in local mode or with origins', async () => {
    const verified = await startupLog({ SUPABASE_JWT_SECRET: 'a-secret-that-is-long-enough-for-hs256-012345' });
    expect(verified).toMatch(/CORS_ORIGINS is empty/);
    const withOrigins = await startupLog({
      SUPABASE_JWT_SECRET: 'a-secret-that-is-long-enough-for-hs256-012345',
      CORS_ORIGINS: 'https://app.example.com',
    });
    expect(withOrigins).not.toMatch(/CORS_ORIGINS is empty/);
    const local = await startupLog({});
    expect(local).toMatch(/LOCAL MODE/);
    expect(local).not.toMatch(/CORS_ORIGINS is empty/);
  });
});

describe('the dashboard', () => {
  const authorization = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
  /** Any absolute or protocol-relative URL in an attribute or a CSS url()/@import. */
  const EXTERNAL =
    /(?:href|src|action)\s*=\s*["']?(?:https?:)?\/\/|url\(\s*["']?(?:https?:)?\/\/|@import\s+["'](?:https?:)?\/\//i;

  it('its page and stylesheets name no other server, and its CSP keeps every request on this origin', async () => {
    const page = await env.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<html/i);
    expect(page.body).not.toMatch(EXTERNAL);
    expect(page.body).not.toMatch(/fonts\.googleapis|fonts\.gstatic/);
    expect(Number(page.headers['content-length'] ?? Buffer.byteLength(page.body))).toBe(Buffer.byteLength(page.body));
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).not.toMatch(/https?:/);
    const sheets = [...page.body.matchAll(/<link\b[^>]*href="([^"]+\.css)"/g)].map((m) => m[1]!);
    expect(sheets.length).toBeGreaterThan(0);
    for (const sheet of sheets) {
      const css = await env.app.inject({ method: 'GET', url: `/admin/queues/${sheet}`, headers: { authorization } });
      expect(css.statusCode, sheet).toBe(200);
      expect(css.body, sheet).not.toMatch(EXTERNAL);
    }
  });

  it('lists a job by its step: the progress the worker reports names the phase and grid', async () => {
    const jobId = await accepted(A, 2);
    const job = (await env.queue.getJob(jobId))!;
    await job.updateProgress({
      progress: 25,
      phase: 'coarse_pass',
      grid: '1/4',
      grids_done: 1,
      grids_total: 4,
      message: 'Coarse selection: grid 1/4',
    });
    const res = await env.app.inject({
      method: 'GET',
      url: `/admin/queues/api/queues?activeQueue=${env.queue.name}&status=waiting&page=1&jobsPerPage=50`,
      headers: { authorization },
    });
    expect(res.statusCode, res.body).toBe(200);
    const queue = res
      .json<{ queues: { name: string; jobs: { id: string; name: string; progress: unknown }[] }[] }>()
      .queues.find((q) => q.name === env.queue.name)!;
    const listed = queue.jobs.find((j) => j.id === jobId)!;
    expect(listed.name).toBe('triage · Coarse selection: grid 1/4 · 1 of 4 grids (one start per grid)');
    expect(listed.progress).toMatchObject({ progress: 25, phase: 'coarse_pass', grid: '1/4' });
  });
});
