/**
 * Redis goes away: every route answers 503 {detail} at once instead of hanging, /readyz says so, /healthz
 * still answers. The test runs its own redis-server on a free port and kills it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRedisServer, type RedisServer } from '@triage/queue';
import { REDIS_DOWN } from '../src/errors.js';
import { setup, type Env } from './harness.js';

let server: RedisServer | undefined;
let redisDir: string;
let env: Env;

beforeAll(async () => {
  redisDir = await mkdtemp(join(tmpdir(), 'triage-redis-down-'));
  server = await startRedisServer({ dir: redisDir, args: ['--appendonly', 'no'] });
  env = await setup({ REDIS_URL: server.url });
});

afterAll(async () => {
  await server?.stop('SIGKILL');
  // The harness's cleanup needs Redis; this one's is gone with its data, so only close what is open.
  await env?.app.close();
  await env?.queue.close().catch(() => {});
  await env?.handoffQueue.close().catch(() => {});
  env?.redis.disconnect();
  if (env) await rm(env.dir, { recursive: true, force: true });
  await rm(redisDir, { recursive: true, force: true });
});

describe('with Redis down', () => {
  it('answers 503 {detail} on every route, quickly, and readyz says why', async () => {
    const jobId = randomUUID();
    const files = await env.stage('user-r', jobId, 1);
    expect((await env.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);

    await server!.stop('SIGKILL');
    // The API's connection has seen its socket close (the moment Redis is down for the API).
    await vi.waitUntil(() => env.redis.status !== 'ready', { timeout: 30_000 });

    const headers = await env.auth('user-r');
    const requests = [
      { method: 'GET', url: '/api/triage/active' },
      { method: 'POST', url: '/api/triage/start-from-storage', payload: { job_id: jobId, files } },
      { method: 'GET', url: `/api/triage/${jobId}/status` },
      { method: 'GET', url: `/api/triage/${jobId}/events` },
      { method: 'GET', url: `/api/triage/${jobId}/results` },
      { method: 'GET', url: `/api/triage/${jobId}/download` },
      { method: 'POST', url: `/api/triage/${jobId}/proceed` },
      { method: 'DELETE', url: `/api/triage/${jobId}` },
    ] as const;
    for (const r of requests) {
      const res = await env.app.inject({ ...r, headers });
      expect(res.statusCode, r.url).toBe(503);
      expect(res.json()).toEqual({ detail: REDIS_DOWN });
    }
    const ready = await env.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ detail: REDIS_DOWN });
    const metrics = await env.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(503);
    expect((await env.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await env.app.inject({ method: 'GET', url: '/api/triage/health' })).statusCode).toBe(200);
  });
});
