/**
 * Redis goes away: every route answers 503 {detail} at once instead of hanging, /readyz says so, /healthz
 * still answers. The test runs its own redis-server on a free port and kills it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_DOWN } from '../src/errors.js';
import { setup, type Env } from './harness.js';

let server: ChildProcess | undefined;
let env: Env;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

beforeAll(async () => {
  const port = await freePort();
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      env = await setup({ REDIS_URL: url });
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

afterAll(async () => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  // The harness's cleanup needs Redis; this one's is gone with its data, so only close what is open.
  await env?.app.close();
  await env?.queue.close().catch(() => {});
  await env?.handoffQueue.close().catch(() => {});
  env?.redis.disconnect();
  if (env) await rm(env.dir, { recursive: true, force: true });
});

describe('with Redis down', () => {
  it('answers 503 {detail} on every route, quickly, and readyz says why', async () => {
    const jobId = randomUUID();
    const files = await env.stage('user-r', jobId, 1);
    expect((await env.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);

    const exited = new Promise((r) => server!.once('exit', r));
    server!.kill('SIGKILL');
    await exited;
    await new Promise((r) => setTimeout(r, 200));

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
